// Request accounting: the pull-policy promise "Always costs one HEAD on a cached image" must be observable.

export type HttpMethod = "HEAD" | "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RequestStats {
  /** Requests sent to registry hosts (and redirect targets), by method. Token requests are counted apart. */
  readonly requests: Record<HttpMethod, number>;
  tokenRequests: number;
  bytesReceived: number;
  bytesSent: number;
  /** The last rate-limit headers a registry sent (Docker Hub: `ratelimit-limit: 100;w=21600`). */
  rateLimit: RateLimit | null;
}

export interface RateLimit {
  readonly limit: number | null;
  readonly remaining: number | null;
  /** Window in seconds, from `;w=`. */
  readonly windowSeconds: number | null;
  readonly source: string | null;
}

/** Reads `ratelimit-limit` / `ratelimit-remaining` (`<n>;w=<seconds>`) and `docker-ratelimit-source`. */
export function parseRateLimit(get: (name: string) => string | undefined): RateLimit | null {
  const limit = get("ratelimit-limit");
  const remaining = get("ratelimit-remaining");
  if (limit === undefined && remaining === undefined) return null;
  const num = (v: string | undefined) => {
    const n = Number.parseInt(v ?? "", 10);
    return Number.isFinite(n) ? n : null;
  };
  const window = /;\s*w=(\d+)/.exec(limit ?? remaining ?? "")?.[1];
  return {
    limit: num(limit),
    remaining: num(remaining),
    windowSeconds: num(window),
    source: get("docker-ratelimit-source") ?? null,
  };
}

export function newStats(): RequestStats {
  return {
    requests: { HEAD: 0, GET: 0, POST: 0, PUT: 0, PATCH: 0, DELETE: 0 },
    tokenRequests: 0,
    bytesReceived: 0,
    bytesSent: 0,
    rateLimit: null,
  };
}

/** Only the methods that were used, for compact reports: {"HEAD":1,"GET":0} style objects keep HEAD and GET. */
export function requestCounts(stats: RequestStats): Partial<Record<HttpMethod, number>> {
  const out: Partial<Record<HttpMethod, number>> = { HEAD: stats.requests.HEAD, GET: stats.requests.GET };
  for (const [method, n] of Object.entries(stats.requests) as [HttpMethod, number][])
    if (n > 0) out[method] = n;
  return out;
}
