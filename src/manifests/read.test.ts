import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import {
  decodeManifestBytes,
  expandInputs,
  type ImageUse,
  ManifestError,
  readImageUses,
  readManifestSource,
} from "./index.ts";
import { FIXTURES } from "./oracle.test.ts";

const pod = (image: string): string =>
  `kind: Pod\nspec:\n  containers:\n    - name: c\n      image: ${image}\n`;

async function rejectsWith(promise: Promise<unknown>, check: (e: ManifestError) => void): Promise<void> {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ManifestError, `expected a ManifestError, got ${String(error)}`);
    check(error);
    return true;
  });
}

let tmp = "";
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "kpull-manifests-"));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("directories", () => {
  let root = "";
  before(async () => {
    root = join(tmp, "tree");
    await mkdir(join(root, "a", "deeper"), { recursive: true });
    await mkdir(join(root, ".hidden"));
    await mkdir(join(root, "empty-dir"));
    await writeFile(join(root, "b.yaml"), pod("b"));
    await writeFile(join(root, "a.yaml"), pod("a"));
    await writeFile(join(root, "B.yaml"), pod("upper-b"));
    await writeFile(join(root, "a", "z.yml"), pod("a-z"));
    await writeFile(
      join(root, "a", "deeper", "y.json"),
      JSON.stringify({ kind: "Pod", spec: { containers: [{ image: "a-deeper-y" }] } }),
    );
    await writeFile(join(root, ".hidden", "x.yaml"), pod("hidden-dir"));
    await writeFile(join(root, ".dot.yaml"), pod("dotfile"));
    await writeFile(join(root, "notes.txt"), pod("txt"));
    await writeFile(join(root, "c.YAML"), pod("upper-ext"));
    await writeFile(join(root, "empty.yaml"), "");
    await writeFile(join(tmp, "outside.yaml"), pod("via-link"));
    await symlink(join(tmp, "outside.yaml"), join(root, "link.yaml"));
    await symlink(join(root, "a"), join(root, "dir-link.yaml"));
    await symlink(join(root, "a"), join(root, "loop"));
  });

  it("walks recursively in byte order of names, taking .yaml, .yml and .json, skipping dot names", async () => {
    const files = await expandInputs([root]);
    assert.deepEqual(files, [
      `${root}/B.yaml`,
      `${root}/a/deeper/y.json`,
      `${root}/a/z.yml`,
      `${root}/a.yaml`,
      `${root}/b.yaml`,
      `${root}/empty.yaml`,
      `${root}/link.yaml`,
    ]);
    const uses = await readImageUses([root]);
    assert.deepEqual(
      uses.map((u) => u.image),
      ["upper-b", "a-deeper-y", "a-z", "a", "b", "via-link"],
    );
    assert.equal(uses[3]?.file, `${root}/a.yaml`);
    assert.deepEqual(uses[3]?.position, { file: `${root}/a.yaml`, line: 5, column: 14 });
  });

  it("keeps the directory as given in file names, with one separator", async () => {
    const files = await expandInputs([`${root}/a/`]);
    assert.deepEqual(files, [`${root}/a/deeper/y.json`, `${root}/a/z.yml`]);
  });

  it("reads explicitly named files whatever their name, and each file once", async () => {
    const uses = await readImageUses([
      join(root, ".dot.yaml"),
      join(root, "notes.txt"),
      root,
      join(root, "b.yaml"),
    ]);
    assert.deepEqual(
      uses.map((u) => u.image),
      ["dotfile", "txt", "upper-b", "a-deeper-y", "a-z", "a", "b", "via-link"],
    );
  });

  it("returns nothing for a directory without manifests", async () => {
    assert.deepEqual(await readImageUses([join(root, "empty-dir")]), []);
    assert.deepEqual(await readImageUses([join(root, ".hidden", "..", "empty-dir")]), []);
  });

  it("reports a missing path as no such file or directory, naming it as given", async () => {
    await rejectsWith(readImageUses([root, "no/such/file.yaml"]), (e) => {
      assert.equal(e.file, "no/such/file.yaml");
      assert.equal(e.reason, "no such file or directory");
      assert.equal(e.message, "no/such/file.yaml: no such file or directory");
      assert.equal(e.line, null);
    });
  });

  it("skips a FIFO found in a walk, but reads one named explicitly (process substitution)", async (t) => {
    const fifo = join(tmp, "fifo-dir", "pipe.yaml");
    await mkdir(join(tmp, "fifo-dir"));
    try {
      execFileSync("mkfifo", [fifo]);
    } catch {
      t.skip("mkfifo is not available");
      return;
    }
    assert.deepEqual(await expandInputs([join(tmp, "fifo-dir")]), []);
    const reading = readImageUses([fifo]);
    const writer = createWriteStream(fifo);
    writer.end(pod("from-pipe"));
    const uses = await reading;
    assert.deepEqual(
      uses.map((u) => [u.file, u.image]),
      [[fifo, "from-pipe"]],
    );
  });
});

