// kpull pin against a real registry (CNCF Distribution from the harness): tag and digest kept, only the
// image text changed, the lock file, --offline, and --verify catching a tag that moved.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { parseLock, pinTexts, registryResolver } from "../src/check/index.ts";
import { run } from "../src/cli/index.ts";
import { RegistryClient } from "../src/registry/index.ts";
import { buildImage, buildIndex, pushFixture, seedImage, tinyImage, useRegistry } from "./harness/index.ts";

const hostsDir = mkdtempSync(join(tmpdir(), "kpull-pin-hosts-"));
const dockerConfig = mkdtempSync(join(tmpdir(), "kpull-pin-docker-"));

async function kpull(args: string[], stdin = "") {
  let stdout = "";
  let stderr = "";
  const input = new PassThrough();
  input.end(stdin);
  const code = await run(args, {
    stdout: { write: (c: string | Uint8Array) => (stdout += c.toString()) },
    stderr: { write: (c: string) => (stderr += c) },
    stdin: input,
    env: { DOCKER_CONFIG: dockerConfig },
  });
  return { code, stdout, stderr };
}

const registryFlags = ["--hosts-dir", hostsDir, "--docker-config", dockerConfig];

function workdir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "kpull-pin-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe("kpull pin (real registry)", () => {
  const registry = useRegistry();

  it("adds the digest after the tag, in every quoting style, changing nothing else; records the lock", async () => {
    const r = registry();
    const app = tinyImage();
    const sidecar = tinyImage({ layers: [{ "s.txt": "sidecar\n" }] });
    await seedImage(r, "team/app", "v1", app);
    await seedImage(r, "team/sidecar", "1.0", sidecar);
    const h = r.host;
    const manifest = [
      "# keep this comment",
      "kind: Deployment",
      "metadata: {name: web}",
      "spec:",
      "  template:",
      "    spec:",
      "      containers:",
      `        - name: app      # the app`,
      `          image: ${h}/team/app:v1   # pinned by kpull`,
      `        - name: quoted`,
      `          image: "${h}/team/app:v1"`,
      `        - {name: single, image: '${h}/team/sidecar:1.0'}`,
      `        - name: anchored`,
      `          image: &img ${h}/team/sidecar:1.0`,
      `        - name: aliased`,
      `          image: *img`,
      `        - name: done`,
      `          image: ${h}/team/app:v1@${app.manifest.digest}`,
      "",
    ].join("\r\n");
    const dir = workdir({ "web.yaml": manifest });
    const lock = join(dir, "kpull-lock.json");

    const preview = await kpull(["pin", ...registryFlags, join(dir, "web.yaml")]);
    assert.equal(preview.code, 1, preview.stderr);
    assert.match(preview.stdout, /^--- .*web\.yaml\n\+\+\+ .*web\.yaml\n@@ /);
    assert.equal(readFileSync(join(dir, "web.yaml"), "utf8"), manifest, "without --write nothing is written");

    const res = await kpull(["pin", "--write", "--lock", lock, ...registryFlags, join(dir, "web.yaml")]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /Pinned 5 images in 1 file\./);
    const after = readFileSync(join(dir, "web.yaml"), "utf8");
    const a = app.manifest.digest;
    const s = sidecar.manifest.digest;
    assert.equal(
      after,
      manifest
        .replace(`image: ${h}/team/app:v1   #`, `image: ${h}/team/app:v1@${a}   #`)
        .replace(`image: "${h}/team/app:v1"`, `image: "${h}/team/app:v1@${a}"`)
        .replace(`'${h}/team/sidecar:1.0'`, `'${h}/team/sidecar:1.0@${s}'`)
        .replace(`&img ${h}/team/sidecar:1.0`, `&img ${h}/team/sidecar:1.0@${s}`),
    );
    assert.deepEqual(parseLock(readFileSync(lock, "utf8"), lock).images, {
      [`${h}/team/app:v1`]: { digest: a, mediaType: app.manifest.mediaType },
      [`${h}/team/sidecar:1.0`]: { digest: s, mediaType: sidecar.manifest.mediaType },
    });
    // One HEAD per distinct tag, nothing else.
    const log = await r.accessLog();
    assert.deepEqual(log.map((e) => `${e.method} ${e.path}`).sort(), [
      "HEAD /v2/team/app/manifests/v1",
      "HEAD /v2/team/app/manifests/v1",
      "HEAD /v2/team/sidecar/manifests/1.0",
      "HEAD /v2/team/sidecar/manifests/1.0",
    ]);

    const again = await kpull(["pin", "--write", "--lock", lock, ...registryFlags, join(dir, "web.yaml")]);
    assert.equal(again.code, 0);
    assert.match(again.stderr, /Nothing to pin\./);
    assert.equal(readFileSync(join(dir, "web.yaml"), "utf8"), after);
  });

  it("multi-platform images: the index digest by default, one platform's manifest with --platform", async () => {
    const r = registry();
    const index = buildIndex([
      buildImage({ layers: [{ a: "amd64\n" }], architecture: "amd64" }),
      buildImage({ layers: [{ a: "arm64\n" }], architecture: "arm64", variant: "v8" }),
    ]);
    const client = new RegistryClient({ hostsDir });
    try {
      await pushFixture(r, "multi/app", "2.0", index, client);
    } finally {
      await client.close();
    }
    const text = `kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: ${r.host}/multi/app:2.0}\n`;
    const dir = workdir({ "p.yaml": text });
    const lock = join(dir, "lock.json");
    const res = await kpull(["pin", "--write", "--lock", lock, ...registryFlags, join(dir, "p.yaml")]);
    assert.equal(res.code, 0, res.stderr);
    assert.ok(readFileSync(join(dir, "p.yaml"), "utf8").includes(`multi/app:2.0@${index.manifest.digest}}`));
    assert.equal(
      parseLock(readFileSync(lock, "utf8"), lock).images[`${r.host}/multi/app:2.0`]?.mediaType,
      index.manifest.mediaType,
    );
    const arm = await kpull(["pin", "--platform", "linux/arm64", ...registryFlags, join(dir, "p.yaml")]);
    assert.equal(arm.code, 0, "already pinned: nothing to do");
    writeFileSync(join(dir, "q.yaml"), text);
    const armLock = join(dir, "arm.json");
    const armPin = await kpull([
      "pin",
      "--write",
      "--platform",
      "linux/arm64",
      "--lock",
      armLock,
      ...registryFlags,
      join(dir, "q.yaml"),
    ]);
    assert.equal(armPin.code, 0, armPin.stderr);
    const armDigest = index.images[1]?.manifest.digest as string;
    assert.ok(readFileSync(join(dir, "q.yaml"), "utf8").includes(`@${armDigest}`));
    assert.deepEqual(parseLock(readFileSync(armLock, "utf8"), armLock).images[`${r.host}/multi/app:2.0`], {
      digest: armDigest,
      mediaType: index.images[1]?.manifest.mediaType,
      platform: "linux/arm64",
    });
  });

  it("--offline pins from the lock only, and fails for a tag the lock does not have", async () => {
    const digest = `sha256:${"c".repeat(64)}`;
    const dir = workdir({
      "p.yaml":
        "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: 127.0.0.1:1/nowhere/app:1}\n  - {name: b, image: nginx}\n",
      "lock.json": JSON.stringify({
        lockfileVersion: 1,
        images: {
          "127.0.0.1:1/nowhere/app:1": { digest, mediaType: "application/vnd.oci.image.manifest.v1+json" },
        },
      }),
    });
    const res = await kpull([
      "pin",
      "--write",
      "--offline",
      "--lock",
      join(dir, "lock.json"),
      join(dir, "p.yaml"),
    ]);
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      /cannot pin nginx: docker\.io\/library\/nginx:latest is not in the lock file \(--offline\)/,
    );
    const after = readFileSync(join(dir, "p.yaml"), "utf8");
    assert.ok(after.includes(`image: 127.0.0.1:1/nowhere/app:1@${digest}}`));
    assert.ok(after.includes("image: nginx}"));
    const usage = await kpull(["pin", "--offline", join(dir, "p.yaml")]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--offline needs --lock FILE/);
  });

  it("--verify reports a pin whose tag now points elsewhere (and passes before the push)", async () => {
    const r = registry();
    const v1 = tinyImage({ layers: [{ v: "one\n" }] });
    const v2 = tinyImage({ layers: [{ v: "two\n" }] });
    await seedImage(r, "moving/app", "stable", v1);
    const dir = workdir({
      "p.yaml": `kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: ${r.host}/moving/app:stable\n  - name: digest-only\n    image: ${r.host}/moving/app@${v1.manifest.digest}\n`,
    });
    const lock = join(dir, "lock.json");
    const pinned = await kpull(["pin", "--write", "--lock", lock, ...registryFlags, join(dir, "p.yaml")]);
    assert.equal(pinned.code, 0, pinned.stderr);

    const ok = await kpull(["pin", "--verify", ...registryFlags, join(dir, "p.yaml")]);
    assert.equal(ok.code, 0, ok.stderr + ok.stdout);
    assert.match(ok.stderr, /1 pinned image checked: 1 still match\./);

    await seedImage(r, "moving/app", "stable", v2);
    const moved = await kpull(["pin", "--verify", "--lock", lock, ...registryFlags, join(dir, "p.yaml")]);
    assert.equal(moved.code, 1);
    assert.equal(
      moved.stdout,
      `${join(dir, "p.yaml")}:6:5  moved  ${r.host}/moving/app:stable@${v1.manifest.digest}: tag stable now points to ${v2.manifest.digest}, but the image is pinned to ${v1.manifest.digest}\n`,
    );
    // Offline, the lock is the reference: it still agrees with the pin.
    const offline = await kpull(["pin", "--verify", "--offline", "--lock", lock, join(dir, "p.yaml")]);
    assert.equal(offline.code, 0, offline.stdout);
    assert.equal(
      (await kpull(["pin", "--verify", "--write", join(dir, "p.yaml")])).code,
      2,
      "--verify with --write is a usage error",
    );
  });

  it("an unknown tag fails that image only; a floating tag is pinned with a warning", async () => {
    const r = registry();
    const image = tinyImage({ layers: [{ l: "latest\n" }] });
    await seedImage(r, "float/app", "latest", image);
    const dir = workdir({
      "p.yaml": `kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: ${r.host}/float/app}\n  - {name: b, image: ${r.host}/float/none:1}\n  - {name: c, image: "NGINX:1"}\n`,
    });
    const res = await kpull(["pin", "--write", ...registryFlags, join(dir, "p.yaml")]);
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      /warning: .*p\.yaml:5:15: ".*float\/app" floats \(no tag\): pinned to what it points to today/,
    );
    assert.match(res.stderr, /error: .*p\.yaml:6:15: cannot pin .*float\/none:1: /);
    const after = readFileSync(join(dir, "p.yaml"), "utf8");
    assert.ok(after.includes(`image: ${r.host}/float/app@${image.manifest.digest}}`));
    assert.ok(after.includes(`image: ${r.host}/float/none:1}`));
    assert.ok(after.includes(`image: "NGINX:1"}`));
  });

  it("pinTexts resolves each tag once however many files use it", async () => {
    const r = registry();
    await seedImage(r, "once/app", "1", tinyImage());
    const client = new RegistryClient({ hostsDir });
    try {
      const text = `kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: ${r.host}/once/app:1}\n`;
      const sources = Array.from({ length: 5 }, (_, i) => ({ file: `f${i}.yaml`, text }));
      const result = await pinTexts(sources, {
        resolver: registryResolver(client),
        lock: null,
        offline: false,
      });
      assert.ok(result.files.every((f) => f.after !== f.before));
      assert.equal(client.stats.requests.HEAD ?? 0, 1);
    } finally {
      await client.close();
    }
  });
});
