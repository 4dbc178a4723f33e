// The store without a registry: records, index.json, queries, leases, sweep, verify and image GC on images
// made up in place. Integration tests with a real registry are in test/store*.test.ts.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseDuration } from "./duration.ts";
import { type ImageRecord, projectIndex, refNameAnnotation } from "./records.ts";
import { storeRoot } from "./root.ts";
import { criImages, findIn, imageName, Store } from "./store.ts";

const MIN = 60_000;

function sha(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

async function newStore(now?: () => number): Promise<Store> {
  return Store.open(mkdtempSync(join(tmpdir(), "kpull-store-")), now ? { now } : {});
}

/** Puts a made-up image's blobs in the store and records it. Layers are named by their text. */
async function fakeImage(
  store: Store,
  name: string,
  layers: string[],
  extra: Partial<ImageRecord> = {},
): Promise<ImageRecord> {
  const layerDescs = [];
  for (const text of layers) {
    const bytes = Buffer.from(text);
    const desc = {
      mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
      digest: sha(bytes),
      size: bytes.length,
    };
    await store.content.put(desc, bytes);
    layerDescs.push(desc);
  }
  const configBytes = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", layers }));
  const config = {
    mediaType: "application/vnd.oci.image.config.v1+json",
    digest: sha(configBytes),
    size: configBytes.length,
  };
  await store.content.put(config, configBytes);
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config,
      layers: layerDescs,
    }),
  );
  const manifest = {
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: sha(manifestBytes),
    size: manifestBytes.length,
  };
  await store.content.put(manifest, manifestBytes);
  const record: ImageRecord = {
    name: imageName(name),
    target: manifest,
    manifest,
    config,
    layers: layerDescs,
    platform: { os: "linux", architecture: "amd64" },
    size: manifest.size + config.size + layerDescs.reduce((n, l) => n + l.size, 0),
    pulledAt: new Date(store.now()).toISOString(),
    lastUsed: null,
    pinned: false,
    ...extra,
  };
  await store.updateRecords((records) => {
    records.set(record.name, record);
  });
  return record;
}

describe("store root", () => {
  it("--root, then KPULL_ROOT, then /var/lib/kpull for root, else XDG", () => {
    assert.equal(storeRoot({ root: "/x", env: { KPULL_ROOT: "/y" } }), "/x");
    assert.equal(storeRoot({ env: { KPULL_ROOT: "/y" }, uid: 0 }), "/y");
    assert.equal(storeRoot({ env: {}, uid: 0 }), "/var/lib/kpull");
    assert.equal(storeRoot({ env: { XDG_DATA_HOME: "/data" }, uid: 1000 }), "/data/kpull");
    assert.equal(
      storeRoot({ env: { XDG_DATA_HOME: "relative" }, uid: 1000, home: "/home/u" }),
      "/home/u/.local/share/kpull",
    );
    assert.equal(storeRoot({ env: { HOME: "/home/u" }, uid: 1000 }), "/home/u/.local/share/kpull");
  });
});

describe("durations", () => {
  it("parses Go durations", () => {
    assert.equal(parseDuration("2m"), 2 * MIN);
    assert.equal(parseDuration("1h30m"), 90 * MIN);
    assert.equal(parseDuration("1.5s"), 1500);
    assert.equal(parseDuration("0"), 0);
    assert.equal(parseDuration("300ms"), 300);
    for (const bad of ["", "5", "1d", "m", "1h 2m"])
      assert.throws(() => parseDuration(bad), { code: "INVALID" });
  });
});

