// Request accounting: the pull-policy promise "Always costs one HEAD on a cached image" must be observable.

export type HttpMethod = "HEAD" | "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RequestStats {
  /** Requests sent to registry hosts (and redirect targets), by method. Token requests are counted apart. */
  readonly requests: Record<HttpMethod, number>;
  tokenRequests: number;
  bytesReceived: number;
  bytesSent: number;
}

export function newStats(): RequestStats {
  return {
    requests: { HEAD: 0, GET: 0, POST: 0, PUT: 0, PATCH: 0, DELETE: 0 },
    tokenRequests: 0,
    bytesReceived: 0,
    bytesSent: 0,
  };
}

/** Only the methods that were used, for compact reports: {"HEAD":1,"GET":0} style objects keep HEAD and GET. */
export function requestCounts(stats: RequestStats): Partial<Record<HttpMethod, number>> {
  const out: Partial<Record<HttpMethod, number>> = { HEAD: stats.requests.HEAD, GET: stats.requests.GET };
  for (const [method, n] of Object.entries(stats.requests) as [HttpMethod, number][])
    if (n > 0) out[method] = n;
  return out;
}
