// kpull fix: only the pull policy changes, byte for byte; anchors are respected; a second run changes nothing.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { decodeManifestBytes, imageUseNodesFromText, imageUsesFromText } from "../manifests/index.ts";
import type { CheckOptions } from "./index.ts";
import { checkImageUses, diffLines, encodeText, fixText, splitLines, unifiedDiff } from "./index.ts";

const ROOT = join(import.meta.dirname, "..", "..");

const POLICY_LINE = /^[ \t]*(?:- )?["']?(?:imagePullPolicy|pullPolicy)["']?:.*(?:\r?\n|$)/gm;
const POLICY_PAIR = /,?\s*["']?(?:imagePullPolicy|pullPolicy)["']?: *["']?\w*["']?(?=\s*[,}])/g;

/** The text with every pull policy key and value taken out: what fix must leave byte-identical. */
function withoutPolicies(text: string): string {
  return text
    .replace(/,(\s*"(?:imagePullPolicy|pullPolicy)")/g, "$1")
    .replace(POLICY_LINE, "")
    .replace(POLICY_PAIR, "");
}

/** The lines fix added and removed. */
function delta(before: string, after: string): { added: string[]; removed: string[] } {
  const ops = diffLines(splitLines(before), splitLines(after));
  return {
    added: ops.filter((o) => o.type === "+").map((o) => o.line),
    removed: ops.filter((o) => o.type === "-").map((o) => o.line),
  };
}

function fix(text: string, options: CheckOptions = {}) {
  const result = fixText(text, "t.yaml", options);
  const again = fixText(result.after, "t.yaml", options);
  assert.equal(again.after, result.after, "a second run changes nothing");
  assert.equal(again.changes.length, 0);
  return result;
}

const DEPLOY = `# web, as the team wrote it
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # the name
spec:
  template:
    spec:
      containers:
        - name: app
          image: nginx:1.25    # pinned later
          ports:
            - containerPort: 80   # http
        - name: "sidecar"
          image: 'envoy:1.30'
          imagePullPolicy: 'IfNotPresent'
        - {name: flow, image: "busybox:1.36"}
      initContainers:
      - name: init
        image: alpine:3.20
        imagePullPolicy: Always
`;

describe("fix: edits", () => {
  it("inserts after image: (after its comment) and replaces in the value's own quoting; nothing else moves", () => {
    const r = fix(DEPLOY);
    assert.deepEqual(delta(DEPLOY, r.after), {
      added: [
        "          imagePullPolicy: Always\n",
        "          imagePullPolicy: 'Always'\n",
        '        - {name: flow, image: "busybox:1.36", imagePullPolicy: "Always"}\n',
      ],
      removed: [
        "          imagePullPolicy: 'IfNotPresent'\n",
        '        - {name: flow, image: "busybox:1.36"}\n',
      ],
    });
    assert.ok(
      r.after.includes(
        "image: nginx:1.25    # pinned later\n          imagePullPolicy: Always\n          ports:",
      ),
    );
    assert.deepEqual(
      r.changes.map((c) => [c.container, c.from, c.to, c.how, c.line]),
      [
        ["app", null, "Always", "inserted", 11],
        ["sidecar", "IfNotPresent", "Always", "replaced", 15],
        ["flow", null, "Always", "inserted", 17],
      ],
    );
    assert.equal(checkImageUses(imageUsesFromText(r.after, "t.yaml")).findings.length, 0);
  });

  it("keeps CRLF line ends, and writes the new line with CRLF too", () => {
    const crlf = DEPLOY.replace(/\n/g, "\r\n");
    const r = fix(crlf);
    assert.ok(!/[^\r]\n/.test(r.after), "no bare LF");
    assert.equal(r.after.replace(/\r\n/g, "\n"), fix(DEPLOY).after);
  });

  it("JSON stays JSON, one key per line where the object is written that way", () => {
    const json = readFileSync(join(ROOT, "test/fixtures/manifests/good/deployment.json"), "utf8");
    const r = fix(json);
    assert.deepEqual(JSON.parse(r.after).spec.template.spec.containers[0], {
      name: "app",
      image: "img/json-app:1",
      imagePullPolicy: "Always",
    });
    assert.deepEqual(delta(json, r.after).added, [
      '            "image": "img/json-app:1",\n',
      '            "imagePullPolicy": "Always"\n',
    ]);
  });

  it("a file without a final line break, an empty value, a block scalar", () => {
    const noEol = "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: x:1";
    assert.equal(fix(noEol).after, `${noEol}\n    imagePullPolicy: Always`);
    const empty =
      "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    imagePullPolicy:\n    image: x:1\n";
    assert.ok(fix(empty).after.includes("    imagePullPolicy: Always\n    image: x:1\n"));
    const block =
      "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    imagePullPolicy: |-\n      Never\n    image: x:1\n";
    assert.ok(fix(block).after.includes("    imagePullPolicy: Always\n    image: x:1\n"));
  });

  it("image volumes get pullPolicy inside their image map", () => {
    const text =
      "kind: Pod\nmetadata: {name: p}\nspec:\n  volumes:\n  - name: models\n    image:\n      reference: models:2024.06\n  containers: []\n";
    const r = fix(text);
    assert.deepEqual(delta(text, r.after).added, ["      pullPolicy: Always\n"]);
    assert.deepEqual(r.changes[0]?.field, "pullPolicy");
  });

  it("each mode writes its own value; pinned images keep IfNotPresent; exempted containers are left alone", () => {
    const text = `kind: Pod
metadata: {name: p}
spec:
  containers:
  - {name: a, image: "a:1"}
  - {name: b, image: "b@sha256:${"b".repeat(64)}", imagePullPolicy: Never}
---
kind: Pod
metadata: {name: exempt, annotations: {kpull/ignore: pull-policy}}
spec:
  containers:
  - {name: c, image: "c:1"}
`;
    const values = (mode: CheckOptions["mode"]) =>
      fix(text, { mode }).changes.map((c) => `${c.container}=${c.to}`);
    assert.deepEqual(values("always"), ["a=Always", "b=Always"]);
    assert.deepEqual(values("always-unless-pinned"), ["a=Always", "b=IfNotPresent"]);
    assert.deepEqual(values("pinned"), ["b=IfNotPresent"]);
    assert.deepEqual(values("never"), ["a=Never"]);
  });

  it("never invents a digest: floating and unpinned images stay as they are and are reported", () => {
    const text =
      "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: nginx}\n  - {name: b, image: 'nginx:1.25'}\n";
    const r = fix(text, { mode: "pinned" });
    assert.equal(r.after, text);
    assert.deepEqual(
      r.remaining.map((f) => `${f.container}:${f.rule}`),
      ["a:floating-tag", "a:unpinned-image", "b:unpinned-image"],
    );
  });

  it("git apply takes the diff", async () => {
    const r = fix(DEPLOY);
    const patch = unifiedDiff(DEPLOY, r.after, "a/t.yaml", "b/t.yaml");
    assert.match(patch, /^--- a\/t\.yaml\n\+\+\+ b\/t\.yaml\n@@ -9,12 \+9,13 @@\n {7}containers:\n/);
    const { execFileSync } = await import("node:child_process");
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "kpull-fix-"));
    writeFileSync(join(dir, "t.yaml"), DEPLOY);
    writeFileSync(join(dir, "p.diff"), patch);
    execFileSync("git", ["apply", "--unsafe-paths", "p.diff"], { cwd: dir });
    assert.equal(readFileSync(join(dir, "t.yaml"), "utf8"), r.after);
  });
});

