// Fault injection between a client and a test registry: a loopback HTTP proxy that forwards requests and,
// per request (method + path regex, optionally only the first N matches), drops the connection after N
// body bytes, stalls, answers a scripted response, or redirects blob GETs to a second host (BlobHost) that
// serves the bytes straight from the registry's storage and records whether Authorization reached it.

import { createReadStream, statSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { RunningRegistry } from "./registry.ts";

export interface ProxiedRequest {
  /** 0-based arrival order */
  readonly index: number;
  readonly method: string;
  /** path and query as received */
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
}

export type ProxyAction =
  /** forward unchanged */
  | { kind: "pass" }
  /** forward, send status, headers and `afterBytes` body bytes, then destroy the socket;
   * without afterBytes: destroy the socket at once, sending nothing and not forwarding */
  | { kind: "drop"; afterBytes?: number }
  /** forward, send status, headers and `afterBytes` body bytes, then send nothing more; without afterBytes:
   * send nothing at all (not forwarded). After `forMs` the socket is destroyed; default: held until the
   * client gives up or the proxy stops */
  | { kind: "stall"; afterBytes?: number; forMs?: number }
  /** answer without forwarding */
  | { kind: "respond"; status: number; headers?: Record<string, string>; body?: string | Uint8Array }
  /** answer with a redirect; default location: the proxy's BlobHost URL for a `/v2/<name>/blobs/<digest>`
   * path (needs a RunningRegistry target), default status 307 */
  | { kind: "redirect"; status?: 301 | 302 | 303 | 307 | 308; location?: string };

export interface ProxyRule {
  /** case-insensitive; default any */
  method?: string;
  /** tested against path + query */
  path: RegExp;
  /** apply to the first N matching requests only, then let them pass; default: every match */
  times?: number;
  action: ProxyAction;
}

export type ProxyScript = readonly ProxyRule[] | ((req: ProxiedRequest) => ProxyAction | null | undefined);

export interface ProxyLogEntry {
  readonly index: number;
  readonly method: string;
  readonly path: string;
  readonly action: ProxyAction["kind"];
  /** status sent to the client; null when none was sent */
  status: number | null;
  /** response body bytes sent to the client */
  bytesSent: number;
  readonly authorization: string | null;
  readonly range: string | null;
}

export interface BlobHostLogEntry {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** the Authorization header that arrived (tests assert it is null) */
  readonly authorization: string | null;
  readonly range: string | null;
}

export interface BlobHost {
  /** "127.0.0.2:PORT" (127.0.0.1 where 127.0.0.2 cannot be bound): another host than the registry's */
  readonly host: string;
  readonly url: string;
  readonly requests: BlobHostLogEntry[];
  /** URL serving the blob `digest` ("sha256:…"), shaped like a presigned storage URL */
  urlFor(digest: string): string;
  stop(): Promise<void>;
}

export interface RunningProxy {
  readonly host: string;
  readonly url: string;
  /** every request that arrived, in order */
  readonly requests: ProxyLogEntry[];
  /** the redirect target; null when the proxy's target is a bare URL */
  readonly blobHost: BlobHost | null;
  /** requests that arrived, optionally only those matching method and/or path */
  count(filter?: { method?: string; path?: RegExp }): number;
  /** replace the script (rule counters start afresh) */
  setScript(script: ProxyScript): void;
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
]);

/**
 * What a script makes of each request, for this proxy and the reliability suite's fault proxy: a function's
 * answer, or the first rule matching the method and path that has uses left; otherwise "pass".
 */
export function scriptChooser<Req extends { method: string; path: string }, Action extends { kind: string }>(
  script:
    | readonly { method?: string; path: RegExp; times?: number; action: Action }[]
    | ((req: Req) => Action | null | undefined),
  pass: Action,
): (req: Req) => Action {
  if (typeof script === "function") return (req) => script(req) ?? pass;
  const rules = script.map((rule) => ({ rule, left: rule.times ?? Number.POSITIVE_INFINITY }));
  return (req) => {
    for (const r of rules) {
      if (r.left <= 0) continue;
      if (r.rule.method && r.rule.method.toUpperCase() !== req.method) continue;
      if (!r.rule.path.test(req.path)) continue;
      r.left--;
      return r.rule.action;
    }
    return pass;
  };
}

