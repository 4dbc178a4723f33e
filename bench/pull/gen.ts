// Deterministic, streamed bench images: layer tars of many files (text that compresses like source code and
// logs, half-random "binaries", incompressible assets), compressed with gzip (level 6, as docker and
// containerd write them) or zstd (level 3), hashed on both sides (digest and DiffID) and written to a cache
// directory. Nothing larger than one 1 MiB chunk is held in memory, whatever the layer size. The same spec
// always gives the same tars; the compressed bytes depend only on Node's bundled zlib/zstd, so the cache is
// keyed by the spec, the generator version and the Node version.

import { createCipheriv, createHash, type Hash } from "node:crypto";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip, createZstdCompress, constants as zlib } from "node:zlib";

const GENERATOR_VERSION = 3;

export const MEDIA = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  gzipLayer: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstdLayer: "application/vnd.oci.image.layer.v1.tar+zstd",
} as const;

/** One layer: a seed and a target uncompressed size; the files are derived from both. */
export interface LayerSpec {
  readonly seed: string;
  readonly bytes: number;
  /** Largest file; default min(8 MiB, bytes / 3). */
  readonly maxFile?: number;
  readonly compression?: "gzip" | "zstd";
}

export interface ImageSpecB {
  readonly name: string;
  readonly layers: readonly LayerSpec[];
  readonly architecture?: string;
  readonly variant?: string;
}

export interface BenchBlob {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  /** File holding the blob in the cache. */
  readonly path: string;
}

export interface BenchLayer extends BenchBlob {
  readonly diffId: string;
  readonly uncompressed: number;
  readonly files: number;
}

export interface BenchImage {
  readonly name: string;
  readonly manifest: BenchBlob;
  readonly config: BenchBlob;
  readonly layers: readonly BenchLayer[];
  readonly platform: { os: string; architecture: string; variant?: string };
}

export interface BenchIndex {
  readonly name: string;
  readonly index: BenchBlob;
  readonly images: readonly BenchImage[];
}

