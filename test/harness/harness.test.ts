// Self-tests of the integration-test harness, using only fetch/undici and peer tools (skopeo): kpull's own
// registry client must not be what proves the fixtures right.

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { Agent, fetch as undiciFetch } from "undici";
import {
  authorizationFor,
  findTool,
  HARNESS_USER_AGENT,
  MEDIA,
  parseScope,
  type RunningProxy,
  type RunningRegistry,
  requireTool,
  seedImage,
  sha256,
  startProxy,
  startRegistry,
  type TestImage,
  tarOf,
  tinyImage,
  useRegistry,
} from "./index.ts";

const run = promisify(execFile);
const HERE = import.meta.dirname;
const basicHeader = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/** Monolithic blob push with plain fetch: POST uploads/ → 202 + Location, PUT Location?digest= → 201. */
async function fetchPushBlob(
  f: typeof fetch,
  base: string,
  repo: string,
  bytes: Uint8Array,
  headers: Record<string, string> = {},
): Promise<string> {
  const digest = sha256(bytes);
  const start = await f(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST", headers });
  assert.equal(start.status, 202, await start.text());
  const location = new URL(start.headers.get("location") ?? "", `${base}/v2/${repo}/blobs/uploads/`);
  location.searchParams.set("digest", digest);
  const put = await f(location, {
    method: "PUT",
    headers: { ...headers, "content-type": "application/octet-stream" },
    body: bytes,
  });
  assert.equal(put.status, 201, await put.text());
  assert.equal(put.headers.get("docker-content-digest"), digest);
  return digest;
}

async function fetchPushImage(
  f: typeof fetch,
  base: string,
  repo: string,
  tag: string,
  image: TestImage,
  headers: Record<string, string> = {},
): Promise<void> {
  for (const b of [image.config, ...image.layers]) await fetchPushBlob(f, base, repo, b.bytes, headers);
  const put = await f(`${base}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { ...headers, "content-type": image.manifest.mediaType },
    body: image.manifest.bytes,
  });
  assert.equal(put.status, 201, await put.text());
  assert.equal(put.headers.get("docker-content-digest"), image.manifest.digest);
}

async function fetchManifest(f: typeof fetch, base: string, repo: string, ref: string, headers = {}) {
  return f(`${base}/v2/${repo}/manifests/${ref}`, {
    headers: { accept: `${MEDIA.ociManifest}, ${MEDIA.dockerManifest}`, ...headers },
  });
}

function portClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

/** Running (a zombie waiting for a reaper counts as dead). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

/** Bearer challenge parameters (enough for these tests; kpull's parser lives in src/registry). */
function bearerParams(header: string | null): Record<string, string> {
  if (!header?.startsWith("Bearer ")) assert.fail(`expected a Bearer challenge, got ${header}`);
  return Object.fromEntries([...header.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? "", m[2] ?? ""]));
}

async function tokenFrom(registry: RunningRegistry, scopes: string[], authorization?: string) {
  const ts = registry.tokenServer;
  assert.ok(ts);
  const q = new URLSearchParams({ service: ts.service });
  for (const s of scopes) q.append("scope", s);
  const dispatcher = registry.caPem ? new Agent({ connect: { ca: registry.caPem } }) : undefined;
  const res = await undiciFetch(`${ts.realm}?${q}`, {
    headers: authorization ? { authorization } : {},
    ...(dispatcher ? { dispatcher } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const image = tinyImage({ layers: [{ "a.txt": "layer one\n" }, { "b/c.txt": "layer two\n" }] });

describe("requireTool", () => {
  it("returns the path of an installed tool", () => {
    assert.match(requireTool("openssl", "openssl"), /\/openssl$/);
  });
  it("names the exact fix for a missing tool", () => {
    const saved = process.env.KPULL_HARNESS_NO_INSTALL;
    process.env.KPULL_HARNESS_NO_INSTALL = "1";
    try {
      assert.throws(() => requireTool("kpull-no-such-tool", "kpull-no-such-package"), {
        message: "missing kpull-no-such-tool: run `apt-get install -y kpull-no-such-package`",
      });
    } finally {
      if (saved === undefined) delete process.env.KPULL_HARNESS_NO_INSTALL;
      else process.env.KPULL_HARNESS_NO_INSTALL = saved;
    }
  });
});

describe("fixtures", () => {
  it("are deterministic and well-formed", () => {
    assert.deepEqual(tinyImage().manifest.digest, tinyImage().manifest.digest);
    const tar = tarOf({ "x.txt": "hi" });
    assert.equal(tar.byteLength, 512 * 4);
    assert.equal(tar.subarray(257, 262).toString(), "ustar");
    const manifest = JSON.parse(image.manifest.bytes.toString()) as { layers: unknown[] };
    assert.equal(manifest.layers.length, 2);
  });
  it("parseScope splits type at the first colon and actions at the last", () => {
    assert.deepEqual(parseScope("repository:localhost:5000/a/b:pull,push"), {
      type: "repository",
      name: "localhost:5000/a/b",
      actions: ["pull", "push"],
    });
    assert.deepEqual(parseScope("registry:catalog:*"), { type: "registry", name: "catalog", actions: ["*"] });
    assert.equal(parseScope("nonsense"), null);
  });
});

describe("registry without auth", () => {
  const registry = useRegistry();
  // seeded up front so each test also runs alone (--test-name-pattern); pushing it again is a no-op
  before(() => seedImage(registry(), "team/app", "v1", image));

  it("accepts a monolithic push and serves it back; the access log counts every request", async () => {
    const r = registry();
    assert.match(r.host, /^127\.0\.0\.1:\d+$/);
    assert.equal(r.url, `http://${r.host}`);
    await fetchPushImage(fetch, r.url, "team/app", "v1", image);
    const got = await fetchManifest(fetch, r.url, "team/app", "v1");
    assert.equal(got.status, 200);
    assert.equal(got.headers.get("docker-content-digest"), image.manifest.digest);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), image.manifest.bytes);
    const head = await fetch(`${r.url}/v2/team/app/manifests/v1`, {
      method: "HEAD",
      headers: { accept: MEDIA.ociManifest },
    });
    assert.equal(head.status, 200);
    const layer = image.layers[0];
    assert.ok(layer);
    const blob = await fetch(`${r.url}/v2/team/app/blobs/${layer.digest}`);
    assert.deepEqual(Buffer.from(await blob.arrayBuffer()), layer.bytes);

    const log = await r.accessLog();
    const summary = log.map((e) => `${e.method} ${e.status}`);
    assert.deepEqual(summary, [
      ...Array(3).fill(["POST 202", "PUT 201"]).flat(),
      "PUT 201", // manifest
      "GET 200",
      "HEAD 200",
      "GET 200",
    ]);
    const blobGet = log.at(-1);
    assert.equal(blobGet?.path, `/v2/team/app/blobs/${layer.digest}`);
    assert.equal(blobGet?.bytes, layer.bytes.byteLength);
    // a quirk worth knowing: for HEAD the registry logs the bytes its handler wrote (the manifest size),
    // though Go sends no body on the wire
    assert.equal(log.at(-2)?.method, "HEAD");
    assert.equal(log.at(-2)?.bytes, image.manifest.bytes.byteLength);
    // the readiness probe and seedImage are in the log too, marked as the harness's own
    const all = await r.accessLog({ includeHarness: true });
    const own = all.filter((e) => e.userAgent === HARNESS_USER_AGENT);
    assert.equal(all.length, log.length + own.length);
    assert.equal(`${own[0]?.method} ${own[0]?.path} ${own[0]?.status}`, "GET /v2/ 200");
  });

  it("is readable by skopeo, a peer client", async () => {
    const r = registry();
    const skopeo = requireTool("skopeo", "skopeo");
    await seedImage(r, "peer/check", "v2", tinyImage({ format: "docker" }));
    const { stdout } = await run(skopeo, ["inspect", "--tls-verify=false", `docker://${r.host}/team/app:v1`]);
    const info = JSON.parse(stdout) as { Digest: string; Layers: string[]; Architecture: string; Os: string };
    assert.equal(info.Digest, image.manifest.digest);
    assert.deepEqual(
      info.Layers,
      image.layers.map((l) => l.digest),
    );
    assert.equal(info.Architecture, "amd64");
    assert.equal(info.Os, "linux");
    const raw = await run(skopeo, [
      "inspect",
      "--raw",
      "--tls-verify=false",
      `docker://${r.host}/peer/check:v2`,
    ]);
    assert.equal(sha256(Buffer.from(raw.stdout)), tinyImage({ format: "docker" }).manifest.digest);
  });
});

