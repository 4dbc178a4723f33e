// A plain OCI image layout directory (`oci:DIR[:TAG]`), the format skopeo, umoci and containerd exchange
// images in, and the copy between it and a registry (`kpull copy`). Blobs are verified before they become
// visible (temp file, hash, size, fsync, rename); index.json is replaced atomically.

import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import {
  choosePlatformEntry,
  type Descriptor,
  type FetchedManifest,
  type ImageIndex,
  type ImageManifest,
  isIndexType,
  type Platform,
  parseManifestJson,
  type Repository,
} from "../registry/index.ts";
import { StoreError } from "./errors.ts";
import { fsyncDir, tempPathFor, writeFileAtomic } from "./fsutil.ts";
import { ANNOTATION_REF_NAME } from "./records.ts";

const LAYOUT = '{"imageLayoutVersion":"1.0.0"}';
const INDEX_TYPE = "application/vnd.oci.image.index.v1+json";
const SHA256 = /^sha256:([a-f0-9]{64})$/;

export interface CopyReport {
  /** The descriptor the tag points to at the destination. */
  readonly descriptor: Descriptor;
  readonly blobs: { readonly copied: number; readonly skipped: number; readonly bytes: number };
}

export class OciDirectory {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens a layout, creating `oci-layout`, `index.json` and `blobs/sha256` when `create` and absent. */
  static async open(dir: string, create: boolean): Promise<OciDirectory> {
    const layout = await fs.readFile(join(dir, "oci-layout"), "utf8").catch(() => null);
    if (layout === null) {
      if (!create)
        throw new StoreError("NOT_FOUND", `${dir} is not an OCI image layout (no oci-layout file)`, {
          subject: dir,
        });
      await fs.mkdir(join(dir, "blobs", "sha256"), { recursive: true });
      await writeFileAtomic(join(dir, "oci-layout"), LAYOUT);
      if ((await fs.stat(join(dir, "index.json")).catch(() => null)) === null) {
        await writeFileAtomic(
          join(dir, "index.json"),
          `${JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests: [] })}\n`,
        );
      }
    } else {
      await fs.mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    }
    return new OciDirectory(dir);
  }

  blobPath(digest: string): string {
    const m = SHA256.exec(digest);
    if (!m)
      throw new StoreError(
        "CORRUPT",
        `unsupported or malformed digest ${JSON.stringify(digest.slice(0, 80))}`,
      );
    return join(this.dir, "blobs", "sha256", m[1] as string);
  }

  async has(desc: Descriptor): Promise<boolean> {
    const st = await fs.stat(this.blobPath(desc.digest)).catch(() => null);
    return st?.isFile() === true && st.size === desc.size;
  }

  /** Writes a blob from `chunks`, checking size and digest before it becomes visible. */
  async write(desc: Descriptor, chunks: AsyncIterable<Uint8Array>): Promise<number> {
    const final = this.blobPath(desc.digest);
    const tmp = tempPathFor(final);
    const hash = createHash("sha256");
    let size = 0;
    const handle = await fs.open(tmp, "wx", 0o644);
    try {
      for await (const chunk of chunks) {
        size += chunk.length;
        if (size > desc.size)
          throw new StoreError("CORRUPT", `${desc.digest}: more than the ${desc.size} bytes expected`);
        hash.update(chunk);
        await handle.write(chunk);
      }
      if (size !== desc.size)
        throw new StoreError("CORRUPT", `${desc.digest}: ${size} bytes, expected ${desc.size}`);
      const got = `sha256:${hash.digest("hex")}`;
      if (got !== desc.digest) throw new StoreError("CORRUPT", `${desc.digest}: content hashes to ${got}`);
      await handle.sync();
      await handle.close();
      await fs.rename(tmp, final);
      await fsyncDir(join(this.dir, "blobs", "sha256"));
      return size;
    } catch (error) {
      await handle.close().catch(() => {});
      await fs.rm(tmp, { force: true });
      throw error;
    }
  }

  /** Reads a blob, verifying it against its descriptor as it streams. */
  async *read(desc: Descriptor): AsyncGenerator<Buffer> {
    const hash = createHash("sha256");
    let size = 0;
    let held: Buffer | null = null;
    for await (const chunk of createReadStream(this.blobPath(desc.digest))) {
      const buf = chunk as Buffer;
      size += buf.length;
      if (size > desc.size)
        throw new StoreError("CORRUPT", `${desc.digest} in ${this.dir}: larger than ${desc.size} bytes`);
      hash.update(buf);
      if (held !== null) yield held;
      held = buf;
    }
    const got = `sha256:${hash.digest("hex")}`;
    if (size !== desc.size || got !== desc.digest) {
      throw new StoreError("CORRUPT", `${desc.digest} in ${this.dir}: content does not match its descriptor`);
    }
    if (held !== null) yield held;
  }

