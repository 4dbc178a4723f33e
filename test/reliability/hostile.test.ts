// The malicious corpus, end to end (the unit corpora in src/store/unpack/malicious.test.ts and
// src/manifests/hostile.test.ts check the parts; this checks the product as deployed):
//   - hostile layers pushed to a real registry and pulled with `kpull pull --unpack`: path traversal,
//     absolute names, symlink escapes (in one layer and across layers), hardlink escapes, whiteouts naming
//     the parent, a decompression bomb, a 2 MiB PAX header; refused with the right reason, nothing written
//     outside the snapshot (a sentinel directory beside the store), no snapshot of the layer left, the
//     store verifying clean. Device nodes and setuid files are contained: made inside the snapshot as root
//     (containerd's behaviour), turned into empty files / dropped when unpacking rootless;
//   - YAML bombs given to `kpull explain -f` and `kpull check` with the V8 heap capped at 96 MiB: refused
//     with the file named, in bounded time, without running out of memory;
//   - oversized and pathological manifests served by the registry (9 MiB, a declared 5 GB, 40,000 layers,
//     an index of 30,000 entries): typed errors, bounded time and memory;
//   - oversized and pathological AdmissionReviews sent to the webhook's HTTPS server: 413 for what is over
//     the limit, a verdict or a 400 for the rest, the server alive and its heap bounded afterwards.

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import {
  AdmissionHandler,
  AdmissionMetrics,
  AdmissionServer,
  defaultPolicy,
} from "../../src/admission/index.ts";
import { Store } from "../../src/store/index.ts";
import { type Entry, header, tar } from "../../src/store/unpack/testkit.ts";
import { admissionReview, h1Request } from "../admission-helpers.ts";
import { makeTlsMaterial } from "../harness/certs.ts";
import { startFaultProxy } from "../harness/faults.ts";
import { MEDIA, seedImage, sha256, type TestBlob, type TestImage, useRegistry } from "../harness/index.ts";
import { FULL, kpull, record, tempDir } from "./common.ts";

/** An image from raw layer tars (gzip-compressed here), with DiffIDs as given or computed. */
function imageOf(tars: Buffer[], diffIds?: string[]): TestImage {
  const blob = (mediaType: string, bytes: Buffer): TestBlob => ({ digest: sha256(bytes), mediaType, bytes });
  const layers = tars.map((t) => blob(MEDIA.ociLayerGzip, gzipSync(t)));
  const config = blob(
    MEDIA.ociConfig,
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: diffIds ?? tars.map((t) => sha256(t)) },
      }),
    ),
  );
  const desc = (b: TestBlob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.bytes.length });
  const manifest = blob(
    MEDIA.ociManifest,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: desc(config),
        layers: layers.map(desc),
      }),
    ),
  );
  return { config, layers, manifest };
}

/** A gzip layer holding one file of `size` zero bytes, with a made-up DiffID (the bomb is refused first). */
function zeroBomb(size: number): TestImage {
  const head = header({ name: "zeros", flag: "0", size });
  const gz = gzipSync(Buffer.concat([head, Buffer.alloc(size), Buffer.alloc(1024)]), { level: 9 });
  const layer = { digest: sha256(gz), mediaType: MEDIA.ociLayerGzip, bytes: gz };
  const img = imageOf([Buffer.alloc(0)], [sha256(Buffer.from("bomb"))]);
  const desc = (b: TestBlob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.bytes.length });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: desc(img.config),
      layers: [desc(layer)],
    }),
  );
  return {
    config: img.config,
    layers: [layer],
    manifest: { digest: sha256(manifest), mediaType: MEDIA.ociManifest, bytes: manifest },
  };
}

const sentinelDir = mkdtempSync(join(tempDir("sentinel-parent"), "sentinel-"));
writeFileSync(join(sentinelDir, "secret"), "do not touch\n");
const up = "../".repeat(30);
const f = (name: string, body = "pwned\n"): Entry => ({ name, body });

interface LayerCase {
  readonly id: string;
  readonly threat: string;
  readonly image: () => TestImage;
  /** refused with this UnpackError reason, or contained (unpacked, nothing outside) */
  readonly expect: { refused: string } | { contained: (rootfs: string) => void };
  readonly fast?: boolean;
}

