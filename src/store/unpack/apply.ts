// Applying one layer onto a directory (spec oci.md §7): whiteouts and opaque directories, every entry type,
// attributes, root-scoped path resolution, and the guards of §7.2.

import { execFile } from "node:child_process";
import * as fs from "node:fs";
import { realpath, statfs } from "node:fs/promises";
import { resolve } from "node:path";
import { crashPoint } from "../crash.ts";
import {
  asUtf8,
  type BPath,
  chmod,
  createExclusive,
  createExclusiveAsync,
  errno,
  fromUtf8,
  join,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readlink,
  removeTree,
  symlink,
  writeAt,
  writeAtSync,
} from "./bfs.ts";
import { parseDigest } from "./chain.ts";
import { UnpackError, type UnpackWarning, type UnpackWarningKind } from "./errors.ts";
import type { Compression } from "./mediatype.ts";
import { type StreamStats, uncompressed } from "./stream.ts";
import { ByteSource, show, type TarEntry, TarReader } from "./tar.ts";

export interface ApplyOptions {
  /** Refuse a layer whose uncompressed stream exceeds this many bytes. Default 32 GiB. */
  maxUncompressedBytes?: number;
  /**
   * Refuse a compressed layer that expands more than this many times (checked once 64 MiB are out).
   * Default 500; gzip cannot exceed ~1030, so only runs of zeros (bombs, sparse files) reach it.
   */
  maxRatio?: number;
  /** Refuse a layer with more tar entries than this. Default 1,000,000. */
  maxEntries?: number;
  /** Refuse an entry whose name or link target is longer than this many bytes. Default 4096 (PATH_MAX). */
  maxPathLength?: number;
  /**
   * Apply ownership (lchown) and create device nodes. Default: the process is root. When false (rootless):
   * ownership is not applied, setuid/setgid are dropped unless the file already has its intended owner,
   * devices become empty files, owner permission bits are added where needed so an unprivileged store can
   * read, copy and remove the tree, and extended attributes are skipped; each is reported as a warning.
   */
  sameOwner?: boolean;
  /** Called for each warning as it happens. */
  onWarning?(w: UnpackWarning): void;
  signal?: AbortSignal;
}

export interface ApplyResult {
  /** The verified uncompressed digest (equal to the expected DiffID). */
  diffId: string;
  /** Uncompressed bytes read (the whole tar stream, trailing data included). */
  bytes: number;
  /** Tar entries applied or skipped (metadata headers not counted). */
  entries: number;
  /** The compression actually found (sniffed when "unknown" was given). */
  compression: Compression;
  /** The first MAX_KEPT_WARNINGS warnings; onWarning sees every one. */
  warnings: UnpackWarning[];
  /** Warnings beyond those kept in `warnings`. */
  suppressedWarnings: number;
}

export const DEFAULT_LIMITS = {
  maxUncompressedBytes: 32 * 1024 ** 3,
  maxRatio: 500,
  maxEntries: 1_000_000,
  maxPathLength: 4096,
} as const;

const MAX_KEPT_WARNINGS = 1000;
/** Longest stretch of synchronous work (metadata syscalls, hashing) before the event loop gets a turn. */
const YIELD_EVERY_MS = 5;
/** Files up to this size are written in one piece from memory (created a few at a time, see Applier). */
const SYNC_WRITE_MAX = 256 * 1024;
/**
 * Small files being created at once. Creating a file costs the kernel far more than writing a small one
 * (0.5 ms of system time per create on the ext4 the bench ran on: 1.4 of the 2 s of a 2,750-file image), so
 * creates run on the threadpool, several at a time, while the main thread parses the next entries.
 */
const CREATES_IN_FLIGHT = 8;
/** Bytes of one file's writes kept in flight. */
const WRITE_AHEAD = 8 * 1024 * 1024;
/** Symlinks followed while resolving one path (Linux's MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * Applies one layer stream (compressed as given, or sniffed when "unknown") onto directory `root`, which
 * holds the lower layers' result, verifying that the uncompressed digest equals `expectedDiffId`.
 *
 * On failure `root` is left part-applied: apply into a scratch copy (prepareSnapshot does) and discard it.
 * Nothing is ever written outside `root`.
 */