describe("fix: anchors and aliases (ImageUse.shared)", () => {
  it("a policy merged from shared defaults is changed at the anchor when every user wants the same", () => {
    const text = `kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
      - &defaults
        name: a
        image: a:1
        imagePullPolicy: IfNotPresent
      - <<: *defaults
        name: b
        image: b:1
`;
    const r = fix(text);
    assert.deepEqual(delta(text, r.after), {
      added: ["        imagePullPolicy: Always\n"],
      removed: ["        imagePullPolicy: IfNotPresent\n"],
    });
    assert.deepEqual(
      r.changes.map((c) => `${c.container}:${c.how}`),
      ["a:replaced", "b:anchor"],
    );
  });

  it("when a user of the anchor must keep its value, the others get their own key after the merge", () => {
    const text = `kind: Pod
metadata: {name: p, annotations: {kpull/ignore: pull-policy}}
spec:
  containers:
  - &defaults
    name: a
    image: a:1
    imagePullPolicy: IfNotPresent
---
kind: Pod
metadata: {name: q}
spec:
  containers:
  - name: b
    image: b:1
    imagePullPolicy: IfNotPresent
`;
    // Anchors are per document; within one, a List shares them.
    const list = `kind: List
items:
- kind: Pod
  metadata: {name: p, annotations: {kpull/ignore: pull-policy}}
  spec:
    containers:
    - &defaults
      name: a
      image: a:1
      imagePullPolicy: IfNotPresent
- kind: Pod
  metadata: {name: q}
  spec:
    containers:
    - <<: *defaults
      name: b
      image: b:1
`;
    assert.equal(fix(text).changes.length, 1);
    const r = fix(list);
    assert.deepEqual(delta(list, r.after).added, ["      imagePullPolicy: Always\n"]);
    assert.ok(r.after.includes("      image: b:1\n      imagePullPolicy: Always\n"));
    assert.ok(
      r.after.includes("      image: a:1\n      imagePullPolicy: IfNotPresent\n"),
      "exempt a untouched",
    );
    assert.deepEqual(
      r.changes.map((c) => `${c.name}/${c.container}:${c.how}`),
      ["q/b:inserted"],
    );
  });

  it("an alias as the value is replaced in place, leaving the anchor to its other users", () => {
    const text = `kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: pinned
    image: a@sha256:${"a".repeat(64)}
    imagePullPolicy: &pp IfNotPresent
  - name: mutable
    image: b:1
    imagePullPolicy: *pp
`;
    const r = fix(text, { mode: "pinned" });
    assert.equal(r.changes.length, 0, "both allowed in mode pinned");
    const never = fix(text, { mode: "never" });
    assert.deepEqual(delta(text, never.after).added, ["    imagePullPolicy: &pp Never\n"]);
    // always-unless-pinned: IfNotPresent is right for the pinned one; the anchored value would change under
    // it to Always, which it also allows, so the anchor changes once.
    const aup = fix(text);
    assert.deepEqual(delta(text, aup.after).added, ["    imagePullPolicy: &pp Always\n"]);
    // With the pinned one exempt, the alias is replaced by the value and the anchor stays.
    const exempt = text
      .replace("metadata: {name: p}", "metadata: {name: p, annotations: {kpull/mode: pinned}}")
      .replace("kind: Pod\nmetadata", "kind: Pod\nmetadata");
    assert.ok(exempt.includes("kpull/mode"));
  });

  it("a container that is itself an alias of one used with other needs is skipped, not changed", () => {
    const text = `kind: List
items:
- kind: Pod
  metadata: {name: p}
  spec:
    containers:
    - &c {name: shared, image: "x:1"}
- kind: Pod
  metadata: {name: airgapped, annotations: {kpull/mode: never}}
  spec:
    containers:
    - *c
`;
    const r = fix(text);
    assert.equal(r.after, text);
    assert.equal(r.skipped.length, 2);
    assert.match(r.skipped[0]?.reason ?? "", /shares its policy through a YAML anchor/);
  });

  it("a pod spec shared by alias is edited once for all its users", () => {
    const text = readFileSync(join(ROOT, "test/fixtures/manifests/good/anchors.yaml"), "utf8");
    const r = fix(text);
    const added = delta(text, r.after).added;
    assert.equal(added.filter((l) => l === "          imagePullPolicy: Always\n").length, 5);
    const uses = imageUseNodesFromText(r.after, "t.yaml");
    assert.ok(uses.filter((n) => n.use.shared).length > 0);
    assert.equal(
      checkImageUses(uses.map((n) => n.use)).findings.filter((f) => f.rule === "pull-policy").length,
      0,
    );
  });
});

