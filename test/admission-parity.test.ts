// CI and the cluster agree: `kpull check` on a corpus of manifests and the webhook on the same objects
// (sent as AdmissionReviews to the running HTTPS server) give the same findings, with the same rule ids,
// severities and messages. Also with the objects defaulted as the API server defaults them before the
// webhook sees them: the same rule ids (the messages then say "written" where check said "defaulted").

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import {
  AdmissionHandler,
  AdmissionMetrics,
  AdmissionServer,
  defaultPolicy,
} from "../src/admission/index.ts";
import { parseConfig } from "../src/check/index.ts";
import { run } from "../src/cli/index.ts";
import { imageUsesFromText } from "../src/manifests/index.ts";
import { defaultPullPolicy } from "../src/policy/index.ts";
import { admissionReview, h2Session, type Json, reviewResponse } from "./admission-helpers.ts";
import { makeTlsMaterial } from "./harness/certs.ts";

const ROOT = join(import.meta.dirname, "..");
const CORPUS = [
  ...readdirSync(join(ROOT, "test", "fixtures", "check")).map((f) =>
    join(ROOT, "test", "fixtures", "check", f),
  ),
  ...readdirSync(join(ROOT, "examples"))
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => join(ROOT, "examples", f)),
];

interface Item {
  readonly file: string;
  /** The objects the API server would send: the document, or each item of a List. */
  readonly objects: Json[];
}

/** One file per YAML document, so check's findings can be told apart per document. */
function splitCorpus(dir: string): Item[] {
  const items: Item[] = [];
  for (const path of CORPUS) {
    const text = readFileSync(path, "utf8");
    const docs = text.split(/^---[ \t]*$/m);
    for (const [i, doc] of docs.entries()) {
      // YAML 1.1 resolves scalars the way kubectl (go-yaml v2) does: `yes` is a boolean, `1.0` a number.
      const parsed = parseAllDocuments(doc, { version: "1.1" });
      const value = parsed[0]?.toJS({ maxAliasCount: -1 }) as Json | null | undefined;
      if (value === null || value === undefined || typeof value !== "object") continue;
      const file = join(dir, `${basename(path, ".yaml")}-${i}.yaml`);
      writeFileSync(file, doc);
      const objects = Array.isArray(value.items) ? (value.items as Json[]) : [value];
      // The conversion to JSON must not change what check reads, or the comparison means nothing.
      const strip = (u: {
        kind: string;
        container: string | null;
        image: string | null;
        imageStatus: string;
        pullPolicy: string | null;
      }) => [u.kind, u.container, u.image, u.imageStatus, u.pullPolicy].join("|");
      assert.deepEqual(
        objects.flatMap((o) => imageUsesFromText(JSON.stringify(o), "x.json").map(strip)),
        imageUsesFromText(doc, file).map(strip),
        `${path} document ${i} converts to JSON faithfully`,
      );
      items.push({ file, objects });
    }
  }
  return items;
}

interface Finding {
  readonly rule: string;
  readonly severity: string;
  readonly message: string;
}

async function kpullCheck(
  args: string[],
): Promise<{ code: number; findings: (Finding & { file: string })[] }> {
  let stdout = "";
  let stderr = "";
  const input = new PassThrough();
  input.end("");
  const code = await run(["check", "-o", "json", ...args], {
    stdout: { write: (c: string | Uint8Array) => (stdout += c.toString()) },
    stderr: { write: (c: string) => (stderr += c) },
    stdin: input,
    env: {},
  });
  assert.ok(code === 0 || code === 1, stderr);
  return { code, findings: (JSON.parse(stdout) as { findings: (Finding & { file: string })[] }).findings };
}

/** Findings as the webhook reports them: deny lines (`  path  rule  message`) and warnings, in order. */
function webhookFindings(res: { status?: { message: string }; warnings?: string[] }): {
  errors: Finding[];
  warnings: Finding[];
  /** "kpull: N more warnings not shown" */
  more: number;
} {
  const errors: Finding[] = [];
  const warnings: Finding[] = [];
  let more = 0;
  for (const line of (res.status?.message ?? "").split("\n").slice(1)) {
    const m = /^ {2}\S+ {2}([a-z-]+) {2}(.*)$/.exec(line);
    if (m) errors.push({ rule: m[1] as string, severity: "error", message: m[2] as string });
  }
  for (const w of res.warnings ?? []) {
    const m = /^kpull ([a-z-]+) \((warning|note)\): (.*)$/.exec(w);
    if (m) warnings.push({ rule: m[1] as string, severity: m[2] as string, message: m[3] as string });
    const n = /^kpull: (\d+) more warnings not shown$/.exec(w);
    if (n) more = Number(n[1]);
  }
  return { errors, warnings, more };
}

