// .kpull.yaml: parsing, errors that name the line, upward discovery, and path ignores.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { imageUsesFromText } from "../manifests/index.ts";
import {
  ConfigError,
  defaultConfig,
  findConfigFile,
  globToRegExp,
  isPathIgnored,
  loadConfig,
  loadSources,
  parseConfig,
  withoutIgnoredSources,
} from "./index.ts";

describe(".kpull.yaml", () => {
  it("reads mode, per-rule severity or off, and ignores", () => {
    const c = parseConfig(
      "# team policy\nmode: pinned\nrules:\n  floating-tag: warning\n  pull-policy: off\n  unpinned-image: false\nignore:\n  - vendor/**\n",
      "/repo/.kpull.yaml",
      "/repo",
    );
    assert.equal(c.mode, "pinned");
    assert.deepEqual(c.rules, { "floating-tag": "warning", "pull-policy": "off", "unpinned-image": "off" });
    assert.deepEqual(c.ignore, ["vendor/**"]);
    assert.equal(c.file, "/repo/.kpull.yaml");
  });

  it("an empty file is the defaults", () => {
    const c = parseConfig("# nothing yet\n", "c.yaml", "/x");
    assert.equal(c.mode, null);
    assert.deepEqual(c.rules, {});
  });

  it("typos are errors that name the file and line, never a silently disabled check", () => {
    const cases: [string, RegExp][] = [
      [
        "mode: alway\n",
        /^c\.yaml:1: mode "alway" is not one of always, always-unless-pinned, pinned, never$/,
      ],
      ["rules:\n  floating-tags: off\n", /^c\.yaml:2: unknown rule "floating-tags"$/],
      [
        "rules:\n  pull-policy: critical\n",
        /^c\.yaml:2: rule pull-policy: "critical" is not one of error, warning, note, off$/,
      ],
      ["modes: never\n", /^c\.yaml:1: unknown key "modes"$/],
      ["ignore: vendor\n", /ignore must be a list of path globs/],
      ["mode: [\n", /^c\.yaml:\d+: invalid YAML/],
      ["- mode\n", /expected a map/],
      ["mode: never\nmode: always\n", /invalid YAML/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseConfig(text, "c.yaml", "/x"),
        (e: unknown) => e instanceof ConfigError && e.code === "ConfigError" && message.test(e.message),
        text,
      );
    }
  });

  it("is found upward from the working directory; the nearest wins", async () => {
    const root = mkdtempSync(join(tmpdir(), "kpull-config-"));
    mkdirSync(join(root, "a", "b", "c"), { recursive: true });
    writeFileSync(join(root, ".kpull.yaml"), "mode: never\n");
    writeFileSync(join(root, "a", ".kpull.yaml"), "mode: pinned\n");
    assert.equal(await findConfigFile(join(root, "a", "b", "c")), join(root, "a", ".kpull.yaml"));
    assert.equal(await findConfigFile(root), join(root, ".kpull.yaml"));
    const c = await loadConfig(join(root, "a", ".kpull.yaml"));
    assert.equal(c.mode, "pinned");
    assert.equal(c.baseDir, join(root, "a"));
    await assert.rejects(loadConfig(join(root, "none.yaml")), /none\.yaml: no such file/);
  });
});

describe("path ignores", () => {
  it("globs: * within a segment, ** across, no slash means any depth, a directory covers its files", () => {
    assert.ok(globToRegExp("*.yaml").test("a/b/c.yaml"));
    assert.ok(!globToRegExp("/*.yaml").test("a/c.yaml"));
    assert.ok(globToRegExp("vendor/**").test("vendor/x/y.yaml"));
    assert.ok(globToRegExp("**/tests/*.yaml").test("charts/a/templates/tests/t.yaml"));
    assert.ok(!globToRegExp("**/tests/*.yaml").test("charts/a/tests/x/t.yaml"));
    assert.ok(globToRegExp("file?.json").test("file1.json"));
    assert.ok(globToRegExp("[ab].yaml").test("b.yaml"));
    assert.ok(!globToRegExp("a.yaml").test("xa.yaml"));
    const config = { ...defaultConfig("/repo"), ignore: ["vendor", "deploy/generated/*.yaml"] };
    assert.ok(isPathIgnored(config, "vendor/chart/t.yaml", { cwd: "/repo" }));
    assert.ok(isPathIgnored(config, "../deploy/generated/x.yaml", { cwd: "/repo/sub" }));
    assert.ok(!isPathIgnored(config, "deploy/generated/keep/x.yaml", { cwd: "/repo" }));
    assert.ok(!isPathIgnored(config, "/elsewhere/vendor-not/x.yaml", { cwd: "/repo" }));
    assert.ok(isPathIgnored(config, "-", { renderedFrom: "vendor/templates/d.yaml" }));
    assert.ok(!isPathIgnored(config, "-", {}));
  });

  it("ignored files are not even read (a broken ignored file is no error); stdin by # Source", async () => {
    const root = mkdtempSync(join(tmpdir(), "kpull-ignore-"));
    mkdirSync(join(root, "vendor"));
    writeFileSync(join(root, "vendor", "broken.yaml"), "a: [\n");
    writeFileSync(join(root, "app.yaml"), "kind: Pod\n");
    const config = { ...defaultConfig(root), ignore: ["vendor/"] };
    const loaded = await loadSources([root], { config, cwd: root });
    assert.deepEqual(loaded.errors, []);
    assert.deepEqual(loaded.ignored, [join(root, "vendor", "broken.yaml")]);
    assert.deepEqual(
      loaded.sources.map((s) => s.file),
      [join(root, "app.yaml")],
    );
    const missing = await loadSources([join(root, "nope.yaml"), root], { config, cwd: root });
    assert.equal(missing.errors.length, 1);
    assert.equal(missing.sources.length, 1);

    const rendered =
      "---\n# Source: chart/templates/a.yaml\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n" +
      "---\n# Source: vendor/templates/b.yaml\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: c, image: x}]}\n";
    const uses = withoutIgnoredSources(imageUsesFromText(rendered, "-"), config);
    assert.deepEqual(
      uses.map((u) => u.name),
      ["a"],
    );
  });
});
