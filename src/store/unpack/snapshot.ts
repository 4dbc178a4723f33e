// Snapshots keyed by ChainID: `<snapshotsDir>/<chainId>` holds the applied result of a chain of layers.
//
// Sharing between snapshots: each snapshot is a complete tree, made by hardlinking its parent's files into
// a new directory tree (`cp -a -l`: directories are new, files are new names for the parent's inodes) and
// applying one layer there. Applying never writes into an existing inode: a changed file is unlinked and
// created anew, a whiteout unlinks, directory attributes are set on the snapshot's own directories. So the
// parent never sees its child's changes, a snapshot costs its directories plus what its layer added, and
// n layers cost the image's size once instead of up to n times (full copies on ext4 grew with the square of
// the layer count; overlay mounts, containerd's default, need privileges a portable store cannot assume).
// What this asks of everyone else: a snapshot is read-only. A container or tool must not write into one
// (mount it as an overlay's lower directory, as runtimes do, or copy it); a write in place would show in
// every snapshot sharing the inode. A file already at the filesystem's link limit (EMLINK) makes that one
// snapshot a full copy (`cp -a --reflink=auto`). `cp` rather than `fs.cp`: it keeps ownership, hardlinks
// inside the tree, device nodes, FIFOs, directory times and extended attributes, which fs.cp does not.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, readdir, rename, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { errno, fromUtf8, removeTree } from "./bfs.ts";
import { parseDigest } from "./chain.ts";
import { UnpackError } from "./errors.ts";

export interface SnapshotOptions {
  /**
   * Flush the snapshot's filesystem (syncfs) before it is renamed into place, so a power loss cannot leave a
   * visible snapshot with missing data. Default true.
   */
  durable?: boolean;
  signal?: AbortSignal;
}

const TEMP_PREFIX = ".tmp-";

/** Where the snapshot of `chainId` lives (whether or not it exists). */
export function snapshotPath(snapshotsDir: string, chainId: string): string {
  parseDigest(chainId);
  return join(snapshotsDir, chainId);
}

/** A snapshot built in a temporary directory, not visible under its ChainID until committed. */
export interface SnapshotBuild {
  /** The built tree (a parent for the next build, before or after this one is committed). */
  readonly dir: string;
  /** The temporary directory holding `dir`, removed by commit or discard. */
  readonly tmp: string;
}

/**
 * Builds the snapshot for a chain: hardlinks the parent snapshot into a temporary directory beside the
 * snapshots, lets `apply` apply the layer there, and renames the result to `<snapshotsDir>/<chainId>`.
 * A snapshot that already exists is reused (`created: false`), also when a concurrent builder renames its
 * own first. On any failure the temporary directory is removed: no partial snapshot is ever visible.
 */
export async function prepareSnapshot<T>(
  snapshotsDir: string,
  parentChainId: string | null,
  chainId: string,
  apply: (dir: string) => Promise<T>,
  options: SnapshotOptions = {},
): Promise<{ path: string; created: boolean }> {
  const final = snapshotPath(snapshotsDir, chainId);
  const parent = parentChainId === null ? null : snapshotPath(snapshotsDir, parentChainId);
  if (await isDir(final)) return { path: final, created: false };
  if (parent !== null && !(await isDir(parent))) {
    throw new UnpackError("missing-parent", `parent snapshot ${parentChainId} of ${chainId} does not exist`);
  }
  const build = await buildSnapshot(snapshotsDir, parent, apply, options.signal);
  try {
    if (options.durable ?? true) await syncFilesystem(build.dir, options.signal);
    return await commitSnapshot(snapshotsDir, build, chainId);
  } finally {
    await discardSnapshot(build);
  }
}

/**
 * Builds a snapshot in a new temporary directory beside the snapshots: `parentDir`'s tree hardlinked (a
 * committed snapshot, or a build not committed yet), or an empty root, then `apply`. On failure nothing is
 * left behind. Commit it (after syncFilesystem, for durability) or discard it.
 */
export async function buildSnapshot<T>(
  snapshotsDir: string,
  parentDir: string | null,
  apply: (dir: string) => Promise<T>,
  signal?: AbortSignal,
): Promise<SnapshotBuild> {
  await mkdir(snapshotsDir, { recursive: true });
  const tmp = await mkdtemp(join(snapshotsDir, `${TEMP_PREFIX}${process.pid}-`));
  const build = { tmp, dir: join(tmp, "rootfs") };
  try {
    if (parentDir === null) await mkdir(build.dir, { mode: 0o755 });
    else await linkTree(parentDir, build.dir, signal);
    await apply(build.dir);
    signal?.throwIfAborted();
    return build;
  } catch (e) {
    await discardSnapshot(build);
    throw e;
  }
}

