// Property and fuzz tests (fast-check) of every parser that reads untrusted input: the image reference
// grammar, the Kubernetes manifest reader, the registry's JSON and header decoding, the tar applier, and the
// AdmissionReview handler. Each gets structured inputs (shaped like the real thing, then bent) and raw
// ones. The properties: it answers or refuses with its own typed error, never anything else; a result
// holds its invariants; no input takes more than 5 s (a hang; inputs take milliseconds); and the heap, measured after a full GC
// between slices of the run, does not grow (unbounded memory).
//
// `npm test` runs a few thousand inputs; KPULL_RELIABILITY=full runs over 1,000,000 in all.

import assert from "node:assert/strict";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { AdmissionHandler, defaultPolicy } from "../../src/admission/index.ts";
import { imageUsesFromText, ManifestError } from "../../src/manifests/index.ts";
import {
  formatReference,
  InvalidReferenceError,
  parseAnyReference,
  parseDockerRef,
  parseNormalizedNamed,
} from "../../src/reference/index.ts";
import { pickChallenge } from "../../src/registry/challenge.ts";
import { errorFromResponse } from "../../src/registry/errors.ts";
import { parseRetryAfter } from "../../src/registry/http.ts";
import { parseManifestJson, RegistryError } from "../../src/registry/index.ts";
import { applyLayer, isUnpackError } from "../../src/store/unpack/index.ts";
import {
  type Entry,
  gzip,
  type Sandbox,
  sandbox,
  sha256,
  streamOf,
  tar,
} from "../../src/store/unpack/testkit.ts";
import { FULL, record } from "./common.ts";

setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as () => void;

const RUNS = {
  reference: FULL ? 450_000 : 3000,
  manifests: FULL ? 150_000 : 800,
  registry: FULL ? 300_000 : 2000,
  tar: FULL ? 30_000 : 150,
  admission: FULL ? 150_000 : 800,
};
const SLICES = FULL ? 10 : 2;
/** Longer than this for one input is a hang (generous: this machine is shared and has 2 cores). */
const HANG_MS = 5000;
/** Heap growth allowed from the first slice to the last (fast-check itself keeps a little). */
const HEAP_SLACK = 48 * 1024 * 1024;

interface Stats {
  inputs: number;
  maxMs: number;
  slowest: string;
  heap: number[];
  refused: number;
}

/** Runs `property` over `runs` inputs in slices, with a full GC and a heap reading between slices. */
async function run<T>(
  name: string,
  arb: fc.Arbitrary<T>,
  check: (input: T) => Promise<"ok" | "refused"> | "ok" | "refused",
  runs: number,
): Promise<Stats> {
  const stats: Stats = { inputs: 0, maxMs: 0, slowest: "", heap: [], refused: 0 };
  const per = Math.ceil(runs / SLICES);
  for (let slice = 0; slice < SLICES; slice++) {
    await fc.assert(
      fc.asyncProperty(arb, async (input) => {
        const started = performance.now();
        const outcome = await check(input);
        const ms = performance.now() - started;
        stats.inputs++;
        if (outcome === "refused") stats.refused++;
        if (ms > stats.maxMs) {
          stats.maxMs = ms;
          stats.slowest = JSON.stringify(input)?.slice(0, 200) ?? "";
        }
        assert.ok(ms < HANG_MS, `${name}: one input took ${Math.round(ms)} ms: ${stats.slowest}`);
      }),
      { numRuns: per, seed: FULL ? undefined : 20_261_129 + slice, endOnFailure: true },
    );
    collect();
    stats.heap.push(process.memoryUsage().heapUsed);
  }
  const growth = (stats.heap.at(-1) as number) - (stats.heap[0] as number);
  record("fuzz", {
    target: name,
    inputs: stats.inputs,
    refused: stats.refused,
    crashes: 0,
    hangs: 0,
    maxMs: Math.round(stats.maxMs * 10) / 10,
    heapFirstMB: Math.round((stats.heap[0] as number) / 1048576),
    heapLastMB: Math.round((stats.heap.at(-1) as number) / 1048576),
  });
  assert.ok(growth < HEAP_SLACK, `${name}: heap grew by ${Math.round(growth / 1048576)} MiB`);
  return stats;
}

// ---- generators ---------------------------------------------------------------------------------------

