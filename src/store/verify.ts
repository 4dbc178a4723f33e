// `kpull verify`: re-hash every blob and check every record against the content.
//  - corrupt: a blob whose bytes do not hash to its name, or whose size differs from what a record's
//    descriptor says; anything in blobs/sha256 that is not a regular file named by 64 hex digits;
//  - missing: a blob an image record (or an index.json entry's manifest) needs that is not there;
//  - orphaned: blobs nothing references (harmless; `kpull gc` sweeps them) — reported, not damage;
//  - partial ingests, dead leases, index.json lagging behind the records — reported, not damage.
// `repair` removes what is corrupt (so the next pull fetches it again), dead leases and stray files, and
// rewrites index.json from the records. The store is "clean" when nothing is corrupt or missing and the
// records and index.json parse.

import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import { join } from "node:path";
import { StoreError } from "./errors.ts";
import { markLive } from "./gc.ts";
import { blobLockPath } from "./layout.ts";
import { leaseActive, listLeases } from "./leases.ts";
import { acquireLock } from "./lock.ts";
import { mapLimit } from "./pull.ts";
import {
  type ImageRecord,
  indexText,
  type OciIndex,
  projectIndex,
  readIndex,
  readRecords,
  recordDigests,
  writeIndexProjection,
} from "./records.ts";
import type { Store } from "./store.ts";

export interface VerifyOptions {
  readonly repair?: boolean;
  readonly signal?: AbortSignal | undefined;
  /** Blobs hashed at once (default 2: one per core on a small node). */
  readonly concurrency?: number;
  readonly onProgress?: ((p: { readonly checked: number; readonly total: number }) => void) | undefined;
}

export interface CorruptBlob {
  /** The digest its name claims; null for a name that is not a digest. */
  readonly digest: string | null;
  readonly path: string;
  readonly reason: string;
  readonly repaired: boolean;
}

export interface MissingBlob {
  readonly digest: string;
  /** The image (record name) or index.json entry that needs it. */
  readonly image: string;
  readonly kind: "target" | "manifest" | "config" | "layer" | "index.json entry";
}

export interface VerifyReport {
  readonly root: string;
  readonly blobs: number;
  readonly bytes: number;
  readonly images: number;
  readonly corrupt: readonly CorruptBlob[];
  readonly missing: readonly MissingBlob[];
  readonly orphaned: readonly { readonly digest: string; readonly size: number }[];
  readonly ingests: readonly { readonly digest: string; readonly size: number; readonly active: boolean }[];
  /** Files that could not be read as what they should be (images.json, index.json). */
  readonly problems: readonly { readonly path: string; readonly message: string }[];
  readonly indexOutOfDate: boolean;
  readonly deadLeases: readonly string[];
  readonly repaired: boolean;
  /** Nothing corrupt or missing, records and index readable. */
  readonly clean: boolean;
}

