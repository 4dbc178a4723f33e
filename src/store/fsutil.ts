// Small durable-write helpers: every file the store publishes is written to a temporary name, fsynced and
// renamed into place, then its directory is fsynced, so a crash leaves either the old file or the new one.

import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { basename, dirname, join } from "node:path";
import { crashPoint } from "./crash.ts";
import { fsError } from "./errors.ts";

/** fsync a directory so a rename or unlink inside it survives a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, "r");
    await handle.sync();
  } catch (error) {
    // Some filesystems refuse fsync on directories (EINVAL); the rename itself is still atomic.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EINVAL" && code !== "EISDIR" && code !== "EPERM") throw fsError(error, `fsync ${dir}`);
  } finally {
    await handle?.close();
  }
}

/** A unique temporary name next to `path` (same directory, so rename is atomic). Starts with `.tmp-` so
 * sweeps can find leftovers of crashed writers. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.tmp-${basename(path)}-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Creates the new file `tmp` (never an existing one), writes `data` and fsyncs it. */
async function writeSynced(tmp: string, data: string | Uint8Array): Promise<void> {
  const handle = await fs.open(tmp, "wx", 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `data` to `path` atomically and durably: temp file, fsync, rename, fsync the directory. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await writeSynced(tmp, data);
    crashPoint("atomic-write-synced");
    await fs.rename(tmp, path);
  } catch (error) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw fsError(error, `write ${path}`);
  }
  crashPoint("atomic-write-renamed");
  await fsyncDir(dirname(path));
}

/** Publishes `data` at `path` only if nothing is there yet: written to a temp file, fsynced, then hard-linked
 * into place (link never overwrites), so racing creators can never clobber a file another one already
 * published and filled. Returns whether this call created it. */
export async function createFileExclusive(path: string, data: string | Uint8Array): Promise<boolean> {
  const tmp = tempPathFor(path);
  let created = false;
  try {
    await writeSynced(tmp, data);
    await fs.link(tmp, path);
    created = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
      await fs.rm(tmp, { force: true }).catch(() => {});
      throw fsError(error, `create ${path}`);
    }
  }
  await fs.rm(tmp, { force: true });
  if (created) await fsyncDir(dirname(path));
  return created;
}

/** Reads and parses a JSON file; `fallback` when it does not exist. */
export async function readJsonFile<T>(path: string, fallback: T): Promise<T> {
  let text: string;
  try {
    text = await fs.readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return fallback;
    throw fsError(error, `read ${path}`);
  }
  return JSON.parse(text) as T;
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw fsError(error, `stat ${path}`);
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