const HEX = "0123456789abcdef";
const hex64 = fc.string({ unit: fc.constantFrom(...HEX.split("")), minLength: 64, maxLength: 64 });
const digest = hex64.map((h) => `sha256:${h}`);

/** Pieces of image references, glued at random: mostly near-valid, often not. */
const refToken = fc.oneof(
  fc.constantFrom(
    "docker.io",
    "registry.example.com",
    "localhost",
    "LOCALHOST",
    "127.0.0.1",
    "[::1]",
    "[fe80::1%eth0]",
    ":5000",
    ":",
    "/",
    "//",
    "@",
    "library",
    "nginx",
    "team/app",
    "a",
    "A",
    "_",
    "__",
    "-",
    "--",
    ".",
    "..",
    "latest",
    "v1.2.3",
    "sha256:",
    "sha512:",
    "@sha256:",
    "é",
    "\u0000",
    " ",
    "\n",
    "%2F",
  ),
  digest,
  fc.string({ maxLength: 8 }),
  fc.nat(300).map((n) => "a".repeat(n)),
);
/** Well-formed references (so the success paths get as much traffic as the refusals). */
const component = fc.stringMatching(/^[a-z0-9]{1,8}(?:(?:[._]|__|-+)[a-z0-9]{1,8}){0,2}$/);
const validRef = fc
  .record({
    domain: fc.option(
      fc.constantFrom("docker.io", "registry.example.com:5000", "localhost", "[::1]:5000", "ghcr.io"),
      {
        nil: undefined,
      },
    ),
    path: fc.array(component, { minLength: 1, maxLength: 4 }),
    tag: fc.option(fc.stringMatching(/^[\w][\w.-]{0,20}$/), { nil: undefined }),
    digest: fc.option(digest, { nil: undefined }),
  })
  .map(
    ({ domain, path, tag, digest }) =>
      `${domain ? `${domain}/` : ""}${path.join("/")}${tag ? `:${tag}` : ""}${digest ? `@${digest}` : ""}`,
  );
const imageString = fc.oneof(
  { weight: 3, arbitrary: validRef },
  { weight: 3, arbitrary: fc.array(refToken, { maxLength: 12 }).map((t) => t.join("")) },
  { weight: 1, arbitrary: fc.string({ maxLength: 300 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 300 }) },
);

/** YAML and manifest fragments, glued at random (after the manifests module's own hostile test). */
const yamlToken = fc.oneof(
  fc.constantFrom(
    "apiVersion: v1\n",
    "kind: Pod\n",
    "kind: List\n",
    "kind: Deployment\n",
    "kind: CronJob\n",
    "items:\n",
    "metadata:\n  name: x\n",
    "spec:\n",
    "  template:\n",
    "  containers:\n",
    "  initContainers:\n",
    "    - name: c\n",
    "      image: ",
    "      imagePullPolicy: ",
    "Always\n",
    "IfNotPresent\n",
    "- ",
    "  ",
    "&a ",
    "*a",
    "<<: ",
    "<<: *a\n",
    "[",
    "]",
    "{",
    "}",
    ": ",
    ", ",
    "\n",
    "---\n",
    "...\n",
    "#",
    "'",
    '"',
    "!!str ",
    "!!binary ",
    "!x ",
    "|\n",
    ">-\n",
    "? ",
    "%YAML 1.2\n",
    "\t",
    "\u00a0",
    "\ufeff",
  ),
  imageString.map((s) => `${JSON.stringify(s)}\n`),
  fc.string({ maxLength: 6 }),
);
const manifestText = fc.oneof(
  { weight: 3, arbitrary: fc.array(yamlToken, { maxLength: 40 }).map((t) => t.join("")) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        kind: fc.constantFrom("Pod", "Deployment", "Job", "CronJob", "List", "StatefulSet", "Secret", "X"),
        images: fc.array(imageString, { maxLength: 4 }),
        policy: fc.constantFrom("Always", "IfNotPresent", "Never", "", "always", null),
        extra: fc.jsonValue({ maxDepth: 3 }),
      })
      .map(({ kind, images, policy, extra }) =>
        JSON.stringify({
          apiVersion: "v1",
          kind,
          metadata: { name: "fuzz" },
          spec: {
            template: {
              spec: {
                containers: images.map((image, i) => ({ name: `c${i}`, image, imagePullPolicy: policy })),
              },
            },
            containers: images.map((image, i) => ({ name: `c${i}`, image })),
            extra,
          },
        }),
      ),
  },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 400 }) },
);

