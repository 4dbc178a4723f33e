// Layer semantics (spec oci.md §7.1): entry types, attributes, whiteouts, opaque directories, compression,
// DiffID verification, rootless behaviour and limits, on a real directory.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, it } from "node:test";
import { type ApplyOptions, type ApplyResult, applyLayer, type Compression, UnpackError } from "./index.ts";
import {
  type Entry,
  gzip,
  listing,
  type Sandbox,
  sandbox,
  sha256,
  streamOf,
  tar,
  tree,
  zstd,
} from "./testkit.ts";

const isRoot = process.getuid?.() === 0;
let sb: Sandbox;
beforeEach(async () => {
  sb = await sandbox();
});
afterEach(async () => {
  await sb.assertUntouched();
  await sb.cleanup();
});

async function apply(
  entries: readonly Entry[] | Buffer,
  options: ApplyOptions = {},
  compression: Compression | "unknown" = "none",
): Promise<ApplyResult> {
  const t = Buffer.isBuffer(entries) ? entries : tar(entries);
  const data = compression === "gzip" ? gzip(t) : compression === "zstd" ? zstd(t) : t;
  return applyLayer(sb.root, streamOf(data), compression, sha256(t), options);
}

async function node(path: string) {
  const found = (await tree(sb.root)).find((n) => n.path === path);
  assert.ok(found, `${path} missing`);
  return found;
}

