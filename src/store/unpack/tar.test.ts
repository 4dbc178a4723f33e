// The tar reader: interoperability with GNU tar's formats (gnu, oldgnu, pax, ustar, v7) and the corner
// cases where readers disagree, resolved as Go's archive/tar (containerd) resolves them.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { applyLayer, UnpackError } from "./index.ts";
import { ByteSource, type TarEntry, TarReader } from "./tar.ts";
import {
  checksum,
  type Entry,
  entryBlocks,
  header,
  type Sandbox,
  sandbox,
  sha256,
  streamOf,
  tar,
  tree,
} from "./testkit.ts";

const isRoot = process.getuid?.() === 0;

async function entries(data: Buffer, chunk = 333): Promise<(TarEntry & { body: string })[]> {
  const chunks = (function* () {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  })();
  const it: AsyncIterator<Buffer> = {
    next: async () => chunks.next() as IteratorResult<Buffer>,
  };
  const src = new ByteSource(it);
  const reader = new TarReader(src);
  const out: (TarEntry & { body: string })[] = [];
  for (let e = await reader.next(); e !== null; e = await reader.next()) {
    const parts: Buffer[] = [];
    for await (const c of reader.body()) parts.push(Buffer.from(c));
    out.push({ ...e, body: Buffer.concat(parts).toString("latin1") });
  }
  return out;
}

async function refuses(data: Buffer, pattern: RegExp): Promise<void> {
  await assert.rejects(entries(data), (e: unknown) => {
    assert.ok(e instanceof UnpackError);
    assert.equal(e.reason, "bad-archive");
    assert.match(e.message, pattern);
    return true;
  });
}

