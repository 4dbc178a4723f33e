// The content store: verified blobs at `blobs/sha256/HEX`, written the way containerd's local content store
// writes them. One writer per digest across all processes (a lock file per blob); the writer appends to
// `kpull/ingest/sha256-HEX`, hashing every byte it writes, then checks the size, then the digest, fsyncs the
// file, renames it into `blobs/` and fsyncs the directory. A blob is therefore visible only when it is complete
// and verified. A partial ingest left by a crash or a dropped connection is resumed: its bytes are hashed
// again and the source is asked for the rest from that offset (a registry answers with a Range request).

import { createHash, type Hash } from "node:crypto";
import { createReadStream, promises as fs, type ReadStream } from "node:fs";
import { join } from "node:path";
import { crashPoint } from "./crash.ts";
import { abortError, fsError, StoreError } from "./errors.ts";
import { fsyncDir } from "./fsutil.ts";
import { blobLockPath, blobPath, digestHex, ingestPath, isSha256Hex, type StorePaths } from "./layout.ts";
import { acquireLock, lockStatus } from "./lock.ts";

/** The unit that flows between registry and store (a subset of the OCI descriptor). */
export interface BlobDescriptor {
  readonly mediaType?: string;
  readonly digest: string;
  readonly size: number;
}

/**
 * Where the bytes of a blob come from. Called with the number of bytes the store already holds (a partial
 * ingest) and a hash already fed with those bytes, which a verifying source may continue (the registry
 * client's `blob(desc, {offset, hash})`). It yields the remaining bytes in order.
 */
export type BlobSource = (offset: number, hash: Hash) => AsyncIterable<Uint8Array>;

export type IngestStatus =
  /** Already in the store before this call. */
  | "present"
  /** Another writer (this process or another) committed it while this call waited for the blob's lock. */
  | "waited"
  /** This call fetched it (possibly resuming a partial ingest). */
  | "fetched";

export interface IngestResult {
  readonly digest: string;
  readonly size: number;
  readonly status: IngestStatus;
  /** Bytes this call received from the source. */
  readonly fetchedBytes: number;
  /** Bytes of a partial ingest that were reused (0 when the ingest started from scratch). */
  readonly resumedFrom: number;
}

export interface IngestProgress {
  readonly digest: string;
  readonly phase: "waiting" | "resuming" | "downloading" | "verifying" | "committed" | "exists";
  readonly completed: number;
  readonly total: number;
}

export interface IngestOptions {
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((p: IngestProgress) => void) | undefined;
  /** Lock staleness for holders whose liveness cannot be checked (see lock.ts). */
  readonly lockStaleMs?: number | undefined;
}

export interface IngestInfo {
  readonly digest: string;
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** A live writer holds its lock. */
  readonly active: boolean;
}

export class ContentStore {
  readonly paths: StorePaths;

  constructor(paths: StorePaths) {
    this.paths = paths;
  }

  blobPath(digest: string): string {
    return blobPath(this.paths, digest);
  }

  /** Size of the stored blob, or null when absent. Never reports partial content. */
  async size(digest: string): Promise<number | null> {
    try {
      const st = await fs.stat(this.blobPath(digest));
      return st.isFile() ? st.size : null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw fsError(error, `stat blob ${digest}`);
    }
  }

  /** Whether the blob is present with the descriptor's size (a wrong size is corrupt, so not present). */
  async has(desc: BlobDescriptor): Promise<boolean> {
    return (await this.size(desc.digest)) === desc.size;
  }

