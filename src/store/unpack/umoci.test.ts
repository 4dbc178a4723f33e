// Peer check: the tree our applier builds for a small multi-layer image with whiteouts and an opaque
// directory must equal what umoci (an independent OCI unpacker) builds with `unpack --rootless`.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { applyLayer, chainIds, prepareSnapshot } from "./index.ts";
import {
  type Entry,
  gzip,
  type Node,
  type Sandbox,
  sandbox,
  sha256,
  streamOf,
  tar,
  tree,
} from "./testkit.ts";

const umoci = spawnSync("umoci", ["--version"], { encoding: "utf8" });
const skip =
  umoci.status === 0
    ? false
    : "umoci is not installed (Debian: apt-get install umoci; .ci/run installs it): peer comparison skipped";

const layers: Entry[][] = [
  [
    { name: "etc/", type: "dir", mode: 0o755, mtime: 1_000 },
    { name: "etc/a", body: "a\n", mtime: 1_001 },
    { name: "etc/b", body: "b\n", mode: 0o640, mtime: 1_002 },
    { name: "usr/", type: "dir", mtime: 1_003 },
    { name: "usr/bin/", type: "dir", mtime: 1_004 },
    { name: "usr/bin/tool", body: "#!/bin/sh\necho tool\n", mode: 0o755, mtime: 1_005 },
    { name: "usr/bin/t", type: "symlink", linkname: "tool", mtime: 1_006 },
    { name: "usr/bin/tool2", type: "hardlink", linkname: "usr/bin/tool" },
    { name: "var/", type: "dir", mtime: 1_007 },
    { name: "var/lib/", type: "dir", mtime: 1_008 },
    { name: "var/lib/data/", type: "dir", mode: 0o700, mtime: 1_009 },
    { name: "var/lib/data/old1", body: "1", mtime: 1_010 },
    { name: "var/lib/data/sub/", type: "dir", mtime: 1_011 },
    { name: "var/lib/data/sub/old2", body: "2", mtime: 1_012 },
    { name: "lib", type: "symlink", linkname: "usr/lib", mtime: 1_013 },
  ],
  [
    { name: "etc/", type: "dir", mode: 0o751, mtime: 2_000 },
    { name: "etc/.wh.a", body: "" },
    { name: "etc/b", body: "b changed\n", mode: 0o600, mtime: 2_001 },
    { name: "var/", type: "dir", mtime: 2_002 },
    { name: "var/lib/", type: "dir", mtime: 2_003 },
    { name: "var/lib/data/", type: "dir", mode: 0o750, mtime: 2_004 },
    { name: "var/lib/data/new", body: "new", mtime: 2_005 },
    { name: "var/lib/data/.wh..wh..opq", body: "" },
    { name: "opt/", type: "dir", mode: 0o750, mtime: 2_006 },
    { name: "opt/app/", type: "dir", mtime: 2_007 },
    { name: "opt/app/run", body: "run", mode: 0o700, mtime: 2_008 },
    { name: "usr/", type: "dir", mtime: 2_009 },
    { name: "usr/bin/", type: "dir", mtime: 2_010 },
    { name: "usr/bin/t", body: "now a file", mtime: 2_011 },
  ],
  [
    { name: ".wh.opt", body: "" },
    { name: "usr/", type: "dir", mtime: 3_000 },
    { name: "usr/bin/", type: "dir", mtime: 3_001 },
    { name: "usr/bin/.wh.tool2", body: "" },
    { name: "usr/bin/extra", body: "extra", mode: 0o755, mtime: 3_002 },
    { name: "etc/", type: "dir", mode: 0o751, mtime: 3_003 },
    { name: "etc/a", body: "a is back\n", mtime: 3_004 },
  ],
];

async function writeLayout(dir: string, tars: Buffer[]): Promise<void> {
  const blobs = join(dir, "blobs", "sha256");
  await fs.mkdir(blobs, { recursive: true });
  const put = async (b: Buffer) => {
    const d = sha256(b);
    await fs.writeFile(join(blobs, d.slice(7)), b);
    return { digest: d, size: b.length };
  };
  const layerDescs = [];
  for (const t of tars)
    layerDescs.push({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...(await put(gzip(t))) });
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: {},
      rootfs: { type: "layers", diff_ids: tars.map(sha256) },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...(await put(config)) },
      layers: layerDescs,
    }),
  );
  const m = await put(manifest);
  await fs.writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await fs.writeFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...m,
          annotations: { "org.opencontainers.image.ref.name": "test" },
        },
      ],
    }),
  );
}

/** What both unpackers must agree on: path, type, mode, content or link target, mtime, hardlink groups. */
function comparable(nodes: Node[]): unknown[] {
  const firstByInode = new Map<number, string>();
  return nodes.map((n) => {
    let linkOf = "";
    if (n.type === "file" && n.nlink > 1) {
      linkOf = firstByInode.get(n.ino) ?? "";
      if (!firstByInode.has(n.ino)) firstByInode.set(n.ino, n.path);
    }
    return { path: n.path, type: n.type, mode: n.mode.toString(8), data: n.data, mtime: n.mtime, linkOf };
  });
}

describe("peer: umoci unpack --rootless", { skip }, () => {
  let sb: Sandbox;
  before(async () => {
    sb = await sandbox();
  });
  after(async () => {
    await sb.assertUntouched();
    await sb.cleanup();
  });

  it("builds the same tree as umoci for a three-layer image with whiteouts and an opaque directory", async () => {
    const tars = layers.map((l) => tar(l));
    const layout = join(sb.dir, "layout");
    await writeLayout(layout, tars);
    const bundle = join(sb.dir, "bundle");
    execFileSync("umoci", ["unpack", "--rootless", "--image", `${layout}:test`, bundle], { stdio: "pipe" });
    const theirs = await tree(join(bundle, "rootfs"));

    const ids = chainIds(tars.map(sha256));
    let path = "";
    for (const [i, t] of tars.entries()) {
      const gz = gzip(t);
      const r = await prepareSnapshot(
        sb.snapshots,
        i === 0 ? null : (ids[i - 1] as string),
        ids[i] as string,
        (dir) => applyLayer(dir, streamOf(gz), "gzip", sha256(t), { sameOwner: false }),
        { durable: false },
      );
      path = r.path;
    }
    const ours = await tree(path);
    assert.deepEqual(comparable(ours), comparable(theirs));
    // the fixture exercises what it claims to
    const paths = ours.map((n) => n.path);
    assert.ok(
      !paths.includes("opt") && !paths.includes("usr/bin/tool2") && !paths.includes("var/lib/data/old1"),
    );
    assert.ok(paths.includes("var/lib/data/new") && paths.includes("etc/a"));
    await fs.rm(bundle, { recursive: true, force: true });
    await fs.rm(layout, { recursive: true, force: true });
    await fs.rm(sb.snapshots, { recursive: true, force: true });
    await fs.mkdir(sb.snapshots);
  });
});