const MEDIA_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
  "application/vnd.oci.image.layer.v1.tar+gzip",
  "application/json",
  "",
  "text/html",
];
const anyJson = fc.jsonValue({ maxDepth: 4 });
const descriptor = fc.record(
  {
    mediaType: fc.oneof(fc.constantFrom(...MEDIA_TYPES), anyJson),
    digest: fc.oneof(digest, fc.constantFrom("sha256:", "sha256:xyz", "md5:00", ""), anyJson),
    size: fc.oneof(fc.nat(), fc.constantFrom(-1, 1.5, 2 ** 60, Number.MAX_SAFE_INTEGER), anyJson),
    platform: fc.record({ os: fc.string(), architecture: fc.string() }, { requiredKeys: [] }),
    annotations: fc.dictionary(fc.string(), fc.string()),
    urls: fc.array(fc.string()),
  },
  { requiredKeys: [] },
);
const manifestDoc = fc.record(
  {
    schemaVersion: fc.oneof(fc.constantFrom(2, 1, "2", 3, null), anyJson),
    mediaType: fc.oneof(fc.constantFrom(...MEDIA_TYPES), anyJson),
    config: fc.oneof(descriptor, anyJson),
    layers: fc.oneof(fc.array(descriptor, { maxLength: 6 }), anyJson),
    manifests: fc.oneof(fc.array(descriptor, { maxLength: 6 }), anyJson),
    fsLayers: anyJson,
    annotations: fc.dictionary(fc.string(), fc.string()),
  },
  { requiredKeys: [] },
);
/** Well-formed manifests and indexes, sometimes with one field bent. */
const goodDescriptor = fc.record({
  mediaType: fc.constantFrom(...MEDIA_TYPES.slice(0, 6)),
  digest,
  size: fc.nat(),
});
const goodManifest = fc.oneof(
  fc.record({
    schemaVersion: fc.constant(2),
    mediaType: fc.constant("application/vnd.oci.image.manifest.v1+json"),
    config: goodDescriptor,
    layers: fc.array(goodDescriptor, { maxLength: 6 }),
  }),
  fc.record({
    schemaVersion: fc.constant(2),
    mediaType: fc.constant("application/vnd.oci.image.index.v1+json"),
    manifests: fc.array(
      fc.record({
        mediaType: fc.constant("application/vnd.oci.image.manifest.v1+json"),
        digest,
        size: fc.nat(),
        platform: fc.record({
          os: fc.constantFrom("linux", "windows"),
          architecture: fc.constantFrom("amd64", "arm64"),
        }),
      }),
      { maxLength: 6 },
    ),
  }),
);
const bentManifest = fc
  .tuple(
    goodManifest,
    fc.constantFrom("schemaVersion", "mediaType", "config", "layers", "manifests"),
    anyJson,
  )
  .map(([doc, key, junk]) => ({ ...doc, [key]: junk }));
const registryInput = fc.record({
  body: fc.oneof(
    { weight: 3, arbitrary: goodManifest.map((d) => Buffer.from(JSON.stringify(d))) },
    { weight: 2, arbitrary: bentManifest.map((d) => Buffer.from(JSON.stringify(d))) },
    { weight: 3, arbitrary: manifestDoc.map((d) => Buffer.from(JSON.stringify(d))) },
    { weight: 1, arbitrary: anyJson.map((d) => Buffer.from(JSON.stringify(d) ?? "null")) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) },
  ),
  contentType: fc.oneof(
    { weight: 3, arbitrary: fc.constant("") },
    { weight: 2, arbitrary: fc.constantFrom(...MEDIA_TYPES) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  ),
  status: fc.integer({ min: 100, max: 599 }),
  challenge: fc.array(
    fc.oneof(
      fc
        .record({
          scheme: fc.constantFrom("Bearer", "Basic", "bearer", "Digest", "", "Bearer  "),
          params: fc.array(
            fc.tuple(
              fc.constantFrom("realm", "service", "scope", "error", "x", ""),
              fc.string({ maxLength: 30 }),
            ),
            { maxLength: 5 },
          ),
          quote: fc.boolean(),
        })
        .map(
          ({ scheme, params, quote }) =>
            `${scheme} ${params.map(([k, v]) => `${k}=${quote ? JSON.stringify(v) : v}`).join(",")}`,
        ),
      fc.string({ maxLength: 80 }),
    ),
    { maxLength: 3 },
  ),
  retryAfter: fc.oneof(
    fc.nat().map(String),
    fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()),
    fc.string({ maxLength: 30 }),
  ),
});

