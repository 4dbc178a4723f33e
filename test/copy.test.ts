// kpull copy between the real registry and OCI layout directories, cross-checked with skopeo.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { RegistryClient } from "../src/registry/index.ts";
import {
  type FixtureIndex,
  pushFixture,
  requireTool,
  runKpull,
  standardFixtures,
  useRegistry,
} from "./harness/index.ts";

const kpull = (args: string[]) => runKpull([...args, "--hosts-dir", hostsDir]);

const run = promisify(execFile);
const hostsDir = mkdtempSync(join(tmpdir(), "kpull-hosts-"));

describe("kpull copy (acceptance, real registry)", () => {
  const registry = useRegistry();
  const fixtures = standardFixtures();
  let client: RegistryClient;

  before(async () => {
    client = new RegistryClient({ hostsDir });
    await pushFixture(registry(), "copy/platforms", "v1", fixtures.platforms as FixtureIndex, client);
  });
  after(async () => {
    await client?.close();
  });

  it("copies a multi-platform image to a layout skopeo reads, and back to another repository", async () => {
    const r = registry();
    const index = fixtures.platforms as FixtureIndex;
    const dir = mkdtempSync(join(tmpdir(), "kpull-oci-"));
    const out = await kpull(["copy", "-o", "json", `docker://${r.host}/copy/platforms:v1`, `oci:${dir}:v1`]);
    assert.equal(out.code, 0, out.stderr);
    const report = JSON.parse(out.stdout);
    assert.equal(report.digest, index.manifest.digest);
    // index + 2 manifests + 2 configs + 3 distinct layers (the base layer is shared)
    assert.deepEqual(report.blobs.copied, 8);
    const layout = JSON.parse(readFileSync(join(dir, "index.json"), "utf8"));
    assert.equal(layout.manifests[0].annotations["org.opencontainers.image.ref.name"], "v1");

    const skopeo = requireTool("skopeo", "skopeo");
    const raw = await run(skopeo, ["inspect", "--raw", `oci:${dir}:v1`]);
    assert.equal(JSON.parse(raw.stdout).manifests.length, 2);
    const arm = await run(skopeo, ["inspect", "--override-arch", "arm64", `oci:${dir}:v1`]);
    assert.equal(JSON.parse(arm.stdout).Architecture, "arm64");

    // Again: everything is already there.
    const again = JSON.parse(
      (await kpull(["copy", "-o", "json", `docker://${r.host}/copy/platforms:v1`, `oci:${dir}:v1`])).stdout,
    );
    assert.equal(again.blobs.copied, 0);

    const back = await kpull(["copy", "-o", "json", `oci:${dir}:v1`, `docker://${r.host}/copy/restored:v1`]);
    assert.equal(back.code, 0, back.stderr);
    const desc = await client.repository(`${r.host}/copy/restored:v1`).resolve();
    assert.equal(desc.digest, index.manifest.digest);
  });

  it("copies one platform with --platform", async () => {
    const r = registry();
    const index = fixtures.platforms as FixtureIndex;
    const dir = mkdtempSync(join(tmpdir(), "kpull-oci-"));
    const out = await kpull([
      "copy",
      "-o",
      "json",
      "--platform",
      "linux/arm64",
      `docker://${r.host}/copy/platforms:v1`,
      `oci:${dir}`,
    ]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(JSON.parse(out.stdout).digest, index.images[1]?.manifest.digest);
  });

  it("refuses a corrupted layout blob and pushes no manifest", async () => {
    const r = registry();
    const index = fixtures.platforms as FixtureIndex;
    const dir = mkdtempSync(join(tmpdir(), "kpull-oci-"));
    assert.equal((await kpull(["copy", `docker://${r.host}/copy/platforms:v1`, `oci:${dir}:v1`])).code, 0);
    const layer = index.images[0]?.layers[1];
    assert.ok(layer);
    const path = join(dir, "blobs", "sha256", layer.digest.slice(7));
    const bytes = readFileSync(path);
    bytes[0] = (bytes[0] ?? 0) ^ 0xff;
    writeFileSync(path, bytes);
    const res = await kpull(["copy", `oci:${dir}:v1`, `docker://${r.host}/copy/broken:v1`]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^error: .*does not match its descriptor/);
    await assert.rejects(
      client.repository(`${r.host}/copy/broken:v1`).resolve(),
      /MANIFEST_UNKNOWN|NAME_UNKNOWN|404/,
    );
  });

  it("usage errors exit 2", async () => {
    for (const args of [
      ["copy", "docker://a/b:c"],
      ["copy", "oci:/x", "oci:/y"],
      ["copy", "ftp://x", "oci:/y"],
    ]) {
      const res = await kpull(args);
      assert.equal(res.code, 2, res.stderr);
      assert.equal(res.stderr.trimEnd().split("\n").length, 1);
    }
  });
});
