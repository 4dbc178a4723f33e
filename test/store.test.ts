// Integration tests of the node image store against a real CNCF Distribution registry: pulls, dedup across
// images, one-HEAD re-pulls, resume after a dropped connection, skopeo reading the layout, and the CLI's
// images / rmi / verify / gc.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { run } from "../src/cli/index.ts";
import { CredentialVerifier, PullRecordsStore } from "../src/node/index.ts";
import { CredentialStore, MediaType, parsePlatform, RegistryClient } from "../src/registry/index.ts";
import { Store } from "../src/store/index.ts";
import {
  MEDIA,
  requireTool,
  seedImage,
  seedIndex,
  startProxy,
  type TestImage,
  tinyImage,
  useRegistry,
} from "./harness/index.ts";

const exec = promisify(execFile);
const clients: RegistryClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

const hostsDir = mkdtempSync(join(tmpdir(), "kpull-hosts-"));
const dockerConfigDir = mkdtempSync(join(tmpdir(), "kpull-docker-"));

function client(options: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({
    hostsDir,
    retryBaseMs: 5,
    retryMaxMs: 20,
    credentials: new CredentialStore({ dockerConfigDir: null, env: {} }),
    ...options,
  });
  clients.push(c);
  return c;
}

function newRoot(): string {
  return mkdtempSync(join(tmpdir(), "kpull-root-"));
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await run(args, {
    stdout: { write: (c: string | Uint8Array) => (stdout += c.toString()) },
    stderr: { write: (c: string) => (stderr += c) },
    stdin: process.stdin,
    env: { DOCKER_CONFIG: dockerConfigDir, HOME: dockerConfigDir },
  });
  return { code, stdout, stderr };
}

/** Random bytes do not compress: the gzip layer is about as large as the data. */
function noise(size: number, seed: string): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; parts.length * 32 < size; i++)
    parts.push(createHash("sha256").update(`${seed}-${i}`).digest());
  return Buffer.concat(parts).subarray(0, size);
}

function blobGets(log: { method: string; path: string }[], digest: string): number {
  return log.filter((e) => e.method === "GET" && e.path.endsWith(`/blobs/${digest}`)).length;
}

function digestsOf(image: TestImage): string[] {
  return [image.config.digest, ...image.layers.map((l) => l.digest)];
}