/** xorshift32 for structure (file sizes, kinds, names); AES-CTR for bulk bytes. */
class Rng {
  #s: number;
  constructor(seed: string) {
    this.#s = createHash("sha256").update(seed).digest().readUInt32LE(0) || 1;
  }
  next(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s / 2 ** 32;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

const ZEROS = Buffer.alloc(1 << 20);

function keystream(seed: string) {
  const key = createHash("sha256").update(seed).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  const zeros = ZEROS;
  return (n: number): Buffer => cipher.update(zeros.subarray(0, n));
}

const WORDS = (
  "const let var function return if else for while import export from class extends new this null true " +
  "false await async yield static public private string number boolean void object array map set get " +
  "value key index error result data config options request response handler server client buffer " +
  "stream error warn info debug trace level time date user name path file read write open close init " +
  "start stop run test build make load save parse format print log message status code type kind node " +
  "pod image layer digest sha256 manifest registry store content blob size count total bytes offset " +
  "length width height x y z a b c i j k n m = == === != !== < > <= >= + - * / % && || ! ? : ; , . ( ) " +
  "{ } [ ] => -> :: // /* */ # @ $ 0 1 2 3 4 5 6 7 8 9 10 16 32 64 100 255 1024 4096 65536 0x00 0xff " +
  "GET POST PUT HEAD DELETE 200 201 404 500 INFO WARN ERROR DEBUG localhost 127.0.0.1 http https api " +
  "v1 v2 lib bin usr etc var opt share include src test spec docs README LICENSE main index util " +
  "helpers common core internal pkg cmd vendor module package version release stable beta alpha"
).split(" ");
const VOCAB = (() => {
  const words: Buffer[] = [];
  for (let i = 0; i < 256; i++) {
    const w = WORDS[i % WORDS.length] as string;
    // 1 in 16 tokens ends a line, with indentation; the rest are separated by a space
    words.push(Buffer.from(i % 16 === 0 ? `${w}\n    ` : i % 16 === 8 ? `${w};\n  ` : `${w} `));
  }
  return words;
})();

/** Text that gzips to roughly a quarter: a token per random byte. */
function fillText(out: Buffer, random: Buffer): void {
  let o = 0;
  let r = 0;
  while (o < out.length) {
    const w = VOCAB[random[r++ % random.length] as number] as Buffer;
    const n = Math.min(w.length, out.length - o);
    for (let i = 0; i < n; i++) out[o + i] = w[i] as number;
    o += n;
  }
}

type Kind = "text" | "binary" | "random";

interface FileEntry {
  readonly path: string;
  readonly size: number;
  readonly kind: Kind;
}

/** The files of a layer: directories of 5 to 40 files; 95% log-uniform in 100 B..64 KiB, 5% up to maxFile. */
export function layerFiles(spec: LayerSpec): { dirs: string[]; files: FileEntry[] } {
  const rng = new Rng(`files:${spec.seed}`);
  const maxFile = Math.max(1024, spec.maxFile ?? Math.min(8 << 20, Math.floor(spec.bytes / 3)));
  const top = `opt/${spec.seed.replace(/[^a-z0-9]/gi, "").slice(0, 24) || "layer"}`;
  const dirs = ["opt/", `${top}/`];
  const files: FileEntry[] = [];
  let total = 0;
  let dir = "";
  let left = 0;
  const ext: Record<Kind, string[]> = {
    text: [".js", ".py", ".go", ".json", ".txt", ".conf", ".html", ".md"],
    binary: [".so", ".bin", ".o", ".a"],
    random: [".png", ".gz", ".jar", ".woff2"],
  };
  while (total < spec.bytes) {
    if (left === 0) {
      dir = `${top}/d${dirs.length.toString(36)}`;
      dirs.push(`${dir}/`);
      left = 5 + rng.int(36);
    }
    left--;
    // Most files are small (headers, scripts, configs), a few are large (libraries, assets, models).
    const small = rng.next() < 0.95;
    const [lo, hi] = small ? [100, 64 << 10] : [64 << 10, Math.max(64 << 10, maxFile)];
    const u = rng.next();
    const kind: Kind = u < (small ? 0.7 : 0.5) ? "text" : u < 0.9 ? "binary" : "random";
    const size = Math.min(spec.bytes - total, Math.floor(lo * (hi / lo) ** rng.next()));
    const names = ext[kind];
    const path = `${dir}/f${files.length.toString(36)}${names[rng.int(names.length)]}`;
    files.push({ path, size, kind });
    total += size + 512 + ((512 - (size % 512)) % 512);
  }
  return { dirs, files };
}

function tarHeader(name: string, size: number, type: "0" | "5"): Buffer {
  const h = Buffer.alloc(512);
  const put = (offset: number, text: string) => h.write(text, offset, "ascii");
  h.write(name, 0, "utf8");
  put(100, type === "5" ? "0000755\0" : "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, `${size.toString(8).padStart(11, "0")}\0`);
  put(136, `${(1_700_000_000).toString(8).padStart(11, "0")}\0`);
  put(148, "        ");
  put(156, type);
  put(257, "ustar\0");
  put(263, "00");
  put(265, "root");
  put(297, "root");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, `${sum.toString(8).padStart(6, "0")}\0 `);
  return h;
}

const CHUNK = 1 << 20;

/** The layer's tar, in chunks of at most 1 MiB. */
export async function* layerTar(spec: LayerSpec): AsyncGenerator<Buffer> {
  const { dirs, files } = layerFiles(spec);
  for (const d of dirs) yield tarHeader(d, 0, "5");
  for (const f of files) {
    yield tarHeader(f.path, f.size, "0");
    const random = keystream(`${spec.seed}:${f.path}`);
    let left = f.size;
    while (left > 0) {
      const n = Math.min(CHUNK, left);
      let chunk: Buffer;
      if (f.kind === "random") chunk = random(n);
      else if (f.kind === "text") {
        chunk = Buffer.allocUnsafe(n);
        fillText(chunk, random(Math.ceil(n / 5) + 1));
      } else {
        // "binary": 4 KiB pages, half random, half text (compresses to about 0.6)
        chunk = Buffer.allocUnsafe(n);
        const bytes = random(n);
        for (let p = 0; p < n; p += 4096) {
          const page = chunk.subarray(p, Math.min(n, p + 4096));
          if (((p / 4096) & 1) === 0) bytes.copy(page, 0, p, p + page.length);
          else fillText(page, bytes.subarray(p, p + Math.ceil(page.length / 5) + 1));
        }
      }
      left -= n;
      yield chunk;
    }
    const pad = (512 - (f.size % 512)) % 512;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}

function tap(hash: Hash, counter: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      counter.n += chunk.length;
      cb(null, chunk);
    },
  });
}

/** Writes one compressed layer into `dir`, named by its digest. */
async function writeLayer(spec: LayerSpec, dir: string): Promise<BenchLayer> {
  const compression = spec.compression ?? "gzip";
  const diff = createHash("sha256");
  const blob = createHash("sha256");
  const raw = { n: 0 };
  const out = { n: 0 };
  const tmp = join(dir, `tmp-${process.pid}-${spec.seed}-${compression}`);
  const compressor =
    compression === "zstd"
      ? createZstdCompress({ params: { [zlib.ZSTD_c_compressionLevel]: 3 } })
      : createGzip({ level: 6 });
  await pipeline(layerTar(spec), tap(diff, raw), compressor, tap(blob, out), createWriteStream(tmp));
  const hex = blob.digest("hex");
  const path = join(dir, hex);
  renameSync(tmp, path);
  return {
    mediaType: compression === "zstd" ? MEDIA.zstdLayer : MEDIA.gzipLayer,
    digest: `sha256:${hex}`,
    size: out.n,
    path,
    diffId: `sha256:${diff.digest("hex")}`,
    uncompressed: raw.n,
    files: layerFiles(spec).files.length,
  };
}

