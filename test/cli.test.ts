// Acceptance tests: run the CLI as a user would, through bin/kpull.js, and check stdout, stderr and exit codes.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";

const ROOT = resolve(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "kpull.js");

function kpull(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    input,
    encoding: "utf8",
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertNoStack(stderr: string) {
  assert.doesNotMatch(stderr, /\n\s+at /, "stderr must not carry a stack trace");
}

describe("toolchain", () => {
  it("tests run on Node 24", () => {
    assert.match(
      process.version,
      /^v24\./,
      `tests run on ${process.version}; run them through npm (npm test)`,
    );
  });
});

describe("kpull (acceptance)", () => {
  it("prints help with examples and the version", () => {
    const help = kpull(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Examples:/);
    assert.match(help.stdout, /ref\s+Parse image references/);
    const version = kpull(["--version"]);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^kpull \d+\.\d+\.\d+\n$/);
  });

  for (const command of ["ref", "explain"]) {
    it(`${command} --help has examples and usage`, () => {
      const r = kpull([command, "--help"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Examples:\n {2}# /);
      assert.match(r.stdout, new RegExp(`Usage:\\n {2}kpull ${command} `));
      assert.deepEqual(kpull(["help", command]).stdout, r.stdout);
    });
  }

  it("unknown commands, flags and formats give one line and exit 2", () => {
    const cases: [string[], RegExp][] = [
      [["frobnicate"], /^error: unknown command "frobnicate" for "kpull"/],
      [["ref", "--frob", "nginx"], /^error: unknown flag: --frob \(see 'kpull ref --help'\)\n$/],
      [
        ["ref", "-o", "xml", "nginx"],
        /^error: unknown output format "xml": allowed formats are text, json, yaml/,
      ],
      [["ref"], /^error: at least one IMAGE is required/],
      [["ref", "-o"], /^error: flag needs an argument: -o/],
      [["explain"], /^error: at least one IMAGE or -f/],
      [["explain", "-f", "examples", "nginx"], /^error: give either IMAGE arguments or -f, not both/],
    ];
    for (const [args, message] of cases) {
      const r = kpull(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, "");
    }
  });
});

describe("kpull ref", () => {
  it("-o json prints one object per input, in order, and exits 1 when any is invalid", () => {
    const r = kpull(["ref", "-o", "json", "nginx", "localhost:5000", "NGINX", "localhost:5000/app:v1"]);
    assert.equal(r.code, 1);
    const lines = r.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(lines, [
      {
        input: "nginx",
        valid: true,
        domain: "docker.io",
        path: "library/nginx",
        tag: null,
        digest: null,
        name: "docker.io/library/nginx",
        reference: "docker.io/library/nginx",
        familiar: "nginx",
        defaultPullPolicy: "Always",
      },
      {
        input: "localhost:5000",
        valid: true,
        domain: "docker.io",
        path: "library/localhost",
        tag: "5000",
        digest: null,
        name: "docker.io/library/localhost",
        reference: "docker.io/library/localhost:5000",
        familiar: "localhost:5000",
        defaultPullPolicy: "IfNotPresent",
      },
      {
        input: "NGINX",
        valid: false,
        error: "invalid reference format: repository name (library/NGINX) must be lowercase",
        defaultPullPolicy: "IfNotPresent",
      },
      {
        input: "localhost:5000/app:v1",
        valid: true,
        domain: "localhost:5000",
        path: "app",
        tag: "v1",
        digest: null,
        name: "localhost:5000/app",
        reference: "localhost:5000/app:v1",
        familiar: "localhost:5000/app:v1",
        defaultPullPolicy: "IfNotPresent",
      },
    ]);
  });

  it("exits 0 when all inputs are valid and keeps digests", () => {
    const digest = `sha256:${"f".repeat(64)}`;
    const r = kpull(["ref", "-o", "json", `busybox:latest@${digest}`]);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout);
    assert.equal(out.tag, "latest");
    assert.equal(out.digest, digest);
    assert.equal(out.reference, `docker.io/library/busybox:latest@${digest}`);
    assert.equal(out.defaultPullPolicy, "Always");
  });

  it("accepts -- before images that start with '-'", () => {
    const r = kpull(["ref", "-o", "json", "--", "-docker"]);
    assert.equal(r.code, 1);
    assert.deepEqual(JSON.parse(r.stdout), {
      input: "-docker",
      valid: false,
      error: "invalid reference format",
      defaultPullPolicy: "IfNotPresent",
    });
  });

  it("prints a table by default and YAML on request", () => {
    const text = kpull(["ref", "localhost:5000/app", ""]);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^INPUT\s+REFERENCE\s+FAMILIAR\s+DEFAULT POLICY\s+ERROR\n/);
    assert.match(text.stdout, /\nlocalhost:5000\/app\s+localhost:5000\/app\s+localhost:5000\/app\s+Always\n/);
    assert.match(text.stdout, /\n""\s+-\s+-\s+IfNotPresent\s+invalid reference format\n/);
    const yaml = kpull(["ref", "-o", "yaml", "nginx:1.27"]);
    assert.match(yaml.stdout, /^- input: nginx:1\.27\n {2}valid: true\n/);
    assert.match(yaml.stdout, /\n {2}tag: "1\.27"\n/);
  });
});

