// Fault injection, class by class: a fault proxy (test/harness/faults.ts) between kpull and a real CNCF
// Distribution registry resets, stalls, drips, truncates, flips bytes, lies in headers, answers 5xx, 429 and
// 401, loops redirects; a closed port, an unresolvable name and bad TLS stand for the rest. For each case
// kpull either succeeds after bounded retries or fails with the expected typed error code and kubelet reason
// within its deadline; afterwards the store keeps no unverified bytes (every blob hashes to its name, every
// partial download is a true prefix of its blob), `verify` is clean, a failed pull left no image record, and
// once the fault is gone the next pull completes, fetching only what was missing.
//
// Each case runs through the library (Store.pullImage, to see the typed error) and, for the cases marked
// `cli`, through `kpull pull -o json` as a user runs it (to see the kubelet reason the node reports and the
// exit status), followed by `kpull verify`.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type Credential,
  RegistryClient,
  type RegistryClientOptions,
  RegistryError,
} from "../../src/registry/index.ts";
import { Store, StoreError } from "../../src/store/index.ts";
import { makeTlsMaterial, type TlsMaterial } from "../harness/certs.ts";
import { type FaultProxy, type FaultScript, refusedPort, startFaultProxy } from "../harness/faults.ts";
import {
  type RunningRegistry,
  seedImage,
  type TestBlob,
  type TestImage,
  tinyImage,
  useRegistry,
} from "../harness/index.ts";
import { FULL, kpull, noise, record, scale, storeFiles, tempDir, unverifiedBytes } from "./common.ts";

const REPO = "rel/faults";
const image: TestImage = tinyImage({
  layers: [
    { "etc/motd": "fault injection\n" },
    { "big.bin": noise(256 * 1024, "faults-big") },
    { "drip.bin": noise(3 * 1024, "faults-drip") },
  ],
});
const [, L1, L2] = image.layers as [TestBlob, TestBlob, TestBlob];
const known = new Map<string, Buffer>(
  [image.manifest, image.config, ...image.layers].map((b) => [b.digest, b.bytes]),
);
const blobPath = (digest: string) => new RegExp(`/blobs/${digest}$`);
const MANIFEST_BY_DIGEST = new RegExp(`/manifests/${image.manifest.digest}$`);
const MANIFEST_BY_TAG = /\/manifests\/v1$/;
const WRONG_DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;

/** What a case expects: success, or a failure with this typed code and kubelet reason. */
type Expect =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: string; readonly reason: "ErrImagePull" | "RegistryUnavailable" };

interface Ctx {
  /** a byte offset inside L1, random per iteration in the long run */
  readonly n: number;
  readonly registry: RunningRegistry;
}

interface FaultCase {
  readonly id: string;
  readonly fault: string;
  readonly script?: (ctx: Ctx) => FaultScript;
  /** where kpull connects: the plain fault proxy (default), a TLS one, a closed port, a bad name */
  readonly via?: "proxy" | "tls-untrusted" | "tls-plain" | "refused" | "dns" | "token";
  readonly client?: Partial<RegistryClientOptions>;
  /** abort the pull after this long (the node's --pull-deadline) */
  readonly pullDeadlineMs?: number;
  readonly expect: Expect;
  /** the whole pull must end within this */
  readonly withinMs: number;
  /** at least this long (a fault that must have slowed it down) */
  readonly atLeastMs?: number;
  /** requests to paths matching `path` are at most `max` */
  readonly bound?: { readonly path: RegExp; readonly max: number; readonly min?: number };
  /** also run through the CLI; `deadline` is the --pull-deadline flag */
  readonly cli?: { readonly deadline?: string; readonly withinMs: number; readonly fast?: boolean };
  /** takes seconds by design (back-off, drips, deadlines): only in the long run */
  readonly slow?: boolean;
}

