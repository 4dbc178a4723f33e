// A library pull into the store: resolve with one HEAD, walk index → platform manifest → config and layers,
// reading every manifest the store already holds from disk instead of the registry, fetch only blobs that are
// missing (each once across all processes sharing the root), verify and commit them, then record the image.
// A pull of a cached image therefore costs exactly one HEAD.
//
// GC safety: the pull holds a process-bound lease and adds each digest to it *before* it checks whether the
// blob is present, so a concurrent GC either swept the blob first (and the pull fetches it) or keeps it. The
// lease is taken once the reference is resolved, naming what it resolved to (a lease taken before would
// name nothing, and cost one more write under the metadata lock).

import { formatReference, parseDockerRef, type Reference } from "../reference/index.ts";
import {
  choosePlatformEntry,
  type Descriptor,
  formatPlatform,
  hostPlatform,
  type ImageIndex,
  type ImageManifest,
  isIndexType,
  isManifestType,
  MAX_CONFIG_BYTES,
  type Platform,
  parseManifestJson,
  RegistryError,
  type Repository,
} from "../registry/index.ts";
import type { BlobDescriptor, IngestProgress, IngestResult } from "./content.ts";
import { crashPoint } from "./crash.ts";
import { abortError, StoreError } from "./errors.ts";
import type { ImageRecord, RecordDescriptor } from "./records.ts";
import type { Lease, Store } from "./store.ts";

export type BlobKind = "index" | "manifest" | "config" | "layer";

export interface PullProgress extends IngestProgress {
  readonly kind: BlobKind;
}

export interface PullOptions {
  /** Platform to choose from an index; default: this machine's. */
  readonly platform?: Platform | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((p: PullProgress) => void) | undefined;
  /** Blobs fetched at once (default 6, as skopeo; the HTTP pool allows 8 connections per host). */
  readonly concurrency?: number | undefined;
  /** Leave the record's pinned flag set (default: keep what it was). */
  readonly pin?: boolean | undefined;
}

export interface PulledBlob {
  readonly kind: BlobKind;
  readonly digest: string;
  readonly size: number;
  readonly status: IngestResult["status"];
  /** Bytes received from the registry by this pull. */
  readonly fetchedBytes: number;
  /** Bytes of a partial ingest reused (resume). */
  readonly resumedFrom: number;
}

export interface ByteCount {
  readonly blobs: number;
  readonly bytes: number;
}

export interface PullResult {
  /** The record name (`docker.io/library/nginx:1.27`). */
  readonly name: string;
  /** What the reference resolved to (index or manifest). */
  readonly target: RecordDescriptor;
  readonly manifest: RecordDescriptor;
  /** Image ID: the config digest. */
  readonly id: string;
  readonly platform: Platform | null;
  readonly size: number;
  /** Blobs this pull downloaded (bytes received; a resumed blob counts what arrived this time). */
  readonly fetched: ByteCount;
  /** Blobs that were already present, or that another process committed while this one waited. */
  readonly reused: ByteCount;
  /** Blobs whose partial ingest was resumed, and the bytes that did not have to be fetched again. */
  readonly resumed: ByteCount;
  readonly blobs: readonly PulledBlob[];
  readonly record: ImageRecord;
}

/** Where a pull reads from: a registry (RegistryClient) or anything shaped like one, such as an OCI layout
 * directory being imported (oci-dir.ts). Only these three calls are used. */
export interface ImageSource {
  repository(reference: Reference): Pick<Repository, "resolve" | "manifestByDescriptor" | "blob">;
}

const PULL_LEASE_TTL_MS = 24 * 60 * 60_000;

