import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { imageUsesFromText, ManifestError } from "./index.ts";
import { fixture } from "./oracle.test.ts";
import { excessiveAliasing } from "./parse.ts";

const F = "bad.yaml";

/** Runs `fn` and returns the ManifestError it must throw. */
function manifestError(fn: () => unknown): ManifestError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ManifestError, `expected a ManifestError, got ${String(error)}`);
    assert.equal(error.code, "ManifestError");
    return error;
  }
  assert.fail("expected a ManifestError, got a result");
}

function laughs(levels: number, width: number, leaf: string): string {
  const lines = [`l0: &l0 ${leaf}`];
  for (let i = 1; i <= levels; i++)
    lines.push(
      `l${i}: &l${i} [${Array(width)
        .fill(`*l${i - 1}`)
        .join(", ")}]`,
    );
  return `${lines.join("\n")}\nkind: Pod\nspec: {containers: [{image: *l0}]}\n`;
}

describe("hostile and malformed input", () => {
  it("reports invalid YAML with the file, line and column", () => {
    const { text } = fixture("hostile", "invalid.yaml");
    const e = manifestError(() => imageUsesFromText(text, "hostile/invalid.yaml"));
    assert.equal(e.file, "hostile/invalid.yaml");
    assert.equal(e.line, 7);
    assert.equal(e.column, 1);
    assert.match(e.message, /^hostile\/invalid\.yaml:7:1: invalid YAML: /);
    assert.doesNotMatch(e.message, /\n/, "one line, no code frame");

    const e2 = manifestError(() => imageUsesFromText("kind: Pod\nspec:\n  a: 1\n b: 2\n", F));
    assert.deepEqual([e2.line, e2.reason.startsWith("invalid YAML")], [4, true]);
  });

  it("refuses the classic billion laughs (go-yaml's excessive-aliasing rule), wherever the aliases are", {
    timeout: 5000,
  }, () => {
    const e = manifestError(() => imageUsesFromText(laughs(9, 10, "lol"), F));
    assert.match(e.reason, /excessive aliasing/);
    assert.equal(e.file, F);
    assert.equal(e.line, 1);
    // Not on the path to any image, still refused: kubectl would refuse the document too.
    const offPath = laughs(9, 10, "lol").replace(
      "kind: Pod\nspec: {containers: [{image: *l0}]}\n",
      "kind: ConfigMap\n",
    );
    assert.match(manifestError(() => imageUsesFromText(offPath, F)).reason, /excessive aliasing/);
  });

  it("refuses billion laughs through merge keys", { timeout: 5000 }, () => {
    const { text } = fixture("hostile", "billion-laughs.yaml");
    const e = manifestError(() => imageUsesFromText(text, "billion-laughs.yaml"));
    assert.match(e.message, /^billion-laughs\.yaml:\d+:\d+: document contains excessive aliasing/);
  });

  it("stops an alias bomb made of List items within its budget", { timeout: 5000 }, () => {
    const { text } = fixture("hostile", "list-bomb.yaml");
    const e = manifestError(() => imageUsesFromText(text, "list-bomb.yaml"));
    assert.match(e.reason, /too many aliases or merge keys/);
    assert.ok(e.line !== null);
  });

  it("accepts heavy but legitimate sharing: many containers merging one large anchor", {
    timeout: 5000,
  }, () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `k${i}: v`).join(", ");
    const containers = Array.from({ length: 2000 }, (_, i) =>
      i === 0 ? `    - &m {image: x, ${keys}}` : "    - <<: *m",
    );
    const text = `kind: Pod\nspec:\n  containers:\n${containers.join("\n")}\n`;
    const uses = imageUsesFromText(text, F);
    assert.equal(uses.length, 2000);
    assert.ok(uses.every((u) => u.image === "x" && u.position.line === 4));
  });

  it("the excessive-aliasing rule has go-yaml's thresholds", () => {
    assert.equal(excessiveAliasing(1000, 999), false, "small documents never");
    assert.equal(excessiveAliasing(1001, 100), false, "few aliases never");
    assert.equal(excessiveAliasing(10_000, 9_950), true, "over 99%");
    assert.equal(excessiveAliasing(10_000, 9_900), false, "exactly 99%");
    assert.equal(excessiveAliasing(2_200_000, 1_200_000), true, "0.545 allowed halfway; 0.545... > ");
    assert.equal(excessiveAliasing(2_200_000, 1_100_000), false);
    assert.equal(excessiveAliasing(10_000_000, 1_000_001), true, "10% for large documents");
    assert.equal(excessiveAliasing(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY), true);
  });

  it("refuses an anchor that contains its own alias", () => {
    const { text } = fixture("hostile", "cyclic-merge.yaml");
    const e = manifestError(() => imageUsesFromText(text, "cyclic-merge.yaml"));
    assert.equal(e.reason, "anchor 'c' value contains itself");
    assert.deepEqual([e.line, e.column], [7, 11]);
    assert.match(manifestError(() => imageUsesFromText("a: &a [*a]\n", F)).reason, /contains itself/);
  });

  it("refuses an alias of an unknown anchor, and a merge of a non-map", () => {
    const e = manifestError(() => imageUsesFromText("kind: Pod\nspec: *nope\n", F));
    assert.deepEqual([e.reason, e.line, e.column], ["unknown anchor 'nope' referenced", 2, 7]);
    const m = manifestError(() => imageUsesFromText("kind: Pod\nspec:\n  <<: [{}, 3]\n", F));
    assert.deepEqual(
      [m.reason, m.line, m.column],
      ["map merge requires map or sequence of maps as the value", 3, 12],
    );
  });

  it("refuses nesting deep enough to exhaust the parser's stack", { timeout: 10000 }, () => {
    for (const text of ["[".repeat(100_000), `${"{a: ".repeat(50_000)}1${"}".repeat(50_000)}`]) {
      const e = manifestError(() => imageUsesFromText(text, F));
      assert.equal(e.reason, "document is nested too deeply");
    }
  });

  it("refuses deep nesting before the parser builds it: megabytes of it in flat memory and linear time", {
    timeout: 10000,
  }, () => {
    for (const text of [
      "[".repeat(4_000_000),
      "- ".repeat(1_000_000),
      "? ".repeat(1_000_000),
      "a: ".repeat(700_000),
    ]) {
      const before = process.memoryUsage().rss;
      const started = performance.now();
      const e = manifestError(() => imageUsesFromText(text, F));
      assert.equal(e.reason, "document is nested too deeply");
      assert.equal(e.line, 1);
      assert.ok(performance.now() - started < 3000, `${Math.round(performance.now() - started)} ms`);
      assert.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024, "memory stays flat");
    }
    // Legitimate nesting and brackets in quoted and block scalars are not counted.
    const fine = `kind: Pod\nspec:\n  containers:\n  - name: a\n    image: x\n    args: ["${"[".repeat(5000)}"]\n    command:\n    - |\n      ${"{".repeat(5000)}\n`;
    assert.equal(imageUsesFromText(fine, F).length, 1);
  });

  it("refuses Lists nested too deeply", () => {
    let doc = "{kind: Pod, spec: {containers: [{image: a}]}}";
    for (let i = 0; i < 40; i++) doc = `{kind: List, items: [${doc}]}`;
    assert.match(manifestError(() => imageUsesFromText(doc, F)).reason, /Lists are nested too deeply/);
  });

  it("refuses NUL and other control characters, naming the file", () => {
    const nul = manifestError(() => imageUsesFromText("kind: Pod\u0000", "bin.yaml"));
    assert.equal(nul.message, "bin.yaml: not a text file (it contains NUL bytes)");
    const bell = manifestError(() => imageUsesFromText("kind: Pod\nspec: \u0007\n", F));
    assert.deepEqual(
      [bell.reason, bell.line, bell.column],
      ["control character U+0007 is not allowed in YAML", 2, 7],
    );
    assert.deepEqual(imageUsesFromText("kind: Pod\tx\n", F), [], "tab is allowed");
  });

  it("either returns image uses or throws a ManifestError naming the file, for any string", () => {
    const tokens = [
      ...[
        "kind: Pod\n",
        "kind: List\n",
        "items:\n",
        "spec:\n",
        "  containers:\n",
        "    - image: x\n",
        "- ",
        "  ",
      ],
      ...[
        "&a ",
        "*a",
        "<<: ",
        "<<: *a\n",
        "[",
        "]",
        "{",
        "}",
        ": ",
        ", ",
        "\n",
        "---\n",
        "...\n",
        "#",
        "'",
        '"',
      ],
      ...[
        "!!str ",
        "!x ",
        "|\n",
        ">-\n",
        "? ",
        "%YAML 1.1\n",
        "\t",
        "\r",
        "\r\n",
        "\uFEFF",
        "\u0000",
        "\u0085",
        "😀",
      ],
      ...[
        "image",
        "volumes: [{image: {reference: r}}]\n",
        "initContainers: [",
        "{kind: Pod, spec: {containers: [",
        "1.0",
      ],
    ];
    const yamlish = fc.array(fc.constantFrom(...tokens), { maxLength: 40 }).map((parts) => parts.join(""));
    const text = fc.oneof(
      fc.string({ unit: "binary", maxLength: 200 }),
      yamlish,
      fc.string({ unit: "grapheme-ascii" }),
    );
    fc.assert(
      fc.property(text, (input) => {
        try {
          const uses = imageUsesFromText(input, "prop.yaml");
          assert.ok(Array.isArray(uses));
          for (const u of uses) {
            assert.equal(u.file, "prop.yaml");
            assert.ok(u.position.line >= 1 && u.position.column >= 1);
          }
        } catch (error) {
          if (!(error instanceof ManifestError)) throw error;
          assert.equal(error.file, "prop.yaml");
          assert.ok(error.message.startsWith("prop.yaml"));
          assert.doesNotMatch(error.message, /\n/);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
