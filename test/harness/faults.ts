// A second fault-injecting proxy for the reliability suite (test/reliability): everything proxy.ts does to a
// response (reset after N bytes, stall, scripted status, redirect) plus what it cannot: a slow drip at a set
// rate, a body truncated behind a rewritten Content-Length (a complete-looking short answer), bytes flipped at
// given offsets, rewritten or removed headers (a wrong Docker-Content-Digest), and a TLS front with any
// certificate. It forwards to a registry (or any base URL) on loopback and logs every request with the bytes
// it sent. proxy.ts stays as it is; this one lives beside it so the shared proxy's API does not change.

import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { scriptChooser, stripHopByHop } from "./proxy.ts";
import type { RunningRegistry } from "./registry.ts";

export type FaultAction =
  /** forward unchanged */
  | { readonly kind: "pass" }
  /** forward, send status, headers and `afterBytes` body bytes, then reset the connection (RST); without
   * afterBytes: reset at once, nothing sent, nothing forwarded */
  | { readonly kind: "reset"; readonly afterBytes?: number }
  /** forward, send `afterBytes` body bytes (default 0), then nothing; after `forMs` the socket is destroyed
   * (default: held until the client gives up or the proxy stops) */
  | { readonly kind: "stall"; readonly afterBytes?: number; readonly forMs?: number }
  /** forward, sending the body at `bytesPerSecond` (in 10 slices a second) */
  | { readonly kind: "drip"; readonly bytesPerSecond: number }
  /** forward, but answer with only the first `afterBytes` body bytes and a Content-Length that says so: a
   * short body that looks complete */
  | { readonly kind: "truncate"; readonly afterBytes: number }
  /** forward, XOR-ing the body bytes at these offsets with 0xff */
  | { readonly kind: "flip"; readonly at: readonly number[] }
  /** forward with response headers set (lower-case names) or removed */
  | {
      readonly kind: "headers";
      readonly set?: Readonly<Record<string, string>>;
      readonly remove?: readonly string[];
    }
  /** answer without forwarding */
  | {
      readonly kind: "respond";
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
      readonly body?: string | Uint8Array;
    }
  /** answer with a redirect to `location` (default status 307) */
  | { readonly kind: "redirect"; readonly location: string; readonly status?: number };

export interface FaultRule {
  /** case-insensitive; default any */
  readonly method?: string;
  /** tested against path + query */
  readonly path: RegExp;
  /** the first N matching requests only; default every match */
  readonly times?: number;
  readonly action: FaultAction;
}

export interface FaultRequest {
  readonly index: number;
  readonly method: string;
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
}

export type FaultScript = readonly FaultRule[] | ((req: FaultRequest) => FaultAction | null | undefined);

export interface FaultLogEntry {
  readonly index: number;
  readonly method: string;
  readonly path: string;
  readonly action: FaultAction["kind"];
  readonly range: string | null;
  readonly authorization: string | null;
  readonly startedAt: number;
  /** status sent; null when none was */
  status: number | null;
  /** body bytes sent to the client */
  bytesSent: number;
  /** when the exchange ended (response finished or connection closed) */
  endedAt: number | null;
}

export interface FaultProxyOptions {
  /** Serve HTTPS with this certificate and key instead of plain HTTP. */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
}

export interface FaultProxy {
  readonly host: string;
  readonly url: string;
  readonly requests: FaultLogEntry[];
  count(filter?: { method?: string; path?: RegExp }): number;
  /** body bytes sent to clients, optionally for matching requests only */
  bytesSent(filter?: { method?: string; path?: RegExp }): number;
  setScript(script: FaultScript): void;
  stop(): Promise<void>;
}

function reset(socket: Socket): void {
  if (socket.destroyed) return;
  // An RST, as a peer that crashed or a middlebox would send; a FIN would look like a clean end.
  if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
  else socket.destroy();
}

