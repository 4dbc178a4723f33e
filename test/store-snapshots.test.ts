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

describe("unpacking while a pull fetches (UnpackWhilePulling)", () => {
  const registry = useRegistry();
  const waitFor = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 500 && !ok(); i++) await new Promise((done) => setTimeout(done, 10));
    assert.ok(ok(), what);
  };

  it("applies each layer as its blob arrives, and waits for the ones still downloading", async () => {
    const r = registry();
    const image = tinyImage({ layers: [{ "a.txt": "a\n" }, { "b.txt": "b\n" }, { "c.txt": "c\n" }] });
    await seedImage(r, "team/stream", "v1", image);
    const root = mkdtempSync(join(tmpdir(), "kpull-root-"));
    const store = await Store.open(root);
    const ref = `${r.host}/team/stream:v1`;
    await store.pullImage(client(), ref); // the bytes are in place; arrivals are announced by hand below
    const unpacking = await store.unpackWhilePulling(ref);
    const arrive = (kind: "manifest" | "config" | "layer", blob: { digest: string; bytes: Buffer }) =>
      unpacking.onProgress({
        kind,
        digest: blob.digest,
        phase: "committed",
        completed: blob.bytes.length,
        total: blob.bytes.length,
      });
    const built = () => snapshots(root).filter((n) => n.startsWith("sha256:")).length;

    arrive("manifest", image.manifest);
    arrive("config", image.config);
    arrive("layer", image.layers[0] as TestImage["layers"][number]);
    // layer 0 is unpacked and committed while layer 1 is still "downloading"
    await waitFor("the first layer's snapshot appears before the second layer arrives", () => built() === 1);
    await new Promise((done) => setTimeout(done, 50));
    assert.equal(built(), 1, "nothing is applied before its blob arrives");
    arrive("layer", image.layers[1] as TestImage["layers"][number]);
    arrive("layer", image.layers[2] as TestImage["layers"][number]);
    const result = await unpacking.finish(true);
    assert.deepEqual(
      result?.layers.map((l) => l.created),
      [true, true, true],
    );
    assert.equal(readFileSync(join(result?.rootfs as string, "c.txt"), "utf8"), "c\n");
    const byName = await store.unpack(ref);
    assert.equal(byName.chainId, result?.chainId);
    assert.deepEqual(
      byName.layers.map((l) => l.created),
      [false, false, false],
    );
    assert.deepEqual(
      snapshots(root).filter((n) => n.startsWith(".")),
      [],
    );
  });

  it("unpacks during a real pull, gives nothing when no manifest was stored, stops when the pull fails", async () => {
    const r = registry();
    await seedImage(r, "team/live", "v1", tinyImage({ layers: [{ "x.txt": "x\n" }, { "y.txt": "y\n" }] }));
    const root = mkdtempSync(join(tmpdir(), "kpull-root-"));
    const store = await Store.open(root);
    const ref = `${r.host}/team/live:v1`;
    const live = await store.unpackWhilePulling(ref);
    await store.pullImage(client(), ref, { onProgress: live.onProgress });
    const result = await live.finish(true);
    assert.equal(readFileSync(join(result?.rootfs as string, "y.txt"), "utf8"), "y\n");
    assert.equal(result?.name, ref);

    const idle = await store.unpackWhilePulling(ref);
    assert.equal(await idle.finish(true), null, "no manifest stored: the caller unpacks by name");

    // The pull "fails" after the manifest and config arrived: the waiting unpack stops, leaving no build.
    const image = tinyImage({ layers: [{ "p.txt": "p\n" }, { "q.txt": "q\n" }] });
    await seedImage(r, "team/half", "v1", image);
    await store.pullImage(client(), `${r.host}/team/half:v1`);
    const half = await store.unpackWhilePulling(`${r.host}/team/half:v1`);
    for (const [kind, blob] of [
      ["manifest", image.manifest],
      ["config", image.config],
    ] as const) {
      half.onProgress({ kind, digest: blob.digest, phase: "exists", completed: 0, total: blob.bytes.length });
    }
    assert.equal(await half.finish(false), null);
    assert.deepEqual(
      snapshots(root).filter((n) => n.startsWith(".")),
      [],
    );

    // The unpack followed one manifest, the pull recorded another (a tag that moved between attempts):
    // the streamed result is dropped, so the caller unpacks what was recorded.
    const other = await store.unpackWhilePulling(ref);
    for (const [kind, blob] of [
      ["manifest", image.manifest],
      ["config", image.config],
    ] as const) {
      other.onProgress({
        kind,
        digest: blob.digest,
        phase: "exists",
        completed: 0,
        total: blob.bytes.length,
      });
    }
    assert.equal(await other.finish(true), null);
    assert.deepEqual(
      snapshots(root).filter((n) => n.startsWith(".")),
      [],
    );
  });

  it("refuses a layer that does not match its DiffID, leaving no snapshot", async () => {
    const r = registry();
    await seedImage(r, "team/liar", "v1", lyingImage());
    const root = mkdtempSync(join(tmpdir(), "kpull-root-"));
    const store = await Store.open(root);
    const ref = `${r.host}/team/liar:v1`;
    const unpacking = await store.unpackWhilePulling(ref);
    await store.pullImage(client(), ref, { onProgress: unpacking.onProgress });
    await assert.rejects(unpacking.finish(true), (e: Error) => /diff id/i.test(e.message));
    assert.deepEqual(snapshots(root), []);
  });
});
