// Acceptance tests of kpull check and kpull fix: the built CLI as a user runs it, in CI and by hand.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";

const ROOT = resolve(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "kpull.js");
const HOSTILE = join(ROOT, "test", "fixtures", "manifests", "hostile");

function kpull(args: string[], options: { input?: string; cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    input: options.input,
    encoding: "utf8",
    timeout: 60_000,
    env: { PATH: process.env.PATH, ...options.env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertNoStack(stderr: string) {
  assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
}

function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), "kpull-check-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(d, name, ".."), { recursive: true });
    writeFileSync(join(d, name), text);
  }
  return d;
}

const CLEAN =
  "kind: Pod\nmetadata: {name: ok}\nspec:\n  containers:\n  - {name: c, image: 'nginx:1.27', imagePullPolicy: Always}\n";
const DIRTY = "kind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n";

describe("kpull check (acceptance)", () => {
  it("help has examples first and usage", () => {
    for (const command of ["check", "fix", "pin"]) {
      const r = kpull([command, "--help"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^[^\n]+\n(?:[^\n]+\n)*\nExamples:\n {2}# /);
      assert.match(r.stdout, new RegExp(`Usage:\\n {2}kpull ${command} PATH\\.\\.\\.`));
      assert.match(r.stdout, /Exit status:/);
    }
  });

  it("exit 0 when clean, 1 on an error finding, with file:line:col", () => {
    const d = dir({ "ok.yaml": CLEAN, "sub/bad.yml": DIRTY, "notes.txt": "ignored" });
    assert.equal(kpull(["check", join(d, "ok.yaml")]).code, 0);
    const r = kpull(["check", d]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`^Pod bad\\n {2}${d}/sub/bad\\.yml:6:5  pull-policy  container "c": `));
  });

  it("reads stdin (helm template . | kpull check -) and maps # Source in SARIF", () => {
    const input = `---\n# Source: chart/templates/pod.yaml\n${DIRTY}`;
    const r = kpull(["check", "-", "-o", "sarif"], { input });
    assert.equal(r.code, 1);
    const log = JSON.parse(r.stdout);
    assert.equal(
      log.runs[0].results[0].locations[0].physicalLocation.artifactLocation.uri,
      "chart/templates/pod.yaml",
    );
    assert.equal(kpull(["check", "-", "-"], { input }).code, 2);
  });

  it("unreadable, hostile or malformed input: every bad file named, exit 2, no stack trace, no report", () => {
    const r = kpull(["check", HOSTILE, join(ROOT, "nope.yaml")]);
    assert.equal(r.code, 2);
    assertNoStack(r.stderr);
    assert.equal(r.stdout, "");
    for (const name of [
      "billion-laughs.yaml",
      "binary.yaml",
      "cyclic-merge.yaml",
      "invalid.yaml",
      "list-bomb.yaml",
    ])
      assert.match(r.stderr, new RegExp(`^error: ${HOSTILE}/${name.replace(".", "\\.")}`, "m"), name);
    assert.match(r.stderr, /^error: .*nope\.yaml: no such file or directory$/m);
  });

  it("usage errors exit 2 with one line", () => {
    const cases: [string[], RegExp][] = [
      [["check"], /at least one PATH/],
      [
        ["check", "-o", "xml", "."],
        /unknown output format "xml": allowed formats are text, json, sarif, junit, github/,
      ],
      [["check", "--mode", "sometimes", "."], /unknown mode "sometimes"/],
      [["check", "--bogus", "."], /unknown flag: --bogus/],
      [["fix", "--write", "-"], /--write cannot write to stdin/],
    ];
    for (const [args, message] of cases) {
      const r = kpull(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1);
    }
  });

  it(".kpull.yaml is found upward; --config and --no-config; a bad config exits 2 naming its line", () => {
    const d = dir({
      ".kpull.yaml": "mode: always\nrules:\n  pull-policy: warning\nignore: [vendor]\n",
      "app/bad.yaml": DIRTY,
      "vendor/broken.yaml": "a: [\n",
      "strict.yaml": "rules: {pull-policy: error}\n",
      "typo.yaml": "mode: pinned\nrules:\n  pull-polcy: off\n",
    });
    const found = kpull(["check", "-o", "json", "."], { cwd: join(d, "app") });
    assert.equal(found.code, 0, found.stderr);
    const json = JSON.parse(found.stdout);
    assert.equal(json.summary.mode, "always");
    assert.equal(json.findings[0].severity, "warning");
    const fromRoot = kpull(["check", "."], { cwd: d });
    assert.equal(fromRoot.code, 0, "vendor/broken.yaml is ignored, so not read");
    assert.equal(kpull(["check", "--config", join(d, "strict.yaml"), "app"], { cwd: d }).code, 1);
    assert.equal(kpull(["check", "--no-config", "app"], { cwd: d }).code, 1);
    const typo = kpull(["check", "--config", join(d, "typo.yaml"), "app"], { cwd: d });
    assert.equal(typo.code, 2);
    assert.equal(typo.stderr, `error: ${join(d, "typo.yaml")}:3: unknown rule "pull-polcy"\n`);
  });

  it("annotations: warnings on stderr; --no-annotations audits every exemption", () => {
    const text = DIRTY.replace(
      "metadata: {name: bad}",
      "metadata: {name: bad, annotations: {kpull/ignore: pull-policy, kpull/mode: sometimes}}",
    );
    const d = dir({ "a.yaml": text });
    const r = kpull(["check", join(d, "a.yaml")]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /^warning: .*kpull\/mode "sometimes" is not one of/m);
    assert.match(r.stdout, /No findings in 1 object .*; 1 suppressed by kpull\/ignore/);
    assert.equal(kpull(["check", "--no-annotations", join(d, "a.yaml")]).code, 1);
  });

  it("-o github annotates and writes $GITHUB_STEP_SUMMARY; -o junit and -o json", () => {
    const d = dir({ "bad.yaml": DIRTY, "summary.md": "" });
    const gh = kpull(["check", "-o", "github", "bad.yaml"], {
      cwd: d,
      env: { GITHUB_STEP_SUMMARY: join(d, "summary.md") },
    });
    assert.equal(gh.code, 1);
    assert.match(
      gh.stdout,
      /^::error file=bad\.yaml,line=6,endLine=6,col=5,endColumn=22,title=kpull pull-policy::Pod bad, container "c": /,
    );
    assert.match(readFileSync(join(d, "summary.md"), "utf8"), /^### kpull check\n/);
    const junit = kpull(["check", "-o", "junit", "bad.yaml"], { cwd: d });
    assert.match(junit.stdout, /<testsuites name="kpull" tests="2" failures="1" errors="0" skipped="0"/);
    const json = JSON.parse(kpull(["check", "-o", "json", "bad.yaml"], { cwd: d }).stdout);
    assert.equal(json.findings[0].line, 6);
  });
});

describe("kpull fix (acceptance)", () => {
  it("prints a diff (exit 1), --write applies it (exit 0), a second run finds nothing (exit 0)", () => {
    const crlf = `# comment\r\n${DIRTY.replace(/\n/g, "\r\n")}`;
    const d = dir({ "a.yaml": crlf, "ok.yaml": CLEAN });
    const preview = kpull(["fix", "."], { cwd: d });
    assert.equal(preview.code, 1, preview.stderr);
    assert.equal(
      preview.stdout,
      "--- a/a.yaml\n+++ b/a.yaml\n@@ -5,3 +5,4 @@\n   containers:\r\n   - name: c\r\n     image: nginx:1.27\r\n+    imagePullPolicy: Always\r\n",
    );
    assert.match(preview.stderr, /Would fix 1 pull policy in 1 file; run with --write to apply\./);
    assert.match(preview.stderr, /a Pod's imagePullPolicy cannot be changed in place/);
    assert.equal(readFileSync(join(d, "a.yaml"), "utf8"), crlf);
    const write = kpull(["fix", "--write", "."], { cwd: d });
    assert.equal(write.code, 0, write.stderr);
    assert.equal(readFileSync(join(d, "a.yaml"), "utf8"), `${crlf}    imagePullPolicy: Always\r\n`);
    const again = kpull(["fix", "--write", "."], { cwd: d });
    assert.equal(again.code, 0);
    assert.match(again.stderr, /^Nothing to fix\.$/m);
    assert.equal(kpull(["check", "."], { cwd: d }).code, 0);
  });

  it("--mode never writes Never; unreadable input writes nothing", () => {
    const d = dir({ "a.yaml": DIRTY, "b.yaml": "a: [\n" });
    const r = kpull(["fix", "--write", "--mode", "never", "."], { cwd: d });
    assert.equal(r.code, 2);
    assert.equal(readFileSync(join(d, "a.yaml"), "utf8"), DIRTY);
    writeFileSync(join(d, "b.yaml"), "");
    assert.equal(kpull(["fix", "--write", "--mode", "never", "."], { cwd: d }).code, 0);
    assert.ok(readFileSync(join(d, "a.yaml"), "utf8").endsWith("    imagePullPolicy: Never\n"));
  });
});
