// Snapshots on the store: images pulled from a real registry are unpacked by ChainID (shared prefixes
// once), their DiffIDs checked, removed by the sweep when no image needs them, and a process SIGKILLed while
// applying a layer leaves no partial snapshot.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CredentialStore, RegistryClient } from "../src/registry/index.ts";
import { Store } from "../src/store/index.ts";
import { MEDIA, seedImage, sha256, type TestImage, tarOf, tinyImage, useRegistry } from "./harness/index.ts";

const SELF = import.meta.filename;

// Child mode: unpack one image (KPULL_TEST_CRASH may kill it on the way), then exit before any test.
if (process.env.KPULL_STORE_CHILD === "unpack") {
  const store = await Store.open(process.argv[2] as string);
  await store.unpack(process.argv[3] as string);
  process.exit();
}

const hostsDir = mkdtempSync(join(tmpdir(), "kpull-hosts-"));
const clients: RegistryClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

function client(): RegistryClient {
  const c = new RegistryClient({
    hostsDir,
    credentials: new CredentialStore({ dockerConfigDir: null, env: {} }),
  });
  clients.push(c);
  return c;
}

function snapshots(root: string): string[] {
  const dir = join(root, "kpull", "snapshots");
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** The image with its config's first DiffID replaced: the layer will not unpack to what it claims. */
function lyingImage(): TestImage {
  const good = tinyImage({ layers: [{ "lie.txt": "not what the config says\n" }] });
  const config = JSON.parse(good.config.bytes.toString());
  config.rootfs.diff_ids = [sha256(tarOf({ "other.txt": "x" }))];
  const configBytes = Buffer.from(JSON.stringify(config));
  const configBlob = { digest: sha256(configBytes), mediaType: MEDIA.ociConfig, bytes: configBytes };
  const manifest = JSON.parse(good.manifest.bytes.toString());
  manifest.config = { mediaType: MEDIA.ociConfig, digest: configBlob.digest, size: configBytes.length };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return {
    config: configBlob,
    layers: good.layers,
    manifest: { digest: sha256(manifestBytes), mediaType: MEDIA.ociManifest, bytes: manifestBytes },
  };
}

describe("store snapshots", () => {
  const registry = useRegistry();

  it("unpacks shared layers once, verifies DiffIDs, and sweeps snapshots no image needs", async () => {
    const r = registry();
    const base = { "etc/base.txt": "base\n" };
    await seedImage(r, "team/one", "v1", tinyImage({ layers: [base, { "one.txt": "one\n" }] }));
    await seedImage(r, "team/two", "v1", tinyImage({ layers: [base, { "two.txt": "two\n" }] }));
    const root = mkdtempSync(join(tmpdir(), "kpull-root-"));
    const store = await Store.open(root);
    const c = client();
    await store.pullImage(c, `${r.host}/team/one:v1`);
    await store.pullImage(c, `${r.host}/team/two:v1`);

    const one = await store.unpack(`${r.host}/team/one:v1`);
    assert.deepEqual(
      one.layers.map((l) => l.created),
      [true, true],
    );
    assert.equal(readFileSync(join(one.rootfs, "etc", "base.txt"), "utf8"), "base\n");
    assert.equal(readFileSync(join(one.rootfs, "one.txt"), "utf8"), "one\n");
    const two = await store.unpack(`${r.host}/team/two:v1`);
    assert.deepEqual(
      two.layers.map((l) => l.created),
      [false, true],
      "the shared base snapshot is reused",
    );
    assert.equal(two.layers[0]?.chainId, one.layers[0]?.chainId);
    assert.equal(existsSync(join(two.rootfs, "one.txt")), false);
    assert.equal(snapshots(root).length, 3);
    assert.equal((await store.status(`${r.host}/team/one:v1`))?.unpacked, true);
    const again = await store.unpack(`${r.host}/team/one:v1`);
    assert.deepEqual(
      again.layers.map((l) => l.created),
      [false, false],
    );

    const removed = await store.remove([`${r.host}/team/one:v1`]);
    assert.deepEqual(removed.sweep?.snapshotsRemoved, [one.chainId]);
    assert.deepEqual(snapshots(root), [two.layers[0]?.chainId, two.chainId].sort());
    await store.remove([`${r.host}/team/two:v1`]);
    assert.deepEqual(snapshots(root), []);
    assert.equal((await store.verify()).blobs, 0);

    await seedImage(r, "team/liar", "v1", lyingImage());
    await store.pullImage(c, `${r.host}/team/liar:v1`);
    await assert.rejects(store.unpack(`${r.host}/team/liar:v1`), (e: Error & { code?: string }) =>
      /diff/i.test(e.message),
    );
    assert.deepEqual(snapshots(root), [], "a layer that fails its DiffID leaves no snapshot");
  });

  it("a process SIGKILLed while applying a layer leaves no partial snapshot; the next unpack completes", async () => {
    const r = registry();
    await seedImage(
      r,
      "team/crash",
      "v1",
      tinyImage({ layers: [{ "a.txt": "a\n" }, { "b.txt": "b\n" }, { "c.txt": "c\n" }] }),
    );
    const root = mkdtempSync(join(tmpdir(), "kpull-root-"));
    const store = await Store.open(root);
    const ref = `${r.host}/team/crash:v1`;
    await store.pullImage(client(), ref);
    const child = spawn(process.execPath, [SELF, root, ref], {
      // Killed applying the third layer: the first is committed, the second built but still waiting for
      // its flush and rename (a snapshot is renamed into place once the next layer is built).
      env: { ...process.env, KPULL_STORE_CHILD: "unpack", KPULL_TEST_CRASH: "unpack-layer:3" },
      stdio: "ignore",
    });
    const signal = await new Promise((done) => child.on("close", (_code, sig) => done(sig)));
    assert.equal(signal, "SIGKILL");
    const left = snapshots(root);
    assert.equal(left.filter((n) => n.startsWith("sha256:")).length, 1, "only the first layer's snapshot");
    assert.equal(
      left.filter((n) => n.startsWith(".tmp-")).length,
      2,
      "the killed builder's temporary directories are left, invisible",
    );
    assert.equal((await store.verify()).clean, true);
    assert.equal((await store.status(ref))?.unpacked, false);

    const result = await store.unpack(ref);
    assert.deepEqual(
      result.layers.map((l) => l.created),
      [false, true, true],
    );
    assert.equal(readFileSync(join(result.rootfs, "c.txt"), "utf8"), "c\n");
    const swept = await store.sweep();
    assert.equal(swept.tempFilesRemoved.length, 2, "the sweep removes the dead builder's temp directories");
    assert.deepEqual(
      snapshots(root).filter((n) => n.startsWith(".")),
      [],
    );
    assert.equal(snapshots(root).length, 3);
  });
});
