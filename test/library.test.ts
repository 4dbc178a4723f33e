// The package's library API, as another tool imports it.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as kpull from "../src/index.ts";

describe("library API (src/index.ts)", () => {
  it("exposes the engines other tools need", () => {
    assert.equal(kpull.defaultPullPolicy("nginx"), "Always");
    assert.equal(
      kpull.familiarString(kpull.parseNormalizedNamed("docker.io/library/nginx:1.27")),
      "nginx:1.27",
    );
    assert.equal(kpull.decidePull("Never", false).error, "ErrImageNeverPull");
    assert.equal(typeof kpull.readImageUses, "function");
    assert.equal(typeof kpull.registry.RegistryClient, "function");
    assert.equal(typeof kpull.store.Store.open, "function");
    assert.equal(typeof kpull.node.ImageManager, "function");
    assert.equal(typeof kpull.check.checkImageUses, "function");
    assert.equal(typeof kpull.cri.CriImageService, "function");
    assert.ok(Object.keys(kpull.admission).length > 0);
  });
});
