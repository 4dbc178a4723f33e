// kpull's OCI Distribution client: resolve a tag with one HEAD, fetch manifests and indexes verified against
// their digests, choose a platform, stream blobs with on-the-fly verification and resume, push. Everything
// that talks to a registry goes through here.

import { Buffer } from "node:buffer";
import { createHash, type Hash } from "node:crypto";
import {
  parseDockerRef,
  parseNormalizedNamed,
  type Reference,
  repositoryName,
  validateDigest,
} from "../reference/index.ts";
import type { Credential } from "./credentials/index.ts";
import { RegistryError } from "./errors.ts";
import { defaultHost, type RegistryHost, resolveHosts } from "./hosts/index.ts";
import {
  HttpClient,
  type HttpOptions,
  type HttpResponse,
  header,
  readBody,
  toRegistryError,
} from "./http.ts";
import { bareMediaType, isIndexType, isManifestType, isSchema1, MANIFEST_ACCEPT } from "./mediatypes.ts";
import { choosePlatformEntry, formatPlatform, hostPlatform, type Platform } from "./platform.ts";
import { newStats, type RequestStats } from "./stats.ts";

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Platform;
  readonly artifactType?: string;
}

export interface ImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageIndex {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly manifests: readonly Descriptor[];
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A manifest or index exactly as served: `bytes` are what was hashed; `json` is parsed from them. */
export interface FetchedManifest {
  readonly descriptor: Descriptor;
  readonly bytes: Buffer;
  readonly json: ImageManifest | ImageIndex;
}

export interface CredentialSource {
  lookup(repository: string): Promise<readonly Credential[]>;
}

export interface RegistryClientOptions extends Partial<HttpOptions> {
  readonly credentials?: CredentialSource;
  readonly hostsDir?: string;
  readonly insecureRegistries?: readonly string[];
  /** Manifests and indexes larger than this are refused (containerd: 4,393,216 bytes). */
  readonly maxManifestBytes?: number;
  /** Attempts to resume a blob without progress before giving up. */
  readonly maxResumesWithoutProgress?: number;
  /** Blob pushes above this size are sent in PATCH chunks of this size; smaller ones in one PUT. */
  readonly chunkSize?: number;
}

const DEFAULTS: HttpOptions = {
  userAgent: "kpull/0.1",
  stallTimeoutMs: 30_000,
  headersTimeoutMs: 30_000,
  attempts: 4,
  retryBaseMs: 250,
  retryMaxMs: 10_000,
  connectionsPerHost: 8,
};

export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;
/**
 * The largest image config kpull reads (it is read whole, as JSON): containers/image's
 * iolimits.MaxConfigBodySize, under which Podman, CRI-O and skopeo read configs.
 */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export class RegistryClient {
  readonly stats: RequestStats = newStats();
  readonly #http: HttpClient;
  readonly #options: RegistryClientOptions;

  constructor(options: RegistryClientOptions = {}) {
    this.#options = options;
    this.#http = new HttpClient({ ...DEFAULTS, ...withoutUndefined(options) }, this.stats);
  }

  /** A repository handle: its hosts (mirrors first) and credentials are looked up once. */
  repository(image: string | Reference): Repository {
    const ref = typeof image === "string" ? parseNormalizedNamed(image) : image;
    return new Repository(this, this.#http, this.#options, ref);
  }

  async close(): Promise<void> {
    await this.#http.close();
  }
}

type Capability = "pull" | "resolve" | "push";

export class Repository {
  readonly reference: Reference;
  /** Repository path on the registry (`library/nginx`). */
  readonly path: string;
  readonly #client: RegistryClient;
  readonly #http: HttpClient;
  readonly #options: RegistryClientOptions;
  #hosts: Promise<RegistryHost[]> | null = null;
  #credentials: Promise<readonly (Credential | null)[]> | null = null;
  /** Index into the credential list of the one that worked (kubelet: stop at the first success). */
  #credentialIndex = 0;

  constructor(
    client: RegistryClient,
    http: HttpClient,
    options: RegistryClientOptions,
    reference: Reference,
  ) {
    this.#client = client;
    this.#http = http;
    this.#options = options;
    this.reference = reference;
    this.path = reference.path;
  }

  get client(): RegistryClient {
    return this.#client;
  }

  async #hostsFor(capability: Capability): Promise<RegistryHost[]> {
    if (this.#hosts === null) {
      this.#hosts = resolveHosts(this.reference.domain, {
        ...(this.#options.hostsDir !== undefined ? { hostsDir: this.#options.hostsDir } : {}),
        ...(this.#options.insecureRegistries ? { insecureRegistries: this.#options.insecureRegistries } : {}),
      });
    }
    const hosts = (await this.#hosts).filter((h) => h.capabilities.includes(capability));
    if (hosts.length === 0) {
      throw new RegistryError(
        "UNSUPPORTED",
        `no host for ${this.reference.domain} has the ${capability} capability`,
      );
    }
    return hosts;
  }

  async #credentialList(): Promise<readonly (Credential | null)[]> {
    if (this.#credentials === null) {
      this.#credentials = (async () => {
        const found = (await this.#options.credentials?.lookup(repositoryName(this.reference))) ?? [];
        // Anonymous only when no credential matched at all (kubelet.md §2.11).
        return found.length > 0 ? found : [null];
      })();
    }
    return this.#credentials;
  }

