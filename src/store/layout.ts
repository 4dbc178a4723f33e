// The store's directory layout. The root is an OCI image layout (image-spec image-layout.md) that skopeo and
// umoci can read; everything kpull keeps for itself lives under `kpull/`, which the layout spec allows
// ("unknown extra files must not cause errors").
//
//   ROOT/oci-layout                      {"imageLayoutVersion":"1.0.0"}
//   ROOT/index.json                      OCI index: one entry per image name (a projection of the records)
//   ROOT/blobs/sha256/HEX                verified, complete content only
//   ROOT/kpull/store.json                {"version":1,"createdAt":...}
//   ROOT/kpull/images.json               image records: name -> digest, platform, size, pulledAt, lastUsed, pinned
//   ROOT/kpull/ingest/sha256-HEX         partial downloads, resumable (visible nowhere else)
//   ROOT/kpull/locks/*.lock              O_EXCL lock files (store.lock, blob-sha256-HEX.lock)
//   ROOT/kpull/leases/ID.json            leases protecting in-flight pulls and running containers from GC
//   ROOT/kpull/snapshots/                unpacked snapshots (owned by src/store/unpack)
//   ROOT/kpull/gc.json                   the last GC's outcome (consecutive failures → ImageGCFailed)

import { promises as fs } from "node:fs";
import { join } from "node:path";
import { StoreError } from "./errors.ts";
import { createFileExclusive, fsyncDir, pathExists, readJsonFile } from "./fsutil.ts";

export const OCI_LAYOUT_VERSION = "1.0.0";
export const INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json";

export interface StorePaths {
  readonly root: string;
  readonly ociLayout: string;
  readonly indexJson: string;
  readonly blobs: string;
  readonly kpull: string;
  readonly storeJson: string;
  readonly imagesJson: string;
  readonly ingest: string;
  readonly locks: string;
  readonly leases: string;
  readonly snapshots: string;
  readonly gcJson: string;
  /** The store-wide lock for index.json, images.json, leases and GC (always taken last). */
  readonly metaLock: string;
}

export function storePaths(root: string): StorePaths {
  const kpull = join(root, "kpull");
  return {
    root,
    ociLayout: join(root, "oci-layout"),
    indexJson: join(root, "index.json"),
    blobs: join(root, "blobs", "sha256"),
    kpull,
    storeJson: join(kpull, "store.json"),
    imagesJson: join(kpull, "images.json"),
    ingest: join(kpull, "ingest"),
    locks: join(kpull, "locks"),
    leases: join(kpull, "leases"),
    snapshots: join(kpull, "snapshots"),
    gcJson: join(kpull, "gc.json"),
    metaLock: join(kpull, "locks", "store.lock"),
  };
}

const SHA256 = /^sha256:([a-f0-9]{64})$/;

/** The hex part of a sha256 digest; INVALID for anything else (the store keeps sha256 content only). */
export function digestHex(digest: string): string {
  const m = SHA256.exec(digest);
  if (m === null) {
    throw new StoreError(
      "INVALID",
      `unsupported or malformed digest ${JSON.stringify(digest.slice(0, 80))}`,
      {
        subject: digest,
      },
    );
  }
  return m[1] as string;
}

export function isSha256Hex(name: string): boolean {
  return /^[a-f0-9]{64}$/.test(name);
}

export function blobPath(paths: StorePaths, digest: string): string {
  return join(paths.blobs, digestHex(digest));
}

export function ingestPath(paths: StorePaths, digest: string): string {
  return join(paths.ingest, `sha256-${digestHex(digest)}`);
}

export function blobLockPath(paths: StorePaths, digest: string): string {
  return join(paths.locks, `blob-sha256-${digestHex(digest)}.lock`);
}

export interface StoreInfo {
  readonly version: 1;
  readonly createdAt: string;
}

/** Whether `root` already holds a kpull store. */
export async function storeExists(root: string): Promise<boolean> {
  const paths = storePaths(root);
  return (await pathExists(paths.ociLayout)) && (await pathExists(paths.kpull));
}

/**
 * Creates the layout if missing (idempotent, safe to race: every file is written atomically and only when
 * absent). An existing OCI layout written by another tool is adopted as is.
 */
export async function initLayout(root: string): Promise<StorePaths> {
  const paths = storePaths(root);
  let created = false;
  // The directories, then the three files, each group at once: on a new root this is every fsync of the
  // layout, and one after the other they were most of a first pull's set-up.
  const made = await Promise.all(
    [paths.blobs, paths.ingest, paths.locks, paths.leases].map((dir) => fs.mkdir(dir, { recursive: true })),
  );
  if (made.some((m) => m !== undefined)) created = true;
  // Files already there are left alone: every kpull command opens the store, and writing, fsyncing and
  // unlinking three temporary files to learn that they exist cost a few fsyncs per start. A file that
  // appears between the check and the create is still handled by createFileExclusive.
  const create = async (path: string, text: string): Promise<boolean> => {
    if (await pathExists(path)) return false;
    const made = await createFileExclusive(path, text);
    created ||= made;
    return made;
  };
  const checkLayout = async () => {
    const layout = await readJsonFile<{ imageLayoutVersion?: unknown } | null>(paths.ociLayout, null);
    if (typeof layout?.imageLayoutVersion !== "string") {
      throw new StoreError("INVALID", `${paths.ociLayout} is not an OCI layout file`, {
        subject: paths.ociLayout,
      });
    }
  };
  // An oci-layout already there is checked before anything is written next to it (a directory that is not
  // an OCI layout gets no index.json); a new root gets its three files at once.
  const exists = await pathExists(paths.ociLayout);
  if (exists) await checkLayout();
  const info: StoreInfo = { version: 1, createdAt: new Date().toISOString() };
  const [layoutCreated] = await Promise.all([
    exists
      ? false
      : create(paths.ociLayout, `${JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })}\n`),
    create(
      paths.indexJson,
      `${JSON.stringify({ schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: [] }, null, 2)}\n`,
    ),
    create(paths.storeJson, `${JSON.stringify(info)}\n`),
  ]);
  if (!exists && !layoutCreated) await checkLayout(); // another process created it meanwhile
  if (created) await fsyncDir(root);
  return paths;
}

export async function readStoreInfo(paths: StorePaths): Promise<StoreInfo | null> {
  return readJsonFile<StoreInfo | null>(paths.storeJson, null);
}
