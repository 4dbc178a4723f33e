// ChainIDs, media types, and snapshots keyed by ChainID: building on the parent, reuse, failure and races.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { linkSync } from "node:fs";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import {
  applyLayer,
  chainIds,
  compressionOf,
  prepareSnapshot,
  removeSnapshot,
  removeStaleSnapshotTemps,
  snapshotPath,
  sniffCompression,
  UnpackError,
} from "./index.ts";
import {
  type Entry,
  rootlessScenario,
  type Sandbox,
  sandbox,
  sha256,
  streamOf,
  tar,
  tree,
} from "./testkit.ts";

const isRoot = process.getuid?.() === 0;

describe("chainIds (spec oci.md §6.3 vectors)", () => {
  const A = `sha256:${"a".repeat(64)}`;
  const B = `sha256:${"b".repeat(64)}`;
  const C = `sha256:${"c".repeat(64)}`;
  it("matches image-spec's identity.ChainID", () => {
    assert.deepEqual(chainIds([A, B, C]), [
      A,
      "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c",
      "sha256:c1377126441fb2f5ec2c21ae2a60255331d639e830f0ee1b40a36e52d4c40588",
    ]);
    assert.deepEqual(chainIds([]), []);
  });
  it("refuses malformed DiffIDs", () => {
    assert.throws(() => chainIds([A, "sha256:abc"]), TypeError);
    assert.throws(() => chainIds([`sha256:${"A".repeat(64)}`]), TypeError);
    assert.throws(() => chainIds([`md5:${"a".repeat(32)}`]), TypeError);
  });
  it("gives the spec's constants for the empty tar", () => {
    assert.equal(
      sha256(Buffer.alloc(1024)),
      "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
    );
  });
});

describe("compressionOf (containerd DiffCompression)", () => {
  const cases: [string, ReturnType<typeof compressionOf>][] = [
    ["application/vnd.oci.image.layer.v1.tar", "none"],
    ["application/vnd.oci.image.layer.v1.tar+gzip", "gzip"],
    ["application/vnd.oci.image.layer.v1.tar+zstd", "zstd"],
    ["application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "gzip"],
    ["application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", "zstd"],
    ["application/vnd.oci.image.layer.v1.tar+gzip+encrypted", "gzip"],
    ["application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip"],
    ["application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "gzip"],
    ["application/vnd.docker.image.rootfs.diff.tar", "unknown"],
    ["application/vnd.docker.image.rootfs.foreign.diff.tar", "unknown"],
    ["application/vnd.docker.image.rootfs.diff.tar.zstd", "zstd"],
    ["Application/VND.OCI.Image.Layer.v1.Tar+Gzip; x=y", "gzip"],
    ["application/vnd.oci.image.config.v1+json", null],
    ["application/vnd.oci.image.manifest.v1+json", null],
    ["application/vnd.oci.empty.v1+json", null],
    ["", null],
  ];
  for (const [mt, want] of cases)
    it(`${mt || "(empty)"} → ${want}`, () => assert.equal(compressionOf(mt), want));

  it("sniffs magic numbers, waiting while a prefix is ambiguous", () => {
    assert.equal(sniffCompression(Buffer.from([0x1f, 0x8b, 8]), false), "gzip");
    assert.equal(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), false), "zstd");
    assert.equal(sniffCompression(Buffer.from([0x28, 0xb5]), false), undefined);
    assert.equal(sniffCompression(Buffer.from([0x28, 0xb5]), true), "none");
    assert.equal(sniffCompression(Buffer.from("etc/"), false), "none");
    assert.equal(sniffCompression(Buffer.alloc(0), true), "none");
  });
});

