// Acceptance tests of the registry commands: the CLI against a real registry, as a user runs it.

import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runKpull, seedImage, tinyImage, useRegistry } from "./harness/index.ts";

const kpull = (args: string[]) => runKpull(args);

describe("kpull resolve and manifest (acceptance, real registry)", () => {
  const registry = useRegistry();
  const hostsDir = mkdtempSync(join(tmpdir(), "kpull-hosts-"));

  it("resolve -o json reports the digest and exactly one HEAD", async () => {
    const r = registry();
    const image = tinyImage();
    await seedImage(r, "team/app", "v1", image);
    const res = await kpull(["resolve", "-o", "json", "--hosts-dir", hostsDir, `${r.host}/team/app:v1`]);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(JSON.parse(res.stdout), {
      image: `${r.host}/team/app:v1`,
      reference: `${r.host}/team/app:v1`,
      digest: image.manifest.digest,
      mediaType: image.manifest.mediaType,
      size: image.manifest.bytes.byteLength,
      platformDigest: image.manifest.digest,
      requests: { HEAD: 1, GET: 0 },
    });
    const log = await r.accessLog();
    assert.deepEqual(
      log.map((e) => e.method),
      ["HEAD"],
    );
  });

  it("manifest prints the bytes as served", async () => {
    const r = registry();
    const image = tinyImage({ format: "docker" });
    await seedImage(r, "team/docker", "v2", image);
    const res = await kpull(["manifest", "--hosts-dir", hostsDir, `${r.host}/team/docker:v2`]);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(res.stdoutBytes, Buffer.from(image.manifest.bytes));
  });

  it("a missing image exits 1 with the registry's code on one line", async () => {
    const r = registry();
    const res = await kpull(["resolve", "--hosts-dir", hostsDir, `${r.host}/team/none:v1`]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^error: .*(MANIFEST_UNKNOWN|NAME_UNKNOWN|404)/);
    assert.equal(res.stderr.trimEnd().split("\n").length, 1);
  });

  it("bad platform and bad image are usage errors (exit 2)", async () => {
    const r = registry();
    const platform = await kpull(["resolve", "--platform", "linux", `${r.host}/a:b`]);
    assert.equal(platform.code, 2);
    assert.match(platform.stderr, /invalid platform "linux"/);
    const image = await kpull(["resolve", "nginx:"]);
    assert.equal(image.code, 2);
    assert.match(image.stderr, /^error: invalid reference format/);
  });
});
