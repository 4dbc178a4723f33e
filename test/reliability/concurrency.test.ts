// Eight processes on one store root for a bounded time (worker.ts): three pull overlapping images (and
// unpack half of them), one plays a running container (lease, pull, hold, check, release), two remove
// images, one runs the kubelet's image GC with a 1 ms max age (so every image nobody uses goes) and the
// sweep, one checks under the metadata lock that every blob a record references is stored. Blob bodies come
// through a throttling proxy so downloads overlap. The run passes when:
//   - no worker reported a violation: a record referencing a blob that is not stored, or a leased image
//     removed or incomplete while its lease was held;
//   - nothing deadlocked: every worker kept reporting (no silence over 30 s), no operation took over 30 s,
//     and all exited on time;
//   - pulls never failed, and the only failures at all are unpacks of an image removed in the meantime;
//   - afterwards `verify` is clean, no partial snapshot is visible, and every image pulls and verifies.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Store } from "../../src/store/index.ts";
import { startFaultProxy } from "../harness/faults.ts";
import { seedImage, type TestImage, tinyImage, useRegistry } from "../harness/index.ts";
import {
  expectedSnapshots,
  type Files,
  FULL,
  kpull,
  maxOf,
  noise,
  partialSnapshots,
  percentile,
  record,
  scale,
  tempDir,
} from "./common.ts";

const WORKER = join(import.meta.dirname, "worker.ts");
const SECONDS = scale(4, 60);
const ROLES = ["pull", "pull", "pull", "container", "remove", "remove", "gc", "check"] as const;

const pool: Files[] = Array.from({ length: 6 }, (_, i) => ({
  [`layer${i}/data.bin`]: noise(150 * 1024, `conc-${i}`),
  [`layer${i}/id`]: `${i}\n`,
}));
const LAYOUT = [
  [0, 1, 2],
  [0, 1, 3],
  [0, 4, 5],
  [1, 3, 5],
] as const;
const IMAGES: { name: string; files: Files[]; image: TestImage }[] = LAYOUT.map((idx, i) => {
  const files = idx.map((j) => pool[j] as Files);
  return { name: `rel/conc-${i}`, files, image: tinyImage({ layers: files }) };
});

interface Line {
  role: string;
  pid: number;
  op: string;
  ok?: boolean;
  ms?: number;
  code?: string;
  error?: string;
  violation?: string;
}

