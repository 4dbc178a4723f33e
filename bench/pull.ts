// kpull against skopeo and containerd (issue 9), side by side in one run on this machine.
//
//   npm run bench                      the full run (about 15 minutes); writes bench/RESULTS.md
//   npm run bench -- --quick           a smoke run of every scenario on tiny images (CI), writes nothing
//   npm run bench -- --reps 7 --only cold-medium,always --out /tmp/r.md
//
// It installs what it needs from Debian when run as root (docker-registry, skopeo, umoci, containerd, curl,
// zstd, time), starts the CNCF Distribution registry on loopback, generates deterministic images (cached in
// $TMPDIR/kpull-bench-images), pushes them with kpull's client, then runs each scenario's contenders in
// turn, rotating their order every repetition. Every run is measured the same way: wall time from spawn to
// exit, CPU and peak RSS from GNU time (containerd's own CPU and peak RSS are added for ctr, with a fresh
// containerd per run), and the registry's access log for requests by method and bytes served.

import { execFileSync } from "node:child_process";
import {
  cpSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { cpus, freemem, getPriority, loadavg, release, setPriority, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { RegistryClient } from "../src/registry/index.ts";
import {
  hostsTomlFor,
  type RunningContainerd,
  type RunningRegistry,
  requireTool,
  startContainerd,
  startRegistry,
} from "../test/harness/index.ts";
import {
  type BenchBlob,
  type BenchImage,
  type BenchIndex,
  type GeneratedSet,
  generate,
  mb,
} from "./pull/gen.ts";
import { type ReportInput, renderResults, type ScenarioResult } from "./pull/report.ts";
import { type Measured, procUsage, timed, timedShell } from "./pull/run.ts";
import { benchSpecs } from "./pull/specs.ts";

const ROOT = resolve(import.meta.dirname, "..");
const NODE = process.execPath;

/** A kpull to run: this checkout, or (--baseline REV) that revision, to show before/after in one run. */
interface Tree {
  readonly label: string;
  readonly bin: string;
  readonly role: "kpull" | "baseline";
}
const MAIN: Tree = { label: "", bin: join(ROOT, "bin", "kpull.js"), role: "kpull" };

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    reps: { type: "string" },
    only: { type: "string" },
    out: { type: "string" },
    baseline: { type: "string" },
    render: { type: "string" },
    "keep-work": { type: "boolean", default: false },
  },
});
const QUICK = flags.quick === true;
const REPS = Number(flags.reps ?? (QUICK ? 1 : 5));
const ONLY = flags.only ? new Set(flags.only.split(",")) : null;
const OUT = flags.out ?? (QUICK ? null : join(ROOT, "bench", "RESULTS.md"));

const log = (line: string) => process.stderr.write(`${line}\n`);

// --render RESULTS.json: write the report again from a run's saved numbers (after the report's text or the
// optimization log changed), without running anything.
if (flags.render) {
  const saved = JSON.parse(readFileSync(flags.render, "utf8")) as Omit<ReportInput, "optimizations">;
  const report = renderResults({
    ...saved,
    optimizations: readOptional(join(ROOT, "bench", "pull", "OPTIMIZATIONS.md")),
  });
  if (OUT) writeFileSync(OUT, report);
  else process.stdout.write(report);
  process.exit(0);
}
let loadAtStart = "";

// ---------------------------------------------------------------------------------------------- tools

const TOOLS: [string, string][] = [
  ["docker-registry", "docker-registry"],
  ["skopeo", "skopeo"],
  ["umoci", "umoci"],
  ["containerd", "containerd"],
  ["ctr", "containerd"],
  ["curl", "curl"],
  ["zstd", "zstd"],
  ["time", "time"],
  ["openssl", "openssl"],
];
const missing: string[] = [];
for (const [tool, pkg] of TOOLS) {
  try {
    requireTool(tool, pkg);
  } catch (e) {
    missing.push((e as Error).message);
  }
}
if (missing.some((m) => /docker-registry|\btime\b|curl/.test(m))) {
  throw new Error(`the bench cannot run without these:\n${missing.join("\n")}`);
}
const has = (tool: string) => !missing.some((m) => m.startsWith(`missing ${tool}:`));
const CONTAINERD = has("containerd") && has("ctr") && process.getuid?.() === 0;

// ----------------------------------------------------------------------------------------- the setup

const work = mkdtempSync(join(tmpdir(), "kpull-bench-"));
let registry: RunningRegistry | null = null;
const live = new Set<RunningContainerd>();
async function cleanupAll() {
  for (const c of live) await c.stop().catch(() => {});
  await registry?.stop();
  if (!flags["keep-work"]) rmSync(work, { recursive: true, force: true });
}
process.once("SIGINT", () => {
  void cleanupAll().finally(() => process.exit(130));
});

