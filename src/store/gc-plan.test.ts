// The kubelet's image GC rules, checked against the spec's vectors (kubelet.md Appendix A.6).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { diskPressure, type GcImage, planImageGc, validateGcPolicy } from "./gc-plan.ts";

const GB = 1_000_000_000;
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** The A.6 table, relative to freeTime T. */
function a6Images(T: number, overrides: Partial<Record<string, Partial<GcImage>>> = {}): GcImage[] {
  const rows: GcImage[] = [
    { id: "A", inUse: true, pinned: false, lastUsed: T, firstDetected: T - DAY, size: 9 * GB },
    { id: "B", inUse: false, pinned: true, lastUsed: 0, firstDetected: T - DAY, size: 1 * GB },
    {
      id: "C",
      inUse: false,
      pinned: false,
      lastUsed: T - 3 * HOUR,
      firstDetected: T - 10 * HOUR,
      size: 3 * GB,
    },
    {
      id: "D",
      inUse: false,
      pinned: false,
      lastUsed: T - 1 * HOUR,
      firstDetected: T - 5 * HOUR,
      size: 4 * GB,
    },
    { id: "E", inUse: false, pinned: false, lastUsed: 0, firstDetected: T - 1 * MIN, size: 5 * GB },
    { id: "F", inUse: false, pinned: false, lastUsed: 0, firstDetected: T - 2 * HOUR, size: 2 * GB },
    {
      id: "G",
      inUse: false,
      pinned: false,
      lastUsed: T - 3 * HOUR,
      firstDetected: T - 20 * HOUR,
      size: 1 * GB,
    },
  ];
  return rows.map((r) => ({ ...r, ...overrides[r.id] }));
}

const T = Date.UTC(2026, 0, 15, 12, 0, 0);
const roomy = { capacity: 100 * GB, available: 90 * GB };

describe("image GC usage arithmetic (A.6)", () => {
  it("truncates: 84.8 % real usage reads as 85 and triggers GC; amountToFree = 48", () => {
    const p = diskPressure(
      { capacity: 1000, available: 152 },
      { highThresholdPercent: 85, lowThresholdPercent: 80 },
    );
    assert.deepEqual(p, { usagePercent: 85, amountToFree: 48, triggered: true });
  });

  it("available 160 of 1000 is 84 %: no GC", () => {
    const p = diskPressure(
      { capacity: 1000, available: 160 },
      { highThresholdPercent: 85, lowThresholdPercent: 80 },
    );
    assert.deepEqual(p, { usagePercent: 84, amountToFree: 0, triggered: false });
  });

  it("capacity 0 is InvalidDiskCapacity, with the kubelet's message", () => {
    assert.throws(
      () =>
        diskPressure({ capacity: 0, available: 0 }, { highThresholdPercent: 85, lowThresholdPercent: 80 }),
      {
        code: "InvalidDiskCapacity",
        message: "invalid capacity 0 on image filesystem",
      },
    );
    const plan = planImageGc({
      images: a6Images(T),
      now: T,
      startedAt: T - DAY,
      disk: { capacity: 0, available: 0 },
    });
    assert.equal(plan.failure?.code, "InvalidDiskCapacity");
    assert.deepEqual(plan.remove, []);
  });

  it("available above capacity is clamped to capacity", () => {
    const p = diskPressure(
      { capacity: 1000, available: 5000 },
      { highThresholdPercent: 0, lowThresholdPercent: 0 },
    );
    assert.deepEqual(p, { usagePercent: 0, amountToFree: 0, triggered: true });
  });

  it("exact byte counts beyond 2^53 / 100 stay integral", () => {
    const capacity = 2 ** 52;
    const p = diskPressure({ capacity, available: 1 }, { highThresholdPercent: 85, lowThresholdPercent: 80 });
    assert.equal(p.usagePercent, 100);
    assert.equal(p.amountToFree, Number((BigInt(capacity) * 20n) / 100n) - 1);
  });
});