describe("entry types and attributes", () => {
  it("creates files, directories, symlinks and hardlinks with their modes and times", async () => {
    const r = await apply([
      { name: "./", type: "dir" },
      { name: "bin/", type: "dir", mode: 0o751, mtime: 1_000_000 },
      { name: "bin/tool", body: "#!/bin/sh\n", mode: 0o755, mtime: 1_100_000 },
      { name: "bin/ro", body: "ro", mode: 0o400, mtime: 1_200_000 },
      { name: "bin/sticky/", type: "dir", mode: 0o1777, mtime: 1_300_000 },
      { name: "bin/link", type: "symlink", linkname: "tool", mtime: 1_400_000 },
      { name: "bin/abs", type: "symlink", linkname: "/etc/passwd" },
      { name: "bin/hard", type: "hardlink", linkname: "bin/tool" },
      { name: "bin/empty", body: "", mode: 0o600 },
    ]);
    assert.equal(r.entries, 9);
    assert.equal(r.compression, "none");
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(await listing(sb.root), {
      "bin/": "",
      "bin/abs": "-> /etc/passwd",
      "bin/empty": "",
      "bin/hard": "#!/bin/sh\n",
      "bin/link": "-> tool",
      "bin/ro": "ro",
      "bin/sticky/": "",
      "bin/tool": "#!/bin/sh\n",
    });
    const bin = await node("bin");
    assert.equal(bin.mode, 0o751);
    assert.equal(bin.mtime, 1_000_000, "directory mtime set after its children were written");
    assert.equal((await node("bin/tool")).mode, 0o755);
    assert.equal((await node("bin/tool")).mtime, 1_100_000);
    assert.equal((await node("bin/ro")).mode, 0o400);
    assert.equal((await node("bin/sticky")).mode, 0o1777);
    assert.equal((await node("bin/link")).mtime, 1_400_000, "symlink times set with lutimes");
    assert.equal((await node("bin/hard")).ino, (await node("bin/tool")).ino);
    assert.equal((await node("bin/tool")).nlink, 2);
  });

  it("keeps fractional PAX mtimes and PAX uid/gid over the header's", {
    skip: !isRoot && "needs root",
  }, async () => {
    await apply([
      { name: "f", body: "x", uid: 1, gid: 1, pax: { mtime: "1234567890.5", uid: "4242", gid: "4343" } },
    ]);
    const st = await fs.lstat(join(sb.root, "f"));
    assert.equal(st.mtimeMs, 1234567890500);
    assert.equal(st.uid, 4242);
    assert.equal(st.gid, 4343);
  });

  it("applies ownership before the mode, so setuid survives lchown", {
    skip: !isRoot && "needs root",
  }, async () => {
    await apply([
      { name: "su", body: "x", mode: 0o4755, uid: 1000, gid: 1000 },
      { name: "d/", type: "dir", mode: 0o2775, uid: 7, gid: 8 },
      { name: "l", type: "symlink", linkname: "su", uid: 9, gid: 10 },
    ]);
    const su = await node("su");
    assert.equal(su.mode, 0o4755);
    assert.equal(su.uid, 1000);
    const d = await node("d");
    assert.deepEqual([d.mode, d.uid, d.gid], [0o2775, 7, 8]);
    const l = await node("l");
    assert.deepEqual([l.uid, l.gid], [9, 10]);
  });

  it("creates devices and FIFOs as root", { skip: !isRoot && "needs root" }, async () => {
    const r = await apply([
      { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
      { name: "dev/loop9", type: "block", devmajor: 7, devminor: 9, mode: 0o660 },
      { name: "run/fifo", type: "fifo", mode: 0o620 },
    ]);
    const st = await fs.lstat(join(sb.root, "dev/null"));
    if (r.warnings.some((w) => w.kind === "device" && w.path === "dev/null")) {
      // inside a user namespace mknod is refused even to root: then the empty-file fallback must be there
      assert.ok(st.isFile());
    } else {
      assert.ok(st.isCharacterDevice());
      assert.equal(st.rdev, (1 << 8) | 3);
      assert.equal(st.mode & 0o7777, 0o666);
      assert.ok((await fs.lstat(join(sb.root, "dev/loop9"))).isBlockDevice());
    }
    const fifo = await fs.lstat(join(sb.root, "run/fifo"));
    assert.ok(fifo.isFIFO());
    assert.equal(fifo.mode & 0o7777, 0o620);
  });

  it("sets PAX SCHILY.xattr records as root when setfattr is installed", {
    skip:
      (!isRoot || spawnSync("setfattr", ["--version"]).status !== 0) &&
      "needs root and setfattr (Debian: attr)",
  }, async () => {
    const cap = Buffer.from("0100000200200000000000000000000000000000", "hex"); // cap_net_bind_service+ep
    const r = await apply([
      {
        name: "bin/server",
        body: "elf",
        mode: 0o755,
        pax: { "SCHILY.xattr.security.capability": cap.toString("latin1"), "SCHILY.xattr.user.note": "hi" },
      },
    ]);
    assert.deepEqual(r.warnings, []);
    const dump = execFileSync("getfattr", ["-d", "-m", "-", "-e", "hex", join(sb.root, "bin/server")], {
      encoding: "utf8",
    });
    assert.match(dump, /security\.capability=0x0100000200200000000000000000000000000000/);
    assert.match(dump, /user\.note=0x6869/);
  });

  it("creates missing parent directories 0755", async () => {
    await apply([{ name: "a/b/c/f", body: "deep" }]);
    assert.equal((await node("a")).mode, 0o755);
    assert.equal((await node("a/b/c")).mode, 0o755);
    assert.equal((await node("a/b/c/f")).data, "deep");
  });

  it("reads GNU long names, PAX long names and long link targets", async () => {
    const long = `${"dir/".repeat(40)}file`;
    const target = `${"../".repeat(10)}${"t".repeat(120)}`;
    await apply([
      { name: long, body: "gnu", gnu: true },
      { name: `pax-${"p".repeat(150)}`, body: "pax" },
      { name: "gnulink", type: "symlink", linkname: target, gnu: true },
      { name: "paxlink", type: "symlink", linkname: target },
    ]);
    assert.equal((await node(long)).data, "gnu");
    assert.equal((await node(`pax-${"p".repeat(150)}`)).data, "pax");
    assert.equal((await node("gnulink")).data, target);
    assert.equal((await node("paxlink")).data, target);
  });

  it("skips an entry that resolves to the root when it is a directory", async () => {
    const r = await apply([
      { name: ".", type: "dir", mode: 0o700 },
      { name: "a/..", type: "dir", mode: 0o700 },
      { name: "f", body: "x" },
    ]);
    assert.equal(r.entries, 3);
    assert.deepEqual(await listing(sb.root), { f: "x" });
    assert.equal((await fs.stat(sb.root)).mode & 0o777, 0o755, "root's mode untouched");
  });

  it("cleans names: ./a, a//b and a/./b land where they should", async () => {
    await apply([
      { name: "./a/", type: "dir" },
      { name: "a//b", body: "1" },
      { name: "a/./c", body: "2" },
      { name: "a/x/../d", body: "3" },
    ]);
    assert.deepEqual(await listing(sb.root), { "a/": "", "a/b": "1", "a/c": "2", "a/d": "3" });
  });

  it("keeps names that are not UTF-8 byte for byte", async () => {
    const name = Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0xe9]); // "latin" + é in Latin-1
    const h = tar([{ name: "placeholder", body: "x" }]);
    name.copy(h, 0);
    h.fill(0, name.length, 11);
    const { checksum } = await import("./testkit.ts");
    checksum(h.subarray(0, 512));
    await apply(h);
    const names = await fs.readdir(Buffer.from(sb.root), { encoding: "buffer" });
    assert.deepEqual(names, [name]);
  });
});

