// The corpus of hostile and malformed layers (issue 5, "Done when"): each is refused with a typed
// UnpackError, nothing changes outside the root (a sentinel directory sits beside it), and no snapshot or
// temporary directory is left behind. Hostile names aim at the sentinel, never at real system paths, so a
// regression damages only the sandbox.

import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { createGzip } from "node:zlib";
import {
  type ApplyOptions,
  applyLayer,
  chainIds,
  prepareSnapshot,
  UnpackError,
  type UnpackErrorReason,
} from "./index.ts";
import {
  checksum,
  type Entry,
  entryBlocks,
  gzip,
  header,
  type Sandbox,
  sandbox,
  sha256,
  streamOf,
  tar,
} from "./testkit.ts";

let sb: Sandbox;
before(async () => {
  sb = await sandbox();
});
after(async () => {
  await sb.cleanup();
});

/** Snapshots present (names), temporary directories included. */
async function snapshotsLeft(): Promise<string[]> {
  return (await fs.readdir(sb.snapshots)).sort();
}

/** Applies `layers` in order as snapshots; the last must fail with `reason`. Returns the error. */
async function refused(
  layers: readonly Buffer[],
  reason: UnpackErrorReason,
  options: ApplyOptions = {},
): Promise<UnpackError> {
  await fs.rm(sb.snapshots, { recursive: true, force: true });
  await fs.mkdir(sb.snapshots);
  const diffIds = layers.map(sha256);
  const chain = chainIds(diffIds);
  let parent: string | null = null;
  for (const [i, layer] of layers.entries()) {
    const id = chain[i] as string;
    const attempt = prepareSnapshot(
      sb.snapshots,
      parent,
      id,
      (dir) => applyLayer(dir, streamOf(layer), "none", diffIds[i] as string, options),
      { durable: false },
    );
    if (i < layers.length - 1) await attempt;
    else {
      let caught: unknown;
      await attempt.catch((e: unknown) => {
        caught = e;
      });
      assert.ok(caught instanceof UnpackError, `want UnpackError(${reason}), got ${String(caught)}`);
      assert.equal(caught.code, "UnpackError");
      assert.equal(caught.reason, reason, caught.message);
      assert.deepEqual(await snapshotsLeft(), chain.slice(0, i).sort(), "no snapshot or temp dir left");
      await sb.assertUntouched();
      return caught;
    }
    parent = id;
  }
  throw new Error("unreachable");
}

const file = (name: string, body = "pwned\n"): Entry => ({ name, body });

describe("hostile names", () => {
  it("refuses ../ climbing out of the root", async () => {
    await refused([tar([file("../sentinel/pwned")])], "path-escape");
  });

  it("refuses an absolute name (a naive join would write to that absolute path)", async () => {
    await refused([tar([file(`${sb.sentinel}/pwned`)])], "path-escape");
  });

  it("refuses a/../../x, which climbs out only after cleaning", async () => {
    await refused([tar([{ name: "a/", type: "dir" }, file("a/../../sentinel/pwned")])], "path-escape");
  });

  it("refuses an entry named . that is a file, and ./ as a symlink", async () => {
    await refused([tar([file(".")])], "replaces-root");
    await refused([tar([{ name: "./", type: "symlink", linkname: "/" }])], "replaces-root");
    await refused([tar([{ name: "a/", type: "dir" }, file("a/..")])], "replaces-root");
  });

  it("refuses names longer than maxPathLength", async () => {
    const e = await refused([tar([file(`${"d/".repeat(3000)}f`)])], "bad-archive");
    assert.match(e.message, /maxPathLength/);
  });
});