describe("layout and records", () => {
  it("creates an OCI layout and writes index.json entries as containerd's exporter does", async () => {
    const store = await newStore();
    assert.deepEqual(JSON.parse(readFileSync(join(store.root, "oci-layout"), "utf8")), {
      imageLayoutVersion: "1.0.0",
    });
    const r = await fakeImage(store, "example.com/team/app:v1", ["one"]);
    await fakeImage(store, `example.com/team/app@${r.manifest.digest}`, ["one"]);
    const index = JSON.parse(readFileSync(join(store.root, "index.json"), "utf8"));
    assert.equal(index.schemaVersion, 2);
    assert.deepEqual(
      index.manifests.map((d: { annotations: Record<string, string> }) => d.annotations),
      [
        { "io.containerd.image.name": "example.com/team/app:v1", "org.opencontainers.image.ref.name": "v1" },
        {
          "io.containerd.image.name": `example.com/team/app@${r.manifest.digest}`,
          "org.opencontainers.image.ref.name": `example.com/team/app@${r.manifest.digest}`,
        },
      ],
    );
    assert.equal(index.manifests[0].digest, r.manifest.digest);
    assert.deepEqual(index.manifests[0].platform, { os: "linux", architecture: "amd64" });
  });

  it("ref.name: the tag, or the whole name for a digest-only reference", () => {
    assert.equal(refNameAnnotation("docker.io/library/nginx:1.27"), "1.27");
    assert.equal(refNameAnnotation("localhost:5000/app"), "localhost:5000/app");
    assert.equal(refNameAnnotation("localhost:5000/app@sha256:abc"), "localhost:5000/app@sha256:abc");
    assert.equal(refNameAnnotation("localhost:5000/app:v2@sha256:abc"), "v2");
  });

  it("keeps index.json entries other tools wrote", () => {
    const foreign = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:aa", size: 1 };
    const out = projectIndex({ schemaVersion: 2, manifests: [foreign] }, new Map());
    assert.deepEqual(out.manifests, [foreign]);
  });
});

describe("finding images", () => {
  it("by name (normalized, latest added), repo@digest, image ID and ID prefix", async () => {
    const store = await newStore();
    const a = await fakeImage(store, "nginx", ["a"]);
    const b = await fakeImage(store, "ghcr.io/o/tool:1", ["b"]);
    const records = await store.images();
    assert.deepEqual(
      findIn(records, "nginx:latest").map((r) => r.name),
      ["docker.io/library/nginx:latest"],
    );
    assert.deepEqual(
      findIn(records, "docker.io/library/nginx").map((r) => r.name),
      [a.name],
    );
    assert.deepEqual(
      findIn(records, `ghcr.io/o/tool@${b.manifest.digest}`).map((r) => r.name),
      [b.name],
    );
    assert.deepEqual(
      findIn(records, b.config.digest).map((r) => r.name),
      [b.name],
    );
    assert.deepEqual(
      findIn(records, b.config.digest.slice(7, 19)).map((r) => r.name),
      [b.name],
    );
    assert.deepEqual(findIn(records, "busybox"), []);
  });

  it("CRI view: one image per ID with its tags and digests; incomplete images are absent", async () => {
    const store = await newStore();
    const a = await fakeImage(store, "example.com/app:v1", ["x"]);
    await fakeImage(store, "example.com/app:latest", ["x"]);
    const images = criImages(await store.images());
    assert.equal(images.length, 1);
    assert.deepEqual(images[0]?.repoTags, ["example.com/app:latest", "example.com/app:v1"]);
    assert.deepEqual(images[0]?.repoDigests, [`example.com/app@${a.manifest.digest}`]);
    assert.equal((await store.criImageStatus("example.com/app:v1"))?.id, a.config.digest);
    await store.content.delete(a.layers[0]?.digest as string);
    assert.equal(await store.criImageStatus("example.com/app:v1"), null);
    assert.deepEqual(await store.listCriImages(), []);
    assert.equal((await store.status("example.com/app:v1"))?.complete, false);
  });
});

