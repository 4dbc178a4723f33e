// Integration tests of the registry client against real CNCF Distribution registries (test/harness).

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  CredentialStore,
  type Descriptor,
  type ImageManifest,
  MediaType,
  parsePlatform,
  RegistryClient,
  RegistryError,
} from "../src/registry/index.ts";
import {
  MEDIA,
  type RunningRegistry,
  seedImage,
  seedIndex,
  sha256,
  startProxy,
  type TestImage,
  tinyImage,
  useRegistry,
} from "./harness/index.ts";

const clients: RegistryClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

function emptyHostsDir(): string {
  return mkdtempSync(join(tmpdir(), "kpull-hosts-"));
}

function dockerConfig(registry: RunningRegistry, user: string, password: string): string {
  const dir = mkdtempSync(join(tmpdir(), "kpull-docker-"));
  const auth = Buffer.from(`${user}:${password}`).toString("base64");
  writeFileSync(join(dir, "config.json"), JSON.stringify({ auths: { [registry.host]: { auth } } }));
  return dir;
}

function client(options: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({ hostsDir: emptyHostsDir(), retryBaseMs: 5, retryMaxMs: 50, ...options });
  clients.push(c);
  return c;
}

function anonymous(): CredentialStore {
  return new CredentialStore({ dockerConfigDir: null, env: {} });
}

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(c);
  return Buffer.concat(parts);
}

function bigLayerImage(): TestImage {
  // Random content does not compress: the gzip layer is about as large as the data, so a drop after
  // 100 KB really happens mid-body.
  const noise = Buffer.concat(
    Array.from({ length: 16_384 }, (_, i) => createHash("sha256").update(`kpull-${i}`).digest()),
  );
  return tinyImage({ layers: [{ "noise.bin": noise }] });
}