describe("store pulls from a real registry", () => {
  const registry = useRegistry();

  it("pulls an image, records it, and a re-pull of the cached image costs exactly one HEAD", async () => {
    const r = registry();
    const image = tinyImage({ layers: [{ "a.txt": "a\n" }, { "b.txt": "b\n" }] });
    await seedImage(r, "team/app", "v1", image);
    const store = await Store.open(newRoot());
    const c = client();
    const first = await store.pullImage(c, `${r.host}/team/app:v1`);
    assert.equal(first.name, `${r.host}/team/app:v1`);
    assert.equal(first.id, image.config.digest);
    assert.deepEqual(first.platform, { os: "linux", architecture: "amd64" });
    assert.equal(first.fetched.blobs, 4, "manifest, config, 2 layers");
    assert.equal(first.reused.blobs, 0);
    const before = (await r.accessLog()).length;
    const again = await store.pullImage(c, `${r.host}/team/app:v1`);
    const log = (await r.accessLog()).slice(before);
    assert.deepEqual(
      log.map((e) => `${e.method} ${e.path}`),
      ["HEAD /v2/team/app/manifests/v1"],
    );
    assert.deepEqual(again.fetched, { blobs: 0, bytes: 0 });
    assert.equal(again.reused.blobs, 4);
    assert.equal(
      again.record.pulledAt,
      first.record.pulledAt,
      "the same image keeps its first-detected time",
    );
    assert.equal((await store.verify()).clean, true);
  });

  it("dedups across images that share layers: each blob GET once in the registry's log", async () => {
    const r = registry();
    const base = { "base.txt": "shared base layer\n" };
    const one = tinyImage({ layers: [base, { "one.txt": "one\n" }] });
    const two = tinyImage({ layers: [base, { "two.txt": "two\n" }] });
    await seedImage(r, "team/one", "v1", one);
    await seedImage(r, "team/two", "v1", two);
    const store = await Store.open(newRoot());
    const c = client();
    await store.pullImage(c, `${r.host}/team/one:v1`);
    const second = await store.pullImage(c, `${r.host}/team/two:v1`);
    const shared = one.layers[0]?.digest as string;
    assert.equal(two.layers[0]?.digest, shared);
    const log = await r.accessLog();
    for (const d of new Set([...digestsOf(one), ...digestsOf(two)])) assert.equal(blobGets(log, d), 1, d);
    assert.ok(second.blobs.some((b) => b.digest === shared && b.status === "present"));
    assert.equal(second.reused.blobs, 1);
    assert.equal(second.reused.bytes, one.layers[0]?.bytes.length);
    assert.equal(statSync(join(store.root, "blobs", "sha256")).isDirectory(), true);
  });

  it("refuses an image whose config is over 4 MiB before fetching it (the config is read whole)", async () => {
    const r = registry();
    const good = tinyImage({ layers: [{ "a.txt": "a\n" }] });
    const config = JSON.parse(good.config.bytes.toString());
    config.history = [{ created_by: "x".repeat(4 * 1024 * 1024) }];
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = `sha256:${createHash("sha256").update(configBytes).digest("hex")}`;
    const manifest = JSON.parse(good.manifest.bytes.toString());
    manifest.config = { mediaType: MEDIA.ociConfig, digest: configDigest, size: configBytes.length };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    await seedImage(r, "team/fat", "v1", {
      config: { digest: configDigest, mediaType: MEDIA.ociConfig, bytes: configBytes },
      layers: good.layers,
      manifest: {
        digest: `sha256:${createHash("sha256").update(manifestBytes).digest("hex")}`,
        mediaType: MEDIA.ociManifest,
        bytes: manifestBytes,
      },
    });
    const store = await Store.open(newRoot());
    await assert.rejects(
      store.pullImage(client(), `${r.host}/team/fat:v1`),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, "MANIFEST_INVALID");
        assert.match(
          e.message,
          /its config is 4194\d{3} bytes, more than the 4194304 an image config may have/,
        );
        return true;
      },
    );
    assert.equal(blobGets(await r.accessLog(), configDigest), 0, "the config is never fetched");
    assert.deepEqual(await store.images(), []);
  });

  it("resumes an interrupted download with Range, without fetching the first part again", async () => {
    const r = registry();
    const image = tinyImage({ layers: [{ "noise.bin": noise(1_500_000, "resume") }] });
    await seedImage(r, "team/big", "v1", image);
    const layer = image.layers[0] as TestImage["layers"][number];
    const layerPath = new RegExp(`/blobs/${layer.digest}$`);
    let gets = 0;
    // First GET of the layer drops after 400 kB; the next ones die at once, so the pull gives up.
    const proxy = await startProxy(r, (req) => {
      if (req.method !== "GET" || !layerPath.test(req.path)) return null;
      gets++;
      return gets === 1 ? { kind: "drop", afterBytes: 400_000 } : { kind: "drop" };
    });
    try {
      const store = await Store.open(newRoot());
      const c = client({ insecureRegistries: [proxy.host], attempts: 2, maxResumesWithoutProgress: 2 });
      await assert.rejects(store.pullImage(c, `${proxy.host}/team/big:v1`), { code: "NETWORK" });
      const partial = statSync(join(store.root, "kpull", "ingest", `sha256-${layer.digest.slice(7)}`)).size;
      assert.ok(partial > 100_000 && partial <= 400_000, `partial ingest of ${partial} bytes`);
      assert.equal(await store.content.has({ digest: layer.digest, size: layer.bytes.length }), false);

      proxy.setScript([]);
      const seen = proxy.requests.length;
      const result = await store.pullImage(
        client({ insecureRegistries: [proxy.host] }),
        `${proxy.host}/team/big:v1`,
      );
      const layerGets = proxy.requests
        .slice(seen)
        .filter((q) => q.method === "GET" && layerPath.test(q.path));
      assert.equal(layerGets.length, 1);
      assert.equal(layerGets[0]?.range, `bytes=${partial}-`);
      assert.equal(layerGets[0]?.bytesSent, layer.bytes.length - partial);
      assert.deepEqual(result.resumed, { blobs: 1, bytes: partial });
      assert.deepEqual(readFileSync(store.content.blobPath(layer.digest)), layer.bytes);
      assert.equal((await store.verify()).clean, true);
    } finally {
      await proxy.stop();
    }
  });

  it("pulls one platform of an index and stores the index too; skopeo reads the layout", async () => {
    const r = registry();
    const images = await seedIndex(r, "team/multi", "v1");
    const root = newRoot();
    const store = await Store.open(root);
    const result = await store.pullImage(client(), `${r.host}/team/multi:v1`, {
      platform: parsePlatform("linux/arm64"),
    });
    assert.equal(result.manifest.digest, images.arm64.manifest.digest);
    assert.equal(result.target.mediaType, MediaType.ociIndex);
    assert.deepEqual(result.platform, { os: "linux", architecture: "arm64", variant: "v8" });
    assert.ok(await store.content.has(result.target), "the index is stored as a blob");
    assert.deepEqual(
      result.blobs.map((b) => b.kind),
      ["index", "manifest", "config", "layer"],
    );
    const index = JSON.parse(readFileSync(join(root, "index.json"), "utf8"));
    assert.deepEqual(index.manifests[0].annotations, {
      "io.containerd.image.name": `${r.host}/team/multi:v1`,
      "org.opencontainers.image.ref.name": "v1",
    });

    const skopeo = requireTool("skopeo", "skopeo");
    const inspected = JSON.parse(
      (await exec(skopeo, ["inspect", "--override-arch", "arm64", `oci:${root}:v1`])).stdout,
    ) as { Digest: string; Architecture: string; Layers: string[] };
    assert.equal(inspected.Digest, images.arm64.manifest.digest);
    assert.equal(inspected.Architecture, "arm64");
    assert.deepEqual(inspected.Layers, [images.arm64.layers[0]?.digest]);
    // A full copy out of the layout re-verifies every blob.
    const out = mkdtempSync(join(tmpdir(), "kpull-skopeo-"));
    await exec(skopeo, ["copy", "--override-arch", "arm64", `oci:${root}:v1`, `dir:${out}`]);
    assert.deepEqual(readFileSync(join(out, "manifest.json")), images.arm64.manifest.bytes);
  });
});

