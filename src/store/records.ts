// Image records (kpull/images.json) and their projection into the OCI layout's index.json. Both are rewritten
// whole (temp file + rename) under the store-wide metadata lock: records first, then index.json, so
// index.json may lag after a crash but never leads; every later write, and `verify --repair`, brings it back
// in line. GC treats both as roots.

import { promises as fs } from "node:fs";
import type { Descriptor, Platform } from "../registry/index.ts";
import { fsError, StoreError } from "./errors.ts";
import { writeFileAtomic } from "./fsutil.ts";
import { INDEX_MEDIA_TYPE, type StorePaths } from "./layout.ts";

export const ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name";
export const ANNOTATION_IMAGE_NAME = "io.containerd.image.name";

/** The descriptor fields a record keeps (no annotations or urls). */
export interface RecordDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

export interface ImageRecord {
  /** Fully normalized reference the image was pulled as: `docker.io/library/nginx:1.27`, `host/app@sha256:…`. */
  readonly name: string;
  /** What the name resolved to at the registry: an index or a manifest. */
  readonly target: RecordDescriptor;
  /** The manifest for `platform` (equal to `target` for a single-platform image). */
  readonly manifest: RecordDescriptor;
  /** The config; its digest is the image ID (what CRI's PullImage returns, as containerd does). */
  readonly config: RecordDescriptor;
  readonly layers: readonly RecordDescriptor[];
  readonly platform: Platform | null;
  /** Bytes of content the image needs: manifest, config and layers (compressed, as stored). */
  readonly size: number;
  /** When this image ID was first stored under this name (the kubelet's firstDetected). */
  readonly pulledAt: string;
  /** When a container last used it (a lease naming it); null when never (never-used images GC first). */
  readonly lastUsed: string | null;
  /** Exempt from image GC (the CRI `pinned` flag). */
  readonly pinned: boolean;
}

interface RecordsFile {
  version: 1;
  images: Record<string, ImageRecord>;
}

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The image ID: the config digest. */
export function imageId(record: ImageRecord): string {
  return record.config.digest;
}

/** Every blob the image needs, target first. */
export function recordDigests(record: ImageRecord): RecordDescriptor[] {
  const all = [record.target, record.manifest, record.config, ...record.layers];
  const seen = new Set<string>();
  return all.filter((d) => {
    if (seen.has(d.digest)) return false;
    seen.add(d.digest);
    return true;
  });
}

export async function readRecords(paths: StorePaths): Promise<Map<string, ImageRecord>> {
  return (await readRecordsFile(paths)).records;
}

/** The records and the text they were read from (null when there is no file), so that a writer can tell an
 * unchanged file without reading it again. */
export async function readRecordsFile(
  paths: StorePaths,
): Promise<{ records: Map<string, ImageRecord>; text: string | null }> {
  const text = await readTextFile(paths.imagesJson);
  let file: RecordsFile | null;
  try {
    file = text === null ? null : (JSON.parse(text) as RecordsFile | null);
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new StoreError("CORRUPT", `${paths.imagesJson} is not valid JSON`, { subject: paths.imagesJson });
    }
    throw error;
  }
  if (file === null) return { records: new Map(), text };
  if (
    typeof file !== "object" ||
    file.version !== 1 ||
    typeof file.images !== "object" ||
    file.images === null
  ) {
    throw new StoreError("CORRUPT", `${paths.imagesJson} is not a kpull image records file (version 1)`, {
      subject: paths.imagesJson,
    });
  }
  return { records: new Map(Object.entries(file.images)), text };
}

export async function readIndex(paths: StorePaths): Promise<OciIndex> {
  return parseIndex(paths, await readTextFile(paths.indexJson));
}