describe("writes through symlinks", () => {
  it("refuses evil -> / then evil/<path>: the same layer cannot hold a link and entries below it", async () => {
    const layer = tar([{ name: "evil", type: "symlink", linkname: "/" }, file(`evil${sb.sentinel}/pwned`)]);
    await refused([layer], "symlink-escape");
  });

  it("refuses evil -> .. then evil/sentinel/pwned (a naive open() would land in the sentinel)", async () => {
    const layer = tar([{ name: "evil", type: "symlink", linkname: ".." }, file("evil/sentinel/pwned")]);
    await refused([layer], "symlink-escape");
  });

  it("refuses evil -> ../../.. then a write through it", async () => {
    const layer = tar([{ name: "evil", type: "symlink", linkname: "../../.." }, file("evil/x")]);
    await refused([layer], "symlink-escape");
  });

  it("refuses a write through a lower layer's symlink whose relative target climbs above the root", async () => {
    const lower = tar([{ name: "evil", type: "symlink", linkname: ".." }]);
    await refused([lower, tar([file("evil/sentinel/pwned")])], "symlink-escape");
    const deep = tar([
      { name: "a/b/", type: "dir" },
      { name: "a/b/up", type: "symlink", linkname: "../../../sentinel" },
    ]);
    await refused([deep, tar([file("a/b/up/pwned")])], "symlink-escape");
  });

  it("refuses a directory replaced by a symlink in the same layer, then written through (cache poisoning)", async () => {
    // node-tar CVE-2021-32803: a cached "a is a directory" outlived a's replacement by a symlink
    const layer = tar([
      { name: "a/", type: "dir" },
      file("a/x"),
      { name: "a", type: "symlink", linkname: ".." },
      file("a/sentinel/pwned"),
    ]);
    await refused([layer], "symlink-escape");
  });

  it("replaces a planted symlink by a file or directory, never writing through it", async () => {
    await fs.rm(sb.snapshots, { recursive: true, force: true });
    await fs.mkdir(sb.snapshots);
    const lower = tar([
      { name: "f", type: "symlink", linkname: "../sentinel/secret" },
      { name: "d", type: "symlink", linkname: "../sentinel" },
    ]);
    const upper = tar([
      { name: "f", body: "overwritten?\n", mode: 0o777 },
      { name: "d/", type: "dir", mode: 0o777, mtime: 1 },
    ]);
    const ids = chainIds([sha256(lower), sha256(upper)]);
    await prepareSnapshot(sb.snapshots, null, ids[0] as string, (dir) =>
      applyLayer(dir, streamOf(lower), "none", sha256(lower)),
    );
    const { path } = await prepareSnapshot(sb.snapshots, ids[0] as string, ids[1] as string, (dir) =>
      applyLayer(dir, streamOf(upper), "none", sha256(upper)),
    );
    assert.equal(await fs.readFile(join(path, "f"), "utf8"), "overwritten?\n");
    assert.ok((await fs.lstat(join(path, "d"))).isDirectory());
    await sb.assertUntouched();
  });

  it("refuses a directory chain through a symlink loop", async () => {
    const lower = tar([
      { name: "l1", type: "symlink", linkname: "l2" },
      { name: "l2", type: "symlink", linkname: "l1" },
    ]);
    const e = await refused([lower, tar([file("l1/x")])], "bad-archive");
    assert.match(e.message, /too many levels of symbolic links/);
  });
});

describe("hardlinks", () => {
  it("refuses a hardlink to ../sentinel/secret (would share the sentinel's inode)", async () => {
    await refused(
      [tar([{ name: "h", type: "hardlink", linkname: "../sentinel/secret" }])],
      "hardlink-escape",
    );
  });

  it("refuses a hardlink to ../../outside", async () => {
    await refused([tar([{ name: "a/h", type: "hardlink", linkname: "../../outside" }])], "hardlink-escape");
  });

  it("refuses a hardlink to an absolute path outside", async () => {
    const layer = tar([{ name: "h", type: "hardlink", linkname: `${sb.sentinel}/secret` }]);
    await refused([layer], "hardlink-escape");
  });

  it("refuses a hardlink whose target goes through a symlink out of the root", async () => {
    const same = tar([
      { name: "evil", type: "symlink", linkname: ".." },
      { name: "h", type: "hardlink", linkname: "evil/sentinel/secret" },
    ]);
    await refused([same], "symlink-escape");
    const lower = tar([{ name: "evil", type: "symlink", linkname: ".." }]);
    await refused(
      [lower, tar([{ name: "h", type: "hardlink", linkname: "evil/sentinel/secret" }])],
      "symlink-escape",
    );
  });

  it("refuses hardlinks to a directory, to a missing file and to themselves", async () => {
    await refused(
      [
        tar([
          { name: "d/", type: "dir" },
          { name: "h", type: "hardlink", linkname: "d" },
        ]),
      ],
      "bad-archive",
    );
    await refused([tar([{ name: "h", type: "hardlink", linkname: "missing" }])], "bad-archive");
    await refused([tar([file("f", "x"), { name: "f", type: "hardlink", linkname: "f" }])], "bad-archive");
  });
});