export async function pullImage(
  store: Store,
  client: ImageSource,
  reference: string,
  options: PullOptions = {},
): Promise<PullResult> {
  const ref = parseDockerRef(reference);
  const name = formatReference(ref);
  const signal = options.signal;
  const repo = client.repository(ref);
  const blobs: PulledBlob[] = [];
  let lease: Lease | null = null;
  try {
    const target = await repo.resolve(signal ? { signal } : {});
    crashPoint("pull-resolved");
    lease = await store.lease({
      purpose: `pull ${name}`,
      ttlMs: PULL_LEASE_TTL_MS,
      content: [target.digest],
    });
    const held = lease;
    const wanted = options.platform ?? hostPlatform();

    // Walk index(es) to the platform's manifest, reading what the store holds.
    let current: Descriptor = target;
    let chosenPlatform: Platform | null = null;
    let manifest: ImageManifest | null = null;
    for (let depth = 0; ; depth++) {
      if (depth > 4) {
        throw new RegistryError("BAD_RESPONSE", `indexes nested deeper than 4 levels at ${target.digest}`);
      }
      await held.add({ content: [current.digest] }); // nothing to write for the target, leased above
      const kind: BlobKind = isIndexType(current.mediaType) ? "index" : "manifest";
      const { bytes, pulled } = await manifestBytes(store, repo, current, kind, options);
      blobs.push(pulled);
      const json = parseManifestJson(bytes, current.mediaType, `${kind} ${current.digest}`);
      if (isIndexType(current.mediaType)) {
        const entries = (json as ImageIndex).manifests;
        const chosen = choosePlatformEntry(wanted, entries);
        if (chosen < 0) {
          throw new RegistryError(
            "NO_MATCHING_PLATFORM",
            `no matching manifest for ${formatPlatform(wanted)} in the manifest list entries`,
          );
        }
        const entry = entries[chosen] as Descriptor;
        chosenPlatform = entry.platform ?? chosenPlatform;
        current = entry;
        continue;
      }
      if (!isManifestType(current.mediaType)) {
        throw new RegistryError("BAD_RESPONSE", `unsupported manifest media type ${current.mediaType}`);
      }
      manifest = json as ImageManifest;
      break;
    }
    const manifestDesc = current;
    crashPoint("pull-manifests-stored");
    if (manifest.config.size > MAX_CONFIG_BYTES) {
      // refused before a byte of it is fetched: the config is read whole, for its DiffIDs and platform
      throw new RegistryError(
        "MANIFEST_INVALID",
        `manifest ${manifestDesc.digest}: its config is ${manifest.config.size} bytes, more than the ${MAX_CONFIG_BYTES} an image config may have`,
      );
    }

    // Config and layers: leased first, then fetched where missing.
    const parts: { desc: Descriptor; kind: BlobKind }[] = [
      { desc: manifest.config, kind: "config" },
      ...manifest.layers.map((desc) => ({ desc, kind: "layer" as const })),
    ];
    await held.add({ content: parts.map((p) => p.desc.digest) });
    const unique = dedupe(parts);
    const results = await mapLimit(unique, options.concurrency ?? 6, async ({ desc, kind }) => {
      if (signal?.aborted) throw abortError(signal, `pull ${name}`);
      const result = await store.content.ingest(
        desc,
        // The ingest hashes every byte it writes and checks the digest before the commit: the client
        // need not hash them a second time.
        (offset) => repo.blob(desc, { offset, verify: false, ...(signal ? { signal } : {}) }),
        {
          signal,
          lockStaleMs: store.lockStaleMs,
          onProgress: options.onProgress ? (p) => options.onProgress?.({ ...p, kind }) : undefined,
        },
      );
      return toPulled(kind, result);
    });
    blobs.push(...results);

    const platform = chosenPlatform ?? (await configPlatform(store, manifest.config));
    const strip = (d: Descriptor): RecordDescriptor => ({
      mediaType: d.mediaType,
      digest: d.digest,
      size: d.size,
    });
    const layers = manifest.layers.map(strip);
    const size = manifestDesc.size + manifest.config.size + layers.reduce((n, l) => n + l.size, 0);
    crashPoint("pull-before-record");
    let record: ImageRecord | null = null;
    await store.updateRecords((records) => {
      const previous = records.get(name);
      const sameImage = previous !== undefined && previous.config.digest === manifest.config.digest;
      record = {
        name,
        target: strip(target),
        manifest: strip(manifestDesc),
        config: strip(manifest.config),
        layers,
        platform,
        size,
        pulledAt: sameImage ? previous.pulledAt : new Date(store.now()).toISOString(),
        lastUsed: sameImage ? previous.lastUsed : null,
        pinned: options.pin ?? previous?.pinned ?? false,
      };
      records.set(name, record);
    });
    crashPoint("pull-after-record");
    const final = record as unknown as ImageRecord;
    return {
      name,
      target: final.target,
      manifest: final.manifest,
      id: final.config.digest,
      platform,
      size,
      fetched: count(
        blobs.filter((b) => b.status === "fetched"),
        (b) => b.fetchedBytes,
      ),
      reused: count(
        blobs.filter((b) => b.status !== "fetched"),
        (b) => b.size,
      ),
      resumed: count(
        blobs.filter((b) => b.resumedFrom > 0),
        (b) => b.resumedFrom,
      ),
      blobs,
      record: final,
    };
  } catch (error) {
    if (signal?.aborted && !(error instanceof StoreError && error.code === "ABORTED")) {
      throw abortError(signal, `pull ${name}`);
    }
    throw error;
  } finally {
    await lease?.release();
  }
}