describe("remove, leases and sweep", () => {
  it("rmi removes every name of the image ID and sweeps only unshared content", async () => {
    const store = await newStore();
    const a = await fakeImage(store, "example.com/a:1", ["shared", "only-a"]);
    await fakeImage(store, "example.com/a:2", ["shared", "only-a"]);
    const b = await fakeImage(store, "example.com/b:1", ["shared", "only-b"]);
    const result = await store.remove(["example.com/a:1"]);
    assert.deepEqual(result.removed.map((r) => r.name).sort(), ["example.com/a:1", "example.com/a:2"]);
    assert.deepEqual(
      (await store.images()).map((r) => r.name),
      [b.name],
    );
    const removed = new Set(result.sweep?.blobsRemoved.map((x) => x.digest));
    assert.ok(removed.has(a.layers[1]?.digest as string), "a's own layer went");
    assert.ok(!removed.has(a.layers[0]?.digest as string), "the shared layer stayed");
    assert.ok(await store.content.has(b.layers[0] as { digest: string; size: number }));
    const again = await store.remove(["example.com/a:1"]);
    assert.deepEqual(again.notFound, ["example.com/a:1"]);
  });

  it("a lease protects content from the sweep and an image from rmi; a dead owner's lease does not", async () => {
    const store = await newStore();
    const orphan = Buffer.from("leased but unreferenced");
    const desc = { digest: sha(orphan), size: orphan.length };
    await store.content.put(desc, orphan);
    const lease = await store.lease({ purpose: "test", content: [desc.digest] });
    assert.equal((await store.sweep()).blobsRemoved.length, 0);
    await lease.release();
    assert.deepEqual((await store.sweep()).blobsRemoved, [{ digest: desc.digest, size: orphan.length }]);

    const img = await fakeImage(store, "example.com/run:1", ["r"]);
    const use = await store.lease({ purpose: "container", images: [img.name], processBound: false });
    assert.deepEqual((await store.remove([img.name])).inUse, [img.name]);
    assert.ok((await store.images())[0]?.lastUsed, "a container lease marks the image used");
    await use.release();
    // A lease whose process is gone protects nothing.
    const leaseFile = join(store.paths.leases, "dead.json");
    writeFileSync(
      leaseFile,
      JSON.stringify({
        id: "dead",
        purpose: "pull",
        createdAt: new Date().toISOString(),
        expiresAt: null,
        owner: { ...(await import("./lock.ts")).currentProcess(), startTime: "1" },
        images: [img.name],
        content: [],
      }),
    );
    assert.equal((await store.remove([img.name])).removed.length, 1);
    assert.equal(existsSync(leaseFile), false, "the sweep removed the dead lease");
  });
});

describe("verify", () => {
  it("clean, then corrupt / missing / orphaned, then repair", async () => {
    const store = await newStore();
    const img = await fakeImage(store, "example.com/v:1", ["first layer", "second layer"]);
    const clean = await store.verify();
    assert.equal(clean.clean, true);
    assert.equal(clean.blobs, 4);

    const layer = img.layers[0] as { digest: string; size: number };
    const path = store.content.blobPath(layer.digest);
    const bytes = readFileSync(path);
    bytes[3] = (bytes[3] as number) ^ 0xff;
    writeFileSync(path, bytes);
    await store.content.delete(img.layers[1]?.digest as string);
    const stray = Buffer.from("nobody needs me");
    await store.content.put({ digest: sha(stray), size: stray.length }, stray);
    writeFileSync(join(store.paths.blobs, "not-a-digest"), "x");

    const report = await store.verify();
    assert.equal(report.clean, false);
    assert.deepEqual(
      report.corrupt.map((c) => [c.digest, c.reason.split(" ")[0]]),
      [
        [null, "not"],
        [layer.digest, "content"],
      ],
    );
    assert.deepEqual(report.missing, [{ digest: img.layers[1]?.digest, image: img.name, kind: "layer" }]);
    assert.deepEqual(report.orphaned, [{ digest: sha(stray), size: stray.length }]);

    const repaired = await store.verify({ repair: true });
    assert.ok(repaired.corrupt.every((c) => c.repaired));
    assert.equal(existsSync(path), false, "the corrupt blob is gone, so the next pull fetches it");
    const after = await store.verify();
    assert.deepEqual(after.corrupt, []);
    assert.equal(after.missing.length, 2);
  });

  it("reports unreadable records and a lagging index.json; repair rewrites index.json", async () => {
    const store = await newStore();
    await fakeImage(store, "example.com/i:1", ["i"]);
    writeFileSync(join(store.root, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [] }));
    const lagging = await store.verify();
    assert.equal(lagging.indexOutOfDate, true);
    assert.equal(lagging.clean, true);
    await store.verify({ repair: true });
    assert.equal((await store.verify()).indexOutOfDate, false);
    writeFileSync(store.paths.imagesJson, "{not json");
    const broken = await store.verify();
    assert.equal(broken.clean, false);
    assert.match(broken.problems[0]?.message ?? "", /not valid JSON/);
    await assert.rejects(store.sweep(), { code: "CORRUPT" }, "never sweep with unreadable roots");
  });
});

