// Cross-process locks as files created with O_EXCL (`open(path, "wx")`). The file holds its owner: pid, the
// process's start time (so a recycled pid is not mistaken for the holder), its pid namespace and host, and a
// random token. A lock is stale when its owner is provably gone (same pid namespace: the pid is dead, a
// zombie, or now belongs to a process started at another time) or, when liveness cannot be checked (another
// host or pid namespace), when its heartbeat (the file's mtime, refreshed while held) is older than
// `staleMs`. A stale lock is broken under a short "break" lock and by rename-and-check, so two waiters that
// both judge one lock stale never delete a fresh lock the other has just taken.
//
// Lock order in the store (containerd#8790): per-blob ingest locks first, the store-wide metadata lock last;
// nothing waits for a blob lock while holding the metadata lock.

import { randomBytes } from "node:crypto";
import { type FSWatcher, promises as fs, readFileSync, readlinkSync, watch } from "node:fs";
import { hostname } from "node:os";
import { basename, dirname } from "node:path";
import { abortError, fsError, StoreError } from "./errors.ts";
import { sleep } from "./fsutil.ts";

/** Who holds a lock (or a lease): enough to tell whether that process still exists. */
export interface ProcessIdentity {
  readonly pid: number;
  /** Start time of the process in clock ticks since boot (field 22 of /proc/PID/stat); null off Linux. */
  readonly startTime: string | null;
  /** `pid:[inode]` of the pid namespace, so pids are only compared within one namespace. */
  readonly pidNs: string | null;
  readonly bootId: string | null;
  readonly host: string;
}

export interface LockOwner extends ProcessIdentity {
  readonly token: string;
  readonly acquiredAt: string;
  readonly purpose: string;
}

export interface LockOptions {
  /** What the lock is for, shown to waiters ("pull docker.io/library/nginx:1.27"). */
  readonly purpose?: string;
  readonly signal?: AbortSignal | undefined;
  /** Give up with LOCKED after this long; default: wait as long as the holder lives. */
  readonly timeoutMs?: number | undefined;
  /** A lock whose liveness cannot be checked is stale when its heartbeat is older than this; default 60 s. */
  readonly staleMs?: number | undefined;
  /** Called once when the lock is busy and the caller starts waiting. */
  readonly onWait?: ((holder: LockOwner | null) => void) | undefined;
}

const DEFAULT_STALE_MS = 60_000;
/** A lock file with no parseable owner is only a crash between create and write when it is this old. */
const EMPTY_LOCK_GRACE_MS = 2_000;
/** Breakers hold the break lock for a few syscalls; older than this it was left by a crash. */
const BREAK_LOCK_STALE_MS = 5_000;

let selfIdentity: ProcessIdentity | null = null;

/** This process's identity (cached). */
export function currentProcess(): ProcessIdentity {
  selfIdentity ??= {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    pidNs: readLinkOrNull("/proc/self/ns/pid"),
    bootId: readOrNull("/proc/sys/kernel/random/boot_id"),
    host: hostname(),
  };
  return selfIdentity;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return null;
  }
}

