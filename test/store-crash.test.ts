// Crash safety and cross-process sharing of the store, with real processes: a pulling process is SIGKILLed
// at named points (KPULL_TEST_CRASH, see src/store/crash.ts), after which the store verifies clean and a new
// pull fetches exactly what is missing (resuming partial downloads with Range); and 4 processes pulling one
// image into one root fetch each blob once, as the registry's own log shows.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, statSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CredentialStore, RegistryClient } from "../src/registry/index.ts";
import { Store } from "../src/store/index.ts";
import {
  type RunningProxy,
  type RunningRegistry,
  seedImage,
  startProxy,
  type TestImage,
  tinyImage,
  useRegistry,
} from "./harness/index.ts";

const SELF = import.meta.filename;

// Child mode: this file run as a plain script with KPULL_STORE_CHILD=pull is one pulling process (the store
// library, so these tests do not depend on how the image manager's `kpull pull` reports). It prints a JSON
// summary and exits; KPULL_TEST_CRASH makes it SIGKILL itself at a named point.
if (process.env.KPULL_STORE_CHILD === "pull") {
  const [root, ref, insecure, hosts] = process.argv.slice(2) as [string, string, string, string];
  const c = new RegistryClient({
    hostsDir: hosts,
    insecureRegistries: [insecure],
    credentials: new CredentialStore({ dockerConfigDir: null, env: {} }),
  });
  try {
    const result = await (await Store.open(root)).pullImage(c, ref);
    const layers = result.blobs.filter((b) => b.kind === "layer");
    process.stdout.write(
      `${JSON.stringify({
        fetched: result.fetched,
        reused: result.reused,
        layers: {
          fetched: layers.filter((b) => b.status === "fetched").length,
          waited: layers.filter((b) => b.status === "waited").length,
        },
      })}\n`,
    );
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    await c.close();
  }
}
if (process.env.KPULL_STORE_CHILD === "gc") {
  const store = await Store.open(process.argv[2] as string);
  const report = await store.garbageCollect({ policy: { maxAgeMs: 1, highThresholdPercent: 100 } });
  process.stdout.write(`${JSON.stringify({ removed: report.removed.length })}\n`);
}
// A child never reaches the tests below (stdout is a pipe: writes are synchronous on Linux, nothing is lost).
if (process.env.KPULL_STORE_CHILD !== undefined) process.exit();

/** A pulling process (see child mode above). */
function pullProcess(root: string, ref: string, insecure: string, env: Record<string, string> = {}) {
  return spawnNode([SELF, root, ref, insecure, hostsDir], { KPULL_STORE_CHILD: "pull", ...env });
}
const hostsDir = mkdtempSync(join(tmpdir(), "kpull-hosts-"));
const dockerConfigDir = mkdtempSync(join(tmpdir(), "kpull-docker-"));

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function spawnNode(args: string[], env: Record<string, string>): Promise<ChildResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, {
      env: { PATH: process.env.PATH ?? "", HOME: dockerConfigDir, DOCKER_CONFIG: dockerConfigDir, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c;
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c;
    });
    child.on("error", fail);
    child.on("close", (code, signal) => done({ code, signal, stdout, stderr }));
  });
}

function noise(size: number, seed: string): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; parts.length * 32 < size; i++)
    parts.push(createHash("sha256").update(`${seed}-${i}`).digest());
  return Buffer.concat(parts).subarray(0, size);
}

function newRoot(): string {
  return mkdtempSync(join(tmpdir(), "kpull-root-"));
}

/** Blob digests in the store, and partial ingests with their sizes. */
function storeState(root: string): { blobs: Set<string>; partial: Map<string, number> } {
  const blobs = new Set(readdirSync(join(root, "blobs", "sha256")).map((h) => `sha256:${h}`));
  const partial = new Map<string, number>();
  const ingest = join(root, "kpull", "ingest");
  for (const name of readdirSync(ingest)) {
    const m = /^sha256-([a-f0-9]{64})$/.exec(name);
    if (m) partial.set(`sha256:${m[1]}`, statSync(join(ingest, name)).size);
  }
  return { blobs, partial };
}

function allBlobs(image: TestImage): { digest: string; size: number }[] {
  return [image.manifest, image.config, ...image.layers].map((b) => ({
    digest: b.digest,
    size: b.bytes.length,
  }));
}