/** Headers of one hop only (RFC 9110 §7.6.1), dropped when forwarding; shared with faults.ts. */
export function stripHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

function listen(server: http.Server, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

const BLOB_PATH = /^\/v2\/(.+)\/blobs\/([a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)(?:\?.*)?$/;

/** Serve blobs read straight from a filesystem-driver registry's storage, with Range support. */
export async function startBlobHost(storageDir: string): Promise<BlobHost> {
  const requests: BlobHostLogEntry[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://blobhost.invalid");
    const log = (status: number) =>
      requests.push({
        method: req.method ?? "GET",
        path: req.url ?? "/",
        status,
        authorization: req.headers.authorization ?? null,
        range: req.headers.range ?? null,
      });
    const m = /^\/blobs\/([a-z0-9]+)\/([a-f0-9]{2})([a-f0-9]+)$/.exec(url.pathname);
    if (!m || (req.method !== "GET" && req.method !== "HEAD")) {
      log(404);
      res.writeHead(404).end();
      return;
    }
    // Like a presigned S3 URL: a request that also carries Authorization is refused.
    if (req.headers.authorization !== undefined) {
      log(400);
      res
        .writeHead(400, { "content-type": "application/xml" })
        .end("<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>");
      return;
    }
    const file = join(
      storageDir,
      "docker/registry/v2/blobs",
      m[1] ?? "",
      m[2] ?? "",
      `${m[2]}${m[3]}`,
      "data",
    );
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      log(404);
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(Number(range[2]), size - 1);
      if (start > end) {
        log(416);
        res.writeHead(416, { "content-range": `bytes */${size}` }).end();
        return;
      }
      status = 206;
    }
    const headers: http.OutgoingHttpHeaders = {
      "content-type": "application/octet-stream",
      "content-length": end - start + 1,
      "accept-ranges": "bytes",
    };
    if (status === 206) headers["content-range"] = `bytes ${start}-${end}/${size}`;
    log(status);
    res.writeHead(status, headers);
    if (req.method === "HEAD" || size === 0) {
      res.end();
      return;
    }
    createReadStream(file, { start, end }).pipe(res);
  });
  let bindHost = "127.0.0.2";
  try {
    await listen(server, bindHost);
  } catch {
    bindHost = "127.0.0.1";
    await listen(server, bindHost);
  }
  const { port } = server.address() as AddressInfo;
  const host = `${bindHost}:${port}`;
  const url = `http://${host}`;
  return {
    host,
    url,
    requests,
    urlFor: (digest) => {
      const [algo, hex] = digest.split(":");
      return `${url}/blobs/${algo}/${hex}?X-Kpull-Expires=3600&X-Kpull-Signature=not-a-real-signature`;
    },
    stop: () => closeServer(server),
  };
}

/**
 * Start a fault-injecting proxy in front of `target` (a RunningRegistry, or a base URL such as
 * "http://127.0.0.1:5000"). The proxy itself speaks plain HTTP on 127.0.0.1; it forwards the client's Host
 * header and sets X-Forwarded-Proto: http, so the registry's Location headers point back at the proxy.
 */