describe("stdin", () => {
  it("reads - from the given stream, named -", async () => {
    const stdin = Readable.from([
      Buffer.from("kind: Pod\r\nspec:\r\n"),
      "  containers: [{name: c, image: from-stdin}]\r\n",
    ]);
    const uses = await readImageUses(["-"], { stdin });
    assert.equal(uses.length, 1);
    const [u] = uses as [ImageUse];
    assert.equal(u.file, "-");
    assert.equal(u.image, "from-stdin");
    assert.deepEqual(u.position, { file: "-", line: 3, column: 33 });
  });

  it("reads stdin once even when - is given twice", async () => {
    const stdin = Readable.from([pod("once")]);
    const uses = await readImageUses(["-", "-"], { stdin });
    assert.deepEqual(
      uses.map((u) => u.image),
      ["once"],
    );
  });

  it("refuses stdin beyond the size limit", async () => {
    const stdin = Readable.from([Buffer.alloc(600, 0x20), Buffer.alloc(600, 0x20)]);
    await rejectsWith(readImageUses(["-"], { stdin, maxFileBytes: 1024 }), (e) => {
      assert.equal(e.message, "-: file is larger than the limit of 1 KiB");
    });
  });
});

describe("file contents", () => {
  it("refuses a binary file, naming it", async () => {
    const path = join(FIXTURES, "hostile", "binary.yaml");
    await rejectsWith(readImageUses([path]), (e) => {
      assert.equal(e.file, path);
      assert.equal(e.reason, "not a text file (it contains NUL bytes)");
    });
  });

  it("refuses invalid UTF-8", async () => {
    const path = join(tmp, "latin1.yaml");
    await writeFile(path, Buffer.from("kind: Pod\nmetadata: {name: caf\xe9}\n", "latin1"));
    await rejectsWith(readImageUses([path]), (e) =>
      assert.equal(e.reason, "not a text file (it is not valid UTF-8)"),
    );
  });

  it("refuses a file larger than the limit, default 16 MiB", async () => {
    const small = join(tmp, "big.yaml");
    await writeFile(small, `${"#".repeat(200)}\n`);
    await rejectsWith(readImageUses([small], { maxFileBytes: 100 }), (e) => {
      assert.equal(e.message, `${small}: file is larger than the limit of 100 bytes`);
    });
    const big = join(tmp, "huge.yaml");
    await writeFile(big, Buffer.alloc(16 * 1024 * 1024 + 1, 0x23));
    await rejectsWith(readImageUses([big]), (e) =>
      assert.equal(e.reason, "file is larger than the limit of 16 MiB"),
    );
    assert.deepEqual(await readImageUses([small], { maxFileBytes: 201 }), []);
  });

  it("decodes UTF-8 with a BOM and UTF-16 with a BOM to the same positions", async () => {
    const text = pod("bom-image");
    const variants: [string, Buffer, string, boolean][] = [
      ["plain.yaml", Buffer.from(text, "utf8"), "utf-8", false],
      [
        "utf8bom.yaml",
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, "utf8")]),
        "utf-8",
        true,
      ],
      [
        "utf16le.yaml",
        Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]),
        "utf-16le",
        true,
      ],
      [
        "utf16be.yaml",
        Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, "utf16le").swap16()]),
        "utf-16be",
        true,
      ],
    ];
    for (const [name, bytes, encoding, bom] of variants) {
      const path = join(tmp, name);
      await writeFile(path, bytes);
      const source = await readManifestSource(path);
      assert.equal(source.text, text, name);
      assert.equal(source.encoding, encoding);
      assert.equal(source.bom, bom);
      const [u] = await readImageUses([path]);
      assert.equal(u?.image, "bom-image");
      assert.deepEqual(u?.position, { file: path, line: 5, column: 14 }, name);
    }
  });

  it("explains UTF-16 without a BOM as not text", () => {
    assert.throws(
      () => decodeManifestBytes(Buffer.from("kind: Pod\n", "utf16le"), "w.yaml"),
      (e) => e instanceof ManifestError && e.message === "w.yaml: not a text file (it contains NUL bytes)",
    );
    assert.throws(
      () => decodeManifestBytes(Buffer.from([0xff, 0xfe, 0x00, 0xd8]), "s.yaml"),
      (e) => e instanceof ManifestError && e.reason === "not a text file (it is not valid UTF-16LE)",
    );
  });

  it("stops at the first unreadable file of a directory, naming it", async () => {
    await rejectsWith(readImageUses([join(FIXTURES, "hostile")]), (e) => {
      assert.equal(e.file, join(FIXTURES, "hostile", "billion-laughs.yaml"));
      assert.match(e.reason, /excessive aliasing/);
    });
  });
});