/** A manifest or index: from the store when present (verified on read), else from the registry, stored. */
async function manifestBytes(
  store: Store,
  repo: Pick<Repository, "manifestByDescriptor">,
  desc: Descriptor,
  kind: BlobKind,
  options: PullOptions,
): Promise<{ bytes: Buffer; pulled: PulledBlob }> {
  if (await store.content.has(desc)) {
    try {
      const bytes = await store.content.read(desc.digest, desc.size);
      return {
        bytes,
        pulled: {
          kind,
          digest: desc.digest,
          size: desc.size,
          status: "present",
          fetchedBytes: 0,
          resumedFrom: 0,
        },
      };
    } catch (error) {
      if (!(error instanceof StoreError && error.code === "CORRUPT")) throw error;
      // A corrupt stored manifest is fetched again below; the commit replaces it.
      await store.content.delete(desc.digest);
    }
  }
  // Fetched under the blob's lock, like any blob: processes pulling one image at once make one GET per
  // manifest between them, and one that waited reads what the other committed.
  const got: { bytes: Buffer | null } = { bytes: null };
  const result = await store.content.ingest(
    desc,
    async function* (offset) {
      const fetched = await repo.manifestByDescriptor(desc, options.signal ? { signal: options.signal } : {});
      got.bytes = fetched.bytes;
      yield fetched.bytes.subarray(offset);
    },
    {
      signal: options.signal,
      lockStaleMs: store.lockStaleMs,
      onProgress: options.onProgress ? (p) => options.onProgress?.({ ...p, kind }) : undefined,
    },
  );
  if (got.bytes === null) {
    return { bytes: await store.content.read(desc.digest, desc.size), pulled: toPulled(kind, result) };
  }
  // The bytes came over the network even if the commit found a partial ingest to resume.
  const pulled: PulledBlob = { ...toPulled(kind, result), status: "fetched", fetchedBytes: got.bytes.length };
  return { bytes: got.bytes, pulled };
}

async function configPlatform(store: Store, config: BlobDescriptor): Promise<Platform | null> {
  try {
    const json = JSON.parse((await store.content.read(config.digest, config.size)).toString("utf8")) as {
      os?: unknown;
      architecture?: unknown;
      variant?: unknown;
    };
    if (typeof json.os !== "string" || typeof json.architecture !== "string") return null;
    return {
      os: json.os,
      architecture: json.architecture,
      ...(typeof json.variant === "string" && json.variant !== "" ? { variant: json.variant } : {}),
    };
  } catch {
    return null; // an opaque or non-JSON config (artifacts): no platform
  }
}

function toPulled(kind: BlobKind, r: IngestResult): PulledBlob {
  return {
    kind,
    digest: r.digest,
    size: r.size,
    status: r.status,
    fetchedBytes: r.fetchedBytes,
    resumedFrom: r.resumedFrom,
  };
}

function dedupe<T extends { desc: Descriptor }>(items: readonly T[]): T[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    if (seen.has(i.desc.digest)) return false;
    seen.add(i.desc.digest);
    return true;
  });
}

function count<T>(items: readonly T[], bytes: (t: T) => number): ByteCount {
  return { blobs: items.length, bytes: items.reduce((n, t) => n + bytes(t), 0) };
}

/** Runs `fn` over items with at most `limit` in flight; results in input order; the first error wins after
 * the others settle (so no ingest is left running behind the caller's back). */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    while (failure === null && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
  return results;
}
