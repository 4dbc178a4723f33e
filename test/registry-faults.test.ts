// The registry client against bad answers (a hostile server of our own), stalls, mirrors, and credentials
// from helpers and provider plugins against the real registry.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CredentialStore, RegistryClient, RegistryError } from "../src/registry/index.ts";
import { seedImage, sha256, startProxy, tinyImage, useRegistry } from "./harness/index.ts";

const clients: RegistryClient[] = [];
const servers: http.Server[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

function client(options: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({
    hostsDir: tempDir("kpull-hosts-"),
    credentials: new CredentialStore({ dockerConfigDir: null, env: {} }),
    retryBaseMs: 5,
    retryMaxMs: 20,
    ...options,
  });
  clients.push(c);
  return c;
}

/** A loopback HTTP server that plays a misbehaving registry. */
async function hostile(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  message?: RegExp,
): Promise<RegistryError> {
  let caught: unknown;
  await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => {
      caught = e;
    },
  );
  assert.ok(caught instanceof RegistryError, `expected a RegistryError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

describe("bad registry answers", () => {
  it("a manifest declaring 5 GB is refused before reading it", async () => {
    const host = await hostile((_req, res) => {
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "content-length": "5000000000",
      });
      res.write("{");
    });
    const started = Date.now();
    await rejectsWith(client().repository(`${host}/a/b:v1`).manifest(), "TOO_LARGE", /5000000000 bytes/);
    assert.ok(Date.now() - started < 5000);
  });

  it("an endless manifest body stops at the limit", async () => {
    const host = await hostile((_req, res) => {
      res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (res.write(chunk)) {
          /* keep writing until the socket pushes back */
        }
      };
      res.on("drain", pump);
      res.on("error", () => {});
      pump();
    });
    await rejectsWith(
      client({ maxManifestBytes: 1024 * 1024 })
        .repository(`${host}/a/b:v1`)
        .manifest(),
      "TOO_LARGE",
    );
  });

  it("a manifest fetched by digest with other bytes is refused", async () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    const host = await hostile((_req, res) => {
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.index.v1+json",
        "content-length": body.length,
      });
      res.end(body);
    });
    const wrong = `sha256:${"0".repeat(64)}`;
    await rejectsWith(
      client().repository(`${host}/a/b@${wrong}`).manifest(),
      "DIGEST_MISMATCH",
      new RegExp(sha256(body)),
    );
  });

  it("a lying Content-Length is a typed error, not a hang", async () => {
    const host = await hostile((req, res) => {
      if (req.method === "HEAD") {
        res.writeHead(405);
        res.end();
        return;
      }
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "content-length": "100",
      });
      res.end('{"schemaVersion":2}'); // 19 bytes, then the connection closes
      req.socket.destroy();
    });
    const error = await rejectsWith(
      client({ attempts: 2 }).repository(`${host}/a/b:v1`).resolve(),
      "NETWORK",
    );
    assert.match(error.message, /manifest a\/b:v1/);
  });

  it("a redirect loop stops after 10 hops", async () => {
    const host = await hostile((req, res) => {
      res.writeHead(307, { location: req.url ?? "/" });
      res.end();
    });
    await rejectsWith(client().repository(`${host}/a/b:v1`).manifest(), "REDIRECT", /10 redirects/);
  });

  it("a token server that answers HTML is AUTH_FAILED", async () => {
    let realm = "";
    const host = await hostile((req, res) => {
      if (req.url?.startsWith("/token")) {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<html><body>Sign in</body></html>");
        return;
      }
      res.writeHead(401, { "www-authenticate": `Bearer realm="${realm}",service="hostile"` });
      res.end();
    });
    realm = `http://${host}/token`;
    await rejectsWith(client().repository(`${host}/a/b:v1`).resolve(), "AUTH_FAILED", /did not answer JSON/);
  });

  it("a pull's signal ends a Retry-After wait at once (a deadline never waits for the registry's minute)", async () => {
    const host = await hostile((_req, res) => {
      res.writeHead(429, { "retry-after": "3600", "content-type": "application/json" });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
    });
    const started = Date.now();
    const c = new RegistryClient({
      hostsDir: tempDir("kpull-hosts-"),
      credentials: new CredentialStore({ dockerConfigDir: null, env: {} }),
    });
    clients.push(c);
    await rejectsWith(
      c.repository(`${host}/a/b:v1`).resolve({ signal: AbortSignal.timeout(300) }),
      "TIMEOUT",
      /aborted while waiting to retry/,
    );
    assert.ok(Date.now() - started < 2000, `${Date.now() - started} ms`);
  });

  it("surfaces rate-limit headers", async () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    const host = await hostile((_req, res) => {
      res.writeHead(200, {
        "content-type": "application/vnd.oci.image.index.v1+json",
        "content-length": body.length,
        "docker-content-digest": sha256(body),
        "ratelimit-limit": "100;w=21600",
        "ratelimit-remaining": "20;w=21600",
        "docker-ratelimit-source": "192.0.2.1",
      });
      res.end(body);
    });
    const c = client();
    await c.repository(`${host}/a/b:v1`).resolve();
    assert.deepEqual(c.stats.rateLimit, {
      limit: 100,
      remaining: 20,
      windowSeconds: 21600,
      source: "192.0.2.1",
    });
  });
});