  /** Reads a whole (small) blob and verifies it against its digest (and `size`, when given). */
  async read(digest: string, size?: number): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(this.blobPath(digest));
    } catch (error) {
      throw fsError(error, `blob ${digest}`);
    }
    const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if ((size !== undefined && bytes.length !== size) || actual !== digest) {
      throw new StoreError("CORRUPT", `blob ${digest} is corrupt: its content hashes to ${actual}`, {
        subject: digest,
      });
    }
    return bytes;
  }

  /** A stream of a stored blob (not re-verified; `verify` and the unpacker's DiffID check do that). */
  open(digest: string, options: { start?: number; end?: number } = {}): ReadStream {
    const stream = createReadStream(this.blobPath(digest), options);
    // The file is opened in the background: a blob removed meanwhile errors the stream before its reader
    // may be listening, which would crash the process. The reader still gets the error (reading an errored
    // stream throws it).
    stream.on("error", () => {});
    return stream;
  }

  /** Stores bytes already in memory (manifests, indexes) with the same discipline as any other blob. */
  async put(desc: BlobDescriptor, bytes: Uint8Array, options: IngestOptions = {}): Promise<IngestResult> {
    return this.ingest(
      desc,
      async function* (offset) {
        yield bytes.subarray(offset);
      },
      options,
    );
  }

  /**
   * Makes `desc` present: reuses it if stored, waits if another writer holds its lock (and reuses what that
   * writer committed), else fetches it from `source`, resuming a partial ingest, and commits it verified.
   */
  async ingest(desc: BlobDescriptor, source: BlobSource, options: IngestOptions = {}): Promise<IngestResult> {
    const hex = digestHex(desc.digest);
    if (!Number.isSafeInteger(desc.size) || desc.size < 0) {
      throw new StoreError("INVALID", `blob ${desc.digest}: bad size ${desc.size}`, { subject: desc.digest });
    }
    const progress = (phase: IngestProgress["phase"], completed: number) =>
      options.onProgress?.({ digest: desc.digest, phase, completed, total: desc.size });
    if (await this.has(desc)) {
      progress("exists", desc.size);
      return { digest: desc.digest, size: desc.size, status: "present", fetchedBytes: 0, resumedFrom: 0 };
    }
    let waited = false;
    const lock = await acquireLock(blobLockPath(this.paths, desc.digest), {
      purpose: `ingest ${desc.digest}`,
      signal: options.signal,
      staleMs: options.lockStaleMs,
      onWait: () => {
        waited = true;
        progress("waiting", 0);
      },
    });
    try {
      crashPoint("ingest-locked");
      if (await this.has(desc)) {
        progress("exists", desc.size);
        return {
          digest: desc.digest,
          size: desc.size,
          status: waited ? "waited" : "present",
          fetchedBytes: 0,
          resumedFrom: 0,
        };
      }
      try {
        return await this.#write(desc, hex, source, options, progress, true);
      } catch (error) {
        // A partial ingest that does not continue into the right content (left by a buggy or malicious
        // source, or damaged on disk) is thrown away and the blob fetched once more from the start.
        if (error instanceof RestartIngest)
          return await this.#write(desc, hex, source, options, progress, false);
        throw error;
      }
    } finally {
      await lock.release();
    }
  }

  async #write(
    desc: BlobDescriptor,
    hex: string,
    source: BlobSource,
    options: IngestOptions,
    progress: (phase: IngestProgress["phase"], completed: number) => void,
    mayResume: boolean,
  ): Promise<IngestResult> {
    const partial = ingestPath(this.paths, desc.digest);
    const what = `blob ${desc.digest}`;
    let offset = 0;
    const hash = createHash("sha256");
    let handle: fs.FileHandle;
    try {
      // The directories exist in every store (initLayout): each is made again only when a call finds it
      // missing, rather than with a mkdir (two calls through the thread pool) for every blob.
      handle = await fs.open(partial, "a+", 0o644).catch(async (error) => {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        await fs.mkdir(this.paths.ingest, { recursive: true });
        return fs.open(partial, "a+", 0o644);
      });
    } catch (error) {
      throw fsError(error, `${what}: open ingest`);
    }
    let fetched = 0;
    let resumedFrom = 0;
    let closed = false;
    let discard = false;
    let appender: Appender | null = null;
    try {
      const st = await handle.stat();
      if (!mayResume || st.size > desc.size) {
        await handle.truncate(0);
      } else if (st.size > 0) {
        resumedFrom = st.size;
        progress("resuming", st.size);
        await hashFile(handle, st.size, hash, options.signal, what);
        offset = st.size;
        crashPoint("ingest-resumed");
      }
      if (offset < desc.size) {
        // The source continues a copy of our hash, so its verification and ours are independent.
        const stream = source(offset, hash.copy());
        appender = new Appender(handle);
        try {
          for await (const chunk of stream) {
            if (options.signal?.aborted) throw abortError(options.signal, what);
            if (chunk.length === 0) continue;
            if (offset + chunk.length > desc.size) {
              discard = true;
              throw new StoreError(
                "MISMATCH",
                `${what}: the source sent more than the ${desc.size} bytes the descriptor says`,
                { subject: desc.digest },
              );
            }
            hash.update(chunk);
            await appender.push(chunk);
            offset += chunk.length;
            fetched += chunk.length;
            progress("downloading", offset);
            crashPoint("ingest-write");
          }
          await appender.flush();
        } catch (error) {
          if (resumedFrom > 0 && isDigestMismatch(error)) throw new RestartIngest();
          throw error;
        }
      }
      // Size first, for a precise error (containerd#3974): a short body is a transport failure to resume.
      if (offset !== desc.size) {
        throw new StoreError(
          "MISMATCH",
          `${what}: ${offset} of ${desc.size} bytes arrived; the partial download is kept for resuming`,
          { subject: desc.digest },
        );
      }
      progress("verifying", offset);
      const actual = `sha256:${hash.digest("hex")}`;
      if (actual !== desc.digest) {
        discard = true;
        if (resumedFrom > 0) throw new RestartIngest();
        throw new StoreError("MISMATCH", `${what}: content has digest ${actual}`, { subject: desc.digest });
      }
      crashPoint("ingest-verified");
      await handle.sync();
      await handle.close();
      closed = true;
      crashPoint("ingest-before-rename");
      await fs.rename(partial, join(this.paths.blobs, hex)).catch(async (error) => {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        await fs.mkdir(this.paths.blobs, { recursive: true });
        await fs.rename(partial, join(this.paths.blobs, hex));
      });
      crashPoint("ingest-after-rename");
      await fsyncDir(this.paths.blobs);
      crashPoint("ingest-committed");
    } catch (error) {
      // Out of space: the partial cannot grow, and kept it would hold the space every other pull (and the
      // lease and record writes) need until GC drops it a day later. It goes; the next try starts afresh.
      const errno = (error as NodeJS.ErrnoException)?.code;
      if (errno === "ENOSPC" || errno === "EDQUOT") discard = true;
      if (error instanceof RestartIngest || error instanceof StoreError) throw error;
      if (options.signal?.aborted) throw abortError(options.signal, what);
      // Registry errors and the like pass through untouched (their codes mean something to the kubelet);
      // filesystem errors become StoreErrors.
      if ((error as NodeJS.ErrnoException)?.syscall !== undefined) throw fsError(error, what);
      throw error;
    } finally {
      // What arrived before a failure stays in the partial ingest, for the next pull to resume from; a
      // source that failed before its first byte (a manifest the registry does not have) leaves nothing.
      if (!closed && resumedFrom === 0 && fetched === 0) discard = true;
      if (!closed && !discard) await appender?.flush().catch(() => {});
      if (!closed) await handle.close().catch(() => {});
      if (discard) await fs.rm(partial, { force: true }).catch(() => {});
    }
    progress("committed", desc.size);
    return { digest: desc.digest, size: desc.size, status: "fetched", fetchedBytes: fetched, resumedFrom };
  }

  /** Removes a blob (GC, `verify --repair`, `rmi`'s sweep). Returns the bytes freed; 0 when absent. */
  async delete(digest: string): Promise<number> {
    const path = this.blobPath(digest);
    try {
      const st = await fs.stat(path);
      await fs.rm(path, { force: true });
      return st.size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw fsError(error, `delete blob ${digest}`);
    }
  }

  /** Every file name under blobs/sha256 (valid digests and anything else that does not belong there). */
  async list(): Promise<{ digest: string | null; name: string; size: number; isFile: boolean }[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.paths.blobs);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw fsError(error, `list ${this.paths.blobs}`);
    }
    const out: { digest: string | null; name: string; size: number; isFile: boolean }[] = [];
    for (const name of names.sort()) {
      const st = await fs.lstat(join(this.paths.blobs, name)).catch(() => null);
      if (st === null) continue; // removed meanwhile
      out.push({
        digest: isSha256Hex(name) ? `sha256:${name}` : null,
        name,
        size: st.size,
        isFile: st.isFile(),
      });
    }
    return out;
  }

  /** Partial ingests, and whether a live writer is working on each. */
  async ingests(): Promise<IngestInfo[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.paths.ingest);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw fsError(error, `list ${this.paths.ingest}`);
    }
    const out: IngestInfo[] = [];
    for (const name of names.sort()) {
      const m = /^sha256-([a-f0-9]{64})$/.exec(name);
      if (m === null) continue;
      const digest = `sha256:${m[1]}`;
      const path = join(this.paths.ingest, name);
      const st = await fs.stat(path).catch(() => null);
      if (st === null) continue;
      const lock = await lockStatus(blobLockPath(this.paths, digest));
      out.push({ digest, path, size: st.size, mtimeMs: st.mtimeMs, active: lock !== null && !lock.stale });
    }
    return out;
  }
}