/** Tar entries aimed at the applier's guards: escapes, links, devices, whiteouts, long names, PAX. */
const tarName = fc.oneof(
  fc.constantFrom(
    "a",
    "a/b",
    "a/b/c",
    "./a",
    "a/",
    "../x",
    "../../sentinel/secret",
    "/abs",
    "a/../../x",
    "a/./b",
    ".",
    "./",
    "..",
    ".wh.a",
    "a/.wh.b",
    ".wh..wh..opq",
    "a/.wh..wh..opq",
    ".wh.",
    ".wh..",
    "link",
    "link/x",
    "dir/link/y",
    "é/ü",
  ),
  fc.string({ maxLength: 12 }).map((s) => s.split(String.fromCharCode(0)).join("")),
  fc.nat({ max: 40 }).map((n) => `${"d/".repeat(n)}f`),
  fc.nat({ max: 300 }).map((n) => "x".repeat(n + 1)),
);
const tarEntry: fc.Arbitrary<Entry> = fc.record(
  {
    name: tarName,
    type: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom("file", "dir", "symlink", "hardlink") },
      {
        weight: 1,
        arbitrary: fc.constantFrom("char", "block", "fifo", "x", "g", "L", "K", "S", "V", "7", "\u0000"),
      },
    ),
    body: fc.oneof(fc.constant(""), fc.string({ maxLength: 64 })),
    linkname: fc.oneof(tarName, fc.constantFrom("/", "/etc/passwd", "..", "../..", "../../../sentinel")),
    mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o2755, 0o1777, 0o000, 0o7777),
    uid: fc.constantFrom(0, 1000, 65534, 2 ** 21),
    devmajor: fc.nat(300),
    devminor: fc.nat(300),
    pax: fc.dictionary(
      fc.constantFrom(
        "path",
        "linkpath",
        "size",
        "uid",
        "mtime",
        "SCHILY.xattr.user.x",
        "LIBARCHIVE.xattr.y",
        "comment",
      ),
      fc.string({ maxLength: 40 }),
      { maxKeys: 2 },
    ),
    size: fc.oneof(fc.constant(undefined), fc.nat(2000)),
  },
  { requiredKeys: ["name", "type"] },
) as fc.Arbitrary<Entry>;
/** Entries a well-behaved image has: files and directories under safe names. */
const plainEntry: fc.Arbitrary<Entry> = fc.record({
  name: fc.constantFrom("etc/", "etc/hosts", "usr/bin/tool", "var/lib/x", "a", "b/c", "b/"),
  type: fc.constantFrom("file", "dir"),
  body: fc.string({ maxLength: 200 }),
  mode: fc.constantFrom(0o644, 0o755, 0o600),
}) as fc.Arbitrary<Entry>;
const layerInput = fc.record({
  entries: fc.array(fc.oneof({ weight: 2, arbitrary: plainEntry }, { weight: 1, arbitrary: tarEntry }), {
    maxLength: 8,
  }),
  mutate: fc.oneof(
    { weight: 3, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.record({ at: fc.nat(), byte: fc.nat(255) }) },
    { weight: 1, arbitrary: fc.record({ truncate: fc.nat() }) },
  ),
  compress: fc.boolean(),
  end: fc.boolean(),
});

