// biome-ignore-all lint/suspicious/noExplicitAny: the tests walk parsed SARIF, whose shape is what they check
// Reporters: SARIF as GitHub code scanning requires it, well-formed JUnit, escaped workflow commands, JSON's
// documented keys, and text grouped by object.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { imageUsesFromText } from "../manifests/index.ts";
import {
  type CheckReport,
  checkImageUses,
  escapeData,
  escapeProperty,
  type Finding,
  RULES,
  renderGithub,
  renderJson,
  renderJunit,
  renderSarif,
  renderText,
  sarifLog,
  xmlEscape,
} from "./index.ts";

const CLOCK = () => new Date("2025-06-15T00:00:00Z");

const MANIFESTS = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations: {kpull/ignore: floating-tag, kpull/ignore-reason: "legacy <sidecar> & co"}
spec:
  template:
    spec:
      initContainers:
        - name: "init,1"
          image: busybox
      containers:
        - name: app
          image: nginx:1.25
        - name: "a&b<c>"
          image: "NGINX:1.25"
---
apiVersion: v1
kind: Pod
metadata: {name: "p%1:2,3"}
spec:
  containers:
    - {name: ok, image: "nginx:1.25", imagePullPolicy: Always}
`;

function report(file = "deploy/web app.yaml"): CheckReport {
  return checkImageUses(imageUsesFromText(MANIFESTS, file), { now: CLOCK });
}

const SEVERITIES = Object.fromEntries(RULES.map((r) => [r.id, r.defaultSeverity]));

/** What GitHub code scanning requires of an uploaded SARIF file (docs "SARIF support for code scanning"). */
function assertGithubSarif(log: unknown): void {
  const l = log as Record<string, unknown>;
  assert.equal(l.version, "2.1.0");
  assert.equal(typeof l.$schema, "string");
  assert.ok(Array.isArray(l.runs) && l.runs.length >= 1 && l.runs.length <= 20);
  for (const run of l.runs as Record<string, any>[]) {
    const driver = run.tool?.driver;
    assert.equal(typeof driver?.name, "string");
    const rules = driver.rules as Record<string, any>[];
    assert.ok(Array.isArray(rules));
    const ids = rules.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length, "rule ids unique");
    for (const rule of rules) {
      assert.equal(typeof rule.id, "string");
      assert.equal(typeof rule.shortDescription?.text, "string");
      assert.ok(["error", "warning", "note", "none"].includes(rule.defaultConfiguration.level));
      const tags = rule.properties?.tags ?? [];
      assert.ok(tags.length <= 20);
      const sev = rule.properties?.["security-severity"];
      if (sev !== undefined) {
        assert.equal(typeof sev, "string");
        assert.ok(Number(sev) >= 0 && Number(sev) <= 10);
      }
    }
    assert.ok(Array.isArray(run.results));
    assert.ok(run.results.length <= 25_000);
    for (const result of run.results as Record<string, any>[]) {
      assert.ok(ids.includes(result.ruleId));
      assert.equal(rules[result.ruleIndex]?.id, result.ruleId);
      assert.ok(["error", "warning", "note", "none"].includes(result.level));
      assert.ok(typeof result.message?.text === "string" && result.message.text.length > 0);
      const physical = result.locations?.[0]?.physicalLocation;
      const uri = physical?.artifactLocation?.uri as string;
      assert.equal(typeof uri, "string");
      assert.ok(!uri.includes("\\") && !uri.startsWith("/") && !/\s/.test(uri), `relative URI: ${uri}`);
      const region = physical.region;
      assert.ok(Number.isInteger(region?.startLine) && region.startLine >= 1, "region.startLine (GH1003)");
      if (region.startColumn !== undefined) assert.ok(region.startColumn >= 1);
      if (region.endLine !== undefined) assert.ok(region.endLine >= region.startLine);
      if (region.endColumn !== undefined && region.endLine === region.startLine)
        assert.ok(region.endColumn > region.startColumn);
      for (const v of Object.values(result.partialFingerprints ?? {})) assert.equal(typeof v, "string");
    }
  }
}

describe("SARIF", () => {
  it("has the structure GitHub code scanning accepts", () => {
    const log = JSON.parse(renderSarif(report(), { version: "0.1.0", severities: SEVERITIES }));
    assertGithubSarif(log);
    const run = log.runs[0];
    assert.deepEqual(
      run.tool.driver.rules.map((r: { id: string }) => r.id),
      ["invalid-image", "floating-tag", "pull-policy", "unpinned-image"],
      "every rule declared, also those without results, so GitHub can close fixed alerts",
    );
    assert.equal(run.results.length, 2);
    const [pull, invalid] = run.results;
    assert.equal(pull.ruleId, "pull-policy");
    assert.equal(pull.locations[0].physicalLocation.artifactLocation.uri, "deploy/web%20app.yaml");
    assert.deepEqual(pull.locations[0].physicalLocation.region, {
      startLine: 15,
      startColumn: 11,
      endLine: 15,
      endColumn: 28,
    });
    assert.match(pull.message.text, /^Deployment shop\/web, container "app": imagePullPolicy is not written/);
    assert.equal(invalid.ruleId, "invalid-image");
  });

  it("fingerprints ignore lines and images; they change with the object or field path", () => {
    const a = sarifLog(report(), { version: "0", severities: SEVERITIES }) as any;
    const shifted = checkImageUses(
      imageUsesFromText(
        `# a comment above\n${MANIFESTS.replace("nginx:1.25\n", "nginx:1.26\n")}`,
        "deploy/web app.yaml",
      ),
      { now: CLOCK },
    );
    const b = sarifLog(shifted, { version: "0", severities: SEVERITIES }) as any;
    const fp = (log: any) =>
      log.runs[0].results.map((r: any) => r.partialFingerprints["kpullFingerprint/v1"]);
    assert.deepEqual(fp(a), fp(b));
    assert.notEqual(fp(a)[0], fp(a)[1]);
  });

  it("rules turned off are declared disabled; suppressed findings only on request, with suppressions", () => {
    const log = sarifLog(report(), {
      version: "0",
      severities: { ...SEVERITIES, "unpinned-image": "off", "pull-policy": "warning" },
      includeSuppressed: true,
    }) as any;
    assertGithubSarif(log);
    const rules = log.runs[0].rules ?? log.runs[0].tool.driver.rules;
    assert.deepEqual(rules[3].defaultConfiguration, { enabled: false, level: "error" });
    assert.equal(rules[2].defaultConfiguration.level, "warning");
    const suppressed = log.runs[0].results.filter((r: any) => r.suppressions);
    assert.equal(suppressed.length, 1);
    assert.deepEqual(suppressed[0].suppressions, [
      { kind: "inSource", status: "accepted", justification: "legacy <sidecar> & co" },
    ]);
  });

  it("keeps at most 25,000 results, the most severe first", () => {
    const base = report();
    const error = base.findings[0] as Finding;
    const findings = [
      ...Array.from({ length: 25_000 }, () => ({ ...error, severity: "note" as const })),
      error,
    ];
    const log = sarifLog({ ...base, findings }, { version: "0", severities: SEVERITIES }) as any;
    assert.equal(log.runs[0].results.length, 25_000);
    assert.equal(log.runs[0].results[0].level, "error");
    assert.deepEqual(log.runs[0].properties, { omittedResults: 1 });
  });

  it("stdin maps to the Helm # Source path at line 1, or to 'stdin'", () => {
    const text =
      "# Source: chart/templates/web.yaml\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x}]}\n";
    const r = checkImageUses(imageUsesFromText(text, "-"));
    const log = sarifLog(r, { version: "0", severities: SEVERITIES }) as any;
    assertGithubSarif(log);
    const loc = log.runs[0].results[0].locations[0].physicalLocation;
    assert.equal(loc.artifactLocation.uri, "chart/templates/web.yaml");
    assert.deepEqual(loc.region, { startLine: 1 });
    assert.match(log.runs[0].results[0].message.text, /\(line 4 of the rendered input\)$/);
    const bare = sarifLog(checkImageUses(imageUsesFromText(text.slice(35), "-")), {
      version: "0",
      severities: SEVERITIES,
    }) as any;
    assert.equal(bare.runs[0].results[0].locations[0].physicalLocation.artifactLocation.uri, "stdin");
  });
});

