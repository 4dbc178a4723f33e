// kpull-lock.json: the digest each tag was pinned to, so `kpull pin --offline` can pin without a registry
// and `kpull pin --verify` can tell a moved tag from a changed lock.
//
//   {
//     "lockfileVersion": 1,
//     "images": {
//       "docker.io/library/nginx:1.27": {"digest": "sha256:…", "mediaType": "application/vnd.oci.image.index.v1+json"},
//       "ghcr.io/org/app:2.1": {"digest": "sha256:…", "mediaType": "…manifest.v1+json", "platform": "linux/arm64"}
//     }
//   }
//
// Keys are fully qualified references with their tag (`nginx` is `docker.io/library/nginx:latest`). The digest
// is the index digest for multi-platform images, unless the pin asked for one platform. Keys are sorted, so
// the file diffs well.

import { readFile } from "node:fs/promises";
import { isDigest } from "../reference/index.ts";

export interface LockEntry {
  readonly digest: string;
  readonly mediaType: string;
  /** Set when the digest is one platform's manifest (`pin --platform`), not the index. */
  readonly platform?: string;
}

export interface LockFile {
  readonly lockfileVersion: 1;
  readonly images: Readonly<Record<string, LockEntry>>;
}

export class LockError extends Error {
  readonly code = "LockError" as const;
  constructor(file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = "LockError";
  }
}

export function emptyLock(): LockFile {
  return { lockfileVersion: 1, images: {} };
}

/** Reads a lock file; a missing file is an empty lock. Throws LockError for anything malformed. */
export async function readLock(file: string): Promise<LockFile> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return emptyLock();
    throw new LockError(file, (error as Error).message);
  }
  return parseLock(text, file);
}

export function parseLock(text: string, file: string): LockFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new LockError(file, `not JSON: ${(error as Error).message}`);
  }
  const root = json as { lockfileVersion?: unknown; images?: unknown };
  if (typeof root !== "object" || root === null || root.lockfileVersion !== 1)
    throw new LockError(file, "not a kpull lock file (lockfileVersion 1)");
  if (typeof root.images !== "object" || root.images === null || Array.isArray(root.images))
    throw new LockError(file, '"images" must be an object');
  const images: Record<string, LockEntry> = {};
  for (const [key, value] of Object.entries(root.images as Record<string, unknown>)) {
    const v = value as Partial<LockEntry> | null;
    if (typeof v !== "object" || v === null || typeof v.digest !== "string" || !isDigest(v.digest))
      throw new LockError(file, `${key}: "digest" must be a valid digest`);
    if (typeof v.mediaType !== "string") throw new LockError(file, `${key}: "mediaType" must be a string`);
    if (v.platform !== undefined && typeof v.platform !== "string")
      throw new LockError(file, `${key}: "platform" must be a string`);
    images[key] = {
      digest: v.digest,
      mediaType: v.mediaType,
      ...(v.platform !== undefined ? { platform: v.platform } : {}),
    };
  }
  return { lockfileVersion: 1, images };
}

/** The file's text: keys sorted, two-space indentation, a final newline. */
export function serializeLock(lock: LockFile): string {
  const images: Record<string, LockEntry> = {};
  for (const key of Object.keys(lock.images).sort()) {
    const e = lock.images[key] as LockEntry;
    images[key] = {
      digest: e.digest,
      mediaType: e.mediaType,
      ...(e.platform !== undefined ? { platform: e.platform } : {}),
    };
  }
  return `${JSON.stringify({ lockfileVersion: 1, images }, null, 2)}\n`;
}