export async function applyLayer(
  root: string,
  layer: NodeJS.ReadableStream,
  compression: Compression | "unknown",
  expectedDiffId: string,
  options: ApplyOptions = {},
): Promise<ApplyResult> {
  let settled = false;
  try {
    const result = await apply(root, layer, compression, expectedDiffId, options);
    settled = true;
    return result;
  } finally {
    // A refused or failed layer stops its source too (a file descriptor, a socket).
    if (!settled) (layer as Partial<NodeJS.ReadableStream & { destroy(): void }>).destroy?.();
  }
}

async function apply(
  root: string,
  layer: NodeJS.ReadableStream,
  compression: Compression | "unknown",
  expectedDiffId: string,
  options: ApplyOptions,
): Promise<ApplyResult> {
  const { algorithm } = parseDigest(expectedDiffId);
  const limits = {
    maxUncompressedBytes: positive(options.maxUncompressedBytes, "maxUncompressedBytes"),
    maxRatio: positive(options.maxRatio, "maxRatio"),
    maxEntries: positive(options.maxEntries, "maxEntries"),
    maxPathLength: positive(options.maxPathLength, "maxPathLength"),
  };
  const rootPath = await realpath(resolve(root));
  const rootStat = lstat(fromUtf8(rootPath));
  if (!rootStat?.isDirectory()) throw new TypeError(`applyLayer: ${root} is not a directory`);
  const fsStat = await statfs(rootPath).catch(() => null);
  const freeBytes = fsStat ? fsStat.bavail * fsStat.bsize : Number.POSITIVE_INFINITY;

  const applier = new Applier(fromUtf8(rootPath), limits, options);
  const stats: { value?: StreamStats } = {};
  const bytes = uncompressed(
    layer,
    compression,
    algorithm,
    { maxUncompressedBytes: limits.maxUncompressedBytes, maxRatio: limits.maxRatio, freeBytes },
    stats,
    options.signal,
  );
  const source = new ByteSource(bytes);
  const reader = new TarReader(source);
  try {
    options.signal?.throwIfAborted();
    let lastYield = performance.now();
    for (let entry = await reader.next(); entry !== null; entry = await reader.next()) {
      options.signal?.throwIfAborted();
      await applier.apply(entry, reader);
      crashPoint("unpack-entry");
      // Entries already buffered are applied in microtasks; give the event loop a turn now and then.
      if (performance.now() - lastYield > YIELD_EVERY_MS) {
        await new Promise((done) => setImmediate(done));
        lastYield = performance.now();
      }
    }
    await source.drain(); // trailing data after the end-of-archive marker still counts for the DiffID
    await applier.settle();
    applier.finish();
  } catch (e) {
    // an abort surfaces as its reason (any Error) or whatever the stream made of it: call it what it is
    if (options.signal?.aborted && !(e instanceof UnpackError && e.reason !== "io")) {
      throw new UnpackError("aborted", "layer apply aborted", { cause: e });
    }
    throw asUnpackError(e);
  } finally {
    await applier.drain(); // no create may outlive the apply: the caller removes a failed tree next
    await bytes.return(undefined);
  }
  const st = stats.value;
  if (st === undefined) throw new Error("unreachable: stream statistics missing");
  const diffId = `${algorithm}:${st.hash.digest("hex")}`;
  if (diffId !== expectedDiffId) {
    throw new UnpackError(
      "diffid-mismatch",
      `wrong diff id ${diffId} calculated on extraction, expected ${expectedDiffId}`,
    );
  }
  return {
    diffId,
    bytes: st.uncompressed,
    entries: applier.entries,
    compression: st.compression,
    warnings: applier.warnings,
    suppressedWarnings: applier.suppressedWarnings,
  };
}