export async function startFaultProxy(
  target: RunningRegistry | string,
  script: FaultScript = [],
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  const targetUrl = new URL(typeof target === "string" ? target : target.url);
  const secure = targetUrl.protocol === "https:";
  const ca = typeof target === "string" ? null : target.caPem;
  const agent = secure
    ? new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}) })
    : new http.Agent({ keepAlive: true });
  const requests: FaultLogEntry[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  let choose: (req: FaultRequest) => FaultAction;
  const setScript = (s: FaultScript) => {
    choose = scriptChooser<FaultRequest, FaultAction>(s, { kind: "pass" });
  };
  setScript(script);
  const later = (ms: number, f: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      f();
    }, ms);
    timers.add(t);
    return t;
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const info: FaultRequest = {
      index: requests.length,
      method: req.method ?? "GET",
      path: req.url ?? "/",
      headers: req.headers,
    };
    const action = choose(info);
    const entry: FaultLogEntry = {
      index: info.index,
      method: info.method,
      path: info.path,
      action: action.kind,
      range: req.headers.range ?? null,
      authorization: req.headers.authorization ?? null,
      startedAt: Date.now(),
      status: null,
      bytesSent: 0,
      endedAt: null,
    };
    requests.push(entry);
    const socket = req.socket;
    res.on("close", () => {
      entry.endedAt = Date.now();
    });

    if (action.kind === "respond" || action.kind === "redirect") {
      req.resume();
      const body =
        action.kind === "respond" && action.body !== undefined ? Buffer.from(action.body) : Buffer.alloc(0);
      const status = action.kind === "respond" ? action.status : (action.status ?? 307);
      const headers = action.kind === "respond" ? { ...action.headers } : { location: action.location };
      entry.status = status;
      entry.bytesSent = info.method === "HEAD" ? 0 : body.byteLength;
      res.writeHead(status, { "content-length": body.byteLength, ...headers });
      res.end(info.method === "HEAD" ? undefined : body);
      return;
    }
    if ((action.kind === "reset" || action.kind === "stall") && action.afterBytes === undefined) {
      req.resume();
      if (action.kind === "reset") reset(socket);
      else if (action.forMs !== undefined) later(action.forMs, () => socket.destroy());
      return;
    }

    const headers = stripHopByHop(req.headers);
    headers["x-forwarded-proto"] = options.tls ? "https" : "http";
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
        const status = up.statusCode ?? 502;
        const out = stripHopByHop(up.headers);
        const declared = Number(up.headers["content-length"] ?? Number.NaN);
        if (action.kind === "headers") {
          for (const name of action.remove ?? []) delete out[name.toLowerCase()];
          for (const [k, v] of Object.entries(action.set ?? {})) out[k.toLowerCase()] = v;
        }
        if (action.kind === "truncate" && Number.isFinite(declared) && info.method !== "HEAD") {
          out["content-length"] = String(Math.min(declared, action.afterBytes));
        }
        entry.status = status;
        res.writeHead(status, out);
        if (info.method === "HEAD") {
          up.resume();
          res.end();
          return;
        }
        const limit =
          action.kind === "reset" || action.kind === "stall"
            ? (action.afterBytes ?? 0)
            : action.kind === "truncate"
              ? action.afterBytes
              : Number.POSITIVE_INFINITY;
        let offset = 0; // body bytes seen from upstream
        let cut = false;
        const send = (chunk: Buffer) => {
          entry.bytesSent += chunk.byteLength;
          res.write(chunk);
        };
        const onLimit = () => {
          if (cut) return;
          cut = true;
          up.destroy();
          if (action.kind === "reset") res.write(Buffer.alloc(0), () => reset(socket));
          else if (action.kind === "truncate") res.end();
          else if (action.kind === "stall" && action.forMs !== undefined)
            later(action.forMs, () => socket.destroy());
        };
        if (limit === 0) {
          res.flushHeaders();
          onLimit();
          return;
        }
        // The drip: a queue emptied at the set rate.
        const queue: Buffer[] = [];
        let ended = false;
        let drip: NodeJS.Timeout | null = null;
        if (action.kind === "drip") {
          const slice = Math.max(1, Math.floor(action.bytesPerSecond / 10));
          res.flushHeaders();
          drip = setInterval(() => {
            let budget = slice;
            while (budget > 0 && queue.length > 0) {
              const head = queue[0] as Buffer;
              const piece = head.subarray(0, budget);
              send(piece);
              budget -= piece.byteLength;
              if (piece.byteLength === head.byteLength) queue.shift();
              else queue[0] = head.subarray(piece.byteLength);
            }
            if (queue.length === 0 && ended) {
              if (drip) clearInterval(drip);
              res.end();
            }
          }, 100);
          res.on("close", () => {
            if (drip) clearInterval(drip);
            up.destroy();
          });
        }
        up.on("data", (raw: Buffer) => {
          if (cut) return;
          let chunk = raw;
          if (action.kind === "flip") {
            const copy = Buffer.from(chunk);
            for (const at of action.at) {
              const i = at - offset;
              if (i >= 0 && i < copy.byteLength) copy[i] = (copy[i] as number) ^ 0xff;
            }
            chunk = copy;
          }
          const room = limit - offset;
          const part = chunk.byteLength > room ? chunk.subarray(0, room) : chunk;
          offset += chunk.byteLength;
          if (drip !== null) queue.push(part);
          else send(part);
          if (offset >= limit) onLimit();
        });
        up.on("end", () => {
          if (cut) return;
          if (drip !== null) ended = true;
          else res.end();
        });
        up.on("error", () => socket.destroy());
      },
    );
    upstream.on("error", (e) => {
      if (res.headersSent) socket.destroy();
      else {
        entry.status = 502;
        res.writeHead(502, { "content-type": "text/plain" }).end(`fault proxy: upstream error: ${e.message}`);
      }
    });
    req.pipe(upstream);
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
  };

  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : http.createServer(handler);
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  const matches = (r: FaultLogEntry, filter: { method?: string; path?: RegExp }) =>
    (filter.method === undefined || r.method === filter.method.toUpperCase()) &&
    (filter.path === undefined || filter.path.test(r.path));
  return {
    host,
    url: `${options.tls ? "https" : "http"}://${host}`,
    requests,
    count: (filter = {}) => requests.filter((r) => matches(r, filter)).length,
    bytesSent: (filter = {}) =>
      requests.filter((r) => matches(r, filter)).reduce((n, r) => n + r.bytesSent, 0),
    setScript,
    stop: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

/** A loopback port with nothing listening: connecting to it is refused (the DNS-like failure class). */
export async function refusedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
