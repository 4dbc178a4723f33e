// Crash points: a `kpull` process (the real CLI) is SIGKILLed at named points in download, commit, unpack,
// record updates, leases and GC (KPULL_TEST_CRASH=point:N, src/store/crash.ts). A first, uncrashed run of
// each scenario traces how often each point is reached (KPULL_TEST_CRASH_TRACE); the kill sites are every
// point at its first, middle and last visit. After each kill:
//   - the process did die there (SIGKILL), so every listed site is real;
//   - `kpull verify` is clean: no corrupt blob, nothing a record references missing;
//   - no partial snapshot is visible: every snapshot directory holds exactly its chain's files;
//   - the interrupted operation, run again, completes, and the pull that follows fetches only what is
//     missing: the bytes of blob GETs in the registry's own access log equal the sizes of the blobs not
//     committed less the verified prefixes kept in partial ingests;
//   - images the operation was not about (an image pinned against GC, another image sharing layers) are
//     complete and their snapshots intact throughout.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, readdirSync, readFileSync, rmSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Store } from "../../src/store/index.ts";
import { chainIds } from "../../src/store/unpack/index.ts";
import { startFaultProxy } from "../harness/faults.ts";
import {
  KPULL_BIN,
  type RunningRegistry,
  seedImage,
  sha256,
  type TestImage,
  tarOf,
  tinyImage,
  useRegistry,
} from "../harness/index.ts";
import {
  expectedSnapshots,
  type Files,
  FULL,
  kpull,
  noise,
  partialSnapshots,
  record,
  scale,
  storeFiles,
  tempDir,
  unverifiedBytes,
} from "./common.ts";

const base: Files = { "etc/os-release": "ID=kpull-crash\n", "bin/tool": noise(48 * 1024, "crash-base") };
const mid: Files = Object.fromEntries(
  Array.from({ length: 20 }, (_, i) => [
    `usr/lib/part-${String(i).padStart(2, "0")}.bin`,
    noise(60 * 1024, `crash-mid-${i}`),
  ]),
);
const topA: Files = { "app/a.bin": noise(300 * 1024, "crash-top-a"), "app/config": "a\n" };
const topB: Files = { "app/b.bin": noise(200 * 1024, "crash-top-b") };
const A = tinyImage({ layers: [base, mid, topA] });
const B = tinyImage({ layers: [base, mid, topB] });
const known = new Map<string, Buffer>(
  [A, B].flatMap((img) => [img.manifest, img.config, ...img.layers]).map((b) => [b.digest, b.bytes]),
);

const EXPECTED_SNAPSHOTS = expectedSnapshots([
  [base, mid, topA],
  [base, mid, topB],
]);

const REPO_A = "rel/crash-a";
const REPO_B = "rel/crash-b";

interface Scenario {
  readonly id: string;
  readonly what: string;
  /** the store it starts from (a template root copied for each kill), or null for an empty one */
  readonly template: "B" | "B-unpacked" | "AB-unpacked-A-pinned" | "partial" | "partial-stale" | null;
  readonly args: (refs: Refs) => string[];
  /** after the kill: finish the job (run the interrupted removal again) */
  readonly finish?: (root: string, refs: Refs) => Promise<void>;
  /** then the pull that brings back what the job was about */
  readonly pull: (refs: Refs) => { args: string[]; ref: string; image: TestImage };
  /** images that must be complete (and, if unpacked, intact) after the kill, whatever happened */
  readonly untouched: (refs: Refs) => { ref: string; image: TestImage }[];
  /** kill sites in npm test's fast subset */
  readonly fast: readonly string[];
}

interface Refs {
  readonly a: string;
  readonly b: string;
  readonly insecure: string;
}

async function ok(args: string[], root: string, insecure: string) {
  const run = await kpull(args, { root, ...(args[0] === "pull" ? { insecure } : {}) });
  assert.equal(run.code, 0, `kpull ${args.join(" ")}: ${run.stdout}${run.stderr}`);
  return run;
}