describe("crash safety: SIGKILL a pulling process at many points", () => {
  const registry = useRegistry();
  let r: RunningRegistry;
  let proxy: RunningProxy;
  const image = tinyImage({
    layers: [
      { "small.txt": "small layer\n" },
      { "noise.bin": noise(1_200_000, "crash-big") },
      { "noise2.bin": noise(300_000, "crash-mid") },
    ],
  });

  before(async () => {
    r = registry();
    await seedImage(r, "team/crash", "v1", image);
    proxy = await startProxy(r, []); // pass-through, to see Range headers
  });
  after(async () => {
    await proxy?.stop();
  });

  const points = [
    "ingest-write:1", // the first write of the first blob (the manifest)
    "ingest-write:12", // in the middle of the layer downloads
    "ingest-before-rename", // a blob fully downloaded and fsynced, not yet renamed
    "ingest-after-rename:2", // a blob committed, its lock file left behind
    "pull-before-record", // every blob committed, no image record yet
    "records-before-index", // the record written, index.json not yet
  ];

  for (const point of points) {
    it(`at ${point}: verify is clean and the next pull fetches only what is missing`, async () => {
      const root = newRoot();
      const ref = `${proxy.host}/team/crash:v1`;
      const crashed = await pullProcess(root, ref, proxy.host, { KPULL_TEST_CRASH: point });
      assert.equal(
        crashed.signal,
        "SIGKILL",
        `the child died at ${point}: ${crashed.stderr}${crashed.stdout}`,
      );

      const store = await Store.open(root);
      const report = await store.verify();
      assert.deepEqual(report.corrupt, [], point);
      assert.deepEqual(report.missing, [], point);
      assert.equal(report.clean, true, point);

      const { blobs, partial } = storeState(root);
      const seen = proxy.requests.length;
      const again = await pullProcess(root, ref, proxy.host);
      assert.equal(again.code, 0, again.stderr);
      const gets = proxy.requests.slice(seen).filter((q) => q.method === "GET" && q.path.includes("/blobs/"));
      // A partial ingest that already holds every byte (killed right after its last write) needs no request:
      // the next pull hashes it and commits it.
      const wanted = allBlobs(image).filter(
        (b) => b.digest !== image.manifest.digest && !blobs.has(b.digest) && partial.get(b.digest) !== b.size,
      );
      assert.deepEqual(
        gets.map((q) => q.path.slice(q.path.lastIndexOf("/") + 1)).sort(),
        wanted.map((b) => b.digest).sort(),
        `${point}: only the missing blobs are fetched`,
      );
      for (const q of gets) {
        const digest = q.path.slice(q.path.lastIndexOf("/") + 1);
        const size = wanted.find((b) => b.digest === digest)?.size ?? 0;
        const have = partial.get(digest) ?? 0;
        assert.equal(q.range, have > 0 ? `bytes=${have}-` : null, `${point}: ${digest} resumes at ${have}`);
        assert.equal(q.bytesSent, size - have);
      }
      const manifestGets = proxy.requests
        .slice(seen)
        .filter((q) => q.method === "GET" && q.path.includes("/manifests/"));
      // The manifest is ingested like any blob: a complete partial ingest of it needs no request either.
      const manifestHeld =
        blobs.has(image.manifest.digest) ||
        partial.get(image.manifest.digest) === image.manifest.bytes.length;
      assert.equal(manifestGets.length, manifestHeld ? 0 : 1);

      const after = await store.verify();
      assert.equal(after.clean, true);
      assert.equal(after.indexOutOfDate, false, "the new pull rewrote index.json");
      assert.equal((await store.status(ref))?.complete, true);
    });
  }

  it("at gc-sweep: a GC killed mid-sweep leaves a clean store; the next pull refetches what went", async () => {
    const root = newRoot();
    const ref = `${proxy.host}/team/crash:v1`;
    assert.equal((await pullProcess(root, ref, proxy.host)).code, 0);
    await new Promise((done) => setTimeout(done, 10));
    // The image GC's age pass removes the record, then the sweep is killed after its second deletion.
    const gc = await spawnNode([SELF, root], { KPULL_STORE_CHILD: "gc", KPULL_TEST_CRASH: "gc-sweep:2" });
    assert.equal(gc.signal, "SIGKILL", gc.stderr);
    const store = await Store.open(root);
    const report = await store.verify();
    assert.equal(report.clean, true);
    assert.deepEqual(await store.images(), [], "the record went before the sweep");
    const { blobs } = storeState(root);
    assert.equal(blobs.size, 5 - 2, "two blobs were deleted before the kill");
    assert.equal(report.orphaned.length, 3, "the rest are orphans the next gc sweeps");

    const seen = proxy.requests.length;
    assert.equal((await pullProcess(root, ref, proxy.host)).code, 0);
    const fetched = proxy.requests
      .slice(seen)
      .filter((q) => q.method === "GET")
      .map((q) => q.path.slice(q.path.lastIndexOf("/") + 1));
    const missing = allBlobs(image).filter((b) => !blobs.has(b.digest));
    assert.deepEqual(fetched.sort(), missing.map((b) => b.digest).sort());
    assert.equal((await store.verify()).clean, true);
  });
});

