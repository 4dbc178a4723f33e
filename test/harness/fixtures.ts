// Small deterministic images and a raw push (monolithic POST + PUT ?digest, then the manifest) for seeding
// test registries. This is test scaffolding, not kpull's push path: it speaks just enough of the protocol
// (Basic, or a Bearer token from the harness's own token server) to put bytes in place.

import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { rawRequest } from "./http.ts";
import type { RunningRegistry } from "./registry.ts";

export interface TestBlob {
  readonly digest: string;
  readonly mediaType: string;
  readonly bytes: Buffer;
}

export interface TestImage {
  readonly config: TestBlob;
  readonly layers: readonly TestBlob[];
  /** manifest.bytes is the manifest JSON exactly as pushed; manifest.digest its digest */
  readonly manifest: TestBlob;
}

export const MEDIA = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function blob(mediaType: string, bytes: Buffer): TestBlob {
  return { digest: sha256(bytes), mediaType, bytes };
}

/** A ustar archive of regular files, sorted by name, mode 0644, uid/gid 0, mtime 0: byte-for-byte stable. */
export function tarOf(files: Record<string, string | Uint8Array>): Buffer {
  const parts: Buffer[] = [];
  for (const name of Object.keys(files).sort()) {
    const content = Buffer.from(files[name] ?? "");
    if (Buffer.byteLength(name) > 100) throw new Error(`tarOf: name too long: ${name}`);
    const h = Buffer.alloc(512);
    const put = (offset: number, text: string) => h.write(text, offset, "ascii");
    h.write(name, 0, "utf8");
    put(100, "0000644\0");
    put(108, "0000000\0");
    put(116, "0000000\0");
    put(124, `${content.byteLength.toString(8).padStart(11, "0")}\0`);
    put(136, "00000000000\0");
    put(148, "        ");
    put(156, "0");
    put(257, "ustar\0");
    put(263, "00");
    let sum = 0;
    for (const b of h) sum += b;
    put(148, `${sum.toString(8).padStart(6, "0")}\0 `);
    parts.push(h, content, Buffer.alloc((512 - (content.byteLength % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/**
 * A small single-platform image. Same options → same bytes → same digests.
 * `format` picks OCI or Docker schema2 media types; each entry of `layers` becomes one gzip layer.
 */
export function tinyImage(
  options: {
    layers?: Record<string, string | Uint8Array>[];
    format?: "oci" | "docker";
    architecture?: string;
    os?: string;
  } = {},
): TestImage {
  const format = options.format ?? "oci";
  const layerFiles = options.layers ?? [{ "hello.txt": "hello from kpull's test harness\n" }];
  const tars = layerFiles.map(tarOf);
  const layerType = format === "oci" ? MEDIA.ociLayerGzip : MEDIA.dockerLayerGzip;
  const layers = tars.map((t) => blob(layerType, gzipSync(t, { level: 9 })));
  const configJson = {
    architecture: options.architecture ?? "amd64",
    os: options.os ?? "linux",
    config: { Cmd: ["/hello"] },
    rootfs: { type: "layers", diff_ids: tars.map(sha256) },
    history: tars.map(() => ({ created_by: "kpull test harness" })),
  };
  const config = blob(
    format === "oci" ? MEDIA.ociConfig : MEDIA.dockerConfig,
    Buffer.from(JSON.stringify(configJson)),
  );
  const manifestType = format === "oci" ? MEDIA.ociManifest : MEDIA.dockerManifest;
  const desc = (b: TestBlob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.bytes.byteLength });
  const manifestJson = {
    schemaVersion: 2,
    mediaType: manifestType,
    config: desc(config),
    layers: layers.map(desc),
  };
  return { config, layers, manifest: blob(manifestType, Buffer.from(JSON.stringify(manifestJson, null, 2))) };
}

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/**
 * The Authorization header value that lets `user` (default: the registry's first user; null: anonymous) do
 * `actions` on `repo`: null for an auth-less registry (or anonymous basic), Basic for htpasswd, a Bearer
 * token from the token server for token mode. Throws when the token server refuses.
 */
export async function authorizationFor(
  registry: RunningRegistry,
  repo: string,
  actions: readonly string[] = ["pull", "push"],
  user: string | null | undefined = undefined,
): Promise<string | null> {
  if (registry.auth === "none") return null;
  const who = user === undefined ? (Object.keys(registry.users)[0] ?? null) : user;
  if (registry.auth === "basic") return who === null ? null : basic(who, registry.users[who] ?? "");
  const ts = registry.tokenServer;
  if (!ts) return null;
  const q = new URLSearchParams({ service: ts.service, scope: `repository:${repo}:${actions.join(",")}` });
  const res = await rawRequest(`${ts.realm}?${q}`, {
    ca: registry.caPem,
    headers: who === null ? {} : { authorization: basic(who, registry.users[who] ?? "") },
  });
  if (res.status !== 200)
    throw new Error(`token server answered ${res.status}: ${res.body.toString("utf8")}`);
  const body = JSON.parse(res.body.toString("utf8")) as { token?: string; access_token?: string };
  return `Bearer ${body.access_token || body.token}`;
}

async function expect(status: number[], what: string, p: ReturnType<typeof rawRequest>) {
  const res = await p;
  if (!status.includes(res.status)) {
    throw new Error(`${what}: HTTP ${res.status} ${res.body.toString("utf8").slice(0, 500)}`);
  }
  return res;
}

/** Push one blob with the monolithic flow (POST uploads/, PUT <location>?digest=). */
export async function pushBlob(
  registry: RunningRegistry,
  repo: string,
  b: { digest: string; bytes: Uint8Array },
  authorization: string | null,
): Promise<void> {
  const headers: Record<string, string> = authorization ? { authorization } : {};
  const ca = registry.caPem;
  const start = await expect(
    [202],
    `POST upload ${repo}`,
    rawRequest(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: "POST", headers, ca }),
  );
  const location = new URL(String(start.headers.location), `${registry.url}/v2/${repo}/blobs/uploads/`);
  location.searchParams.set("digest", b.digest);
  await expect(
    [201],
    `PUT blob ${b.digest}`,
    rawRequest(location, {
      method: "PUT",
      headers: { ...headers, "content-type": "application/octet-stream" },
      body: b.bytes,
      ca,
    }),
  );
}

/** Push a manifest (or index) under `reference` (tag or digest); returns the registry's Docker-Content-Digest. */
export async function pushManifest(
  registry: RunningRegistry,
  repo: string,
  reference: string,
  m: { mediaType: string; bytes: Uint8Array },
  authorization: string | null,
): Promise<string> {
  const res = await expect(
    [201],
    `PUT manifest ${repo}:${reference}`,
    rawRequest(`${registry.url}/v2/${repo}/manifests/${reference}`, {
      method: "PUT",
      headers: { ...(authorization ? { authorization } : {}), "content-type": m.mediaType },
      body: m.bytes,
      ca: registry.caPem,
    }),
  );
  return String(res.headers["docker-content-digest"]);
}

/** Push a whole TestImage as repo:tag, with the first configured user's credentials. */
export async function seedImage(
  registry: RunningRegistry,
  repo: string,
  tag: string,
  image: TestImage,
): Promise<void> {
  const authorization = await authorizationFor(registry, repo, ["pull", "push"]);
  for (const b of [image.config, ...image.layers]) await pushBlob(registry, repo, b, authorization);
  await pushManifest(registry, repo, tag, image.manifest, authorization);
}

/** A two-platform OCI index (linux/amd64 and linux/arm64/v8, tagged `only-<arch>` too) seeded under `tag`,
 * without going through kpull's client, so client tests read something kpull did not write. */
export async function seedIndex(
  registry: RunningRegistry,
  repo: string,
  tag: string,
): Promise<{ amd64: TestImage; arm64: TestImage }> {
  const images = {
    amd64: tinyImage({ architecture: "amd64", layers: [{ "arch.txt": "amd64\n" }] }),
    arm64: tinyImage({ architecture: "arm64", layers: [{ "arch.txt": "arm64\n" }] }),
  };
  const authorization = await authorizationFor(registry, repo, ["pull", "push"]);
  for (const [arch, image] of Object.entries(images)) await seedImage(registry, repo, `only-${arch}`, image);
  const indexType = "application/vnd.oci.image.index.v1+json";
  const index = {
    schemaVersion: 2,
    mediaType: indexType,
    manifests: Object.entries(images).map(([arch, image]) => ({
      mediaType: image.manifest.mediaType,
      digest: image.manifest.digest,
      size: image.manifest.bytes.byteLength,
      platform: { os: "linux", architecture: arch, ...(arch === "arm64" ? { variant: "v8" } : {}) },
    })),
  };
  await pushManifest(
    registry,
    repo,
    tag,
    { mediaType: indexType, bytes: Buffer.from(JSON.stringify(index)) },
    authorization,
  );
  return images;
}
