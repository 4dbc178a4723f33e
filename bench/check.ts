// Benchmark of kpull check (and fix) on a generated corpus: files/s, containers/s and peak memory.
//
//   npm run bench:check                     10,000 documents in 1,000 files (the issue's corpus)
//   npm run bench:check -- --docs 50000 --per-file 25
//
// The corpus mixes every workload kind, all container types, image volumes, anchors and merge keys, JSON,
// CRLF files, Lists and kinds without pod specs. Each measurement runs in a fresh child process, which
// reports its own peak resident set size, so generation and the other phases do not count.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  checkImageUses,
  defaultConfig,
  fixText,
  loadSources,
  RULES,
  renderJson,
  renderJunit,
  renderSarif,
} from "../src/check/index.ts";
import { imageUsesFromText } from "../src/manifests/index.ts";

const IMAGES = [
  "nginx",
  "nginx:1.27",
  "registry.example.com:5000/team/api:2.1.0",
  "ghcr.io/org/worker:latest",
  `ghcr.io/org/pinned:1.0@sha256:${"a".repeat(64)}`,
  "localhost:5000/app",
  "NGINX:1.25",
  "busybox:1.36",
];
const POLICIES = [undefined, "Always", "IfNotPresent", "Never"];

function pick<T>(list: readonly T[], i: number): T {
  return list[i % list.length] as T;
}

function container(i: number, indent: string): string {
  const policy = pick(POLICIES, i * 7);
  return (
    `${indent}- name: c${i}\n${indent}  image: ${pick(IMAGES, i)}\n` +
    (policy === undefined ? "" : `${indent}  imagePullPolicy: ${policy}\n`) +
    `${indent}  ports:\n${indent}    - containerPort: ${8000 + (i % 100)}\n`
  );
}

function podSpec(i: number, indent: string): string {
  const n = 1 + (i % 3);
  let s = `${indent}containers:\n`;
  for (let c = 0; c < n; c++) s += container(i * 3 + c, `${indent}  `);
  if (i % 4 === 0) s += `${indent}initContainers:\n${container(i + 1, `${indent}  `)}`;
  if (i % 9 === 0)
    s += `${indent}volumes:\n${indent}  - name: data\n${indent}    image: {reference: "models:${i}"}\n`;
  return s;
}

function document(i: number): string {
  const meta = `metadata:\n  name: obj-${i}\n  namespace: ns-${i % 20}\n${i % 11 === 0 ? "  annotations: {kpull/ignore: floating-tag, kpull/ignore-until: '2099-01-01'}\n" : ""}`;
  switch (i % 8) {
    case 0:
      return `apiVersion: v1\nkind: Pod\n${meta}spec:\n${podSpec(i, "  ")}`;
    case 1:
      return `apiVersion: batch/v1\nkind: CronJob\n${meta}spec:\n  schedule: "@hourly"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n${podSpec(i, "          ")}`;
    case 2:
      return `apiVersion: v1\nkind: ConfigMap\n${meta}data:\n  image: not-a-container\n`;
    case 3:
      // anchors and merge keys
      return `apiVersion: apps/v1\nkind: StatefulSet\n${meta}spec:\n  template:\n    spec:\n      containers:\n        - &base\n          name: a\n          image: ${pick(IMAGES, i)}\n        - <<: *base\n          name: b\n`;
    case 4:
      return `apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: l-${i}}\n    spec:\n${podSpec(i, "      ")}`;
    default:
      return `apiVersion: apps/v1\nkind: ${pick(["Deployment", "DaemonSet", "Job", "ReplicaSet"], i)}\n${meta}spec:\n  replicas: 2\n  template:\n    metadata:\n      labels: {app: obj-${i}}\n    spec:\n${podSpec(i, "      ")}`;
  }
}