const SCENARIOS: readonly Scenario[] = [
  {
    id: "pull-cold",
    what: "kpull pull into an empty store",
    template: null,
    args: (r) => ["pull", "-o", "json", r.a],
    pull: (r) => ({ args: ["pull", "-o", "json", r.a], ref: r.a, image: A }),
    untouched: () => [],
    fast: ["ingest-write:2"],
  },
  {
    id: "pull-warm",
    what: "kpull pull of an image sharing two layers with one stored",
    template: "B",
    args: (r) => ["pull", "-o", "json", r.a],
    pull: (r) => ({ args: ["pull", "-o", "json", r.a], ref: r.a, image: A }),
    untouched: (r) => [{ ref: r.b, image: B }],
    fast: [],
  },
  {
    id: "pull-unpack",
    what: "kpull pull --unpack into an empty store",
    template: null,
    args: (r) => ["pull", "--unpack", "-o", "json", r.a],
    pull: (r) => ({ args: ["pull", "--unpack", "-o", "json", r.a], ref: r.a, image: A }),
    untouched: () => [],
    fast: ["unpack-entry:10"],
  },
  {
    id: "unpack-warm",
    what: "kpull pull --unpack of an image whose first two snapshots exist",
    template: "B-unpacked",
    args: (r) => ["pull", "--unpack", "-o", "json", r.a],
    pull: (r) => ({ args: ["pull", "--unpack", "-o", "json", r.a], ref: r.a, image: A }),
    untouched: (r) => [{ ref: r.b, image: B }],
    fast: [],
  },
  {
    id: "pull-resume",
    what: "kpull pull resuming the partial downloads a killed pull left",
    template: "partial",
    args: (r) => ["pull", "-o", "json", r.a],
    pull: (r) => ({ args: ["pull", "-o", "json", r.a], ref: r.a, image: A }),
    untouched: () => [],
    fast: [],
  },
  {
    id: "gc-stale-partial",
    what: "kpull gc sweeping partial downloads older than a day",
    template: "partial-stale",
    args: () => ["gc", "--high", "100", "--max-age", "0s", "-o", "json"],
    finish: async (root, r) => {
      await ok(["gc", "--high", "100", "--max-age", "0s", "-o", "json"], root, r.insecure);
    },
    pull: (r) => ({ args: ["pull", "-o", "json", r.a], ref: r.a, image: A }),
    untouched: () => [],
    fast: [],
  },
  {
    id: "rmi",
    what: "kpull rmi of an image sharing layers with another (records, then the sweep)",
    template: "AB-unpacked-A-pinned",
    args: (r) => ["rmi", r.b],
    finish: async (root, r) => {
      const images = (await (await Store.open(root)).images()).map((i) => i.name);
      if (images.some((n) => n.endsWith(`${REPO_B}:v1`))) await ok(["rmi", r.b], root, r.insecure);
      else await ok(["gc", "--high", "100", "--max-age", "0s"], root, r.insecure); // the sweep alone
    },
    pull: (r) => ({ args: ["pull", "--unpack", "-o", "json", r.b], ref: r.b, image: B }),
    untouched: (r) => [{ ref: r.a, image: A }],
    fast: ["rmi-after-records"],
  },
  {
    id: "gc",
    what: "kpull gc removing an unused image (age pass) and sweeping, another image pinned",
    template: "AB-unpacked-A-pinned",
    args: () => ["gc", "--max-age", "1ms", "-o", "json"],
    finish: async (root, r) => {
      await ok(["gc", "--max-age", "1ms", "-o", "json"], root, r.insecure);
    },
    pull: (r) => ({ args: ["pull", "--unpack", "-o", "json", r.b], ref: r.b, image: B }),
    untouched: (r) => [{ ref: r.a, image: A }],
    fast: ["gc-sweep:2"],
  },
];