/** A small XML 1.0 well-formedness check: one root, nested tags, quoted attributes, known entities. */
function assertWellFormedXml(xml: string): void {
  let s = xml.replace(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n/, "");
  const stack: string[] = [];
  let roots = 0;
  const NAME = "[A-Za-z_][\\w.-]*";
  const ATTR = new RegExp(`^\\s+(${NAME})="([^"<]*)"`);
  const checkText = (t: string) => {
    for (const m of t.matchAll(/&([^;\s]*);?/g)) {
      assert.ok(/^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);$/.test(m[0]), `bad entity ${m[0]}`);
    }
    assert.ok(!/[<>]/.test(t.replace(/&[^;]+;/g, "")) || !t.includes("<"), "raw < in text");
    // biome-ignore lint/suspicious/noControlCharactersInRegex: XML 1.0 forbids exactly these
    assert.ok(!/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(t), "control character");
  };
  while (s.length > 0) {
    const lt = s.indexOf("<");
    if (lt < 0) {
      assert.equal(s.trim(), "", "text after the root");
      break;
    }
    const text = s.slice(0, lt);
    if (stack.length === 0) assert.equal(text.trim(), "", "text outside the root");
    checkText(text);
    s = s.slice(lt);
    const close = new RegExp(`^</(${NAME})\\s*>`).exec(s);
    if (close) {
      assert.equal(stack.pop(), close[1], "mismatched end tag");
      s = s.slice(close[0].length);
      continue;
    }
    const open = new RegExp(`^<(${NAME})`).exec(s);
    assert.ok(open, `bad markup at ${s.slice(0, 30)}`);
    s = s.slice(open[0].length);
    const names = new Set<string>();
    for (let m = ATTR.exec(s); m; m = ATTR.exec(s)) {
      assert.ok(!names.has(m[1] as string), "duplicate attribute");
      names.add(m[1] as string);
      checkText(m[2] as string);
      s = s.slice(m[0].length);
    }
    const end = /^\s*(\/?)>/.exec(s);
    assert.ok(end, `unterminated tag ${open[1]}`);
    s = s.slice(end[0].length);
    if (stack.length === 0) roots++;
    if (end[1] !== "/") stack.push(open[1] as string);
  }
  assert.deepEqual(stack, [], "unclosed elements");
  assert.equal(roots, 1);
}