async function main() {
  const began = Date.now();
  // Other work on the machine (other users' test runs) adds noise: run everything this bench starts (the
  // registry, containerd and every contender inherit it) at a higher priority when allowed. All contenders
  // get the same priority, so the comparison stays fair.
  try {
    setPriority(-10);
  } catch {
    // not root: normal priority
  }
  loadAtStart = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  log(`kpull bench (${QUICK ? "quick" : "full"}, ${REPS} repetitions) in ${work}`);
  if (missing.length > 0) log(`  peers not available: ${missing.join("; ")}`);
  const specs = benchSpecs(QUICK);
  log("images:");
  const set = await generate(join(tmpdir(), "kpull-bench-images"), specs.images, specs.indexes, log);
  if (set.cached) log(`  cached in ${set.dir}`);

  registry = await startRegistry();
  const hostsDir = join(work, "hosts");
  mkdirSync(join(hostsDir, registry.host), { recursive: true });
  // The same hosts.toml for kpull and ctr (containerd's format: server plus a host entry; ctr refuses a file
  // without a [host] table). skopeo has no hosts.toml: it gets --src-tls-verify=false.
  writeFileSync(join(hostsDir, registry.host, "hosts.toml"), hostsTomlFor(registry));
  log(`registry ${registry.url}; pushing`);
  const pushStarted = Date.now();
  await pushAll(registry, set);
  log(`  pushed in ${((Date.now() - pushStarted) / 1000).toFixed(1)} s`);

  const ctx = new Context(registry, hostsDir, set);
  if (flags.baseline) ctx.trees.push(baselineTree(flags.baseline));
  const results: ScenarioResult[] = [];
  for (const scenario of scenarios(ctx)) {
    if (ONLY && !ONLY.has(scenario.id)) continue;
    log(`\n${scenario.id}: ${scenario.title}`);
    results.push(await runScenario(ctx, scenario));
  }
  const machine = describeMachine();
  const medium = set.images.medium as BenchImage;
  const medium2 = set.images.medium2 as BenchImage;
  const known = new Set(medium.layers.map((l) => l.digest));
  const input: Omit<ReportInput, "optimizations"> = {
    incrementalBytes:
      medium2.manifest.size +
      medium2.config.size +
      medium2.layers.filter((l) => !known.has(l.digest)).reduce((n, l) => n + l.size, 0),
    quick: QUICK,
    reps: REPS,
    machine,
    images: imageTable(set),
    results,
    startedAt: new Date(began).toISOString(),
    durationS: (Date.now() - began) / 1000,
  };
  const report = renderResults({
    ...input,
    optimizations: readOptional(join(ROOT, "bench", "pull", "OPTIMIZATIONS.md")),
  });
  if (OUT) {
    writeFileSync(OUT, report);
    // The numbers themselves, to render the report again (--render) or compare runs; not the processes'
    // output, nor each of the 8 concurrent processes (ctr's progress bars made this file 19 MB).
    const numbers = JSON.stringify(
      input,
      (k, v) => (["all", "stdout", "stderr"].includes(k) ? undefined : v),
      1,
    );
    writeFileSync(`${OUT.replace(/\.md$/, "")}.json`, `${numbers}\n`);
    log(`\nwrote ${OUT} (${((Date.now() - began) / 1000).toFixed(0)} s in all)`);
  } else {
    process.stdout.write(report);
  }
  const failed = results.flatMap((r) =>
    r.contenders.filter((c) => c.runs.some((x) => !x.ok)).map((c) => `${r.id}/${c.name}`),
  );
  if (failed.length > 0) {
    log(`\nruns failed: ${failed.join(", ")}`);
    process.exitCode = 1;
  }
}

/** The kpull of a git revision, extracted next to the work dir, with this checkout's node_modules. */
function baselineTree(rev: string): Tree {
  const short = require_(["git", "-C", ROOT, "rev-parse", "--short", rev]).trim();
  const dir = join(work, `baseline-${short}`);
  mkdirSync(dir, { recursive: true });
  execFileSync("bash", [
    "-c",
    `git -C ${JSON.stringify(ROOT)} archive ${short} | tar -x -C ${JSON.stringify(dir)}`,
  ]);
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  log(`baseline: kpull at ${short} in ${dir}`);
  return { label: `@${short} (before)`, bin: join(dir, "bin", "kpull.js"), role: "baseline" };
}

/** Bytes a tree takes on disk (`du -sb`; hard links counted once). */
function diskUsage(path: string): number {
  try {
    return Number(require_(["du", "-sb", path]).split(/\s/)[0]);
  } catch {
    return 0;
  }
}

