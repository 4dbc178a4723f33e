// The wire under http.ts: Node's own http/https clients behind the small part of undici's API the registry
// client used (a per-host Agent with a connection limit and timeouts, and `request`). Node's clients are
// part of the runtime, so loading them costs about 7 ms where undici's 109 modules and WebAssembly HTTP
// parser cost 60 to 70 ms — on every kpull start, more than Node's own start-up (bench/RESULTS.md). The
// parser is Node's native llhttp; bodies stream as Node Readables, never decoded.
//
// Failures carry undici's codes so the error mapping stays one table (http.ts toRegistryError):
// UND_ERR_CONNECT_TIMEOUT, UND_ERR_HEADERS_TIMEOUT, UND_ERR_BODY_TIMEOUT (a stalled body), and Node's own
// codes (ECONNRESET, ECONNREFUSED, EPROTO, certificate errors) for the rest.

import { Buffer } from "node:buffer";
import type * as Http from "node:http";
import type * as Https from "node:https";
import type { Socket } from "node:net";
import { pipeline } from "node:stream";

// Fetched with getBuiltinModule rather than imported: an ES import of node:http builds its module namespace
// by reading every export, and the WebSocket getter among them loads Node's internal undici (about 35 ms).
// node:https (TLS, about 15 ms) loads only for the first https URL.
const http = process.getBuiltinModule("node:http") as typeof Http;
let httpsModule: typeof Https | null = null;
const https = (): typeof Https => {
  httpsModule ??= process.getBuiltinModule("node:https") as typeof Https;
  return httpsModule;
};

export interface AgentOptions {
  /** Connections per origin. */
  readonly connections: number;
  /** Time from the request's last byte sent to the response's headers. */
  readonly headersTimeout: number;
  /** Longest silence while a body is arriving (a stall). */
  readonly bodyTimeout: number;
  readonly connect?: {
    readonly timeout?: number;
    readonly ca?: readonly string[];
    readonly cert?: string;
    readonly key?: string;
    readonly rejectUnauthorized?: boolean;
  };
}

/** Keep-alive pools for one set of TLS settings, one per origin inside Node's agents. */
export class Agent {
  readonly options: AgentOptions;
  #http: Http.Agent | null = null;
  #https: Https.Agent | null = null;

  constructor(options: AgentOptions) {
    this.options = options;
  }

  agentFor(protocol: string): Http.Agent {
    const common = { keepAlive: true, maxSockets: this.options.connections, scheduling: "lifo" as const };
    if (protocol === "https:") {
      const c = this.options.connect ?? {};
      this.#https ??= new (https().Agent)({
        ...common,
        ...(c.ca ? { ca: [...c.ca] } : {}),
        ...(c.cert ? { cert: c.cert } : {}),
        ...(c.key ? { key: c.key } : {}),
        ...(c.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
      });
      return this.#https;
    }
    this.#http ??= new http.Agent(common);
    return this.#http;
  }

  async close(): Promise<void> {
    this.#http?.destroy();
    this.#https?.destroy();
    this.#http = null;
    this.#https = null;
  }
}

export type Dispatcher = Agent;

export type ResponseBody = Http.IncomingMessage;

export interface Response {
  readonly statusCode: number;
  /** Lower-case names; a header sent more than once is an array, in order (as undici gives them). */
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: ResponseBody;
}

export interface RequestOptions {
  readonly method: string;
  readonly headers?: Record<string, string>;
  readonly body?: Buffer | NodeJS.ReadableStream | undefined;
  readonly dispatcher: Agent;
  readonly signal?: AbortSignal;
}

function coded(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function collectHeaders(raw: readonly string[]): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    const seen = out[name];
    if (seen === undefined) out[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else out[name] = [seen, value];
  }
  return out;
}

/** Sends one request; resolves with the status, headers and the body stream when the headers arrive. */
export function request(url: URL | string, options: RequestOptions): Promise<Response> {
  const target = typeof url === "string" ? new URL(url) : url;
  const agent = options.dispatcher;
  const limits = agent.options;
  return new Promise((resolve, reject) => {
    let answered = false;
    let headersTimer: NodeJS.Timeout | null = null;
    const client = target.protocol === "https:" ? https() : http;
    const req = client.request(target, {
      method: options.method,
      headers: options.headers ?? {},
      agent: agent.agentFor(target.protocol),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const stopHeadersTimer = () => {
      if (headersTimer !== null) clearTimeout(headersTimer);
      headersTimer = null;
    };
    req.once("socket", (socket: Socket) => {
      const connectMs = limits.connect?.timeout;
      if (!socket.connecting || connectMs === undefined || connectMs <= 0) return;
      const timer = setTimeout(
        () => req.destroy(coded("UND_ERR_CONNECT_TIMEOUT", `Connect Timeout Error (${connectMs} ms)`)),
        connectMs,
      );
      const done = () => clearTimeout(timer);
      socket.once(target.protocol === "https:" ? "secureConnect" : "connect", done);
      socket.once("close", done);
    });
    // The headers timeout runs from the end of the request body, so a long upload is not cut short.
    req.once("finish", () => {
      if (answered || limits.headersTimeout <= 0) return;
      headersTimer = setTimeout(
        () => req.destroy(coded("UND_ERR_HEADERS_TIMEOUT", "Headers Timeout Error")),
        limits.headersTimeout,
      );
    });
    req.once("response", (res: Http.IncomingMessage) => {
      answered = true;
      stopHeadersTimer();
      const socket = res.socket;
      if (limits.bodyTimeout > 0 && socket !== null) {
        // Idle time on the socket while the body streams; cleared before the socket goes back to the pool.
        const stalled = () => res.destroy(coded("UND_ERR_BODY_TIMEOUT", "Body Timeout Error"));
        socket.setTimeout(limits.bodyTimeout);
        socket.on("timeout", stalled);
        const done = () => {
          socket.setTimeout(0);
          socket.off("timeout", stalled);
        };
        res.once("end", done);
        res.once("error", done);
      }
      resolve({ statusCode: res.statusCode ?? 0, headers: collectHeaders(res.rawHeaders), body: res });
    });
    req.once("error", (error) => {
      stopHeadersTimer();
      if (!answered) reject(error);
    });
    const body = options.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      pipeline(body as NodeJS.ReadableStream, req, (error) => {
        if (error && !answered) {
          req.destroy(error);
          reject(error);
        }
      });
    }
  });
}
