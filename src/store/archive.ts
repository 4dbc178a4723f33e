// OCI archives (a tar of an OCI image layout) to carry images between nodes without a registry:
// `kpull export` writes the store's images, `kpull import` reads an archive (ours, or one skopeo or
// containerd wrote) through the same verified ingest as a registry pull.

import { createReadStream, createWriteStream, promises as fs } from "node:fs";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { formatReference, parseDockerRef, type Reference } from "../reference/index.ts";
import { type Descriptor, type Platform, parseManifestJson, RegistryError } from "../registry/index.ts";
import { StoreError } from "./errors.ts";
import { OciDirectory } from "./oci-dir.ts";
import type { ImageSource, PullResult } from "./pull.ts";
import { ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, type ImageRecord } from "./records.ts";
import type { Store } from "./store.ts";
import { ByteSource, TarReader } from "./unpack/tar.ts";

const BLOB_NAME = /^(?:\.\/)?blobs\/sha256\/([a-f0-9]{64})$/;

/** A ustar header for a regular file (names here are at most 77 bytes: `blobs/sha256/<64 hex>`). */
function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, "utf8");
  h.write("0000644\0", 100, "ascii");
  h.write("0000000\0", 108, "ascii");
  h.write("0000000\0", 116, "ascii");
  h.write(`${size.toString(8).padStart(11, "0")}\0`, 124, "ascii");
  h.write("00000000000\0", 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write("0", 156, "ascii");
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

async function* tarEntries(
  files: readonly { name: string; size: number; body: () => AsyncIterable<Buffer> }[],
): AsyncGenerator<Buffer> {
  for (const f of files) {
    yield tarHeader(f.name, f.size);
    for await (const chunk of f.body()) yield chunk;
    const pad = (512 - (f.size % 512)) % 512;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}

export interface ExportReport {
  readonly images: readonly { readonly name: string; readonly digest: string }[];
  readonly blobs: number;
  readonly bytes: number;
}

/** Writes the named images (each as its platform's manifest, config and layers) into an OCI archive.
 * Every blob is verified as it is read from the store; the archive appears only when complete. */
export async function exportArchive(
  store: Store,
  queries: readonly string[],
  file: string,
): Promise<ExportReport> {
  const records: ImageRecord[] = [];
  for (const q of queries) {
    const found = await store.find(q);
    if (found.length === 0) throw new StoreError("NOT_FOUND", `image "${q}" not found`, { subject: q });
    records.push(...found.filter((r) => !records.some((x) => x.name === r.name)));
  }
  const layout = await OciDirectory.open(store.root, false);
  const blobs = new Map<string, Descriptor>();
  for (const r of records) for (const d of [r.manifest, r.config, ...r.layers]) blobs.set(d.digest, d);
  const manifests = records.map((r) => ({
    mediaType: r.manifest.mediaType,
    digest: r.manifest.digest,
    size: r.manifest.size,
    annotations: { [ANNOTATION_IMAGE_NAME]: r.name, [ANNOTATION_REF_NAME]: refName(parseDockerRef(r.name)) },
    ...(r.platform ? { platform: r.platform } : {}),
  }));
  const index = Buffer.from(
    `${JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests })}\n`,
  );
  const ociLayout = Buffer.from('{"imageLayoutVersion":"1.0.0"}');
  const once = (b: Buffer) =>
    async function* () {
      yield b;
    };
  const entries = [
    { name: "oci-layout", size: ociLayout.length, body: once(ociLayout) },
    { name: "index.json", size: index.length, body: once(index) },
    ...[...blobs.values()].map((d) => ({
      name: `blobs/sha256/${d.digest.slice("sha256:".length)}`,
      size: d.size,
      body: () => layout.read(d),
    })),
  ];
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await pipeline(tarEntries(entries), createWriteStream(tmp, { flags: "wx" }));
    await fs.rename(tmp, file);
  } catch (error) {
    await fs.rm(tmp, { force: true });
    throw error;
  }
  return {
    images: records.map((r) => ({ name: r.name, digest: r.manifest.digest })),
    blobs: blobs.size,
    bytes: [...blobs.values()].reduce((n, d) => n + d.size, 0),
  };
}

/** The tag containerd's exporter puts in org.opencontainers.image.ref.name: the tag, else the full name. */
function refName(ref: Reference): string {
  return ref.tag ?? formatReference(ref);
}

export interface ImportOptions {
  readonly platform?: Platform;
  /** Largest archive member accepted (default 64 GiB). */
  readonly maxEntryBytes?: number;
  readonly signal?: AbortSignal;
}

export interface ImportReport {
  readonly images: readonly PullResult[];
}

/** Imports every named image of an OCI archive: the archive is unpacked into a private temporary layout
 * (only `oci-layout`, `index.json` and `blobs/sha256/<hex>` are accepted; anything else is refused), then
 * each image is ingested into the store as a pull would, verifying every blob against its digest. */
export async function importArchive(
  store: Store,
  file: string,
  options: ImportOptions = {},
): Promise<ImportReport> {
  // Inside the store's own directory: same filesystem, and private to it.
  const dir = await fs.mkdtemp(join(store.paths.kpull, "import-"));
  try {
    await extract(file, dir, options.maxEntryBytes ?? 64 * 1024 ** 3);
    const layout = await OciDirectory.open(dir, false);
    const entries = (await layout.index()).manifests;
    const results: PullResult[] = [];
    for (const entry of entries) {
      const name = entry.annotations?.[ANNOTATION_IMAGE_NAME] ?? entry.annotations?.[ANNOTATION_REF_NAME];
      if (name === undefined) continue; // an untagged entry: nothing to record it under
      let reference: string;
      try {
        reference = formatReference(parseDockerRef(name));
      } catch {
        throw new StoreError(
          "INVALID",
          `${file}: image name ${JSON.stringify(name)} is not a full reference`,
        );
      }
      const source: ImageSource = {
        repository: () => ({
          resolve: async () => entry,
          manifestByDescriptor: async (desc: Descriptor) => {
            const bytes = await layout.readAll(desc);
            return {
              descriptor: desc,
              bytes,
              json: parseManifestJson(bytes, desc.mediaType, `${file} ${desc.digest}`),
            };
          },
          blob: (desc: Descriptor) => layout.read(desc),
        }),
      };
      results.push(
        await store.pullImage(source, reference, {
          ...(options.platform ? { platform: options.platform } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
        }),
      );
    }
    if (results.length === 0)
      throw new StoreError("NOT_FOUND", `${file}: no named image in the archive's index.json`);
    return { images: results };
  } catch (error) {
    if (error instanceof RegistryError) throw new StoreError("CORRUPT", `${file}: ${error.message}`);
    throw error;
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function extract(file: string, dir: string, maxEntryBytes: number): Promise<void> {
  const stream = createReadStream(file);
  const reader = new TarReader(new ByteSource(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>));
  try {
    await fs.mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    for (;;) {
      const entry = await reader.next();
      if (entry === null) break;
      const name = entry.name.replace(/^\.\//, "");
      if (entry.type === "dir" && ["", "blobs", "blobs/", "blobs/sha256", "blobs/sha256/"].includes(name))
        continue;
      const blob = BLOB_NAME.exec(name);
      if (entry.type !== "file" || !(blob || name === "oci-layout" || name === "index.json")) {
        throw new StoreError(
          "INVALID",
          `${file}: unexpected archive member ${JSON.stringify(name.slice(0, 200))} (${entry.type})`,
        );
      }
      if (entry.size > maxEntryBytes)
        throw new StoreError("INVALID", `${file}: member ${name} is larger than ${maxEntryBytes} bytes`);
      if (name === "index.json" && entry.size > 16 * 1024 * 1024)
        throw new StoreError("INVALID", `${file}: index.json is too large`);
      const target = join(dir, blob ? join("blobs", "sha256", blob[1] as string) : name);
      await pipeline(reader.body(), createWriteStream(target, { flags: "wx" }));
    }
  } catch (error) {
    if (error instanceof StoreError) throw error;
    throw new StoreError("INVALID", `${file}: not a readable OCI archive: ${(error as Error).message}`);
  } finally {
    stream.destroy();
  }
}