describe("kpull explain", () => {
  it("explains images given as arguments", () => {
    const r = kpull(["explain", "-o", "json", "nginx", `app@sha256:${"a".repeat(64)}`, "NGINX"]);
    assert.equal(r.code, 0, r.stderr);
    const { containers } = JSON.parse(r.stdout);
    assert.equal(containers.length, 3);
    assert.deepEqual(
      containers.map((c: Record<string, unknown>) => [c.image, c.effectivePullPolicy, c.reason, c.pinned]),
      [
        ["nginx", "Always", "defaulted: no tag", false],
        [`app@sha256:${"a".repeat(64)}`, "IfNotPresent", "defaulted: digest without tag", true],
        ["NGINX", "IfNotPresent", "defaulted: image does not parse", false],
      ],
    );
    assert.equal(containers[0].onStart, "resolves the tag's digest at every start; reuses cached layers");
    assert.match(containers[2].onStart, /^fails with InvalidImageName: couldn't parse image name "NGINX"/);
    for (const key of ["file", "kind", "namespace", "name", "container", "pullPolicy", "line"]) {
      assert.equal(containers[0][key], null, key);
    }
  });

  it("explains every kind of container in manifests from stdin, with lines", () => {
    const manifest = [
      "apiVersion: v1",
      "kind: Pod",
      "metadata:",
      "  name: debug",
      "  namespace: ops",
      "spec:",
      "  initContainers:",
      "    - name: init",
      "      image: busybox",
      "  containers:",
      "    - name: app",
      "      image: registry.example.com/app:2.0",
      "      imagePullPolicy: Always",
      "  ephemeralContainers:",
      "    - name: shell",
      "      image: busybox:1.36",
      "  volumes:",
      "    - name: models",
      "      image:",
      "        reference: registry.example.com/models:latest",
      "        pullPolicy: Never",
      "---",
      "apiVersion: v1",
      "kind: ConfigMap",
      "metadata: {name: ignored}",
      "data: {image: nginx}",
      "",
    ].join("\n");
    const r = kpull(["explain", "-f", "-", "-o", "json"], manifest);
    assert.equal(r.code, 0, r.stderr);
    const { containers } = JSON.parse(r.stdout);
    const summary = containers.map((c: Record<string, unknown>) => ({
      type: c.containerType,
      container: c.container,
      policy: c.effectivePullPolicy,
      written: c.pullPolicy,
      reason: c.reason,
      line: c.line,
    }));
    const byType = Object.fromEntries(summary.map((s: { type: string }) => [s.type, s]));
    assert.equal(containers.length, 4);
    assert.deepEqual(byType.initContainer, {
      type: "initContainer",
      container: "init",
      policy: "Always",
      written: null,
      reason: "defaulted: no tag",
      line: 9,
    });
    assert.deepEqual(byType.container, {
      type: "container",
      container: "app",
      policy: "Always",
      written: "Always",
      reason: "written",
      line: 12,
    });
    assert.equal(byType.ephemeralContainer.policy, "IfNotPresent");
    assert.equal(byType.ephemeralContainer.line, 16);
    assert.deepEqual(byType.imageVolume, {
      type: "imageVolume",
      container: "models",
      policy: "Never",
      written: "Never",
      reason: "written",
      line: 20,
    });
    for (const c of containers) {
      assert.equal(c.file, "-");
      assert.equal(c.kind, "Pod");
      assert.equal(c.namespace, "ops");
      assert.equal(c.name, "debug");
    }
  });

  it("runs on the examples directory (the README's main command)", () => {
    const r = kpull(["explain", "-f", "examples/"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /each start: resolves the tag's digest at every start; reuses cached layers/);
    assert.match(
      r.stdout,
      /each start: never contacts the registry; fails with ErrImageNeverPull when absent/,
    );
    const json = JSON.parse(kpull(["explain", "-f", "examples/", "-o", "json"]).stdout);
    const kinds = new Set(json.containers.map((c: { kind: string }) => c.kind));
    assert.ok(kinds.size >= 4, `examples cover several workload kinds: ${[...kinds].join(", ")}`);
  });

  it("unreadable manifests give one line naming the file and exit 2", () => {
    const dir = mkdtempSync(join(tmpdir(), "kpull-cli-"));
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "kind: Pod\nspec: [unclosed\n");
    const binary = join(dir, "blob.yaml");
    writeFileSync(binary, Buffer.from([0x00, 0xff, 0x10, 0x00]));
    for (const [file, pattern] of [
      [bad, /bad\.yaml/],
      [binary, /blob\.yaml/],
      [join(dir, "missing.yaml"), /missing\.yaml/],
    ] as const) {
      const r = kpull(["explain", "-f", file]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^error: /);
      assert.match(r.stderr, pattern);
      assertNoStack(r.stderr);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    }
  });
});