describe("existing paths", () => {
  it("keeps a directory replaced by a directory (children stay, attributes change)", async () => {
    await apply([
      { name: "d/", type: "dir", mode: 0o755 },
      { name: "d/old", body: "old" },
    ]);
    await apply([
      { name: "d/", type: "dir", mode: 0o700, mtime: 1_000 },
      { name: "d/new", body: "new" },
    ]);
    assert.deepEqual(await listing(sb.root), { "d/": "", "d/new": "new", "d/old": "old" });
    assert.equal((await node("d")).mode, 0o700);
    assert.equal((await node("d")).mtime, 1_000);
  });

  it("replaces a directory by a file and a file by a directory", async () => {
    await apply([
      { name: "d/", type: "dir" },
      { name: "d/x", body: "x" },
      { name: "f", body: "f" },
    ]);
    await apply([
      { name: "d", body: "now a file" },
      { name: "f/", type: "dir" },
    ]);
    assert.deepEqual(await listing(sb.root), { d: "now a file", "f/": "" });
  });

  it("lets a later duplicate entry replace an earlier one, also in a directory the layer created", async () => {
    await apply([
      { name: "d/", type: "dir" },
      { name: "d/f", body: "first" },
      { name: "d/f", body: "second" },
      { name: "d/l", type: "symlink", linkname: "f" },
      { name: "d/l", body: "now a file" },
      { name: "e/g", body: "implicit parent" },
      { name: "e/g", type: "symlink", linkname: "../d/f" },
    ]);
    assert.deepEqual(await listing(sb.root), {
      "d/": "",
      "d/f": "second",
      "d/l": "now a file",
      "e/": "",
      "e/g": "-> ../d/f",
    });
  });

  it("gives the one-at-a-time result while many small files are still being created", async () => {
    // More files than are created at once, then entries that meet files still in flight: the same names
    // again, a hardlink to one, a directory over one, a whiteout and an opaque marker beside them.
    const many = (prefix: string, body: string) =>
      Array.from({ length: 40 }, (_, i) => ({ name: `${prefix}${i}`, body: `${body}${i}` }));
    await apply([
      ...many("d/f", "first"),
      ...many("d/f", "second"),
      { name: "d/hard", type: "hardlink", linkname: "d/f39" },
      { name: "d/f38/", type: "dir" },
      { name: "d/f38/inside", body: "x" },
      { name: "d/.wh.f37", body: "" },
      { name: "e/.wh..wh..opq", body: "" },
      ...many("e/g", "e"),
    ]);
    const got = await listing(sb.root);
    for (let i = 0; i < 40; i++) {
      if (i !== 38) assert.equal(got[`d/f${i}`], `second${i}`, `d/f${i}`);
      assert.equal(got[`e/g${i}`], `e${i}`);
    }
    assert.equal(got["d/f38/inside"], "x");
    assert.equal(got["d/hard"], "second39");
    assert.equal((await node("d/hard")).ino, (await node("d/f39")).ino);
    // a file still being created is a file for a later entry that needs a directory there
    await assert.rejects(
      apply([...many("h/f", "x"), { name: "h/f39/child", body: "y" }]),
      (e: unknown) =>
        e instanceof UnpackError && e.reason === "bad-archive" && /to be a directory/.test(e.message),
    );
  });

  it("replaces a file without writing into it (a hardlinked twin keeps its content)", async () => {
    await apply([
      { name: "a", body: "shared" },
      { name: "b", type: "hardlink", linkname: "a" },
    ]);
    await apply([{ name: "a", body: "replaced" }]);
    assert.deepEqual(await listing(sb.root), { a: "replaced", b: "shared" });
  });

  it("replaces a symlink to a directory by a directory, without following it", async () => {
    await apply([
      { name: "target/", type: "dir" },
      { name: "target/keep", body: "k" },
      { name: "l", type: "symlink", linkname: "target" },
    ]);
    await apply([
      { name: "l/", type: "dir" },
      { name: "l/mine", body: "m" },
    ]);
    assert.deepEqual(await listing(sb.root), { "l/": "", "l/mine": "m", "target/": "", "target/keep": "k" });
  });

  it("writes through a lower layer's symlink inside the root, absolute targets taken from the root", async () => {
    await apply([
      { name: "run/", type: "dir" },
      { name: "var/", type: "dir" },
      { name: "var/run", type: "symlink", linkname: "/run" },
      { name: "lib", type: "symlink", linkname: "usr/lib" },
      { name: "evil", type: "symlink", linkname: "/" },
      { name: "up", type: "symlink", linkname: "/../../.." },
    ]);
    await apply([
      { name: "var/run/pid", body: "1" },
      { name: "lib/libc.so", body: "elf" },
      { name: "evil/etc/passwd", body: "root:x:0:0\n" },
      { name: "up/etc/group", body: "root:x:0:\n" },
    ]);
    const l = await listing(sb.root);
    assert.equal(l["run/pid"], "1");
    assert.equal(l["usr/lib/libc.so"], "elf");
    assert.equal(l["etc/passwd"], "root:x:0:0\n");
    assert.equal(l["etc/group"], "root:x:0:\n");
  });
});