describe("registry client without auth", () => {
  const registry = useRegistry();

  it("resolves a tag with exactly one HEAD", async () => {
    const r = registry();
    const image = tinyImage();
    await seedImage(r, "team/app", "v1", image);
    const c = client({ credentials: anonymous() });
    const desc = await c.repository(`${r.host}/team/app:v1`).resolve();
    assert.equal(desc.digest, image.manifest.digest);
    assert.equal(desc.size, image.manifest.bytes.byteLength);
    assert.equal(desc.mediaType, MEDIA.ociManifest);
    assert.deepEqual(c.stats.requests, { HEAD: 1, GET: 0, POST: 0, PUT: 0, PATCH: 0, DELETE: 0 });
    const log = await r.accessLog();
    assert.deepEqual(
      log.map((e) => `${e.method} ${e.path}`),
      ["HEAD /v2/team/app/manifests/v1"],
    );
  });

  it("resolves by digest, trusting the requested digest", async () => {
    const r = registry();
    const image = tinyImage({ format: "docker" });
    await seedImage(r, "team/docker", "v1", image);
    const c = client({ credentials: anonymous() });
    const desc = await c.repository(`${r.host}/team/docker@${image.manifest.digest}`).resolve();
    assert.equal(desc.digest, image.manifest.digest);
    assert.equal(desc.mediaType, MEDIA.dockerManifest);
  });

  it("chooses the platform from an index and verifies every manifest", async () => {
    const r = registry();
    const images = await seedIndex(r, "multi/app", "v1");
    const c = client({ credentials: anonymous() });
    const repo = c.repository(`${r.host}/multi/app:v1`);
    const arm = await repo.resolveImage({ platform: parsePlatform("linux/arm64") });
    assert.equal(arm.manifest.descriptor.digest, images.arm64?.manifest.digest);
    assert.equal(arm.index?.descriptor.mediaType, MediaType.ociIndex);
    const amd = await repo.resolveImage({ platform: parsePlatform("linux/amd64") });
    assert.equal(amd.manifest.descriptor.digest, images.amd64?.manifest.digest);
    await assert.rejects(repo.resolveImage({ platform: parsePlatform("linux/s390x") }), {
      code: "NO_MATCHING_PLATFORM",
      message: "no matching manifest for linux/s390x in the manifest list entries",
    });
  });

  it("streams a blob, verified", async () => {
    const r = registry();
    const image = bigLayerImage();
    await seedImage(r, "team/big", "v1", image);
    const layer = image.layers[0];
    assert.ok(layer);
    const c = client({ credentials: anonymous() });
    const desc: Descriptor = {
      mediaType: layer.mediaType,
      digest: layer.digest,
      size: layer.bytes.byteLength,
    };
    const bytes = await collect(c.repository(`${r.host}/team/big:v1`).blob(desc));
    assert.equal(sha256(bytes), layer.digest);
    assert.ok(c.stats.bytesReceived >= layer.bytes.byteLength);
  });

  it("refuses a manifest that does not exist with MANIFEST_UNKNOWN", async () => {
    const r = registry();
    const c = client({ credentials: anonymous() });
    await assert.rejects(c.repository(`${r.host}/team/none:v9`).manifest(), (e: unknown) => {
      assert.ok(e instanceof RegistryError);
      assert.match(e.code, /MANIFEST_UNKNOWN|NAME_UNKNOWN/);
      assert.equal(e.kubeletReason, "ErrImagePull");
      return true;
    });
  });

  it("pushes blobs and manifests that the registry serves back byte for byte", async () => {
    const r = registry();
    const image = tinyImage({ layers: [{ a: "1" }, { b: "2" }] });
    const c = client({ credentials: anonymous(), chunkSize: 64 });
    const repo = c.repository(`${r.host}/pushed/app:v1`);
    for (const b of [image.config, ...image.layers]) {
      const d = { mediaType: b.mediaType, digest: b.digest, size: b.bytes.byteLength };
      assert.equal(await repo.pushBlob(d, Buffer.from(b.bytes)), "uploaded");
      assert.equal(await repo.pushBlob(d, Buffer.from(b.bytes)), "exists");
    }
    assert.ok(c.stats.requests.PATCH > 0, "blobs above chunkSize go in PATCH chunks");
    const pushed = await repo.pushManifest(Buffer.from(image.manifest.bytes), image.manifest.mediaType, "v1");
    assert.equal(pushed.digest, image.manifest.digest);
    const fetched = await c.repository(`${r.host}/pushed/app:v1`).manifest();
    assert.deepEqual(fetched.bytes, Buffer.from(image.manifest.bytes));
    const other = c.repository(`${r.host}/other/app:v1`);
    const layer = image.layers[0];
    assert.ok(layer);
    const mounted = await other.pushBlob(
      { mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.byteLength },
      Buffer.from(layer.bytes),
      { mountFrom: "pushed/app" },
    );
    assert.equal(mounted, "mounted");
  });

  it("resumes a blob with Range after the connection drops", async () => {
    const r = registry();
    const image = bigLayerImage();
    await seedImage(r, "team/resume", "v1", image);
    const layer = image.layers[0];
    assert.ok(layer);
    const proxy = await startProxy(r, [
      { method: "GET", path: /\/blobs\//, times: 2, action: { kind: "drop", afterBytes: 100_000 } },
    ]);
    try {
      const c = client({ credentials: anonymous(), insecureRegistries: [proxy.host] });
      const desc = { mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.byteLength };
      const bytes = await collect(c.repository(`${proxy.host}/team/resume:v1`).blob(desc));
      assert.equal(sha256(bytes), layer.digest);
      const gets = proxy.requests.filter((q) => q.method === "GET");
      assert.equal(gets.length, 3);
      assert.equal(gets[0]?.range, null);
      assert.equal(gets[1]?.range, "bytes=100000-");
      assert.equal(gets[2]?.range, "bytes=200000-");
    } finally {
      await proxy.stop();
    }
  });

  it("never yields the last chunk of a blob whose digest is wrong", async () => {
    const r = registry();
    const image = tinyImage();
    await seedImage(r, "team/corrupt", "v1", image);
    const layer = image.layers[0];
    assert.ok(layer);
    const flipped = Buffer.from(layer.bytes);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 0xff;
    const proxy = await startProxy(r, [
      { method: "GET", path: /\/blobs\//, action: { kind: "respond", status: 200, body: flipped } },
    ]);
    try {
      const c = client({ credentials: anonymous() });
      const desc = { mediaType: layer.mediaType, digest: layer.digest, size: layer.bytes.byteLength };
      const seen: Buffer[] = [];
      await assert.rejects(
        (async () => {
          for await (const chunk of c.repository(`${proxy.host}/team/corrupt:v1`).blob(desc))
            seen.push(chunk);
        })(),
        { code: "DIGEST_MISMATCH" },
      );
      assert.ok(Buffer.concat(seen).length < layer.bytes.byteLength, "the unverified tail was held back");
    } finally {
      await proxy.stop();
    }
  });

  it("waits out a 429 with Retry-After and retries 503s", async () => {
    const r = registry();
    const image = tinyImage();
    await seedImage(r, "team/busy", "v1", image);
    const proxy = await startProxy(r, [
      {
        method: "HEAD",
        path: /\/manifests\//,
        times: 1,
        action: { kind: "respond", status: 429, headers: { "retry-after": "1" } },
      },
      { method: "HEAD", path: /\/manifests\//, times: 1, action: { kind: "respond", status: 503 } },
    ]);
    const waits: number[] = [];
    try {
      const c = client({
        credentials: anonymous(),
        sleep: async (ms: number) => {
          waits.push(ms);
        },
      });
      const desc = await c.repository(`${proxy.host}/team/busy:v1`).resolve();
      assert.equal(desc.digest, image.manifest.digest);
      assert.equal(waits[0], 1000, "Retry-After: 1 means one second");
      assert.equal(waits.length, 2);
      assert.equal(c.stats.requests.HEAD, 3);
    } finally {
      await proxy.stop();
    }
  });
});

describe("registry client with basic auth", () => {
  const registry = useRegistry({ auth: "basic" });

  it("answers the Basic challenge with config.json credentials and never sends them to a redirect host", async () => {
    const r = registry();
    const image = tinyImage();
    await seedImage(r, "team/app", "v1", image);
    const [user, password] = Object.entries(r.users)[0] ?? ["", ""];
    const proxy = await startProxy(r, [{ method: "GET", path: /\/blobs\//, action: { kind: "redirect" } }]);
    try {
      const creds = new CredentialStore({ dockerConfigDir: dockerConfig(r, user, password), env: {} });
      // The credentials are keyed by the registry's host; the proxy forwards to it under its own host.
      const c = client({
        credentials: { lookup: (repo) => creds.lookup(repo.replace(proxy.host, r.host)) },
      });
      const repo = c.repository(`${proxy.host}/team/app:v1`);
      const { manifest } = await repo.resolveImage({ platform: parsePlatform("linux/amd64") });
      const layer = (manifest.json as ImageManifest).layers[0];
      assert.ok(layer);
      const bytes = await collect(repo.blob(layer));
      assert.equal(sha256(bytes), layer.digest);
      const blobHost = proxy.blobHost;
      assert.ok(blobHost);
      assert.ok(blobHost.requests.length > 0, "the blob came from the redirect host");
      for (const q of blobHost.requests) assert.equal(q.authorization, null);
    } finally {
      await proxy.stop();
    }
  });

  it("fails with UNAUTHORIZED on a wrong password, without leaking it", async () => {
    const r = registry();
    const [user] = Object.keys(r.users);
    const creds = new CredentialStore({
      dockerConfigDir: dockerConfig(r, user ?? "", "not-the-password"),
      env: {},
    });
    const c = client({ credentials: creds });
    await assert.rejects(c.repository(`${r.host}/team/app:v1`).resolve(), (e: unknown) => {
      assert.ok(e instanceof RegistryError);
      assert.equal(e.code, "UNAUTHORIZED");
      assert.doesNotMatch(e.message, /not-the-password/);
      return true;
    });
  });
});

describe("registry client with token auth", () => {
  const registry = useRegistry({ auth: "token" });

  it("fetches one token per scope set and reuses it", async () => {
    const r = registry();
    const image = tinyImage();
    await seedImage(r, "team/app", "v1", image);
    const [user, password] = Object.entries(r.users)[0] ?? ["", ""];
    const creds = new CredentialStore({ dockerConfigDir: dockerConfig(r, user, password), env: {} });
    const c = client({ credentials: creds });
    const before = r.tokenServer?.requests.length ?? 0;
    const repo = c.repository(`${r.host}/team/app:v1`);
    await repo.resolve();
    await repo.resolve();
    const fetched = await repo.manifest(image.manifest.digest);
    assert.equal(fetched.descriptor.digest, image.manifest.digest);
    const requests = r.tokenServer?.requests.slice(before) ?? [];
    assert.equal(requests.length, 1, "one token for repository:team/app:pull");
    assert.deepEqual(requests[0]?.scopes, ["repository:team/app:pull"]);
    assert.equal(requests[0]?.user, user);
    assert.equal(c.stats.tokenRequests, 1);
  });

  it("gets an anonymous token for a public repository", async () => {
    const r = registry();
    await seedImage(r, "public/app", "v1", tinyImage());
    const c = client({ credentials: anonymous() });
    const desc = await c.repository(`${r.host}/public/app:v1`).resolve();
    assert.match(desc.digest, /^sha256:/);
  });

  it("refuses a private repository to anonymous pulls", async () => {
    const r = registry();
    await seedImage(r, "private/app", "v1", tinyImage());
    const c = client({ credentials: anonymous() });
    await assert.rejects(c.repository(`${r.host}/private/app:v1`).resolve(), { code: "UNAUTHORIZED" });
  });
});

describe("registry client over TLS", () => {
  const registry = useRegistry({ tls: true });

  it("verifies the registry with the CA from hosts.toml", async () => {
    const r = registry();
    const image = tinyImage();
    await seedImage(r, "team/app", "v1", image);
    const hostsDir = emptyHostsDir();
    const dir = join(hostsDir, r.host);
    const { mkdirSync } = await import("node:fs");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "ca.pem"), r.caPem ?? "");
    writeFileSync(
      join(dir, "hosts.toml"),
      `server = "https://${r.host}"\n\n[host."https://${r.host}"]\n  ca = "ca.pem"\n`,
    );
    const c = client({ credentials: anonymous(), hostsDir });
    const desc = await c.repository(`${r.host}/team/app:v1`).resolve();
    assert.equal(desc.digest, image.manifest.digest);
  });
});
