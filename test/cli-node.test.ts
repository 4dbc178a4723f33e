// Acceptance: `kpull pull` and `kpull start` run as a user would, against real registries.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runKpull, seedImage, tinyImage, useRegistry } from "./harness/index.ts";

const kpull = (args: string[], stdin?: string) => runKpull(args, stdin === undefined ? {} : { stdin });

const hostsDir = mkdtempSync(join(tmpdir(), "kpull-hosts-"));
const tmp = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

describe("kpull pull (acceptance)", () => {
  const registry = useRegistry();

  it("reports each policy's action and exits non-zero with the kubelet's code", async () => {
    const r = registry();
    await seedImage(r, "team/app", "v1", tinyImage());
    const root = tmp("kpull-root-");
    const image = `${r.host}/team/app:v1`;
    const run = (policy: string) =>
      kpull(["pull", "-o", "json", "--root", root, "--hosts-dir", hostsDir, "--policy", policy, image]);
    const never = await run("Never");
    assert.equal(never.code, 1);
    assert.equal(JSON.parse(never.stdout).code, "ErrImageNeverPull");
    const first = JSON.parse((await run("IfNotPresent")).stdout);
    assert.equal(first.action, "pulled");
    const always = JSON.parse((await run("Always")).stdout);
    assert.deepEqual(
      { action: always.action, requests: always.requests, bytesFetched: always.bytesFetched },
      { action: "verified", requests: { HEAD: 1, GET: 0 }, bytesFetched: 0 },
    );
    for (const key of [
      "image",
      "reference",
      "digest",
      "policy",
      "action",
      "code",
      "message",
      "requests",
      "bytesFetched",
      "layers",
      "durationMs",
    ]) {
      assert.ok(key in always, key);
    }
    const bad = await kpull(["pull", "--root", root, "NOT-valid:"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: InvalidImageName: Failed to apply default image tag "NOT-valid:"/);
    const usage = await kpull(["pull", "--policy", "Sometimes", image]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown policy "Sometimes"/);
  });
});

describe("kpull pull --unpack (acceptance)", () => {
  const registry = useRegistry();

  it("unpacks into ChainID snapshots shared between images", async () => {
    const r = registry();
    const base = { "etc/os-release": "ID=shared\n" };
    await seedImage(r, "team/one", "v1", tinyImage({ layers: [base, { "one.txt": "one\n" }] }));
    await seedImage(r, "team/two", "v1", tinyImage({ layers: [base, { "two.txt": "two\n" }] }));
    const root = tmp("kpull-root-");
    const pull = async (name: string) => {
      const res = await kpull([
        "pull",
        "-o",
        "json",
        "--unpack",
        "--root",
        root,
        "--hosts-dir",
        hostsDir,
        `${r.host}/team/${name}:v1`,
      ]);
      assert.equal(res.code, 0, res.stderr);
      return JSON.parse(res.stdout).unpacked as {
        rootfs: string;
        layers: { total: number; created: number };
      };
    };
    const one = await pull("one");
    assert.deepEqual(one.layers, { total: 2, created: 2 });
    assert.equal(readFileSync(join(one.rootfs, "one.txt"), "utf8"), "one\n");
    const two = await pull("two");
    assert.deepEqual(two.layers, { total: 2, created: 1 }, "the base layer's snapshot is shared");
    assert.equal(readFileSync(join(two.rootfs, "etc/os-release"), "utf8"), "ID=shared\n");
    assert.equal(existsSync(join(two.rootfs, "one.txt")), false);
    // present already: nothing is fetched, so the unpack runs from the record, and finds every snapshot
    const again = await pull("one");
    assert.deepEqual(again, { ...one, layers: { total: 2, created: 0 } });
  });
});

describe("kpull start (acceptance)", () => {
  const open = useRegistry();
  const locked = useRegistry({ auth: "basic" });

  it("starts every container type in the kubelet's order with its events", async () => {
    const r = open();
    await seedImage(r, "team/init", "v1", tinyImage({ layers: [{ i: "init" }] }));
    await seedImage(r, "team/app", "v1", tinyImage({ layers: [{ a: "app" }] }));
    await seedImage(r, "team/data", "v1", tinyImage({ layers: [{ d: "data" }] }));
    const dir = tmp("kpull-pod-");
    const pod = join(dir, "pod.yaml");
    writeFileSync(
      pod,
      `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, uid: 11111111-2222-3333-4444-555555555555}
spec:
  containers:
    - name: app
      image: ${r.host}/team/app:v1
  initContainers:
    - name: init
      image: ${r.host}/team/init:v1
      imagePullPolicy: Always
  volumes:
    - name: data
      image: {reference: "${r.host}/team/data:v1"}
`,
    );
    const res = await kpull([
      "start",
      "-o",
      "json",
      "-f",
      pod,
      "--root",
      tmp("kpull-root-"),
      "--hosts-dir",
      hostsDir,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout);
    assert.deepEqual(
      out.containers.map((c: { name: string; state: string }) => `${c.name}:${c.state}`),
      ["data:ready", "init:ready", "app:ready"],
    );
    assert.deepEqual(
      out.events.map((e: { reason: string; object: string }) => `${e.reason} ${e.object}`),
      [
        "Pulling pod/shop/web{spec.volumes{data}}",
        "Pulled pod/shop/web{spec.volumes{data}}",
        "Pulling pod/shop/web{spec.initContainers{init}}",
        "Pulled pod/shop/web{spec.initContainers{init}}",
        "Pulling pod/shop/web{spec.containers{app}}",
        "Pulled pod/shop/web{spec.containers{app}}",
      ],
    );
    assert.equal(out.events[0].message, `Pulling image "${r.host}/team/data:v1"`);
  });

  it("a failing init container leaves the others waiting for it", async () => {
    const r = open();
    await seedImage(r, "team/app", "v1", tinyImage());
    const dir = tmp("kpull-pod-");
    const pod = join(dir, "pod.yaml");
    writeFileSync(
      pod,
      `kind: Pod
metadata: {name: broken}
spec:
  initContainers: [{name: init, image: "${r.host}/team/missing:v1"}]
  containers: [{name: app, image: "${r.host}/team/app:v1"}]
`,
    );
    const res = await kpull([
      "start",
      "-o",
      "json",
      "-f",
      pod,
      "--root",
      tmp("kpull-root-"),
      "--hosts-dir",
      hostsDir,
    ]);
    assert.equal(res.code, 1);
    const out = JSON.parse(res.stdout);
    assert.deepEqual(
      out.containers.map((c: { name: string; state: string; reason: string }) => [c.name, c.state, c.reason]),
      [
        ["init", "waiting", "ErrImagePull"],
        ["app", "waiting", "PodInitializing"],
      ],
    );
    assert.deepEqual(
      out.events.map((e: { type: string; reason: string }) => `${e.type}/${e.reason}`),
      ["Normal/Pulling", "Warning/Failed", "Warning/Failed"],
    );
    assert.equal(out.events[2].message, "Error: ErrImagePull");
  });

  it("resolves imagePullSecrets against Secret manifests, and warns about missing ones", async () => {
    const r = locked();
    await seedImage(r, "team/private", "v1", tinyImage());
    const [user, password] = Object.entries(r.users)[0] ?? ["", ""];
    const dockerconfig = Buffer.from(
      JSON.stringify({
        auths: { [r.host]: { auth: Buffer.from(`${user}:${password}`).toString("base64") } },
      }),
    ).toString("base64");
    const dir = tmp("kpull-pod-");
    writeFileSync(
      join(dir, "secret.yaml"),
      `apiVersion: v1
kind: Secret
metadata: {name: regcred, namespace: default}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: ${dockerconfig}}
`,
    );
    writeFileSync(
      join(dir, "deploy.yaml"),
      `apiVersion: apps/v1
kind: Deployment
metadata: {name: private}
spec:
  template:
    spec:
      imagePullSecrets: [{name: regcred}, {name: gone}]
      containers: [{name: app, image: "${r.host}/team/private:v1"}]
`,
    );
    const res = await kpull([
      "start",
      "-o",
      "json",
      "-f",
      dir,
      "--root",
      tmp("kpull-root-"),
      "--hosts-dir",
      hostsDir,
    ]);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    const out = JSON.parse(res.stdout);
    assert.equal(out.containers[0].state, "ready");
    assert.deepEqual(out.events[0], {
      type: "Warning",
      reason: "FailedToRetrieveImagePullSecret",
      message:
        "Unable to retrieve some image pull secrets (gone); attempting to pull the image may not succeed.",
      object: "pod/default/private",
    });
    // The harness password is a common word; its encoded forms are what a leak would show.
    assert.ok(!(res.stdout + res.stderr).includes(Buffer.from(`${user}:${password}`).toString("base64")));
    assert.ok(!(res.stdout + res.stderr).includes(dockerconfig));

    // Without the secret the registry refuses: ErrImagePull, then back-off on the next start.
    const bare = join(tmp("kpull-pod-"), "pod.yaml");
    writeFileSync(
      bare,
      `kind: Pod\nmetadata: {name: nosecret}\nspec: {containers: [{name: app, image: "${r.host}/team/private:v1"}]}\n`,
    );
    const root = tmp("kpull-root-");
    const refused = JSON.parse(
      (await kpull(["start", "-o", "json", "-f", bare, "--root", root, "--hosts-dir", hostsDir])).stdout,
    );
    assert.equal(refused.containers[0].reason, "ErrImagePull");
    const again = JSON.parse(
      (await kpull(["start", "-o", "json", "-f", bare, "--root", root, "--hosts-dir", hostsDir])).stdout,
    );
    assert.equal(again.containers[0].reason, "ImagePullBackOff");
    assert.equal(again.events.at(-2).reason, "BackOff");
    assert.equal(again.events.at(-2).type, "Normal");
  });

  it("honours registryPullQPS from the kubelet config", async () => {
    const r = open();
    await seedImage(r, "team/a", "v1", tinyImage({ layers: [{ a: "1" }] }));
    await seedImage(r, "team/b", "v1", tinyImage({ layers: [{ b: "2" }] }));
    const dir = tmp("kpull-pod-");
    writeFileSync(
      join(dir, "pods.yaml"),
      `kind: Pod
metadata: {name: a}
spec: {containers: [{name: a, image: "${r.host}/team/a:v1"}]}
---
kind: Pod
metadata: {name: b}
spec: {containers: [{name: b, image: "${r.host}/team/b:v1"}]}
`,
    );
    const config = join(dir, "kubelet.yaml");
    writeFileSync(
      config,
      "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nregistryPullQPS: 1\nregistryBurst: 1\n",
    );
    const res = await kpull([
      "start",
      "-o",
      "json",
      "-f",
      join(dir, "pods.yaml"),
      "--kubelet-config",
      config,
      "--root",
      tmp("kpull-root-"),
      "--hosts-dir",
      hostsDir,
    ]);
    assert.equal(res.code, 1);
    const out = JSON.parse(res.stdout);
    const reasons = out.containers.map((c: { reason: string | null }) => c.reason).sort();
    assert.deepEqual(reasons, ["ErrImagePull", null].sort());
    assert.ok(out.events.some((e: { message: string }) => e.message.endsWith(": pull QPS exceeded")));
  });
});
