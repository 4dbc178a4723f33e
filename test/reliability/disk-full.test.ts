// A full disk: the store on a real 8 MiB filesystem (tmpfs, or a loop-mounted ext4 image where tmpfs cannot
// be mounted; the test is skipped, saying why, when neither can). Pulls that cannot fit, record and lease
// writes with no space left, and an unpack that does not fit each fail with a clear error naming the lack
// of space; no partial blob or snapshot becomes visible, the store stays readable (`kpull images`, `kpull
// verify` clean), and once space is freed the same operations succeed.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { seedImage, type TestImage, tinyImage, useRegistry } from "../harness/index.ts";
import {
  expectedSnapshots,
  type Files,
  kpull,
  noise,
  partialSnapshots,
  record,
  tempDir,
  unverifiedBytes,
} from "./common.ts";

const SIZE_MB = 8;

/** Mounts a small filesystem; returns how, or why it could not. */
function mountSmall(dir: string): { kind: string } | { skip: string } {
  const tried: string[] = [];
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${SIZE_MB}m`, "tmpfs", dir], { stdio: "pipe" });
    return { kind: `tmpfs, ${SIZE_MB} MiB` };
  } catch (error) {
    tried.push(`tmpfs: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`);
  }
  try {
    const image = `${dir}.img`;
    execFileSync("truncate", ["-s", `${SIZE_MB}M`, image]);
    execFileSync("mkfs.ext4", ["-q", "-F", image], { stdio: "pipe" });
    execFileSync("mount", ["-o", "loop", image, dir], { stdio: "pipe" });
    return { kind: `ext4 on a loop device, ${SIZE_MB} MiB` };
  } catch (error) {
    tried.push(`loop ext4: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`);
  }
  return { skip: `cannot mount a small filesystem here (${tried.join("; ")})` };
}

const small: Files = { "etc/hostname": "small\n" };
const big: Files = { "big.bin": noise(12 * 1024 * 1024, "disk-big") }; // more than the whole filesystem
const mid: Files = { "mid.bin": noise(2 * 1024 * 1024, "disk-mid") };
const SMALL = tinyImage({ layers: [small] });
const BIG = tinyImage({ layers: [big] });
const MID = tinyImage({ layers: [mid] });
const known = new Map<string, Buffer>(
  [SMALL, BIG, MID]
    .flatMap((i: TestImage) => [i.manifest, i.config, ...i.layers])
    .map((b) => [b.digest, b.bytes]),
);
const EXPECTED = expectedSnapshots([[small], [big], [mid]]);

describe("full disk: the store on a small filesystem", { timeout: 300_000 }, () => {
  const registry = useRegistry();
  const mountpoint = tempDir("disk");
  const how = mountSmall(mountpoint);
  const mounted = "kind" in how;
  const root = join(mountpoint, "root");
  const rows: Record<string, unknown>[] = [];

  after(() => {
    if (mounted) {
      try {
        execFileSync("umount", [mountpoint]);
      } catch {
        execFileSync("umount", ["-l", mountpoint]);
      }
    }
    rmSync(`${mountpoint}.img`, { force: true });
  });

  const skip = "skip" in how ? how.skip : false;
  let host = "";
  before(async () => {
    if (!mounted) return;
    const r = registry();
    host = r.host;
    await seedImage(r, "rel/disk-small", "v1", SMALL);
    await seedImage(r, "rel/disk-big", "v1", BIG);
    await seedImage(r, "rel/disk-mid", "v1", MID);
    mkdirSync(root);
  });

  /** After every failure: verify clean, images readable, no unverified bytes, no partial snapshot. */
  async function assertReadable(where: string) {
    const verify = await kpull(["verify", "-o", "json"], { root });
    assert.equal(verify.code, 0, `${where}: verify: ${verify.stdout}${verify.stderr}`);
    const images = await kpull(["images", "-o", "json"], { root });
    assert.equal(images.code, 0, `${where}: images: ${images.stderr}`);
    JSON.parse(images.stdout);
    assert.deepEqual(unverifiedBytes(root, known), [], where);
    assert.deepEqual(partialSnapshots(root, EXPECTED), [], where);
  }

  async function pull(name: string, extra: string[] = []) {
    const started = performance.now();
    const run = await kpull(["pull", "-o", "json", ...extra, `${host}/${name}:v1`], { root, insecure: host });
    const ms = Math.round(performance.now() - started);
    let out: { action?: string; code?: string; message?: string; unpacked?: unknown } = {};
    try {
      out = JSON.parse(run.stdout);
    } catch {
      // an error before any output: stderr says it
    }
    return { run, out, ms };
  }

  function fill(leave: number): string {
    const st = execFileSync("stat", ["-f", "-c", "%a %S", mountpoint]).toString().trim().split(" ");
    const free = Number(st[0]) * Number(st[1]);
    const filler = join(mountpoint, "filler");
    writeFileSync(filler, Buffer.alloc(Math.max(0, free - leave)));
    return filler;
  }

  it(`on ${"kind" in how ? how.kind : "nothing"}: pulls, records, leases and unpacks fail clearly and leave the store whole`, {
    skip,
  }, async () => {
    // A small image fits.
    const first = await pull("rel/disk-small");
    assert.equal(first.run.code, 0, first.run.stderr);

    // 12 MiB into 8: a clear error, no blob of it visible, the store readable.
    const tooBig = await pull("rel/disk-big");
    assert.equal(tooBig.run.code, 1, tooBig.run.stdout + tooBig.run.stderr);
    assert.equal(tooBig.out.action, "failed");
    assert.equal(tooBig.out.code, "ErrImagePull");
    assert.match(tooBig.out.message ?? "", /no space left/);
    const blobs = readdirSync(join(root, "blobs", "sha256")).map((h) => `sha256:${h}`);
    assert.ok(
      !blobs.includes((BIG.layers[0] as TestImage["layers"][number]).digest),
      "no blob of the big layer",
    );
    await assertReadable("after the 12 MiB pull");
    rows.push({
      case: "blob larger than the filesystem",
      ms: tooBig.ms,
      error: tooBig.out.message,
      survived: true,
    });

    // What the failed download held is not kept: another image that fits still pulls.
    const after = await pull("rel/disk-mid");
    assert.equal(
      after.run.code,
      0,
      `a 2 MiB pull after the failed one: ${after.out.message ?? after.run.stderr}`,
    );
    rows.push({ case: "pull after a failed too-big pull", ms: after.ms, error: null, survived: true });

    // No room for a lease or a record: the write fails, the old files stay.
    const before = readdirSync(join(root, "kpull"));
    let filler = fill(0);
    const rmi = await kpull(["rmi", `${host}/rel/disk-small:v1`], { root });
    assert.notEqual(rmi.code, 0, "rmi with no space left fails");
    assert.match(rmi.stderr + rmi.stdout, /no space left/);
    const noLease = await pull("rel/disk-small");
    rmSync(filler);
    assert.deepEqual(readdirSync(join(root, "kpull")).sort(), before.sort(), "no stray files in kpull/");
    await assertReadable("after writes with no space left");
    rows.push({
      case: "rmi with no space at all (the store lock cannot be created)",
      error: rmi.stderr.trim(),
      survived: true,
    });

    // One page left: the store lock fits, the new images.json does not. The old records stay in force.
    const recordsBefore = readFileSync(join(root, "kpull", "images.json"), "utf8");
    filler = fill(4096);
    const rmiOnePage = await kpull(["rmi", `${host}/rel/disk-small:v1`], { root });
    rmSync(filler);
    assert.notEqual(rmiOnePage.code, 0, "rmi whose records write fails");
    assert.match(rmiOnePage.stderr, /no space left/);
    assert.equal(
      readFileSync(join(root, "kpull", "images.json"), "utf8"),
      recordsBefore,
      "records unchanged",
    );
    assert.deepEqual(readdirSync(join(root, "kpull")).sort(), before.sort(), "no stray files in kpull/");
    await assertReadable("after a records write with no space left");
    rows.push({
      case: "rmi whose records write finds no space (lock taken)",
      error: rmiOnePage.stderr.trim(),
      survived: true,
    });
    rows.push({
      case: "pull of a present image with no space left",
      error: noLease.out.message ?? noLease.run.stderr.trim(),
      survived: true,
    });

    // An unpack that does not fit: no snapshot left, a clear reason.
    filler = fill(1024 * 1024);
    const unpack = await pull("rel/disk-mid", ["--unpack"]);
    rmSync(filler);
    assert.notEqual(unpack.run.code, 0, "an unpack that does not fit fails");
    assert.match(unpack.run.stderr + unpack.run.stdout, /free on the store.s filesystem|no space left/);
    await assertReadable("after an unpack that did not fit");
    rows.push({
      case: "unpack larger than the free space",
      error: (unpack.run.stderr || unpack.out.message || "").trim(),
      survived: true,
    });

    // Space back: everything works.
    const rmiAgain = await kpull(["rmi", `${host}/rel/disk-mid:v1`], { root });
    assert.equal(rmiAgain.code, 0, rmiAgain.stderr);
    const unpacked = await pull("rel/disk-small", ["--unpack"]);
    assert.equal(unpacked.run.code, 0, unpacked.run.stderr);
    await assertReadable("at the end");
    for (const row of rows) record("disk-full", { filesystem: "kind" in how ? how.kind : null, ...row });
  });
});
