// The pin cache: one lookup per tag at a time, answers reused for their TTL, failures for a shorter one,
// the oldest entries evicted, and a lookup cut off at its timeout.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseNormalizedNamed } from "../reference/index.ts";
import { PinCache } from "./index.ts";

const D = `sha256:${"d".repeat(64)}`;

describe("PinCache", () => {
  it("shares one lookup between concurrent requests and reuses the answer until it expires", async () => {
    let now = 1000;
    let calls = 0;
    const cache = new PinCache({
      lookup: async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 20));
        return D;
      },
      ttlMs: 100,
      now: () => now,
    });
    const ref = parseNormalizedNamed("nginx:1.27");
    const answers = await Promise.all([
      cache.resolve(ref),
      cache.resolve(ref),
      cache.resolve(parseNormalizedNamed("docker.io/library/nginx:1.27")),
    ]);
    assert.equal(calls, 1);
    assert.deepEqual(
      answers.map((a) => a.ok && a.digest),
      [D, D, D],
    );
    assert.equal((await cache.resolve(ref)).outcome, "hit");
    now += 101;
    assert.equal((await cache.resolve(ref)).outcome, "miss");
    assert.equal(calls, 2);
  });

  it("remembers failures briefly, evicts the oldest entries, and times lookups out", async () => {
    let now = 0;
    let calls = 0;
    const cache = new PinCache({
      lookup: async (ref, signal) => {
        calls++;
        if (ref.tag === "slow") {
          await new Promise((_, reject) =>
            signal.addEventListener("abort", () => reject(new Error("aborted"))),
          );
        }
        if (ref.tag === "bad") throw new Error("manifest unknown\nmore detail");
        return D;
      },
      negativeTtlMs: 50,
      maxEntries: 2,
      timeoutMs: 30,
      now: () => now,
    });
    const bad = parseNormalizedNamed("app:bad");
    assert.deepEqual(await cache.resolve(bad), { ok: false, error: "manifest unknown", outcome: "error" });
    assert.equal((await cache.resolve(bad)).outcome, "cached-error");
    now += 51;
    assert.equal((await cache.resolve(bad)).outcome, "error");
    const slow = await cache.resolve(parseNormalizedNamed("app:slow"));
    assert.deepEqual(slow, {
      ok: false,
      error: "no answer from the registry within 30 ms",
      outcome: "error",
    });
    await cache.resolve(parseNormalizedNamed("app:3"));
    assert.equal(cache.size, 2);
    const before = calls;
    await cache.resolve(bad); // evicted: looked up again
    assert.equal(calls, before + 1);
  });
});