describe("fixtures and examples", () => {
  it("reads every good fixture", async () => {
    const uses = await readImageUses([join(FIXTURES, "good")]);
    const files = [...new Set(uses.map((u) => u.file.slice(FIXTURES.length + 1)))];
    assert.deepEqual(files, [
      "good/all-kinds.yaml",
      "good/anchors.yaml",
      "good/deployment.json",
      "good/list.yaml",
    ]);
    assert.equal(uses.length, 17 + 9 + 2 + 4);
  });

  it("covers the README demo's cases in examples/", async () => {
    const examples = join(import.meta.dirname, "..", "..", "examples");
    const uses = await readImageUses([examples]);
    const rows = uses.map((u) => [
      u.file.slice(examples.length + 1),
      u.kind,
      u.containerType,
      u.container,
      u.image?.replace(/@sha256:[0-9a-f]{64}$/, "@sha256:…"),
      u.pullPolicy,
    ]);
    assert.deepEqual(rows, [
      [
        "airgap.yaml",
        "DaemonSet",
        "container",
        "agent",
        "registry.internal:5000/platform/node-agent:3.2.0@sha256:…",
        "Never",
      ],
      ["db.yaml", "StatefulSet", "initContainer", "fix-permissions", "busybox", null],
      ["db.yaml", "StatefulSet", "container", "postgres", "postgres:16.4", "Always"],
      ["db.yaml", "CronJob", "container", "pg-dump", "registry.example.com/tools/pg-backup:2.3", null],
      [
        "debug-pod.yaml",
        "Pod",
        "imageVolume",
        "fraud-model",
        "registry.example.com/ml/fraud-model:2024.06",
        "IfNotPresent",
      ],
      [
        "debug-pod.yaml",
        "Pod",
        "container",
        "checkout",
        "registry.example.com/shop/checkout:1.9.0",
        "IfNotPresent",
      ],
      ["debug-pod.yaml", "Pod", "ephemeralContainer", "debugger-x7k2p", "busybox:1.36", null],
      ["web.yaml", "Deployment", "container", "web", "nginx:latest", null],
      [
        "web.yaml",
        "Deployment",
        "container",
        "api",
        "ghcr.io/example/shop-api:2.7.1@sha256:…",
        "IfNotPresent",
      ],
    ]);
    // docs/cli/explain.md shows this position for examples/web.yaml.
    assert.deepEqual([uses[7]?.position.line, uses[7]?.position.column], [14, 18]);
  });
});