function parseIndex(paths: StorePaths, text: string | null): OciIndex {
  let index: OciIndex;
  try {
    index =
      text === null
        ? { schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: [] }
        : (JSON.parse(text) as OciIndex);
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new StoreError("CORRUPT", `${paths.indexJson} is not valid JSON`, { subject: paths.indexJson });
    }
    throw error;
  }
  if (index === null || typeof index !== "object" || !Array.isArray(index.manifests)) {
    throw new StoreError("CORRUPT", `${paths.indexJson} is not an OCI image index`, {
      subject: paths.indexJson,
    });
  }
  return index;
}

/** `org.opencontainers.image.ref.name` as containerd's exporter writes it: the tag, or the whole name for a
 * digest-only reference (oci.md §6.5). */
export function refNameAnnotation(name: string): string {
  const at = name.indexOf("@");
  if (at >= 0) {
    const beforeDigest = name.slice(0, at);
    const colon = beforeDigest.lastIndexOf(":");
    return colon > beforeDigest.lastIndexOf("/") ? beforeDigest.slice(colon + 1) : name;
  }
  const colon = name.lastIndexOf(":");
  return colon > name.lastIndexOf("/") ? name.slice(colon + 1) : name;
}

/** index.json for these records: entries other tools added (no `io.containerd.image.name`) are kept, then one
 * entry per record, sorted by name, pointing at the platform's manifest. */
export function projectIndex(existing: OciIndex, records: ReadonlyMap<string, ImageRecord>): OciIndex {
  const foreign = existing.manifests.filter((d) => d.annotations?.[ANNOTATION_IMAGE_NAME] === undefined);
  const ours = [...records.values()]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map(
      (r): Descriptor => ({
        mediaType: r.manifest.mediaType,
        digest: r.manifest.digest,
        size: r.manifest.size,
        ...(r.platform ? { platform: r.platform } : {}),
        annotations: {
          [ANNOTATION_IMAGE_NAME]: r.name,
          [ANNOTATION_REF_NAME]: refNameAnnotation(r.name),
        },
      }),
    );
  return {
    ...existing,
    schemaVersion: 2,
    mediaType: existing.mediaType ?? INDEX_MEDIA_TYPE,
    manifests: [...foreign, ...ours],
  };
}

export function indexText(index: OciIndex): string {
  return `${JSON.stringify(index, null, 2)}\n`;
}

/** Writes records, then index.json. The caller holds the metadata lock. `current` is the text of
 * images.json as the caller read it under that lock (readRecordsFile), when it has it. */
export async function writeRecords(
  paths: StorePaths,
  records: ReadonlyMap<string, ImageRecord>,
  afterRecords?: () => void,
  current?: string | null,
): Promise<void> {
  const sorted = Object.fromEntries([...records.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const file: RecordsFile = { version: 1, images: sorted };
  await writeIfChanged(paths.imagesJson, `${JSON.stringify(file, null, 2)}\n`, current);
  afterRecords?.();
  await writeIndexProjection(paths, records);
}

/** Writes a small file atomically and durably unless it already holds exactly `text` (a pull of an image
 * that did not change, such as `Always` on an unchanged tag, then writes and fsyncs nothing). */
async function writeIfChanged(path: string, text: string, current?: string | null): Promise<void> {
  const was = current !== undefined ? current : await readTextFile(path).catch(() => null);
  if (was !== text) await writeFileAtomic(path, text);
}

/** A file's text; null when it does not exist. */
async function readTextFile(path: string): Promise<string | null> {
  try {
    return await fs.readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw fsError(error, `read ${path}`);
  }
}

export async function writeIndexProjection(
  paths: StorePaths,
  records: ReadonlyMap<string, ImageRecord>,
): Promise<void> {
  // Read once: parsed for the entries other tools added, and compared with what would be written.
  const text = await readTextFile(paths.indexJson).catch(() => null);
  let existing: OciIndex;
  try {
    existing = parseIndex(paths, text);
  } catch {
    existing = { schemaVersion: 2, mediaType: INDEX_MEDIA_TYPE, manifests: [] }; // rebuilt from the records
  }
  await writeIfChanged(paths.indexJson, indexText(projectIndex(existing, records)), text);
}