describe("4 processes pulling one image into one root", () => {
  const registry = useRegistry();

  it("fetch each blob once in total; the others wait and reuse it", async () => {
    const r = registry();
    const image = tinyImage({
      layers: [{ "a.txt": "a\n" }, { "big.bin": noise(1_000_000, "concurrent") }, { "c.txt": "c\n" }],
    });
    await seedImage(r, "team/shared", "v1", image);
    // Blob bodies trickle (32 kB every 25 ms), so all four processes are inside the pull at once.
    const slow = await throttlingProxy(r.url, 32 * 1024, 25);
    try {
      const root = newRoot();
      const ref = `${slow.host}/team/shared:v1`;
      const results = await Promise.all([1, 2, 3, 4].map(() => pullProcess(root, ref, slow.host)));
      for (const res of results) assert.equal(res.code, 0, res.stderr);
      const log = await r.accessLog();
      for (const b of [image.config, ...image.layers]) {
        const gets = log.filter((e) => e.method === "GET" && e.path.endsWith(`/blobs/${b.digest}`));
        assert.equal(gets.length, 1, `${b.digest} fetched ${gets.length} times`);
      }
      const summaries = results.map((res) => JSON.parse(res.stdout));
      const fetchedLayers = summaries.reduce((n, s) => n + s.layers.fetched, 0);
      assert.equal(fetchedLayers, image.layers.length, "each layer fetched by exactly one process");
      assert.ok(
        summaries.some((s) => s.layers.waited > 0),
        "at least one process waited for another's download",
      );
      const store = await Store.open(root);
      const report = await store.verify();
      assert.equal(report.clean, true);
      assert.deepEqual(report.orphaned, []);
      assert.deepEqual(report.ingests, []);
      assert.equal((await store.images()).length, 1);
      const c = new RegistryClient({
        hostsDir,
        credentials: new CredentialStore({ dockerConfigDir: null, env: {} }),
      });
      try {
        const again = await store.pullImage(c, `${r.host}/team/shared:v1`);
        assert.deepEqual(
          again.fetched,
          { blobs: 0, bytes: 0 },
          "another name for the same content costs one HEAD",
        );
      } finally {
        await c.close();
      }
    } finally {
      await slow.stop();
    }
  });
});

/** A forwarding proxy that sends blob bodies in `chunk`-byte pieces every `everyMs`. */
async function throttlingProxy(
  target: string,
  chunk: number,
  everyMs: number,
): Promise<{ host: string; stop: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      new URL(req.url ?? "/", target),
      { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (!/\/blobs\//.test(req.url ?? "")) {
          up.pipe(res);
          return;
        }
        const queue: Buffer[] = [];
        let ended = false;
        const timer = setInterval(() => {
          let budget = chunk;
          while (budget > 0 && queue.length > 0) {
            const head = queue[0] as Buffer;
            const piece = head.subarray(0, budget);
            res.write(piece);
            budget -= piece.length;
            if (piece.length === head.length) queue.shift();
            else queue[0] = head.subarray(piece.length);
          }
          if (ended && queue.length === 0) {
            clearInterval(timer);
            res.end();
          }
        }, everyMs);
        up.on("data", (c: Buffer) => queue.push(c));
        up.on("end", () => {
          ended = true;
        });
        res.on("close", () => clearInterval(timer));
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