describe("stalls and mirrors against the real registry", () => {
  const upstream = useRegistry();
  const mirror = useRegistry();

  it("a stalled blob download times out and resumes where it stopped", async () => {
    const r = upstream();
    const image = tinyImage({
      layers: [{ "n.bin": Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251)) }],
    });
    await seedImage(r, "team/stall", "v1", image);
    const layer = image.layers[0];
    assert.ok(layer);
    const proxy = await startProxy(r, [
      { method: "GET", path: /\/blobs\//, times: 1, action: { kind: "stall", afterBytes: 1000 } },
    ]);
    try {
      const c = client({ stallTimeoutMs: 300 });
      const parts: Buffer[] = [];
      for await (const chunk of c.repository(`${proxy.host}/team/stall:v1`).blob({
        mediaType: layer.mediaType,
        digest: layer.digest,
        size: layer.bytes.byteLength,
      })) {
        parts.push(chunk);
      }
      assert.equal(sha256(Buffer.concat(parts)), layer.digest);
      const gets = proxy.requests.filter((q) => q.method === "GET");
      assert.equal(gets.length, 2);
      assert.equal(gets[1]?.range, "bytes=1000-");
    } finally {
      await proxy.stop();
    }
  });

  it("tries mirrors from hosts.toml in order and falls back to the upstream", async () => {
    const up = upstream();
    const m = mirror();
    const image = tinyImage();
    await seedImage(up, "team/mirrored", "v1", image);
    const hostsDir = tempDir("kpull-hosts-");
    mkdirSync(join(hostsDir, up.host));
    writeFileSync(
      join(hostsDir, up.host, "hosts.toml"),
      `server = "http://${up.host}"\n\n[host."http://${m.host}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const c = client({ hostsDir });
    const desc = await c.repository(`${up.host}/team/mirrored:v1`).resolve();
    assert.equal(desc.digest, image.manifest.digest);
    const mine = async (r: typeof up) =>
      (await r.accessLog()).filter((e) => e.path.includes("/team/mirrored/"));
    assert.deepEqual(
      (await mine(m)).map((e) => `${e.method} ${e.path} ${e.status}`),
      [`HEAD /v2/team/mirrored/manifests/v1?ns=${encodeURIComponent(up.host)} 404`],
    );
    assert.deepEqual(
      (await mine(up)).map((e) => e.method),
      ["HEAD"],
    );

    // Once the mirror has the image, the upstream is not contacted at all.
    await seedImage(m, "team/mirrored", "v1", image);
    const before = (await mine(up)).length;
    const again = await client({ hostsDir }).repository(`${up.host}/team/mirrored:v1`).resolve();
    assert.equal(again.digest, image.manifest.digest);
    assert.equal((await mine(up)).length, before);
  });
});

describe("credentials from helpers and plugins against a real registry", () => {
  const registry = useRegistry({ auth: "basic" });

  function script(dir: string, name: string, body: string): void {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
  }

  it("uses a docker-credential helper named in credHelpers", async () => {
    const r = registry();
    const image = tinyImage();
    await seedImage(r, "team/helper", "v1", image);
    const [user, password] = Object.entries(r.users)[0] ?? ["", ""];
    const bin = tempDir("kpull-bin-");
    script(
      bin,
      "docker-credential-kpulltest",
      `cat >/dev/null; printf '{"ServerURL":"%s","Username":"${user}","Secret":"${password}"}' "${r.host}"`,
    );
    const config = tempDir("kpull-docker-");
    writeFileSync(join(config, "config.json"), JSON.stringify({ credHelpers: { [r.host]: "kpulltest" } }));
    const c = client({
      credentials: new CredentialStore({ dockerConfigDir: config, env: { PATH: `${bin}:/usr/bin:/bin` } }),
    });
    assert.equal((await c.repository(`${r.host}/team/helper:v1`).resolve()).digest, image.manifest.digest);
  });

  it("uses a kubelet credential provider plugin", async () => {
    const r = registry();
    const image = tinyImage();
    await seedImage(r, "team/plugin", "v1", image);
    const [user, password] = Object.entries(r.users)[0] ?? ["", ""];
    const bin = tempDir("kpull-plugins-");
    const response = JSON.stringify({
      apiVersion: "credentialprovider.kubelet.k8s.io/v1",
      kind: "CredentialProviderResponse",
      cacheKeyType: "Registry",
      cacheDuration: "5m",
      auth: { [r.host]: { username: user, password } },
    });
    script(bin, "kpull-test-plugin", `cat >/dev/null; printf '%s' '${response}'`);
    const config = join(tempDir("kpull-cpc-"), "config.yaml");
    writeFileSync(
      config,
      [
        "apiVersion: kubelet.config.k8s.io/v1",
        "kind: CredentialProviderConfig",
        "providers:",
        "  - name: kpull-test-plugin",
        "    apiVersion: credentialprovider.kubelet.k8s.io/v1",
        `    matchImages: ["${r.host}"]`,
        "    defaultCacheDuration: 1m",
        "",
      ].join("\n"),
    );
    const c = client({
      credentials: new CredentialStore({
        dockerConfigDir: null,
        credentialProviderConfig: config,
        credentialProviderBinDir: bin,
        env: { PATH: "/usr/bin:/bin" },
      }),
    });
    assert.equal((await c.repository(`${r.host}/team/plugin:v1`).resolve()).digest, image.manifest.digest);
  });
});