describe("image GC on a store", () => {
  it("removes in the kubelet's order, skips in-use, pinned and young images, then sweeps", async () => {
    let now = Date.UTC(2026, 0, 1);
    const store = await newStore(() => now);
    const old = await fakeImage(store, "example.com/old:1", ["old", "base"]);
    const pinned = await fakeImage(store, "example.com/pinned:1", ["pinned", "base"], { pinned: true });
    const used = await fakeImage(store, "example.com/used:1", ["used", "base"]);
    now += 10 * MIN;
    const young = await fakeImage(store, "example.com/young:1", ["young", "base"]);
    now += 1 * MIN;
    const lease = await store.lease({ purpose: "container", images: [used.name], processBound: false });
    const report = await store.garbageCollect({
      disk: { capacity: 100_000, available: 10_000 },
      policy: { highThresholdPercent: 85, lowThresholdPercent: 80 },
    });
    assert.equal(report.disk.usagePercent, 90);
    assert.equal(report.amountToFree, 10_000);
    assert.deepEqual(
      report.removed.map((r) => [r.names[0], r.reason]),
      [[old.name, "space"]],
    );
    assert.deepEqual(
      report.skipped.map((s) => [s.names[0], s.reason]),
      [
        [pinned.name, "pinned"],
        [used.name, "in-use"],
        [young.name, "min-age"],
      ],
    );
    assert.equal(report.ok, false, "not enough eligible");
    assert.deepEqual(
      report.events.map((e) => e.reason),
      ["FreeDiskSpaceFailed"],
    );
    assert.ok(report.content.blobsRemoved.some((b) => b.digest === old.layers[0]?.digest));
    assert.ok(
      !report.content.blobsRemoved.some((b) => b.digest === old.layers[1]?.digest),
      "shared base kept",
    );
    const second = await store.garbageCollect({ disk: { capacity: 100_000, available: 10_000 } });
    assert.deepEqual(
      second.events.map((e) => e.reason),
      ["FreeDiskSpaceFailed", "ImageGCFailed"],
      "a second failing run in a row adds ImageGCFailed",
    );
    await lease.release();
  });

  it("dry run changes nothing but reports the same plan and the content it would free", async () => {
    let now = Date.UTC(2026, 0, 1);
    const store = await newStore(() => now);
    const a = await fakeImage(store, "example.com/a:1", ["a"]);
    now += 3 * 60 * MIN;
    const report = await store.garbageCollect({
      dryRun: true,
      policy: { maxAgeMs: 60 * MIN, highThresholdPercent: 100 },
      startedAt: now - 2 * 60 * MIN,
      disk: { capacity: 1000, available: 900 },
    });
    assert.deepEqual(
      report.removed.map((r) => [r.id, r.reason]),
      [[a.config.digest, "age"]],
    );
    assert.equal(report.content.blobsRemoved.length, 3);
    assert.equal((await store.images()).length, 1);
    assert.equal((await store.verify()).blobs, 3);
  });
});