function readLinkOrNull(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/** Field 22 (starttime) and field 3 (state) of /proc/PID/stat; null when unreadable. */
function procStat(pid: number): { state: string; startTime: string } | null {
  const text = readOrNull(`/proc/${pid}/stat`);
  if (text === null) return null;
  // The command name (field 2) is in parentheses and may contain spaces: count fields after the last ")".
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const state = rest[0];
  const startTime = rest[19];
  if (state === undefined || startTime === undefined) return null;
  return { state, startTime };
}

export function processStartTime(pid: number): string | null {
  return procStat(pid)?.startTime ?? null;
}

/** Whether the process `who` names is provably alive (true), provably gone (false), or cannot be judged
 * from here (null: another host, boot or pid namespace). */
export function processAlive(who: Partial<ProcessIdentity>): boolean | null {
  const self = currentProcess();
  if (typeof who.pid !== "number" || !Number.isSafeInteger(who.pid) || who.pid <= 0) return null;
  if (who.host !== undefined && who.host !== self.host) return null;
  if (who.bootId != null && self.bootId !== null && who.bootId !== self.bootId) return false;
  if ((who.pidNs ?? null) !== self.pidNs) return null;
  try {
    process.kill(who.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    // EPERM: it exists but belongs to someone else.
  }
  const stat = procStat(who.pid);
  if (stat === null) return self.pidNs === null; // with /proc, no entry means it exited just now
  if (stat.state === "Z" || stat.state === "X") return false; // killed, not yet reaped
  if (who.startTime != null && stat.startTime !== who.startTime) return false; // pid recycled
  return true;
}

export class FileLock {
  readonly path: string;
  readonly owner: LockOwner;
  #heartbeat: NodeJS.Timeout | null;
  #released = false;

  constructor(path: string, owner: LockOwner, heartbeatMs: number) {
    this.path = path;
    this.owner = owner;
    this.#heartbeat = setInterval(() => {
      const now = new Date();
      fs.utimes(this.path, now, now).catch(() => {});
    }, heartbeatMs);
    this.#heartbeat.unref();
  }

  get released(): boolean {
    return this.#released;
  }

  /** Whether the lock file still carries this holder's token (false after someone broke it). */
  async held(): Promise<boolean> {
    let text: string;
    try {
      text = await fs.readFile(this.path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw fsError(error, `read lock ${this.path}`);
    }
    try {
      return (JSON.parse(text) as Partial<LockOwner> | null)?.token === this.owner.token;
    } catch {
      return false;
    }
  }

  /** Removes the lock file if it is still ours. Idempotent. Every pull takes and releases the metadata lock
   * several times, so this makes as few filesystem calls as it can: one read, one unlink. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
    if (await this.held()) await unlinkIfExists(this.path);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }
}

/** unlink, where a missing file is fine (fs.rm with force costs an lstat first). */
async function unlinkIfExists(path: string): Promise<void> {
  try {
    await fs.unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw fsError(error, `remove ${path}`);
  }
}

interface OwnerRead {
  owner: LockOwner | null;
  ino: number;
  mtimeMs: number;
}

async function readOwner(path: string): Promise<OwnerRead | null> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw fsError(error, `read lock ${path}`);
  }
  try {
    const st = await handle.stat();
    const text = await handle.readFile("utf8");
    let owner: LockOwner | null = null;
    try {
      const parsed = JSON.parse(text) as LockOwner;
      if (parsed !== null && typeof parsed === "object" && typeof parsed.token === "string") owner = parsed;
    } catch {
      owner = null;
    }
    return { owner, ino: st.ino, mtimeMs: st.mtimeMs };
  } finally {
    await handle.close();
  }
}

/** Whether a lock (as read) is stale: its holder is gone, or unverifiable and silent for `staleMs`. */
export function lockIsStale(read: OwnerRead, staleMs: number, now = Date.now()): boolean {
  if (read.owner === null) return now - read.mtimeMs > EMPTY_LOCK_GRACE_MS;
  const alive = processAlive(read.owner);
  if (alive === false) return true;
  if (alive === true) return false;
  return now - read.mtimeMs > staleMs;
}

/** Takes the lock if it is free (breaking a stale one); null when a live holder has it. */
export async function tryAcquireLock(path: string, options: LockOptions = {}): Promise<FileLock | null> {
  const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
  const owner: LockOwner = {
    ...currentProcess(),
    token: randomBytes(12).toString("hex"),
    acquiredAt: new Date().toISOString(),
    purpose: options.purpose ?? "",
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await fs.open(path, "wx", 0o644);
      try {
        await handle.writeFile(JSON.stringify(owner));
      } finally {
        await handle.close();
      }
      return new FileLock(path, owner, Math.max(50, Math.floor(staleMs / 4)));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        await fs.mkdir(dirname(path), { recursive: true }).catch(() => {});
        continue;
      }
      if (code !== "EEXIST") throw fsError(error, `lock ${path}`);
    }
    const read = await readOwner(path);
    if (read === null) continue; // released meanwhile: try again at once
    if (!lockIsStale(read, staleMs)) return null;
    await breakStaleLock(path, read.ino, staleMs);
  }
  return null;
}