describe("whiteouts", () => {
  async function lower(): Promise<void> {
    await apply([
      { name: "keep", body: "k" },
      { name: "gone", body: "g" },
      { name: "tree/", type: "dir" },
      { name: "tree/a/b/c", body: "c" },
      { name: "tree/f", body: "f" },
      { name: "link", type: "symlink", linkname: "tree" },
    ]);
  }

  it("deletes a file, a whole tree and a symlink (not its target) from lower layers", async () => {
    await lower();
    const r = await apply([
      { name: ".wh.gone", body: "" },
      { name: ".wh.tree", body: "" },
      { name: ".wh.link", body: "" },
      { name: ".wh.never-existed", body: "" },
    ]);
    assert.equal(r.entries, 4);
    assert.deepEqual(await listing(sb.root), { keep: "k" });
  });

  it("does not hide what the same layer creates, whichever comes first", async () => {
    await lower();
    await apply([
      { name: "gone", body: "new" },
      { name: ".wh.gone", body: "" },
      { name: ".wh.keep", body: "" },
      { name: "keep", body: "again" },
    ]);
    assert.deepEqual(await listing(sb.root), {
      gone: "new",
      keep: "again",
      link: "-> tree",
      "tree/": "",
      "tree/a/": "",
      "tree/a/b/": "",
      "tree/a/b/c": "c",
      "tree/f": "f",
    });
  });

  it("whiting out a directory the layer also writes into keeps only the layer's children", async () => {
    await lower();
    await apply([
      { name: "tree/new", body: "n" },
      { name: ".wh.tree", body: "" },
    ]);
    assert.deepEqual(
      Object.keys(await listing(sb.root)).filter((k) => k.startsWith("tree")),
      ["tree/", "tree/new"],
    );
  });

  it("ignores AUFS metadata names with a warning", async () => {
    const r = await apply([
      { name: ".wh..wh.plnk", type: "dir" },
      { name: ".wh..wh.aufs", body: "" },
    ]);
    assert.deepEqual(
      r.warnings.map((w) => [w.kind, w.path]),
      [
        ["ignored-entry", ".wh..wh.plnk"],
        ["ignored-entry", ".wh..wh.aufs"],
      ],
    );
    assert.deepEqual(await listing(sb.root), {});
  });
});

