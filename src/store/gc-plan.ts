// The kubelet's image GC decision (pkg/kubelet/images/image_gc_manager.go; spec kubelet.md §4, vectors A.6)
// as a pure function: images, policy, the clock and the filesystem's numbers in; what to delete, in which
// order and why, out. The store executes the plan (store/gc.ts); tests feed it the spec's vectors.
//
// 1. Candidates: images not in use and not pinned, sorted by lastUsed ascending (never used = 0 first), ties
//    by firstDetected ascending.
// 2. Age pass, only when maxAge > 0 and now − startedAt > maxAge: delete every candidate with
//    now − lastUsed > maxAge. No minimum-age guard here (as upstream).
// 3. usage = 100 − floor(available × 100 / capacity); capacity 0 → InvalidDiskCapacity.
// 4. If usage ≥ high: amountToFree = floor(capacity × (100 − low) / 100) − available; space pass over the
//    remaining candidates: skip lastUsed ≥ now, skip now − firstDetected < minAge, delete, stop once
//    freed ≥ amountToFree. freed < amountToFree → FreeDiskSpaceFailed.

import { StoreError } from "./errors.ts";

export interface GcImage {
  /** The image ID (config digest). */
  readonly id: string;
  readonly size: number;
  /** ms since the epoch; 0 = never used. */
  readonly lastUsed: number;
  /** ms since the epoch. */
  readonly firstDetected: number;
  readonly inUse: boolean;
  readonly pinned: boolean;
}

export interface GcPolicy {
  /** imageGCHighThresholdPercent, default 85. */
  readonly highThresholdPercent: number;
  /** imageGCLowThresholdPercent, default 80. */
  readonly lowThresholdPercent: number;
  /** imageMinimumGCAge in ms, default 2 minutes. */
  readonly minAgeMs: number;
  /** imageMaximumGCAge in ms, default 0 (disabled). */
  readonly maxAgeMs: number;
}

export const DEFAULT_GC_POLICY: GcPolicy = {
  highThresholdPercent: 85,
  lowThresholdPercent: 80,
  minAgeMs: 2 * 60_000,
  maxAgeMs: 0,
};

export interface DiskUsage {
  /** Bytes of the filesystem holding the store. */
  readonly capacity: number;
  /** Bytes available to unprivileged users. */
  readonly available: number;
}

export type GcSkipReason = "in-use" | "pinned" | "min-age" | "used-now";

export interface GcRemoval {
  readonly id: string;
  readonly size: number;
  readonly reason: "age" | "space";
}

export interface GcPlan {
  /** The kubelet does not run image GC at all when high = 100 and maxAge = 0. */
  readonly disabled: boolean;
  /** Candidates in eviction order (ids). */
  readonly order: readonly string[];
  /** Whether the age pass ran (maxAge set and the GC clock has run longer than maxAge). */
  readonly agePass: boolean;
  readonly usagePercent: number;
  /** Whether usage reached the high threshold (the space pass ran). */
  readonly spacePass: boolean;
  /** 0 when the space pass did not run. */
  readonly amountToFree: number;
  /** In the order the kubelet deletes them: age pass first, then space pass. */
  readonly remove: readonly GcRemoval[];
  readonly skipped: readonly { readonly id: string; readonly reason: GcSkipReason }[];
  /** Sum of the sizes of the space pass's removals (what the kubelet compares to amountToFree). */
  readonly freedBySpacePass: number;
  /** FreeDiskSpaceFailed when the space pass could not find enough; InvalidDiskCapacity when the filesystem
   * reports capacity 0 (the age pass's removals still stand, as in the kubelet). */
  readonly failure: {
    readonly code: "FreeDiskSpaceFailed" | "InvalidDiskCapacity";
    readonly message: string;
  } | null;
}

/** Kubelet policy validation, with its messages. */
export function validateGcPolicy(policy: GcPolicy): void {
  const { highThresholdPercent: high, lowThresholdPercent: low } = policy;
  const bad = (message: string) => new StoreError("INVALID", message);
  if (!Number.isInteger(high) || high < 0 || high > 100)
    throw bad(`invalid HighThresholdPercent ${high}, must be in range [0-100]`);
  if (!Number.isInteger(low) || low < 0 || low > 100)
    throw bad(`invalid LowThresholdPercent ${low}, must be in range [0-100]`);
  if (low > high) throw bad(`LowThresholdPercent ${low} can not be higher than HighThresholdPercent ${high}`);
  if (!(policy.minAgeMs >= 0)) throw bad(`invalid minimum GC age ${policy.minAgeMs}ms`);
  if (!(policy.maxAgeMs >= 0)) throw bad(`invalid maximum GC age ${policy.maxAgeMs}ms`);
}

