// Fixture images of every shape, pushed with kpull's own push path through token auth, then read back by
// kpull and cross-checked with skopeo, so our push and pull are not only tested against each other.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { CredentialStore, type ImageManifest, parsePlatform, RegistryClient } from "../src/registry/index.ts";
import {
  type FixtureImage,
  type FixtureIndex,
  pushFixture,
  requireTool,
  sha256,
  standardFixtures,
  useRegistry,
} from "./harness/index.ts";

const run = promisify(execFile);

describe("fixtures pushed by kpull, read by kpull and skopeo", () => {
  const registry = useRegistry({ auth: "token" });
  const fixtures = standardFixtures();
  let client: RegistryClient;
  let skopeo: string;
  let creds: string;

  before(async () => {
    const r = registry();
    skopeo = requireTool("skopeo", "skopeo");
    const [user, password] = Object.entries(r.users)[0] ?? ["", ""];
    creds = `${user}:${password}`;
    const config = mkdtempSync(join(tmpdir(), "kpull-docker-"));
    writeFileSync(
      join(config, "config.json"),
      JSON.stringify({ auths: { [r.host]: { auth: Buffer.from(creds).toString("base64") } } }),
    );
    client = new RegistryClient({
      hostsDir: mkdtempSync(join(tmpdir(), "kpull-hosts-")),
      credentials: new CredentialStore({ dockerConfigDir: config, env: {} }),
    });
    for (const [name, fixture] of Object.entries(fixtures))
      await pushFixture(r, `fixtures/${name}`, "v1", fixture, client);
  });

  after(async () => {
    await client?.close();
  });

  for (const name of ["small", "multi", "zstd", "docker", "platforms"]) {
    it(`${name}: kpull resolves the digest skopeo sees`, async () => {
      const r = registry();
      const fixture = fixtures[name] as FixtureImage | FixtureIndex;
      const desc = await client.repository(`${r.host}/fixtures/${name}:v1`).resolve();
      assert.equal(desc.digest, fixture.manifest.digest);
      assert.equal(desc.mediaType, fixture.manifest.mediaType);
      const raw = await run(skopeo, [
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        creds,
        `docker://${r.host}/fixtures/${name}:v1`,
      ]);
      assert.equal(sha256(Buffer.from(raw.stdout)), fixture.manifest.digest);
    });
  }

  it("zstd and multi-layer blobs stream back verified", async () => {
    const r = registry();
    for (const name of ["zstd", "multi"]) {
      const image = fixtures[name] as FixtureImage;
      const repo = client.repository(`${r.host}/fixtures/${name}:v1`);
      const { manifest } = await repo.resolveImage({ platform: parsePlatform("linux/amd64") });
      const layers = (manifest.json as ImageManifest).layers;
      assert.deepEqual(
        layers.map((l) => l.digest),
        image.layers.map((l) => l.digest),
      );
      for (const layer of layers) {
        const parts: Buffer[] = [];
        for await (const c of repo.blob(layer)) parts.push(c);
        assert.equal(sha256(Buffer.concat(parts)), layer.digest);
      }
    }
  });

  it("chooses linux/arm64/v8 from the index kpull pushed", async () => {
    const r = registry();
    const index = fixtures.platforms as FixtureIndex;
    const arm = await client
      .repository(`${r.host}/fixtures/platforms:v1`)
      .resolveImage({ platform: parsePlatform("linux/arm64/v8") });
    assert.equal(arm.manifest.descriptor.digest, index.images[1]?.manifest.digest);
  });

  it("skopeo copies the multi-platform index kpull pushed into an OCI layout, verifying every blob", async () => {
    const r = registry();
    const dir = mkdtempSync(join(tmpdir(), "kpull-skopeo-oci-"));
    await run(skopeo, [
      "copy",
      "--all",
      "--src-tls-verify=false",
      "--src-creds",
      creds,
      `docker://${r.host}/fixtures/platforms:v1`,
      `oci:${dir}:v1`,
    ]);
    const layout = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as {
      manifests: { digest: string }[];
    };
    assert.equal(layout.manifests[0]?.digest, fixtures.platforms?.manifest.digest);
  });
});