/** Every record's content present, and an image's snapshots (when it has any) complete. */
async function assertComplete(root: string, ref: string, image: TestImage, where: string) {
  const store = await Store.open(root);
  const status = await store.status(ref);
  assert.ok(status !== null, `${where}: ${ref} is gone`);
  assert.equal(status.complete, true, `${where}: ${ref} misses ${status.missing.map((m) => m.digest)}`);
  assert.equal(status.record.manifest.digest, image.manifest.digest);
}

/** kpull with KPULL_TEST_CRASH or KPULL_TEST_CRASH_TRACE set (registry flags for a pull). */
function kpullWith(args: string[], root: string, insecure: string, env: Record<string, string>) {
  return kpull(args, { root, ...(args[0] === "pull" ? { insecure } : {}), env });
}

/** Kill sites from a trace: each point at its first, middle and last visit (a download's chunk count varies
 * from run to run, so ingest-write is cut at a third and two thirds instead). */
function killSites(trace: readonly string[]): string[] {
  const visits = new Map<string, number>();
  for (const p of trace) visits.set(p, (visits.get(p) ?? 0) + 1);
  const sites: string[] = [];
  for (const [point, v] of visits) {
    const ns =
      point === "ingest-write"
        ? [1, Math.max(1, Math.floor(v / 3)), Math.max(1, Math.floor((2 * v) / 3))]
        : [1, Math.ceil(v / 2), v];
    for (const n of [...new Set(ns)]) sites.push(n === 1 ? point : `${point}:${n}`);
  }
  return sites;
}

