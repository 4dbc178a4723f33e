// client-go's flowcontrol.Backoff as the kubelet uses it for image pulls (kubelet.md §2.7, A.4): no jitter,
// 10 s doubling to 300 s, an entry expires 2 x max after its last update (strictly greater), success does
// not reset. The state can be saved and loaded so it survives between kpull invocations.

export interface BackoffEntry {
  /** Current window, in ms. */
  backoffMs: number;
  /** When the last failure was recorded, ms since the epoch. */
  lastUpdate: number;
  /** `<Reason>: <message>` of the last failure, for the back-off message. */
  lastError?: string;
}

export const IMAGE_BACKOFF_INITIAL_MS = 10_000;
export const IMAGE_BACKOFF_MAX_MS = 300_000;

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly #entries: Map<string, BackoffEntry>;

  constructor(
    initialMs = IMAGE_BACKOFF_INITIAL_MS,
    maxMs = IMAGE_BACKOFF_MAX_MS,
    entries: Record<string, BackoffEntry> = {},
  ) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.#entries = new Map(Object.entries(entries));
  }

  #expired(entry: BackoffEntry, now: number): boolean {
    return now - entry.lastUpdate > 2 * this.maxMs;
  }

  /** Records a failure: a new or expired entry starts at the initial window, else the window doubles. */
  next(key: string, now: number): void {
    const entry = this.#entries.get(key);
    if (entry === undefined || this.#expired(entry, now)) {
      this.#entries.set(key, { backoffMs: this.initialMs, lastUpdate: now });
      return;
    }
    entry.backoffMs = Math.min(entry.backoffMs * 2, this.maxMs);
    entry.lastUpdate = now;
  }

  /** True while `now` is inside the window that started at the last failure. */
  isInBackOffSinceUpdate(key: string, now: number): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined || this.#expired(entry, now)) return false;
    return now - entry.lastUpdate < entry.backoffMs;
  }

  windowMs(key: string): number | null {
    return this.#entries.get(key)?.backoffMs ?? null;
  }

  setLastError(key: string, error: string | undefined): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    if (error === undefined) delete entry.lastError;
    else entry.lastError = error;
  }

  lastError(key: string): string | undefined {
    return this.#entries.get(key)?.lastError;
  }

  /** Drops expired entries (called after a successful pull; it never resets the key). */
  gc(now: number): void {
    for (const [key, entry] of this.#entries) if (this.#expired(entry, now)) this.#entries.delete(key);
  }

  toJSON(): Record<string, BackoffEntry> {
    return Object.fromEntries(this.#entries);
  }
}

/** The kubelet's key: per pod and per raw image string. */
export function backoffKey(podUid: string, image: string): string {
  return `${podUid}_${image}`;
}