describe("tar reader corner cases", () => {
  it("reads header-only types as bodiless whatever their size field says (as Go does)", async () => {
    const t = Buffer.concat([
      header({ name: "d/", flag: "5", size: 1024 }),
      ...entryBlocks({ name: "d/f", body: "after" }),
      Buffer.alloc(1024),
    ]);
    const es = await entries(t);
    assert.deepEqual(
      es.map((e) => [e.type, e.name, e.size, e.body]),
      [
        ["dir", "d/", 0, ""],
        ["file", "d/f", 5, "after"],
      ],
    );
  });

  it("takes the ustar prefix field, and a pre-POSIX NUL type with a trailing slash as a directory", async () => {
    const h = header({ name: "name", flag: "0", size: 0 });
    h.write("some/prefix", 345, "latin1");
    const v7dir = header({ name: "olddir/", flag: "\0" });
    const es = await entries(Buffer.concat([checksum(h), v7dir, Buffer.alloc(1024)]));
    assert.deepEqual(
      es.map((e) => [e.type, e.name]),
      [
        ["file", "some/prefix/name"],
        ["dir", "olddir/"],
      ],
    );
  });

  it("parses base-256 numbers, negative ones included", async () => {
    const h = header({ name: "f", flag: "0" });
    h.fill(0, 108, 116);
    h[108] = 0x80;
    h.writeUInt32BE(5_000_000, 112); // uid beyond the 7 octal digits
    h.fill(0xff, 136, 148); // mtime -1
    const [e] = await entries(Buffer.concat([checksum(h), Buffer.alloc(1024)]));
    assert.equal(e?.uid, 5_000_000);
    assert.equal(e?.mtime, -1);
  });

  it("applies PAX records to the next entry only; an empty value restores the header field", async () => {
    const es = await entries(
      tar([
        {
          name: "short",
          body: "1",
          pax: { path: "long/name", mtime: "10.25", "SCHILY.xattr.user.k": "v\u00ff" },
        },
        { name: "plain", body: "2", pax: { path: "" } },
      ]),
    );
    assert.deepEqual(
      es.map((e) => [e.name, e.mtime, [...e.xattrs].map(([k, v]) => [k, v.toString("hex")])]),
      [
        ["long/name", 10.25, [["user.k", "76c3bf"]]],
        ["plain", 1_600_000_000, []],
      ],
    );
  });

  it("ignores PAX global headers", async () => {
    const g = Buffer.from("17 path=ignored\n");
    const t = Buffer.concat([
      header({ name: "global", flag: "g", size: g.length }),
      g,
      Buffer.alloc(512 - g.length),
      ...entryBlocks({ name: "f", body: "x" }),
      Buffer.alloc(1024),
    ]);
    assert.deepEqual(
      (await entries(t)).map((e) => e.name),
      ["f"],
    );
  });

  it("lets a GNU long name win over a PAX path, as Go does", async () => {
    const long = Buffer.from("from/gnu\0");
    const t = Buffer.concat([
      header({ name: "././@LongLink", flag: "L", size: long.length, gnuMagic: true }),
      long,
      Buffer.alloc(512 - long.length),
      ...entryBlocks({ name: "x", body: "", pax: { path: "from/pax" } }),
      Buffer.alloc(1024),
    ]);
    assert.deepEqual(
      (await entries(t)).map((e) => e.name),
      ["from/gnu"],
    );
  });

  it("accepts an archive that ends at a header boundary without the zero blocks", async () => {
    assert.equal((await entries(tar([{ name: "f", body: "x" }], { end: false }))).length, 1);
    assert.equal(
      (await entries(Buffer.concat([tar([{ name: "f" }], { end: false }), Buffer.alloc(512)]))).length,
      1,
    );
  });

  it("refuses a zero block followed by a header, and metadata that describes nothing", async () => {
    await refuses(Buffer.concat([Buffer.alloc(512), ...entryBlocks({ name: "f" })]), /lone zero block/);
    const pax = entryBlocks({ name: "f", pax: { path: "p" } }).slice(0, -1);
    await refuses(Buffer.concat(pax), /after a metadata entry/);
  });

  it("accepts the signed checksum old writers produced", async () => {
    const h = header({ name: "f\u00e9", flag: "0" }); // é is two bytes ≥ 0x80
    h.fill(0x20, 148, 156);
    let signed = 0;
    for (const b of h) signed += b > 127 ? b - 256 : b;
    h.write(`${signed.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    assert.equal((await entries(Buffer.concat([h, Buffer.alloc(1024)]))).length, 1);
  });
});

describe("GNU tar interoperability", () => {
  let sb: Sandbox;
  let src: string;
  const longDir = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(60)}`;

  before(async () => {
    sb = await sandbox();
    src = join(sb.dir, "src");
    await fs.mkdir(join(src, "dir/sub"), { recursive: true });
    await fs.mkdir(join(src, longDir), { recursive: true });
    await fs.writeFile(join(src, "dir/file"), "hello\n");
    await fs.writeFile(join(src, "dir/biguid"), "uid beyond 7 octal digits\n");
    await fs.writeFile(join(src, "dir/sub/exec"), "#!/bin/sh\n");
    await fs.chmod(join(src, "dir/sub/exec"), 0o750);
    await fs.writeFile(join(src, longDir, `${"n".repeat(120)}.txt`), "long\n");
    await fs.symlink(`../${"t".repeat(150)}`, join(src, "dir/longlink"));
    await fs.symlink("file", join(src, "dir/link"));
    await fs.link(join(src, "dir/file"), join(src, "dir/hard"));
    await fs.writeFile(join(src, "big"), Buffer.alloc(3 * 1024 * 1024 + 17, 7));
    if (isRoot) {
      await fs.lchown(join(src, "dir/file"), 1000, 42);
      await fs.lchown(join(src, "dir/biguid"), 3_000_000, 42); // beyond octal: base-256 (gnu) or PAX
      await fs.chmod(join(src, "dir/sub/exec"), 0o4750);
    }
    const walk = await tree(src);
    for (const n of walk.reverse())
      await fs.lutimes(join(src, n.path), 1_500_000_000, 1_500_000_000 + n.path.length);
    await fs.rm(sb.snapshots, { recursive: true });
  });
  after(async () => {
    await fs.rm(src, { recursive: true, force: true });
    await fs.mkdir(sb.snapshots);
    await sb.assertUntouched();
    await sb.cleanup();
  });

  for (const format of ["gnu", "oldgnu", "pax", "posix", "ustar", "v7"] as const) {
    it(`applies GNU tar --format=${format} exactly`, async () => {
      const shortOnly = format === "ustar" || format === "v7";
      const exclude = shortOnly
        ? ["--exclude=./dddd*", "--exclude=./dir/longlink", "--exclude=./dir/biguid"]
        : [];
      const archive = execFileSync(
        "tar",
        ["--format", format, "--sort=name", "--numeric-owner", ...exclude, "-C", src, "-cf", "-", "."],
        { maxBuffer: 64 << 20 },
      );
      const root = join(sb.dir, `root-${format}`);
      await fs.mkdir(root);
      try {
        const r = await applyLayer(root, streamOf(archive, 4096 + 3), "none", sha256(archive));
        assert.deepEqual(r.warnings, []);
        const want = (await tree(src)).filter((n) => !(shortOnly && /^dddd|longlink|biguid/.test(n.path)));
        const got = await tree(root);
        const strip = (ns: typeof got) =>
          ns.map(({ ino: _i, nlink, ...rest }) => ({
            ...rest,
            // v7 has no uid > 0o7777777 and no setuid semantics difference; nlink shows the hardlink
            nlink: rest.type === "file" ? nlink : 0,
          }));
        assert.deepEqual(strip(got), strip(want));
      } finally {
        await fs.rm(root, { recursive: true, force: true });
      }
    });
  }
});

describe("entry helper", () => {
  it("round-trips every kind through the test writer", async () => {
    const all: Entry[] = [
      { name: "f", body: "x", mode: 0o640, uid: 5, gid: 6, mtime: 77 },
      { name: "d/", type: "dir" },
      { name: "s", type: "symlink", linkname: "f" },
      { name: "h", type: "hardlink", linkname: "f" },
      { name: "c", type: "char", devmajor: 1, devminor: 5 },
      { name: "p", type: "fifo" },
    ];
    const es = await entries(tar(all));
    assert.deepEqual(
      es.map((e) => [e.type, e.name, e.linkname, e.mode, e.uid, e.gid, e.devmajor, e.devminor, e.body]),
      [
        ["file", "f", "", 0o640, 5, 6, 0, 0, "x"],
        ["dir", "d/", "", 0o755, 0, 0, 0, 0, ""],
        ["symlink", "s", "f", 0o777, 0, 0, 0, 0, ""],
        ["hardlink", "h", "f", 0o644, 0, 0, 0, 0, ""],
        ["char", "c", "", 0o644, 0, 0, 1, 5, ""].map((v) => (v === "char" ? "chardev" : v)),
        ["fifo", "p", "", 0o644, 0, 0, 0, 0, ""],
      ],
    );
  });
});