const LAYERS: readonly LayerCase[] = [
  {
    id: "path-traversal",
    threat: "entry name climbing out with ../",
    image: () => imageOf([tar([f("ok.txt"), f(`${up}${sentinelDir.slice(1)}/pwned`)])]),
    expect: { refused: "path-escape" },
    fast: true,
  },
  {
    id: "absolute-name",
    threat: "absolute entry name",
    image: () => imageOf([tar([f(`${sentinelDir}/pwned`)])]),
    expect: { refused: "path-escape" },
  },
  {
    id: "symlink-same-layer",
    threat: "symlink to outside, then a file written through it (one layer)",
    image: () => imageOf([tar([{ name: "evil", type: "symlink", linkname: sentinelDir }, f("evil/pwned")])]),
    expect: { refused: "symlink-escape" },
    fast: true,
  },
  {
    id: "symlink-across-layers",
    threat: "relative symlink climbing out in one layer, written through in the next",
    image: () =>
      imageOf([
        tar([{ name: "evil", type: "symlink", linkname: `${up}${sentinelDir.slice(1)}` }]),
        tar([f("evil/pwned")]),
      ]),
    expect: { refused: "symlink-escape" },
  },
  {
    id: "hardlink-escape",
    threat: "hardlink to a file outside",
    image: () => imageOf([tar([{ name: "h", type: "hardlink", linkname: `${sentinelDir}/secret` }])]),
    expect: { refused: "hardlink-escape" },
  },
  {
    id: "hardlink-relative",
    threat: "hardlink climbing out with ../",
    image: () =>
      imageOf([tar([{ name: "h", type: "hardlink", linkname: `${up}${sentinelDir.slice(1)}/secret` }])]),
    expect: { refused: "hardlink-escape" },
  },
  {
    id: "whiteout-parent",
    threat: "whiteout naming the parent directory (.wh..)",
    image: () => imageOf([tar([f("a/keep")]), tar([f("a/.wh..", "")])]),
    expect: { refused: "invalid-whiteout" },
  },
  {
    id: "decompression-bomb",
    threat: "gzip bomb: 128 MiB of zeros in ~130 KB",
    image: () => zeroBomb(128 << 20),
    expect: { refused: "bomb" },
    fast: true,
  },
  {
    id: "huge-pax-header",
    threat: "a 2 MiB PAX path record",
    image: () => imageOf([tar([{ name: "x", body: "", pax: { path: "p".repeat(2 << 20) } }])]),
    expect: { refused: "bad-archive" },
  },
  {
    id: "device-nodes",
    threat: "character and block device nodes (/dev/mem, /dev/sda)",
    image: () =>
      imageOf([
        tar([
          { name: "dev/", type: "dir" },
          { name: "dev/mem", type: "char", devmajor: 1, devminor: 1 },
          { name: "dev/sda", type: "block", devmajor: 8, devminor: 0 },
        ]),
      ]),
    expect: {
      contained: (rootfs) => {
        // As root, containerd's behaviour: the nodes exist inside the snapshot, nowhere else.
        assert.ok(statSync(join(rootfs, "dev", "mem")).isCharacterDevice());
        assert.ok(statSync(join(rootfs, "dev", "sda")).isBlockDevice());
      },
    },
  },
  {
    id: "setuid",
    threat: "setuid and setgid root binaries",
    image: () =>
      imageOf([
        tar([
          { name: "bin/", type: "dir" },
          { name: "bin/su", body: "#!/bin/sh\n", mode: 0o4755 },
          { name: "bin/sg", body: "#!/bin/sh\n", mode: 0o2755 },
        ]),
      ]),
    expect: {
      contained: (rootfs) => {
        // As root the bits stay (containerd keeps them too); the files exist only inside the snapshot.
        assert.equal(statSync(join(rootfs, "bin", "su")).mode & 0o7777, 0o4755);
        assert.equal(statSync(join(rootfs, "bin", "sg")).mode & 0o7777, 0o2755);
      },
    },
  },
];

function sentinelUntouched(): void {
  assert.deepEqual(readdirSync(sentinelDir), ["secret"], "something was written into the sentinel directory");
  assert.equal(readFileSync(join(sentinelDir, "secret"), "utf8"), "do not touch\n");
}