export async function startProxy(
  target: RunningRegistry | string,
  script: ProxyScript = [],
): Promise<RunningProxy> {
  const targetUrl = new URL(typeof target === "string" ? target : target.url);
  const ca = typeof target === "string" ? null : target.caPem;
  const secure = targetUrl.protocol === "https:";
  const agent = secure
    ? new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}) })
    : new http.Agent({ keepAlive: true });
  const blobHost = typeof target === "string" ? null : await startBlobHost(target.storageDir);
  const requests: ProxyLogEntry[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let choose: (req: ProxiedRequest) => ProxyAction;
  const setScript = (s: ProxyScript) => {
    choose = scriptChooser<ProxiedRequest, ProxyAction>(s, { kind: "pass" });
  };
  setScript(script);

  const server = http.createServer((req, res) => {
    const info: ProxiedRequest = {
      index: requests.length,
      method: req.method ?? "GET",
      path: req.url ?? "/",
      headers: req.headers,
    };
    const action = choose(info);
    const entry: ProxyLogEntry = {
      index: info.index,
      method: info.method,
      path: info.path,
      action: action.kind,
      status: null,
      bytesSent: 0,
      authorization: req.headers.authorization ?? null,
      range: req.headers.range ?? null,
    };
    requests.push(entry);
    const socket = req.socket;
    const later = (ms: number, f: () => void) => {
      const t = setTimeout(() => {
        timers.delete(t);
        f();
      }, ms);
      timers.add(t);
    };

    if (action.kind === "respond") {
      req.resume();
      const body = action.body === undefined ? Buffer.alloc(0) : Buffer.from(action.body);
      entry.status = action.status;
      entry.bytesSent = body.byteLength;
      res.writeHead(action.status, { "content-length": body.byteLength, ...action.headers });
      res.end(body);
      return;
    }
    if (action.kind === "redirect") {
      req.resume();
      let location = action.location;
      if (location === undefined) {
        const m = BLOB_PATH.exec(info.path);
        if (!m?.[2] || !blobHost) {
          entry.status = 500;
          res.writeHead(500).end("proxy: redirect without location needs a blob path and a registry target");
          return;
        }
        location = blobHost.urlFor(m[2]);
      }
      entry.status = action.status ?? 307;
      res.writeHead(entry.status, { location, "content-length": 0 }).end();
      return;
    }
    if ((action.kind === "drop" || action.kind === "stall") && action.afterBytes === undefined) {
      req.resume();
      if (action.kind === "drop") socket.destroy();
      else if (action.forMs !== undefined) later(action.forMs, () => socket.destroy());
      return;
    }

    const headers = stripHopByHop(req.headers);
    headers["x-forwarded-proto"] = "http";
    const upstream = (secure ? https : http).request(
      {
        protocol: targetUrl.protocol,
        hostname: targetUrl.hostname,
        port: targetUrl.port,
        method: info.method,
        path: info.path,
        headers,
        agent,
      },
      (up) => {
        entry.status = up.statusCode ?? 502;
        res.writeHead(entry.status, stripHopByHop(up.headers));
        const limit =
          action.kind === "drop" || action.kind === "stall"
            ? (action.afterBytes ?? 0)
            : Number.POSITIVE_INFINITY;
        let cut = false;
        const cutNow = () => {
          if (cut) return;
          cut = true;
          up.pause();
          if (action.kind === "drop") {
            // flushHeaders-then-destroy: what was written reaches the client before the reset
            res.write(Buffer.alloc(0), () => {
              socket.destroy();
              up.destroy();
            });
          } else {
            const forMs = action.kind === "stall" ? action.forMs : undefined;
            if (forMs !== undefined)
              later(forMs, () => {
                socket.destroy();
                up.destroy();
              });
          }
        };
        if (limit === 0) {
          res.flushHeaders();
          cutNow();
          return;
        }
        up.on("data", (chunk: Buffer) => {
          if (cut) return;
          const room = limit - entry.bytesSent;
          const part = chunk.byteLength > room ? chunk.subarray(0, room) : chunk;
          entry.bytesSent += part.byteLength;
          res.write(part);
          if (entry.bytesSent >= limit) cutNow();
        });
        up.on("end", () => {
          if (!cut) res.end();
        });
        up.on("error", () => socket.destroy());
      },
    );
    upstream.on("error", (e) => {
      if (res.headersSent) socket.destroy();
      else {
        entry.status = 502;
        res.writeHead(502, { "content-type": "text/plain" }).end(`proxy: upstream error: ${e.message}`);
      }
    });
    req.pipe(upstream);
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
  });
  await listen(server, "127.0.0.1");
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  return {
    host,
    url: `http://${host}`,
    requests,
    blobHost,
    count: (filter = {}) =>
      requests.filter(
        (r) =>
          (filter.method === undefined || r.method === filter.method.toUpperCase()) &&
          (filter.path === undefined || filter.path.test(r.path)),
      ).length,
    setScript,
    stop: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await closeServer(server);
      agent.destroy();
      await blobHost?.stop();
    },
  };
}
