// Turns the figures the reliability suite recorded (KPULL_RELIABILITY_RESULTS=DIR, one JSON line per test
// row in DIR/<section>.jsonl) into the Markdown tables of docs/reliability.md. `npm run test:reliability`
// runs it after the suite; run it by hand with `node test/reliability/report.ts DIR`.

import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2] ?? process.env.KPULL_RELIABILITY_RESULTS;
if (dir === undefined || !existsSync(dir)) {
  process.stderr.write("usage: node test/reliability/report.ts RESULTS_DIR\n");
  process.exit(2);
}

type Row = Record<string, unknown>;
function rows(section: string): Row[] {
  const file = join(dir as string, `${section}.jsonl`);
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Row);
}

const cell = (v: unknown): string =>
  String(v ?? "")
    .replace(/\|/g, "\\|")
    .replace(/\n/g, " ")
    .replace(/127\.0\.0\.1:\d+/g, "HOST")
    .replace(/\/tmp\/kpull-rel-[^/ ]+\//g, "");
function table(head: string[], body: unknown[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...body.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ].join("\n");
}

const out: string[] = [];
const sections = readdirSync(dir).filter((f) => f.endsWith(".jsonl"));
out.push(`<!-- generated from ${sections.length} result files by test/reliability/report.ts -->`);

const faults = rows("faults");
if (faults.length > 0) {
  out.push("\n### Faults\n");
  out.push(
    table(
      [
        "fault",
        "expected",
        "attempts",
        "survived",
        "data lost",
        "max ms (bound)",
        "max requests",
        "CLI: kubelet reason, ms",
      ],
      faults.map((f) => {
        const cli = f.cli as Row | null;
        return [
          f.fault,
          f.expected,
          f.attempts,
          f.survived,
          f.dataLost,
          `${f.maxMs} (${f.boundMs})`,
          f.maxRequests ?? "",
          cli ? `${cli.kubeletReason}, ${cli.ms}` : "",
        ];
      }),
    ),
  );
}

const crash = rows("crash");
if (crash.length > 0) {
  out.push("\n### Crash points\n");
  const byScenario = new Map<string, Row[]>();
  for (const r of crash)
    byScenario.set(String(r.scenario), [...(byScenario.get(String(r.scenario)) ?? []), r]);
  out.push(
    table(
      ["scenario", "kill sites", "survived", "data lost", "bytes refetched (= missing)", "sites"],
      [...byScenario].map(([s, rs]) => [
        s,
        rs.length,
        rs.filter((r) => r.survived).length,
        rs.reduce((n, r) => n + Number(r.dataLost ?? 0), 0),
        rs.reduce((n, r) => n + Number(r.fetchedBytes ?? 0), 0),
        rs.map((r) => r.site).join(", "),
      ]),
    ),
  );
  const points = new Set(crash.map((r) => String(r.site).split(":")[0]));
  out.push(
    `\n${crash.length} kill sites over ${points.size} named points: ${[...points].sort().join(", ")}.`,
  );
}
for (const r of rows("crash-snapshot-removal")) {
  out.push(
    `\nSnapshot removal killed from outside: ${r.files} files, killed when ${r.killedAt} remained, signal ${r.signal}.`,
  );
}

const conc = rows("concurrency");
for (const c of conc) {
  out.push("\n### 8 processes on one root\n");
  const perOp = c.perOp as Record<string, Row>;
  out.push(
    table(
      ["operation", "count", "failed", "p50 ms", "p99 ms", "max ms"],
      Object.entries(perOp).map(([op, s]) => [op, s.count, s.failed, s.p50, s.p99, s.max]),
    ),
  );
  out.push(
    `\n${c.seconds} s, ${c.operations} operations, violations ${c.violations}, deadlocks ${c.deadlocks}, verify clean ${c.verifyClean}, partial snapshots ${c.partialSnapshots}, data lost ${c.dataLost}; failures by code: ${JSON.stringify(c.failureCodes)}.`,
  );
}

const disk = rows("disk-full");
if (disk.length > 0) {
  out.push("\n### Full disk\n");
  out.push(
    table(
      ["case", "filesystem", "error", "survived"],
      disk.map((d) => [d.case, d.filesystem, d.error, d.survived]),
    ),
  );
}

const fuzz = rows("fuzz").filter((f) => f.mode === "full");
const fuzzAll = fuzz.length > 0 ? fuzz : rows("fuzz");
if (fuzzAll.length > 0) {
  out.push("\n### Fuzzing\n");
  out.push(
    table(
      ["target", "inputs", "refused", "crashes", "hangs", "slowest input ms", "heap MiB first → last slice"],
      fuzzAll.map((f) => [
        f.target,
        f.inputs,
        f.refused,
        f.crashes,
        f.hangs,
        f.maxMs,
        `${f.heapFirstMB} → ${f.heapLastMB}`,
      ]),
    ),
  );
  out.push(`\nTotal inputs: ${fuzzAll.reduce((n, f) => n + Number(f.inputs), 0)}.`);
}

const hostile = rows("hostile");
if (hostile.length > 0) {
  out.push("\n### Hostile input\n");
  out.push(
    table(
      ["class", "case", "command", "observed", "ms", "survived"],
      hostile.map((h) => [h.class, h.id, h.command ?? "", h.observed, h.ms, h.survived]),
    ),
  );
}

for (const s of rows("secrets")) {
  out.push(
    `\n### Secrets\n\n${s.outputs} outputs and ${s.files} stored files scanned (${s.bytesScanned} bytes) for ${s.needles} secret forms and bearer tokens: ${s.leaks} leaks.`,
  );
}

for (const l of rows("load")) {
  out.push("\n### Webhook load\n");
  out.push(
    table(
      ["in flight", "requests/s", "p99 ms", "failed"],
      (l.levels as Row[]).map((v) => [v.concurrency, v.rps, v.p99, v.failed]),
    ),
  );
  const cap = l.capacity as Row;
  out.push(
    `\nSustained ${l.seconds} s at ${cap.concurrency} in flight (capacity ${cap.rps}/s): ${l.requests} requests, ${l.failed} failed, ${l.achievedRps}/s, p50 ${l.p50ms} ms, p99 ${l.p99ms} ms, max ${l.maxMs} ms; ${l.rotations} rotations, ${l.certificatesSeen} certificates seen, ${l.reloadsLogged} reloads logged; RSS ${l.rssFirstQuarterMB} → ${l.rssLastQuarterMB} MiB (max ${l.rssMaxMB}).`,
  );
}

const text = `${out.join("\n")}\n`;
writeFileSync(join(dir, "report.md"), text);
process.stdout.write(text);