  async readAll(desc: Descriptor): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const c of this.read(desc)) parts.push(c);
    return Buffer.concat(parts);
  }

  async index(): Promise<ImageIndex> {
    const text = await fs.readFile(join(this.dir, "index.json"), "utf8");
    const parsed = parseManifestJson(Buffer.from(text), INDEX_TYPE, `${this.dir}/index.json`);
    if (!("manifests" in parsed)) throw new StoreError("CORRUPT", `${this.dir}/index.json is not an index`);
    return parsed;
  }

  /** The descriptor tagged `tag` (`org.opencontainers.image.ref.name`); the only entry when `tag` is null. */
  async resolve(tag: string | null): Promise<Descriptor> {
    const entries = (await this.index()).manifests;
    const found =
      tag === null
        ? entries.length === 1
          ? entries[0]
          : undefined
        : entries.find((d) => d.annotations?.[ANNOTATION_REF_NAME] === tag);
    if (found === undefined) {
      throw new StoreError(
        "NOT_FOUND",
        tag === null
          ? `${this.dir} holds ${entries.length} images: name one with oci:${this.dir}:TAG`
          : `no image tagged ${JSON.stringify(tag)} in ${this.dir}`,
      );
    }
    return found;
  }

  /** Points `tag` at `desc` in index.json (replacing an entry with the same tag). */
  async tag(desc: Descriptor, tag: string | null): Promise<void> {
    const index = await this.index();
    const entry: Descriptor = {
      mediaType: desc.mediaType,
      digest: desc.digest,
      size: desc.size,
      ...(tag === null ? {} : { annotations: { [ANNOTATION_REF_NAME]: tag } }),
    };
    const manifests = [
      ...index.manifests.filter((d) =>
        tag === null ? d.digest !== desc.digest : d.annotations?.[ANNOTATION_REF_NAME] !== tag,
      ),
      entry,
    ];
    await writeFileAtomic(
      join(this.dir, "index.json"),
      `${JSON.stringify({ schemaVersion: 2, mediaType: INDEX_TYPE, manifests })}\n`,
    );
  }
}

export interface CopyOptions {
  /** Copy only this platform's manifest (the index is not copied); default: every platform. */
  readonly platform?: Platform;
  readonly signal?: AbortSignal;
}

/** What must be copied before a manifest or index: an index's manifests (walked in turn) or a manifest's
 * config and layers (plain blobs). */
function children(json: ImageManifest | ImageIndex): { manifests: Descriptor[]; blobs: Descriptor[] } {
  return "manifests" in json
    ? { manifests: [...json.manifests], blobs: [] }
    : { manifests: [], blobs: [json.config, ...json.layers] };
}

/** Registry → layout. Everything verified; blobs already in the layout are not fetched. */
export async function copyToDirectory(
  repo: Repository,
  dest: OciDirectory,
  tag: string | null,
  options: CopyOptions = {},
): Promise<CopyReport> {
  const counts = { copied: 0, skipped: 0, bytes: 0 };
  let root = await repo.resolve(options.signal ? { signal: options.signal } : {});
  if (options.platform && isIndexType(root.mediaType))
    root = await repo.platformDigest(root, { platform: options.platform });
  const copyManifest = async (desc: Descriptor): Promise<void> => {
    const fetched: FetchedManifest = await repo.manifestByDescriptor(
      desc,
      options.signal ? { signal: options.signal } : {},
    );
    const { manifests, blobs } = children(fetched.json);
    for (const child of manifests) await copyManifest(child);
    for (const child of blobs) {
      if (await dest.has(child)) {
        counts.skipped++;
      } else {
        counts.bytes += await dest.write(
          child,
          repo.blob(child, options.signal ? { signal: options.signal } : {}),
        );
        counts.copied++;
      }
    }
    if (await dest.has(desc)) counts.skipped++;
    else {
      counts.bytes += await dest.write(
        desc,
        (async function* () {
          yield fetched.bytes;
        })(),
      );
      counts.copied++;
    }
  };
  await copyManifest(root);
  await dest.tag(root, tag);
  return { descriptor: root, blobs: counts };
}

/** Layout → registry: blobs first (skipping those the registry has), then manifests, then the tag. */
export async function copyFromDirectory(
  src: OciDirectory,
  tag: string | null,
  repo: Repository,
  options: CopyOptions = {},
): Promise<CopyReport> {
  const counts = { copied: 0, skipped: 0, bytes: 0 };
  let root = await src.resolve(tag);
  if (options.platform && isIndexType(root.mediaType)) {
    const index = parseManifestJson(
      await src.readAll(root),
      root.mediaType,
      `${src.dir} ${root.digest}`,
    ) as ImageIndex;
    const chosen = choosePlatformEntry(options.platform, index.manifests);
    if (chosen < 0) throw new StoreError("NOT_FOUND", `no manifest for the platform in ${src.dir}`);
    root = index.manifests[chosen] as Descriptor;
  }
  const pushManifest = async (desc: Descriptor, target: string | undefined): Promise<void> => {
    const bytes = await src.readAll(desc);
    const json = parseManifestJson(bytes, desc.mediaType, `${src.dir} ${desc.digest}`);
    const { manifests, blobs } = children(json);
    for (const child of manifests) await pushManifest(child, undefined);
    for (const child of blobs) {
      const result = await repo.pushBlob(child, () => Readable.from(src.read(child)));
      if (result === "exists") counts.skipped++;
      else {
        counts.copied++;
        counts.bytes += child.size;
      }
    }
    await repo.pushManifest(bytes, desc.mediaType, target);
    counts.copied++;
    counts.bytes += bytes.length;
  };
  const target = repo.reference.tag ?? repo.reference.digest ?? "latest";
  await pushManifest(root, target.includes(":") ? undefined : target);
  return { descriptor: root, blobs: counts };
}
