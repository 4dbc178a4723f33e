// A minimal HTTP(S) client for the harness itself (readiness probes, seeding fixtures). It is deliberately
// not kpull's client and not fetch: it takes a CA per call and never decodes or follows anything.

import http from "node:http";
import https from "node:https";

/** Sent on every harness-internal request; RunningRegistry.accessLog() leaves these out by default. */
export const HARNESS_USER_AGENT = "kpull-test-harness";

export interface RawResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface RawRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** PEM of a CA to trust for https URLs. */
  ca?: string | null;
  timeoutMs?: number;
}

export function rawRequest(url: string | URL, options: RawRequestOptions = {}): Promise<RawResponse> {
  const u = new URL(url);
  const secure = u.protocol === "https:";
  const body = typeof options.body === "string" ? Buffer.from(options.body) : options.body;
  const headers: Record<string, string> = { "user-agent": HARNESS_USER_AGENT, ...options.headers };
  if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === "content-length")) {
    headers["content-length"] = String(body.byteLength);
  }
  const reqOptions: https.RequestOptions = {
    method: options.method ?? "GET",
    headers,
    agent: false,
    ...(secure && options.ca ? { ca: options.ca } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request(u, reqOptions, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on("error", reject);
    });
    req.setTimeout(options.timeoutMs ?? 10_000, () =>
      req.destroy(new Error(`timeout: ${req.method} ${u.href}`)),
    );
    req.on("error", reject);
    req.end(body);
  });
}