const ok: Expect = { ok: true };
const fail = (code: string, reason: "ErrImagePull" | "RegistryUnavailable"): Expect => ({
  ok: false,
  code,
  reason,
});
/** The first `times` requests to each distinct path get `status`. */
function burst(status: number, times: number, headers: Record<string, string> = {}): FaultScript {
  const seen = new Map<string, number>();
  return (req) => {
    if (!req.path.startsWith("/v2/") || req.path === "/v2/") return null;
    const n = (seen.get(req.path) ?? 0) + 1;
    seen.set(req.path, n);
    if (n > times) return null;
    // What registries and the proxies in front of them send: the spec's envelope from the registry (500
    // UNKNOWN, 503 UNAVAILABLE, 429 TOOMANYREQUESTS), an HTML page from a gateway (502).
    if (status === 502) {
      return {
        kind: "respond",
        status,
        headers: { "content-type": "text/html", ...headers },
        body: "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
      };
    }
    const code = status === 429 ? "TOOMANYREQUESTS" : status === 500 ? "UNKNOWN" : "UNAVAILABLE";
    return {
      kind: "respond",
      status,
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ errors: [{ code, message: `injected ${status}` }] }),
    };
  };
}

const CASES: readonly FaultCase[] = [
  {
    id: "reset-once-mid-blob",
    fault: "connection reset at byte N of a layer, once",
    script: ({ n }) => [
      { method: "GET", path: blobPath(L1.digest), times: 1, action: { kind: "reset", afterBytes: n } },
    ],
    expect: ok,
    withinMs: 5000,
    bound: { path: blobPath(L1.digest), max: 2, min: 2 },
    cli: { withinMs: 8000, fast: true },
  },
  {
    id: "reset-every-40k",
    fault: "connection reset after every 40 KB of a layer",
    script: () => [
      { method: "GET", path: blobPath(L1.digest), action: { kind: "reset", afterBytes: 40_000 } },
    ],
    expect: ok,
    withinMs: 8000,
    bound: { path: blobPath(L1.digest), max: Math.ceil(L1.bytes.length / 40_000) + 1 },
    cli: { withinMs: 10_000 },
  },
  {
    id: "reset-before-response",
    slow: true,
    fault: "connection reset before any response, every time",
    script: () => [{ method: "GET", path: blobPath(L1.digest), action: { kind: "reset" } }],
    expect: fail("NETWORK", "RegistryUnavailable"),
    withinMs: 5000,
    bound: { path: blobPath(L1.digest), max: 4 },
    cli: { withinMs: 8000 },
  },
  {
    id: "reset-after-headers",
    fault: "connection reset right after the headers, every time (no progress)",
    script: () => [{ method: "GET", path: blobPath(L1.digest), action: { kind: "reset", afterBytes: 0 } }],
    expect: fail("NETWORK", "RegistryUnavailable"),
    withinMs: 5000,
    bound: { path: blobPath(L1.digest), max: 4 },
  },
  {
    id: "stall-once",
    fault: "stall after byte N of a layer, once (client stall timeout 1 s)",
    script: ({ n }) => [
      { method: "GET", path: blobPath(L1.digest), times: 1, action: { kind: "stall", afterBytes: n } },
    ],
    client: { stallTimeoutMs: 1000 },
    expect: ok,
    withinMs: 6000,
    atLeastMs: 900,
    bound: { path: blobPath(L1.digest), max: 2, min: 2 },
  },
  {
    id: "stall-dropped",
    slow: true,
    fault: "stall after byte N, then the connection is dropped after 1.5 s, once",
    script: ({ n }) => [
      {
        method: "GET",
        path: blobPath(L1.digest),
        times: 1,
        action: { kind: "stall", afterBytes: n, forMs: 1500 },
      },
    ],
    expect: ok,
    withinMs: 7000,
    atLeastMs: 1400,
    bound: { path: blobPath(L1.digest), max: 2, min: 2 },
    cli: { withinMs: 10_000 },
  },
  {
    id: "stall-forever-deadline",
    slow: true,
    fault: "stall forever (pull deadline 3 s)",
    script: ({ n }) => [
      { method: "GET", path: blobPath(L1.digest), action: { kind: "stall", afterBytes: n } },
    ],
    pullDeadlineMs: 3000,
    expect: fail("ABORTED", "ErrImagePull"),
    withinMs: 4500,
    atLeastMs: 2900,
    cli: { deadline: "3s", withinMs: 6500 },
  },
  {
    id: "drip-1kbps",
    slow: true,
    fault: "1 KB/s drip of a 3 KB layer",
    script: () => [
      { method: "GET", path: blobPath(L2.digest), action: { kind: "drip", bytesPerSecond: 1024 } },
    ],
    expect: ok,
    withinMs: 9000,
    atLeastMs: 2000,
    bound: { path: blobPath(L2.digest), max: 1, min: 1 },
    cli: { withinMs: 12_000 },
  },
  {
    id: "drip-deadline",
    slow: true,
    fault: "1 KB/s drip of a 256 KB layer (pull deadline 3 s)",
    script: () => [
      { method: "GET", path: blobPath(L1.digest), action: { kind: "drip", bytesPerSecond: 1024 } },
    ],
    pullDeadlineMs: 3000,
    expect: fail("ABORTED", "ErrImagePull"),
    withinMs: 4500,
    atLeastMs: 2900,
    cli: { deadline: "3s", withinMs: 6500 },
  },
  {
    id: "truncate-once",
    fault: "layer body truncated at byte N behind a matching Content-Length, once",
    script: ({ n }) => [
      { method: "GET", path: blobPath(L1.digest), times: 1, action: { kind: "truncate", afterBytes: n } },
    ],
    expect: ok,
    withinMs: 5000,
    bound: { path: blobPath(L1.digest), max: 2, min: 2 },
    cli: { withinMs: 8000 },
  },
  {
    id: "truncate-empty-always",
    fault: "layer answered 200 with an empty body, every time",
    script: () => [{ method: "GET", path: blobPath(L1.digest), action: { kind: "truncate", afterBytes: 0 } }],
    expect: fail("NETWORK", "RegistryUnavailable"),
    withinMs: 5000,
    bound: { path: blobPath(L1.digest), max: 4 },
  },
  {
    id: "truncate-manifest",
    fault: "manifest truncated behind a matching Content-Length",
    script: () => [
      { method: "GET", path: MANIFEST_BY_DIGEST, action: { kind: "truncate", afterBytes: 100 } },
    ],
    expect: fail("DIGEST_MISMATCH", "ErrImagePull"),
    withinMs: 3000,
  },
  {
    id: "flip-layer",
    fault: "one byte flipped at offset N of a layer",
    script: ({ n }) => [
      { method: "GET", path: blobPath(L1.digest), times: 1, action: { kind: "flip", at: [n] } },
    ],
    expect: fail("MISMATCH", "ErrImagePull"),
    withinMs: 3000,
    cli: { withinMs: 6000, fast: true },
  },
  {
    id: "flip-manifest",
    fault: "one byte flipped in the manifest",
    script: () => [{ method: "GET", path: MANIFEST_BY_DIGEST, times: 1, action: { kind: "flip", at: [40] } }],
    expect: fail("DIGEST_MISMATCH", "ErrImagePull"),
    withinMs: 3000,
  },
  {
    id: "flip-config",
    fault: "one byte flipped in the config",
    script: () => [
      { method: "GET", path: blobPath(image.config.digest), times: 1, action: { kind: "flip", at: [10] } },
    ],
    expect: fail("MISMATCH", "ErrImagePull"),
    withinMs: 3000,
  },
  {
    id: "wrong-digest-resolve",
    fault: "wrong Docker-Content-Digest on the tag's HEAD",
    script: () => [
      {
        method: "HEAD",
        path: MANIFEST_BY_TAG,
        action: { kind: "headers", set: { "docker-content-digest": WRONG_DIGEST } },
      },
    ],
    expect: fail("MANIFEST_UNKNOWN", "ErrImagePull"),
    withinMs: 3000,
    cli: { withinMs: 6000 },
  },
  {
    id: "wrong-digest-get",
    fault: "wrong Docker-Content-Digest on every GET (the client hashes what it gets)",
    script: () => [
      {
        method: "GET",
        path: /\/v2\/.+/,
        action: { kind: "headers", set: { "docker-content-digest": WRONG_DIGEST } },
      },
    ],
    expect: ok,
    withinMs: 3000,
  },
  ...([500, 502, 503] as const).map(
    (status): FaultCase => ({
      id: `${status}-burst`,
      slow: true,
      fault: `${status} burst: the first 2 answers of every request path`,
      script: () => burst(status, 2),
      expect: ok,
      withinMs: 8000,
      cli: { withinMs: 12_000 },
    }),
  ),
  ...([500, 502, 503] as const).map(
    (status): FaultCase => ({
      id: `${status}-always`,
      slow: status !== 500,
      fault: `${status} on every request`,
      script: () => burst(status, Number.POSITIVE_INFINITY),
      expect: fail(status === 500 ? "UNKNOWN" : "UNAVAILABLE", "RegistryUnavailable"),
      withinMs: 4000,
      bound: { path: /\/v2\/.+/, max: 4 },
      cli: { withinMs: 7000 },
    }),
  ),
  {
    id: "429-retry-after",
    slow: true,
    fault: "429 with Retry-After: 1 on the first 2 answers of every path",
    script: () => burst(429, 2, { "retry-after": "1" }),
    expect: ok,
    withinMs: 15_000,
    atLeastMs: 2000,
    cli: { withinMs: 18_000 },
  },
  {
    id: "429-always",
    slow: true,
    fault: "429 with Retry-After: 1 on every request",
    script: () => burst(429, Number.POSITIVE_INFINITY, { "retry-after": "1" }),
    expect: fail("TOOMANYREQUESTS", "ErrImagePull"),
    withinMs: 5000,
    atLeastMs: 2900,
    bound: { path: /\/v2\/.+/, max: 4 },
  },
  {
    id: "429-retry-after-hour-deadline",
    slow: true,
    fault: "429 with Retry-After: 3600 on every request (pull deadline 3 s)",
    script: () => burst(429, Number.POSITIVE_INFINITY, { "retry-after": "3600" }),
    pullDeadlineMs: 3000,
    expect: fail("ABORTED", "ErrImagePull"),
    withinMs: 4500,
    bound: { path: /\/v2\/.+/, max: 1 },
    cli: { deadline: "3s", withinMs: 6500 },
  },
  {
    id: "401-storm",
    fault: "401 with a Bearer challenge on every registry request (token auth)",
    via: "token",
    script:
      ({ registry }) =>
      (req) =>
        req.path.startsWith("/v2/")
          ? {
              kind: "respond",
              status: 401,
              headers: {
                "content-type": "application/json",
                "www-authenticate": `Bearer realm="${registry.tokenServer?.realm}",service="${registry.tokenServer?.service}",scope="repository:${REPO}:pull"`,
              },
              body: '{"errors":[{"code":"UNAUTHORIZED","message":"injected"}]}',
            }
          : null,
    expect: fail("UNAUTHORIZED", "ErrImagePull"),
    withinMs: 3000,
    bound: { path: /\/v2\/.+/, max: 2 },
  },
  {
    id: "401-once",
    fault: "one 401 in the middle of a token-authenticated pull",
    via: "token",
    script: ({ registry }) => [
      {
        method: "GET",
        path: blobPath(L1.digest),
        times: 1,
        action: {
          kind: "respond",
          status: 401,
          headers: {
            "www-authenticate": `Bearer realm="${registry.tokenServer?.realm}",service="${registry.tokenServer?.service}",scope="repository:${REPO}:pull"`,
          },
        },
      },
    ],
    expect: ok,
    withinMs: 3000,
    bound: { path: blobPath(L1.digest), max: 2, min: 2 },
  },
  {
    id: "redirect-loop",
    fault: "a layer GET redirected to itself forever",
    script: () => (req) =>
      blobPath(L1.digest).test(req.path) ? { kind: "redirect", location: req.path } : null,
    expect: fail("REDIRECT", "ErrImagePull"),
    withinMs: 3000,
    bound: { path: blobPath(L1.digest), max: 10, min: 10 },
    cli: { withinMs: 6000 },
  },
  {
    id: "redirect-other-host",
    fault: "every blob GET redirected to another host (the registry itself)",
    script:
      ({ registry }) =>
      (req) =>
        req.method === "GET" && /\/blobs\//.test(req.path)
          ? { kind: "redirect", location: `${registry.url}${req.path}` }
          : null,
    expect: ok,
    withinMs: 3000,
  },
  {
    id: "connection-refused",
    slow: true,
    fault: "connection refused (nothing listens on the registry's port)",
    via: "refused",
    expect: fail("NETWORK", "RegistryUnavailable"),
    withinMs: 4000,
    cli: { withinMs: 7000 },
  },
  {
    id: "dns-failure",
    slow: true,
    fault: "the registry's name does not resolve",
    via: "dns",
    expect: fail("NETWORK", "RegistryUnavailable"),
    withinMs: 6000,
    cli: { withinMs: 9000 },
  },
  {
    id: "tls-untrusted",
    fault: "TLS certificate signed by a CA the node does not trust",
    via: "tls-untrusted",
    expect: fail("TLS", "ErrImagePull"),
    withinMs: 3000,
    cli: { withinMs: 6000 },
  },
  {
    id: "tls-plain-http",
    fault: "plain HTTP where TLS is configured",
    via: "tls-plain",
    expect: fail("TLS", "ErrImagePull"),
    withinMs: 3000,
    cli: { withinMs: 6000 },
  },
];