/** AdmissionReviews: well formed around random pod specs, with fields bent or missing, or raw text. */
const KINDS = [
  "Pod",
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "Job",
  "CronJob",
  "ReplicaSet",
  "Service",
  "X",
];
const container = fc.record(
  {
    name: fc.oneof(fc.string({ maxLength: 10 }), anyJson),
    image: fc.oneof(imageString, anyJson),
    imagePullPolicy: fc.oneof(fc.constantFrom("Always", "IfNotPresent", "Never", "", "bogus"), anyJson),
  },
  { requiredKeys: [] },
);
const podSpec = fc.record(
  {
    containers: fc.oneof(fc.array(container, { maxLength: 4 }), anyJson),
    initContainers: fc.array(container, { maxLength: 2 }),
    ephemeralContainers: fc.array(container, { maxLength: 2 }),
    volumes: fc.array(
      fc.record({
        name: fc.string(),
        image: fc.record({ reference: imageString, pullPolicy: fc.string() }, { requiredKeys: [] }),
      }),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);
const k8sObject = fc
  .record({
    kind: fc.constantFrom(...KINDS),
    spec: podSpec,
    annotations: fc.dictionary(
      fc.constantFrom("kpull/ignore", "kpull/mode", "kpull/ignore-rules", "x"),
      fc.string(),
    ),
    templated: fc.boolean(),
    cron: fc.boolean(),
  })
  .map(({ kind, spec, annotations, templated, cron }) => {
    const template = { metadata: { annotations }, spec };
    const body =
      kind === "Pod"
        ? spec
        : cron
          ? { jobTemplate: { spec: { template } } }
          : templated
            ? { template }
            : spec;
    return { apiVersion: "v1", kind, metadata: { name: "fuzz", namespace: "ns", annotations }, spec: body };
  });
const review = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .record(
        {
          uid: fc.oneof(fc.uuid(), fc.string({ maxLength: 10 }), anyJson),
          operation: fc.oneof(fc.constantFrom("CREATE", "UPDATE", "DELETE", "CONNECT", "create"), anyJson),
          object: fc.oneof(k8sObject, anyJson),
          oldObject: fc.oneof(k8sObject, anyJson),
          subResource: fc.constantFrom("", "status", "ephemeralcontainers", "exec"),
          namespace: fc.constantFrom("default", "kube-system", "", "ns"),
          kind: fc.constantFrom(...KINDS),
          dryRun: fc.oneof(fc.boolean(), anyJson),
        },
        { requiredKeys: ["uid", "object"] },
      )
      .map((r) => ({
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        request: {
          ...r,
          kind: { group: "", version: "v1", kind: r.kind },
          resource: { group: "", version: "v1", resource: `${String(r.kind).toLowerCase()}s` },
        },
      }))
      .map((doc) => JSON.stringify(doc)),
  },
  { weight: 1, arbitrary: anyJson.map((j) => JSON.stringify(j) ?? "") },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
);

// ---- the targets --------------------------------------------------------------------------------------

