// registryPullQPS / registryBurst (kubelet.md §2.9, A.5): a token bucket that starts full, refills at qps
// tokens per second up to burst, and never waits (TryAccept): without a token the pull fails at once with
// "pull QPS exceeded". qps 0 means no limit.

export const PULL_QPS_EXCEEDED = "pull QPS exceeded";

export class PullRateLimiter {
  readonly qps: number;
  readonly burst: number;
  #tokens: number;
  #last: number | null = null;

  constructor(qps: number, burst: number) {
    if (qps < 0)
      throw new RangeError(
        `invalid configuration: registryPullQPS (--registry-qps) ${qps} must not be a negative number`,
      );
    if (burst < 0)
      throw new RangeError(
        `invalid configuration: registryBurst (--registry-burst) ${burst} must not be a negative number`,
      );
    this.qps = qps;
    this.burst = burst;
    this.#tokens = burst;
  }

  tryAccept(now: number): boolean {
    if (this.qps === 0) return true;
    if (this.#last !== null)
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.qps);
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    return false;
  }
}
