// One HTTP layer for every registry request: per-host keep-alive pools with bounded connections (Node's
// http/https under an undici-shaped Agent, see transport.ts), auth (anonymous, Basic, Bearer with a
// per-scope token cache), manual redirects that never carry credentials to another host, and retries with
// exponential back-off, jitter and Retry-After. Bodies are never decoded, so digests are computed over the
// bytes exactly as served.

import { Buffer } from "node:buffer";
import { setTimeout as sleep } from "node:timers/promises";
import type * as Tls from "node:tls";
import { type Challenge, pickChallenge } from "./challenge.ts";
import { type Credential, credentialHash } from "./credentials/index.ts";
import { errorFromResponse, RegistryError } from "./errors.ts";
import type { RegistryHost } from "./hosts/index.ts";
import { type HttpMethod, parseRateLimit, type RequestStats } from "./stats.ts";
import { Agent, type Dispatcher, type ResponseBody, request } from "./transport.ts";

export interface HttpOptions {
  readonly userAgent: string;
  /** Abort a response whose body sends nothing for this long (a stall), then retry or resume. */
  readonly stallTimeoutMs: number;
  /** Wait at most this long for response headers. */
  readonly headersTimeoutMs: number;
  /** Attempts per request for network errors, 5xx, 408 and 429 (the first try included). */
  readonly attempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly connectionsPerHost: number;
  /** Injectable for tests. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<unknown>;
  readonly now?: () => number;
}

export interface HttpRequest {
  readonly host: RegistryHost;
  readonly method: HttpMethod;
  /** Path under the host's API root (`/<name>/manifests/<ref>`), or an absolute URL (upload locations). */
  readonly path: string;
  readonly headers?: Record<string, string>;
  /** A body must be replayable: a Buffer, or a function that opens a fresh stream. */
  readonly body?: Buffer | (() => NodeJS.ReadableStream);
  readonly bodyLength?: number;
  /** Token scopes this request needs, e.g. `repository:app:pull`. */
  readonly scopes: readonly string[];
  readonly credential: Credential | null;
  readonly signal?: AbortSignal;
  /** Statuses returned to the caller as they are rather than retried (e.g. 404 on an existence check). */
  readonly passStatuses?: readonly number[];
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: ResponseBody;
  /** The URL that finally answered (after redirects). */
  readonly url: string;
}

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

interface HostAuth {
  challenge: Challenge | null;
  readonly tokens: Map<string, CachedToken>;
  readonly pending: Map<string, Promise<CachedToken>>;
}

const MAX_REDIRECTS = 10;
/** A Retry-After longer than this is cut short (containers/image caps its waits at 60 s too). */
const MAX_RETRY_AFTER_MS = 60_000;
const MAX_TOKEN_BODY = 1024 * 1024;
/** Refresh a token this long before it expires. */
const TOKEN_MARGIN_MS = 5_000;

/** The system's CA certificates; node:tls (about 15 ms to load) is needed only for a host with its own CA. */
function systemCertificates(): string[] {
  return (process.getBuiltinModule("node:tls") as typeof Tls).getCACertificates("default");
}

