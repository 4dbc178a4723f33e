// The kubelet's image pullers (kubelet.md §2.8): serial (one in flight, a queue of 10 more; further callers
// wait for room) and parallel (maxParallelImagePulls tokens; unlimited when unset). The QPS limiter is
// consulted when a request is dispatched, once per pull.

import { PULL_QPS_EXCEEDED, PullRateLimiter } from "./ratelimit.ts";

export const MAX_IMAGE_PULL_REQUESTS = 10;

export interface PullResult<T> {
  readonly value: T;
  /** From dispatch until the pull and its size lookup finished, in ms. */
  readonly pullMs: number;
}

export interface Puller {
  pull<T>(work: () => Promise<T>): Promise<PullResult<T>>;
}

export class QpsExceededError extends Error {
  readonly code = "ErrImagePull";
  constructor() {
    super(PULL_QPS_EXCEEDED);
    this.name = "QpsExceededError";
  }
}

async function dispatch<T>(work: () => Promise<T>, limiter: PullRateLimiter | null, now: () => number) {
  const start = now();
  if (limiter !== null && !limiter.tryAccept(start)) throw new QpsExceededError();
  const value = await work();
  return { value, pullMs: now() - start };
}

export class SerialPuller implements Puller {
  readonly #limiter: PullRateLimiter | null;
  readonly #now: () => number;
  #tail: Promise<unknown> = Promise.resolve();
  #queued = 0;
  readonly #waitingForRoom: (() => void)[] = [];

  constructor(limiter: PullRateLimiter | null, now: () => number = Date.now) {
    this.#limiter = limiter;
    this.#now = now;
  }

  async pull<T>(work: () => Promise<T>): Promise<PullResult<T>> {
    // One in flight plus MAX_IMAGE_PULL_REQUESTS queued; a caller beyond that waits, like a blocked send.
    while (this.#queued > MAX_IMAGE_PULL_REQUESTS) {
      await new Promise<void>((resolve) => this.#waitingForRoom.push(resolve));
    }
    this.#queued++;
    const run = this.#tail.then(
      () => dispatch(work, this.#limiter, this.#now),
      () => dispatch(work, this.#limiter, this.#now),
    );
    this.#tail = run.catch(() => undefined);
    try {
      return await run;
    } finally {
      this.#queued--;
      this.#waitingForRoom.shift()?.();
    }
  }
}

export class ParallelPuller implements Puller {
  readonly #limiter: PullRateLimiter | null;
  readonly #now: () => number;
  readonly #max: number;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];

  /** `maxParallel` null or < 1: unlimited. */
  constructor(limiter: PullRateLimiter | null, maxParallel: number | null, now: () => number = Date.now) {
    this.#limiter = limiter;
    this.#now = now;
    this.#max = maxParallel === null || maxParallel < 1 ? Number.POSITIVE_INFINITY : maxParallel;
  }

  async pull<T>(work: () => Promise<T>): Promise<PullResult<T>> {
    while (this.#inFlight >= this.#max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#inFlight++;
    try {
      return await dispatch(work, this.#limiter, this.#now);
    } finally {
      this.#inFlight--;
      this.#waiting.shift()?.();
    }
  }
}

export interface PullerConfig {
  readonly serializeImagePulls?: boolean;
  readonly maxParallelImagePulls?: number | null;
  readonly registryPullQPS?: number;
  readonly registryBurst?: number;
}

/** Validates and defaults like the kubelet's config (kubelet.md §2.8, §2.12). */
export function makePuller(config: PullerConfig, now: () => number = Date.now): Puller {
  const max = config.maxParallelImagePulls ?? null;
  if (max !== null && max < 1) {
    throw new RangeError(`invalid configuration: maxParallelImagePulls ${max} must be a positive number`);
  }
  const serialize = config.serializeImagePulls ?? !(max !== null && max >= 2);
  if (serialize && max !== null && max > 1) {
    throw new RangeError(
      "invalid configuration: maxParallelImagePulls cannot be larger than 1 unless SerializeImagePulls (--serialize-image-pulls) is set to false",
    );
  }
  const qps = config.registryPullQPS ?? 5;
  const burst = config.registryBurst ?? 10;
  const limiter = qps === 0 ? null : new PullRateLimiter(qps, burst);
  return serialize ? new SerialPuller(limiter, now) : new ParallelPuller(limiter, max, now);
}