function positive(v: number | undefined, name: keyof typeof DEFAULT_LIMITS): number {
  if (v === undefined) return DEFAULT_LIMITS[name];
  if (!(typeof v === "number" && v > 0)) throw new TypeError(`applyLayer: ${name} must be a positive number`);
  return v;
}

function asUnpackError(e: unknown): unknown {
  if (e instanceof UnpackError) return e;
  if ((e as Error | null)?.name === "AbortError") {
    return new UnpackError("aborted", "layer apply aborted", { cause: e });
  }
  const code = errno(e);
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new UnpackError("no-space", `layer apply ran out of space: ${(e as Error).message}`, { cause: e });
  }
  if (code === "ENAMETOOLONG") {
    return new UnpackError("bad-archive", `invalid tar archive: name too long: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (code !== undefined && /^E[A-Z]+$/.test(code)) {
    return new UnpackError("io", `layer apply failed: ${(e as Error).message}`, { cause: e });
  }
  return e;
}

interface DirAttrs {
  mode: number;
  mtime: number;
}

/** An entry name split into clean components, or why it cannot be. */
export function cleanName(name: string): string[] | "absolute" | "escape" {
  if (name.startsWith("/")) return "absolute";
  const parts: string[] = [];
  for (const c of name.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (parts.length === 0) return "escape";
      parts.pop();
    } else parts.push(c);
  }
  return parts;
}

function joinRel(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

function clampTime(t: number): number {
  return Number.isFinite(t) ? Math.max(-8.64e12, Math.min(8.64e12, t)) : 0;
}

class Applier {
  readonly root: BPath;
  readonly limits: { maxEntries: number; maxPathLength: number };
  readonly sameOwner: boolean;
  /** Rootless mode: no ownership, no devices, owner bits added. */
  readonly rootless: boolean;
  readonly uid: number;
  readonly gid: number;
  readonly onWarning: ((w: UnpackWarning) => void) | undefined;

  entries = 0;
  readonly warnings: UnpackWarning[] = [];
  suppressedWarnings = 0;

  /** Canonical paths (relative to root, symlink-free) this layer created; a whiteout never removes them. */
  private readonly created = new Set<string>();
  /** Every proper ancestor of a created path: a whiteout empties them of lower content but keeps them. */
  private readonly ancestors = new Set<string>();
  /** Symlinks this layer created: a later entry of the same layer must not be written through them. */
  private readonly layerSymlinks = new Set<string>();
  /** Directory entries: mode and times are set at the end (children would change them). */
  private readonly dirs = new Map<string, DirAttrs>();
  /**
   * Paths known to be real directories, and directories this layer created empty (so a name in them that
   * this layer did not create cannot exist): they save the lstat calls that dominate small-file layers.
   * Valid because the tree is private to this apply; both are cleared whenever anything is removed.
   */
  private readonly knownDirs = new Set<string>([""]);
  private readonly freshDirs = new Set<string>();
  /**
   * Small regular files still being created (canonical path → its job). Every other operation that could
   * see or touch one waits for them first (settle), so the result is the same as applying one at a time.
   */
  private readonly creating = new Map<string, Promise<void>>();
  private createFailure: { error: unknown } | undefined;

  constructor(root: BPath, limits: { maxEntries: number; maxPathLength: number }, options: ApplyOptions) {
    this.root = root;
    this.limits = limits;
    this.uid = process.getuid?.() ?? 0;
    this.gid = process.getgid?.() ?? 0;
    this.sameOwner = options.sameOwner ?? this.uid === 0;
    this.rootless = !this.sameOwner || this.uid !== 0;
    this.onWarning = options.onWarning;
  }

  private host(rel: string): BPath {
    return rel === "" ? this.root : join(this.root, rel);
  }

  private warn(kind: UnpackWarningKind, rel: string, message: string): void {
    const w: UnpackWarning = { kind, path: show(rel), message };
    if (this.warnings.length < MAX_KEPT_WARNINGS) this.warnings.push(w);
    else this.suppressedWarnings++;
    this.onWarning?.(w);
  }

  private markCreated(rel: string): void {
    this.created.add(rel);
    for (let i = rel.lastIndexOf("/"); i > 0; i = rel.lastIndexOf("/", i - 1)) {
      const p = rel.slice(0, i);
      if (this.ancestors.has(p)) break;
      this.ancestors.add(p);
    }
  }

  /** Waits for every file still being created; throws the first failure among them. */
  async settle(): Promise<void> {
    while (this.creating.size > 0) await Promise.all(this.creating.values());
    if (this.createFailure !== undefined) throw this.createFailure.error;
  }

  /** Waits for every file still being created, ignoring failures (the apply is failing already). */
  async drain(): Promise<void> {
    while (this.creating.size > 0) await Promise.all(this.creating.values());
  }

  /** Removes `rel` (a whole tree) and forgets what this layer recorded there. */
  private async remove(rel: string, wasDir: boolean): Promise<void> {
    await this.settle();
    await removeTree(this.host(rel));
    this.knownDirs.clear();
    this.knownDirs.add("");
    this.freshDirs.clear();
    this.created.delete(rel);
    this.layerSymlinks.delete(rel);
    this.dirs.delete(rel);
    if (!wasDir) return;
    const prefix = `${rel}/`;
    for (const set of [this.created, this.layerSymlinks]) {
      for (const p of set) if (p.startsWith(prefix)) set.delete(p);
    }
    for (const p of this.dirs.keys()) if (p.startsWith(prefix)) this.dirs.delete(p);
  }

  async apply(e: TarEntry, reader: TarReader): Promise<void> {
    const entry = show(e.name);
    if (++this.entries > this.limits.maxEntries) {
      throw new UnpackError("bomb", `layer has more than ${this.limits.maxEntries} entries (maxEntries)`, {
        entry,
      });
    }
    if (e.name.length > this.limits.maxPathLength || e.linkname.length > this.limits.maxPathLength) {
      throw new UnpackError(
        "bad-archive",
        `invalid tar archive: entry name or link target longer than ${this.limits.maxPathLength} bytes (maxPathLength)`,
        { entry: entry.slice(0, 200) },
      );
    }
    if (e.name === "") throw new UnpackError("bad-archive", "invalid tar archive: entry without a name");
    const parts = cleanName(e.name);
    if (parts === "absolute" || parts === "escape") {
      throw new UnpackError(
        "path-escape",
        `entry ${JSON.stringify(entry)} ${parts === "absolute" ? "has an absolute path" : "climbs above the root with .."}`,
        { entry },
      );
    }
    const base = parts[parts.length - 1];
    if (base === undefined) {
      if (e.type === "dir") return; // "." and friends resolve to the root: skipped, as containerd does
      throw new UnpackError(
        "replaces-root",
        `entry ${JSON.stringify(entry)} (${e.type}) would replace the root`,
        {
          entry,
        },
      );
    }
    const parentParts = parts.slice(0, -1);
    if (this.createFailure !== undefined) throw this.createFailure.error;
    // Whiteouts read and remove directories, and a hardlink's target must exist: nothing may be in flight.
    if (base.startsWith(".wh.") || e.type === "hardlink") await this.settle();
    if (base.startsWith(".wh.")) return this.whiteout(parentParts, base, entry);

    // A hardlink's target is resolved before anything at the entry's own path is removed.
    const linkTarget = e.type === "hardlink" ? this.hardlinkTarget(e, entry) : undefined;
    if (
      (e.type === "chardev" || e.type === "blockdev") &&
      (e.devmajor > 0xffffffff || e.devminor > 0xffffffff)
    ) {
      throw new UnpackError("bad-archive", `invalid tar archive: device number out of range for ${entry}`, {
        entry,
      });
    }
    if (e.devmajor < 0 || e.devminor < 0) {
      throw new UnpackError("bad-archive", `invalid tar archive: negative device number for ${entry}`, {
        entry,
      });
    }

    const parent = this.resolveDir(parentParts, true, entry) as string;
    const rel = joinRel(parent, base);
    const host = this.host(rel);
    if (linkTarget !== undefined && (linkTarget.rel === rel || linkTarget.rel.startsWith(`${rel}/`))) {
      throw new UnpackError("bad-archive", `invalid tar archive: hardlink ${entry} links to itself`, {
        entry,
      });
    }

    if (this.creating.has(rel)) await this.settle(); // the same name twice in one layer
    const existing = this.freshDirs.has(parent) && !this.created.has(rel) ? null : lstat(host);
    if (existing && !(e.type === "dir" && existing.isDirectory()))
      await this.remove(rel, existing.isDirectory());

    switch (e.type) {
      case "file":
        await this.regular(e, rel, host, reader);
        break;
      case "dir":
        if (!existing?.isDirectory()) {
          mkdir(host, 0o700); // final mode at the end
          this.freshDirs.add(rel);
        }
        this.knownDirs.add(rel);
        this.dirs.set(rel, {
          mode: this.finalMode(
            e,
            rel,
            true,
            this.own(e, rel, () => lchown(host, e.uid, e.gid)),
          ),
          mtime: clampTime(e.mtime),
        });
        break;
      case "symlink":
        if (e.linkname === "") {
          throw new UnpackError("bad-archive", `invalid tar archive: symlink ${entry} has no target`, {
            entry,
          });
        }
        symlink(e.linkname, host);
        this.layerSymlinks.add(rel);
        this.own(e, rel, () => lchown(host, e.uid, e.gid));
        lutimes(host, clampTime(e.mtime), clampTime(e.mtime));
        break;
      case "hardlink":
        // The new name shares the target's inode and so its attributes; like umoci, nothing is re-applied
        // (changing the shared inode would change a file another entry or layer already set).
        link((linkTarget as { host: BPath }).host, host);
        break;
      case "chardev":
      case "blockdev":
      case "fifo":
        await this.special(e, rel, host);
        break;
    }
    this.markCreated(rel);
  }

  /** Applies ownership, or reports why not; true when the entry has its intended owner. */
  private own(e: TarEntry, rel: string, chown: () => void): boolean {
    if (this.sameOwner) {
      try {
        chown();
        return true;
      } catch (err) {
        const code = errno(err);
        if (code !== "EPERM" && code !== "EINVAL") throw err;
        this.warn("ownership", rel, `owner ${e.uid}:${e.gid} not applied: ${code}`);
        return false;
      }
    }
    const ok = e.uid === this.uid && e.gid === this.gid;
    if (!ok) this.warn("ownership", rel, `owner ${e.uid}:${e.gid} not applied (rootless)`);
    return ok;
  }

  private finalMode(e: TarEntry, rel: string, isDir: boolean, ownerOk: boolean): number {
    let mode = e.mode;
    if (!ownerOk && mode & 0o6000) {
      mode &= ~0o6000;
      this.warn("setid-dropped", rel, `setuid/setgid dropped: owner ${e.uid}:${e.gid} could not be set`);
    }
    if (this.rootless) {
      const need = isDir ? 0o700 : 0o400;
      if ((mode & need) !== need) {
        this.warn("mode-relaxed", rel, `mode ${octal(mode)} stored as ${octal(mode | need)} (rootless)`);
        mode |= need;
      }
    }
    return mode;
  }

  private async regular(e: TarEntry, rel: string, host: BPath, reader: TarReader): Promise<void> {
    if (e.size <= SYNC_WRITE_MAX) return this.createSmall(e, rel, host, reader);
    const fd = createExclusive(host);
    // Up to WRITE_AHEAD bytes of positional writes stay in flight on the threadpool, so the disk works while
    // the next chunks are decompressed, hashed and parsed. Chunks are fresh buffers (zlib and fs streams never reuse them), so holding them is safe.
    const inflight: { done: Promise<void>; size: number }[] = [];
    let pending = 0;
    let failure: unknown;
    try {
      let position = 0;
      for await (const chunk of reader.body()) {
        const done = writeAt(fd, chunk, position).catch((err: unknown) => {
          failure ??= err;
        });
        position += chunk.length;
        inflight.push({ done, size: chunk.length });
        pending += chunk.length;
        while (pending > WRITE_AHEAD || failure !== undefined) {
          const first = inflight.shift();
          if (first === undefined) break;
          await first.done;
          pending -= first.size;
          if (failure !== undefined) throw failure;
        }
      }
      await Promise.all(inflight.map((w) => w.done));
      inflight.length = 0;
      if (failure !== undefined) throw failure;
      await this.fileAttrs(e, rel, host, fd);
    } finally {
      await Promise.all(inflight.map((w) => w.done)); // never close under a write still running
      fs.closeSync(fd);
    }
  }

  /**
   * A small file: its body is read into memory now, and it is created, written and given its attributes on
   * the threadpool while the next entries are parsed; at most CREATES_IN_FLIGHT at once.
   */
  private async createSmall(e: TarEntry, rel: string, host: BPath, reader: TarReader): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of reader.body()) chunks.push(chunk);
    const body = Buffer.concat(chunks); // a copy: the reader's chunks are only valid until its next read
    while (this.creating.size >= CREATES_IN_FLIGHT) await Promise.race(this.creating.values());
    const job = createExclusiveAsync(host)
      .then(async (fd) => {
        try {
          writeAtSync(fd, body, 0);
          await this.fileAttrs(e, rel, host, fd);
        } finally {
          fs.closeSync(fd);
        }
      })
      .catch((error: unknown) => {
        this.createFailure ??= { error };
      })
      .finally(() => this.creating.delete(rel));
    this.creating.set(rel, job);
  }

  /** lchown, xattrs, chmod, times, in containerd's order (chown can clear setuid bits). */
  private async fileAttrs(e: TarEntry, rel: string, host: BPath, fd: number | null): Promise<void> {
    const ownerOk = this.own(e, rel, () =>
      fd === null ? lchown(host, e.uid, e.gid) : fs.fchownSync(fd, e.uid, e.gid),
    );
    const mode = this.finalMode(e, rel, false, ownerOk);
    await this.xattrs(e, rel, host);
    const t = clampTime(e.mtime);
    if (fd !== null) {
      fs.fchmodSync(fd, mode);
      fs.futimesSync(fd, t, t);
    } else {
      chmod(host, mode);
      lutimes(host, t, t);
    }
  }

  private async special(e: TarEntry, rel: string, host: BPath): Promise<void> {
    const hostText = asUtf8(host);
    let made = false;
    if (e.type === "fifo" || !this.rootless) {
      const args =
        e.type === "fifo"
          ? ["mkfifo", "-m", "0600", "--", hostText]
          : [
              "mknod",
              "-m",
              "0600",
              "--",
              hostText,
              e.type === "chardev" ? "c" : "b",
              `${e.devmajor}`,
              `${e.devminor}`,
            ];
      made = hostText !== null && (await run(args as string[])).ok;
    }
    if (!made) {
      this.warn("device", rel, `${e.type} ${e.devmajor}:${e.devminor} replaced by an empty file`);
      const fd = createExclusive(host);
      try {
        await this.fileAttrs(e, rel, host, fd);
      } finally {
        fs.closeSync(fd);
      }
      return;
    }
    await this.fileAttrs(e, rel, host, null);
  }

  private async xattrs(e: TarEntry, rel: string, host: BPath): Promise<void> {
    if (e.xattrs.size === 0) return;
    const names = [...e.xattrs.keys()].map(show).join(", ");
    const hostText = asUtf8(host);
    if (this.rootless || hostText === null || !(await hasSetfattr())) {
      const why = this.rootless
        ? "rootless"
        : hostText === null
          ? "name is not UTF-8"
          : "setfattr not installed";
      this.warn("xattr", rel, `extended attributes not set (${why}): ${names}`);
      return;
    }
    for (const [name, value] of e.xattrs) {
      const r = await run([
        "setfattr",
        "-h",
        "-n",
        show(name),
        "-v",
        `0x${value.toString("hex")}`,
        "--",
        hostText,
      ]);
      if (!r.ok) this.warn("xattr", rel, `extended attribute ${show(name)} not set: ${r.stderr.trim()}`);
    }
  }

  private hardlinkTarget(e: TarEntry, entry: string): { rel: string; host: BPath } {
    const parts = cleanName(e.linkname);
    const target = show(e.linkname);
    if (parts === "absolute" || parts === "escape" || parts.length === 0) {
      throw new UnpackError(
        "hardlink-escape",
        `hardlink ${JSON.stringify(entry)} points outside the root (${JSON.stringify(target)})`,
        { entry },
      );
    }
    const base = parts[parts.length - 1] as string;
    const dir = this.resolveDir(parts.slice(0, -1), false, entry);
    const rel = dir === null ? null : joinRel(dir, base);
    const st = rel === null ? null : lstat(this.host(rel));
    if (rel === null || st === null) {
      throw new UnpackError(
        "bad-archive",
        `invalid tar archive: hardlink ${JSON.stringify(entry)} to missing ${JSON.stringify(target)}`,
        { entry },
      );
    }
    if (st.isDirectory()) {
      throw new UnpackError(
        "bad-archive",
        `invalid tar archive: hardlink ${JSON.stringify(entry)} to a directory`,
        {
          entry,
        },
      );
    }
    return { rel, host: this.host(rel) };
  }

  /**
   * Resolves directory components inside the root, one lstat at a time, the way containerd's fs.RootPath
   * does: an absolute symlink target restarts at the root, and `..` in it stops at the root. Two cases are
   * refused as symlink-escape: a relative target whose `..` climbs above the root (it points outside), and a
   * symlink created by this same layer (a tree cannot hold both `l -> x` and `l/file`: that is the classic
   * write-through-a-planted-link attack). Missing directories are created 0755 when `create` is set, else
   * null is returned. The result is canonical: relative to the root, free of symlinks.
   */
  private resolveDir(parts: readonly string[], create: boolean, entry: string): string | null {
    const resolved: string[] = [];
    const queue = parts.map((name) => ({ name, clamp: false }));
    let links = 0;
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      const { name, clamp } = item;
      if (name === "" || name === ".") continue;
      if (name === "..") {
        if (resolved.length > 0) resolved.pop();
        else if (!clamp) {
          throw new UnpackError(
            "symlink-escape",
            `entry ${JSON.stringify(entry)} is written through a symlink that points outside the root`,
            { entry },
          );
        }
        continue;
      }
      resolved.push(name);
      const rel = resolved.join("/");
      if (this.knownDirs.has(rel)) continue;
      if (this.creating.has(rel)) {
        // a regular file of this layer, still being created: what lstat would find once it is
        throw new UnpackError(
          "bad-archive",
          `invalid tar archive: ${JSON.stringify(entry)} needs ${JSON.stringify(show(rel))} to be a directory`,
          { entry },
        );
      }
      const host = this.host(rel);
      const parent = resolved.length > 1 ? resolved.slice(0, -1).join("/") : "";
      const st = this.freshDirs.has(parent) && !this.created.has(rel) ? null : lstat(host);
      if (st === null) {
        if (!create) return null;
        mkdir(host, 0o755);
        this.markCreated(rel);
        this.knownDirs.add(rel);
        this.freshDirs.add(rel);
        continue;
      }
      if (st.isDirectory()) {
        this.knownDirs.add(rel);
        continue;
      }
      if (st.isSymbolicLink()) {
        if (this.layerSymlinks.has(rel)) {
          throw new UnpackError(
            "symlink-escape",
            `entry ${JSON.stringify(entry)} is written through symlink ${JSON.stringify(show(rel))} of the same layer`,
            { entry },
          );
        }
        if (++links > MAX_LINKS) {
          throw new UnpackError(
            "bad-archive",
            `invalid tar archive: too many levels of symbolic links in ${entry}`,
            {
              entry,
            },
          );
        }
        const target = readlink(host);
        resolved.pop();
        const absolute = target.startsWith("/");
        if (absolute) resolved.length = 0;
        queue.unshift(...target.split("/").map((n) => ({ name: n, clamp: absolute })));
        continue;
      }
      throw new UnpackError(
        "bad-archive",
        `invalid tar archive: ${JSON.stringify(entry)} needs ${JSON.stringify(show(rel))} to be a directory`,
        { entry },
      );
    }
    return resolved.join("/");
  }

  private async whiteout(parentParts: string[], base: string, entry: string): Promise<void> {
    if (base === ".wh..wh..opq") {
      // Opaque: every lower child of the directory goes, wherever the marker sits in the layer; what this
      // layer unpacked there (before or after the marker) stays.
      const dir = this.resolveDir(parentParts, true, entry) as string;
      for (const name of readdir(this.host(dir))) await this.removeLower(joinRel(dir, name));
      return;
    }
    // Other `.wh..wh.` names are AUFS metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): no meaning in OCI, and
    // containerd's removal of them is a no-op. Those that reduce to `.`, `..` or nothing are refused like
    // `.wh..`: an applier that strips the AUFS prefix would otherwise delete the directory or its parent.
    const reserved = base.startsWith(".wh..wh.");
    const name = base.slice(reserved ? 8 : 4);
    if (name === "" || name === "." || name === "..") {
      throw new UnpackError("invalid-whiteout", `invalid whiteout name ${JSON.stringify(entry)}`, { entry });
    }
    if (reserved) {
      this.warn("ignored-entry", joinRel(parentParts.join("/"), base), "reserved whiteout metadata ignored");
      return;
    }
    const dir = this.resolveDir(parentParts, false, entry);
    if (dir !== null) await this.removeLower(joinRel(dir, name));
  }

  /** Removes lower-layer content at `rel`, keeping whatever this layer created there. */
  private async removeLower(rel: string): Promise<void> {
    const host = this.host(rel);
    const st = lstat(host);
    if (st === null) return;
    if (!this.created.has(rel) && !this.ancestors.has(rel)) {
      await this.remove(rel, st.isDirectory());
      return;
    }
    if (!st.isDirectory()) return;
    for (const name of readdir(host)) await this.removeLower(joinRel(rel, name));
  }

  /** Directory modes, then times, once nothing will change them any more. */
  finish(): void {
    const verified = new Set<string>([""]);
    for (const [rel, a] of this.dirs) {
      const host = this.plainDir(rel, verified);
      if (host === null) continue; // removed or replaced later in the layer
      chmod(host, a.mode);
      lutimes(host, a.mtime, a.mtime);
    }
  }

  /** The host path of `rel` if every component of it is a real directory (no symlinks), else null. */
  private plainDir(rel: string, verified: Set<string>): BPath | null {
    const parts = rel.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (verified.has(p)) continue;
      const st = lstat(this.host(p));
      if (!st?.isDirectory()) return null;
      verified.add(p);
    }
    return this.host(rel);
  }
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}

function run(argv: string[]): Promise<{ ok: boolean; stderr: string }> {
  const [cmd, ...args] = argv;
  return new Promise((done) => {
    execFile(cmd as string, args, { timeout: 30_000 }, (err, _stdout, stderr) => {
      done({ ok: err === null, stderr: String(stderr ?? (err as Error | null)?.message ?? "") });
    });
  });
}

let setfattr: Promise<boolean> | undefined;
function hasSetfattr(): Promise<boolean> {
  setfattr ??= run(["setfattr", "--version"]).then((r) => r.ok);
  return setfattr;
}