function generate(dir: string, docs: number, perFile: number): number {
  let files = 0;
  for (let start = 0; start < docs; start += perFile) {
    const sub = join(dir, `team-${files % 10}`);
    mkdirSync(sub, { recursive: true });
    const count = Math.min(perFile, docs - start);
    if (files % 25 === 24) {
      // JSON: one object per file's worth, as a List.
      const items = Array.from({ length: count }, (_, k) => ({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: `j-${start + k}` },
        spec: { containers: [{ name: "c", image: pick(IMAGES, start + k) }] },
      }));
      writeFileSync(
        join(sub, `f${files}.json`),
        JSON.stringify({ apiVersion: "v1", kind: "List", items }, null, 2),
      );
    } else {
      let text = Array.from(
        { length: count },
        (_, k) => `# document ${start + k}\n${document(start + k)}`,
      ).join("---\n");
      if (files % 10 === 3) text = text.replace(/\n/g, "\r\n");
      writeFileSync(join(sub, `f${files}.yaml`), text);
    }
    files++;
  }
  return files;
}

interface Measurement {
  readonly phase: string;
  readonly files: number;
  readonly documents: number;
  readonly containers: number;
  readonly findings: number;
  readonly ms: number;
  readonly maxRssMiB: number;
}

async function child(phase: string, dir: string, docs: number): Promise<Measurement> {
  const config = defaultConfig(dir);
  const now = () => new Date("2025-06-15T00:00:00Z");
  const start = performance.now();
  const loaded = await loadSources([dir], { config });
  let containers = 0;
  let findings = 0;
  if (phase === "check") {
    const uses = loaded.sources.flatMap((s) => imageUsesFromText(s.text, s.file));
    const report = checkImageUses(uses, { config, now, files: loaded.sources.length });
    // Every format, as CI would write one of them.
    const out = [
      renderJson(report),
      renderSarif(report, {
        version: "bench",
        severities: Object.fromEntries(RULES.map((r) => [r.id, r.defaultSeverity])),
      }),
      renderJunit(report),
    ];
    if (out.some((o) => o.length === 0)) throw new Error("empty output");
    containers = uses.length;
    findings = report.findings.length;
  } else {
    for (const s of loaded.sources) {
      const r = fixText(s.text, s.file, { config, now });
      containers += r.changes.length;
      findings += r.skipped.length;
    }
  }
  const ms = performance.now() - start;
  return {
    phase,
    files: loaded.sources.length,
    documents: docs,
    containers,
    findings,
    ms,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

const { values } = parseArgs({
  options: {
    docs: { type: "string", default: "10000" },
    "per-file": { type: "string", default: "10" },
    child: { type: "string" },
    dir: { type: "string" },
  },
});
const docs = Number(values.docs);
const perFile = Number(values["per-file"]);

if (values.child !== undefined && values.dir !== undefined) {
  process.stdout.write(JSON.stringify(await child(values.child, values.dir, docs)));
} else {
  const dir = mkdtempSync(join(tmpdir(), "kpull-bench-"));
  try {
    const files = generate(dir, docs, perFile);
    process.stdout.write(`corpus: ${docs} documents in ${files} files (${dir})\n`);
    for (const phase of ["check", "fix"]) {
      const r = spawnSync(
        process.execPath,
        [import.meta.filename, "--child", phase, "--dir", dir, "--docs", String(docs)],
        {
          encoding: "utf8",
          maxBuffer: 1 << 20,
        },
      );
      if (r.status !== 0) throw new Error(`${phase} failed: ${r.stderr}`);
      const m = JSON.parse(r.stdout) as Measurement;
      const s = m.ms / 1000;
      const what =
        phase === "check"
          ? `${m.containers} containers, ${m.findings} findings`
          : `${m.containers} policies fixed`;
      process.stdout.write(
        `${phase.padEnd(5)}  ${m.ms.toFixed(0).padStart(6)} ms  ${(m.files / s).toFixed(0).padStart(7)} files/s  ${(m.documents / s).toFixed(0).padStart(7)} documents/s` +
          (phase === "check" ? `  ${(m.containers / s).toFixed(0).padStart(7)} containers/s` : "") +
          `  peak RSS ${m.maxRssMiB.toFixed(0)} MiB  (${what})\n`,
      );
    }
  } finally {
    if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  }
}