/** The API server's defaulting of imagePullPolicy (kubelet.md §1.1-1.3), applied to a decoded object. */
function defaulted(object: Json): Json {
  const copy = structuredClone(object);
  const visit = (spec: unknown) => {
    if (typeof spec !== "object" || spec === null) return;
    const s = spec as Record<string, unknown>;
    for (const field of ["initContainers", "containers", "ephemeralContainers"]) {
      for (const c of Array.isArray(s[field]) ? (s[field] as unknown[]) : []) {
        if (typeof c !== "object" || c === null) continue;
        const container = c as Record<string, unknown>;
        if (typeof container.image === "string" && (container.imagePullPolicy ?? "") === "")
          container.imagePullPolicy = defaultPullPolicy(container.image);
      }
    }
    for (const v of Array.isArray(s.volumes) ? (s.volumes as unknown[]) : []) {
      const image = (v as { image?: unknown } | null)?.image as Record<string, unknown> | undefined;
      if (
        image &&
        typeof image === "object" &&
        typeof image.reference === "string" &&
        (image.pullPolicy ?? "") === ""
      )
        image.pullPolicy = defaultPullPolicy(image.reference);
    }
  };
  const at = (...path: string[]): unknown =>
    path.reduce<unknown>(
      (v, k) => (typeof v === "object" && v !== null ? (v as Record<string, unknown>)[k] : undefined),
      copy,
    );
  const kind = copy.kind;
  if (kind === "Pod") visit(at("spec"));
  else if (kind === "PodTemplate") visit(at("template", "spec"));
  else if (kind === "CronJob") visit(at("spec", "jobTemplate", "spec", "template", "spec"));
  else visit(at("spec", "template", "spec"));
  return copy;
}

describe("kpull check and the webhook agree", () => {
  const dir = mkdtempSync(join(tmpdir(), "kpull-parity-"));
  const material = makeTlsMaterial(mkdtempSync(join(tmpdir(), "kpull-parity-tls-")));
  const items = splitCorpus(dir);
  const metrics = new AdmissionMetrics();
  const handler = new AdmissionHandler({ policy: defaultPolicy({ exemptNamespaces: [] }), metrics });
  let server: AdmissionServer;
  let h2: ReturnType<typeof h2Session>;

  before(async () => {
    server = await AdmissionServer.start({
      handler,
      metrics,
      certFile: material.certFile,
      keyFile: material.keyFile,
      port: 0,
      host: "127.0.0.1",
    });
    h2 = h2Session(`https://127.0.0.1:${server.port}`, material.caPem);
  });
  after(async () => {
    await h2?.close();
    await server?.shutdown();
  });

  async function webhook(object: Json) {
    const { uid, body } = admissionReview({ object, namespace: "parity" });
    return webhookFindings(reviewResponse(await h2.request("/validate", JSON.stringify(body)), uid));
  }

  for (const [label, configText] of [
    ["default config (every rule an error)", null],
    [
      "floating-tag a warning, unpinned-image a note, mode pinned",
      "mode: pinned\nrules:\n  floating-tag: warning\n  unpinned-image: note\n",
    ],
  ] as const) {
    it(`same rule ids, severities and messages on ${items.length} documents: ${label}`, async () => {
      const args = ["--no-config"];
      if (configText !== null) {
        const file = join(dir, "parity.kpull.yaml");
        writeFileSync(file, configText);
        args.splice(0, 1, "--config", file);
        handler.policy = defaultPolicy({ exemptNamespaces: [], config: parseConfig(configText, file, dir) });
      } else handler.policy = defaultPolicy({ exemptNamespaces: [] });
      const check = await kpullCheck([...args, ...items.map((i) => i.file)]);
      let compared = 0;
      for (const item of items) {
        const expected = check.findings
          .filter((f) => f.file === item.file)
          .map(({ rule, severity, message }) => ({ rule, severity, message }));
        const sortKey = (f: Finding) => `${f.rule}\u0000${f.message}`;
        const byKey = (a: Finding, b: Finding) => sortKey(a).localeCompare(sortKey(b));
        // Each object of the document (the items of a List) is its own review.
        let offset = 0;
        const errors: Finding[] = [];
        for (const object of item.objects) {
          const answer = await webhook(object);
          errors.push(...answer.errors);
          const own = check.findings.filter((f) => f.file === item.file && f.severity !== "error");
          const mine = own.slice(offset, offset + answer.warnings.length + answer.more);
          offset += mine.length;
          // Warnings come in check's order; each is clipped to 256 characters (compared as a prefix); past
          // 20 warnings the rest are counted in one more.
          assert.equal(answer.warnings.length + answer.more, mine.length, item.file);
          for (const [i, w] of answer.warnings.entries()) {
            const e = mine[i] as Finding;
            assert.equal(w.rule, e.rule, item.file);
            assert.equal(w.severity, e.severity, item.file);
            if (w.message.endsWith("…"))
              assert.ok(e.message.startsWith(w.message.slice(0, -1)), `${item.file}: ${w.message}`);
            else assert.equal(w.message, e.message, item.file);
          }
        }
        assert.deepEqual(
          errors.sort(byKey),
          expected.filter((f) => f.severity === "error").sort(byKey),
          item.file,
        );
        compared += expected.length;
      }
      assert.ok(compared >= 40, `${compared} findings compared`);
    });
  }

  it("the same rule ids on the objects as the API server defaults them", async () => {
    handler.policy = defaultPolicy({ exemptNamespaces: [] });
    const check = await kpullCheck(["--no-config", ...items.map((i) => i.file)]);
    for (const item of items) {
      const expected = check.findings
        .filter((f) => f.file === item.file)
        .map((f) => f.rule)
        .sort();
      const actual: string[] = [];
      for (const object of item.objects) {
        const answer = await webhook(defaulted(object));
        actual.push(...answer.errors.map((f) => f.rule));
      }
      assert.deepEqual(actual.sort(), expected, item.file);
    }
  });
});