describe("image GC space pass (A.6: capacity 100 GB, available 12 GB, high 85, low 80, MinAge 2m)", () => {
  const disk = { capacity: 100 * GB, available: 12 * GB };

  it("candidates F, E, G, C, D; F, G, C, D deleted (E too young); stops at 10 ≥ 8", () => {
    const plan = planImageGc({ images: a6Images(T), now: T, startedAt: T - DAY, disk });
    assert.equal(plan.usagePercent, 88);
    assert.equal(plan.amountToFree, 8 * GB);
    assert.deepEqual(plan.order, ["F", "E", "G", "C", "D"]);
    assert.deepEqual(
      plan.remove.map((r) => [r.id, r.reason]),
      [
        ["F", "space"],
        ["G", "space"],
        ["C", "space"],
        ["D", "space"],
      ],
    );
    assert.equal(plan.freedBySpacePass, 10 * GB);
    assert.equal(plan.failure, null);
    assert.deepEqual(plan.skipped, [
      { id: "A", reason: "in-use" },
      { id: "B", reason: "pinned" },
      { id: "E", reason: "min-age" },
    ]);
  });

  it("stops as soon as enough is freed", () => {
    const plan = planImageGc({
      images: a6Images(T),
      now: T,
      startedAt: T - DAY,
      disk: { capacity: 100 * GB, available: 15 * GB },
    });
    assert.equal(plan.amountToFree, 5 * GB);
    assert.deepEqual(
      plan.remove.map((r) => r.id),
      ["F", "G", "C"],
    );
  });

  it("with D in use: freed 6 < 8 → FreeDiskSpaceFailed with the kubelet's message", () => {
    const plan = planImageGc({
      images: a6Images(T, { D: { inUse: true, lastUsed: T } }),
      now: T,
      startedAt: T - DAY,
      disk,
    });
    assert.deepEqual(
      plan.remove.map((r) => r.id),
      ["F", "G", "C"],
    );
    assert.equal(plan.freedBySpacePass, 6 * GB);
    assert.deepEqual(plan.failure, {
      code: "FreeDiskSpaceFailed",
      message:
        "Failed to garbage collect required amount of images. Attempted to free 8000000000 bytes, but only found 6000000000 bytes eligible to free.",
    });
  });

  it("skips an image used at or after freeTime", () => {
    const plan = planImageGc({
      images: a6Images(T, { F: { lastUsed: T }, D: { inUse: true } }),
      now: T,
      startedAt: T - DAY,
      disk,
    });
    assert.ok(plan.skipped.some((s) => s.id === "F" && s.reason === "used-now"));
    assert.ok(!plan.remove.some((r) => r.id === "F"));
  });
});

describe("image GC age pass (A.6: MaxAge 1h, GC clock started at T0, images as of T = T0+2h)", () => {
  const T0 = T - 2 * HOUR;

  it("at T0+50m nothing: the GC clock has not run longer than MaxAge", () => {
    const plan = planImageGc({
      images: a6Images(T),
      policy: { maxAgeMs: HOUR },
      now: T0 + 50 * MIN,
      startedAt: T0,
      disk: roomy,
    });
    assert.equal(plan.agePass, false);
    assert.deepEqual(plan.remove, []);
  });

  it("at T: C and G (unused 3h), E and F (never used) deleted; D (exactly 1h) kept; no MinAge guard", () => {
    const plan = planImageGc({
      images: a6Images(T),
      policy: { maxAgeMs: HOUR },
      now: T,
      startedAt: T0,
      disk: roomy,
    });
    assert.equal(plan.agePass, true);
    assert.equal(plan.spacePass, false);
    assert.deepEqual(
      plan.remove.map((r) => [r.id, r.reason]),
      [
        ["F", "age"],
        ["E", "age"],
        ["G", "age"],
        ["C", "age"],
      ],
    );
  });

  it("the age pass runs before the space pass, which sees only what is left", () => {
    const plan = planImageGc({
      images: a6Images(T),
      policy: { maxAgeMs: HOUR },
      now: T,
      startedAt: T0,
      disk: { capacity: 100 * GB, available: 12 * GB },
    });
    assert.deepEqual(
      plan.remove.map((r) => [r.id, r.reason]),
      [
        ["F", "age"],
        ["E", "age"],
        ["G", "age"],
        ["C", "age"],
        ["D", "space"],
      ],
    );
    // The space pass counts only its own removals: D's 4 GB < 8 GB.
    assert.equal(plan.failure?.code, "FreeDiskSpaceFailed");
  });
});

describe("image GC policy", () => {
  it("high = 100 and MaxAge = 0 disables image GC entirely", () => {
    const plan = planImageGc({
      images: a6Images(T),
      policy: { highThresholdPercent: 100 },
      now: T,
      startedAt: T - DAY,
      disk: { capacity: 100, available: 0 },
    });
    assert.equal(plan.disabled, true);
    assert.deepEqual(plan.remove, []);
  });

  it("validates thresholds with the kubelet's messages", () => {
    const base = { highThresholdPercent: 85, lowThresholdPercent: 80, minAgeMs: 0, maxAgeMs: 0 };
    assert.throws(() => validateGcPolicy({ ...base, highThresholdPercent: 101 }), {
      message: "invalid HighThresholdPercent 101, must be in range [0-100]",
    });
    assert.throws(() => validateGcPolicy({ ...base, lowThresholdPercent: -1 }), {
      message: "invalid LowThresholdPercent -1, must be in range [0-100]",
    });
    assert.throws(() => validateGcPolicy({ ...base, lowThresholdPercent: 90 }), {
      code: "INVALID",
      message: "LowThresholdPercent 90 can not be higher than HighThresholdPercent 85",
    });
  });

  it("ties on lastUsed and firstDetected keep input order", () => {
    const images: GcImage[] = ["x", "y", "z"].map((id) => ({
      id,
      size: 1,
      lastUsed: 0,
      firstDetected: T - DAY,
      inUse: false,
      pinned: false,
    }));
    const plan = planImageGc({ images, now: T, startedAt: T - DAY, disk: { capacity: 100, available: 0 } });
    assert.deepEqual(plan.order, ["x", "y", "z"]);
  });
});