describe("opaque directories", () => {
  async function lower(): Promise<void> {
    await apply([
      { name: "etc/", type: "dir" },
      { name: "etc/a", body: "a" },
      { name: "etc/sub/x", body: "x" },
      { name: "etc/sub/y", body: "y" },
      { name: "other", body: "o" },
    ]);
  }
  const expected = {
    "etc/": "",
    "etc/new": "n",
    "etc/sub/": "",
    "etc/sub/z": "z",
    other: "o",
  };

  it("hides every lower child when the marker comes first", async () => {
    await lower();
    await apply([
      { name: "etc/", type: "dir" },
      { name: "etc/.wh..wh..opq", body: "" },
      { name: "etc/new", body: "n" },
      { name: "etc/sub/z", body: "z" },
    ]);
    assert.deepEqual(await listing(sb.root), expected);
  });

  it("gives the same result when the marker comes after the layer's own entries", async () => {
    await lower();
    await apply([
      { name: "etc/", type: "dir" },
      { name: "etc/new", body: "n" },
      { name: "etc/sub/z", body: "z" },
      { name: "etc/.wh..wh..opq", body: "" },
    ]);
    assert.deepEqual(await listing(sb.root), expected);
  });

  it("an opaque marker for a missing directory creates it empty", async () => {
    await apply([{ name: "fresh/.wh..wh..opq", body: "" }]);
    assert.deepEqual(await listing(sb.root), { "fresh/": "" });
  });
});

describe("compression and DiffID", () => {
  const entries: Entry[] = [{ name: "f", body: "compressed ".repeat(1000) }];
  for (const [given, sent] of [
    ["none", "none"],
    ["gzip", "gzip"],
    ["zstd", "zstd"],
    ["unknown", "gzip"],
    ["unknown", "zstd"],
    ["unknown", "none"],
  ] as const) {
    it(`applies a ${sent} stream declared ${given}`, async () => {
      const t = tar(entries);
      const data = sent === "gzip" ? gzip(t) : sent === "zstd" ? zstd(t) : t;
      const r = await applyLayer(sb.root, streamOf(data, 3), given, sha256(t));
      assert.equal(r.compression, sent);
      assert.equal(r.diffId, sha256(t));
      assert.equal(r.bytes, t.length);
      assert.equal((await node("f")).data, "compressed ".repeat(1000));
    });
  }

  it("sniffs an empty stream as an empty layer", async () => {
    const r = await applyLayer(sb.root, Readable.from([]), "unknown", sha256(Buffer.alloc(0)));
    assert.equal(r.entries, 0);
  });

  it("hashes trailing bytes after the end-of-archive marker", async () => {
    const t = Buffer.concat([tar([{ name: "f", body: "x" }]), Buffer.alloc(8192)]);
    const r = await applyLayer(sb.root, streamOf(t), "none", sha256(t));
    assert.equal(r.bytes, t.length);
    await assert.rejects(
      applyLayer(sb.root, streamOf(t), "none", sha256(tar([{ name: "f", body: "x" }]))),
      (e: unknown) => e instanceof UnpackError && e.reason === "diffid-mismatch",
    );
  });

  it("refuses a gzip stream declared as zstd", async () => {
    const t = tar(entries);
    await assert.rejects(
      applyLayer(sb.root, streamOf(gzip(t)), "zstd", sha256(t)),
      (e: unknown) => e instanceof UnpackError && e.reason === "bad-archive",
    );
  });

  it("rejects a malformed expected DiffID before reading", async () => {
    await assert.rejects(applyLayer(sb.root, streamOf(tar([])), "none", "sha256:abc"), TypeError);
  });

  it("stops when the signal fires", async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(
      applyLayer(sb.root, streamOf(tar(entries)), "none", sha256(tar(entries)), { signal: ac.signal }),
      (e: unknown) => e instanceof UnpackError && e.reason === "aborted",
    );
  });

  it("reports an abort mid-stream as aborted, whatever the reason and the compression", async () => {
    const big = Array.from({ length: 200 }, (_, i) => ({ name: `f${i}`, body: "x".repeat(64 * 1024) }));
    const t = tar(big);
    for (const compression of ["gzip", "zstd", "none"] as const) {
      for (const reason of [undefined, new Error("the pull failed")]) {
        const ac = new AbortController();
        const data = compression === "gzip" ? gzip(t) : compression === "zstd" ? zstd(t) : t;
        // a stream that delivers a little, then waits: the abort lands while the layer is being read
        const slow = Readable.from(
          (async function* () {
            yield data.subarray(0, 64 * 1024);
            ac.abort(reason);
            await new Promise((done) => setTimeout(done, 50));
            yield data.subarray(64 * 1024);
          })(),
        );
        await assert.rejects(
          applyLayer(sb.root, slow, compression, sha256(t), { signal: ac.signal }),
          (e: unknown) => e instanceof UnpackError && e.reason === "aborted",
          `${compression}, ${reason ? "an Error reason" : "no reason"}`,
        );
        await fs.rm(sb.root, { recursive: true });
        await fs.mkdir(sb.root);
      }
    }
  });
});