describe("JUnit", () => {
  it("is well-formed, counts match, every check a testcase named by rule and container", () => {
    const xml = renderJunit(report());
    assertWellFormedXml(xml);
    assert.match(
      xml,
      /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="kpull" tests="\d+" failures="2" errors="0" skipped="1" time="0">/,
    );
    assert.match(
      xml,
      /<testsuite name="deploy\/web app\.yaml" tests="\d+" failures="2" errors="0" skipped="1"/,
    );
    assert.match(
      xml,
      /classname="apps\/v1 Deployment shop\/web" name="pull-policy container &quot;app&quot;"/,
    );
    assert.match(xml, /name="invalid-image container &quot;a&amp;b&lt;c&gt;&quot;"/);
    assert.match(xml, /<skipped message="exempted by kpull\/ignore: legacy &lt;sidecar&gt; &amp; co"\/>/);
    assert.match(xml, /<failure message="[^"]*" type="error">deploy\/web app\.yaml:15:11 {2}pull-policy {2}/);
    assert.match(
      xml,
      /classname="v1 Pod p%1:2,3" name="pull-policy container &quot;ok&quot;" file="deploy\/web app.yaml" time="0"\/>/,
    );
    const cases = xml.match(/<testcase /g)?.length;
    assert.equal(Number(/tests="(\d+)"/.exec(xml)?.[1]), cases);
  });

  it("warnings pass with the text in system-out; XML-hostile characters are escaped or replaced", () => {
    const r = checkImageUses(imageUsesFromText(MANIFESTS, "x.yaml"), {
      now: CLOCK,
      config: { file: null, baseDir: "/", mode: null, ignore: [], rules: { "pull-policy": "warning" } },
    });
    const xml = renderJunit(r);
    assertWellFormedXml(xml);
    assert.match(xml, /<system-out>warning: x\.yaml:15:11 {2}pull-policy {2}/);
    assert.equal(xmlEscape("a\u0001b\uFFFEc<\"'>&\n"), "a\uFFFDb\uFFFDc&lt;&quot;&apos;&gt;&amp;&#10;");
    assertWellFormedXml(renderJunit(checkImageUses([])));
  });
});