describe("whiteouts", () => {
  it("refuses .wh.. and .wh... (they would delete the directory itself or its parent)", async () => {
    await refused([tar([{ name: "a/", type: "dir" }, file("a/.wh..", "")])], "invalid-whiteout");
    // at the top, .wh... names root/.. : the sandbox with the sentinel in it
    await refused([tar([file(".wh...", "")])], "invalid-whiteout");
    await refused([tar([file(".wh..", "")])], "invalid-whiteout");
  });

  it("refuses .wh. with nothing after it", async () => {
    await refused([tar([file("a/.wh.", "")])], "invalid-whiteout");
  });

  it("refuses .wh..wh.. and .wh..wh... (AUFS-style names that reduce to . and ..)", async () => {
    await refused([tar([file(".wh..wh..", "")])], "invalid-whiteout");
    await refused([tar([file("a/.wh..wh...", "")])], "invalid-whiteout");
  });

  it("refuses a whiteout whose directory is reached through an escaping symlink", async () => {
    const lower = tar([{ name: "evil", type: "symlink", linkname: ".." }]);
    await refused([lower, tar([file("evil/.wh.sentinel", "")])], "symlink-escape");
    await refused([lower, tar([file("evil/sentinel/.wh..wh..opq", "")])], "symlink-escape");
  });
});

describe("malformed archives", () => {
  it("refuses garbage bytes", async () => {
    const garbage = Buffer.alloc(4096);
    for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) % 251;
    const e = await refused([garbage], "bad-archive");
    assert.match(e.message, /not a tar archive/);
  });

  it("refuses an archive truncated inside a file body", async () => {
    const whole = tar([file("big", "x".repeat(5000))], { end: false });
    await refused([whole.subarray(0, 512 + 1000)], "bad-archive");
  });

  it("refuses an archive truncated inside a header", async () => {
    const whole = tar([file("a", "1"), file("b", "2")]);
    await refused([whole.subarray(0, 1024 + 100)], "bad-archive");
  });

  it("refuses a corrupted header checksum in the middle of an archive", async () => {
    const t = tar([file("a", "1"), file("b", "2")]);
    t[1024 + 10] = 0x41; // a byte of b's name; checksum now wrong
    const e = await refused([t], "bad-archive");
    assert.match(e.message, /checksum/);
  });

  it("refuses a huge PAX header without reading (or buffering) it", async () => {
    const blocks = [header({ name: "PaxHeaders/x", flag: "x", size: 1 << 30 })];
    const e = await refused([Buffer.concat(blocks)], "bad-archive");
    assert.match(e.message, /PAX header .* exceeds/);
  });

  it("refuses a 2 MiB PAX path record and a 2 MiB GNU long name", async () => {
    await refused([tar([file(`${"p".repeat(2 << 20)}`)])], "bad-archive", { maxPathLength: 8 << 20 });
    await refused([tar([{ ...file(`${"g".repeat(2 << 20)}`), gnu: true }])], "bad-archive", {
      maxPathLength: 8 << 20,
    });
  });

  it("refuses malformed PAX records", async () => {
    const bad = Buffer.from("99 path=x\n");
    const t = Buffer.concat([
      header({ name: "PaxHeaders/x", flag: "x", size: bad.length }),
      bad,
      Buffer.alloc(512 - bad.length),
      ...entryBlocks(file("x")),
      Buffer.alloc(1024),
    ]);
    await refused([t], "bad-archive");
  });

  it("refuses device numbers that do not fit 32 bits", async () => {
    const h = header({ name: "dev", flag: "3" });
    h[329] = 0x80; // base-256 devmajor = 2^32
    h.fill(0, 330, 337);
    h[332] = 1;
    await refused([Buffer.concat([checksum(h), Buffer.alloc(1024)])], "bad-archive");
  });

  it("refuses entry types layers do not use", async () => {
    await refused([tar([{ name: "sparse", type: "S" }])], "unsupported-entry");
    await refused([tar([{ name: "label", type: "V" }])], "unsupported-entry");
    await refused([tar([{ ...file("s"), pax: { "GNU.sparse.major": "1" } }])], "unsupported-entry");
  });

  it("refuses a file where a directory is needed", async () => {
    const e = await refused([tar([file("f"), file("f/x")])], "bad-archive");
    assert.match(e.message, /to be a directory/);
  });

  it("refuses a layer whose DiffID differs, leaving no snapshot", async () => {
    await fs.rm(sb.snapshots, { recursive: true, force: true });
    await fs.mkdir(sb.snapshots);
    const layer = tar([file("f", "content")]);
    const wrong = sha256(Buffer.from("something else"));
    await assert.rejects(
      prepareSnapshot(sb.snapshots, null, wrong, (dir) => applyLayer(dir, streamOf(layer), "none", wrong), {
        durable: false,
      }),
      (e: unknown) =>
        e instanceof UnpackError && e.reason === "diffid-mismatch" && /wrong diff id/.test(e.message),
    );
    assert.deepEqual(await snapshotsLeft(), []);
  });
});