describe("kpull images, rmi, verify, gc (CLI on a store the library pulled into)", () => {
  const registry = useRegistry();

  it("images, verify clean; a flipped byte is found; --repair removes it; the next pull refetches only it", async () => {
    const r = registry();
    const image = tinyImage({ layers: [{ "one.txt": "one\n" }, { "two.txt": "two\n" }] });
    await seedImage(r, "team/verify", "v1", image);
    const root = newRoot();
    const ref = `${r.host}/team/verify:v1`;
    // Pulls go through the library: `kpull pull` belongs to the image manager (policies), not to the store.
    const pulled = await (await Store.open(root)).pullImage(client(), ref);
    assert.equal(pulled.fetched.blobs, 4);

    const listed = await cli(["images", "-o", "json", "--root", root]);
    assert.equal(listed.code, 0, listed.stderr);
    const entry = JSON.parse(listed.stdout).images[0];
    assert.equal(entry.name, ref);
    assert.equal(entry.tag, "v1");
    assert.equal(entry.id, image.config.digest);
    assert.equal(entry.lastUsed, null);
    assert.equal(entry.complete, true);
    const table = await cli(["images", "--root", root]);
    assert.match(table.stdout, /^IMAGE\s+TAG\s+DIGEST/);
    assert.match(
      table.stdout,
      new RegExp(`${r.host}/team/verify\\s+v1\\s+${image.manifest.digest.slice(7, 19)}`),
    );

    const clean = await cli(["verify", "--root", root]);
    assert.equal(clean.code, 0, clean.stdout);
    assert.match(clean.stdout, /checked 4 blobs .* and 1 image in .*\nstore is clean\n$/);

    const victim = image.layers[1] as TestImage["layers"][number];
    const path = join(root, "blobs", "sha256", victim.digest.slice(7));
    const bytes = readFileSync(path);
    bytes[10] = (bytes[10] as number) ^ 0x01;
    writeFileSync(path, bytes);
    const damaged = await cli(["verify", "-o", "json", "--root", root]);
    assert.equal(damaged.code, 1);
    const report = JSON.parse(damaged.stdout);
    assert.equal(report.clean, false);
    assert.deepEqual(
      report.corrupt.map((c: { digest: string }) => c.digest),
      [victim.digest],
    );
    assert.match(report.corrupt[0].reason, /^content hashes to sha256:/);

    const repaired = await cli(["verify", "--repair", "--root", root]);
    assert.equal(repaired.code, 1, "damage was found");
    assert.match(repaired.stdout, /\(removed\)/);
    const incomplete = JSON.parse((await cli(["images", "-o", "json", "--root", root])).stdout).images[0];
    assert.equal(incomplete.complete, false);

    const before = (await r.accessLog()).length;
    const again = await (await Store.open(root)).pullImage(client(), ref);
    const log = (await r.accessLog()).slice(before);
    assert.deepEqual(
      log.map((e) => `${e.method} ${e.path}`),
      ["HEAD /v2/team/verify/manifests/v1", `GET /v2/team/verify/blobs/${victim.digest}`],
    );
    assert.deepEqual(again.fetched, { blobs: 1, bytes: victim.bytes.length });
    assert.equal((await cli(["verify", "--root", root])).code, 0);
  });

  it("rmi removes an image and only its own content; unknown images exit 1", async () => {
    const r = registry();
    const base = { "base.txt": "base\n" };
    const keep = tinyImage({ layers: [base, { "keep.txt": "keep\n" }] });
    const drop = tinyImage({ layers: [base, { "drop.txt": "drop\n" }] });
    await seedImage(r, "team/keep", "v1", keep);
    await seedImage(r, "team/drop", "v1", drop);
    const root = newRoot();
    const pulling = await Store.open(root);
    for (const name of ["keep", "drop"]) await pulling.pullImage(client(), `${r.host}/team/${name}:v1`);
    const removed = await cli(["rmi", "-o", "json", "--root", root, `${r.host}/team/drop:v1`]);
    assert.equal(removed.code, 0, removed.stderr);
    const summary = JSON.parse(removed.stdout);
    assert.deepEqual(summary.removed, [{ name: `${r.host}/team/drop:v1`, id: drop.config.digest }]);
    assert.equal(summary.blobsRemoved, 3, "manifest, config and the unshared layer");
    const store = await Store.open(root);
    for (const d of [...digestsOf(keep)]) assert.ok((await store.content.size(d)) !== null, d);
    assert.equal((await store.verify()).clean, true);
    const missing = await cli(["rmi", "--root", root, "nope:1"]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'error: image "nope:1" not found\n');
    assert.equal((await cli(["rmi", "--root", root])).code, 2);
  });

  it("gc prunes the KEP-2535 pull records of images its space pass removed, not after an age pass alone", async () => {
    const r = registry();
    const keep = tinyImage({ layers: [{ "keep.txt": "keep\n" }] });
    const drop = tinyImage({ layers: [{ "drop.txt": "drop\n" }] });
    await seedImage(r, "team/keep", "v1", keep);
    await seedImage(r, "team/drop", "v1", drop);
    const root = newRoot();
    const store = await Store.open(root);
    for (const name of ["keep", "drop"]) await store.pullImage(client(), `${r.host}/team/${name}:v1`);
    await store.pin(`${r.host}/team/keep:v1`);
    const verifier = new CredentialVerifier({ root });
    await verifier.recordImagePulled(`${r.host}/team/keep:v1`, keep.config.digest, null);
    await verifier.recordImagePulled(`${r.host}/team/drop:v1`, drop.config.digest, null);
    const records = new PullRecordsStore(root);
    await new Promise((resolve) => setTimeout(resolve, 20));

    // The kubelet prunes only after a space pass: an age pass alone leaves the records.
    const aged = await cli(["gc", "--max-age", "10ms", "--high", "100", "-o", "json", "--root", root]);
    assert.equal(aged.code, 0, aged.stderr);
    assert.deepEqual(JSON.parse(aged.stdout).pulledRecordsPruned, []);
    assert.notEqual(await records.readPulled(drop.config.digest), null);

    await store.pullImage(client(), `${r.host}/team/drop:v1`);
    const space = await cli([
      "gc",
      "--high",
      "0",
      "--low",
      "0",
      "--min-age",
      "0s",
      "-o",
      "json",
      "--root",
      root,
    ]);
    // --low 0 cannot be reached (FreeDiskSpaceFailed, exit 1), but the kubelet runs the hook before that check
    assert.equal(space.code, 1, space.stderr);
    assert.match(space.stderr, /FreeDiskSpaceFailed/);
    const report = JSON.parse(space.stdout);
    assert.deepEqual(
      report.removed.map((x: { id: string }) => x.id),
      [drop.config.digest],
      "the pinned image stays",
    );
    assert.deepEqual(report.pulledRecordsPruned, [drop.config.digest]);
    assert.equal(await records.readPulled(drop.config.digest), null);
    assert.notEqual(await records.readPulled(keep.config.digest), null, "a present image keeps its record");
  });

  it("gc --max-age removes unused images by age, --dry-run changes nothing, then unreferenced content goes", async () => {
    const r = registry();
    const image = tinyImage({ layers: [{ "old.txt": "old\n" }] });
    await seedImage(r, "team/old", "v1", image);
    const root = newRoot();
    await (await Store.open(root)).pullImage(client(), `${r.host}/team/old:v1`);
    await new Promise((resolve) => setTimeout(resolve, 20));

    const dry = await cli([
      "gc",
      "--dry-run",
      "--max-age",
      "10ms",
      "--high",
      "100",
      "-o",
      "json",
      "--root",
      root,
    ]);
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout);
    assert.equal(plan.dryRun, true);
    assert.deepEqual(plan.policy, {
      highThresholdPercent: 100,
      lowThresholdPercent: 80,
      minAge: "2m0s",
      maxAge: "10ms",
    });
    assert.deepEqual(
      plan.removed.map((x: { names: string[]; reason: string }) => [x.names, x.reason]),
      [[[`${r.host}/team/old:v1`], "age"]],
    );
    assert.equal(plan.content.blobsRemoved.length, 3);
    assert.equal(JSON.parse((await cli(["images", "-o", "json", "--root", root])).stdout).images.length, 1);

    // Default policy on a roomy disk: nothing to do (unless this filesystem really is above 85 %).
    const idle = await cli(["gc", "-o", "json", "--root", root]);
    const idleReport = JSON.parse(idle.stdout);
    if (!idleReport.spacePass) assert.deepEqual(idleReport.removed, []);

    const real = await cli(["gc", "--max-age", "10ms", "--high", "100", "-o", "json", "--root", root]);
    assert.equal(real.code, 0, real.stderr);
    const done = JSON.parse(real.stdout);
    assert.equal(done.removed.length, 1);
    assert.equal(
      done.bytesFreed,
      image.manifest.bytes.length + image.config.bytes.length + (image.layers[0]?.bytes.length ?? 0),
    );
    assert.deepEqual(JSON.parse((await cli(["images", "-o", "json", "--root", root])).stdout).images, []);
    const verified = await cli(["verify", "-o", "json", "--root", root]);
    assert.equal(JSON.parse(verified.stdout).blobs, 0);
    assert.equal((await cli(["gc", "--high", "101", "--root", root])).code, 2);
    assert.equal((await cli(["gc", "--min-age", "soon", "--root", root])).code, 2);
  });
});
