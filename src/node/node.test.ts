import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Backoff,
  type Image,
  ImageManager,
  type ImageService,
  type ImageSpec,
  makePuller,
  type NodeEvent,
  ParallelPuller,
  PullRateLimiter,
  SerialPuller,
} from "./index.ts";

describe("back-off (kubelet.md A.4)", () => {
  it("follows the spec's timeline", () => {
    const b = new Backoff();
    const k = "uid_img";
    const s = (t: number) => t * 1000;
    const steps: [number, "fail" | "sync", number, boolean][] = [
      [0, "fail", 10, false],
      [5, "sync", 10, true],
      [9.999, "sync", 10, true],
      [10, "fail", 20, false],
      [30, "fail", 40, false],
      [70, "fail", 80, false],
      [150, "fail", 160, false],
      [310, "fail", 300, false],
      [610, "fail", 300, false],
      [910, "fail", 300, false],
      [1510, "fail", 300, false],
      [2111, "fail", 10, false],
    ];
    for (const [t, action, window, inBackoff] of steps) {
      if (action === "fail") {
        assert.equal(b.isInBackOffSinceUpdate(k, s(t)), false, `t=${t} may pull`);
        b.next(k, s(t));
      } else {
        assert.equal(b.isInBackOffSinceUpdate(k, s(t)), inBackoff, `t=${t}`);
      }
      assert.equal(b.windowMs(k), s(window), `window after t=${t}`);
    }
  });

  it("keeps the ladder after a success (no reset) and is per key", () => {
    const b = new Backoff();
    b.next("a", 0);
    b.gc(20_000); // success at 20 s: entry kept (not expired)
    b.next("a", 200_000);
    assert.equal(b.windowMs("a"), 20_000);
    assert.equal(b.isInBackOffSinceUpdate("b", 5_000), false);
  });

  it("survives serialization", () => {
    const b = new Backoff();
    b.next("k", 1000);
    b.setLastError("k", "ErrImagePull: boom");
    const copy = new Backoff(undefined, undefined, JSON.parse(JSON.stringify(b)));
    assert.equal(copy.isInBackOffSinceUpdate("k", 5000), true);
    assert.equal(copy.lastError("k"), "ErrImagePull: boom");
  });
});

describe("registry QPS (kubelet.md A.5)", () => {
  it("qps 5 burst 10: ten pass at once, the eleventh fails, one more after 200 ms", () => {
    const l = new PullRateLimiter(5, 10);
    const results = Array.from({ length: 11 }, () => l.tryAccept(1000));
    assert.deepEqual(results, [...Array(10).fill(true), false]);
    assert.equal(l.tryAccept(1200), true);
    assert.equal(l.tryAccept(1200), false);
  });
  it("burst 0 always refuses; negative values are refused with the kubelet's text", () => {
    assert.equal(new PullRateLimiter(2000, 0).tryAccept(0), false);
    assert.throws(
      () => new PullRateLimiter(-1, 1),
      /registryPullQPS \(--registry-qps\) -1 must not be a negative number/,
    );
  });
});

describe("pullers (kubelet.md §2.8)", () => {
  const deferred = () => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    return { promise, resolve };
  };

  it("serial: one at a time, in order", async () => {
    const p = new SerialPuller(null);
    const order: string[] = [];
    const gate = deferred();
    const a = p.pull(async () => {
      order.push("a-start");
      await gate.promise;
      order.push("a-end");
    });
    const b = p.pull(async () => {
      order.push("b-start");
    });
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(order, ["a-start"]);
    gate.resolve();
    await Promise.all([a, b]);
    assert.deepEqual(order, ["a-start", "a-end", "b-start"]);
  });

  it("parallel: at most maxParallelImagePulls in flight", async () => {
    const p = new ParallelPuller(null, 2);
    let inFlight = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        p.pull(async () => {
          inFlight++;
          peak = Math.max(peak, inFlight);
          await new Promise((r) => setTimeout(r, 5));
          inFlight--;
        }),
      ),
    );
    assert.equal(peak, 2);
  });

  it("validates the kubelet's configuration rules", () => {
    assert.throws(
      () => makePuller({ maxParallelImagePulls: 0 }),
      /maxParallelImagePulls 0 must be a positive number/,
    );
    assert.throws(
      () => makePuller({ serializeImagePulls: true, maxParallelImagePulls: 3 }),
      /cannot be larger than 1 unless SerializeImagePulls/,
    );
    assert.ok(makePuller({ maxParallelImagePulls: 3 }) instanceof ParallelPuller);
    assert.ok(makePuller({}) instanceof SerialPuller);
  });
});

