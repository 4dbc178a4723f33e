// Streaming: a large layer is applied with flat memory, without stalling the event loop, and with the
// decompression off the main thread.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { createGzip } from "node:zlib";
import { applyLayer } from "./index.ts";
import { header, type Sandbox, sandbox } from "./testkit.ts";

const MiB = 1024 * 1024;

/** The uncompressed tar: `files` files of `size` bytes of text-like data, generated lazily. */
function* tarOf(files: number, size: number): Generator<Buffer> {
  const block = Buffer.from(
    Array.from({ length: 40_000 }, (_, i) => `${i} the quick brown fox ${(i * 7919) % 10007}\n`).join(""),
  ).subarray(0, MiB);
  for (let f = 0; f < files; f++) {
    yield header({ name: `data/f${f}`, flag: "0", size });
    for (let left = size; left > 0; left -= block.length)
      yield block.subarray(0, Math.min(left, block.length));
  }
  yield Buffer.alloc(1024);
}

describe("streaming", () => {
  let sb: Sandbox;
  before(async () => {
    sb = await sandbox();
  });
  after(async () => {
    await sb.assertUntouched();
    await sb.cleanup();
  });

  it("applies a 512 MiB gzip layer with flat memory and a responsive event loop", async () => {
    const hash = createHash("sha256");
    for (const b of tarOf(4, 128 * MiB)) hash.update(b);
    const diffId = `sha256:${hash.digest("hex")}`;
    const layer = Readable.from(tarOf(4, 128 * MiB), { objectMode: false }).pipe(createGzip({ level: 1 }));

    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await applyLayer(sb.root, layer, "gzip", diffId);
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    loop.disable();
    clearInterval(sampler);

    assert.equal(r.bytes, 4 * (128 * MiB + 512) + 1024);
    assert.equal((await fs.stat(join(sb.root, "data/f3"))).size, 128 * MiB);
    const grew = (peak - rss0) / MiB;
    assert.ok(grew < 96, `RSS grew by ${grew.toFixed(0)} MiB while streaming 512 MiB`);
    assert.ok(loop.max / 1e6 < 250, `event loop stalled for ${(loop.max / 1e6).toFixed(0)} ms`);
    // informational: CPU above 100% means the threadpool (zlib, writes) worked beside the main thread
    console.log(
      `# 512 MiB gzip layer (compressed in-process too): ${(512 / wall).toFixed(0)} MB/s, ` +
        `CPU ${(((cpu.user + cpu.system) / 1e6 / wall) * 100).toFixed(0)}%, RSS +${grew.toFixed(0)} MiB, ` +
        `event loop max delay ${(loop.max / 1e6).toFixed(0)} ms`,
    );
    await fs.rm(join(sb.root, "data"), { recursive: true });
  });
});
