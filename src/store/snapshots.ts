// Unpacked snapshots of stored images, built with src/store/unpack: one snapshot per ChainID under
// kpull/snapshots/, so images that share a prefix of layers share those snapshots and unpack them once.
// Each ChainID is built under its own lock (taken like a blob lock: never while holding the metadata lock),
// by applying one layer onto a hardlinked tree of the parent snapshot in a temporary directory renamed into
// place. A lease names the chain while it is built, so a concurrent GC keeps it; GC sweeps snapshots no
// image needs.

import { promises as fs } from "node:fs";
import { join } from "node:path";
import {
  type Descriptor,
  type ImageManifest,
  MAX_CONFIG_BYTES,
  parseManifestJson,
} from "../registry/index.ts";
import { crashPoint } from "./crash.ts";
import { StoreError } from "./errors.ts";
import type { StorePaths } from "./layout.ts";
import { acquireLock, tryAcquireLock } from "./lock.ts";
import type { PullProgress } from "./pull.ts";
import type { ImageRecord, RecordDescriptor } from "./records.ts";
import type { Store } from "./store.ts";
import {
  type ApplyOptions,
  applyLayer,
  buildSnapshot,
  chainIds,
  commitSnapshot,
  compressionOf,
  discardSnapshot,
  isDir,
  removeSnapshot,
  removeStaleSnapshotTemps,
  type SnapshotBuild,
  snapshotPath,
  syncFilesystem,
  UnpackError,
  type UnpackWarning,
} from "./unpack/index.ts";

export interface UnpackImageOptions {
  readonly signal?: AbortSignal | undefined;
  /** Limits and ownership for applying layers (see unpack's ApplyOptions). */
  readonly apply?: Omit<ApplyOptions, "signal" | "onWarning">;
  readonly onWarning?: ((w: UnpackWarning & { readonly layer: string }) => void) | undefined;
  readonly onLayer?:
    | ((p: { readonly index: number; readonly chainId: string; readonly created: boolean }) => void)
    | undefined;
}

export interface UnpackedLayer {
  readonly digest: string;
  readonly diffId: string;
  readonly chainId: string;
  /** False when the snapshot already existed (shared with another image, or unpacked before). */
  readonly created: boolean;
}

export interface UnpackImageResult {
  readonly name: string;
  readonly id: string;
  /** The ChainID of the whole image: its top snapshot. */
  readonly chainId: string;
  /** The top snapshot's directory: the image's root filesystem. */
  readonly rootfs: string;
  readonly layers: readonly UnpackedLayer[];
  readonly warnings: readonly (UnpackWarning & { readonly layer: string })[];
}

const UNPACK_LEASE_TTL_MS = 24 * 60 * 60_000;

/** A built snapshot whose flush is running; committed once the next layer is built (or at the end). */
interface Pending {
  readonly index: number;
  readonly chainId: string;
  readonly digest: string;
  readonly diffId: string;
  readonly build: SnapshotBuild;
  readonly lock: { release(): Promise<void> };
  readonly flushed: Promise<void>;
}

export function snapshotLockPath(paths: StorePaths, chainId: string): string {
  return join(paths.locks, `snapshot-${chainId.replace(":", "-")}.lock`);
}

/** What an unpack needs of an image: a stored record, or a manifest being pulled. */
type UnpackSubject = Pick<ImageRecord, "name" | "config" | "layers">;

/** The DiffIDs of an image (its config's rootfs.diff_ids), checked against its layers. */
export async function imageDiffIds(store: Store, record: UnpackSubject): Promise<string[]> {
  if (record.config.size > MAX_CONFIG_BYTES) {
    throw new StoreError(
      "INVALID",
      `image ${record.name}: its config is ${record.config.size} bytes, more than the ${MAX_CONFIG_BYTES} an image config may have`,
      { subject: record.config.digest },
    );
  }
  const config = JSON.parse(
    (await store.content.read(record.config.digest, record.config.size)).toString("utf8"),
  ) as {
    rootfs?: { diff_ids?: unknown };
  };
  const diffIds = config?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === "string")) {
    throw new StoreError("INVALID", `image ${record.name}: its config has no rootfs.diff_ids`, {
      subject: record.name,
    });
  }
  if (diffIds.length !== record.layers.length) {
    // containerd's words (core/unpack/unpacker.go)
    throw new StoreError(
      "INVALID",
      `number of layers and diffIDs don't match: ${record.layers.length} != ${diffIds.length}`,
      { subject: record.name },
    );
  }
  return diffIds as string[];
}

