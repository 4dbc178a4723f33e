// The node image store: one root shared by any number of processes. Content (blobs) is written by
// ContentStore; image records, index.json and leases change only under the store-wide metadata lock, which is
// always the last lock taken and held only for a read-modify-write of small files (or a GC sweep).

import {
  formatReference,
  isNamedReference,
  parseAnyReference,
  parseDockerRef,
  type Reference,
  repositoryName,
} from "../reference/index.ts";
import type { Platform } from "../registry/index.ts";
import { ContentStore } from "./content.ts";
import { crashPoint } from "./crash.ts";
import { StoreError } from "./errors.ts";
// GC, unpack and verify are loaded when first used (below): a pull needs none of them, and snapshots.ts
// brings the unpacker (tar, zlib, child_process), ~15 modules on every `kpull pull` start otherwise.
import type { GcOptions, GcReport, SweepOptions, SweepReport } from "./gc.ts";
import { initLayout, readStoreInfo, type StorePaths, storeExists, storePaths } from "./layout.ts";
import {
  deleteLease,
  type LeaseOptions,
  type LeaseRecord,
  leaseActive,
  leaseUsesImage,
  listLeases,
  newLease,
  readLease,
  writeLease,
} from "./leases.ts";
import { acquireLock, type LockOptions } from "./lock.ts";
import { type ImageSource, type PullOptions, type PullResult, pullImage } from "./pull.ts";
import {
  type ImageRecord,
  imageId,
  type RecordDescriptor,
  readRecords,
  readRecordsFile,
  recordDigests,
  writeRecords,
} from "./records.ts";
import type { UnpackImageOptions, UnpackImageResult, UnpackWhilePulling } from "./snapshots.ts";
import type { VerifyOptions, VerifyReport } from "./verify.ts";

export interface OpenStoreOptions {
  /** Create the layout when missing (default true). Read-only commands pass false and get NOT_FOUND. */
  readonly create?: boolean;
  /** Staleness of locks whose holder's liveness cannot be checked (other host or pid namespace). */
  readonly lockStaleMs?: number;
  /** The clock, ms since the epoch (tests inject one). */
  readonly now?: () => number;
}

export interface ImageStatus {
  readonly record: ImageRecord;
  /** Every blob the image needs is present with the right size. */
  readonly complete: boolean;
  readonly missing: readonly RecordDescriptor[];
  /** Active leases name it (a pull in flight does not count; a container does). */
  readonly inUse: boolean;
  /** Its top snapshot exists (see `unpack`). */
  readonly unpacked: boolean;
}

/** An image as CRI's ImageService reports it (runtime.v1 `Image`): one per image ID. */
export interface CriImage {
  /** The config digest, as containerd reports it. */
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
  readonly size: number;
  readonly pinned: boolean;
}

/** What CRI's ImageFsInfo reports, plus the filesystem's numbers GC works from. */
export interface StoreUsage {
  readonly timestamp: number;
  readonly mountpoint: string;
  /** Bytes of blobs and partial ingests. */
  readonly usedBytes: number;
  readonly inodesUsed: number;
  readonly capacityBytes: number;
  readonly availableBytes: number;
}

export interface RemoveResult {
  readonly removed: readonly ImageRecord[];
  readonly notFound: readonly string[];
  /** Queries whose image an active lease uses (not removed without `force`). */
  readonly inUse: readonly string[];
  readonly sweep: SweepReport | null;
}

export class Store {
  readonly root: string;
  readonly paths: StorePaths;
  readonly content: ContentStore;
  readonly lockStaleMs: number | undefined;
  readonly #now: () => number;

  private constructor(root: string, options: OpenStoreOptions) {
    this.root = root;
    this.paths = storePaths(root);
    this.content = new ContentStore(this.paths);
    this.lockStaleMs = options.lockStaleMs;
    this.#now = options.now ?? Date.now;
  }

  /** Opens (and by default creates) the store at `root`. */
  static async open(root: string, options: OpenStoreOptions = {}): Promise<Store> {
    if (options.create === false) {
      if (!(await storeExists(root))) {
        throw new StoreError("NOT_FOUND", `no kpull store at ${root}`, { subject: root });
      }
    } else {
      await initLayout(root);
    }
    return new Store(root, options);
  }

  now(): number {
    return this.#now();
  }

  /** When the store was created (the GC clock's start for the age pass). */
  async createdAt(): Promise<number> {
    const info = await readStoreInfo(this.paths);
    const t = info ? Date.parse(info.createdAt) : Number.NaN;
    return Number.isFinite(t) ? t : 0;
  }