const ITERATIONS = scale(1, 5);

function anonymous(): { lookup: () => Promise<readonly Credential[]> } {
  return { lookup: async () => [] };
}

describe("fault injection: every fault class through the proxy", {
  timeout: FULL ? 3_600_000 : 120_000,
}, () => {
  const plain = useRegistry();
  const token = useRegistry({ auth: "token" });
  let tls1: TlsMaterial;
  let tls2: TlsMaterial;

  before(async () => {
    await seedImage(plain(), REPO, "v1", image);
    await seedImage(token(), REPO, "v1", image);
    const dir = tempDir("tls");
    tls1 = makeTlsMaterial(mkdtempSync(join(dir, "a-")));
    tls2 = makeTlsMaterial(mkdtempSync(join(dir, "b-")));
  });

  /** Where to point kpull for a case: the host of references, a hosts dir, insecure hosts, and cleanup. */
  async function endpoint(c: FaultCase, n: number) {
    const registry = c.via === "token" ? token() : plain();
    const hostsDir = mkdtempSync(join(tmpdir(), "kpull-rel-hosts-"));
    let proxy: FaultProxy | null = null;
    let host: string;
    let insecure: string[] = [];
    if (c.via === "refused") host = `127.0.0.1:${await refusedPort()}`;
    else if (c.via === "dns") host = "kpull-no-such-registry.invalid:5000";
    else {
      const tls = c.via === "tls-untrusted" ? { cert: tls1.certPem, key: tls1.keyPem } : undefined;
      proxy = await startFaultProxy(registry, c.script?.({ n, registry }) ?? [], tls ? { tls } : {});
      host = proxy.host;
      if (c.via === "tls-untrusted" || c.via === "tls-plain") {
        // An explicit https server with a CA: no loopback leniency, TLS is verified.
        const ca = c.via === "tls-untrusted" ? tls2.caFile : tls1.caFile;
        mkdirSync(join(hostsDir, host), { recursive: true });
        writeFileSync(join(hostsDir, host, "hosts.toml"), `server = "https://${host}"\nca = "${ca}"\n`);
      } else insecure = [host];
    }
    if (c.via === "refused" || c.via === "dns") insecure = [host];
    return { registry, proxy, host, hostsDir, insecure };
  }

  function credentialsFor(c: FaultCase, registry: RunningRegistry) {
    if (c.via !== "token") return anonymous();
    const [username, password] = Object.entries(registry.users)[0] as [string, string];
    const credential: Credential = { username, password, source: { kind: "auth-config" } };
    return { lookup: async () => [credential] };
  }

  const summary: Record<string, unknown>[] = [];
  after(() => {
    if (FULL && summary.length > 0)
      console.log(`fault cases:\n${summary.map((s) => JSON.stringify(s)).join("\n")}`);
  });

  for (const c of CASES) {
    it(`${c.id}: ${c.fault}`, {
      skip: c.slow && !FULL ? "seconds by design; in npm run test:reliability" : false,
    }, async () => {
      const stats = {
        attempts: 0,
        survived: 0,
        dataLost: 0,
        elapsed: [] as number[],
        requests: [] as number[],
      };
      let observed = "";
      for (let i = 0; i < ITERATIONS; i++) {
        const n = i === 0 ? 100_000 : 1 + Math.floor(Math.random() * (L1.bytes.length - 2));
        const ep = await endpoint(c, n);
        const root = tempDir("faults-root");
        const store = await Store.open(root);
        const client = new RegistryClient({
          hostsDir: ep.hostsDir,
          insecureRegistries: ep.insecure,
          credentials: credentialsFor(c, ep.registry),
          ...c.client,
        });
        const ref = `${ep.host}/${REPO}:v1`;
        const started = performance.now();
        let error: unknown = null;
        try {
          await store.pullImage(client, ref, {
            ...(c.pullDeadlineMs ? { signal: AbortSignal.timeout(c.pullDeadlineMs) } : {}),
          });
        } catch (e) {
          error = e;
        } finally {
          await client.close();
        }
        const elapsed = performance.now() - started;
        stats.attempts++;
        stats.elapsed.push(elapsed);
        try {
          const where = `${c.id} (n=${n})`;
          if (c.expect.ok) assert.equal(error, null, `${where}: ${(error as Error)?.stack}`);
          else {
            assert.ok(
              error instanceof RegistryError || error instanceof StoreError,
              `${where}: ${String(error)}`,
            );
            const e = error as RegistryError | StoreError;
            assert.equal(e.code, c.expect.code, `${where}: ${e.message}`);
            const reason = e instanceof RegistryError ? e.kubeletReason : "ErrImagePull";
            assert.equal(reason, c.expect.reason, `${where}: ${e.message}`);
            observed = `${e.code} / ${reason}: ${e.message.replace(/127\.0\.0\.1:\d+/g, "HOST").slice(0, 160)}`;
            assert.deepEqual(await store.images(), [], `${where}: a failed pull records no image`);
          }
          assert.ok(elapsed <= c.withinMs, `${where}: took ${Math.round(elapsed)} ms, bound ${c.withinMs}`);
          if (c.atLeastMs)
            assert.ok(elapsed >= c.atLeastMs, `${where}: ${Math.round(elapsed)} ms < ${c.atLeastMs}`);
          if (c.bound && ep.proxy) {
            const made = ep.proxy.count({ path: c.bound.path });
            stats.requests.push(made);
            assert.ok(made <= c.bound.max, `${where}: ${made} requests > ${c.bound.max}`);
            if (c.bound.min !== undefined)
              assert.ok(made >= c.bound.min, `${where}: ${made} requests < ${c.bound.min}`);
          }
          assert.deepEqual(unverifiedBytes(root, known), [], `${where}: unverified bytes kept`);
          const report = await store.verify();
          assert.deepEqual([report.corrupt, report.missing], [[], []], `${where}: verify`);
          assert.equal(report.clean, true);

          // The fault goes away: the next pull completes and fetches only what is missing.
          if (ep.proxy) {
            const { blobs, partial } = storeFiles(root);
            ep.proxy.setScript([]);
            const before = ep.proxy.requests.length;
            const again = new RegistryClient({
              hostsDir: ep.hostsDir,
              insecureRegistries: ep.insecure,
              credentials: credentialsFor(c, ep.registry),
            });
            if (c.via?.startsWith("tls")) {
              // A TLS fault does not go away by itself; nothing more to check here.
            } else {
              try {
                await store.pullImage(again, ref);
              } finally {
                await again.close();
              }
              const fetched = ep.proxy.requests
                .slice(before)
                .filter((q) => q.method === "GET" && /\/blobs\//.test(q.path))
                .reduce((sum, q) => sum + q.bytesSent, 0);
              const missing = [image.config, ...image.layers]
                .filter((b) => !blobs.has(b.digest))
                .reduce((sum, b) => sum + b.bytes.length - (partial.get(b.digest) ?? 0), 0);
              assert.equal(
                fetched,
                missing,
                `${where}: the recovery pull fetched ${fetched} bytes, ${missing} were missing`,
              );
              const clean = await store.verify();
              assert.equal(clean.clean, true);
              assert.equal((await store.status(ref))?.complete, true);
            }
          }
          stats.survived++;
        } finally {
          await ep.proxy?.stop();
        }
      }

      let cliRow: Record<string, unknown> | null = null;
      if (c.cli && (FULL || c.cli.fast)) cliRow = await viaCli(c, await endpoint(c, 100_000));
      const row = {
        id: c.id,
        fault: c.fault,
        expected: c.expect.ok ? "success" : `${c.expect.code} / ${c.expect.reason}`,
        observed: c.expect.ok ? "success" : observed,
        attempts: stats.attempts,
        survived: stats.survived,
        dataLost: stats.dataLost,
        maxMs: Math.round(Math.max(...stats.elapsed)),
        boundMs: c.withinMs,
        maxRequests: stats.requests.length ? Math.max(...stats.requests) : null,
        cli: cliRow,
      };
      summary.push(row);
      record("faults", row);
    });
  }

  /** The same fault through `kpull pull -o json` and `kpull verify`. */
  async function viaCli(
    c: FaultCase,
    ep: Awaited<ReturnType<typeof endpoint>>,
  ): Promise<Record<string, unknown>> {
    const root = tempDir("faults-cli");
    const args = ["pull", "-o", "json", "--root", root, "--hosts-dir", ep.hostsDir, `${ep.host}/${REPO}:v1`];
    for (const h of ep.insecure) args.push("--insecure-registry", h);
    if (c.cli?.deadline) args.push("--pull-deadline", c.cli.deadline);
    let env: Record<string, string> = {};
    if (c.via === "token") {
      const dockerDir = tempDir("docker");
      const [user, password] = Object.entries(ep.registry.users)[0] as [string, string];
      writeFileSync(
        join(dockerDir, "config.json"),
        JSON.stringify({
          auths: { [ep.host]: { auth: Buffer.from(`${user}:${password}`).toString("base64") } },
        }),
      );
      env = { DOCKER_CONFIG: dockerDir };
    }
    try {
      const started = performance.now();
      const run = await kpull(args, { env });
      const elapsed = performance.now() - started;
      const out = JSON.parse(run.stdout) as { action: string; code: string | null; message: string | null };
      if (c.expect.ok) {
        assert.equal(run.code, 0, `${c.id} cli: ${run.stdout}${run.stderr}`);
        assert.equal(out.action, "pulled");
      } else {
        assert.equal(run.code, 1, `${c.id} cli: ${run.stdout}${run.stderr}`);
        assert.equal(out.action, "failed");
        assert.equal(out.code, c.expect.reason, `${c.id} cli: ${out.message}`);
      }
      assert.ok(elapsed <= (c.cli?.withinMs ?? 0), `${c.id} cli: took ${Math.round(elapsed)} ms`);
      const verify = await kpull(["verify", "-o", "json", "--root", root]);
      assert.equal(verify.code, 0, `${c.id} cli verify: ${verify.stdout}`);
      assert.deepEqual(unverifiedBytes(root, known), []);
      return { kubeletReason: out.code ?? "none", exit: run.code, ms: Math.round(elapsed), verify: "clean" };
    } finally {
      await ep.proxy?.stop();
    }
  }
});