/** The ChainIDs of an image, base first. */
export async function imageChainIds(store: Store, record: ImageRecord): Promise<string[]> {
  return chainIds(await imageDiffIds(store, record));
}

/**
 * Unpacks a stored image into snapshots, layer by layer, reusing every snapshot that exists. Each layer's
 * uncompressed digest is verified against the config's DiffID while it is applied; a layer that fails
 * (hostile, corrupt, too large) leaves no snapshot behind.
 */
export async function unpackImage(
  store: Store,
  query: string,
  options: UnpackImageOptions = {},
): Promise<UnpackImageResult> {
  const record = (await store.find(query))[0];
  if (record === undefined)
    throw new StoreError("NOT_FOUND", `image "${query}" not found`, { subject: query });
  return unpackLayers(store, record, options, null);
}

/** Blobs of an image still being pulled: `ready` resolves once one is stored (or the pull has ended). */
interface Arrivals {
  ready(digest: string): Promise<void>;
  isReady(digest: string): boolean;
}

/**
 * The unpack of `record`'s layers, base first. With `arrivals`, the config and each layer are awaited
 * before they are read (an image being pulled), else all must be stored already.
 */
async function unpackLayers(
  store: Store,
  record: UnpackSubject,
  options: UnpackImageOptions,
  arrivals: Arrivals | null,
): Promise<UnpackImageResult> {
  const stored = async (blob: RecordDescriptor, what: string) => {
    if (!(await store.content.has(blob))) {
      throw new StoreError(
        "NOT_FOUND",
        `image ${record.name}: ${what} ${blob.digest} is not stored (the image was removed meanwhile?)`,
        { subject: blob.digest },
      );
    }
  };
  if (arrivals !== null) {
    await arrivals.ready(record.config.digest);
    await stored(record.config, "config");
  }
  const diffIds = await imageDiffIds(store, record);
  const chain = chainIds(diffIds);
  const warnings: (UnpackWarning & { layer: string })[] = [];
  const layers: UnpackedLayer[] = [];
  const lease = await store.lease({
    purpose: `unpack ${record.name}`,
    content: [record.config.digest, ...record.layers.map((l) => l.digest)],
    snapshots: chain,
    ttlMs: UNPACK_LEASE_TTL_MS,
  });
  try {
    // The lease keeps what is stored from now on, but a GC or rmi may have swept the image between the
    // lookup above and the lease: then say so, rather than fail on a layer that is gone.
    if (arrivals === null) for (const layer of record.layers) await stored(layer, "layer");
    // Layer i+1 is applied while layer i's data is flushed (syncfs) in the background: the flush waits on
    // the disk, the apply on the CPU. Each snapshot is renamed into place after its own flush, in chain
    // order, its lock held until then; locks are taken in chain order, so two unpacks cannot deadlock.
    let pending: Pending | null = null;
    let parentDir: string | null = null;
    const commit = async (p: Pending) => {
      try {
        await p.flushed;
        const { created } = await commitSnapshot(store.paths.snapshots, p.build, p.chainId);
        crashPoint("unpack-committed");
        layers.push({ digest: p.digest, diffId: p.diffId, chainId: p.chainId, created });
        options.onLayer?.({ index: p.index, chainId: p.chainId, created });
      } finally {
        await p.flushed.catch(() => {});
        await discardSnapshot(p.build);
        await p.lock.release();
      }
    };
    try {
      for (let i = 0; i < record.layers.length; i++) {
        const layer = record.layers[i] as ImageRecord["layers"][number];
        const chainId = chain[i] as string;
        const compression = compressionOf(layer.mediaType);
        if (compression === null) {
          throw new StoreError(
            "INVALID",
            `layer ${layer.digest} has media type ${layer.mediaType}, not a layer`,
            { subject: layer.digest },
          );
        }
        if (arrivals !== null) {
          // While the blob downloads, the layer below need not stay uncommitted (and its lock held).
          if (!arrivals.isReady(layer.digest) && pending !== null) {
            const below = pending;
            pending = null;
            await commit(below);
            parentDir = snapshotPath(store.paths.snapshots, below.chainId); // its build dir was renamed
          }
          await arrivals.ready(layer.digest);
          await stored(layer, "layer");
        }
        const lock = await acquireLock(snapshotLockPath(store.paths, chainId), {
          purpose: `unpack ${chainId}`,
          signal: options.signal,
          staleMs: store.lockStaleMs,
        });
        let build: SnapshotBuild;
        try {
          const final = snapshotPath(store.paths.snapshots, chainId);
          if (await isDir(final)) {
            if (pending !== null) {
              const below = pending;
              pending = null; // committed (or discarded, if that fails) exactly once
              await commit(below);
            }
            layers.push({ digest: layer.digest, diffId: diffIds[i] as string, chainId, created: false });
            options.onLayer?.({ index: i, chainId, created: false });
            parentDir = final;
            await lock.release();
            continue;
          }
          if (pending === null && i > 0 && !(await isDir(parentDir as string))) {
            throw new UnpackError(
              "missing-parent",
              `parent snapshot ${chain[i - 1]} of ${chainId} does not exist`,
            );
          }
          build = await buildSnapshot(
            store.paths.snapshots,
            parentDir,
            async (dir) => {
              crashPoint("unpack-layer");
              const applied = await applyLayer(
                dir,
                store.content.open(layer.digest),
                compression,
                diffIds[i] as string,
                {
                  ...options.apply,
                  ...(options.signal ? { signal: options.signal } : {}),
                  onWarning: (w) => {
                    const tagged = { ...w, layer: layer.digest };
                    warnings.push(tagged);
                    options.onWarning?.(tagged);
                  },
                },
              );
              crashPoint("unpack-applied");
              return applied;
            },
            options.signal,
          );
        } catch (e) {
          await lock.release();
          // the layer below was built and is being flushed: it is sound, keep it for the next attempt
          if (pending !== null) {
            const below = pending;
            pending = null;
            await commit(below).catch(() => {});
          }
          throw e;
        }
        const previous = pending;
        pending = {
          index: i,
          chainId,
          digest: layer.digest,
          diffId: diffIds[i] as string,
          build,
          lock,
          flushed: syncFilesystem(build.dir, options.signal),
        };
        pending.flushed.catch(() => {}); // awaited by commit; never an unhandled rejection meanwhile
        parentDir = build.dir;
        if (previous !== null) await commit(previous);
      }
      if (pending !== null) {
        const last = pending;
        pending = null;
        await commit(last);
      }
    } finally {
      // a failure left the newest build uncommitted: it goes, its lock is released
      if (pending !== null) {
        await pending.flushed.catch(() => {});
        await discardSnapshot(pending.build);
        await pending.lock.release();
      }
    }
  } finally {
    await lease.release();
  }
  const top = chain.at(-1);
  if (top === undefined) throw new StoreError("INVALID", `image ${record.name} has no layers to unpack`);
  return {
    name: record.name,
    id: record.config.digest, // the image ID (records.ts imageId)
    chainId: top,
    rootfs: snapshotPath(store.paths.snapshots, top),
    layers,
    warnings,
  };
}