describe("malicious layers pulled and unpacked with kpull", { timeout: 300_000 }, () => {
  const registry = useRegistry();

  for (const c of LAYERS) {
    it(`${c.id}: ${c.threat}`, {
      skip: !FULL && !c.fast ? "in npm run test:reliability" : false,
    }, async () => {
      const r = registry();
      const img = c.image();
      await seedImage(r, `rel/hostile-${c.id}`, "v1", img);
      const ref = `${r.host}/rel/hostile-${c.id}:v1`;
      const root = tempDir(`hostile-${c.id}`);
      const started = performance.now();
      const run = await kpull(["pull", "--unpack", "-o", "json", ref], { root, insecure: r.host });
      const ms = Math.round(performance.now() - started);
      sentinelUntouched();
      const store = await Store.open(root);
      const verify = await store.verify();
      assert.equal(verify.clean, true, "the pulled content verifies");
      const snapshots = readdirSync(join(root, "kpull", "snapshots")).filter((n) => !n.startsWith(".tmp-"));
      let observed: string;
      if ("refused" in c.expect) {
        assert.notEqual(run.code, 0, `${c.id}: unpacked: ${run.stdout}`);
        // The library says why, with the reason code.
        const e = await store.unpack(ref).then(
          () => assert.fail("unpacked"),
          (error: unknown) => error as { reason?: string; message: string },
        );
        assert.equal(e.reason, c.expect.refused, e.message);
        assert.ok(run.stderr.includes(e.message.split("\n")[0]?.slice(0, 40) ?? "?"), run.stderr);
        const layers = img.layers.length;
        assert.ok(
          snapshots.length < layers,
          `${c.id}: no snapshot of the refused layer (${snapshots.length})`,
        );
        observed = `refused: ${e.reason}`;
      } else {
        assert.equal(run.code, 0, run.stderr);
        const rootfs = (JSON.parse(run.stdout) as { unpacked: { rootfs: string } }).unpacked.rootfs;
        c.expect.contained(rootfs);
        observed = "made inside the snapshot only (as root, like containerd)";
        if (c.id === "device-nodes") {
          // Unpacked without ownership (rootless), the same layer's devices become empty files.
          const rootless = tempDir(`hostile-${c.id}-rootless`);
          assert.equal((await kpull(["pull", ref], { root: rootless, insecure: r.host })).code, 0);
          const warnings: string[] = [];
          await (await Store.open(rootless)).unpack(ref, {
            apply: { sameOwner: false },
            onWarning: (w) => warnings.push(w.kind),
          });
          assert.ok(warnings.includes("device"), `rootless warnings: ${warnings.join(", ")}`);
          observed += "; rootless: empty files, with a warning";
        }
      }
      sentinelUntouched();
      record("hostile", { class: "layer", id: c.id, threat: c.threat, observed, ms, survived: true });
    });
  }
});

describe("YAML bombs given to kpull explain and kpull check (V8 heap capped at 96 MiB)", {
  timeout: 120_000,
}, () => {
  const dir = tempDir("yaml-bombs");
  const laughs = (levels: number, width: number) => {
    const lines = ["l0: &l0 lol"];
    for (let i = 1; i <= levels; i++)
      lines.push(
        `l${i}: &l${i} [${Array(width)
          .fill(`*l${i - 1}`)
          .join(", ")}]`,
      );
    return `${lines.join("\n")}\nkind: Pod\nspec: {containers: [{image: *l0}]}\n`;
  };
  const fixtures = join(import.meta.dirname, "..", "fixtures", "manifests", "hostile");
  const BOMBS: { id: string; text: () => string; message: RegExp; fast?: boolean }[] = [
    { id: "billion-laughs", text: () => laughs(9, 10), message: /excessive aliasing/, fast: true },
    {
      id: "merge-key-laughs",
      text: () => readFileSync(join(fixtures, "billion-laughs.yaml"), "utf8"),
      message: /excessive aliasing/,
    },
    {
      id: "list-bomb",
      text: () => readFileSync(join(fixtures, "list-bomb.yaml"), "utf8"),
      message: /too many aliases/,
    },
    { id: "deep-nesting", text: () => "[".repeat(200_000), message: /nested too deeply/ },
    {
      id: "deep-nesting-16MiB",
      text: () => "[".repeat(16 * 1024 * 1024 - 8),
      message: /nested too deeply/,
      fast: true,
    },
    { id: "block-sequence-nesting", text: () => "- ".repeat(2_000_000), message: /nested too deeply/ },
    { id: "explicit-key-nesting", text: () => "? ".repeat(2_000_000), message: /nested too deeply/ },
    {
      id: "deep-maps",
      text: () => `${"{a: ".repeat(100_000)}1${"}".repeat(100_000)}`,
      message: /nested too deeply/,
    },
    { id: "17-MiB-file", text: () => `# ${"x".repeat(17 << 20)}\n`, message: /larger than the limit/ },
    {
      id: "cyclic-merge",
      text: () => readFileSync(join(fixtures, "cyclic-merge.yaml"), "utf8"),
      message: /./,
    },
  ];
  for (const bomb of BOMBS) {
    it(`${bomb.id}: refused with the file named, in bounded time and memory`, {
      skip: !FULL && !bomb.fast ? "in npm run test:reliability" : false,
    }, async () => {
      const file = join(dir, `${bomb.id}.yaml`);
      writeFileSync(file, bomb.text());
      for (const command of [
        ["explain", "-f", file, "-o", "json"],
        ["check", file],
      ]) {
        const started = performance.now();
        const run = await kpull(command, { env: { NODE_OPTIONS: "--max-old-space-size=96" } });
        const ms = Math.round(performance.now() - started);
        assert.equal(run.code, 2, `${command[0]} ${bomb.id}: exit ${run.code}: ${run.stderr.slice(0, 300)}`);
        assert.match(run.stderr, bomb.message);
        assert.ok(run.stderr.includes(`${bomb.id}.yaml`), run.stderr);
        assert.ok(ms < 10_000, `${ms} ms`);
        record("hostile", {
          class: "yaml",
          id: bomb.id,
          command: command[0],
          observed: run.stderr.trim().slice(0, 160),
          ms,
          survived: true,
        });
      }
    });
  }
});