/**
 * Waits for the lock, breaking it if its holder dies. A waiter watches the lock's directory (inotify) and
 * tries again as soon as the lock file goes away; it also polls (10 ms growing to 200 ms), which is all it
 * does where watching is not possible or not reliable (network filesystems shared by several hosts).
 * Without the watch, a process waiting for a blob another process was fetching noticed the release up to
 * 200 ms late, once per blob.
 */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<FileLock> {
  const started = Date.now();
  let delay = 10;
  let told = false;
  let release: ReleaseWatch | null = null;
  try {
    for (;;) {
      if (options.signal?.aborted) throw abortError(options.signal, `waiting for lock ${path}`);
      const lock = await tryAcquireLock(path, options);
      if (lock !== null) return lock;
      if (release === null) {
        // Watch first, then try once more: a release between the failed try and the watch is not missed.
        release = watchRelease(path);
        continue;
      }
      if (!told) {
        told = true;
        options.onWait?.((await readOwner(path))?.owner ?? null);
      }
      if (options.timeoutMs !== undefined && Date.now() - started >= options.timeoutMs) {
        const holder = (await readOwner(path))?.owner;
        throw new StoreError(
          "LOCKED",
          `${path} is locked by pid ${holder?.pid ?? "?"} on ${holder?.host ?? "?"}${holder?.purpose ? ` (${holder.purpose})` : ""}`,
          { subject: path },
        );
      }
      try {
        await Promise.race([sleep(delay, options.signal), release.next()]);
      } catch {
        throw abortError(options.signal, `waiting for lock ${path}`);
      }
      delay = Math.min(200, Math.ceil(delay * 1.5));
    }
  } finally {
    release?.close();
  }
}

interface ReleaseWatch {
  /** Resolves at the next change to the lock file's name (its removal, or a new holder's create). */
  next(): Promise<void>;
  close(): void;
}

function watchRelease(path: string): ReleaseWatch {
  const name = basename(path);
  let wake: (() => void) | null = null;
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || file === name) wake?.();
    });
    watcher.on("error", () => {
      watcher?.close();
      watcher = null;
    });
  } catch {
    watcher = null; // polling only
  }
  return {
    next: () =>
      watcher === null
        ? new Promise<void>(() => {})
        : new Promise<void>((resolve) => {
            wake = resolve;
          }),
    close: () => {
      watcher?.close();
      watcher = null;
      wake?.();
    },
  };
}

/** Runs `fn` while holding the lock. */
export async function withLock<T>(path: string, options: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** Inspects a lock without taking it: null when free. */
export async function lockStatus(
  path: string,
  staleMs = DEFAULT_STALE_MS,
): Promise<{ owner: LockOwner | null; stale: boolean } | null> {
  const read = await readOwner(path);
  if (read === null) return null;
  return { owner: read.owner, stale: lockIsStale(read, staleMs) };
}

/**
 * Removes the stale lock at `path` if it is still the file (inode `ino`) that was judged stale. Breakers are
 * serialized by `path.break`; the lock is renamed aside and its inode compared, and put back with link()
 * (which never overwrites) if it turns out to be a fresh lock.
 */
async function breakStaleLock(path: string, ino: number, staleMs: number): Promise<void> {
  const breakPath = `${path}.break`;
  let breaker: fs.FileHandle;
  try {
    breaker = await fs.open(breakPath, "wx", 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw fsError(error, `lock ${breakPath}`);
    const st = await fs.stat(breakPath).catch(() => null);
    if (st !== null && Date.now() - st.mtimeMs > BREAK_LOCK_STALE_MS) await fs.rm(breakPath, { force: true });
    return; // someone else is breaking it; the caller retries
  }
  try {
    await breaker.close();
    const again = await readOwner(path);
    if (again === null || again.ino !== ino || !lockIsStale(again, staleMs)) return;
    const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      await fs.rename(path, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw fsError(error, `break lock ${path}`);
    }
    const moved = await fs.stat(aside);
    if (moved.ino !== ino) await fs.link(aside, path).catch(() => {});
    await fs.rm(aside, { force: true });
  } finally {
    await fs.rm(breakPath, { force: true });
  }
}
