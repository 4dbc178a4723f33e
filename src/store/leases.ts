// Leases (containerd's idea): a file under kpull/leases/ that protects content and images from GC while a
// pull is in flight or a container runs. A lease is active until it is released, until it expires, or — for a
// lease tied to a process — until that process is gone, so a SIGKILLed pull protects nothing for long.
// Leases are created and extended under the metadata lock, which GC holds while it marks and sweeps: content
// a lease names before the holder checks for it can never be swept under the holder.

import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { join } from "node:path";
import { fsError, StoreError } from "./errors.ts";
import { readJsonFile, tempPathFor, writeFileAtomic } from "./fsutil.ts";
import type { StorePaths } from "./layout.ts";
import { currentProcess, type ProcessIdentity, processAlive } from "./lock.ts";
import { type ImageRecord, imageId } from "./records.ts";

export interface LeaseRecord {
  readonly id: string;
  readonly purpose: string;
  readonly createdAt: string;
  /** null: until released. */
  readonly expiresAt: string | null;
  /** The process the lease dies with; null for a lease that outlives its creator (a running container). */
  readonly owner: ProcessIdentity | null;
  /** Image names (records) the lease keeps, and marks as in use. */
  readonly images: readonly string[];
  /** Blob digests the lease keeps. */
  readonly content: readonly string[];
  /** Snapshot ChainIDs the lease keeps (an unpack in flight). Absent in leases written before unpack. */
  readonly snapshots?: readonly string[];
}

export interface LeaseOptions {
  readonly purpose: string;
  readonly images?: readonly string[];
  readonly content?: readonly string[];
  readonly snapshots?: readonly string[];
  /** Expire after this long; default: never (until released or its owner dies). */
  readonly ttlMs?: number | undefined;
  /** Tie the lease to this process (default true). A container's lease that outlives `kpull` passes false. */
  readonly processBound?: boolean;
}

const ID_RE = /^[a-z0-9][a-z0-9._-]{0,127}$/;

export function leasePath(paths: StorePaths, id: string): string {
  if (!ID_RE.test(id)) throw new StoreError("INVALID", `bad lease id ${JSON.stringify(id)}`, { subject: id });
  return join(paths.leases, `${id}.json`);
}

export function newLease(options: LeaseOptions, now = Date.now()): LeaseRecord {
  return {
    id: `${now.toString(36)}-${randomBytes(6).toString("hex")}`,
    purpose: options.purpose,
    createdAt: new Date(now).toISOString(),
    expiresAt: options.ttlMs === undefined ? null : new Date(now + options.ttlMs).toISOString(),
    owner: options.processBound === false ? null : currentProcess(),
    images: [...(options.images ?? [])],
    content: [...(options.content ?? [])],
    snapshots: [...(options.snapshots ?? [])],
  };
}

/** Whether a lease still protects what it names. An owner whose liveness cannot be checked from here
 * (another host or pid namespace) keeps its lease until it expires. */
export function leaseActive(lease: LeaseRecord, now = Date.now()): boolean {
  if (lease.expiresAt !== null && Date.parse(lease.expiresAt) <= now) return false;
  if (lease.owner !== null && processAlive(lease.owner) === false) return false;
  return true;
}

export async function writeLease(paths: StorePaths, lease: LeaseRecord): Promise<void> {
  const path = leasePath(paths, lease.id);
  const text = `${JSON.stringify(lease)}\n`;
  if (lease.owner === null) {
    await fs.mkdir(paths.leases, { recursive: true });
    await writeFileAtomic(path, text); // outlives this process: must survive a power loss
    return;
  }
  // A lease tied to this process protects nothing once the process is gone, and a power loss ends the
  // process: it needs to be visible to other processes (GC) at once, never durable. So it is written to a
  // temporary file and renamed into place (readers never see half a lease), without the two fsyncs a pull
  // paid three times over (create, then two additions).
  // The directory exists in every store (initLayout); it is created here only when a write finds it missing.
  const tmp = tempPathFor(path);
  try {
    try {
      await fs.writeFile(tmp, text, { flag: "wx", mode: 0o644 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      await fs.mkdir(paths.leases, { recursive: true });
      await fs.writeFile(tmp, text, { flag: "wx", mode: 0o644 });
    }
    await fs.rename(tmp, path);
  } catch (error) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw fsError(error, `write ${path}`);
  }
}

export async function readLease(paths: StorePaths, id: string): Promise<LeaseRecord | null> {
  try {
    return await readJsonFile<LeaseRecord | null>(leasePath(paths, id), null);
  } catch {
    return null; // a damaged lease protects nothing; GC removes it
  }
}

export async function deleteLease(paths: StorePaths, id: string): Promise<void> {
  try {
    await fs.unlink(leasePath(paths, id)); // not fs.rm, which costs an lstat first
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw fsError(error, `remove lease ${id}`);
  }
}

/** All lease files: the parseable ones, and the names of those that are not. */
export async function listLeases(paths: StorePaths): Promise<{ leases: LeaseRecord[]; damaged: string[] }> {
  let names: string[];
  try {
    names = await fs.readdir(paths.leases);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { leases: [], damaged: [] };
    throw fsError(error, `list ${paths.leases}`);
  }
  const leases: LeaseRecord[] = [];
  const damaged: string[] = [];
  for (const name of names.sort()) {
    if (!name.endsWith(".json") || name.startsWith(".")) continue;
    const id = name.slice(0, -".json".length);
    if (!ID_RE.test(id)) continue;
    const lease = await readLease(paths, id);
    if (lease === null || typeof lease !== "object" || !Array.isArray(lease.content)) damaged.push(id);
    else leases.push(lease);
  }
  return { leases, damaged };
}

/** Whether an active lease makes an image "in use": it names the image or its ID (a container). A pull's
 * lease holds content only, so an image being re-pulled is not "in use" by that. */
export function leaseUsesImage(lease: LeaseRecord, record: ImageRecord): boolean {
  return lease.images.includes(record.name) || lease.images.includes(imageId(record));
}