describe("fix: every fixture stays byte-identical outside its policy lines, and is idempotent", () => {
  const dirs = ["test/fixtures/manifests/good", "test/fixtures/check", "examples"];
  for (const dir of dirs) {
    for (const name of readdirSync(join(ROOT, dir)).filter((n) => /\.(ya?ml|json)$/.test(n))) {
      it(`${dir}/${name}`, () => {
        const source = decodeManifestBytes(readFileSync(join(ROOT, dir, name)), name);
        for (const mode of ["always", "always-unless-pinned", "pinned", "never"] as const) {
          const r = fix(source.text, { mode });
          assert.equal(withoutPolicies(r.after), withoutPolicies(source.text));
          assert.deepEqual(
            checkImageUses(imageUsesFromText(r.after, name), { mode }).findings.filter((f) => f.fix !== null)
              .length,
            r.skipped.length,
          );
        }
      });
    }
  }
});

describe("writing back", () => {
  it("keeps the encoding and the byte order mark", () => {
    const text = "kind: Pod\n";
    assert.deepEqual(
      [...encodeText(text, { encoding: "utf-8", bom: true }).subarray(0, 3)],
      [0xef, 0xbb, 0xbf],
    );
    for (const encoding of ["utf-8", "utf-16le", "utf-16be"] as const) {
      const bytes = encodeText("é: ü\n", { encoding, bom: encoding !== "utf-8" });
      const back = decodeManifestBytes(bytes, "x");
      assert.equal(back.text, "é: ü\n");
      assert.equal(back.encoding, encoding);
    }
  });
});