export async function verifyStore(store: Store, options: VerifyOptions = {}): Promise<VerifyReport> {
  const repair = options.repair ?? false;
  const problems: { path: string; message: string }[] = [];
  let records = new Map<string, ImageRecord>();
  let index: OciIndex | null = null;
  try {
    records = await readRecords(store.paths);
  } catch (error) {
    problems.push({ path: store.paths.imagesJson, message: (error as Error).message });
  }
  try {
    index = await readIndex(store.paths);
  } catch (error) {
    problems.push({ path: store.paths.indexJson, message: (error as Error).message });
  }

  // Expected sizes from every record's descriptors.
  const expected = new Map<string, number>();
  for (const r of records.values()) for (const d of recordDigests(r)) expected.set(d.digest, d.size);
  for (const d of index?.manifests ?? []) if (typeof d?.digest === "string") expected.set(d.digest, d.size);

  const listed = await store.content.list();
  const corrupt: CorruptBlob[] = [];
  let checked = 0;
  let bytes = 0;
  const valid = listed.filter((b) => {
    if (b.digest !== null && b.isFile) return true;
    corrupt.push({
      digest: null,
      path: join(store.paths.blobs, b.name),
      reason: b.isFile ? "not named by a sha256 digest" : "not a regular file",
      repaired: false,
    });
    return false;
  });
  const hashed = await mapLimit(valid, options.concurrency ?? 2, async (b) => {
    if (options.signal?.aborted) throw new StoreError("ABORTED", "verify aborted");
    const digest = b.digest as string;
    const actual = await hashBlob(store.content.blobPath(digest));
    options.onProgress?.({ checked: ++checked, total: valid.length });
    if (actual === null) return null; // removed while we looked (GC): not our finding
    bytes += actual.size;
    const want = expected.get(digest);
    if (actual.digest !== digest) return { b, reason: `content hashes to ${actual.digest}` };
    if (want !== undefined && want !== actual.size)
      return { b, reason: `${actual.size} bytes, but its descriptor says ${want}` };
    return null;
  });
  for (const bad of hashed) {
    if (bad === null) continue;
    corrupt.push({
      digest: bad.b.digest,
      path: store.content.blobPath(bad.b.digest as string),
      reason: bad.reason,
      repaired: false,
    });
  }

  if (repair) {
    for (let i = 0; i < corrupt.length; i++) {
      const c = corrupt[i] as CorruptBlob;
      if (c.digest === null) {
        await fs.rm(c.path, { recursive: true, force: true });
      } else {
        // Under the blob's lock, and only if it is still bad: a writer may have just replaced it.
        const lock = await acquireLock(blobLockPath(store.paths, c.digest), {
          purpose: "verify --repair",
          signal: options.signal,
        });
        try {
          const again = await hashBlob(c.path);
          const want = expected.get(c.digest);
          if (again !== null && (again.digest !== c.digest || (want !== undefined && want !== again.size))) {
            await fs.rm(c.path, { force: true });
          }
        } finally {
          await lock.release();
        }
      }
      corrupt[i] = { ...c, repaired: true };
    }
  }

  const present = new Set<string>();
  // A corrupt blob is reported as corrupt, not also as missing, until repair removes it.
  for (const b of valid) {
    if (!corrupt.some((c) => c.digest === b.digest && c.repaired)) present.add(b.digest as string);
  }
  const missing: MissingBlob[] = [];
  for (const r of records.values()) {
    const kinds: [MissingBlob["kind"], { digest: string }[]][] = [
      ["target", [r.target]],
      ["manifest", [r.manifest]],
      ["config", [r.config]],
      ["layer", [...r.layers]],
    ];
    const seen = new Set<string>();
    for (const [kind, ds] of kinds) {
      for (const d of ds) {
        if (seen.has(d.digest)) continue;
        seen.add(d.digest);
        if (!present.has(d.digest)) missing.push({ digest: d.digest, image: r.name, kind });
      }
    }
  }
  for (const d of index?.manifests ?? []) {
    if (typeof d?.digest !== "string" || present.has(d.digest)) continue;
    if (missing.some((m) => m.digest === d.digest)) continue;
    const name =
      d.annotations?.["io.containerd.image.name"] ?? d.annotations?.["org.opencontainers.image.ref.name"];
    missing.push({ digest: d.digest, image: name ?? "(unnamed)", kind: "index.json entry" });
  }

  const { leases, damaged } = await listLeases(store.paths);
  const now = store.now();
  const active = leases.filter((l) => leaseActive(l, now));
  const deadLeases = [...leases.filter((l) => !active.includes(l)).map((l) => l.id), ...damaged];
  const live = await markLive(store, { records: records.values(), index, leases: active });
  const orphaned = valid
    .filter((b) => present.has(b.digest as string) && !live.has(b.digest as string))
    .map((b) => ({ digest: b.digest as string, size: b.size }));
  const ingests = (await store.content.ingests()).map((i) => ({
    digest: i.digest,
    size: i.size,
    active: i.active,
  }));

  const indexOutOfDate =
    index !== null && problems.length === 0 && indexText(projectIndex(index, records)) !== indexText(index);
  if (repair) {
    await store.withMetaLock(async () => {
      for (const id of deadLeases) await fs.rm(join(store.paths.leases, `${id}.json`), { force: true });
      // Rewrite index.json from the records when it lags or is unreadable (records are the truth).
      const recordsOk = !problems.some((p) => p.path === store.paths.imagesJson);
      if (recordsOk && (indexOutOfDate || index === null)) {
        await writeIndexProjection(store.paths, await readRecords(store.paths));
      }
    });
  }

  return {
    root: store.root,
    blobs: valid.length,
    bytes,
    images: records.size,
    corrupt,
    missing,
    orphaned,
    ingests,
    problems,
    indexOutOfDate,
    deadLeases,
    repaired: repair,
    clean: corrupt.length === 0 && missing.length === 0 && problems.length === 0,
  };
}

/** sha256 and size of a file, streamed; null when it does not exist. */
async function hashBlob(path: string): Promise<{ digest: string; size: number } | null> {
  const hash = createHash("sha256");
  let size = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}