function readOptional(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

// ------------------------------------------------------------------------------------------- pushing

const REPOS: Record<string, [string, string]> = {
  small: ["bench/small", "1"],
  medium: ["bench/medium", "1"],
  medium2: ["bench/medium", "2"],
  big: ["bench/big", "1"],
  zstd: ["bench/zstd", "1"],
  many: ["bench/many", "1"],
  multi: ["bench/multi", "1"],
};

async function pushAll(reg: RunningRegistry, set: GeneratedSet) {
  const client = new RegistryClient({ insecureRegistries: [reg.host] });
  const pushImage = async (repoName: string, tag: string | undefined, image: BenchImage) => {
    const repo = client.repository(`${reg.host}/${repoName}`);
    for (const b of [image.config, ...image.layers]) {
      await repo.pushBlob(b, () => createReadStream(b.path, { highWaterMark: 1 << 20 }));
    }
    await repo.pushManifest(readFileSync(image.manifest.path), image.manifest.mediaType, tag);
  };
  try {
    for (const [name, image] of Object.entries(set.images)) {
      const [repo, tag] = REPOS[name] as [string, string];
      await pushImage(repo, tag, image);
    }
    for (const [name, index] of Object.entries(set.indexes)) {
      const [repo, tag] = REPOS[name] as [string, string];
      for (const image of index.images) await pushImage(repo, undefined, image);
      await client
        .repository(`${reg.host}/${repo}`)
        .pushManifest(readFileSync(index.index.path), index.index.mediaType, tag);
    }
  } finally {
    await client.close();
  }
}

// ------------------------------------------------------------------------------------------- context

class Context {
  readonly registry: RunningRegistry;
  readonly hostsDir: string;
  readonly set: GeneratedSet;
  #n = 0;
  constructor(registry: RunningRegistry, hostsDir: string, set: GeneratedSet) {
    this.registry = registry;
    this.hostsDir = hostsDir;
    this.set = set;
  }
  ref(name: string): string {
    const [repo, tag] = REPOS[name] as [string, string];
    return `${this.registry.host}/${repo}:${tag}`;
  }
  blobUrl(name: string, blob: BenchBlob): string {
    const [repo] = REPOS[name] as [string, string];
    return `${this.registry.url}/v2/${repo}/blobs/${blob.digest}`;
  }
  image(name: string): BenchImage {
    return this.set.images[name] as BenchImage;
  }
  index(name: string): BenchIndex {
    return this.set.indexes[name] as BenchIndex;
  }
  /** Bytes of the image for this machine's platform: manifest(s), config and layers. */
  imageBytes(name: string): { compressed: number; uncompressed: number } {
    const idx = this.set.indexes[name];
    const image = idx ? (idx.images[0] as BenchImage) : this.image(name);
    const extra = idx ? idx.index.size : 0;
    return {
      compressed:
        extra + image.manifest.size + image.config.size + image.layers.reduce((n, l) => n + l.size, 0),
      uncompressed: image.layers.reduce((n, l) => n + l.uncompressed, 0),
    };
  }
  dir(label: string): string {
    const d = join(work, `${label}-${this.#n++}`);
    mkdirSync(d, { recursive: true });
    return d;
  }
  /** This checkout's kpull, then the baseline's when --baseline is given. */
  trees: Tree[] = [MAIN];
  kpull(args: readonly string[], tree: Tree = MAIN): string[] {
    return [NODE, tree.bin, ...args];
  }
  kpullPull(
    root: string,
    name: string,
    policy = "IfNotPresent",
    extra: readonly string[] = [],
    tree: Tree = MAIN,
  ): string[] {
    return this.kpull(
      [
        "pull",
        "--root",
        root,
        "--hosts-dir",
        this.hostsDir,
        "--policy",
        policy,
        "-o",
        "json",
        ...extra,
        this.ref(name),
      ],
      tree,
    );
  }
  skopeoCopy(name: string, dir: string, tag = "t"): string[] {
    return [
      "skopeo",
      "--insecure-policy",
      "copy",
      "--quiet",
      "--src-tls-verify=false",
      `docker://${this.ref(name)}`,
      `oci:${dir}:${tag}`,
    ];
  }
  ctr(c: RunningContainerd, args: readonly string[]): string[] {
    return ["ctr", "--address", c.socketPath, "-n", "bench", ...args];
  }
  ctrFetch(c: RunningContainerd, name: string): string[] {
    return this.ctr(c, ["content", "fetch", "--hosts-dir", this.hostsDir, this.ref(name)]);
  }
  ctrPull(c: RunningContainerd, name: string): string[] {
    return this.ctr(c, [
      "image",
      "pull",
      "--hosts-dir",
      this.hostsDir,
      "--snapshotter",
      "overlayfs",
      this.ref(name),
    ]);
  }
}

async function freshContainerd(): Promise<RunningContainerd> {
  const c = await startContainerd({ snapshotter: "overlayfs" });
  live.add(c);
  return c;
}

async function stopContainerd(c: RunningContainerd | null) {
  if (c === null) return;
  await c.stop();
  live.delete(c);
}

// ----------------------------------------------------------------------------------------- scenarios

export interface RunRecord {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly rssKiB: number;
  readonly requests: Record<string, number>;
  readonly bytesServed: number;
  readonly ok: boolean;
  readonly note?: string;
  readonly diskBytes?: number;
}

interface Contender {
  readonly name: string;
  readonly role: "kpull" | "baseline" | "peer" | "limit";
  /** Untimed, before each repetition. */
  prepare?(rep: number): Promise<void>;
  /** The timed part. Returns one measurement (several processes: their wall span, summed CPU, max RSS). */
  run(rep: number): Promise<Omit<RunRecord, "requests" | "bytesServed"> & { check?: () => string | null }>;
  /** Untimed, after a run and before its cleanup: bytes the result takes on disk (unpacked trees). */
  disk?(): number;
  /** Untimed, after each repetition. */
  cleanup?(rep: number): Promise<void>;
}

interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly image?: string;
  /** What MB/s is computed over. */
  readonly throughputOf?: "compressed" | "uncompressed";
  readonly reps?: number;
  readonly notes?: string[];
  readonly contenders: () => Promise<Contender[]> | Contender[];
  readonly after?: () => Promise<void>;
}

