// imageUseNodesFromText: the YAML nodes behind each ImageUse, for fix and pin.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isAlias, isScalar } from "yaml";
import { imageUseNodesFromText, imageUsesFromText } from "./index.ts";

const GOOD = join(import.meta.dirname, "..", "..", "test", "fixtures", "manifests", "good");

describe("imageUseNodesFromText", () => {
  it("gives the same uses in the same order as imageUsesFromText", () => {
    for (const name of ["all-kinds.yaml", "anchors.yaml", "deployment.json", "list.yaml"]) {
      const text = readFileSync(join(GOOD, name), "utf8");
      const plain = imageUsesFromText(text, name).filter(
        (u) => !(u.containerType === "imageVolume" && u.imageStatus === "invalid-type"),
      );
      assert.deepEqual(
        imageUseNodesFromText(text, name).map((n) => n.use),
        plain,
        name,
      );
    }
  });

  it("points at the keys and values as written, through aliases and merge keys", () => {
    const text = readFileSync(join(GOOD, "anchors.yaml"), "utf8");
    const nodes = imageUseNodesFromText(text, "anchors.yaml");
    const by = (name: string) => nodes.find((n) => n.use.container === name);
    const base = by("base");
    const merged = by("merged");
    assert.equal(merged?.map === base?.map, false, "a merging container has its own map");
    assert.equal(merged?.policy?.merged, true);
    assert.equal(merged?.policy?.value, base?.policy?.value, "the merged value is the anchored node");
    const aliased = by("aliased-value");
    assert.ok(isAlias(aliased?.image?.written));
    assert.equal(aliased?.image?.value, base?.image?.value);
    assert.ok(isScalar(base?.image?.value));
    const range = base?.image?.value?.range as [number, number, number];
    assert.equal(text.slice(range[0], range[1]), "img/anchor-base:1");
    assert.equal(by("quoted-key")?.policy, null);
    const volume = imageUseNodesFromText(
      "kind: Pod\nspec:\n  volumes:\n  - name: v\n    image: {reference: r:1, pullPolicy: Never}\n",
      "v.yaml",
    )[0];
    assert.equal(volume?.imageKey, "reference");
    assert.equal(volume?.policyKey, "pullPolicy");
  });
});
