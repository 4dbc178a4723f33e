// The HTTPS server of `kpull serve`: HTTP/2 and HTTP/1.1 on one port (node:http2 with allowHTTP1; the API
// server speaks HTTP/2 to webhooks when ALPN offers it), the admission endpoints, health and metrics, limits
// against hostile or broken clients, certificate and configuration reload without dropping a request, and a
// graceful shutdown.
//
// Limits: a body larger than `maxBodyBytes` is refused with 413 (by Content-Length before it is read, else
// as soon as it passes the limit); a request not received in full within `requestTimeoutMs` gets 408; headers
// must arrive within `headersTimeoutMs` (HTTP/1.1, Node's own check) and the TLS handshake within
// `handshakeTimeoutMs`; idle HTTP/2 sessions are closed after `idleTimeoutMs`. None of these can crash the
// process: every stream and socket error is handled.

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { createSecureContext } from "node:tls";
import type { AdmissionHandler, AdmissionPolicy } from "./handler.ts";
import { type AdmissionMetrics, EXPOSITION_CONTENT_TYPE } from "./metrics.ts";
import { FileWatcher } from "./reload.ts";
import type { Endpoint } from "./types.ts";

export interface ServerOptions {
  readonly handler: AdmissionHandler;
  readonly metrics: AdmissionMetrics;
  readonly certFile: string;
  readonly keyFile: string;
  /** 0 picks a free port. Default 8443. */
  readonly port?: number;
  /** Default `::` (every address, IPv4 too where the system maps it). */
  readonly host?: string;
  /** Default 6 MiB: an object and its old version at the API server's 3 MiB request limit. */
  readonly maxBodyBytes?: number;
  /** The whole request must have arrived within this (default 10 s). */
  readonly requestTimeoutMs?: number;
  /** HTTP/1.1 headers must have arrived within this (default 5 s). */
  readonly headersTimeoutMs?: number;
  /** TLS handshake (default 5 s). */
  readonly handshakeTimeoutMs?: number;
  /** Idle keep-alive connections and HTTP/2 sessions are closed after this (default 120 s). */
  readonly idleTimeoutMs?: number;
  /** After SIGTERM, /readyz says 503 but requests are still served for this long (default 0). */
  readonly shutdownDelayMs?: number;
  /** Requests still running this long after the listener closed are cut off (default 20 s). */
  readonly shutdownTimeoutMs?: number;
  /** Connections at once (default 1024). */
  readonly maxConnections?: number;
  /** Files that hold the policy, and how to read it; reloaded on change. */
  readonly policySource?: {
    readonly files: readonly string[];
    readonly load: () => Promise<AdmissionPolicy>;
  };
  /** How often watched files are read (default 2 s). */
  readonly reloadIntervalMs?: number;
  readonly log?: (message: string) => void;
}

export const DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024;

type Request = Http2ServerRequest;
type Response = Http2ServerResponse;

class HttpError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

/** The API server appends `?timeout=10s` to webhook URLs. */
function apiServerTimeoutMs(url: string): number | null {
  const q = url.indexOf("?");
  if (q < 0) return null;
  const value = new URLSearchParams(url.slice(q + 1)).get("timeout");
  if (value === null) return null;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value);
  if (m === null) return null;
  const n = Number(m[1]);
  return m[2] === "ms" ? n : m[2] === "m" ? n * 60_000 : n * 1000;
}

interface Certificate {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly notAfter: Date;
  readonly fingerprint: string;
}

async function readCertificate(certFile: string, keyFile: string): Promise<Certificate> {
  const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
  const x509 = new X509Certificate(cert);
  if (!x509.checkPrivateKey(createPrivateKey(key)))
    throw new Error(`the key in ${keyFile} does not belong to the certificate in ${certFile}`);
  createSecureContext({ cert, key }); // throws on anything else OpenSSL dislikes
  return { cert, key, notAfter: new Date(x509.validTo), fingerprint: x509.fingerprint256 };
}

export class AdmissionServer {
  readonly #options: ServerOptions;
  readonly #handler: AdmissionHandler;
  readonly #metrics: AdmissionMetrics;
  readonly #server: http2.Http2SecureServer;
  readonly #log: (message: string) => void;
  readonly #maxBody: number;
  readonly #requestTimeout: number;
  readonly #sessions = new Set<Http2Session>();
  readonly #sockets = new Set<Socket>();
  readonly #watchers: FileWatcher[] = [];
  #certificate: Certificate;
  #ready = false;
  #closing = false;
  #inflight = 0;
  #idle: (() => void) | null = null;
  #shutdown: Promise<void> | null = null;