describe("registry with basic auth", () => {
  const registry = useRegistry({ auth: "basic" });

  it("answers 401 with a Basic challenge without or with wrong credentials", async () => {
    const r = registry();
    assert.deepEqual(r.users, { kpull: "secret" });
    const anon = await fetch(`${r.url}/v2/`);
    assert.equal(anon.status, 401);
    assert.equal(anon.headers.get("www-authenticate"), 'Basic realm="kpull-test"');
    const wrong = await fetch(`${r.url}/v2/`, { headers: { authorization: basicHeader("kpull", "nope") } });
    assert.equal(wrong.status, 401);
    const noPush = await fetch(`${r.url}/v2/team/app/blobs/uploads/`, { method: "POST" });
    assert.equal(noPush.status, 401);
  });

  it("lets the user push and pull", async () => {
    const r = registry();
    const headers = { authorization: basicHeader("kpull", "secret") };
    await fetchPushImage(fetch, r.url, "team/app", "v1", image, headers);
    const got = await fetchManifest(fetch, r.url, "team/app", "v1", headers);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get("docker-content-digest"), image.manifest.digest);
    assert.equal((await fetchManifest(fetch, r.url, "team/app", "v1")).status, 401);
  });
});

describe("registry with token auth", () => {
  const registry = useRegistry({ auth: "token" });
  const custom = useRegistry({
    auth: "token",
    tokenKeyHint: "kid",
    users: { writer: "w-pass", reader: "r-pass" },
    access: (user) => (user === "writer" ? ["*"] : user === "reader" ? ["pull"] : []),
  });
  // seeded up front so each test also runs alone (--test-name-pattern); pushing it again is a no-op
  before(() => seedImage(registry(), "team/app", "v1", image));

  it("challenges with realm, service and scope", async () => {
    const r = registry();
    const ts = r.tokenServer;
    assert.ok(ts);
    const base = bearerParams((await fetch(`${r.url}/v2/`)).headers.get("www-authenticate"));
    assert.deepEqual(base, { realm: ts.realm, service: ts.service });
    const pull = await fetchManifest(fetch, r.url, "team/app", "v1");
    assert.equal(pull.status, 401);
    assert.deepEqual(bearerParams(pull.headers.get("www-authenticate")), {
      realm: ts.realm,
      service: ts.service,
      scope: "repository:team/app:pull",
    });
    const push = await fetch(`${r.url}/v2/team/app/blobs/uploads/`, { method: "POST" });
    assert.equal(push.status, 401);
    // Distribution lists the actions in Go map order, which varies between runs.
    const scope = bearerParams(push.headers.get("www-authenticate")).scope ?? "";
    const [type, name, actions] = scope.split(":");
    assert.deepEqual([type, name, actions?.split(",").sort()], ["repository", "team/app", ["pull", "push"]]);
  });

  it("refuses a wrong password at the token server", async () => {
    const r = registry();
    const before = r.tokenServer?.requests.length ?? 0;
    const res = await tokenFrom(r, ["repository:team/app:pull"], basicHeader("kpull", "wrong"));
    assert.equal(res.status, 401);
    const unknown = await tokenFrom(r, ["repository:team/app:pull"], basicHeader("mallory", "secret"));
    assert.equal(unknown.status, 401);
    const log = r.tokenServer?.requests.slice(before);
    assert.deepEqual(
      log?.map((l) => [l.status, l.user, l.granted]),
      [
        [401, "kpull", []],
        [401, "mallory", []],
      ],
    );
  });

  it("issues tokens the registry accepts for push and pull, and logs scopes", async () => {
    const r = registry();
    const ts = r.tokenServer;
    assert.ok(ts);
    const res = await tokenFrom(r, ["repository:team/app:pull,push"], basicHeader("kpull", "secret"));
    assert.equal(res.status, 200);
    assert.equal(typeof res.body.token, "string");
    assert.equal(res.body.access_token, res.body.token);
    assert.equal(res.body.expires_in, 300);
    assert.ok(!Number.isNaN(Date.parse(String(res.body.issued_at))));
    const headers = { authorization: `Bearer ${res.body.token}` };
    await fetchPushImage(fetch, r.url, "team/app", "v1", image, headers);
    const got = await fetchManifest(fetch, r.url, "team/app", "v1", headers);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get("docker-content-digest"), image.manifest.digest);

    const last = ts.requests.at(-1);
    assert.equal(last?.user, "kpull");
    assert.equal(last?.service, ts.service);
    assert.deepEqual(last?.scopes, ["repository:team/app:pull,push"]);
    assert.deepEqual(last?.granted, [{ type: "repository", name: "team/app", actions: ["pull", "push"] }]);
    const [, payload] = String(res.body.token).split(".");
    const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString()) as Record<string, unknown>;
    assert.equal(claims.iss, ts.issuer);
    assert.equal(claims.aud, ts.service);
    assert.equal(claims.sub, "kpull");
    for (const k of ["exp", "nbf", "iat", "jti"]) assert.ok(k in claims, `claim ${k}`);
  });

  it("a pull-only token cannot push: 401 insufficient_scope", async () => {
    const r = registry();
    const res = await tokenFrom(r, ["repository:team/app:pull"], basicHeader("kpull", "secret"));
    const push = await fetch(`${r.url}/v2/team/app/blobs/uploads/`, {
      method: "POST",
      headers: { authorization: `Bearer ${res.body.token}` },
    });
    assert.equal(push.status, 401);
    assert.equal(bearerParams(push.headers.get("www-authenticate")).error, "insufficient_scope");
  });

  it("anonymous tokens pull public/ repositories and are denied push", async () => {
    const r = registry();
    await seedImage(r, "public/hello", "latest", image);
    const anon = await tokenFrom(r, ["repository:public/hello:pull,push"]);
    assert.equal(anon.status, 200);
    assert.equal(r.tokenServer?.requests.at(-1)?.user, null);
    assert.deepEqual(r.tokenServer?.requests.at(-1)?.granted, [
      { type: "repository", name: "public/hello", actions: ["pull"] },
    ]);
    const headers = { authorization: `Bearer ${anon.body.token}` };
    assert.equal((await fetchManifest(fetch, r.url, "public/hello", "latest", headers)).status, 200);
    const push = await fetch(`${r.url}/v2/public/hello/blobs/uploads/`, { method: "POST", headers });
    assert.equal(push.status, 401);
    const priv = await tokenFrom(r, ["repository:team/app:pull"]);
    assert.deepEqual(r.tokenServer?.requests.at(-1)?.granted, []);
    const denied = await fetchManifest(fetch, r.url, "team/app", "v1", {
      authorization: `Bearer ${priv.body.token}`,
    });
    assert.equal(denied.status, 401);
  });

  it("honours a custom access policy; the kid key hint works too", async () => {
    const r = custom();
    assert.deepEqual(r.users, { writer: "w-pass", reader: "r-pass" });
    const writer = await authorizationFor(r, "team/app", ["pull", "push"], "writer");
    assert.ok(writer);
    await fetchPushImage(fetch, r.url, "team/app", "v1", image, { authorization: writer });
    const reader = await tokenFrom(r, ["repository:team/app:pull,push"], basicHeader("reader", "r-pass"));
    assert.deepEqual(r.tokenServer?.requests.at(-1)?.granted, [
      { type: "repository", name: "team/app", actions: ["pull"] },
    ]);
    const headers = { authorization: `Bearer ${reader.body.token}` };
    assert.equal((await fetchManifest(fetch, r.url, "team/app", "v1", headers)).status, 200);
    assert.equal(
      (await fetch(`${r.url}/v2/team/app/blobs/uploads/`, { method: "POST", headers })).status,
      401,
    );
  });

  it("rejects an expired token", async () => {
    const r = registry();
    const token = r.tokenServer?.issue(
      "kpull",
      [{ type: "repository", name: "team/app", actions: ["pull"] }],
      {
        expiresIn: -120,
      },
    );
    const res = await fetchManifest(fetch, r.url, "team/app", "v1", { authorization: `Bearer ${token}` });
    assert.equal(res.status, 401);
  });

  it("rejects a token whose claims were altered after signing", async () => {
    const r = registry();
    const token = r.tokenServer?.issue("kpull", [
      { type: "repository", name: "other/repo", actions: ["pull"] },
    ]);
    const [header, payload, signature] = String(token).split(".");
    const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString()) as Record<string, unknown>;
    claims.access = [{ type: "repository", name: "team/app", actions: ["pull"] }];
    const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${signature}`;
    const res = await fetchManifest(fetch, r.url, "team/app", "v1", { authorization: `Bearer ${forged}` });
    assert.equal(res.status, 401);
    const honest = r.tokenServer?.issue("kpull", [
      { type: "repository", name: "team/app", actions: ["pull"] },
    ]);
    assert.equal(
      (await fetchManifest(fetch, r.url, "team/app", "v1", { authorization: `Bearer ${honest}` })).status,
      200,
    );
  });

  it("skopeo pulls through our token server", async () => {
    const r = registry();
    const skopeo = requireTool("skopeo", "skopeo");
    const before = r.tokenServer?.requests.length ?? 0;
    const { stdout } = await run(skopeo, [
      "inspect",
      "--tls-verify=false",
      "--creds",
      "kpull:secret",
      `docker://${r.host}/team/app:v1`,
    ]);
    assert.equal((JSON.parse(stdout) as { Digest: string }).Digest, image.manifest.digest);
    const asked = r.tokenServer?.requests.slice(before) ?? [];
    assert.ok(asked.length >= 1);
    assert.ok(asked.every((q) => q.user === "kpull" && q.status === 200));
    assert.ok(asked.some((q) => q.scopes.includes("repository:team/app:pull")));
  });
});

