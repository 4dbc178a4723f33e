// Throughput benchmark for applyLayer (not a test: run it by hand).
//   npx node src/store/unpack/throughput.bench.ts [MiB=1024]
// Builds a layer of about MiB uncompressed bytes (text-like and random files, one large file), compresses it
// to temp files (gzip -6, zstd -3), then applies each from disk and reports uncompressed MB/s, CPU use
// (user+system time over wall time: above 100% means more than one core worked), peak RSS growth and the
// event loop's worst delay.

import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import * as fs from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { constants, createGzip, createZstdCompress } from "node:zlib";
import { applyLayer, type Compression } from "./index.ts";
import { header } from "./testkit.ts";

const MiB = 1024 * 1024;
const total = Number(process.argv[2] ?? 1024) * MiB;

function* layer(): Generator<Buffer> {
  const text = Buffer.from(
    Array.from({ length: 2000 }, (_, i) => `line ${i}: {"key": "value-${i % 97}", "n": ${i * 7}}\n`).join(""),
  );
  const random = randomBytes(4 * MiB);
  let written = 0;
  let i = 0;
  while (written < total) {
    // every 50th entry a big file; otherwise small files, alternating text-like and random content
    const size = i % 50 === 0 ? 32 * MiB : 4096 + ((i * 7919) % (256 * 1024));
    const src = i % 3 === 0 ? random : text;
    yield header({ name: `files/${i % 100}/f${i}`, flag: "0", size });
    for (let left = size; left > 0; ) {
      const n = Math.min(left, src.length);
      yield src.subarray(0, n);
      left -= n;
    }
    if (size % 512) yield Buffer.alloc(512 - (size % 512));
    written += size + 512;
    i++;
  }
  yield Buffer.alloc(1024);
}

async function main(): Promise<void> {
  const dir = await fs.mkdtemp(join(tmpdir(), "kpull-bench-"));
  try {
    const hash = createHash("sha256");
    let bytes = 0;
    const tarPath = join(dir, "layer.tar");
    await pipeline(
      Readable.from(
        (function* () {
          for (const c of layer()) {
            hash.update(c);
            bytes += c.length;
            yield c;
          }
        })(),
      ),
      createWriteStream(tarPath),
    );
    const diffId = `sha256:${hash.digest("hex")}`;
    const files: [Compression, string][] = [["none", tarPath]];
    for (const [kind, make] of [
      ["gzip", () => createGzip({ level: 6 })],
      ["zstd", () => createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: 3 } })],
    ] as const) {
      const p = join(dir, `layer.tar.${kind}`);
      await pipeline(createReadStream(tarPath), make(), createWriteStream(p));
      files.push([kind, p]);
    }
    console.log(`layer: ${(bytes / MiB).toFixed(0)} MiB uncompressed`);
    for (const [kind, path] of [...files, ...files]) {
      const size = (await fs.stat(path)).size;
      const root = join(dir, `root-${kind}`);
      await fs.mkdir(root);
      execFileSync("sync"); // earlier writes must not be flushed during the measurement
      const loop = monitorEventLoopDelay({ resolution: 10 });
      const rss0 = process.memoryUsage().rss;
      let peak = rss0;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss);
      }, 20);
      loop.enable();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await applyLayer(root, createReadStream(path, { highWaterMark: MiB }), kind, diffId);
      const wall = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      loop.disable();
      clearInterval(sampler);
      console.log(
        `${kind.padEnd(4)} ${(size / MiB).toFixed(0).padStart(5)} MiB in: ${(r.bytes / MiB / wall).toFixed(0)} MB/s uncompressed, ` +
          `${wall.toFixed(2)} s, CPU ${(((cpu.user + cpu.system) / 1e6 / wall) * 100).toFixed(0)}%, ` +
          `peak RSS +${((peak - rss0) / MiB).toFixed(0)} MiB, event loop max delay ${(loop.max / 1e6).toFixed(0)} ms ` +
          `(p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms), ${r.entries} entries`,
      );
      await fs.rm(root, { recursive: true });
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

await main();