describe("rootless (sameOwner: false)", () => {
  it("skips ownership, drops setuid/setgid, replaces devices, adds owner bits, warns for each", async () => {
    const seen: string[] = [];
    const r = await apply(
      [
        { name: "suid", body: "x", mode: 0o4755, uid: 1234, gid: 1234 },
        { name: "dev/", type: "dir", mode: 0o555, uid: 1234, gid: 1234 },
        { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666, uid: 1234, gid: 1234 },
        { name: "shadow", body: "secret", mode: 0o000, uid: 1234, gid: 1234 },
        {
          name: "caps",
          body: "x",
          pax: { "SCHILY.xattr.security.capability": "\u0001" },
          uid: 1234,
          gid: 1234,
        },
      ],
      { sameOwner: false, onWarning: (w) => seen.push(`${w.kind}:${w.path}`) },
    );
    assert.deepEqual(
      r.warnings.map((w) => `${w.kind}:${w.path}`),
      seen,
    );
    assert.deepEqual(seen.sort(), [
      "device:dev/null",
      "mode-relaxed:dev",
      "mode-relaxed:shadow",
      "ownership:caps",
      "ownership:dev",
      "ownership:dev/null",
      "ownership:shadow",
      "ownership:suid",
      "setid-dropped:suid",
      "xattr:caps",
    ]);
    assert.equal((await node("suid")).mode, 0o755);
    assert.equal((await node("dev")).mode, 0o755);
    assert.equal((await node("shadow")).mode, 0o400);
    const dev = await node("dev/null");
    assert.equal(dev.type, "file");
    assert.equal(dev.data, "");
    const me = process.getuid?.() ?? 0;
    assert.equal((await node("suid")).uid, me, "no chown attempted");
  });

  it("keeps setuid when the file already has its intended owner", async () => {
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const r = await apply([{ name: "suid", body: "x", mode: 0o4755, uid, gid }], { sameOwner: false });
    assert.deepEqual(r.warnings, []);
    assert.equal((await node("suid")).mode, 0o4755);
  });
});

describe("limits", () => {
  it("rejects non-positive limits", async () => {
    await assert.rejects(
      applyLayer(sb.root, streamOf(tar([])), "none", sha256(tar([])), { maxRatio: 0 }),
      TypeError,
    );
  });

  it("caps the warnings kept in the result but reports every one", async () => {
    let seen = 0;
    const entries: Entry[] = Array.from({ length: 1005 }, (_, i) => ({ name: `f${i}`, body: "", uid: 99 }));
    const r = await apply(entries, { sameOwner: false, onWarning: () => seen++ });
    assert.equal(seen, 1005);
    assert.equal(r.warnings.length, 1000);
    assert.equal(r.suppressedWarnings, 5);
  });
});