  /** Runs `op` with the working credential; on an auth failure moves to the next one, in order. */
  async #withCredential<T>(op: (credential: Credential | null) => Promise<T>): Promise<T> {
    const list = await this.#credentialList();
    const errors: RegistryError[] = [];
    for (; this.#credentialIndex < list.length; this.#credentialIndex++) {
      try {
        return await op(list[this.#credentialIndex] ?? null);
      } catch (error) {
        const e = error instanceof RegistryError ? error : null;
        const authFailure = e !== null && ["UNAUTHORIZED", "DENIED", "AUTH_FAILED"].includes(e.code);
        if (!authFailure || this.#credentialIndex === list.length - 1) {
          if (errors.length > 0 && e !== null && authFailure) {
            throw new RegistryError(e.code, [...errors, e].map((x) => x.message).join("; "), {
              status: e.status ?? undefined,
            });
          }
          throw error;
        }
        errors.push(e);
      }
    }
    throw errors.at(-1) ?? new RegistryError("AUTH_FAILED", "no credential worked");
  }

  /** Tries each host (mirrors first) until one answers; 404s and failures move on, keeping the most
   * specific error (a registry error over a network one, non-404 over 404). */
  async #onHosts<T>(capability: Capability, op: (host: RegistryHost) => Promise<T>): Promise<T> {
    const hosts = await this.#hostsFor(capability);
    let best: RegistryError | null = null;
    for (const host of hosts) {
      try {
        return await op(host);
      } catch (error) {
        const e = toRegistryError(error, `${host.host}`);
        if (best === null || specificity(e) > specificity(best)) best = e;
        if (!host.isMirror) break; // the upstream is last; don't mask its answer
      }
    }
    throw best ?? new RegistryError("UNSUPPORTED", "no host answered");
  }