function fromMeasured(
  m: Measured,
  extra: { cpuMs?: number; rssKiB?: number } = {},
  check?: () => string | null,
) {
  const failure =
    m.code === 0
      ? null
      : `exit ${m.code}: ${(m.stderr || m.stdout).trim().split("\n").slice(-3).join(" / ")}`;
  return {
    wallMs: m.wallMs,
    cpuMs: m.userMs + m.sysMs + (extra.cpuMs ?? 0),
    rssKiB: Math.max(m.rssKiB, extra.rssKiB ?? 0),
    ok: failure === null,
    ...(failure ? { note: failure } : {}),
    ...(check ? { check } : {}),
  };
}

/** A kpull pull whose JSON output must say the image is ready. */
function kpullCheck(m: Measured, expect: readonly string[]): () => string | null {
  return () => {
    try {
      const out = JSON.parse(m.stdout) as { action?: string; message?: string };
      return expect.includes(out.action ?? "") ? null : `kpull said ${out.action}: ${out.message ?? ""}`;
    } catch {
      return `kpull printed no JSON: ${m.stderr.trim().slice(0, 200)}`;
    }
  };
}

/** Several processes at once: wall time from the first start to the last exit. */
async function concurrently(argvs: readonly string[][]) {
  const started = performance.now();
  const all = await Promise.all(argvs.map((a) => timed(a)));
  const wallMs = performance.now() - started;
  const failed = all.find((m) => m.code !== 0);
  return {
    all,
    wallMs,
    cpuMs: all.reduce((n, m) => n + m.userMs + m.sysMs, 0),
    rssKiB: Math.max(...all.map((m) => m.rssKiB)),
    ok: failed === undefined,
    ...(failed
      ? { note: `exit ${failed.code}: ${failed.stderr.trim().split("\n").slice(-2).join(" / ")}` }
      : {}),
  };
}

/** A contender run by ctr against a containerd started fresh (untimed) for each repetition. */
function ctrContender(
  name: string,
  argv: (c: RunningContainerd) => string[],
  before?: (c: RunningContainerd) => Promise<void>,
  disk?: (c: RunningContainerd) => number,
): Contender {
  let c: RunningContainerd | null = null;
  return {
    name,
    role: "peer",
    ...(disk ? { disk: () => (c === null ? 0 : disk(c)) } : {}),
    prepare: async () => {
      c = await freshContainerd();
      if (before) await before(c);
    },
    run: async () => {
      const d = c as RunningContainerd;
      const before = procUsage(d.pid);
      const m = await timed(argv(d));
      const after = procUsage(d.pid);
      return fromMeasured(m, { cpuMs: after.cpuMs - before.cpuMs, rssKiB: m.rssKiB + after.hwmKiB });
    },
    cleanup: async () => {
      await stopContainerd(c);
      c = null;
    },
  };
}

/** "kpull pull", or "kpull pull @REV (before)" for the baseline. */
function kname(name: string, tree: Tree): string {
  return tree.role === "baseline" ? `${name} ${tree.label}` : name;
}

function kpullCold(ctx: Context, name: string, tree: Tree): Contender {
  let root = "";
  return {
    name: kname("kpull pull", tree),
    role: tree.role,
    prepare: async () => {
      root = ctx.dir("kpull");
    },
    run: async () => {
      const m = await timed(ctx.kpullPull(root, name, "IfNotPresent", [], tree));
      return fromMeasured(m, {}, kpullCheck(m, ["pulled"]));
    },
    cleanup: async () => rmSync(root, { recursive: true, force: true }),
  };
}

