// Tag-to-digest resolution for the `pin` mutation: one HEAD per tag through kpull's registry client, shared
// by concurrent requests, cached for a while (positive answers for `ttlMs`, failures for `negativeTtlMs` so
// a registry that is down costs one timeout per tag per interval, not one per request), bounded in size, and
// bounded in time: a lookup is aborted after `timeoutMs` whoever waits for it.

import { lockKey } from "../check/index.ts";
import type { Reference } from "../reference/index.ts";
import type { RegistryClient } from "../registry/index.ts";

/** Resolves a reference (tag, no digest) to the digest the tag points to now. */
export type DigestLookup = (reference: Reference, signal: AbortSignal) => Promise<string>;

/** A DigestLookup over kpull's registry client: one HEAD for the index (or manifest) digest. */
export function registryDigestLookup(client: RegistryClient): DigestLookup {
  return async (reference, signal) => (await client.repository(reference).resolve({ signal })).digest;
}

export interface PinCacheOptions {
  readonly lookup: DigestLookup;
  /** How long a digest is reused (default 5 minutes). */
  readonly ttlMs?: number;
  /** How long a failure is remembered (default 10 seconds). */
  readonly negativeTtlMs?: number;
  /** Entries kept at most; the oldest go first (default 1000). */
  readonly maxEntries?: number;
  /** A lookup is aborted after this long (default 2 seconds). */
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

export type PinOutcome = "hit" | "miss" | "error" | "cached-error";

interface Entry {
  readonly expires: number;
  readonly digest: string | null;
  readonly error: string | null;
}

/** The answer for one image: a digest, or why there is none. */
export type PinAnswer =
  | { readonly ok: true; readonly digest: string; readonly outcome: PinOutcome }
  | { readonly ok: false; readonly error: string; readonly outcome: PinOutcome };

export class PinCache {
  readonly #lookup: DigestLookup;
  readonly #ttl: number;
  readonly #negativeTtl: number;
  readonly #max: number;
  readonly #timeout: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<Entry>>();

  constructor(options: PinCacheOptions) {
    this.#lookup = options.lookup;
    this.#ttl = options.ttlMs ?? 5 * 60_000;
    this.#negativeTtl = options.negativeTtlMs ?? 10_000;
    this.#max = Math.max(1, options.maxEntries ?? 1000);
    this.#timeout = options.timeoutMs ?? 2000;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The digest for `reference` (which must carry no digest), from the cache or the registry. */
  async resolve(reference: Reference): Promise<PinAnswer> {
    const key = lockKey(reference);
    const cached = this.#entries.get(key);
    if (cached !== undefined && cached.expires > this.#now()) {
      return cached.digest !== null
        ? { ok: true, digest: cached.digest, outcome: "hit" }
        : { ok: false, error: cached.error ?? "lookup failed", outcome: "cached-error" };
    }
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = this.#fetch(key, reference);
      this.#inflight.set(key, pending);
      void pending.finally(() => this.#inflight.delete(key));
    }
    const entry = await pending;
    return entry.digest !== null
      ? { ok: true, digest: entry.digest, outcome: "miss" }
      : { ok: false, error: entry.error ?? "lookup failed", outcome: "error" };
  }

  async #fetch(key: string, reference: Reference): Promise<Entry> {
    const signal = AbortSignal.timeout(this.#timeout);
    let entry: Entry;
    try {
      const digest = await this.#lookup(reference, signal);
      entry = { expires: this.#now() + this.#ttl, digest, error: null };
    } catch (error) {
      const message = signal.aborted
        ? `no answer from the registry within ${this.#timeout} ms`
        : (((error as Error).message ?? String(error)).split("\n")[0] ?? "lookup failed");
      entry = { expires: this.#now() + this.#negativeTtl, digest: null, error: message };
    }
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    return entry;
  }

  /** Forgets everything (tests; a credentials change). */
  clear(): void {
    this.#entries.clear();
  }
}