function writeJsonBlob(dir: string, mediaType: string, value: unknown): BenchBlob {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = createHash("sha256").update(bytes).digest("hex");
  const path = join(dir, hex);
  writeFileSync(path, bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length, path };
}

const desc = (b: BenchBlob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });

function assemble(spec: ImageSpecB, layers: readonly BenchLayer[], dir: string): BenchImage {
  const platform = {
    os: "linux",
    architecture: spec.architecture ?? "amd64",
    ...(spec.variant ? { variant: spec.variant } : {}),
  };
  const config = writeJsonBlob(dir, MEDIA.ociConfig, {
    ...platform,
    config: { Cmd: ["/bin/sh"], Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({
      created: "2023-11-14T22:13:20Z",
      created_by: `kpull bench layer ${i}`,
    })),
  });
  const manifest = writeJsonBlob(dir, MEDIA.ociManifest, {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: desc(config),
    layers: layers.map(desc),
  });
  return { name: spec.name, manifest, config, layers, platform };
}

export interface GeneratedSet {
  readonly images: Record<string, BenchImage>;
  readonly indexes: Record<string, BenchIndex>;
  readonly dir: string;
  readonly cached: boolean;
}

/**
 * Generates (or finds in `cacheRoot`) every image of `specs` and index of `indexSpecs`. Layers are built two
 * at a time (compression runs on libuv's thread pool, so both cores work); identical layer specs are built
 * once (medium:2 shares six of medium's layers).
 */
export async function generate(
  cacheRoot: string,
  specs: readonly ImageSpecB[],
  indexSpecs: readonly { name: string; images: readonly ImageSpecB[] }[],
  log: (line: string) => void,
): Promise<GeneratedSet> {
  const key = createHash("sha256")
    .update(JSON.stringify({ GENERATOR_VERSION, node: process.versions.node, specs, indexSpecs }))
    .digest("hex")
    .slice(0, 16);
  const dir = join(cacheRoot, key);
  const doneFile = join(dir, "set.json");
  if (existsSync(doneFile)) {
    const set = JSON.parse(readFileSync(doneFile, "utf8")) as Omit<GeneratedSet, "cached">;
    return { ...set, cached: true };
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const allSpecs = [...specs, ...indexSpecs.flatMap((i) => i.images)];
  const layerKey = (l: LayerSpec) => JSON.stringify(l);
  const unique = new Map<string, LayerSpec>();
  for (const s of allSpecs) for (const l of s.layers) unique.set(layerKey(l), l);
  const built = new Map<string, BenchLayer>();
  const queue = [...unique.entries()].sort((a, b) => b[1].bytes - a[1].bytes);
  const started = Date.now();
  await Promise.all(
    [0, 1].map(async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const [k, spec] = next;
        const layer = await writeLayer(spec, dir);
        built.set(k, layer);
        if (spec.bytes > 20 << 20)
          log(
            `  layer ${spec.seed} (${spec.compression ?? "gzip"}): ${mb(layer.uncompressed)} → ${mb(layer.size)}, ${layer.files} files`,
          );
      }
    }),
  );
  const images: Record<string, BenchImage> = {};
  const make = (s: ImageSpecB) =>
    assemble(
      s,
      s.layers.map((l) => built.get(layerKey(l)) as BenchLayer),
      dir,
    );
  for (const s of specs) images[s.name] = make(s);
  const indexes: Record<string, BenchIndex> = {};
  for (const i of indexSpecs) {
    const members = i.images.map(make);
    const index = writeJsonBlob(dir, MEDIA.ociIndex, {
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: members.map((m) => ({ ...desc(m.manifest), platform: m.platform })),
    });
    indexes[i.name] = { name: i.name, index, images: members };
  }
  const set = { images, indexes, dir };
  writeFileSync(`${doneFile}.tmp`, JSON.stringify(set));
  renameSync(`${doneFile}.tmp`, doneFile);
  log(`  generated in ${((Date.now() - started) / 1000).toFixed(1)} s into ${dir}`);
  return { ...set, cached: false };
}

export function mb(n: number): string {
  return `${(n / 1e6).toFixed(n < 10e6 ? 2 : 1)} MB`;
}