describe("decompression bombs", () => {
  /** A tar holding one file of `size` zero bytes, gzip-compressed on the fly: never in memory. */
  function zeroBomb(size: number): Readable {
    async function* tarStream(): AsyncGenerator<Buffer> {
      yield header({ name: "zeros", flag: "0", size });
      const chunk = Buffer.alloc(1 << 20);
      for (let left = size; left > 0; left -= chunk.length)
        yield chunk.subarray(0, Math.min(left, chunk.length));
      yield Buffer.alloc(1024);
    }
    return Readable.from(tarStream(), { objectMode: false }).pipe(createGzip());
  }

  async function attempt(layer: Readable, options: ApplyOptions): Promise<UnpackError> {
    await fs.rm(sb.snapshots, { recursive: true, force: true });
    await fs.mkdir(sb.snapshots);
    const id = sha256(Buffer.from("bomb"));
    let written = 0;
    let caught: unknown;
    await prepareSnapshot(
      sb.snapshots,
      null,
      id,
      async (dir) => {
        try {
          return await applyLayer(dir, layer, "gzip", id, options);
        } finally {
          written = (await fs.stat(join(dir, "zeros")).catch(() => ({ size: 0 }))).size;
        }
      },
      { durable: false },
    ).catch((e: unknown) => {
      caught = e;
    });
    assert.ok(caught instanceof UnpackError, String(caught));
    assert.deepEqual(await snapshotsLeft(), []);
    await sb.assertUntouched();
    assert.ok(written < 128 << 20, `refused only after writing ${written} bytes`);
    return caught;
  }

  it("refuses 1 GiB of zeros by the ratio limit, having written little", async () => {
    const e = await attempt(zeroBomb(1 << 30), {});
    assert.equal(e.reason, "bomb");
    assert.match(e.message, /more than 500 times/);
  });

  it("refuses by the absolute size limit whatever the ratio", async () => {
    const e = await attempt(zeroBomb(1 << 30), { maxUncompressedBytes: 16 << 20, maxRatio: 1e9 });
    assert.equal(e.reason, "bomb");
    assert.match(e.message, /beyond 16777216 uncompressed bytes/);
  });

  it("refuses more entries than maxEntries", async () => {
    const many = tar(Array.from({ length: 11 }, (_, i) => file(`f${i}`, "")));
    const e = await refused([many], "bomb", { maxEntries: 10 });
    assert.match(e.message, /more than 10 entries/);
  });

  it("refuses a truncated gzip stream as a bad archive", async () => {
    await fs.rm(sb.snapshots, { recursive: true, force: true });
    await fs.mkdir(sb.snapshots);
    const t = tar([file("f", "x".repeat(100_000))]);
    const z = gzip(t);
    const id = sha256(t);
    await assert.rejects(
      prepareSnapshot(
        sb.snapshots,
        null,
        id,
        (dir) => applyLayer(dir, streamOf(z.subarray(0, z.length - 20)), "gzip", id),
        {
          durable: false,
        },
      ),
      (e: unknown) => e instanceof UnpackError && e.reason === "bad-archive",
    );
    assert.deepEqual(await snapshotsLeft(), []);
  });
});