  #scopes(push = false, extra: readonly string[] = []): string[] {
    return [`repository:${this.path}:${push ? "pull,push" : "pull"}`, ...extra];
  }

  /** containerd adds `?ns=<domain>` when a request goes to a host other than the reference's own (a
   * mirror, or a `server` elsewhere), so a pull-through cache knows which upstream is meant. */
  #ns(host: RegistryHost): string {
    return host.host === defaultHost(this.reference.domain)
      ? ""
      : `?ns=${encodeURIComponent(this.reference.domain)}`;
  }

  #manifestPath(tagOrDigest: string, host: RegistryHost): string {
    return `/${this.path}/manifests/${tagOrDigest}${this.#ns(host)}`;
  }

  /** The tag or digest this reference points at, as written (`latest` when neither). */
  get target(): string {
    const docker = parseDockerRef(formatRef(this.reference));
    return docker.digest ?? docker.tag ?? "latest";
  }

  /** Resolves the reference to a descriptor with one HEAD carrying the full Accept list; falls back to GET
   * when the answer has no digest or length, or HEAD is refused with 405. By digest, the requested digest
   * is the truth. */
  async resolve(options: { signal?: AbortSignal } = {}): Promise<Descriptor> {
    const target = this.target;
    const byDigest = target.includes(":");
    return this.#withCredential((credential) =>
      this.#onHosts("resolve", async (host) => {
        const what = `resolve ${this.path}:${target} on ${host.host}`;
        const head = await this.#http.send(
          {
            host,
            method: "HEAD",
            path: this.#manifestPath(target, host),
            headers: { accept: MANIFEST_ACCEPT },
            scopes: this.#scopes(),
            credential,
            passStatuses: [405],
            ...(options.signal ? { signal: options.signal } : {}),
          },
          what,
        );
        head.body.resume();
        const mediaType = bareMediaType(header(head.headers, "content-type"));
        const digestHeader = header(head.headers, "docker-content-digest");
        const length = Number(header(head.headers, "content-length") ?? Number.NaN);
        if (
          head.status !== 405 &&
          digestHeader !== undefined &&
          Number.isSafeInteger(length) &&
          mediaType !== ""
        ) {
          if (isSchema1(mediaType)) throw schema1Error(what);
          const digest = byDigest ? target : checkedDigest(digestHeader, what);
          this.#checkSize(length, what);
          return { mediaType, digest, size: length };
        }
        const fetched = await this.#getManifest(
          host,
          credential,
          target,
          byDigest ? target : null,
          options.signal,
        );
        return fetched.descriptor;
      }),
    );
  }

  /** Fetches a manifest or index by digest (verified) or by tag (digest computed from the raw bytes). */
  async manifest(
    tagOrDigest = this.target,
    options: { signal?: AbortSignal } = {},
  ): Promise<FetchedManifest> {
    const byDigest = tagOrDigest.includes(":");
    return this.#withCredential((credential) =>
      this.#onHosts("pull", (host) =>
        this.#getManifest(host, credential, tagOrDigest, byDigest ? tagOrDigest : null, options.signal),
      ),
    );
  }

  async #getManifest(
    host: RegistryHost,
    credential: Credential | null,
    target: string,
    expectedDigest: string | null,
    signal: AbortSignal | undefined,
  ): Promise<FetchedManifest> {
    const what = `manifest ${this.path}:${target} from ${host.host}`;
    const res = await this.#http.send(
      {
        host,
        method: "GET",
        path: this.#manifestPath(target, host),
        headers: { accept: MANIFEST_ACCEPT },
        scopes: this.#scopes(),
        credential,
        ...(signal ? { signal } : {}),
      },
      what,
    );
    const max = this.#options.maxManifestBytes ?? MAX_MANIFEST_BYTES;
    const declared = Number(header(res.headers, "content-length") ?? Number.NaN);
    if (Number.isFinite(declared) && declared > max) {
      res.body.destroy();
      throw new RegistryError("TOO_LARGE", `${what}: ${declared} bytes is more than the ${max}-byte limit`);
    }
    const bytes = await readBody(res.body, max, what, this.#client.stats).catch((e) => {
      throw toRegistryError(e, what);
    });
    if (Number.isFinite(declared) && declared !== bytes.length) {
      throw new RegistryError(
        "SIZE_MISMATCH",
        `${what}: Content-Length ${declared} but ${bytes.length} bytes arrived`,
      );
    }
    const digest = sha256(bytes);
    if (expectedDigest !== null && digest !== expectedDigest) {
      throw new RegistryError(
        "DIGEST_MISMATCH",
        `${what}: content has digest ${digest}, expected ${expectedDigest}`,
      );
    }
    const contentType = bareMediaType(header(res.headers, "content-type"));
    const json = parseManifestJson(bytes, contentType, what);
    const mediaType = json.mediaType ?? contentType;
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes, json };
  }

  #checkSize(size: number, what: string): void {
    const max = this.#options.maxManifestBytes ?? MAX_MANIFEST_BYTES;
    if (size > max)
      throw new RegistryError("TOO_LARGE", `${what}: ${size} bytes is more than the ${max}-byte limit`);
  }

  /** Fetches a child manifest/index by its parent's descriptor: size first, then digest. */
  async manifestByDescriptor(
    desc: Descriptor,
    options: { signal?: AbortSignal } = {},
  ): Promise<FetchedManifest> {
    this.#checkSize(desc.size, `manifest ${desc.digest}`);
    const fetched = await this.manifest(desc.digest, options);
    if (fetched.bytes.length !== desc.size) {
      throw new RegistryError(
        "SIZE_MISMATCH",
        `manifest ${desc.digest}: ${fetched.bytes.length} bytes, the descriptor says ${desc.size}`,
      );
    }
    return fetched;
  }

  /** Resolves the reference, then walks an index to the manifest for `platform` (default: the host's). */
  async resolveImage(
    options: { platform?: Platform; signal?: AbortSignal } = {},
  ): Promise<{ descriptor: Descriptor; index: FetchedManifest | null; manifest: FetchedManifest }> {
    const descriptor = await this.resolve(options);
    const wanted = options.platform ?? hostPlatform();
    let index: FetchedManifest | null = null;
    let current = await this.manifestByDescriptor(descriptor, options);
    for (let depth = 0; isIndexType(current.descriptor.mediaType); depth++) {
      if (depth >= 4)
        throw new RegistryError(
          "BAD_RESPONSE",
          `indexes nested deeper than 4 levels at ${descriptor.digest}`,
        );
      index ??= current;
      const entries = (current.json as ImageIndex).manifests;
      const chosen = choosePlatformEntry(wanted, entries);
      if (chosen < 0) {
        throw new RegistryError(
          "NO_MATCHING_PLATFORM",
          `no matching manifest for ${formatPlatform(wanted)} in the manifest list entries`,
        );
      }
      current = await this.manifestByDescriptor(entries[chosen] as Descriptor, options);
    }
    if (!isManifestType(current.descriptor.mediaType)) {
      throw new RegistryError(
        "BAD_RESPONSE",
        `unsupported manifest media type ${current.descriptor.mediaType}`,
      );
    }
    return { descriptor, index, manifest: current };
  }

  /** The digest of the manifest for `platform` without fetching that manifest: the resolved digest itself
   * for a single-platform image (one HEAD in all), else the chosen entry of the index. */
  async platformDigest(
    resolved: Descriptor,
    options: { platform?: Platform; signal?: AbortSignal } = {},
  ): Promise<Descriptor> {
    const wanted = options.platform ?? hostPlatform();
    let current = resolved;
    for (let depth = 0; isIndexType(current.mediaType); depth++) {
      if (depth >= 4)
        throw new RegistryError("BAD_RESPONSE", `indexes nested deeper than 4 levels at ${resolved.digest}`);
      const index = await this.manifestByDescriptor(current, options);
      const entries = (index.json as ImageIndex).manifests;
      const chosen = choosePlatformEntry(wanted, entries);
      if (chosen < 0) {
        throw new RegistryError(
          "NO_MATCHING_PLATFORM",
          `no matching manifest for ${formatPlatform(wanted)} in the manifest list entries`,
        );
      }
      current = entries[chosen] as Descriptor;
    }
    return current;
  }

  /** Streams a blob, verifying size and digest as bytes arrive. Resumes with `Range` after a dropped or
   * stalled connection. `offset`/`hash` continue a partial download whose first `offset` bytes were
   * already hashed into `hash`. The final chunk is yielded only after the digest checks out, so a consumer
   * that commits on completion never commits unverified bytes.
   *
   * `verify: false` is for a consumer that hashes every byte itself and checks the digest before anything
   * becomes visible (the store's ingest does): the bytes are then hashed once, not twice, and chunks are
   * yielded as they arrive. Sizes are checked either way. */
  async *blob(
    desc: Descriptor,
    options: { offset?: number; hash?: Hash; signal?: AbortSignal; verify?: boolean } = {},
  ): AsyncGenerator<Buffer> {
    validateDigest(desc.digest);
    if (!desc.digest.startsWith("sha256:")) {
      throw new RegistryError("UNSUPPORTED", `blob ${desc.digest}: only sha256 blobs can be verified`);
    }
    const hash = options.verify === false ? null : (options.hash ?? createHash("sha256"));
    let offset = options.offset ?? 0;
    const size = desc.size;
    const what = `blob ${desc.digest}`;
    const maxStuck = this.#options.maxResumesWithoutProgress ?? 3;
    let stuck = 0;
    let held: Buffer | null = null; // the last chunk, released only after verification
    while (offset < size) {
      const before = offset;
      let res: HttpResponse;
      try {
        res = await this.#withCredential((credential) =>
          this.#onHosts("pull", (host) =>
            this.#http.send(
              {
                host,
                method: "GET",
                path: `/${this.path}/blobs/${desc.digest}${this.#ns(host)}`,
                headers: {
                  accept: "*/*",
                  "accept-encoding": "identity",
                  ...(offset > 0 ? { range: `bytes=${offset}-` } : {}),
                },
                scopes: this.#scopes(),
                credential,
                ...(options.signal ? { signal: options.signal } : {}),
              },
              `${what} from ${host.host}`,
            ),
          ),
        );
      } catch (error) {
        throw toRegistryError(error, what);
      }
      let skip = 0;
      if (offset > 0) {
        if (res.status === 206) {
          const range = header(res.headers, "content-range") ?? "";
          if (!range.startsWith(`bytes ${offset}-`)) {
            res.body.destroy();
            throw new RegistryError(
              "BAD_RESPONSE",
              `${what}: asked for bytes from ${offset}, got range "${range}"`,
            );
          }
        } else {
          skip = offset; // a 200 to a Range request: the whole blob again; drop what we have
        }
      }
      const encoding = header(res.headers, "content-encoding");
      if (encoding !== undefined && encoding !== "identity") {
        res.body.destroy();
        throw new RegistryError("BAD_RESPONSE", `${what}: unexpected Content-Encoding "${encoding}"`);
      }
      try {
        for await (const raw of res.body) {
          let chunk = raw as Buffer;
          this.#client.stats.bytesReceived += chunk.length;
          if (skip > 0) {
            const drop = Math.min(skip, chunk.length);
            skip -= drop;
            chunk = chunk.subarray(drop);
            if (chunk.length === 0) continue;
          }
          if (offset + chunk.length > size) {
            res.body.destroy();
            throw new RegistryError(
              "SIZE_MISMATCH",
              `${what}: more than the ${size} bytes the descriptor says`,
            );
          }
          offset += chunk.length;
          if (hash === null) {
            yield chunk;
            continue;
          }
          hash.update(chunk);
          if (held !== null) yield held;
          held = chunk;
        }
      } catch (error) {
        if (error instanceof RegistryError) throw error;
        if (options.signal?.aborted) throw toRegistryError(error, what);
        // Dropped or stalled mid-body: resume from `offset` below.
      }
      if (offset < size) {
        stuck = offset === before ? stuck + 1 : 0;
        if (stuck >= maxStuck) {
          throw new RegistryError(
            "NETWORK",
            `${what}: connection lost at byte ${offset} of ${size}, ${maxStuck} resumes made no progress`,
          );
        }
      }
    }
    if (hash === null) return;
    const digest = `sha256:${hash.digest("hex")}`;
    if (digest !== desc.digest) {
      throw new RegistryError("DIGEST_MISMATCH", `${what}: content has digest ${digest}`);
    }
    if (held !== null) yield held;
  }

  /** Whether the registry has a blob (HEAD; 404 is "no"). */
  async hasBlob(digest: string): Promise<boolean> {
    return this.#withCredential((credential) =>
      this.#onHosts("push", async (host) => {
        const res = await this.#http.send(
          {
            host,
            method: "HEAD",
            path: `/${this.path}/blobs/${digest}`,
            scopes: this.#scopes(true),
            credential,
            passStatuses: [404],
          },
          `blob ${digest} on ${host.host}`,
        );
        res.body.resume();
        return res.status === 200;
      }),
    );
  }

  /** Pushes a blob unless the registry has it: cross-repository mount when `mountFrom` is given, else a
   * monolithic PUT, or PATCH chunks for blobs above `chunkSize`. The token comes from the bodiless POST, so
   * no body has to be replayed after a 401. */
  async pushBlob(
    desc: Descriptor,
    content: Buffer | (() => NodeJS.ReadableStream),
    options: { mountFrom?: string } = {},
  ): Promise<"exists" | "mounted" | "uploaded"> {
    if (await this.hasBlob(desc.digest)) return "exists";
    return this.#withCredential((credential) =>
      this.#onHosts("push", async (host) => {
        const what = `push blob ${desc.digest} to ${host.host}`;
        const mount = options.mountFrom;
        const scopes = this.#scopes(true, mount ? [`repository:${mount}:pull`] : []);
        const query = mount
          ? `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(mount)}`
          : "";
        const started = await this.#http.send(
          { host, method: "POST", path: `/${this.path}/blobs/uploads/${query}`, scopes, credential },
          what,
        );
        started.body.resume();
        let location = uploadLocation(started, what);
        if (started.status === 201) return "mounted";
        const chunkSize = this.#options.chunkSize ?? 64 * 1024 * 1024;
        if (Buffer.isBuffer(content) && content.length > chunkSize) {
          for (let start = 0; start < content.length; start += chunkSize) {
            const chunk = content.subarray(start, Math.min(content.length, start + chunkSize));
            const patched = await this.#http.send(
              {
                host,
                method: "PATCH",
                path: location,
                headers: {
                  "content-type": "application/octet-stream",
                  "content-range": `${start}-${start + chunk.length - 1}`,
                },
                body: chunk,
                scopes,
                credential,
              },
              what,
            );
            patched.body.resume();
            location = uploadLocation(patched, what);
          }
          const done = await this.#http.send(
            { host, method: "PUT", path: withQuery(location, "digest", desc.digest), scopes, credential },
            what,
          );
          done.body.resume();
        } else {
          const done = await this.#http.send(
            {
              host,
              method: "PUT",
              path: withQuery(location, "digest", desc.digest),
              headers: { "content-type": "application/octet-stream" },
              body: content,
              bodyLength: desc.size,
              scopes,
              credential,
            },
            what,
          );
          done.body.resume();
        }
        return "uploaded";
      }),
    );
  }

  /** PUTs manifest bytes exactly as given and checks the registry's digest against ours. */
  async pushManifest(bytes: Buffer, mediaType: string, tagOrDigest?: string): Promise<Descriptor> {
    const digest = sha256(bytes);
    const target = tagOrDigest ?? digest;
    return this.#withCredential((credential) =>
      this.#onHosts("push", async (host) => {
        const what = `push manifest ${this.path}:${target} to ${host.host}`;
        const res = await this.#http.send(
          {
            host,
            method: "PUT",
            path: this.#manifestPath(target, host),
            headers: { "content-type": mediaType },
            body: bytes,
            scopes: this.#scopes(true),
            credential,
          },
          what,
        );
        res.body.resume();
        const answered = header(res.headers, "docker-content-digest");
        if (answered !== undefined && answered !== digest) {
          throw new RegistryError(
            "DIGEST_MISMATCH",
            `${what}: the registry stored ${answered}, we sent ${digest}`,
          );
        }
        return { mediaType, digest, size: bytes.length };
      }),
    );
  }
}