class RestartIngest extends Error {
  constructor() {
    super("partial ingest does not match; restarting");
  }
}

function isDigestMismatch(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === "DIGEST_MISMATCH" || code === "MISMATCH";
}

/** Bytes gathered before a write: 64 KiB network chunks become one writev of about 1 MiB. */
const APPEND_BATCH = 1 << 20;

/** Bytes written between two early write-backs (fdatasync while the download continues). */
const WRITEBACK_EVERY = 16 << 20;

/** Bytes between two young-generation collections (see `reclaimer`). */
const RECLAIM_EVERY = 8 << 20;

let minorGc: (() => void) | null | undefined;
let sinceReclaim = 0;

/**
 * A young-generation GC, when the runtime lets us have one. Every network or file read arrives in a fresh
 * 64 KiB buffer; V8 frees that memory only when a GC finds the buffer dead, and external memory alone starts
 * one only every ~64 MB, so a 400 MB download peaked at 150-170 MB RSS (a bare Node http download too). A
 * scavenge every 8 MiB costs well under a millisecond and keeps the peak near 100 MB. Node gives `gc` only
 * behind --expose-gc; the flag is turned on just long enough to take the function from a fresh context.
 */
function reclaimer(): (() => void) | null {
  if (minorGc !== undefined) return minorGc;
  minorGc = null;
  try {
    const v8 = process.getBuiltinModule("node:v8") as typeof import("node:v8");
    const vm = process.getBuiltinModule("node:vm") as typeof import("node:vm");
    const exposed = typeof (globalThis as { gc?: unknown }).gc === "function";
    if (!exposed) v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as (options: { type: "minor"; execution: "sync" }) => void;
    if (!exposed) v8.setFlagsFromString("--no-expose-gc");
    if (typeof gc === "function") minorGc = () => gc({ type: "minor", execution: "sync" });
  } catch {
    // no gc: memory is reclaimed by V8's own schedule
  }
  return minorGc;
}