describe("fuzz: parsers of untrusted input", { timeout: FULL ? 7_200_000 : 120_000 }, () => {
  const totals: Record<string, number> = {};
  after(() => {
    const sum = Object.values(totals).reduce((a, b) => a + b, 0);
    record("fuzz-total", { ...totals, total: sum });
    if (FULL) console.log(`fuzz inputs: ${JSON.stringify(totals)}, total ${sum}`);
  });

  it("image references: parse, or InvalidReferenceError; results round-trip", async () => {
    const s = await run(
      "reference",
      imageString,
      (input) => {
        let refused = 0;
        for (const parseFn of [parseNormalizedNamed, parseDockerRef, parseAnyReference]) {
          try {
            const ref = parseFn(input);
            if (parseFn !== parseAnyReference && "path" in ref) {
              const text = formatReference(ref);
              assert.equal(
                formatReference(parseNormalizedNamed(text)),
                text,
                `round trip of ${JSON.stringify(input)}`,
              );
            }
          } catch (error) {
            if (!(error instanceof InvalidReferenceError)) throw error;
            refused++;
          }
        }
        return refused === 3 ? "refused" : "ok";
      },
      RUNS.reference,
    );
    totals.reference = s.inputs;
  });

  it("manifest reader: image uses, or a ManifestError naming the file", async () => {
    const s = await run(
      "manifests",
      manifestText,
      (text) => {
        try {
          const uses = imageUsesFromText(text, "fuzz.yaml");
          assert.ok(Array.isArray(uses));
          for (const u of uses) assert.equal(typeof u.image === "string" || u.image === null, true);
          return "ok";
        } catch (error) {
          if (!(error instanceof ManifestError)) throw error;
          assert.match(error.message, /^fuzz\.yaml/);
          return "refused";
        }
      },
      RUNS.manifests,
    );
    totals.manifests = s.inputs;
  });

  it("registry decoding: manifests and indexes, error bodies, auth challenges, Retry-After", async () => {
    const s = await run(
      "registry",
      registryInput,
      (input) => {
        let outcome: "ok" | "refused" = "ok";
        try {
          const doc = parseManifestJson(input.body, input.contentType, "fuzz");
          const d0 = doc as unknown as {
            manifests?: { digest: string; size: number }[];
            config?: { digest: string; size: number };
            layers?: { digest: string; size: number }[];
          };
          const descs = Array.isArray(d0.manifests)
            ? d0.manifests
            : [d0.config as { digest: string; size: number }, ...(d0.layers ?? [])];
          for (const d of descs) {
            assert.equal(typeof d.digest, "string");
            assert.ok(Number.isSafeInteger(d.size) && d.size >= 0);
          }
        } catch (error) {
          if (!(error instanceof RegistryError)) throw error;
          outcome = "refused";
        }
        const e = errorFromResponse(input.status, input.body, "http://r/v2/x", "fuzz", undefined);
        assert.ok(e instanceof RegistryError && /^[A-Z_0-9]+$/.test(e.code));
        assert.ok(e.message.length < 400, "error messages stay short");
        const c = pickChallenge(input.challenge);
        if (c !== null) assert.ok(c.scheme === "basic" || c.scheme === "bearer");
        const ms = parseRetryAfter(input.retryAfter, Date.now());
        if (ms !== undefined) assert.ok(ms >= 0 && !Number.isNaN(ms));
        return outcome;
      },
      RUNS.registry,
    );
    totals.registry = s.inputs;
  });

  let sb: Sandbox;
  before(async () => {
    sb = await sandbox();
  });
  after(async () => {
    await sb?.cleanup();
  });

  it("tar applier: applied, or an UnpackError; nothing outside the root changes", async () => {
    let n = 0;
    const s = await run(
      "tar",
      layerInput,
      async ({ entries, mutate, compress, end }) => {
        let bytes = tar(entries, { end });
        if (mutate !== null && "at" in mutate && bytes.length > 0) {
          bytes = Buffer.from(bytes);
          bytes[mutate.at % bytes.length] = mutate.byte;
        } else if (mutate !== null && "truncate" in mutate) {
          bytes = bytes.subarray(0, mutate.truncate % (bytes.length + 1));
        }
        const layer = compress ? gzip(bytes) : bytes;
        const root = join(sb.snapshots, `r${n++}`);
        await mkdir(root);
        let outcome: "ok" | "refused" = "ok";
        try {
          await applyLayer(root, streamOf(layer, 997), compress ? "gzip" : "none", sha256(bytes), {
            maxUncompressedBytes: 8 * 1024 * 1024,
          });
        } catch (error) {
          if (!isUnpackError(error)) throw error;
          outcome = "refused";
        } finally {
          await rm(root, { recursive: true, force: true });
        }
        if (n % 50 === 0) await sb.assertUntouched();
        return outcome;
      },
      RUNS.tar,
    );
    await sb.assertUntouched();
    assert.deepEqual(await readdir(sb.snapshots), []);
    totals.tar = s.inputs;
  });

  it("AdmissionReview handler: a 200 review echoing the uid, or a 400; never an internal error", async () => {
    const handlers = [
      new AdmissionHandler({ policy: defaultPolicy() }),
      new AdmissionHandler({
        policy: defaultPolicy({ mutation: "always-pull-images", action: "warn", imageVolumes: true }),
      }),
    ];
    const s = await run(
      "admission",
      fc.tuple(review, fc.constantFrom("validate" as const, "mutate" as const), fc.nat(1)),
      async ([text, endpoint, which]) => {
        const result = await (handlers[which] as AdmissionHandler).review(endpoint, text);
        if (result.status === 400) {
          assert.equal(typeof result.message, "string");
          return "refused";
        }
        assert.equal(result.status, 200);
        const response = result.review.response;
        assert.equal(typeof response.allowed, "boolean");
        assert.notEqual(response.status?.reason, "InternalError", response.status?.message);
        let sent: { request?: { uid?: unknown } } | null = null;
        try {
          sent = JSON.parse(text);
        } catch {
          sent = null;
        }
        if (typeof sent?.request?.uid === "string") assert.equal(response.uid, sent.request.uid);
        if (response.patch !== undefined) {
          const ops = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8"));
          assert.ok(Array.isArray(ops));
        }
        JSON.stringify(result.review);
        return response.allowed ? "ok" : "refused";
      },
      RUNS.admission,
    );
    totals.admission = s.inputs;
  });
});