function specificity(e: RegistryError): number {
  if (e.status === 404) return 1;
  if (e.code === "NETWORK" || e.code === "TIMEOUT") return 0;
  return 2;
}

function schema1Error(what: string): RegistryError {
  return new RegistryError("SCHEMA1_UNSUPPORTED", `${what}: Docker schema 1 manifests are not supported`);
}

function checkedDigest(value: string, what: string): string {
  try {
    validateDigest(value);
    return value;
  } catch {
    throw new RegistryError(
      "BAD_RESPONSE",
      `${what}: Docker-Content-Digest is not a digest: ${JSON.stringify(value.slice(0, 100))}`,
    );
  }
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function formatRef(r: Reference): string {
  return `${r.domain ? `${r.domain}/` : ""}${r.path}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

/** Parses and checks the shape of a manifest or index: schema 1 is refused, a document that contradicts
 * its declared type is refused (containerd's validateMediaType), descriptors must be well formed. */
export function parseManifestJson(
  bytes: Buffer,
  contentType: string,
  what: string,
): ImageManifest | ImageIndex {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new RegistryError("MANIFEST_INVALID", `${what}: not valid JSON`);
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new RegistryError("MANIFEST_INVALID", `${what}: not a JSON object`);
  }
  if (isSchema1(contentType) || "fsLayers" in doc || doc.schemaVersion === 1) throw schema1Error(what);
  if (doc.schemaVersion !== 2)
    throw new RegistryError("MANIFEST_INVALID", `${what}: schemaVersion must be 2`);
  const mediaType = typeof doc.mediaType === "string" ? doc.mediaType : contentType;
  if (typeof doc.mediaType === "string" && contentType !== "" && doc.mediaType !== contentType) {
    throw new RegistryError(
      "MANIFEST_INVALID",
      `${what}: mediaType ${doc.mediaType} does not match Content-Type ${contentType}`,
    );
  }
  const isIndex = Array.isArray(doc.manifests);
  if (isIndex && ("config" in doc || "layers" in doc || isManifestType(mediaType))) {
    throw new RegistryError("MANIFEST_INVALID", `${what}: an index must not have config or layers`);
  }
  if (!isIndex && (isIndexType(mediaType) || !("config" in doc))) {
    throw new RegistryError("MANIFEST_INVALID", `${what}: a manifest needs config and layers`);
  }
  const descriptors = isIndex ? (doc.manifests as unknown[]) : [doc.config, ...asArray(doc.layers, what)];
  for (const d of descriptors) checkDescriptor(d, what);
  return (isIndex ? { ...doc, mediaType } : { ...doc, mediaType }) as unknown as ImageManifest | ImageIndex;
}

function asArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new RegistryError("MANIFEST_INVALID", `${what}: layers must be a list`);
  return value;
}

function checkDescriptor(d: unknown, what: string): void {
  const desc = d as Partial<Descriptor> | null;
  if (
    desc === null ||
    typeof desc !== "object" ||
    typeof desc.mediaType !== "string" ||
    typeof desc.digest !== "string" ||
    typeof desc.size !== "number" ||
    !Number.isSafeInteger(desc.size) ||
    desc.size < 0
  ) {
    throw new RegistryError("MANIFEST_INVALID", `${what}: malformed descriptor`);
  }
  try {
    validateDigest(desc.digest);
  } catch {
    throw new RegistryError(
      "MANIFEST_INVALID",
      `${what}: descriptor digest ${JSON.stringify(desc.digest.slice(0, 80))} is invalid`,
    );
  }
}

function uploadLocation(res: HttpResponse, what: string): string {
  const location = header(res.headers, "location");
  if (location === undefined)
    throw new RegistryError("BAD_RESPONSE", `${what}: upload answer has no Location`);
  return new URL(location, res.url).href;
}

function withQuery(url: string, key: string, value: string): string {
  const u = new URL(url);
  u.searchParams.append(key, value);
  return u.href;
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