  /** Runs `fn` under the store-wide metadata lock. Never call it while waiting for a blob lock inside `fn`. */
  async withMetaLock<T>(fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
    const lock = await acquireLock(this.paths.metaLock, {
      purpose: "metadata",
      ...options,
      staleMs: options.staleMs ?? this.lockStaleMs,
    });
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  // ---- image records -------------------------------------------------------------------------------------

  /** All image records, sorted by name. Lock-free: the file is only ever replaced whole. */
  async images(): Promise<ImageRecord[]> {
    const records = await readRecords(this.paths);
    return [...records.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Images a user's string names, as crictl reads it: a name (normalized, `latest` added), `repo@digest`
   * (the digest the name resolved to, or the platform manifest's), an image ID (`sha256:…` or 64 hex), or an
   * unambiguous ID prefix of at least 3 hex digits.
   */
  async find(query: string): Promise<ImageRecord[]> {
    return findIn(await this.images(), query);
  }

  /** Whether the image is present and complete (the CRI ImageStatus question). */
  async status(query: string): Promise<ImageStatus | null> {
    const record = (await this.find(query))[0];
    if (record === undefined) return null;
    const missing = await this.#missing([record]);
    const leases = await this.activeLeases();
    const inUse = leases.some((l) => leaseUsesImage(l, record));
    const unpacked =
      missing.length === 0 && (await (await import("./snapshots.ts")).isUnpacked(this, record));
    return { record, complete: missing.length === 0, missing, inUse, unpacked };
  }

  /** Complete images, grouped by image ID, as CRI's ListImages reports them. An image whose content is
   * incomplete (a blob was removed by `verify --repair`) is left out, so the kubelet pulls it again. */
  async listCriImages(): Promise<CriImage[]> {
    const complete: ImageRecord[] = [];
    for (const r of await this.images()) if (await this.#complete(r)) complete.push(r);
    return criImages(complete);
  }

  /** CRI's ImageStatus: the image when present and complete, else null (never an error for absence). */
  async criImageStatus(query: string): Promise<CriImage | null> {
    // A pull asks this three or four times (before, the manager's presence check, the size after, after):
    // one read of the records and the blobs checked at once, not two reads and a stat at a time.
    const records = await this.images();
    const found = findIn(records, query);
    if (found.length === 0) return null;
    const ids = new Set(found.map(imageId));
    const group = records.filter((r) => ids.has(imageId(r)));
    if ((await this.#missing(group)).length > 0) return null;
    return criImages(group)[0] ?? null;
  }

  /** Bytes and files the store uses, and the filesystem's capacity and free space. */
  async usage(): Promise<StoreUsage> {
    let usedBytes = 0;
    let inodesUsed = 0;
    for (const b of await this.content.list()) {
      usedBytes += b.size;
      inodesUsed++;
    }
    for (const i of await this.content.ingests()) {
      usedBytes += i.size;
      inodesUsed++;
    }
    const disk = await (await import("./gc.ts")).statfsUsage(this.root);
    return {
      timestamp: this.now(),
      mountpoint: this.root,
      usedBytes,
      inodesUsed,
      capacityBytes: disk.capacity,
      availableBytes: disk.available,
    };
  }

  async #complete(record: ImageRecord): Promise<boolean> {
    return (await this.#missing([record])).length === 0;
  }

  /** The blobs these records need that are absent or have the wrong size (checked concurrently). */
  async #missing(records: readonly ImageRecord[]): Promise<RecordDescriptor[]> {
    const wanted = new Map<string, RecordDescriptor>();
    for (const r of records) for (const d of recordDigests(r)) wanted.set(`${d.digest}/${d.size}`, d);
    const all = [...wanted.values()];
    const present = await Promise.all(all.map((d) => this.content.has(d)));
    return all.filter((_, i) => !present[i]);
  }

  /** Inserts or replaces records under the metadata lock. */
  async updateRecords(
    change: (records: Map<string, ImageRecord>) => void | Promise<void>,
    options: LockOptions = {},
  ): Promise<void> {
    await this.withMetaLock(async () => {
      const { records, text } = await readRecordsFile(this.paths);
      await change(records);
      await writeRecords(this.paths, records, () => crashPoint("records-before-index"), text);
      crashPoint("records-after-index");
    }, options);
  }

  /** Sets or clears the pinned flag (pinned images are never removed by image GC). Returns the names changed. */
  async pin(query: string, pinned = true): Promise<string[]> {
    const changed: string[] = [];
    await this.updateRecords(async (records) => {
      const ids = new Set(findIn([...records.values()], query).map(imageId));
      for (const [name, r] of records) {
        if (ids.has(imageId(r))) {
          records.set(name, { ...r, pinned });
          changed.push(name);
        }
      }
    });
    if (changed.length === 0)
      throw new StoreError("NOT_FOUND", `image "${query}" not found`, { subject: query });
    return changed;
  }

  /** Records that a container used these images now (the kubelet's lastUsed). */
  async touch(names: readonly string[], when = this.now()): Promise<void> {
    if (names.length === 0) return;
    await this.updateRecords((records) => {
      for (const name of names) {
        const r = records.get(name);
        if (r) records.set(name, { ...r, lastUsed: new Date(when).toISOString() });
      }
    });
  }

  /**
   * Removes images as CRI's RemoveImage does: every name of the same image ID goes, wherever it was found;
   * then content nothing references any more is swept. Images an active lease uses are refused unless
   * `force`.
   */
  async remove(
    queries: readonly string[],
    options: { force?: boolean; sweep?: boolean; signal?: AbortSignal } = {},
  ): Promise<RemoveResult> {
    const removed: ImageRecord[] = [];
    const notFound: string[] = [];
    const inUse: string[] = [];
    await this.withMetaLock(
      async () => {
        const records = await readRecords(this.paths);
        const leases = (await listLeases(this.paths)).leases.filter((l) => leaseActive(l, this.now()));
        const ids = new Set<string>();
        for (const query of queries) {
          const found = findIn([...records.values()], query);
          if (found.length === 0) {
            notFound.push(query);
            continue;
          }
          const foundIds = new Set(found.map(imageId));
          const group = [...records.values()].filter((r) => foundIds.has(imageId(r)));
          if (!options.force && group.some((r) => leases.some((l) => leaseUsesImage(l, r)))) {
            inUse.push(query);
            continue;
          }
          for (const id of foundIds) ids.add(id);
        }
        for (const [name, r] of records) {
          if (ids.has(imageId(r))) {
            removed.push(r);
            records.delete(name);
          }
        }
        if (removed.length > 0) await writeRecords(this.paths, records);
      },
      { signal: options.signal },
    );
    if (removed.length > 0) crashPoint("rmi-after-records");
    const swept =
      removed.length > 0 && options.sweep !== false ? await this.sweep({ signal: options.signal }) : null;
    return { removed, notFound, inUse, sweep: swept };
  }

  // ---- leases --------------------------------------------------------------------------------------------

  /** Takes a lease (under the metadata lock, so GC sees it before the holder relies on it). */
  async lease(options: LeaseOptions): Promise<Lease> {
    const record = newLease(options, this.now());
    await this.withMetaLock(() => writeLease(this.paths, record));
    crashPoint("lease-taken");
    if (record.images.length > 0) await this.touch(record.images);
    return new Lease(this, record);
  }

  /** Reopens a lease by id (for example a container's lease, in a later process). */
  async openLease(id: string): Promise<Lease> {
    const record = await readLease(this.paths, id);
    if (record === null) throw new StoreError("NOT_FOUND", `lease ${id} not found`, { subject: id });
    return new Lease(this, record);
  }

  async activeLeases(): Promise<LeaseRecord[]> {
    const now = this.now();
    return (await listLeases(this.paths)).leases.filter((l) => leaseActive(l, now));
  }

  // ---- operations ----------------------------------------------------------------------------------------

  /** Pulls an image into the store: see pull.ts. */
  pullImage(client: ImageSource, reference: string, options: PullOptions = {}): Promise<PullResult> {
    return pullImage(this, client, reference, options);
  }

  /** The kubelet's image GC, then a content sweep: see gc.ts. */
  async garbageCollect(options: GcOptions = {}): Promise<GcReport> {
    return (await import("./gc.ts")).garbageCollect(this, options);
  }

  /** Removes content no image, index.json entry or active lease references: see gc.ts. */
  async sweep(options: SweepOptions = {}): Promise<SweepReport> {
    return (await import("./gc.ts")).sweep(this, options);
  }

  /** Unpacks a stored image into snapshots by ChainID (shared prefixes once): see snapshots.ts. */
  async unpack(query: string, options: UnpackImageOptions = {}): Promise<UnpackImageResult> {
    return (await import("./snapshots.ts")).unpackImage(this, query, options);
  }

  /**
   * An unpack that runs while a pull of `reference` fetches it: pass its `onProgress` to the pull, then
   * `finish` (see snapshots.ts UnpackWhilePulling).
   */
  async unpackWhilePulling(reference: string, options: UnpackImageOptions = {}): Promise<UnpackWhilePulling> {
    const { UnpackWhilePulling } = await import("./snapshots.ts");
    return new UnpackWhilePulling(this, formatReference(parseDockerRef(reference)), options);
  }

  /** Re-hashes every blob and checks every record: see verify.ts. */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    return (await import("./verify.ts")).verifyStore(this, options);
  }
}

export class Lease {
  readonly #store: Store;
  #record: LeaseRecord;
  #released = false;

  constructor(store: Store, record: LeaseRecord) {
    this.#store = store;
    this.#record = record;
  }

  get id(): string {
    return this.#record.id;
  }

  get record(): LeaseRecord {
    return this.#record;
  }

  /** Adds content digests and image names; written under the metadata lock before it returns, so callers may
   * rely on that content not being swept from then on. */
  async add(additions: { content?: readonly string[]; images?: readonly string[] }): Promise<void> {
    const content = (additions.content ?? []).filter((d) => !this.#record.content.includes(d));
    const images = (additions.images ?? []).filter((n) => !this.#record.images.includes(n));
    if (content.length === 0 && images.length === 0) return;
    const next: LeaseRecord = {
      ...this.#record,
      content: [...this.#record.content, ...content],
      images: [...this.#record.images, ...images],
    };
    await this.#store.withMetaLock(() => writeLease(this.#store.paths, next));
    crashPoint("lease-extended");
    this.#record = next;
  }

  /** Ends the lease; images it used get lastUsed = now. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await deleteLease(this.#store.paths, this.#record.id);
    crashPoint("lease-released");
    if (this.#record.images.length > 0) await this.#store.touch(this.#record.images);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** Groups records by image ID into CRI images (in the order IDs first appear). */
export function criImages(records: readonly ImageRecord[]): CriImage[] {
  const byId = new Map<string, ImageRecord[]>();
  for (const r of records) byId.set(imageId(r), [...(byId.get(imageId(r)) ?? []), r]);
  return [...byId].map(([id, group]) => {
    const repoTags = group.filter((r) => !r.name.includes("@")).map((r) => r.name);
    const repoDigests = [
      ...new Set(group.map((r) => `${repositoryName(parseDockerRef(r.name))}@${r.target.digest}`)),
    ];
    return {
      id,
      repoTags,
      repoDigests,
      size: Math.max(...group.map((r) => r.size)),
      pinned: group.some((r) => r.pinned),
    };
  });
}

/** The canonical record name for a reference: what `parseDockerRef` makes of it (`latest` added; a tag next
 * to a digest dropped), formatted. */
export function imageName(reference: string | Reference): string {
  return formatReference(typeof reference === "string" ? parseDockerRef(reference) : reference);
}

/**
 * How a user's image string is read, on the store (`findIn`) and on a runtime: a bare digest (an image ID,
 * a manifest or index digest), a name (`repo:tag`, `repo@digest`), and, when it looks like one, an image ID
 * prefix of at least 3 hex digits (tried when nothing is found by name: `abc` is also a valid name).
 */
export interface ImageQuery {
  readonly text: string;
  readonly digest: string | null;
  readonly ref: Reference | null;
  readonly idPrefix: string | null;
}

export function parseImageQuery(query: string): ImageQuery {
  const text = query.trim();
  let parsed: ReturnType<typeof parseAnyReference> | null = null;
  try {
    parsed = parseAnyReference(text);
  } catch {
    parsed = null;
  }
  const named = parsed !== null && isNamedReference(parsed);
  return {
    text,
    digest: parsed !== null && !named ? parsed.digest : null,
    ref: named ? parseDockerRef(text) : null,
    idPrefix: /^(?:sha256:)?([a-f0-9]{3,64})$/.exec(text)?.[1] ?? null,
  };
}

export function findIn(records: readonly ImageRecord[], query: string): ImageRecord[] {
  const q = parseImageQuery(query);
  if (q.digest !== null) {
    const digest = q.digest;
    return records.filter((r) => [imageId(r), r.manifest.digest, r.target.digest].includes(digest));
  }
  if (q.ref !== null) {
    const ref = q.ref;
    const name = formatReference(ref);
    const byName = records.filter((r) => r.name === name);
    if (byName.length > 0) return byName;
    if (ref.digest !== null) {
      const repo = repositoryName(ref);
      const byDigest = records.filter(
        (r) =>
          repositoryName(parseDockerRef(r.name)) === repo &&
          (r.target.digest === ref.digest || r.manifest.digest === ref.digest),
      );
      if (byDigest.length > 0) return byDigest;
    }
  }
  const prefix = q.idPrefix;
  if (prefix !== null) {
    const matches = records.filter((r) => imageId(r).slice("sha256:".length).startsWith(prefix));
    const ids = new Set(matches.map(imageId));
    if (ids.size === 1) return matches;
    if (ids.size > 1) {
      throw new StoreError(
        "INVALID",
        `image ID prefix "${q.text}" is ambiguous: it matches ${ids.size} images`,
        {
          subject: q.text,
        },
      );
    }
  }
  return [];
}

export type { Platform };