describe("registry with TLS", () => {
  const registry = useRegistry({ tls: true });
  const tokenTls = useRegistry({ tls: true, auth: "token" });
  let agent: Agent;
  let f: typeof fetch;
  before(() => seedImage(registry(), "team/app", "v1", image));
  before(() => {
    agent = new Agent({ connect: { ca: registry().caPem ?? "" } });
    f = ((url: string | URL, init?: RequestInit) =>
      undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
  });
  after(() => agent.close());

  it("serves HTTPS with a certificate for 127.0.0.1 signed by the run's CA", async () => {
    const r = registry();
    assert.equal(r.url, `https://${r.host}`);
    assert.ok(r.caFile && existsSync(r.caFile));
    assert.match(r.caPem ?? "", /BEGIN CERTIFICATE/);
    await fetchPushImage(f, r.url, "team/app", "v1", image);
    const got = await fetchManifest(f, r.url, "team/app", "v1");
    assert.equal(got.headers.get("docker-content-digest"), image.manifest.digest);
    await assert.rejects(undiciFetch(`${r.url}/v2/`), (e: Error) => {
      assert.match(String((e.cause as Error | undefined)?.message ?? e.message), /certificate/i);
      return true;
    });
  });

  it("skopeo verifies it with the CA (--cert-dir)", async () => {
    const r = registry();
    const skopeo = requireTool("skopeo", "skopeo");
    const certDir = mkdtempSync(join(tmpdir(), "kpull-certdir-"));
    try {
      writeFileSync(join(certDir, "ca.crt"), r.caPem ?? "");
      const { stdout } = await run(skopeo, [
        "inspect",
        "--cert-dir",
        certDir,
        `docker://${r.host}/team/app:v1`,
      ]);
      assert.equal((JSON.parse(stdout) as { Digest: string }).Digest, image.manifest.digest);
    } finally {
      rmSync(certDir, { recursive: true, force: true });
    }
  });

  it("token auth over TLS: the token server speaks HTTPS with the same CA", async () => {
    const r = tokenTls();
    assert.match(r.tokenServer?.realm ?? "", /^https:\/\/127\.0\.0\.1:\d+\/token$/);
    await seedImage(r, "team/app", "v1", image);
    const token = await tokenFrom(r, ["repository:team/app:pull"], basicHeader("kpull", "secret"));
    const tlsAgent = new Agent({ connect: { ca: r.caPem ?? "" } });
    try {
      const res = await undiciFetch(`${r.url}/v2/team/app/manifests/v1`, {
        headers: { authorization: `Bearer ${token.body.token}`, accept: MEDIA.ociManifest },
        dispatcher: tlsAgent,
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    } finally {
      await tlsAgent.close();
    }
  });
});

describe("fault-injecting proxy", () => {
  const registry = useRegistry({ auth: "basic" });
  const auth = { authorization: basicHeader("kpull", "secret") };
  // 200 KiB of incompressible bytes: large enough that a cut lands mid-body
  const big = tinyImage({
    layers: [
      {
        "big.bin": Buffer.concat(
          Array.from({ length: 6400 }, (_, i) => sha256(Buffer.from([i % 256, i >> 8])).slice(7, 39)).map(
            (s) => Buffer.from(s, "hex"),
          ),
        ),
      },
    ],
  });
  const bigLayer = big.layers[0];
  let proxy: RunningProxy;
  before(async () => {
    await seedImage(registry(), "team/big", "v1", big);
    proxy = await startProxy(registry());
  });
  after(() => proxy.stop());

  it("passes requests through; registry Locations point back at the proxy", async () => {
    proxy.setScript([]);
    const start = await fetch(`${proxy.url}/v2/team/app/blobs/uploads/`, { method: "POST", headers: auth });
    assert.equal(start.status, 202);
    assert.ok(start.headers.get("location")?.startsWith(`${proxy.url}/v2/team/app/blobs/uploads/`));
    await fetchPushImage(fetch, proxy.url, "team/app", "v1", image, auth);
    assert.equal(proxy.count({ method: "PUT", path: /\/manifests\// }), 1);
  });

  it("drops the connection after N body bytes, once", async () => {
    assert.ok(bigLayer);
    proxy.setScript([
      { method: "GET", path: /\/blobs\/sha256:/, times: 1, action: { kind: "drop", afterBytes: 1000 } },
    ]);
    const url = `${proxy.url}/v2/team/big/blobs/${bigLayer.digest}`;
    const first = await fetch(url, { headers: auth });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("content-length"), String(bigLayer.bytes.byteLength));
    await assert.rejects(first.arrayBuffer());
    const second = await fetch(url, { headers: { ...auth, range: "bytes=1000-" } });
    assert.equal(second.status, 206);
    assert.deepEqual(Buffer.from(await second.arrayBuffer()), bigLayer.bytes.subarray(1000));
    const gets = proxy.requests.filter((q) => q.path.includes(bigLayer.digest));
    assert.deepEqual(
      gets.map((q) => [q.action, q.bytesSent, q.range]),
      [
        ["drop", 1000, null],
        ["pass", bigLayer.bytes.byteLength - 1000, "bytes=1000-"],
      ],
    );
  });

  it("stalls mid-body until the client gives up", async () => {
    assert.ok(bigLayer);
    proxy.setScript([{ path: /\/blobs\//, action: { kind: "stall", afterBytes: 10 } }]);
    const res = await fetch(`${proxy.url}/v2/team/big/blobs/${bigLayer.digest}`, {
      headers: auth,
      signal: AbortSignal.timeout(300),
    });
    const t0 = Date.now();
    await assert.rejects(res.arrayBuffer(), { name: "TimeoutError" });
    assert.ok(Date.now() - t0 >= 200);
  });

  it("answers scripted responses", async () => {
    proxy.setScript((q) =>
      q.path.includes("/manifests/")
        ? {
            kind: "respond",
            status: 429,
            headers: { "retry-after": "1" },
            body: '{"errors":[{"code":"TOOMANYREQUESTS"}]}',
          }
        : null,
    );
    const res = await fetchManifest(fetch, proxy.url, "team/app", "v1", auth);
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("retry-after"), "1");
    assert.match(await res.text(), /TOOMANYREQUESTS/);
    assert.equal((await fetch(`${proxy.url}/v2/`, { headers: auth })).status, 200);
  });

  it("redirects blob GETs to another host that must not see Authorization", async () => {
    assert.ok(bigLayer);
    proxy.setScript([{ method: "GET", path: /\/blobs\/sha256:/, action: { kind: "redirect" } }]);
    const blobHost = proxy.blobHost;
    assert.ok(blobHost);
    assert.notEqual(blobHost.host, registry().host);
    const url = `${proxy.url}/v2/team/big/blobs/${bigLayer.digest}`;
    const manual = await fetch(url, { headers: auth, redirect: "manual" });
    assert.equal(manual.status, 307);
    const location = manual.headers.get("location") ?? "";
    assert.ok(location.startsWith(`${blobHost.url}/`), location);
    // fetch drops Authorization on a cross-origin redirect: the blob host serves the bytes
    const followed = await fetch(url, { headers: auth });
    assert.equal(followed.status, 200);
    assert.equal(sha256(Buffer.from(await followed.arrayBuffer())), bigLayer.digest);
    // a client that forwards Authorization is refused, like a presigned storage URL would
    const leaked = await fetch(location, { headers: auth });
    assert.equal(leaked.status, 400);
    const ranged = await fetch(location, { headers: { range: "bytes=100-199" } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get("content-range"), `bytes 100-199/${bigLayer.bytes.byteLength}`);
    assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), bigLayer.bytes.subarray(100, 200));
    assert.deepEqual(
      blobHost.requests.map((q) => [q.status, q.authorization !== null]),
      [
        [200, false],
        [400, true],
        [206, false],
      ],
    );
  });
});

describe("process lifecycle", () => {
  it("stop() kills the registry, closes its port and removes its files", async () => {
    const r = await startRegistry({ auth: "token" });
    const tokenPort = Number(new URL(r.tokenServer?.url ?? "").port);
    assert.ok(alive(r.pid));
    await r.stop();
    assert.equal(alive(r.pid), false);
    assert.equal(await portClosed(r.port), true);
    assert.equal(await portClosed(tokenPort), true);
    assert.equal(existsSync(r.root), false);
    await r.stop(); // idempotent
  });

  const child = (mode: "exit" | "hang") => `
    import { startRegistry } from ${JSON.stringify(join(HERE, "index.ts"))};
    const r = await startRegistry();
    console.log(JSON.stringify({ pid: r.pid, port: r.port, root: r.root, node: process.pid }));
    if (${JSON.stringify(mode)} === "exit") process.exit(3);
    setInterval(() => {}, 1000);
  `;

  // The child runs under a small perl wrapper that is a child subreaper (prctl PR_SET_CHILD_SUBREAPER): the
  // registry it orphans is reparented to the wrapper and reaped there, so no zombie is left for PID 1, and
  // the wrapper's exit tells us every process under it is gone.
  const PRCTL = ({ x64: 157, arm64: 167 } as Record<string, number>)[process.arch];
  const REAPER = `syscall(${PRCTL}, 36, 1) == 0 or die "prctl: $!"; my $pid = fork() // die; if ($pid == 0) { exec @ARGV or die "exec: $!" } while (wait() != -1) {} exit 0;`;

  async function startChild(mode: "exit" | "hang") {
    const dir = mkdtempSync(join(tmpdir(), "kpull-harness-child-"));
    const script = join(dir, "child.ts");
    writeFileSync(script, child(mode));
    const perl = PRCTL === undefined ? null : findTool("perl");
    const [cmd, args] = perl
      ? [perl, ["-e", REAPER, process.execPath, script]]
      : [process.execPath, [script]];
    const wrapper = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    const wrapperExit = new Promise<void>((resolve) => wrapper.once("exit", () => resolve()));
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      wrapper.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("\n")) resolve(out.split("\n")[0] ?? "");
      });
      wrapper.once("exit", (code) => reject(new Error(`child exited ${code} before starting a registry`)));
    });
    const info = JSON.parse(line) as { pid: number; port: number; root: string; node: number };
    return { wrapperExit, dir, info };
  }

  it("a test process that exits without stop() takes its registry with it", async () => {
    const { wrapperExit, dir, info } = await startChild("exit");
    try {
      await wrapperExit;
      assert.ok(await waitFor(async () => !alive(info.pid), 3000), `registry ${info.pid} survived`);
      assert.ok(await waitFor(() => portClosed(info.port), 3000), `port ${info.port} still open`);
      assert.equal(existsSync(info.root), false, "exit hook removes the temp dir");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a test process killed with SIGKILL takes its registry with it (pdeathsig)", async () => {
    const { wrapperExit, dir, info } = await startChild("hang");
    try {
      process.kill(info.node, "SIGKILL");
      await wrapperExit;
      assert.ok(await waitFor(async () => !alive(info.pid), 3000), `registry ${info.pid} survived`);
      assert.ok(await waitFor(() => portClosed(info.port), 3000), `port ${info.port} still open`);
    } finally {
      rmSync(info.root, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