describe("prepareSnapshot", () => {
  let sb: Sandbox;
  beforeEach(async () => {
    sb = await sandbox();
  });
  afterEach(async () => {
    await sb.assertUntouched();
    await sb.cleanup();
  });

  /** Builds the snapshots of `layers` in order; returns the last one's path. */
  async function chain(
    layers: readonly (readonly Entry[])[],
  ): Promise<{ paths: string[]; created: boolean[] }> {
    const tars = layers.map((l) => tar(l));
    const ids = chainIds(tars.map(sha256));
    const paths: string[] = [];
    const created: boolean[] = [];
    for (const [i, t] of tars.entries()) {
      const r = await prepareSnapshot(
        sb.snapshots,
        i === 0 ? null : (ids[i - 1] as string),
        ids[i] as string,
        (dir) => applyLayer(dir, streamOf(t), "none", sha256(t)),
        { durable: i === 0 },
      );
      paths.push(r.path);
      created.push(r.created);
    }
    return { paths, created };
  }

  const base: Entry[] = [
    { name: "etc/", type: "dir", mode: 0o755, mtime: 1000 },
    { name: "etc/passwd", body: "root:x:0:0\n", mode: 0o644, mtime: 2000 },
    { name: "etc/shadow", body: "root:*:\n", mode: 0o600, uid: 0, gid: 42, mtime: 3000 },
    { name: "bin/", type: "dir", mode: 0o755, mtime: 4000 },
    { name: "bin/busybox", body: "elf", mode: 0o4755, mtime: 5000 },
    { name: "bin/sh", type: "hardlink", linkname: "bin/busybox" },
    { name: "bin/ls", type: "symlink", linkname: "busybox", mtime: 6000 },
    { name: "var/cache/", type: "dir", mode: 0o700, mtime: 7000 },
    { name: "var/cache/junk", body: "junk" },
    { name: "usr/share/doc", body: "doc", mtime: 8000 },
    { name: "usr/", type: "dir", mode: 0o750, mtime: 8500 },
  ];

  it("builds the child on the parent's files and leaves the parent untouched by the child's layer", async () => {
    const { paths } = await chain([
      base,
      [
        { name: "etc/passwd", body: "root:x:0:0\nuser:x:1000:1000\n", mtime: 9000 },
        { name: "var/.wh.cache", body: "" },
        { name: "bin/.wh..wh..opq", body: "" },
        { name: "bin/new", body: "new" },
      ],
    ]);
    const [parent, child] = paths as [string, string];
    assert.equal(parent, snapshotPath(sb.snapshots, chainIds([sha256(tar(base))])[0] as string));
    const p = await tree(parent);
    // the parent is still exactly the base layer
    const fresh = join(sb.dir, "fresh");
    await fs.mkdir(fresh);
    await applyLayer(fresh, streamOf(tar(base)), "none", sha256(tar(base)));
    // A parent directory the layer never names (usr/share) is created with the current time, so two applies
    // a second apart differ there; every entry the layer does name must match exactly.
    const named = new Set(base.map((e) => e.name.replace(/\/$/, "")));
    // Link counts also count the child's names for the inodes the two share, so they are compared apart.
    const strip = (ns: typeof p) =>
      ns.map(({ ino: _i, nlink: _n, mtime, ...rest }) => (named.has(rest.path) ? { ...rest, mtime } : rest));
    assert.deepEqual(strip(p), strip(await tree(fresh)));
    await fs.rm(fresh, { recursive: true });

    const c = await tree(child);
    const byPath = new Map(c.map((n) => [n.path, n]));
    assert.deepEqual(
      c.map((n) => n.path),
      ["bin", "bin/new", "etc", "etc/passwd", "etc/shadow", "usr", "usr/share", "usr/share/doc", "var"],
    );
    assert.equal(byPath.get("etc/passwd")?.data, "root:x:0:0\nuser:x:1000:1000\n");
    assert.equal(byPath.get("usr")?.mtime, 8500);
    // attributes the copy must keep: modes, times (directories included), ownership
    const pb = new Map(p.map((n) => [n.path, n]));
    for (const path of ["usr", "usr/share/doc", "etc/shadow"]) {
      const [a, b] = [pb.get(path), byPath.get(path)];
      assert.deepEqual([b?.mode, b?.mtime, b?.uid, b?.gid], [a?.mode, a?.mtime, a?.uid, a?.gid], path);
    }
    // Unchanged files are the parent's inodes (stored once); the changed one is a new inode, so the child's
    // change never reached the parent (checked above), and no directory is shared.
    assert.equal(byPath.get("etc/shadow")?.ino, pb.get("etc/shadow")?.ino);
    assert.equal(byPath.get("usr/share/doc")?.ino, pb.get("usr/share/doc")?.ino);
    assert.notEqual(byPath.get("etc/passwd")?.ino, pb.get("etc/passwd")?.ino);
    assert.equal(pb.get("etc/passwd")?.data, "root:x:0:0\n");
    for (const n of c.filter((n) => n.type === "dir")) assert.notEqual(n.ino, pb.get(n.path)?.ino, n.path);
  });

  it("keeps hardlinks inside the copied tree", async () => {
    const { paths } = await chain([base, [{ name: "tmp/", type: "dir" }]]);
    const c = new Map((await tree(paths[1] as string)).map((n) => [n.path, n]));
    assert.equal(c.get("bin/sh")?.ino, c.get("bin/busybox")?.ino);
    // two names in the parent, two in the child
    assert.equal(c.get("bin/busybox")?.nlink, 4);
    assert.equal(c.get("bin/busybox")?.mode, 0o4755);
    assert.equal(c.get("bin/ls")?.data, "busybox");
  });

  it("copies the parent instead when one of its files has no links left (EMLINK)", async () => {
    const { paths } = await chain([base]);
    const parent = paths[0] as string;
    // Fill one inode up to the filesystem's link limit (65,000 on ext4) with names inside the parent.
    const crowd = join(parent, "crowd");
    await fs.mkdir(crowd);
    const target = join(parent, "etc/passwd");
    let full = false;
    for (let i = 0; i < 70_000 && !full; i++) {
      try {
        linkSync(target, join(crowd, `${i}`)); // synchronous: 65,000 awaited links would take seconds
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EMLINK") throw e;
        full = true;
      }
    }
    if (!full) return; // a filesystem without a reachable link limit: nothing to fall back from
    const id = chainIds([sha256(tar(base)), sha256(tar([]))])[1] as string;
    const r = await prepareSnapshot(
      sb.snapshots,
      chainIds([sha256(tar(base))])[0] as string,
      id,
      async () => {},
      {
        durable: false,
      },
    );
    const [p, c] = await Promise.all([fs.lstat(target), fs.lstat(join(r.path, "etc/passwd"))]);
    assert.notEqual(c.ino, p.ino); // a copy
    assert.equal(await fs.readFile(join(r.path, "etc/passwd"), "utf8"), "root:x:0:0\n");
    assert.equal((await fs.lstat(join(r.path, "etc/shadow"))).mode & 0o7777, 0o600);
    assert.deepEqual(
      (await fs.readdir(sb.snapshots)).filter((n) => n.startsWith(".tmp-")),
      [],
    );
  });

  it("reuses an existing snapshot without applying again", async () => {
    await chain([base]);
    const id = chainIds([sha256(tar(base))])[0] as string;
    let called = false;
    const r = await prepareSnapshot(sb.snapshots, null, id, async () => {
      called = true;
    });
    assert.deepEqual([r.created, called], [false, false]);
  });

  it("leaves nothing behind when the apply fails, whatever the error", async () => {
    const id = `sha256:${"1".repeat(64)}`;
    await assert.rejects(
      prepareSnapshot(sb.snapshots, null, id, async (dir) => {
        await fs.writeFile(join(dir, "partial"), "x");
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.deepEqual(await fs.readdir(sb.snapshots), []);
  });

  it("refuses a missing parent and chain IDs that are not digests", async () => {
    const id = `sha256:${"2".repeat(64)}`;
    await assert.rejects(
      prepareSnapshot(sb.snapshots, `sha256:${"3".repeat(64)}`, id, async () => {}),
      (e: unknown) => e instanceof UnpackError && e.reason === "missing-parent",
    );
    await assert.rejects(
      prepareSnapshot(sb.snapshots, null, "../../sentinel", async () => {}),
      TypeError,
    );
    assert.deepEqual(await fs.readdir(sb.snapshots), []);
  });

  it("lets concurrent builders of one chain both succeed, one creating it", async () => {
    const t = tar(base);
    const id = sha256(t);
    const build = () =>
      prepareSnapshot(sb.snapshots, null, id, (dir) => applyLayer(dir, streamOf(t, 100), "none", id), {
        durable: false,
      });
    const results = await Promise.all([build(), build(), build()]);
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.deepEqual(await fs.readdir(sb.snapshots), [id]);
    assert.equal(await fs.readFile(join(sb.snapshots, id, "etc/passwd"), "utf8"), "root:x:0:0\n");
  });

  it("removes temporary directories of dead builders only", async () => {
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid as number;
    await fs.mkdir(join(sb.snapshots, `.tmp-${dead}-abc/rootfs/x`), { recursive: true });
    await fs.mkdir(join(sb.snapshots, `.tmp-${process.pid}-def`));
    assert.deepEqual(await removeStaleSnapshotTemps(sb.snapshots), [`.tmp-${dead}-abc`]);
    assert.deepEqual(await fs.readdir(sb.snapshots), [`.tmp-${process.pid}-def`]);
    await fs.rm(join(sb.snapshots, `.tmp-${process.pid}-def`), { recursive: true });
  });

  it("removes a snapshot with read-only directories", async () => {
    const { paths } = await chain([
      [
        { name: "ro/", type: "dir", mode: 0o555 },
        { name: "ro/f", body: "x", mode: 0o444 },
      ],
    ]);
    await removeSnapshot(paths[0] as string);
    assert.deepEqual(await fs.readdir(sb.snapshots), []);
  });

  it("works for an unprivileged user: read-only and unreadable entries copy, apply and remove", async () => {
    let result: Awaited<ReturnType<typeof rootlessScenario>>;
    if (isRoot) {
      // run the scenario as nobody, the way a rootless store runs
      const dir = join(sb.dir, "rootless");
      await fs.mkdir(dir);
      await fs.chown(dir, 65534, 65534);
      await fs.chmod(sb.dir, 0o755);
      const testkit = join(import.meta.dirname, "testkit.ts");
      const script = `const { rootlessScenario } = await import(${JSON.stringify(testkit)});
        process.stdout.write(JSON.stringify(await rootlessScenario(${JSON.stringify(dir)})));`;
      const out = execFileSync(
        "setpriv",
        [
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          process.execPath,
          "--input-type=module",
          "-e",
          script,
        ],
        { encoding: "utf8", cwd: dir },
      );
      result = JSON.parse(out);
      await fs.rm(dir, { recursive: true });
    } else {
      result = await rootlessScenario(sb.dir);
      await fs.rm(join(sb.dir, "snapshots"), { recursive: true, force: true });
      await fs.mkdir(sb.snapshots, { recursive: true });
    }
    assert.deepEqual(result.modes, {
      locked: "dir 700 ",
      ro: "dir 755 ",
      "ro/f": "file 444 f",
      "ro/g": "file 444 g",
      shadow: "file 400 s2",
    });
    assert.deepEqual(result.left, []);
    for (const w of ["mode-relaxed:ro", "mode-relaxed:shadow", "mode-relaxed:locked", "ownership:ro/f"]) {
      assert.ok(result.warnings.includes(w), `${w} in ${result.warnings.join(" ")}`);
    }
  });

  it("copies device nodes and FIFOs as root", { skip: !isRoot && "needs root" }, async () => {
    const { paths } = await chain([
      [
        { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
        { name: "fifo", type: "fifo" },
      ],
      [{ name: "x", body: "" }],
    ]);
    const c = new Map((await tree(paths[1] as string)).map((n) => [n.path, n]));
    assert.equal(c.get("fifo")?.type, "fifo");
    assert.ok(["char", "file"].includes(c.get("dev/null")?.type as string));
  });
});