describe("oversized and pathological manifests from the registry", { timeout: 120_000 }, () => {
  const registry = useRegistry();
  const digestOf = (i: number) => `sha256:${sha256(Buffer.from(String(i))).slice(7)}`;
  const CASES: {
    id: string;
    body: () => Buffer;
    mediaType: string;
    declared?: string;
    code: RegExp;
    fast?: boolean;
  }[] = [
    {
      id: "manifest-9MiB",
      mediaType: MEDIA.ociManifest,
      body: () =>
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MEDIA.ociManifest,
            config: { mediaType: MEDIA.ociConfig, digest: digestOf(0), size: 2 },
            layers: [],
            annotations: { pad: "x".repeat(9 << 20) },
          }),
        ),
      code: /more than the 8388608-byte limit|larger than 8388608/,
      fast: true,
    },
    {
      id: "declared-5GB",
      mediaType: MEDIA.ociManifest,
      body: () => Buffer.from("{}"),
      declared: "5000000000",
      code: /5000000000 bytes/,
    },
    {
      id: "40000-layers",
      mediaType: MEDIA.ociManifest,
      body: () =>
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: MEDIA.ociManifest,
            config: { mediaType: MEDIA.ociConfig, digest: digestOf(0), size: 2 },
            layers: Array.from({ length: 40_000 }, (_, i) => ({
              mediaType: MEDIA.ociLayerGzip,
              digest: digestOf(i + 1),
              size: 10,
            })),
          }),
        ),
      code: /./,
    },
    {
      id: "index-30000-entries",
      mediaType: "application/vnd.oci.image.index.v1+json",
      body: () =>
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: "application/vnd.oci.image.index.v1+json",
            manifests: Array.from({ length: 30_000 }, (_, i) => ({
              mediaType: MEDIA.ociManifest,
              digest: digestOf(i),
              size: 100,
              platform: { os: "plan9", architecture: `arch${i}` },
            })),
          }),
        ),
      code: /no matching manifest/,
    },
  ];
  for (const c of CASES) {
    it(`${c.id}: a typed error in bounded time and memory`, {
      skip: !FULL && !c.fast ? "in npm run test:reliability" : false,
    }, async () => {
      const r = registry();
      const body = c.body();
      const digest = sha256(body);
      const proxy = await startFaultProxy(r, (req) =>
        /\/manifests\//.test(req.path)
          ? {
              kind: "respond",
              status: 200,
              headers: {
                "content-type": c.mediaType,
                "docker-content-digest": digest,
                ...(c.declared ? { "content-length": c.declared } : {}),
              },
              body: c.declared ? Buffer.alloc(0) : body,
            }
          : {
              kind: "respond",
              status: 404,
              body: '{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}',
            },
      );
      try {
        const root = tempDir(`hostile-${c.id}`);
        const started = performance.now();
        const run = await kpull(["pull", "-o", "json", `${proxy.host}/rel/hostile:v1`], {
          root,
          insecure: proxy.host,
          env: { NODE_OPTIONS: "--max-old-space-size=160" },
        });
        const ms = Math.round(performance.now() - started);
        assert.equal(run.code, 1, `${c.id}: ${run.stdout.slice(0, 300)}${run.stderr.slice(0, 300)}`);
        const out = JSON.parse(run.stdout) as { code: string; message: string };
        assert.equal(out.code, "ErrImagePull");
        assert.match(out.message, c.code);
        assert.ok(ms < 20_000, `${ms} ms`);
        assert.equal((await kpull(["verify"], { root })).code, 0);
        record("hostile", {
          class: "manifest",
          id: c.id,
          observed: out.message.slice(0, 160),
          ms,
          survived: true,
        });
      } finally {
        await proxy.stop();
      }
    });
  }
});

