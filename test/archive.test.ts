// kpull export / import: OCI archives between stores, read by skopeo, refused when damaged or hostile.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { Store } from "../src/store/index.ts";
import { requireTool, runKpull, seedImage, tinyImage, useRegistry } from "./harness/index.ts";

const kpull = (args: string[]) => runKpull(args);

const run = promisify(execFile);
const hostsDir = mkdtempSync(join(tmpdir(), "kpull-hosts-"));
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

/** A one-member ustar archive with an arbitrary name. */
function tarWith(name: string, body: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, "utf8");
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(`${body.length.toString(8).padStart(11, "0")}\0`, 124);
  h.write("00000000000\0", 136);
  h.write("        ", 148);
  h.write("0", 156);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return Buffer.concat([h, body, Buffer.alloc((512 - (body.length % 512)) % 512), Buffer.alloc(1024)]);
}

describe("kpull export and import (acceptance)", () => {
  const registry = useRegistry();

  it("moves an image between stores through an archive skopeo can read; Never then needs no registry", async () => {
    const r = registry();
    const image = tinyImage({ layers: [{ a: "one" }, { b: "two" }] });
    await seedImage(r, "team/app", "v1", image);
    const ref = `${r.host}/team/app:v1`;
    const a = tmp("kpull-a-");
    assert.equal((await kpull(["pull", "--root", a, "--hosts-dir", hostsDir, ref])).code, 0);
    const file = join(tmp("kpull-archive-"), "images.tar");
    const exported = await kpull(["export", "-o", "json", "--root", a, "--file", file, ref]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(JSON.parse(exported.stdout).blobs, 4);

    const skopeo = requireTool("skopeo", "skopeo");
    const info = JSON.parse((await run(skopeo, ["inspect", `oci-archive:${file}:v1`])).stdout);
    assert.equal(info.Digest, image.manifest.digest);

    const b = tmp("kpull-b-");
    const imported = await kpull(["import", "-o", "json", "--root", b, file]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(JSON.parse(imported.stdout).images[0].name, ref);
    const before = (await r.accessLog()).length;
    const never = await kpull(["pull", "-o", "json", "--policy", "Never", "--root", b, ref]);
    assert.equal(JSON.parse(never.stdout).action, "present");
    assert.equal((await r.accessLog()).length, before, "no registry contact");
    assert.equal((await (await Store.open(b)).verify()).clean, true);
  });

  it("imports an archive skopeo wrote", async () => {
    const r = registry();
    const image = tinyImage({ layers: [{ s: "skopeo" }] });
    await seedImage(r, "team/peer", "v1", image);
    const file = join(tmp("kpull-archive-"), "peer.tar");
    const skopeo = requireTool("skopeo", "skopeo");
    await run(skopeo, [
      "copy",
      "--src-tls-verify=false",
      `docker://${r.host}/team/peer:v1`,
      `oci-archive:${file}:${r.host}/team/peer:v1`,
    ]);
    const res = await kpull(["import", "-o", "json", "--root", tmp("kpull-c-"), file]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(JSON.parse(res.stdout).images[0].id, image.config.digest);
  });

  it("refuses a damaged archive and records nothing", async () => {
    const r = registry();
    const image = tinyImage({ layers: [{ d: "damaged" }] });
    await seedImage(r, "team/dmg", "v1", image);
    const a = tmp("kpull-a-");
    const ref = `${r.host}/team/dmg:v1`;
    assert.equal((await kpull(["pull", "--root", a, "--hosts-dir", hostsDir, ref])).code, 0);
    const file = join(tmp("kpull-archive-"), "dmg.tar");
    assert.equal((await kpull(["export", "--root", a, "--file", file, ref])).code, 0);
    const bytes = readFileSync(file);
    const layer = image.layers[0];
    assert.ok(layer);
    const at = bytes.indexOf(Buffer.from(layer.bytes).subarray(0, 32));
    assert.ok(at > 0);
    bytes[at + 40] = (bytes[at + 40] ?? 0) ^ 0xff;
    writeFileSync(file, bytes);
    const b = tmp("kpull-b-");
    const res = await kpull(["import", "--root", b, file]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^error: .*(hashes to|does not match)/);
    assert.deepEqual(await (await Store.open(b)).images(), []);
  });

  it("refuses hostile member names without writing outside", async () => {
    const dir = tmp("kpull-hostile-");
    const file = join(dir, "evil.tar");
    writeFileSync(file, tarWith("../../escaped", Buffer.from("x")));
    const res = await kpull(["import", "--root", join(dir, "store"), file]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /unexpected archive member "..\/..\/escaped"/);
    assert.equal(existsSync(join(dir, "escaped")), false);
    writeFileSync(file, Buffer.from("not a tar at all"));
    const garbage = await kpull(["import", "--root", join(dir, "store"), file]);
    assert.equal(garbage.code, 1);
    assert.match(garbage.stderr, /not a readable OCI archive/);
  });
});