/**
 * Appends chunks to the ingest file in batches, one write in flight while the next batch gathers, so the
 * network keeps streaming while the disk writes (awaiting a write per 64 KiB chunk stalled both: a
 * thread-pool round trip per chunk). Writes stay in order (the file is opened for appending); memory is
 * bounded by two batches; `flush` resolves when every pushed byte is written, or rejects with the error.
 */
class Appender {
  readonly #handle: fs.FileHandle;
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #inflight: Promise<void> | null = null;
  #failure: { error: unknown } | null = null;
  #sinceSync = 0;
  #syncing: Promise<void> | null = null;

  constructor(handle: fs.FileHandle) {
    this.#handle = handle;
  }

  async push(chunk: Uint8Array): Promise<void> {
    if (this.#failure !== null) throw this.#failure.error;
    this.#batch.push(chunk);
    this.#batchBytes += chunk.length;
    // Counted across all ingests of the process: three layers arriving at once allocate three times as fast.
    sinceReclaim += chunk.length;
    if (sinceReclaim >= RECLAIM_EVERY) {
      sinceReclaim = 0;
      reclaimer()?.();
    }
    if (this.#batchBytes >= APPEND_BATCH) await this.#startWrite();
  }

  async flush(): Promise<void> {
    if (this.#batchBytes > 0) await this.#startWrite();
    await this.#inflight;
    await this.#syncing;
    if (this.#failure !== null) throw this.#failure.error;
  }

  async #startWrite(): Promise<void> {
    await this.#inflight;
    if (this.#failure !== null) throw this.#failure.error;
    const batch = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    const bytes = batch.reduce((n, c) => n + c.length, 0);
    this.#inflight = writevAll(this.#handle, batch).then(
      () => {
        this.#inflight = null;
        this.#sinceSync += bytes;
        if (this.#sinceSync >= WRITEBACK_EVERY && this.#syncing === null) {
          // Start writing back what is written so far while the download goes on, so the fsync before the
          // commit has only the tail left to flush (the kernel would start only at 10% of RAM dirty).
          // Its errors are the commit fsync's to report.
          this.#sinceSync = 0;
          this.#syncing = this.#handle.datasync().then(
            () => {
              this.#syncing = null;
            },
            () => {
              this.#syncing = null;
            },
          );
        }
      },
      (error: unknown) => {
        this.#inflight = null;
        this.#failure = { error };
      },
    );
  }
}

async function writevAll(handle: fs.FileHandle, chunks: Uint8Array[]): Promise<void> {
  let rest = chunks;
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest);
    // A short write (rare on a regular file): continue from where it stopped.
    const next: Uint8Array[] = [];
    for (const c of rest) {
      if (bytesWritten >= c.length) bytesWritten -= c.length;
      else {
        next.push(bytesWritten > 0 ? c.subarray(bytesWritten) : c);
        bytesWritten = 0;
      }
    }
    rest = next;
  }
}

/** Feeds the first `length` bytes of an open file into `hash`, streaming in 1 MiB reads. */
async function hashFile(
  handle: fs.FileHandle,
  length: number,
  hash: Hash,
  signal: AbortSignal | undefined,
  what: string,
): Promise<void> {
  const buffer = Buffer.allocUnsafe(Math.min(length, 1 << 20));
  let position = 0;
  while (position < length) {
    if (signal?.aborted) throw abortError(signal, what);
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - position), position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}