describe("8 processes pulling, removing and collecting on one root", {
  timeout: (SECONDS + 180) * 1000,
}, () => {
  const registry = useRegistry();

  it(`for ${SECONDS} s: no lost or corrupt content, no deadlock, no leased image removed`, async () => {
    const r = registry();
    for (const img of IMAGES) await seedImage(r, img.name, "v1", img.image);
    // ~2 MB/s per blob body, so a 150 KB layer takes ~75 ms and pulls overlap.
    const proxy = await startFaultProxy(r, [
      { method: "GET", path: /\/blobs\//, action: { kind: "drip", bytesPerSecond: 2 * 1024 * 1024 } },
    ]);
    const root = tempDir("conc");
    await Store.open(root);
    const lines: Line[] = [];
    const lastHeard = new Map<number, number>();
    let silent: string | null = null;
    const started = Date.now();
    const kids: ReturnType<typeof spawn>[] = [];
    const exits = ROLES.map(
      (role, i) =>
        new Promise<{ role: string; code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
          (done, fail) => {
            const child = spawn(
              process.execPath,
              [WORKER, role, root, proxy.host, String(SECONDS), IMAGES.map((m) => m.name).join(",")],
              { env: { ...process.env, KPULL_TEST_CRASH: "" } },
            );
            lastHeard.set(i, Date.now());
            let buffer = "";
            let stderr = "";
            child.stdout.on("data", (c: Buffer) => {
              lastHeard.set(i, Date.now());
              buffer += c;
              let nl = buffer.indexOf("\n");
              while (nl >= 0) {
                lines.push(JSON.parse(buffer.slice(0, nl)) as Line);
                buffer = buffer.slice(nl + 1);
                nl = buffer.indexOf("\n");
              }
            });
            child.stderr.on("data", (c: Buffer) => {
              stderr += c;
            });
            child.on("error", fail);
            child.on("close", (code, signal) => {
              lastHeard.delete(i);
              done({ role, code, signal, stderr });
            });
            kids.push(child);
          },
        ),
    );
    // The watchdog: a worker silent for 30 s is stuck (a deadlock, or a wait that never ends).
    const watchdog = setInterval(() => {
      for (const [i, t] of lastHeard) {
        if (Date.now() - t > 30_000) {
          silent = `${ROLES[i]} worker ${i} silent for ${Math.round((Date.now() - t) / 1000)} s`;
          for (const k of kids) k.kill("SIGKILL");
        }
      }
    }, 1000);
    const results = await Promise.all(exits);
    clearInterval(watchdog);
    const wall = (Date.now() - started) / 1000;
    await proxy.stop();

    const violations = lines.filter((l) => l.violation !== undefined);
    const ops = lines.filter((l) => l.ok !== undefined && l.op !== "done");
    const failures = ops.filter((l) => l.ok === false);
    const byOp = new Map<string, Line[]>();
    for (const l of ops) byOp.set(l.op, [...(byOp.get(l.op) ?? []), l]);
    const perOp = Object.fromEntries(
      [...byOp].map(([op, ls]) => {
        const ms = ls.filter((l) => l.ms !== undefined).map((l) => l.ms as number);
        return [
          op,
          {
            count: ls.length,
            failed: ls.filter((l) => l.ok === false).length,
            p50: percentile(ms, 50),
            p99: percentile(ms, 99),
            max: maxOf(ms),
          },
        ];
      }),
    );
    const failureCodes: Record<string, number> = {};
    for (const f of failures)
      failureCodes[`${f.op}:${f.code}`] = (failureCodes[`${f.op}:${f.code}`] ?? 0) + 1;

    // After the run: verify clean, no partial snapshot, every image pulls whole.
    const store = await Store.open(root);
    const report = await store.verify();
    const expected = expectedSnapshots(IMAGES.map((m) => m.files));
    const partial = partialSnapshots(root, expected);
    for (const img of IMAGES) {
      const pull = await kpull(["pull", "--unpack", "-o", "json", `${r.host}/${img.name}:v1`], {
        root,
        insecure: r.host,
      });
      assert.equal(pull.code, 0, pull.stdout + pull.stderr);
    }
    const final = await store.verify();
    const row = {
      processes: ROLES.length,
      seconds: SECONDS,
      wallSeconds: Math.round(wall),
      operations: ops.length,
      perOp,
      failureCodes,
      violations: violations.length,
      deadlocks: silent === null ? 0 : 1,
      verifyClean: report.clean,
      partialSnapshots: partial.length,
      dataLost: report.missing.length + report.corrupt.length,
    };
    record("concurrency", row);
    if (FULL) console.log(JSON.stringify(row, null, 2));

    assert.equal(silent, null, `stuck: ${silent}`);
    for (const res of results)
      assert.equal(res.code, 0, `${res.role} exited ${res.code ?? res.signal}: ${res.stderr}`);
    assert.deepEqual(
      violations.map((v) => `${v.role}: ${v.violation}`),
      [],
    );
    assert.ok(wall < SECONDS + 60, `the run took ${wall} s`);
    const slowest = maxOf(ops.map((l) => l.ms ?? 0));
    assert.ok(slowest < 30_000, `an operation took ${slowest} ms`);
    for (const op of ["pull", "container-pull", "rmi", "gc", "check"]) {
      assert.equal(
        perOp[op]?.failed ?? 0,
        0,
        `${op} failures: ${JSON.stringify(failures.filter((f) => f.op === op).slice(0, 3))}`,
      );
    }
    // An unpack may lose its image to a concurrent rmi or GC; it then fails cleanly, saying so.
    for (const f of failures.filter((l) => l.op === "unpack")) {
      assert.ok(["NOT_FOUND", "CORRUPT"].includes(f.code ?? ""), `unpack failed: ${f.code} ${f.error}`);
    }
    for (const role of new Set(ROLES))
      assert.ok(
        ops.some((l) => l.role === role),
        `${role} did something`,
      );
    assert.deepEqual([report.corrupt, report.missing, report.problems], [[], [], []]);
    assert.deepEqual(partial, []);
    assert.equal(final.clean, true);
  });
});

describe("an unpack that loses its image to a concurrent GC", () => {
  const registry = useRegistry();

  it("fails with NOT_FOUND, never with an unhandled stream error that kills the process", async () => {
    const r = registry();
    const img = IMAGES[0] as (typeof IMAGES)[number];
    await seedImage(r, img.name, "v1", img.image);
    const root = tempDir("conc-unpack");
    const ref = `${r.host}/${img.name}:v1`;
    assert.equal((await kpull(["pull", ref], { root, insecure: r.host })).code, 0);
    // What a sweep between the unpack's lookup and its lease leaves: the record, without a layer.
    const store = await Store.open(root);
    const layer = img.image.layers[1] as TestImage["layers"][number];
    await store.content.delete(layer.digest);
    await assert.rejects(store.unpack(ref), (e: unknown) => {
      assert.equal((e as { code?: string }).code, "NOT_FOUND", String(e));
      return true;
    });
    // And a stream of a blob that vanished errors for its reader, not for the process.
    const stream = store.content.open(layer.digest);
    await new Promise((done) => setTimeout(done, 20));
    await assert.rejects(
      (async () => {
        for await (const _ of stream);
      })(),
      /ENOENT/,
    );
  });
});