describe("crash points: SIGKILL at every named point, then verify and a pull that fetches only what is missing", {
  timeout: FULL ? 3_600_000 : 120_000,
}, () => {
  const registry = useRegistry();
  let r: RunningRegistry;
  let refs: Refs;
  const templates = new Map<string, string>();
  const rows: Record<string, unknown>[] = [];

  before(async () => {
    r = registry();
    await seedImage(r, REPO_A, "v1", A);
    await seedImage(r, REPO_B, "v1", B);
    refs = { a: `${r.host}/${REPO_A}:v1`, b: `${r.host}/${REPO_B}:v1`, insecure: r.host };
  });

  /** A template store, built on first use. */
  async function template(name: NonNullable<Scenario["template"]>): Promise<string> {
    const have = templates.get(name);
    if (have !== undefined) return have;
    const dir = tempDir(`crash-t-${name}`);
    if (name === "partial" || name === "partial-stale") {
      // A cold pull that ran into its deadline while the big layer stalled at 700,000 bytes: that layer is a
      // partial ingest, the rest committed.
      const mid = A.layers[1] as TestImage["layers"][number];
      const proxy = await startFaultProxy(r, [
        { method: "GET", path: new RegExp(mid.digest), action: { kind: "stall", afterBytes: 700_000 } },
      ]);
      try {
        const cut = await kpull(["pull", "--pull-deadline", "2s", `${proxy.host}/${REPO_A}:v1`], {
          root: dir,
          insecure: proxy.host,
        });
        assert.equal(cut.code, 1, cut.stdout + cut.stderr);
      } finally {
        await proxy.stop();
      }
      const { partial } = storeFiles(dir);
      assert.equal(partial.get(mid.digest), 700_000, "the template holds a partial download");
      if (name === "partial-stale") {
        const old = new Date(Date.now() - 2 * 24 * 60 * 60_000);
        for (const digest of partial.keys()) {
          utimesSync(join(dir, "kpull", "ingest", `sha256-${digest.slice(7)}`), old, old);
        }
      }
    } else if (name === "B") await ok(["pull", refs.b], dir, r.host);
    else if (name === "B-unpacked") await ok(["pull", "--unpack", refs.b], dir, r.host);
    else {
      await ok(["pull", "--unpack", refs.a], dir, r.host);
      await ok(["pull", "--unpack", refs.b], dir, r.host);
      await (await Store.open(dir)).pin(refs.a);
    }
    assert.deepEqual(partialSnapshots(dir, EXPECTED_SNAPSHOTS), []);
    templates.set(name, dir);
    return dir;
  }

  after(() => {
    if (FULL) {
      const total = rows.length;
      console.log(`crash sites: ${total}, survived: ${rows.filter((x) => x.survived).length}`);
    }
  });

  async function freshRoot(s: Scenario): Promise<string> {
    const root = tempDir(`crash-${s.id}`);
    rmSync(root, { recursive: true });
    if (s.template === null) return root;
    cpSync(await template(s.template), root, {
      recursive: true,
      verbatimSymlinks: true,
      preserveTimestamps: true,
    });
    return root;
  }

  for (const s of SCENARIOS) {
    it(`${s.id}: ${s.what}`, {
      skip: !FULL && s.fast.length === 0 ? "in npm run test:reliability" : false,
    }, async () => {
      let sites: string[];
      if (FULL) {
        const root = await freshRoot(s);
        const traceFile = join(tempDir("trace"), "points");
        const traced = await kpullWith(s.args(refs), root, refs.insecure, {
          KPULL_TEST_CRASH_TRACE: traceFile,
        });
        assert.equal(traced.code, 0, traced.stderr);
        sites = killSites(readFileSync(traceFile, "utf8").split("\n").filter(Boolean));
      } else sites = [...s.fast];

      for (const site of sites) {
        const root = await freshRoot(s);
        const where = `${s.id} at ${site}`;
        const killed = await kpullWith(s.args(refs), root, refs.insecure, { KPULL_TEST_CRASH: site });
        assert.equal(
          killed.signal,
          "SIGKILL",
          `${where}: not killed (exit ${killed.code}): ${killed.stderr}`,
        );

        // Right after the kill: verify clean, nothing unverified, no partial snapshot, bystanders whole.
        const verify = await kpull(["verify", "-o", "json"], { root });
        const report = JSON.parse(verify.stdout) as {
          clean: boolean;
          corrupt: unknown[];
          missing: unknown[];
        };
        assert.deepEqual([report.corrupt, report.missing], [[], []], `${where}: ${verify.stdout}`);
        assert.equal(verify.code, 0, `${where}: verify exit ${verify.code}`);
        assert.deepEqual(unverifiedBytes(root, known), [], where);
        assert.deepEqual(
          partialSnapshots(root, EXPECTED_SNAPSHOTS),
          [],
          `${where}: a partial snapshot is visible`,
        );
        for (const u of s.untouched(refs)) await assertComplete(root, u.ref, u.image, where);

        // Finish the job; the pull that brings the image back fetches exactly what is missing.
        await s.finish?.(root, refs);
        assert.equal((await kpull(["verify"], { root })).code, 0, `${where}: verify after finishing`);
        const { blobs, partial } = storeFiles(root);
        const mark = (await r.accessLog()).length;
        const next = s.pull(refs);
        await ok(next.args, root, refs.insecure);
        const pulled = [next];
        const log = (await r.accessLog()).slice(mark);
        const fetched = log
          .filter((e) => e.method === "GET" && /\/blobs\/sha256:/.test(e.path))
          .reduce((n, e) => n + e.bytes, 0);
        const wanted = new Set<string>();
        for (const p of pulled) for (const b of [p.image.config, ...p.image.layers]) wanted.add(b.digest);
        const missing = [...wanted]
          .filter((d) => !blobs.has(d))
          .reduce((n, d) => n + (known.get(d) as Buffer).length - (partial.get(d) ?? 0), 0);
        assert.equal(fetched, missing, `${where}: fetched ${fetched} bytes, ${missing} were missing`);
        const manifestGets = log.filter((e) => e.method === "GET" && /\/manifests\/sha256:/.test(e.path));
        // A manifest is fetched when not committed, unless a partial ingest already holds all of it.
        const manifestsMissing = pulled.filter(
          (p) =>
            !blobs.has(p.image.manifest.digest) &&
            partial.get(p.image.manifest.digest) !== p.image.manifest.bytes.length,
        ).length;
        assert.equal(manifestGets.length, manifestsMissing, `${where}: manifests fetched`);

        const again = await kpull(["verify", "-o", "json"], { root });
        assert.equal(again.code, 0, `${where}: ${again.stdout}`);
        assert.deepEqual(partialSnapshots(root, EXPECTED_SNAPSHOTS), [], where);
        for (const p of [...pulled, ...s.untouched(refs)]) await assertComplete(root, p.ref, p.image, where);
        const row = {
          scenario: s.id,
          site,
          survived: true,
          fetchedBytes: fetched,
          missingBytes: missing,
          dataLost: 0,
        };
        rows.push(row);
        record("crash", row);
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});

describe("a GC killed while it deletes a snapshot's files (SIGKILL from outside, timed by watching the files go)", {
  timeout: FULL ? 600_000 : 120_000,
}, () => {
  const registry = useRegistry();
  const FILES = scale(1000, 20_000);
  const many: Files = Object.fromEntries(
    Array.from({ length: FILES }, (_, i) => [`many/f${String(i).padStart(6, "0")}`, `${i}\n`]),
  );
  const small: Files = { "etc/hostname": "c\n" };
  const C = tinyImage({ layers: [small, many] });
  const chain = chainIds([small, many].map((f) => sha256(tarOf(f))));
  const top = chain[1] as string;

  it(`no half-deleted snapshot is ever visible, and the next unpack is whole (${FILES} files)`, async () => {
    const r = registry();
    await seedImage(r, "rel/crash-c", "v1", C);
    const ref = `${r.host}/rel/crash-c:v1`;
    const root = tempDir("crash-snap");
    await ok(["pull", "--unpack", ref], root, r.host);
    const dir = join(root, "kpull", "snapshots", top, "many");
    assert.equal(readdirSync(dir).length, FILES);

    const child = spawn(process.execPath, [KPULL_BIN, "rmi", ref, "--root", root], {
      env: { ...process.env, KPULL_TEST_CRASH: "" },
      stdio: "ignore",
    });
    const exited = new Promise<NodeJS.Signals | null>((done) => child.on("close", (_c, sig) => done(sig)));
    // Busy-watch the snapshot's files; the moment one is gone (or the directory moved away), kill.
    const deadline = Date.now() + 30_000;
    let seen = FILES;
    while (Date.now() < deadline) {
      try {
        seen = readdirSync(dir).length;
      } catch {
        seen = -1; // the directory itself is gone (renamed away, or fully removed)
      }
      if (seen < FILES) break;
    }
    child.kill("SIGKILL");
    const signal = await exited;
    const snapshots = readdirSync(join(root, "kpull", "snapshots"));
    record("crash-snapshot-removal", { files: FILES, killedAt: seen, signal, left: snapshots.length });

    // Whatever is left under a ChainID name must be the whole snapshot.
    for (const name of snapshots.filter((n) => n === top)) {
      const count = readdirSync(join(root, "kpull", "snapshots", name, "many")).length;
      assert.equal(count, FILES, `a half-deleted snapshot is visible as ${name}: ${count} of ${FILES} files`);
    }
    // The image is pulled and unpacked again before any GC ran: its rootfs is whole (a half-deleted
    // snapshot left under its ChainID would be taken as built and reused).
    await ok(["pull", "--unpack", ref], root, r.host);
    assert.equal(
      readdirSync(join(root, "kpull", "snapshots", top, "many")).length,
      FILES,
      "the rootfs is whole",
    );
    await ok(["gc", "--high", "100", "--max-age", "0s"], root, r.host);
    assert.equal((await kpull(["verify"], { root })).code, 0);
  });
});