describe("GitHub workflow commands", () => {
  it("escape %, CR and LF in messages, and also : and , in properties", () => {
    assert.equal(escapeData("100% \r\n done: a,b"), "100%25 %0D%0A done: a,b");
    assert.equal(escapeProperty("100% \r\n done: a,b"), "100%25 %0D%0A done%3A a%2Cb");
    assert.equal(escapeProperty("%3A"), "%253A", "percent first, so escapes are not escaped twice");
  });

  it("annotate with file, line, col, endColumn and title; object names with : and , escaped", () => {
    const out = renderGithub(report("dir:x,y/web.yaml"));
    const lines = out.log.trimEnd().split("\n");
    assert.equal(
      lines[0],
      `::error file=dir%3Ax%2Cy/web.yaml,line=15,endLine=15,col=11,endColumn=28,title=kpull pull-policy::Deployment shop/web, container "app": imagePullPolicy is not written, so the API server defaults it to IfNotPresent because the tag "1.25" is not latest; a node that already holds the tag keeps running the old image after the tag moves. Mode always-unless-pinned allows IfNotPresent only for images pinned by digest, so this image needs Always: set imagePullPolicy: Always, or pin a digest (kpull pin) and use IfNotPresent.`,
    );
    assert.match(
      lines[1] ?? "",
      /^::error file=.*title=kpull invalid-image::Deployment shop\/web, container "a&b<c>"/,
    );
    assert.match(lines.at(-1) ?? "", /^kpull check: 2 errors, 0 warnings, 0 notes/);
  });

  it("messages with newlines and percent signs stay one command", () => {
    const f = report().findings[0] as Finding;
    const r = { ...report(), findings: [{ ...f, message: "50%\nof\rit" }] };
    const [first] = renderGithub(r).log.split("\n");
    assert.match(first ?? "", /::Deployment shop\/web, 50%25%0Aof%0Dit$/);
  });

  it("keeps 10 annotations per level, errors first, and lists the rest in the log and the step summary", () => {
    const containers = Array.from(
      { length: 12 },
      (_, i) => `    - {name: c${i}, image: "nginx:1.${i}"}`,
    ).join("\n");
    const warnings = Array.from({ length: 11 }, (_, i) => `    - {name: w${i}, image: "w${i}"}`).join("\n");
    const text = `kind: Pod\nmetadata: {name: many}\nspec:\n  containers:\n${warnings}\n${containers}\n`;
    const r = checkImageUses(imageUsesFromText(text, "m.yaml"), {
      config: { file: null, baseDir: "/", mode: null, ignore: [], rules: { "floating-tag": "warning" } },
    });
    const out = renderGithub(r);
    const lines = out.log.split("\n");
    assert.equal(lines.filter((l) => l.startsWith("::error ")).length, 10);
    assert.equal(lines.filter((l) => l.startsWith("::warning ")).length, 10);
    assert.ok(
      lines.findIndex((l) => l.startsWith("::warning ")) >
        lines.findLastIndex((l) => l.startsWith("::error ")),
    );
    assert.ok(out.log.includes("3 more findings not annotated (GitHub keeps 10 per level and step):"));
    assert.ok(out.log.includes("m.yaml:"), "the rest are in the log");
    assert.equal(out.stepSummary.match(/^\| (error|warning) \|/gm)?.length, 23);
    assert.match(out.stepSummary, /3 of these were not annotated/);
  });
});

describe("JSON and text", () => {
  it("JSON findings carry exactly the documented keys", () => {
    const json = JSON.parse(renderJson(report()));
    assert.deepEqual(Object.keys(json), ["findings", "summary"]);
    assert.deepEqual(Object.keys(json.findings[0]), [
      "rule",
      "severity",
      "file",
      "line",
      "column",
      "kind",
      "namespace",
      "name",
      "container",
      "image",
      "message",
    ]);
    assert.deepEqual(json.findings[0], {
      rule: "pull-policy",
      severity: "error",
      file: "deploy/web app.yaml",
      line: 15,
      column: 11,
      kind: "Deployment",
      namespace: "shop",
      name: "web",
      container: "app",
      image: "nginx:1.25",
      message: json.findings[0].message,
    });
    assert.deepEqual(json.summary, {
      mode: "always-unless-pinned",
      files: 1,
      objects: 2,
      images: 4,
      errors: 2,
      warnings: 0,
      notes: 0,
      suppressed: 1,
      rules: { "pull-policy": 1, "invalid-image": 1 },
    });
  });

  it("text: file:line:col  rule  message, grouped by object; colour only when asked", () => {
    const text = renderText(report());
    assert.match(
      text,
      /^Deployment shop\/web\n {2}deploy\/web app\.yaml:15:11 {2}pull-policy {2}container "app": /,
    );
    assert.match(
      text,
      /\n {2}deploy\/web app\.yaml:17:11 {2}invalid-image {2}container "a&b<c>": couldn't parse/,
    );
    assert.match(
      text,
      /\n2 errors in 1 of 2 objects \(4 images, 1 file; mode always-unless-pinned\); 1 suppressed by kpull\/ignore\n$/,
    );
    assert.ok(!text.includes("\u001b["));
    assert.ok(renderText(report(), { color: true }).includes("\u001b[31mpull-policy\u001b[0m"));
    assert.match(renderText(checkImageUses([])), /^No findings in 0 objects/);
  });
});