describe("oversized and pathological AdmissionReviews sent to the webhook", { timeout: 120_000 }, () => {
  const dir = tempDir("hostile-admission");
  const tls = makeTlsMaterial(mkdtempSync(join(dir, "tls-")));
  const metrics = new AdmissionMetrics();
  let server: AdmissionServer;
  let origin: string;
  before(async () => {
    server = await AdmissionServer.start({
      handler: new AdmissionHandler({ policy: defaultPolicy(), metrics }),
      metrics,
      certFile: tls.certFile,
      keyFile: tls.keyFile,
      port: 0,
      host: "127.0.0.1",
    });
    origin = `https://127.0.0.1:${server.port}`;
  });
  after(async () => {
    await server?.shutdown();
  });

  const pod = (containers: unknown[], extra: Record<string, unknown> = {}) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "big", namespace: "shop", ...extra },
    spec: { containers },
  });
  const CASES: { id: string; body: () => string; status: number[] }[] = [
    {
      id: "10-MiB-body",
      body: () =>
        JSON.stringify(admissionReview({ object: pod([{ name: "a", image: "x".repeat(10 << 20) }]) }).body),
      status: [413],
    },
    {
      id: "30000-containers",
      body: () =>
        JSON.stringify(
          admissionReview({
            object: pod(
              Array.from({ length: 30_000 }, (_, i) => ({
                name: `c${i}`,
                image: `registry.example.com/app${i % 50}:v${i}`,
              })),
            ),
          }).body,
        ),
      status: [200],
    },
    {
      id: "json-nested-1M-deep",
      body: () => `${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}`,
      status: [400],
    },
    {
      id: "100000-annotations",
      body: () =>
        JSON.stringify(
          admissionReview({
            object: pod([{ name: "a", image: "nginx:1.27" }], {
              annotations: Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, `v${i}`])),
            }),
          }).body,
        ),
      status: [200],
    },
    {
      id: "1-MiB-image-string",
      body: () =>
        JSON.stringify(admissionReview({ object: pod([{ name: "a", image: "a".repeat(1 << 20) }]) }).body),
      status: [200],
    },
  ];
  for (const c of CASES) {
    it(`${c.id}: answered (${c.status.join("/")}) and the server keeps serving`, async () => {
      const body = c.body();
      const started = performance.now();
      const answer = await h1Request(`${origin}/validate?timeout=10s`, body, {
        ca: tls.caPem,
        timeoutMs: 20_000,
      });
      const ms = Math.round(performance.now() - started);
      assert.ok(c.status.includes(answer.status), `${c.id}: ${answer.status} ${answer.text.slice(0, 200)}`);
      if (answer.status === 200) {
        const review = JSON.parse(answer.text) as {
          response: { allowed: boolean; status?: { reason?: string } };
        };
        assert.notEqual(review.response.status?.reason, "InternalError");
      }
      const health = await h1Request(`${origin}/healthz`, null, { ca: tls.caPem });
      assert.equal(health.status, 200);
      assert.ok(ms < 15_000, `${ms} ms`);
      const heap = Math.round(process.memoryUsage().heapUsed / 1048576);
      record("hostile", {
        class: "admission",
        id: c.id,
        observed: `HTTP ${answer.status}`,
        ms,
        heapMB: heap,
        survived: true,
      });
    });
  }
});