/** The kubelet's integer arithmetic: usage percent (truncated) and, when at or above `high`, the bytes to free. */
export function diskPressure(
  disk: DiskUsage,
  policy: Pick<GcPolicy, "highThresholdPercent" | "lowThresholdPercent">,
): { usagePercent: number; amountToFree: number; triggered: boolean } {
  const capacity = Math.trunc(disk.capacity);
  const available = Math.min(Math.trunc(disk.available), capacity);
  if (capacity <= 0) {
    throw new StoreError("InvalidDiskCapacity", `invalid capacity ${capacity} on image filesystem`);
  }
  const usagePercent = 100 - Number((BigInt(available) * 100n) / BigInt(capacity));
  const triggered = usagePercent >= policy.highThresholdPercent;
  const amountToFree = triggered
    ? Number((BigInt(capacity) * BigInt(100 - policy.lowThresholdPercent)) / 100n) - available
    : 0;
  return { usagePercent, amountToFree, triggered };
}

/** Candidates in eviction order: not in use, not pinned; lastUsed ascending, then firstDetected ascending. */
export function evictionOrder(images: readonly GcImage[]): GcImage[] {
  return images
    .filter((i) => !i.inUse && !i.pinned)
    .map((image, index) => ({ image, index }))
    .sort(
      (a, b) =>
        a.image.lastUsed - b.image.lastUsed ||
        a.image.firstDetected - b.image.firstDetected ||
        a.index - b.index,
    )
    .map((e) => e.image);
}

export interface PlanInput {
  readonly images: readonly GcImage[];
  readonly policy?: Partial<GcPolicy>;
  /** freeTime, ms since the epoch. */
  readonly now: number;
  /** When the GC clock started (the kubelet's beganGC), ms; the age pass waits until now − startedAt > maxAge. */
  readonly startedAt: number;
  readonly disk: DiskUsage;
}

/** The kubelet starts no image GC when high = 100 and maxAge = 0 (kubelet.md §4.1). */
export function gcDisabled(policy: GcPolicy): boolean {
  return policy.highThresholdPercent === 100 && policy.maxAgeMs === 0;
}

export function planImageGc(input: PlanInput): GcPlan {
  const policy: GcPolicy = { ...DEFAULT_GC_POLICY, ...input.policy };
  validateGcPolicy(policy);
  const now = input.now;
  if (gcDisabled(policy)) {
    return {
      disabled: true,
      order: [],
      agePass: false,
      usagePercent: 0,
      spacePass: false,
      amountToFree: 0,
      remove: [],
      skipped: [],
      freedBySpacePass: 0,
      failure: null,
    };
  }
  const skipped: { id: string; reason: GcSkipReason }[] = [];
  for (const image of input.images) {
    if (image.inUse) skipped.push({ id: image.id, reason: "in-use" });
    else if (image.pinned) skipped.push({ id: image.id, reason: "pinned" });
  }
  let candidates = evictionOrder(input.images);
  const order = candidates.map((c) => c.id);
  const remove: GcRemoval[] = [];

  const agePass = policy.maxAgeMs > 0 && now - input.startedAt > policy.maxAgeMs;
  if (agePass) {
    const remaining: GcImage[] = [];
    for (const image of candidates) {
      if (now - image.lastUsed > policy.maxAgeMs)
        remove.push({ id: image.id, size: image.size, reason: "age" });
      else remaining.push(image);
    }
    candidates = remaining;
  }

  let pressure: ReturnType<typeof diskPressure>;
  try {
    pressure = diskPressure(input.disk, policy);
  } catch (error) {
    if (!(error instanceof StoreError) || error.code !== "InvalidDiskCapacity") throw error;
    const failure = { code: "InvalidDiskCapacity" as const, message: error.message };
    return {
      disabled: false,
      order,
      agePass,
      usagePercent: 0,
      spacePass: false,
      amountToFree: 0,
      remove,
      skipped,
      freedBySpacePass: 0,
      failure,
    };
  }
  let freed = 0;
  let failure: GcPlan["failure"] = null;
  if (pressure.triggered) {
    for (const image of candidates) {
      if (image.lastUsed >= now) {
        skipped.push({ id: image.id, reason: "used-now" });
        continue;
      }
      if (now - image.firstDetected < policy.minAgeMs) {
        skipped.push({ id: image.id, reason: "min-age" });
        continue;
      }
      remove.push({ id: image.id, size: image.size, reason: "space" });
      freed += image.size;
      if (freed >= pressure.amountToFree) break;
    }
    if (freed < pressure.amountToFree) {
      failure = {
        code: "FreeDiskSpaceFailed",
        message: `Failed to garbage collect required amount of images. Attempted to free ${pressure.amountToFree} bytes, but only found ${freed} bytes eligible to free.`,
      };
    }
  }
  return {
    disabled: false,
    order,
    agePass,
    usagePercent: pressure.usagePercent,
    spacePass: pressure.triggered,
    amountToFree: pressure.amountToFree,
    remove,
    skipped,
    freedBySpacePass: freed,
    failure,
  };
}