/**
 * Unpacks the image a pull is fetching while it fetches. Fed the pull's progress, it starts once the image's
 * manifest is stored and applies each layer as soon as its blob is committed, so decompressing and creating
 * files overlap the download (which is mostly waiting on the network and the registry). Call `finish` when
 * the pull has ended, whatever its outcome.
 */
export class UnpackWhilePulling {
  readonly #store: Store;
  readonly #name: string;
  readonly #options: UnpackImageOptions;
  readonly #abort = new AbortController();
  readonly #arrived = new Set<string>();
  readonly #waiting = new Map<string, (() => void)[]>();
  #pullEnded = false;
  #run: Promise<UnpackImageResult> | null = null;
  #manifest: string | null = null;

  constructor(store: Store, name: string, options: UnpackImageOptions = {}) {
    this.#store = store;
    this.#name = name;
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#abort.signal])
      : this.#abort.signal;
    this.#options = { ...options, signal };
  }

  /** The pull's progress callback (chain it with any other). */
  readonly onProgress = (p: PullProgress): void => {
    if (p.phase !== "committed" && p.phase !== "exists") return;
    this.#arrived.add(p.digest);
    for (const wake of this.#waiting.get(p.digest) ?? []) wake();
    this.#waiting.delete(p.digest);
    if (p.kind === "manifest" && this.#run === null && !this.#pullEnded) {
      this.#manifest = p.digest;
      this.#run = this.#start({ digest: p.digest, size: p.total });
      this.#run.catch(() => {}); // finish() reports it
    }
  };

  /**
   * The unpack's result once the pull has ended: null when it never started (the pull stored no manifest;
   * unpack the image by name then), when the pull failed (`pulled` false), or when the image the pull
   * recorded has another manifest than the one this unpack followed; the last two abort it.
   */
  async finish(pulled: boolean): Promise<UnpackImageResult | null> {
    this.#pullEnded = true;
    for (const wakers of this.#waiting.values()) for (const wake of wakers) wake();
    this.#waiting.clear();
    if (this.#run === null) return null;
    // The image the pull recorded must be the one being unpacked (a retry may have met a moved tag).
    const recorded = pulled ? (await this.#store.find(this.#name))[0] : undefined;
    if (!pulled || (recorded !== undefined && recorded.manifest.digest !== this.#manifest)) {
      this.#abort.abort(new Error(pulled ? "the pull recorded another manifest" : "the pull failed"));
      await this.#run.catch(() => {});
      return null;
    }
    return this.#run;
  }

  async #start(manifest: { digest: string; size: number }): Promise<UnpackImageResult> {
    const bytes = await this.#store.content.read(manifest.digest, manifest.size);
    const doc = parseManifestJson(bytes, "", `manifest ${manifest.digest}`) as ImageManifest;
    const strip = (d: Descriptor): RecordDescriptor => ({
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
    });
    const arrivals: Arrivals = {
      isReady: (digest) => this.#pullEnded || this.#arrived.has(digest),
      ready: (digest) =>
        arrivals.isReady(digest)
          ? Promise.resolve()
          : new Promise((wake) => {
              const list = this.#waiting.get(digest) ?? [];
              list.push(wake);
              this.#waiting.set(digest, list);
            }),
    };
    return unpackLayers(
      this.#store,
      { name: this.#name, config: strip(doc.config), layers: doc.layers.map(strip) },
      this.#options,
      arrivals,
    );
  }
}

/** Whether the image's top snapshot exists. */
export async function isUnpacked(store: Store, record: ImageRecord): Promise<boolean> {
  try {
    const top = (await imageChainIds(store, record)).at(-1);
    if (top === undefined) return false;
    return await isDir(snapshotPath(store.paths.snapshots, top));
  } catch {
    return false;
  }
}

/**
 * Removes snapshots that no kept image and no active lease needs, and the temporary directories of
 * builders that died. Called by the sweep under the metadata lock: it only *tries* each snapshot's lock.
 */
export async function sweepSnapshots(
  store: Store,
  live: ReadonlySet<string>,
  dryRun: boolean,
): Promise<{ removed: string[]; temps: string[] }> {
  let names: string[];
  try {
    names = await fs.readdir(store.paths.snapshots);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { removed: [], temps: [] };
    throw error;
  }
  const removed: string[] = [];
  for (const name of names.sort()) {
    if (!/^sha256:[a-f0-9]{64}$/.test(name) || live.has(name)) continue;
    const lock = await tryAcquireLock(snapshotLockPath(store.paths, name), { purpose: "gc" });
    if (lock === null) continue; // being built right now
    try {
      if (!dryRun) await removeSnapshot(snapshotPath(store.paths.snapshots, name));
      crashPoint("gc-snapshot-removed");
      removed.push(name);
    } finally {
      await lock.release();
    }
  }
  const temps = dryRun ? [] : await removeStaleSnapshotTemps(store.paths.snapshots);
  return { removed, temps };
}

/** ChainIDs the kept images and the active leases need. */
export async function liveChainIds(
  store: Store,
  records: Iterable<ImageRecord>,
  leaseSnapshots: Iterable<string>,
): Promise<Set<string>> {
  const live = new Set<string>(leaseSnapshots);
  for (const record of records) {
    try {
      for (const c of await imageChainIds(store, record)) live.add(c);
    } catch {
      // Config missing or not an image config: it has no snapshots to keep.
    }
  }
  return live;
}
