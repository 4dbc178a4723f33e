// The image manager on kpull's own store against the real registry: every policy, counted at the registry.

import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Node, type NodeEvent, startPod } from "../src/node/index.ts";
import { RegistryClient } from "../src/registry/index.ts";
import { Store } from "../src/store/index.ts";
import { buildImage, pushFixture, type RunningRegistry, startProxy, useRegistry } from "./harness/index.ts";

const base = { "etc/os-release": "ID=kpull\n" };

async function push(r: RegistryClientHost, repo: string, tag: string, layers: Record<string, string>[]) {
  const image = buildImage({ layers });
  const client = new RegistryClient({ hostsDir: mkdtempSync(join(tmpdir(), "kpull-hosts-")) });
  try {
    await pushFixture(r, repo, tag, image, client);
  } finally {
    await client.close();
  }
  return image;
}
type RegistryClientHost = RunningRegistry;

async function node(root: string, events: NodeEvent[] = []) {
  const store = await Store.open(root);
  return Node.open({
    store,
    registry: { hostsDir: mkdtempSync(join(tmpdir(), "kpull-hosts-")) },
    onEvent: (e) => events.push(e),
  });
}

describe("pull policies on kpull's store (real registry)", () => {
  const registry = useRegistry();

  it("walks the decision table with requests counted at the registry", async () => {
    const r = registry();
    const v1 = await push(r, "demo/app", "v1", [base, { "app.txt": "one\n" }]);
    const root = mkdtempSync(join(tmpdir(), "kpull-node-"));
    const image = `${r.host}/demo/app:v1`;
    const mine = async () => (await r.accessLog()).filter((e) => e.path.includes("/demo/app/"));

    // First start: absent, pulled.
    const events: NodeEvent[] = [];
    let n = await node(root, events);
    const first = await n.pull(image, "IfNotPresent");
    assert.equal(first.action, "pulled");
    assert.equal(first.digest, v1.manifest.digest);
    assert.deepEqual(first.layers, { total: 2, fetched: 2, reused: 0 });
    assert.deepEqual(
      events.map((e) => e.reason),
      ["Pulling", "Pulled"],
    );
    assert.match(
      events[1]?.message ?? "",
      /^Successfully pulled image ".*" in .+ \(.+ including waiting\)\. Image size: \d+ bytes\.$/,
    );

    // Always on the cached image: exactly one HEAD at the registry, nothing fetched.
    let before = (await mine()).length;
    n = await node(root);
    const always = await n.pull(image, "Always");
    assert.equal(always.action, "verified");
    assert.equal(always.bytesFetched, 0);
    assert.deepEqual(always.requests, { HEAD: 1, GET: 0 });
    assert.deepEqual(
      (await mine()).slice(before).map((e) => e.method),
      ["HEAD"],
    );

    // IfNotPresent and Never on the cached image: no registry contact at all.
    before = (await mine()).length;
    for (const policy of ["IfNotPresent", "Never"] as const) {
      const out = await (await node(root)).pull(image, policy);
      assert.equal(out.action, "present");
      assert.deepEqual(out.requests, { HEAD: 0, GET: 0 });
    }
    assert.equal((await mine()).length, before);

    // Never on an absent image.
    const never = await (await node(root)).pull(`${r.host}/demo/app:v9`, "Never");
    assert.equal(never.action, "failed");
    assert.equal(never.code, "ErrImageNeverPull");
    assert.equal(
      never.message,
      `Container image "${r.host}/demo/app:v9" is not present with pull policy of Never`,
    );

    // The tag moves: Always updates and fetches only the new layer; IfNotPresent keeps the stale image.
    const v2 = await push(r, "demo/app", "v1", [base, { "app.txt": "two\n" }]);
    const stale = await (await node(root)).pull(image, "IfNotPresent");
    assert.equal(stale.action, "present");
    assert.equal(stale.digest, v1.manifest.digest);
    const updated = await (await node(root)).pull(image, "Always");
    assert.equal(updated.action, "updated");
    assert.equal(updated.digest, v2.manifest.digest);
    assert.deepEqual(updated.layers, { total: 2, fetched: 1, reused: 1 });
  });

  it("a failed pull backs off across invocations, with the previous error", async () => {
    const r = registry();
    const root = mkdtempSync(join(tmpdir(), "kpull-node-"));
    let t = 1_000_000;
    const open = async () =>
      Node.open({
        store: await Store.open(root),
        registry: { hostsDir: mkdtempSync(join(tmpdir(), "kpull-hosts-")) },
        now: () => t,
      });
    let n = await open();
    const missing = `${r.host}/demo/none:v1`;
    const first = await n.pull(missing, "IfNotPresent");
    assert.equal(first.code, "ErrImagePull");
    await n.save();
    t += 5_000;
    n = await open();
    const second = await n.pull(missing, "IfNotPresent");
    assert.equal(second.code, "ImagePullBackOff");
    assert.match(second.message ?? "", new RegExp(`^Back-off pulling image "${missing}": ErrImagePull: `));
    t += 6_000;
    n = await open();
    assert.equal((await n.pull(missing, "IfNotPresent")).code, "ErrImagePull");
  });

  it("a pull deadline aborts a stalled pull with ErrImagePull", async () => {
    const r = registry();
    await push(r, "demo/slow", "v1", [base, { "slow.txt": "slow\n" }]);
    const proxy = await startProxy(r, [
      { method: "GET", path: /\/blobs\//, action: { kind: "stall", afterBytes: 0 } },
    ]);
    try {
      const n = await Node.open({
        store: await Store.open(mkdtempSync(join(tmpdir(), "kpull-node-"))),
        registry: { hostsDir: mkdtempSync(join(tmpdir(), "kpull-hosts-")), insecureRegistries: [proxy.host] },
        pullDeadlineMs: 400,
      });
      const started = Date.now();
      const out = await n.pull(`${proxy.host}/demo/slow:v1`, "IfNotPresent");
      assert.equal(out.code, "ErrImagePull");
      assert.equal(out.message, "pull deadline of 400 ms exceeded");
      assert.ok(Date.now() - started < 10_000, "bounded by the deadline, not the 30 s stall timeout");
    } finally {
      await proxy.stop();
    }
  });

  it("start says when IfNotPresent used a cached image whose tag may have moved", async () => {
    const r = registry();
    await push(r, "demo/note", "v1", [base]);
    const n = await Node.open({
      store: await Store.open(mkdtempSync(join(tmpdir(), "kpull-node-"))),
      registry: { hostsDir: mkdtempSync(join(tmpdir(), "kpull-hosts-")) },
    });
    const pod = {
      namespace: "default",
      name: "p",
      uid: "u",
      containers: [
        { name: "c", type: "container" as const, image: `${r.host}/demo/note:v1`, pullPolicy: null },
      ],
    };
    const first = await startPod(n, pod);
    assert.equal(first[0]?.message, null, "a fresh pull needs no note");
    const second = await startPod(n, pod);
    assert.match(second[0]?.message ?? "", /tag "v1" is not checked against the registry/);
  });
});