function skopeoCold(ctx: Context, name: string): Contender {
  let dir = "";
  return {
    name: "skopeo copy",
    role: "peer",
    prepare: async () => {
      dir = ctx.dir("skopeo");
    },
    run: async () => fromMeasured(await timed(ctx.skopeoCopy(name, dir))),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function coldContenders(ctx: Context, name: string): Contender[] {
  const out = [
    ...ctx.trees.map((t) => kpullCold(ctx, name, t)),
    ...(has("skopeo") ? [skopeoCold(ctx, name)] : []),
  ];
  if (CONTAINERD) out.push(ctrContender("ctr content fetch", (c) => ctx.ctrFetch(c, name)));
  return out;
}

/** curl of every blob of the image (3 at a time, keep-alive) into files, then sha256sum of them. */
function curlLimit(ctx: Context, name: string): Contender {
  let dir = "";
  const image = ctx.image(name);
  const blobs = [image.manifest, image.config, ...image.layers];
  return {
    name: "limit: curl + sha256sum",
    role: "limit",
    prepare: async () => {
      dir = ctx.dir("curl");
    },
    run: async () => {
      const [repo] = REPOS[name] as [string, string];
      const urls = blobs.map((b, i) =>
        b === image.manifest
          ? `-H 'Accept: ${b.mediaType}' -o ${dir}/${i} ${ctx.registry.url}/v2/${repo}/manifests/${b.digest}`
          : `-o ${dir}/${i} ${ctx.blobUrl(name, b)}`,
      );
      const m = await timedShell(
        `curl -sf --parallel --parallel-max 3 ${urls.join(" ")}; sha256sum ${blobs.map((_, i) => `${dir}/${i}`).join(" ")} >/dev/null`,
      );
      return fromMeasured(m);
    },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function scenarios(ctx: Context): Scenario[] {
  const list: Scenario[] = [];

  list.push({
    id: "startup",
    title: "CLI start-up: `kpull --version` against bare `node -e 0`",
    reps: Math.max(REPS, QUICK ? 3 : 20),
    notes: [
      "`kpull pull --help` loads everything `kpull pull` needs (registry, store, node) and runs nothing: the start-up of a real pull.",
      "Node's compile cache is warmed once first, as any second run on a node finds it.",
    ],
    contenders: async () => {
      for (const t of ctx.trees) {
        await timed(ctx.kpull(["--version"], t));
        await timed(ctx.kpull(["pull", "--help"], t));
      }
      const simple = (name: string, role: Contender["role"], argv: string[]): Contender => ({
        name,
        role,
        run: async () => fromMeasured(await timed(argv)),
      });
      return [
        ...ctx.trees.map((t) => simple(kname("kpull --version", t), t.role, ctx.kpull(["--version"], t))),
        simple("node -e 0", "limit", [NODE, "-e", "0"]),
        ...ctx.trees.map((t) =>
          simple(kname("kpull pull --help", t), t.role, ctx.kpull(["pull", "--help"], t)),
        ),
        ...(has("skopeo") ? [simple("skopeo --version", "peer", ["skopeo", "--version"])] : []),
        ...(CONTAINERD ? [simple("ctr --version", "peer", ["ctr", "--version"])] : []),
      ];
    },
  });

  list.push({
    id: "cold-small",
    title: "Cold pull of small (1 layer) to a verified store",
    image: "small",
    contenders: () => coldContenders(ctx, "small"),
  });

  list.push({
    id: "cold-medium",
    title: "Cold pull of medium (8 gzip layers) to a verified store",
    image: "medium",
    contenders: () => [...coldContenders(ctx, "medium"), curlLimit(ctx, "medium")],
  });

  // Incremental: medium:2 after medium; six of eight layers are already there.
  list.push({
    id: "incremental",
    title: "Incremental pull of medium:2 after medium (2 new layers)",
    image: "medium2",
    notes: [
      "Each repetition starts from a copy of a store (or layout, or containerd) holding medium, made untimed.",
    ],
    contenders: async () => {
      const out: Contender[] = [];
      for (const tree of ctx.trees) {
        const kTemplate = ctx.dir("kpull-template");
        const k = await timed(ctx.kpullPull(kTemplate, "medium", "IfNotPresent", [], tree));
        if (k.code !== 0) throw new Error(`kpull could not pull medium: ${k.stderr}`);
        let root = "";
        out.push({
          name: kname("kpull pull", tree),
          role: tree.role,
          prepare: async () => {
            root = ctx.dir("kpull");
            cpSync(kTemplate, root, { recursive: true });
          },
          run: async () => {
            const m = await timed(ctx.kpullPull(root, "medium2", "IfNotPresent", [], tree));
            return fromMeasured(m, {}, kpullCheck(m, ["pulled"]));
          },
          cleanup: async () => rmSync(root, { recursive: true, force: true }),
        });
      }
      if (has("skopeo")) {
        const sTemplate = ctx.dir("skopeo-template");
        const s = await timed(ctx.skopeoCopy("medium", sTemplate, "medium"));
        if (s.code !== 0) throw new Error(`skopeo could not copy medium: ${s.stderr}`);
        let dir = "";
        out.push({
          name: "skopeo copy",
          role: "peer",
          prepare: async () => {
            dir = ctx.dir("skopeo");
            cpSync(sTemplate, dir, { recursive: true });
          },
          run: async () => fromMeasured(await timed(ctx.skopeoCopy("medium2", dir, "medium2"))),
          cleanup: async () => rmSync(dir, { recursive: true, force: true }),
        });
      }
      if (CONTAINERD) {
        out.push(
          ctrContender(
            "ctr content fetch",
            (c) => ctx.ctrFetch(c, "medium2"),
            async (c) => {
              const m = await timed(ctx.ctrFetch(c, "medium"));
              if (m.code !== 0) throw new Error(`ctr could not fetch medium: ${m.stderr}`);
            },
          ),
        );
      }
      return out;
    },
  });

  // Always on an unchanged cached image.
  list.push({
    id: "always",
    title: "`Always` on an unchanged cached image (medium)",
    image: "medium",
    notes: [
      "Every tool already holds the image; the state does not change between repetitions.",
      "`node -e 0` is shown to tell Node's own start-up from kpull's work.",
    ],
    contenders: async () => {
      const out: Contender[] = [];
      for (const tree of ctx.trees) {
        const root = ctx.dir("kpull-always");
        const k = await timed(ctx.kpullPull(root, "medium", "IfNotPresent", [], tree));
        if (k.code !== 0) throw new Error(`kpull could not pull medium: ${k.stderr}`);
        out.push({
          name: kname("kpull pull --policy Always", tree),
          role: tree.role,
          run: async () => {
            const m = await timed(ctx.kpullPull(root, "medium", "Always", [], tree));
            return fromMeasured(m, {}, kpullCheck(m, ["verified"]));
          },
        });
      }
      out.push({
        name: "node -e 0",
        role: "limit",
        run: async () => fromMeasured(await timed([NODE, "-e", "0"])),
      });
      if (has("skopeo")) {
        const dir = ctx.dir("skopeo-always");
        const s = await timed(ctx.skopeoCopy("medium", dir));
        if (s.code !== 0) throw new Error(`skopeo could not copy medium: ${s.stderr}`);
        out.push({
          name: "skopeo copy (no-op)",
          role: "peer",
          run: async () => fromMeasured(await timed(ctx.skopeoCopy("medium", dir))),
        });
      }
      if (CONTAINERD) {
        const c = await freshContainerd();
        const m = await timed(ctx.ctrPull(c, "medium"));
        if (m.code !== 0) throw new Error(`ctr could not pull medium: ${m.stderr}`);
        const usage = async (argv: string[]) => {
          const before = procUsage(c.pid);
          const r = await timed(argv);
          return fromMeasured(r, { cpuMs: procUsage(c.pid).cpuMs - before.cpuMs });
        };
        out.push({
          name: "ctr image pull (cached)",
          role: "peer",
          run: () => usage(ctx.ctrPull(c, "medium")),
        });
        out.push({
          name: "ctr content fetch (cached)",
          role: "peer",
          run: () => usage(ctx.ctrFetch(c, "medium")),
        });
        cleanups.push(() => stopContainerd(c));
      }
      return out;
    },
    after: async () => {
      for (const f of cleanups.splice(0)) await f();
    },
  });

  list.push({
    id: "cold-big",
    title: "Cold pull of big (one gzip layer), with the machine's limits",
    image: "big",
    notes: [
      "Limits: `curl -o FILE` of the big blob over loopback then `sha256sum FILE`; the same streamed (`curl | tee FILE | sha256sum`); the same with `openssl dgst -sha256`, which uses the CPU's SHA instructions as Node's crypto does (Debian's coreutils `sha256sum` does not); `gzip -dc` of the blob and `zstd -dc` of the same tar in zstd, to /dev/null.",
    ],
    contenders: () => {
      const big = ctx.image("big").layers[0] as BenchBlob;
      const zst = ctx.image("zstd").layers[0] as BenchBlob;
      let dir = "";
      const limit = (name: string, script: (d: string) => string): Contender => ({
        name,
        role: "limit",
        prepare: async () => {
          dir = ctx.dir("limit");
        },
        run: async () => fromMeasured(await timedShell(script(dir))),
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      });
      const url = ctx.blobUrl("big", big);
      return [
        ...coldContenders(ctx, "big"),
        limit("limit: curl + sha256sum", (d) => `curl -sf -o ${d}/b ${url}; sha256sum ${d}/b >/dev/null`),
        limit("limit: curl | tee | sha256sum", (d) => `curl -sf ${url} | tee ${d}/b | sha256sum >/dev/null`),
        limit(
          "limit: curl + openssl sha256",
          (d) => `curl -sf -o ${d}/b ${url}; openssl dgst -sha256 ${d}/b >/dev/null`,
        ),
        limit("limit: curl -o /dev/null", () => `curl -sf -o /dev/null ${url}`),
        limit("limit: sha256sum", () => `sha256sum ${big.path} >/dev/null`),
        limit("limit: openssl sha256", () => `openssl dgst -sha256 ${big.path} >/dev/null`),
        limit("limit: gzip -dc", () => `gzip -dc ${big.path} >/dev/null`),
        ...(has("zstd")
          ? [limit("limit: zstd -dc (zstd image)", () => `zstd -dcq ${zst.path} >/dev/null`)]
          : []),
      ];
    },
  });

  list.push({
    id: "cold-zstd",
    title: "Cold pull of the zstd image (big's tar in zstd)",
    image: "zstd",
    contenders: () => coldContenders(ctx, "zstd"),
  });

  list.push({
    id: "unpack",
    title: "Pull with unpack (medium): fetch, decompress, apply layers",
    image: "medium",
    notes: [
      "Limit: GNU `tar -xzf` of the 8 layer blobs, from local files, one after the other into one directory: the cost of decompressing and creating the files alone (no download, no verification, no snapshots).",
    ],
    throughputOf: "uncompressed",
    contenders: () => unpackContenders(ctx),
  });

  list.push({
    id: "concurrent",
    title: "8 concurrent processes pulling medium into one root",
    image: "medium",
    notes: [
      "Wall time from the first start to the last exit; CPU summed over the 8; peak RSS of the largest. Bytes served is what the registry sent for all 8.",
    ],
    contenders: () => {
      const out: Contender[] = [];
      for (const tree of ctx.trees) {
        let root = "";
        out.push({
          name: kname("8 × kpull pull", tree),
          role: tree.role,
          prepare: async () => {
            root = ctx.dir("kpull8");
          },
          run: async () => {
            const r = await concurrently(
              Array.from({ length: 8 }, () => ctx.kpullPull(root, "medium", "IfNotPresent", [], tree)),
            );
            // IfNotPresent: a process that finds the image recorded by another says "present".
            const checks = r.all.map((m) => kpullCheck(m, ["pulled", "present"]));
            return { ...r, check: () => checks.map((c) => c()).find((x) => x !== null) ?? null };
          },
          cleanup: async () => rmSync(root, { recursive: true, force: true }),
        });
      }
      if (has("skopeo")) {
        let dir = "";
        out.push({
          name: "8 × skopeo copy (one layout)",
          role: "peer",
          prepare: async () => {
            dir = ctx.dir("skopeo8");
          },
          run: async () =>
            concurrently(Array.from({ length: 8 }, (_, i) => ctx.skopeoCopy("medium", dir, `t${i}`))),
          cleanup: async () => rmSync(dir, { recursive: true, force: true }),
        });
      }
      if (CONTAINERD) {
        let c: RunningContainerd | null = null;
        out.push({
          name: "8 × ctr content fetch (one containerd)",
          role: "peer",
          prepare: async () => {
            c = await freshContainerd();
          },
          run: async () => {
            const d = c as RunningContainerd;
            const before = procUsage(d.pid);
            const r = await concurrently(Array.from({ length: 8 }, () => ctx.ctrFetch(d, "medium")));
            const after = procUsage(d.pid);
            return { ...r, cpuMs: r.cpuMs + after.cpuMs - before.cpuMs, rssKiB: r.rssKiB + after.hwmKiB };
          },
          cleanup: async () => {
            await stopContainerd(c);
            c = null;
          },
        });
      }
      return out;
    },
  });

  list.push({
    id: "many",
    title: "Cold pull of many (40 small layers)",
    image: "many",
    contenders: () => coldContenders(ctx, "many"),
  });

  list.push({
    id: "multi",
    title: "Cold pull of a two-platform index (linux/amd64 chosen)",
    image: "multi",
    contenders: () => coldContenders(ctx, "multi"),
  });

  return list;
}

const cleanups: (() => Promise<void>)[] = [];

/** `kpull pull --unpack` when the CLI has it (issue: the unpacker was built alongside), else pending. */
async function unpackContenders(ctx: Context): Promise<Contender[]> {
  const out: Contender[] = [];
  for (const tree of ctx.trees) {
    const help = await timed(ctx.kpull(["pull", "--help"], tree));
    if (!/--unpack\b/.test(help.stdout)) continue;
    let root = "";
    out.push({
      name: kname("kpull pull --unpack", tree),
      role: tree.role,
      prepare: async () => {
        root = ctx.dir("kpull-unpack");
      },
      run: async () => {
        const m = await timed(ctx.kpullPull(root, "medium", "IfNotPresent", ["--unpack"], tree));
        return fromMeasured(m, {}, kpullCheck(m, ["pulled"]));
      },
      disk: () => diskUsage(join(root, "kpull", "snapshots")),
      cleanup: async () => rmSync(root, { recursive: true, force: true }),
    });
  }
  if (CONTAINERD) {
    out.push(
      ctrContender(
        "ctr image pull (overlayfs)",
        (c) => ctx.ctrPull(c, "medium"),
        undefined,
        (c) => diskUsage(join(c.dir, "root", "io.containerd.snapshotter.v1.overlayfs")),
      ),
    );
  }
  // The machine's limit for the same files: GNU tar extracting the 8 layers, from local files, into one
  // directory (no download, no verification, no snapshots, no whiteouts to honour).
  {
    let dir = "";
    const layers = ctx.image("medium").layers.map((l) => l.path);
    out.push({
      name: "limit: tar -xzf of the layers",
      role: "limit",
      prepare: async () => {
        dir = ctx.dir("tar");
      },
      run: async () =>
        fromMeasured(await timedShell(layers.map((f) => `tar -xzf ${f} -C ${dir}`).join("; "))),
      disk: () => diskUsage(dir),
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    });
  }
  if (has("skopeo") && has("umoci")) {
    let dir = "";
    out.push({
      name: "skopeo copy + umoci unpack",
      role: "peer",
      prepare: async () => {
        dir = ctx.dir("umoci");
      },
      run: async () => {
        const s = await timed(ctx.skopeoCopy("medium", join(dir, "layout"), "t"));
        if (s.code !== 0) return fromMeasured(s);
        const u = await timed([
          "umoci",
          "unpack",
          "--image",
          `${join(dir, "layout")}:t`,
          join(dir, "bundle"),
        ]);
        const r = fromMeasured(u);
        return {
          ...r,
          wallMs: s.wallMs + u.wallMs,
          cpuMs: r.cpuMs + s.userMs + s.sysMs,
          rssKiB: Math.max(s.rssKiB, u.rssKiB),
        };
      },
      disk: () => diskUsage(join(dir, "bundle")),
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    });
  }
  return out;
}

// ------------------------------------------------------------------------------------------- running

async function runScenario(ctx: Context, scenario: Scenario): Promise<ScenarioResult> {
  const contenders = await scenario.contenders();
  const runs = contenders.map(() => [] as RunRecord[]);
  const reps = scenario.reps ?? REPS;
  for (let rep = 0; rep < reps; rep++) {
    // Rotate the order each repetition, so no tool always runs first (or right after another).
    for (let k = 0; k < contenders.length; k++) {
      const i = (k + rep) % contenders.length;
      const c = contenders[i] as Contender;
      try {
        await c.prepare?.(rep);
        const before = (await ctx.registry.accessLog()).length;
        const r = await c.run(rep);
        const entries = (await ctx.registry.accessLog()).slice(before);
        const requests: Record<string, number> = {};
        let bytesServed = 0;
        for (const e of entries) {
          requests[e.method] = (requests[e.method] ?? 0) + 1;
          if (e.method !== "HEAD") bytesServed += e.bytes; // a HEAD's logged bytes never cross the wire
        }
        const problem = r.ok ? (r.check?.() ?? null) : null;
        const { check: _check, ...rest } = r;
        const diskBytes = c.disk?.();
        (runs[i] as RunRecord[]).push({
          ...rest,
          requests,
          bytesServed,
          ok: r.ok && problem === null,
          ...(problem ? { note: problem } : {}),
          ...(diskBytes !== undefined ? { diskBytes } : {}),
        });
        await c.cleanup?.(rep);
      } catch (error) {
        (runs[i] as RunRecord[]).push({
          wallMs: Number.NaN,
          cpuMs: Number.NaN,
          rssKiB: 0,
          requests: {},
          bytesServed: 0,
          ok: false,
          note: (error as Error).message.split("\n")[0] ?? "failed",
        });
        await c.cleanup?.(rep).catch(() => {});
      }
      const last = (runs[i] as RunRecord[]).at(-1) as RunRecord;
      log(
        `  ${rep + 1}/${reps} ${c.name.padEnd(36)} ${(last.wallMs / 1000).toFixed(3).padStart(8)} s  ${String(Math.round(last.rssKiB / 1024)).padStart(5)} MiB  ${JSON.stringify(last.requests)} ${mb(last.bytesServed)}${last.ok ? "" : `  FAILED: ${last.note}`}`,
      );
    }
  }
  await scenario.after?.();
  const bytes = scenario.image ? ctx.imageBytes(scenario.image) : null;
  return {
    id: scenario.id,
    title: scenario.title,
    notes: scenario.notes ?? [],
    imageBytes:
      bytes === null
        ? null
        : scenario.throughputOf === "uncompressed"
          ? bytes.uncompressed
          : bytes.compressed,
    throughputOf: scenario.throughputOf ?? "compressed",
    contenders: contenders.map((c, i) => ({ name: c.name, role: c.role, runs: runs[i] as RunRecord[] })),
  };
}

// ------------------------------------------------------------------------------------------- machine

function describeMachine(): Record<string, string> {
  const cpuModel = cpus()[0]?.model ?? "unknown";
  const version = (argv: string[]) => {
    try {
      return (
        require_(argv)
          .trim()
          .split("\n")
          .find((l) => l.trim() !== "") ?? ""
      ).slice(0, 90);
    } catch {
      return "not installed";
    }
  };
  const fs = (() => {
    try {
      return require_(["df", "-T", "-h", tmpdir()]).trim().split("\n").at(-1)?.split(/\s+/) ?? [];
    } catch {
      return [];
    }
  })();
  return {
    CPU: `${cpuModel}, ${cpus().length} cores`,
    Memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB (${(freemem() / 2 ** 30).toFixed(1)} GiB free at the end)`,
    Kernel: `Linux ${release()}`,
    Load: `load average ${loadAtStart} at the start, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(
        " ",
      )} at the end (1, 5, 15 min; other users' work included); bench processes at nice ${getPriority()}`,
    Disk: fs.length > 0 ? `${tmpdir()} on ${fs[0]} (${fs[1]}), ${fs[4]} free` : tmpdir(),
    Node: process.version,
    kpull: `${JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version} (${gitHead()})`,
    skopeo: version(["skopeo", "--version"]),
    umoci: version(["umoci", "--version"]),
    containerd: version(["containerd", "--version"]),
    registry: version(["docker-registry", "--version"]),
    curl: version(["curl", "--version"]),
    zstd: version(["zstd", "--version"]),
  };
}

function gitHead(): string {
  try {
    const head = require_(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).trim();
    const dirty = require_(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "bin"]).trim() !== "";
    return `${head}${dirty ? " with uncommitted changes under src/ or bin/" : ""}`;
  } catch {
    return "not a git checkout";
  }
}

function require_(argv: string[]): string {
  return execFileSync(argv[0] as string, argv.slice(1), {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function imageTable(set: GeneratedSet): {
  name: string;
  ref: string;
  layers: number;
  compressed: number;
  uncompressed: number;
  files: number;
  note: string;
}[] {
  const row = (name: string, image: BenchImage, note: string) => ({
    name,
    ref: REPOS[name]?.join(":") ?? name,
    layers: image.layers.length,
    compressed: image.manifest.size + image.config.size + image.layers.reduce((n, l) => n + l.size, 0),
    uncompressed: image.layers.reduce((n, l) => n + l.uncompressed, 0),
    files: image.layers.reduce((n, l) => n + l.files, 0),
    note,
  });
  const notes: Record<string, string> = {
    small: "one gzip layer",
    medium: "8 gzip layers",
    medium2: "shares 6 of medium's 8 layers",
    big: "one gzip layer",
    zstd: "big's tar, zstd level 3",
    many: "40 small gzip layers",
  };
  const out = Object.entries(set.images).map(([name, image]) => row(name, image, notes[name] ?? ""));
  for (const [name, index] of Object.entries(set.indexes)) {
    for (const image of index.images) {
      out.push({
        ...row(name, image, `index entry ${image.platform.architecture}`),
        name: `${name} (${image.platform.architecture})`,
      });
    }
  }
  return out;
}

// Last, so every declaration above is initialized.
try {
  await main();
} finally {
  await cleanupAll();
}