/**
 * Renames a build to `<snapshotsDir>/<chainId>`, or finds that a concurrent builder got there first (its
 * snapshot is identical: `created: false`). Durability is the caller's: sync the build first.
 */
export async function commitSnapshot(
  snapshotsDir: string,
  build: SnapshotBuild,
  chainId: string,
): Promise<{ path: string; created: boolean }> {
  const final = snapshotPath(snapshotsDir, chainId);
  try {
    await rename(build.dir, final);
  } catch (e) {
    const code = errno(e);
    if ((code === "ENOTEMPTY" || code === "EEXIST") && (await isDir(final))) {
      await discardSnapshot(build);
      return { path: final, created: false };
    }
    throw e;
  }
  await syncDir(snapshotsDir);
  await discardSnapshot(build);
  return { path: final, created: true };
}

/** Removes what is left of a build (all of it, or its empty temporary directory after a commit). */
export async function discardSnapshot(build: SnapshotBuild): Promise<void> {
  await removeTree(fromUtf8(build.tmp));
}

/** Flushes the filesystem holding `dir` (syncfs), so what was written there survives a power loss. */
export function syncFilesystem(dir: string, signal?: AbortSignal): Promise<void> {
  return run(["sync", "--file-system", "--", dir], signal);
}

/** Makes `dir` a tree of hardlinks to `parent`'s files; a full copy when a file has too many links. */
async function linkTree(parent: string, dir: string, signal: AbortSignal | undefined): Promise<void> {
  try {
    await run(["cp", "-a", "-l", "--no-target-directory", "--", parent, dir], signal);
  } catch (e) {
    if (!(e instanceof UnpackError && /Too many links/.test(e.message))) throw e;
    await removeTree(fromUtf8(dir));
    await run(["cp", "-a", "--reflink=auto", "--no-target-directory", "--", parent, dir], signal);
  }
}

/**
 * Removes a snapshot (or any tree) without following symlinks, also one an unprivileged process left with
 * read-only directories. The snapshot is first renamed out of its ChainID to a temporary name beside it, so
 * a removal killed half-way leaves a `.tmp-PID-…` directory the next sweep removes, never a half-deleted
 * snapshot that an unpack would find under its ChainID and reuse as built.
 */
export async function removeSnapshot(path: string): Promise<void> {
  const doomed = join(
    dirname(path),
    `${TEMP_PREFIX}${process.pid}-rm-${basename(path).slice(0, 20)}-${randomBytes(4).toString("hex")}`,
  );
  try {
    await rename(path, doomed);
  } catch (e) {
    if (errno(e) === "ENOENT") return;
    throw e;
  }
  await syncDir(dirname(path));
  await removeTree(fromUtf8(doomed));
}

/**
 * Removes temporary directories left by builders that died (SIGKILL, power loss): those whose process id is
 * no longer alive. Returns their names. Call it while holding the store's lock, or at least not racing a
 * builder in another PID namespace.
 */
export async function removeStaleSnapshotTemps(snapshotsDir: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(snapshotsDir);
  } catch (e) {
    if (errno(e) === "ENOENT") return removed;
    throw e;
  }
  for (const name of names) {
    const m = /^\.tmp-([0-9]+)-/.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    await removeTree(fromUtf8(join(snapshotsDir, name)));
    removed.push(name);
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) === "EPERM"; // alive, owned by someone else
  }
}

/** Whether `p` is a directory (a snapshot that exists); false when nothing is there. */
export async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch (e) {
    if (errno(e) === "ENOENT") return false;
    throw e;
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function run(argv: string[], signal: AbortSignal | undefined): Promise<void> {
  const [cmd, ...args] = argv as [string, ...string[]];
  return new Promise((done, fail) => {
    // LC_ALL=C: the errors are recognized by their English text (EMLINK, ENOSPC)
    const env = { ...process.env, LC_ALL: "C" };
    execFile(cmd, args, { signal, env, maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (err === null) return done();
      if (err.name === "AbortError")
        return fail(new UnpackError("aborted", "snapshot aborted", { cause: err }));
      const code = errno(err);
      const detail = String(stderr).trim() || err.message;
      fail(
        /No space left|Disk quota/.test(detail)
          ? new UnpackError("no-space", `${cmd} failed: ${detail}`, { cause: err })
          : new UnpackError("io", `${cmd} failed${code ? ` (${code})` : ""}: ${detail}`, { cause: err }),
      );
    });
  });
}