  private constructor(options: ServerOptions, certificate: Certificate) {
    this.#options = options;
    this.#handler = options.handler;
    this.#metrics = options.metrics;
    this.#log = options.log ?? (() => {});
    this.#maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#requestTimeout = options.requestTimeoutMs ?? 10_000;
    this.#certificate = certificate;
    const idle = options.idleTimeoutMs ?? 120_000;
    const serverOptions = {
      allowHTTP1: true,
      cert: certificate.cert,
      key: certificate.key,
      minVersion: "TLSv1.2" as const,
      handshakeTimeout: options.handshakeTimeoutMs ?? 5000,
      settings: { maxConcurrentStreams: 128, maxHeaderListSize: 64 * 1024 },
      maxSessionMemory: 32,
      // HTTP/1.1 connections are checked for slow headers and bodies this often.
      connectionsCheckingInterval: 250,
    };
    this.#server = http2.createSecureServer(serverOptions);
    const h1 = this.#server as unknown as {
      headersTimeout: number;
      requestTimeout: number;
      keepAliveTimeout: number;
      maxConnections: number;
    };
    h1.headersTimeout = options.headersTimeoutMs ?? 5000;
    h1.requestTimeout = this.#requestTimeout + 1000; // ours answers 408 first; Node's is the backstop
    h1.keepAliveTimeout = idle;
    this.#server.maxConnections = options.maxConnections ?? 1024;
    this.#server.setTimeout(idle); // idle HTTP/2 sessions
    this.#server.on("request", (req: Request, res: Response) => this.#onRequest(req, res));
    this.#server.on("session", (session: Http2Session) => {
      this.#sessions.add(session);
      session.on("close", () => this.#sessions.delete(session));
      session.on("error", () => {});
      if (this.#closing) session.close();
    });
    this.#server.on("secureConnection", (socket: TLSSocket) => {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.on("error", () => {});
    });
    this.#server.on("tlsClientError", () => this.#metrics.rejected.inc({ reason: "tls" }));
    this.#server.on("sessionError", () => {});
    this.#server.on("timeout", (session: Http2Session) => session.close());
    this.#metrics.certificateExpiry.set({}, certificate.notAfter.getTime() / 1000);
    this.#metrics.ready.set({}, () => (this.#ready ? 1 : 0));
    this.#metrics.inflight.set({}, () => this.#inflight);
  }

  /** Reads the certificate, listens, and starts watching the certificate and policy files. */
  static async start(options: ServerOptions): Promise<AdmissionServer> {
    const certificate = await readCertificate(options.certFile, options.keyFile);
    const server = new AdmissionServer(options, certificate);
    await server.#listen();
    return server;
  }

  async #listen(): Promise<void> {
    const port = this.#options.port ?? 8443;
    const host = this.#options.host ?? "::";
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    this.#server.on("error", (error) => this.#log(`server error: ${error.message}`));
    const interval = this.#options.reloadIntervalMs ?? 2000;
    const certWatcher = new FileWatcher(
      [this.#options.certFile, this.#options.keyFile],
      () => this.reloadCertificate().then(() => {}),
      { intervalMs: interval },
    );
    await certWatcher.start();
    this.#watchers.push(certWatcher);
    const source = this.#options.policySource;
    if (source !== undefined && source.files.length > 0) {
      const policyWatcher = new FileWatcher(source.files, () => this.reloadPolicy().then(() => {}), {
        intervalMs: interval,
      });
      await policyWatcher.start();
      this.#watchers.push(policyWatcher);
    }
    this.#ready = true;
    this.#log(`listening on https://${this.#hostForUrl()}:${this.port} (HTTP/2 and HTTP/1.1)`);
  }

  #hostForUrl(): string {
    const address = (this.#server.address() as AddressInfo).address;
    return address.includes(":") ? `[${address}]` : address;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** SHA-256 fingerprint of the certificate being served. */
  get certificateFingerprint(): string {
    return this.#certificate.fingerprint;
  }

  /** Re-reads the certificate and key; new connections get them, open ones keep theirs. */
  async reloadCertificate(): Promise<boolean> {
    try {
      const next = await readCertificate(this.#options.certFile, this.#options.keyFile);
      if (next.fingerprint === this.#certificate.fingerprint && next.key.equals(this.#certificate.key))
        return true;
      this.#server.setSecureContext({ cert: next.cert, key: next.key });
      this.#certificate = next;
      this.#metrics.certificateExpiry.set({}, next.notAfter.getTime() / 1000);
      this.#metrics.reloads.inc({ what: "certificate", result: "success" });
      this.#log(`serving certificate reloaded (valid until ${next.notAfter.toISOString()})`);
      return true;
    } catch (error) {
      this.#metrics.reloads.inc({ what: "certificate", result: "error" });
      this.#log(`certificate not reloaded, the previous one stays in use: ${(error as Error).message}`);
      return false;
    }
  }

  /** Re-reads the policy; requests already running finish under the old one. */
  async reloadPolicy(): Promise<boolean> {
    const source = this.#options.policySource;
    if (source === undefined) return false;
    try {
      this.#handler.policy = await source.load();
      this.#metrics.reloads.inc({ what: "config", result: "success" });
      this.#log(`configuration reloaded from ${source.files.join(", ")}`);
      return true;
    } catch (error) {
      this.#metrics.reloads.inc({ what: "config", result: "error" });
      this.#log(`configuration not reloaded, the previous one stays in force: ${(error as Error).message}`);
      return false;
    }
  }

  #onRequest(req: Request, res: Response): void {
    const started = process.hrtime.bigint();
    const url = req.url ?? "/";
    const path = url.split("?")[0] ?? "/";
    res.on("error", () => {});
    req.on("error", () => {});
    switch (path) {
      case "/validate":
      case "/mutate":
        this.#admit(path === "/validate" ? "validate" : "mutate", req, res, url, started);
        return;
      case "/healthz":
      case "/livez":
        if (!this.#allow(req, res, ["GET", "HEAD"])) return;
        this.#send(req, res, 200, "text/plain; charset=utf-8", "ok\n");
        return;
      case "/readyz":
        if (!this.#allow(req, res, ["GET", "HEAD"])) return;
        if (this.#ready) this.#send(req, res, 200, "text/plain; charset=utf-8", "ok\n");
        else
          this.#send(
            req,
            res,
            503,
            "text/plain; charset=utf-8",
            this.#shutdown !== null ? "shutting down\n" : "not ready\n",
          );
        return;
      case "/metrics":
        if (!this.#allow(req, res, ["GET", "HEAD"])) return;
        this.#send(req, res, 200, EXPOSITION_CONTENT_TYPE, this.#metrics.render());
        return;
      default:
        this.#metrics.rejected.inc({ reason: "not-found" });
        this.#send(req, res, 404, "text/plain; charset=utf-8", `no such path ${JSON.stringify(path)}\n`);
    }
  }

  #allow(req: Request, res: Response, methods: readonly string[]): boolean {
    if (methods.includes(req.method)) return true;
    this.#metrics.rejected.inc({ reason: "method" });
    res.setHeader("allow", methods.join(", "));
    this.#send(
      req,
      res,
      405,
      "text/plain; charset=utf-8",
      `method ${req.method} not allowed; use ${methods.join(" or ")}\n`,
    );
    return false;
  }

  #send(req: Request, res: Response, status: number, type: string, body: string): void {
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    const bytes = Buffer.from(body);
    if (this.#closing && req.httpVersionMajor === 1) res.setHeader("connection", "close");
    res.writeHead(status, { "content-type": type, "content-length": String(bytes.byteLength) });
    if (req.method === "HEAD") res.end();
    else res.end(bytes);
  }

  #admit(endpoint: Endpoint, req: Request, res: Response, url: string, started: bigint): void {
    if (!this.#allow(req, res, ["POST"])) return;
    this.#inflight++;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      this.#inflight--;
      this.#metrics.duration.observe({ endpoint }, Number(process.hrtime.bigint() - started) / 1e9);
      if (this.#inflight === 0) this.#idle?.();
    };
    res.on("finish", done);
    res.on("close", done);

    const fail = (error: HttpError) => {
      this.#metrics.rejected.inc({ reason: error.reason });
      this.#metrics.requests.inc({ endpoint, verdict: "invalid" });
      if (req.httpVersionMajor === 1 && !res.headersSent) res.setHeader("connection", "close");
      this.#send(req, res, error.status, "text/plain; charset=utf-8", `${error.message}\n`);
      // Stop reading whatever the client still sends.
      if (req.httpVersionMajor === 1) res.on("finish", () => req.socket?.destroySoon?.());
      else req.stream?.close?.(http2.constants.NGHTTP2_CANCEL);
    };

    const type = String(req.headers["content-type"] ?? "")
      .split(";")[0]
      ?.trim()
      .toLowerCase();
    if (type !== "application/json") {
      fail(
        new HttpError(
          415,
          "content-type",
          `Content-Type must be application/json, got ${JSON.stringify(type ?? "")}`,
        ),
      );
      return;
    }
    const declared = Number(req.headers["content-length"] ?? Number.NaN);
    if (Number.isFinite(declared) && declared > this.#maxBody) {
      fail(
        new HttpError(
          413,
          "too-large",
          `request body of ${declared} bytes exceeds the limit of ${this.#maxBody} bytes`,
        ),
      );
      return;
    }
    const timeoutMs = Math.min(this.#requestTimeout, apiServerTimeoutMs(url) ?? Number.POSITIVE_INFINITY);
    // Pin lookups must leave time to answer: they get at most 80% of what remains.
    const deadline = Date.now() + timeoutMs * 0.8;
    const chunks: Buffer[] = [];
    let size = 0;
    let state: "reading" | "handling" | "done" = "reading";
    const timer = setTimeout(() => {
      if (state !== "reading") return;
      state = "done";
      fail(new HttpError(408, "timeout", `request body not received within ${this.#requestTimeout} ms`));
    }, this.#requestTimeout);
    timer.unref();
    req.on("data", (chunk: Buffer) => {
      if (state !== "reading") return;
      size += chunk.byteLength;
      if (size > this.#maxBody) {
        state = "done";
        clearTimeout(timer);
        chunks.length = 0;
        fail(new HttpError(413, "too-large", `request body exceeds the limit of ${this.#maxBody} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on("aborted", () => {
      state = "done";
      clearTimeout(timer);
    });
    req.on("end", () => {
      if (state !== "reading") return;
      state = "handling";
      clearTimeout(timer);
      const text = Buffer.concat(chunks, size).toString("utf8");
      chunks.length = 0;
      this.#handler
        .review(endpoint, text, { deadline })
        .then((result) => {
          state = "done";
          if (result.status === 400) {
            fail(new HttpError(400, "bad-review", result.message));
            return;
          }
          this.#metrics.requests.inc({ endpoint, verdict: result.verdict });
          for (const rule of result.rules)
            this.#metrics.ruleRequests.inc({ endpoint, verdict: result.verdict, rule });
          this.#send(req, res, 200, "application/json", JSON.stringify(result.review));
        })
        .catch((error: unknown) => {
          state = "done";
          this.#log(`internal error answering ${endpoint}: ${(error as Error)?.stack ?? String(error)}`);
          fail(new HttpError(500, "internal", "internal error"));
        });
    });
  }

  /**
   * Graceful shutdown: /readyz turns 503 at once; requests are still served for `shutdownDelayMs` (so the
   * API server's endpoints drop this pod first); then the listener closes, HTTP/2 sessions get GOAWAY, idle
   * HTTP/1.1 connections are closed and busy ones after their response; after `shutdownTimeoutMs` whatever
   * is left is cut off. Idempotent.
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#doShutdown();
    return this.#shutdown;
  }

  async #doShutdown(): Promise<void> {
    this.#ready = false;
    this.#log("shutting down: not ready; draining");
    for (const w of this.#watchers) w.stop();
    const delay = this.#options.shutdownDelayMs ?? 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const session of this.#sessions) session.close();
    (this.#server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    const drained = new Promise<void>((resolve) => {
      if (this.#inflight === 0) resolve();
      else this.#idle = resolve;
    });
    const limit = this.#options.shutdownTimeoutMs ?? 20_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), limit);
    });
    const first = await Promise.race([drained.then(() => "drained" as const), timedOut]);
    // Busy HTTP/1.1 connections were told `Connection: close`; close the ones now idle.
    (this.#server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    if (first === "timeout")
      this.#log(`shutdown: ${this.#inflight} requests still running after ${limit} ms; cut off`);
    const end = await Promise.race([closed.then(() => "closed" as const), timedOut]);
    if (end === "timeout" || first === "timeout") {
      for (const session of this.#sessions) session.destroy();
      for (const socket of this.#sockets) socket.destroy();
      await closed;
    }
    clearTimeout(timer);
    this.#log("shut down");
  }
}