export function header(headers: HttpResponse["headers"], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function headerValues(headers: HttpResponse["headers"], name: string): string[] {
  const v = headers[name.toLowerCase()];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** Reads at most `limit` bytes of a body; more is an error (an endless or lying body cannot fill memory).
 * Bytes are counted here, where they are consumed, rather than with a 'data' listener, which would switch
 * the stream to flowing mode and lose whatever arrived before the consumer began to read. */
export async function readBody(
  body: HttpResponse["body"],
  limit: number,
  what: string,
  stats?: RequestStats,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (stats) stats.bytesReceived += (chunk as Buffer).length;
    if (total > limit) {
      body.destroy();
      throw new RegistryError("TOO_LARGE", `${what}: response larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}

/** Consumes and drops a body so the connection can be reused; bounded. */
async function discard(body: HttpResponse["body"]): Promise<void> {
  try {
    await readBody(body, 64 * 1024, "discard");
  } catch {
    body.destroy();
  }
}

export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Tokens are cached per credential: the kubelet's hash of all its fields, so two entries with the same
 * user and different secrets never share a token. */
function credentialId(c: Credential | null): string {
  return c === null ? "anonymous" : credentialHash(c);
}

/** A pull secret entry may hold nothing to send; such a credential is anonymous. */
export function usableCredential(c: Credential | null): Credential | null {
  if (c === null) return null;
  return c.username || c.password || c.identityToken || c.registryToken ? c : null;
}

function basicAuth(c: Credential): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

export class HttpClient {
  readonly #options: HttpOptions;
  readonly #stats: RequestStats;
  readonly #dispatchers = new Map<string, Agent>();
  readonly #auth = new Map<string, HostAuth>();
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<unknown>;
  readonly #now: () => number;
  /** Loopback hosts that answered plain HTTP to our TLS hello (containerd's localhost fallback). */
  readonly #plainHttp = new Set<string>();

  constructor(options: HttpOptions, stats: RequestStats) {
    this.#options = options;
    this.#stats = stats;
    this.#sleep = options.sleep ?? ((ms, signal) => sleep(ms, undefined, signal ? { signal } : {}));
    this.#now = options.now ?? Date.now;
  }

  async close(): Promise<void> {
    const agents = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all(agents.map((a) => a.close()));
  }

  #dispatcher(host: RegistryHost | null): Agent {
    const tls = host?.tls;
    const key = host === null ? "foreign" : `${host.host}\0${JSON.stringify(tls)}`;
    let agent = this.#dispatchers.get(key);
    if (agent === undefined) {
      agent = new Agent({
        connections: this.#options.connectionsPerHost,
        headersTimeout: this.#options.headersTimeoutMs,
        bodyTimeout: this.#options.stallTimeoutMs,
        connect: {
          timeout: host?.dialTimeoutMs ?? this.#options.headersTimeoutMs,
          // containerd appends configured CAs to the system pool; Node's `ca` replaces it, so add both.
          ...(tls && tls.ca.length > 0 ? { ca: [...systemCertificates(), ...tls.ca] } : {}),
          ...(tls?.cert ? { cert: tls.cert } : {}),
          ...(tls?.key ? { key: tls.key } : {}),
          ...(tls?.skipVerify ? { rejectUnauthorized: false } : {}),
        },
      });
      this.#dispatchers.set(key, agent);
    }
    return agent;
  }

  #hostAuth(host: RegistryHost, credential: Credential | null): HostAuth {
    const key = `${host.host}\0${credentialId(credential)}`;
    let auth = this.#auth.get(key);
    if (auth === undefined) {
      auth = { challenge: null, tokens: new Map(), pending: new Map() };
      this.#auth.set(key, auth);
    }
    return auth;
  }

  /** Sends a request with auth, redirects and retries; non-2xx answers other than `passStatuses` throw a
   * typed RegistryError (the body is decoded for the registry's error code). */
  async send(given: HttpRequest, what: string): Promise<HttpResponse> {
    const original = { ...given, credential: usableCredential(given.credential) };
    let req = this.#plainHttp.has(original.host.host)
      ? { ...original, host: { ...original.host, scheme: "http" as const } }
      : original;
    const auth = this.#hostAuth(req.host, req.credential);
    const scopeKey = [...new Set(req.scopes)].sort().join(" ");
    let reauthenticated = false;
    let attempt = 0;
    for (;;) {
      attempt++;
      let res: HttpResponse;
      try {
        const authorization = await this.#authorization(req, auth, scopeKey);
        res = await this.#sendFollowingRedirects(req, authorization);
      } catch (error) {
        const e = toRegistryError(error, what);
        if (req.host.httpFallback && req.host.scheme === "https" && isTlsHandshakeFailure(error)) {
          this.#plainHttp.add(req.host.host);
          req = { ...req, host: { ...req.host, scheme: "http" } };
          attempt--;
          continue;
        }
        if (e.retryable && attempt < this.#options.attempts && !req.signal?.aborted) {
          await this.#wait(this.#backoff(attempt, e.retryAfterMs ?? undefined), req.signal, what);
          continue;
        }
        throw e;
      }
      if (res.status === 401 && !reauthenticated) {
        const challenge = pickChallenge(headerValues(res.headers, "www-authenticate"));
        await discard(res.body);
        if (challenge !== null && (challenge.scheme === "basic" ? req.credential !== null : true)) {
          reauthenticated = true;
          auth.challenge = challenge;
          auth.tokens.delete(scopeKey);
          continue;
        }
        throw new RegistryError("UNAUTHORIZED", `${what}: 401 UNAUTHORIZED: authentication required`, {
          status: 401,
          url: res.url,
        });
      }
      if ((res.status >= 200 && res.status < 300) || req.passStatuses?.includes(res.status)) return res;
      const retryAfter = parseRetryAfter(header(res.headers, "retry-after"), this.#now());
      const body = await readBody(res.body, 64 * 1024, what).catch(() => Buffer.alloc(0));
      const error = errorFromResponse(res.status, body, res.url, what, retryAfter);
      if (res.status === 401) {
        throw new RegistryError("UNAUTHORIZED", error.message, {
          status: 401,
          url: res.url,
          detail: error.detail,
        });
      }
      if (error.retryable && attempt < this.#options.attempts && !req.signal?.aborted) {
        await this.#wait(this.#backoff(attempt, retryAfter), req.signal, what);
        continue;
      }
      throw error;
    }
  }

  /** The pause before a retry. The request's signal ends it at once: a Retry-After may ask for a minute,
   * and a pull deadline or an interrupt must not wait for it. */
  async #wait(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
    try {
      await this.#sleep(ms, signal);
    } catch (error) {
      if (!signal?.aborted) throw error;
    }
    if (signal?.aborted) {
      throw new RegistryError("TIMEOUT", `${what}: aborted while waiting to retry`, { cause: signal.reason });
    }
  }

  #backoff(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
    const base = Math.min(this.#options.retryMaxMs, this.#options.retryBaseMs * 2 ** (attempt - 1));
    return base / 2 + Math.random() * (base / 2); // "equal jitter": never zero, never above the cap
  }

  async #authorization(req: HttpRequest, auth: HostAuth, scopeKey: string): Promise<string | undefined> {
    const challenge = auth.challenge;
    if (challenge === null) return undefined;
    if (challenge.scheme === "basic") return req.credential === null ? undefined : basicAuth(req.credential);
    if (req.credential?.registryToken) return `Bearer ${req.credential.registryToken}`;
    const cached = auth.tokens.get(scopeKey);
    if (cached !== undefined && cached.expiresAt - TOKEN_MARGIN_MS > this.#now())
      return `Bearer ${cached.token}`;
    let pending = auth.pending.get(scopeKey);
    if (pending === undefined) {
      pending = this.#fetchToken(challenge, req, scopeKey).finally(() => auth.pending.delete(scopeKey));
      auth.pending.set(scopeKey, pending);
    }
    const token = await pending;
    auth.tokens.set(scopeKey, token);
    return `Bearer ${token.token}`;
  }

  async #fetchToken(challenge: Challenge, req: HttpRequest, scopeKey: string): Promise<CachedToken> {
    const realm = challenge.params.realm ?? "";
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError(
        "AUTH_FAILED",
        `token realm is not a URL: ${JSON.stringify(realm.slice(0, 200))}`,
      );
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new RegistryError("AUTH_FAILED", `token realm must be http(s): ${url.protocol}`);
    }
    if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
    for (const scope of scopeKey.split(" ").filter(Boolean)) url.searchParams.append("scope", scope);
    const what = `token from ${url.origin}${url.pathname}`;
    const dispatcher = this.#dispatcher(url.host === req.host.host ? req.host : null);
    const identityToken = req.credential?.identityToken;
    let res: { statusCode: number; body: Buffer } | null = null;
    if (identityToken) {
      // An identity (refresh) token is exchanged with the OAuth2 POST flow; servers without it answer
      // 404/401/400/405 and we fall back to GET, as containerd does (oci.md §4.2).
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: identityToken,
        service: challenge.params.service ?? "",
        client_id: "kpull",
        scope: scopeKey,
      });
      const post = await this.#tokenRequest(
        url.origin + url.pathname,
        "POST",
        what,
        dispatcher,
        req.signal,
        { "content-type": "application/x-www-form-urlencoded" },
        Buffer.from(form.toString()),
      );
      if (![400, 401, 404, 405].includes(post.statusCode)) res = post;
    }
    if (res === null) {
      const headers: Record<string, string> = {};
      if (req.credential !== null && !identityToken) headers.authorization = basicAuth(req.credential);
      res = await this.#tokenRequest(url.href, "GET", what, dispatcher, req.signal, headers);
    }
    const body = res.body;
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new RegistryError("UNAUTHORIZED", `${what}: ${res.statusCode}: the credentials were refused`, {
        status: res.statusCode,
      });
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw errorFromResponse(res.statusCode, body, url.href, what);
    }
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      throw new RegistryError("AUTH_FAILED", `${what}: the token server did not answer JSON`);
    }
    const token =
      typeof parsed?.access_token === "string" && parsed.access_token !== ""
        ? parsed.access_token
        : typeof parsed?.token === "string"
          ? parsed.token
          : "";
    if (token === "") throw new RegistryError("AUTH_FAILED", `${what}: the answer has no token`);
    const expiresIn = typeof parsed.expires_in === "number" && parsed.expires_in > 0 ? parsed.expires_in : 60;
    const issued = typeof parsed.issued_at === "string" ? Date.parse(parsed.issued_at) : Number.NaN;
    // Count from our own clock when the server's is absent or skewed into the future.
    const start = Number.isNaN(issued) || issued > this.#now() ? this.#now() : issued;
    return { token, expiresAt: start + expiresIn * 1000 };
  }

  async #tokenRequest(
    url: string,
    method: "GET" | "POST",
    what: string,
    dispatcher: Dispatcher,
    signal: AbortSignal | undefined,
    headers: Record<string, string>,
    body?: Buffer,
  ): Promise<{ statusCode: number; body: Buffer }> {
    this.#stats.tokenRequests++;
    try {
      const res = await request(url, {
        method,
        headers: { "user-agent": this.#options.userAgent, accept: "application/json", ...headers },
        ...(body ? { body } : {}),
        dispatcher,
        ...(signal ? { signal } : {}),
      });
      return { statusCode: res.statusCode, body: await readBody(res.body, MAX_TOKEN_BODY, what) };
    } catch (error) {
      throw toRegistryError(error, what);
    }
  }

  async #sendFollowingRedirects(req: HttpRequest, authorization: string | undefined): Promise<HttpResponse> {
    const base = `${req.host.scheme}://${req.host.host}`;
    let url = new URL(/^https?:\/\//.test(req.path) ? req.path : `${base}${req.host.path}${req.path}`);
    // An upload Location may point at another host: it gets neither our credentials nor our headers.
    let sameHost = url.host === req.host.host;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = {
        "user-agent": this.#options.userAgent,
        ...(sameHost ? flattenHeaders(req.host.headers) : {}),
        ...(req.headers ?? {}),
      };
      if (authorization !== undefined && sameHost) headers.authorization = authorization;
      let body: Buffer | NodeJS.ReadableStream | undefined;
      if (req.body !== undefined) {
        body = Buffer.isBuffer(req.body) ? req.body : req.body();
        const length = Buffer.isBuffer(req.body) ? req.body.length : req.bodyLength;
        if (length !== undefined) headers["content-length"] = String(length);
      }
      const res = await request(url, {
        method: req.method,
        headers,
        body: body as Buffer,
        dispatcher: this.#dispatcher(sameHost ? req.host : null),
        ...(req.signal ? { signal: req.signal } : {}),
      });
      // Counted once answered: a TLS hello refused by a plain-HTTP loopback registry is not a request.
      this.#stats.requests[req.method]++;
      const rateLimit = parseRateLimit((name) => header(res.headers, name));
      if (rateLimit !== null) this.#stats.rateLimit = rateLimit;
      if (body !== undefined) this.#stats.bytesSent += Number(headers["content-length"] ?? 0);
      const location = header(res.headers, "location");
      const redirect = [301, 302, 303, 307, 308].includes(res.statusCode) && location !== undefined;
      // Upload flows answer 201/202 with a Location that is not a redirect.
      if (!redirect || req.method === "POST" || req.method === "PUT" || req.method === "PATCH") {
        return {
          status: res.statusCode,
          headers: res.headers,
          body: res.body,
          url: url.href,
        };
      }
      await discard(res.body);
      if (hop + 1 >= MAX_REDIRECTS) {
        throw new RegistryError(
          "REDIRECT",
          `stopped after ${MAX_REDIRECTS} redirects at ${url.origin}${url.pathname}`,
        );
      }
      const next = new URL(location, url);
      if (next.protocol !== "https:" && next.protocol !== "http:") {
        throw new RegistryError("REDIRECT", `redirect to an unsupported scheme: ${next.protocol}`);
      }
      // Credentials never follow a redirect to another host (presigned storage URLs reject them, and
      // sending them would leak them).
      if (next.host !== url.host || next.protocol !== url.protocol) sameHost = false;
      url = next;
    }
  }
}

function flattenHeaders(headers: Readonly<Record<string, readonly string[]>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v.join(", ");
  return out;
}

/** A TLS hello answered by a plain-HTTP server fails with a protocol error, not a certificate error. */
function isTlsHandshakeFailure(error: unknown): boolean {
  const e = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const text = `${e?.code ?? ""} ${e?.message ?? ""} ${e?.cause?.code ?? ""} ${e?.cause?.message ?? ""}`;
  return /EPROTO|wrong version number|ERR_SSL_WRONG_VERSION_NUMBER|packet length too long/i.test(text);
}

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);
const TIMEOUT_CODES = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"]);

/** Maps transport failures onto typed errors; RegistryErrors pass through. */
export function toRegistryError(error: unknown, what: string): RegistryError {
  if (error instanceof RegistryError) return error;
  const e = error as { code?: string; name?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? "";
  if (e?.name === "AbortError") return new RegistryError("TIMEOUT", `${what}: aborted`, { cause: error });
  if (TIMEOUT_CODES.has(code)) {
    return new RegistryError(
      "TIMEOUT",
      `${what}: ${code === "UND_ERR_BODY_TIMEOUT" ? "stalled" : "timed out"}`,
      {
        cause: error,
      },
    );
  }
  if (/^ERR_SSL|^ERR_TLS|CERT|SELF_SIGNED|UNABLE_TO|EPROTO/.test(code)) {
    // Certificate and protocol failures do not heal by retrying.
    return new RegistryError("TLS", `${what}: TLS: ${code}: ${e?.message ?? ""}`.trimEnd(), { cause: error });
  }
  if (NETWORK_CODES.has(code)) {
    return new RegistryError("NETWORK", `${what}: ${code}: ${e?.message ?? ""}`.trimEnd(), { cause: error });
  }
  return new RegistryError("NETWORK", `${what}: ${e?.message ?? String(error)}`, { cause: error });
}