/** An in-memory image service that records CRI calls, for the decision matrix. */
class FakeService implements ImageService {
  readonly calls: string[] = [];
  readonly images = new Map<string, Image>();
  failPull: string | null = null;
  failStatus: string | null = null;
  async pullImage(spec: ImageSpec) {
    this.calls.push("PullImage");
    if (this.failPull) throw new Error(this.failPull);
    const image: Image = {
      id: `sha256:${"c".repeat(64)}`,
      repoTags: [spec.image],
      repoDigests: [],
      size: 1234,
      pinned: false,
    };
    this.images.set(spec.image, image);
    return { imageRef: image.id };
  }
  async imageStatus(spec: ImageSpec) {
    this.calls.push("ImageStatus");
    if (this.failStatus) throw new Error(this.failStatus);
    return { image: this.images.get(spec.image) ?? null };
  }
  async listImages() {
    return [...this.images.values()];
  }
  async removeImage(spec: ImageSpec) {
    this.images.delete(spec.image);
  }
  async imageFsInfo() {
    return [];
  }
}

describe("EnsureImageExists decision matrix (kubelet.md A.3, gate off)", () => {
  const pod = { kind: "Pod", namespace: "default", name: "web", uid: "uid-1" };
  function setup(present: boolean, clock = { t: 0 }) {
    const service = new FakeService();
    if (present)
      service.images.set("app:1", {
        id: "sha256:old",
        repoTags: ["app:1"],
        repoDigests: [],
        size: 9,
        pinned: false,
      });
    const events: NodeEvent[] = [];
    const manager = new ImageManager({
      service,
      puller: new SerialPuller(null, () => clock.t),
      backoff: new Backoff(),
      now: () => clock.t,
      onEvent: (e) => events.push(e),
    });
    const ensure = (policy: "Always" | "IfNotPresent" | "Never", image = "app:1") =>
      manager.ensureImageExists({ pod, image, policy, credentials: async () => [] });
    return { service, events, ensure, clock };
  }
  const reasons = (events: NodeEvent[]) => events.map((e) => `${e.type}/${e.reason}`);

  it("M1/M2 Always pulls whether present or not, without checking first", async () => {
    for (const present of [false, true]) {
      const { service, events, ensure } = setup(present);
      const r = await ensure("Always");
      assert.equal(r.ok, true);
      assert.deepEqual(service.calls, ["PullImage", "ImageStatus"]);
      assert.deepEqual(reasons(events), ["Normal/Pulling", "Normal/Pulled"]);
      assert.match(
        events[1]?.message ?? "",
        /^Successfully pulled image "app:1" in \S+ \(\S+ including waiting\)\. Image size: 1234 bytes\.$/,
      );
    }
  });

  it("M4 IfNotPresent absent: status, pull, status", async () => {
    const { service, events, ensure } = setup(false);
    assert.equal((await ensure("IfNotPresent")).ok, true);
    assert.deepEqual(service.calls, ["ImageStatus", "PullImage", "ImageStatus"]);
    assert.deepEqual(reasons(events), ["Normal/Pulling", "Normal/Pulled"]);
  });

  it("M5/M9 present under IfNotPresent or Never: one status call, already present", async () => {
    for (const policy of ["IfNotPresent", "Never"] as const) {
      const { service, events, ensure } = setup(true);
      const r = await ensure(policy);
      assert.deepEqual(r, { ok: true, imageRef: "sha256:old", pulled: false });
      assert.deepEqual(service.calls, ["ImageStatus"]);
      assert.deepEqual(
        events.map((e) => e.message),
        ['Container image "app:1" already present on machine'],
      );
    }
  });

  it("M8 Never absent: ErrImageNeverPull with the kubelet's message", async () => {
    const { service, events, ensure } = setup(false);
    const r = await ensure("Never");
    assert.deepEqual(r, {
      ok: false,
      reason: "ErrImageNeverPull",
      message: 'Container image "app:1" is not present with pull policy of Never',
    });
    assert.deepEqual(service.calls, ["ImageStatus"]);
    assert.deepEqual(reasons(events), ["Warning/ErrImageNeverPull"]);
  });

  it("M11 invalid name: InspectFailed, InvalidImageName, no CRI call", async () => {
    const { service, events, ensure } = setup(false);
    const r = await ensure("IfNotPresent", "FAILED_IMAGE");
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, "InvalidImageName");
    assert.deepEqual(service.calls, []);
    assert.equal(
      events[0]?.message,
      'Failed to apply default image tag "FAILED_IMAGE": couldn\'t parse image name "FAILED_IMAGE": invalid reference format: repository name (library/FAILED_IMAGE) must be lowercase',
    );
  });

  it("M12 status failure: ImageInspectError", async () => {
    const { service, ensure } = setup(false);
    service.failStatus = "rpc error: code = Unavailable";
    const r = await ensure("IfNotPresent");
    assert.deepEqual(r, {
      ok: false,
      reason: "ImageInspectError",
      message: 'Failed to inspect image "": rpc error: code = Unavailable',
    });
  });

  it("M13/M14 failure then back-off with the previous error, then retry after the window", async () => {
    const { service, events, ensure, clock } = setup(false);
    service.failPull = "registry says no";
    const first = await ensure("IfNotPresent");
    assert.deepEqual(first, { ok: false, reason: "ErrImagePull", message: "registry says no" });
    assert.deepEqual(reasons(events), ["Normal/Pulling", "Warning/Failed"]);
    assert.equal(events[1]?.message, 'Failed to pull image "app:1": registry says no');
    clock.t = 5000;
    const second = await ensure("IfNotPresent");
    assert.deepEqual(second, {
      ok: false,
      reason: "ImagePullBackOff",
      message: 'Back-off pulling image "app:1": ErrImagePull: registry says no',
    });
    assert.equal(events.at(-1)?.type, "Normal");
    assert.equal(events.at(-1)?.message, 'Back-off pulling image "app:1"');
    clock.t = 10_000;
    service.failPull = null;
    assert.equal((await ensure("IfNotPresent")).ok, true);
  });

  it("classifies the runtime's typed errors by prefix", async () => {
    const { service, ensure } = setup(false);
    service.failPull = "RegistryUnavailable: dial tcp: connection refused";
    const r = await ensure("IfNotPresent", "typo_image");
    assert.deepEqual(r, {
      ok: false,
      reason: "RegistryUnavailable",
      message:
        "image pull failed for typo_image because the registry is unavailable: dial tcp: connection refused",
    });
  });

  it("M15 QPS exhausted: pull QPS exceeded is ErrImagePull", async () => {
    const service = new FakeService();
    const manager = new ImageManager({
      service,
      puller: new SerialPuller(new PullRateLimiter(2000, 0), () => 0),
      backoff: new Backoff(),
      now: () => 0,
    });
    const r = await manager.ensureImageExists({
      pod,
      image: "app:1",
      policy: "Always",
      credentials: async () => [],
    });
    assert.deepEqual(r, { ok: false, reason: "ErrImagePull", message: "pull QPS exceeded" });
    assert.deepEqual(service.calls, []);
  });
});
