// Acceptance: the same image manager in front of a real containerd (CRI) and on kpull's own store. Every
// scenario runs on both backends against the same real registries, and the outcomes, events, KEP-2535
// records and GC plans are compared; where the runtime forces a difference (its error texts, what it does
// not report) the test says so, and docs/runtime.md lists it. `ctr -n k8s.io images ls` confirms what kpull
// reports about containerd.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../src/cli/index.ts";
import { CriImageService } from "../src/cri/index.ts";
import {
  CredentialVerifier,
  garbageCollectRuntime,
  type ImageService,
  Node,
  type NodeEvent,
  type NodeOptions,
  openRuntimeState,
  type PullOutcome,
  runtimeStateRoot,
  startPod,
  toPullCredentials,
} from "../src/node/index.ts";
import { CredentialStore } from "../src/registry/index.ts";
import { parseDuration, Store } from "../src/store/index.ts";
import {
  runKpull,
  seedImage,
  type TestImage,
  tinyImage,
  useContainerd,
  useRegistry,
} from "./harness/index.ts";

type Backend = "store" | "runtime";

const tmp = (prefix = "kpull-runtime-test-") => mkdtempSync(join(tmpdir(), prefix));
/** An empty hosts dir: the store's client talks plain HTTP to loopback registries, as containerd 1.6 does. */
const hostsDir = tmp("kpull-hosts-");
const dockerConfig = tmp("kpull-docker-");

const sizeOf = (image: TestImage) =>
  image.manifest.bytes.byteLength +
  image.config.bytes.byteLength +
  image.layers.reduce((n, l) => n + l.bytes.byteLength, 0);

/** Event texts with the durations (which differ run to run) blanked. */
function events(list: readonly NodeEvent[]) {
  return list.map(({ type, reason, object, message }) => ({
    type,
    reason,
    object,
    message: message.replace(/ in \S+ \(\S+ including waiting\)/, " in <d> (<d> including waiting)"),
  }));
}

/** An outcome without what only the store measures (registry traffic) and the duration. */
function comparable(o: PullOutcome) {
  const { image, reference, digest, policy, action, code, message } = o;
  return { image, reference, digest, policy, action, code, message };
}

async function cli(args: string[], env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  const code = await run(args, {
    stdout: { write: (c: string | Uint8Array) => (stdout += c.toString()) },
    stderr: { write: (c: string) => (stderr += c) },
    stdin: process.stdin,
    env: { DOCKER_CONFIG: dockerConfig, HOME: dockerConfig, ...env },
  });
  return { code, stdout, stderr };
}

describe("the image manager in front of containerd, compared with kpull's store", () => {
  const open = useRegistry();
  const basic = useRegistry({ auth: "basic", users: { puller: "Zr8-only-in-this-test" } });
  const containerd = useContainerd(() => ({ registries: [open(), basic()] }));
  let cri: CriImageService;

  before(async () => {
    cri = await CriImageService.connect(containerd().endpoint);
  });
  after(() => cri?.close());

  /** kpull's root for one backend: the store itself, or the runtime's state directory under it. */
  const stateRoot = (backend: Backend, root: string) =>
    backend === "store" ? root : runtimeStateRoot(root, cri.url);

  async function nodeOn(
    backend: Backend,
    root: string,
    options: Omit<NodeOptions, "store" | "service"> & { service?: ImageService } = {},
  ): Promise<Node> {
    if (backend === "store")
      return Node.open({ store: await Store.open(root), registry: { hostsDir }, ...options });
    const state = await openRuntimeState(root, cri.url);
    assert.ok(state);
    return Node.open({ service: cri, ...options, store: state });
  }

  /** ctr's names (ref column) in namespace k8s.io under a registry path. */
  async function ctrRefs(prefix: string): Promise<string[]> {
    return (await containerd().ctrImages())
      .map((i) => i.ref)
      .filter((ref) => ref.startsWith(prefix))
      .sort();
  }

  it("walks the decision table (A.3) with the same outcomes and events on both backends", async () => {
    const r = open();
    const v1 = tinyImage({ layers: [{ "table.txt": "one\n" }] });
    const v2 = tinyImage({ layers: [{ "table.txt": "two\n" }] });
    const other = tinyImage({ layers: [{ "other.txt": "other\n" }] });
    await seedImage(r, "table/other", "v1", other);
    const image = `${r.host}/table/app:v1`;
    const missing = `${r.host}/table/app:missing`;

    const walk = async (backend: Backend) => {
      await seedImage(r, "table/app", "v1", v1);
      const root = tmp();
      const steps: { step: string; outcome: PullOutcome; events: NodeEvent[] }[] = [];
      const step = async (name: string, img: string, policy: "Always" | "IfNotPresent" | "Never") => {
        // A fresh Node per step: back-off and records are read back from disk, as across invocations.
        const seen: NodeEvent[] = [];
        const node = await nodeOn(backend, root, { onEvent: (e) => seen.push(e) });
        const outcome = await node.pull(img, policy);
        await node.save();
        steps.push({ step: name, outcome, events: seen });
      };
      await step("M8 Never, absent", image, "Never");
      await step("M4 IfNotPresent, absent", image, "IfNotPresent");
      await step("M5 IfNotPresent, present", image, "IfNotPresent");
      await step("M9 Never, present", image, "Never");
      await step("M2 Always, present", image, "Always");
      await step("M3 Always, by digest", `${r.host}/table/app@${v1.manifest.digest}`, "Always");
      await seedImage(r, "table/app", "v1", v2); // the tag moves
      await step("IfNotPresent keeps the cached image", image, "IfNotPresent");
      await step("Always follows the tag", image, "Always");
      await step("M1 Always, absent", `${r.host}/table/other:v1`, "Always");
      await step("M11 invalid name", "NOT-valid:", "IfNotPresent");
      await step("M14 pull fails", missing, "IfNotPresent");
      await step("M13 in back-off", missing, "IfNotPresent");
      return { root, steps };
    };

    const store = await walk("store");
    const runtime = await walk("runtime");

    // Where the runtime's own error text appears, compare with it blanked.
    const rawError = (steps: typeof store.steps) =>
      steps.find((s) => s.step === "M14 pull fails")?.outcome.message ?? "";
    const blank = (steps: typeof store.steps) => {
      const raw = rawError(steps);
      const b = (s: string | null) => (s === null ? s : s.replaceAll(raw, "<pull error>"));
      return steps.map((s) => ({
        step: s.step,
        outcome: { ...comparable(s.outcome), message: b(s.outcome.message) },
        events: events(s.events).map((e) => ({ ...e, message: b(e.message) })),
      }));
    };
    assert.deepEqual(blank(runtime.steps), blank(store.steps));

    // The table itself (same on both, so checked once).
    const byStep = Object.fromEntries(store.steps.map((s) => [s.step, s]));
    const actions = store.steps.map(
      (s) => `${s.step}: ${s.outcome.action}${s.outcome.code ? ` ${s.outcome.code}` : ""}`,
    );
    assert.deepEqual(actions, [
      "M8 Never, absent: failed ErrImageNeverPull",
      "M4 IfNotPresent, absent: pulled",
      "M5 IfNotPresent, present: present",
      "M9 Never, present: present",
      "M2 Always, present: verified",
      "M3 Always, by digest: verified",
      "IfNotPresent keeps the cached image: present",
      "Always follows the tag: updated",
      "M1 Always, absent: pulled",
      "M11 invalid name: failed InvalidImageName",
      "M14 pull fails: failed ErrImagePull",
      "M13 in back-off: failed ImagePullBackOff",
    ]);
    assert.equal(byStep["IfNotPresent keeps the cached image"]?.outcome.digest, v1.manifest.digest);
    assert.equal(byStep["Always follows the tag"]?.outcome.digest, v2.manifest.digest);
    assert.deepEqual(
      events(byStep["M4 IfNotPresent, absent"]?.events ?? []).map((e) => [e.type, e.reason, e.message]),
      [
        ["Normal", "Pulling", `Pulling image "${image}"`],
        [
          "Normal",
          "Pulled",
          `Successfully pulled image "${image}" in <d> (<d> including waiting). Image size: ${sizeOf(v1)} bytes.`,
        ],
      ],
      "Image size is the same figure on both: compressed manifest + config + layers",
    );
    assert.deepEqual(
      events(byStep["M13 in back-off"]?.events ?? []).map((e) => `${e.type} ${e.reason} ${e.message}`),
      [`Normal BackOff Back-off pulling image "${missing}"`, "Warning Failed Error: ImagePullBackOff"],
    );

    // What differs: the pull error is the runtime's text, and only the store counts registry requests.
    assert.equal(
      rawError(runtime.steps),
      `rpc error: code = NotFound desc = failed to pull and unpack image "${missing}": failed to resolve reference "${missing}": ${missing}: not found`,
    );
    assert.notEqual(rawError(store.steps), rawError(runtime.steps));
    for (const s of runtime.steps) {
      const pulled =
        ["pulled", "verified", "updated"].includes(s.outcome.action) || s.step === "M14 pull fails";
      assert.equal(s.outcome.measured, !pulled, s.step);
      if (pulled) assert.deepEqual(s.outcome.requests, {}, s.step);
    }
    for (const s of store.steps) assert.equal(s.outcome.measured, true, s.step);
    assert.deepEqual(byStep["M2 Always, present"]?.outcome.requests, { HEAD: 1, GET: 0 });

    // containerd holds what kpull reported: v2 under the tag, v1 under its digest, other under both.
    const p = `${r.host}/table/`;
    const outcome = (name: string) => runtime.steps.find((s) => s.step === name)?.outcome;
    assert.deepEqual(
      await ctrRefs(p),
      [
        `${p}app:v1`,
        `${p}app@${v1.manifest.digest}`,
        `${p}app@${v2.manifest.digest}`,
        `${p}other:v1`,
        `${p}other@${other.manifest.digest}`,
      ].sort(),
    );
    const ctr = await containerd().ctrImages();
    assert.equal(ctr.find((i) => i.ref === image)?.digest, outcome("Always follows the tag")?.digest);

    // kpull images reads the same on both (fields CRI does not carry are null on the runtime).
    const list = async (backend: Backend, root: string) => {
      const res = await cli(
        ["images", "-o", "json", "--root", root],
        backend === "runtime" ? { KPULL_RUNTIME_ENDPOINT: cri.url } : {},
      );
      assert.equal(res.code, 0, res.stderr);
      return (JSON.parse(res.stdout).images as Record<string, unknown>[]).filter((e) =>
        String(e.name).startsWith(p),
      );
    };
    const storeList = await list("store", store.root);
    const runtimeList = await list("runtime", runtime.root);
    const shared = (e: Record<string, unknown>) => {
      const { mediaType: _m, manifestDigest: _d, pulledAt: _p, lastUsed: _l, ...rest } = e;
      return rest;
    };
    assert.deepEqual(runtimeList.map(shared), storeList.map(shared));
    assert.deepEqual(
      runtimeList.map((e) => e.name),
      [`${p}app:v1`, `${p}app@${v1.manifest.digest}`, `${p}other:v1`],
    );
    for (const e of runtimeList) {
      assert.equal(e.mediaType, null);
      assert.equal(e.manifestDigest, null);
      assert.equal(e.platform, "linux/amd64");
      assert.ok(typeof e.pulledAt === "string");
    }
  });

  it("sends containerd the kubelet's CRI calls, in the kubelet's order (cri.md §3)", async () => {
    const r = open();
    await seedImage(r, "calls/app", "v1", tinyImage({ layers: [{ "calls.txt": "calls\n" }] }));
    const calls: string[] = [];
    const recorded: ImageService = {
      pullImage: (spec, auth, options) => {
        calls.push(`PullImage ${spec.image}${auth ? " (auth)" : ""}`);
        return cri.pullImage(spec, auth, options);
      },
      imageStatus: (spec) => {
        calls.push(`ImageStatus ${spec.image}`);
        return cri.imageStatus(spec);
      },
      listImages: () => cri.listImages(),
      removeImage: (spec) => cri.removeImage(spec),
      imageFsInfo: () => cri.imageFsInfo(),
    };
    const node = await nodeOn("runtime", tmp(), { service: recorded });
    const ensure = async (image: string, policy: "Always" | "IfNotPresent" | "Never") => {
      calls.length = 0;
      const res = await node.manager.ensureImageExists({
        pod: { kind: "Pod", namespace: "default", name: "calls", uid: "calls-uid" },
        image,
        policy,
        credentials: async () => [],
      });
      return `${res.ok ? "ok" : res.reason}: ${calls.join(", ")}`;
    };
    const app = `${r.host}/calls/app:v1`;
    const gone = `${r.host}/calls/app:gone`;
    assert.deepEqual(
      [
        await ensure(app, "Never"),
        await ensure(app, "IfNotPresent"),
        await ensure(app, "IfNotPresent"),
        await ensure(app, "Always"),
        await ensure(gone, "Always"),
        await ensure(gone, "IfNotPresent"),
        await ensure("NOT-valid:", "IfNotPresent"),
      ],
      [
        `ErrImageNeverPull: ImageStatus ${app}`,
        `ok: ImageStatus ${app}, PullImage ${app}, ImageStatus ${app}`,
        `ok: ImageStatus ${app}`,
        `ok: PullImage ${app}, ImageStatus ${app}`, // Always: no pre-check (v1.33+)
        `ErrImagePull: PullImage ${gone}`,
        `ImagePullBackOff: ImageStatus ${gone}`, // in back-off: the pre-check and nothing else
        "InvalidImageName: ",
      ],
    );
  });

  it("backs off across separate kpull processes on the runtime (state under --root)", async () => {
    const r = open();
    const root = tmp();
    const image = `${r.host}/processes/missing:v1`;
    const kpull = (args: string[]) =>
      runKpull(args, { env: { DOCKER_CONFIG: dockerConfig, KPULL_RUNTIME_ENDPOINT: cri.url } });
    const first = await kpull(["pull", "-o", "json", "--root", root, image]);
    assert.equal(first.code, 1, first.stderr);
    assert.equal(JSON.parse(first.stdout).code, "ErrImagePull");
    const before = (await r.accessLog()).length;
    const second = await kpull(["pull", "--root", root, image]);
    assert.equal(second.code, 1);
    assert.match(
      second.stderr,
      /^error: ImagePullBackOff: Back-off pulling image ".*": ErrImagePull: rpc error: code = NotFound/,
    );
    assert.equal((await r.accessLog()).length, before, "the second process did not ask the registry");
    assert.ok(readdirSync(join(runtimeStateRoot(root, cri.url), "kpull")).includes("backoff.json"));
  });

  it("M12: an ImageStatus that fails is ImageInspectError (a runtime that is not there)", async () => {
    const gone = new CriImageService(`unix://${join(tmp(), "no.sock")}`, { timeoutMs: 2000 });
    try {
      const seen: NodeEvent[] = [];
      const node = await nodeOn("runtime", tmp(), { service: gone, onEvent: (e) => seen.push(e) });
      const out = await node.pull(`${open().host}/table/app:v1`, "IfNotPresent");
      assert.equal(out.code, "ImageInspectError");
      assert.match(
        out.message ?? "",
        /^Failed to inspect image "": rpc error: code = Unavailable desc = .*no such file or directory/,
      );
      assert.deepEqual(
        seen.map((e) => `${e.type} ${e.reason}`),
        ["Warning InspectFailed", "Warning Failed"],
      );
    } finally {
      gone.close();
    }
  });

  it("backs off with the kubelet's timeline (A.4, injected clock), asking the registry only when it may", async () => {
    const r = open();
    const image = `${r.host}/backoff/missing:v1`;
    const timeline = async (backend: Backend) => {
      const root = tmp();
      let t = 1_000_000;
      const out: string[] = [];
      for (const at of [0, 5, 9.999, 10, 29.999, 30, 69.999, 70]) {
        t = 1_000_000 + at * 1000;
        const before = (await r.accessLog()).filter((e) => e.path.includes("/backoff/missing/")).length;
        const node = await nodeOn(backend, root, { now: () => t });
        const o = await node.pull(image, "IfNotPresent");
        await node.save();
        const after = (await r.accessLog()).filter((e) => e.path.includes("/backoff/missing/")).length;
        out.push(`${at}: ${o.code}${after > before ? " (registry asked)" : ""}`);
      }
      return out;
    };
    const expected = [
      "0: ErrImagePull (registry asked)",
      "5: ImagePullBackOff",
      "9.999: ImagePullBackOff",
      "10: ErrImagePull (registry asked)",
      "29.999: ImagePullBackOff",
      "30: ErrImagePull (registry asked)",
      "69.999: ImagePullBackOff",
      "70: ErrImagePull (registry asked)",
    ];
    assert.deepEqual(await timeline("store"), expected);
    assert.deepEqual(await timeline("runtime"), expected);
  });

  it("registryPullQPS: a pull without a token fails before reaching the runtime (A.5)", async () => {
    const r = open();
    await seedImage(r, "qps/a", "v1", tinyImage({ layers: [{ a: "qps a" }] }));
    await seedImage(r, "qps/b", "v1", tinyImage({ layers: [{ b: "qps b" }] }));
    const images = [`${r.host}/qps/a:v1`, `${r.host}/qps/b:v1`];
    const race = async (backend: Backend) => {
      const node = await nodeOn(backend, tmp(), {
        kubelet: { serializeImagePulls: false, registryPullQPS: 1, registryBurst: 1 },
      });
      const outs = await Promise.all(images.map((i) => node.pull(i, "IfNotPresent")));
      return outs.map((o) => `${o.action} ${o.code ?? ""} ${o.message ?? ""}`.trim()).sort();
    };
    const expected = ["failed ErrImagePull pull QPS exceeded", "pulled"];
    assert.deepEqual(await race("store"), expected);
    assert.deepEqual(await race("runtime"), expected);
    // The refused pull never reached containerd: exactly one of the two images is there.
    assert.equal((await ctrRefs(`${r.host}/qps/`)).filter((ref) => ref.includes(":v1")).length, 1);
  });

  it("pulls serially by default and in parallel with maxParallelImagePulls, on containerd", async () => {
    const r = open();
    for (const repo of ["serial/a", "serial/b", "serial/c", "parallel/a", "parallel/b", "parallel/c"])
      await seedImage(r, repo, "v1", tinyImage({ layers: [{ f: repo }] }));
    /** The CRI service with each PullImage held 250 ms, counting how many are in flight at once. */
    const watched = () => {
      let inFlight = 0;
      let max = 0;
      let calls = 0;
      const service: ImageService = {
        pullImage: async (spec, auth, options) => {
          inFlight++;
          calls++;
          max = Math.max(max, inFlight);
          try {
            await sleep(250);
            return await cri.pullImage(spec, auth, options);
          } finally {
            inFlight--;
          }
        },
        imageStatus: (spec) => cri.imageStatus(spec),
        listImages: () => cri.listImages(),
        removeImage: (spec) => cri.removeImage(spec),
        imageFsInfo: () => cri.imageFsInfo(),
      };
      return { service, stats: () => ({ max, calls }) };
    };
    const startThree = async (prefix: string, kubelet: NodeOptions["kubelet"]) => {
      const w = watched();
      const seen: NodeEvent[] = [];
      const node = await nodeOn("runtime", tmp(), {
        service: w.service,
        kubelet,
        onEvent: (e) => seen.push(e),
      });
      const statuses = await Promise.all(
        ["a", "b", "c"].map((n) =>
          startPod(node, {
            namespace: "default",
            name: `${prefix}-${n}`,
            uid: `${prefix}-${n}`,
            containers: [
              { name: "c", type: "container", image: `${r.host}/${prefix}/${n}:v1`, pullPolicy: null },
            ],
          }),
        ),
      );
      assert.deepEqual(
        statuses.flat().map((s) => s.state),
        ["ready", "ready", "ready"],
      );
      // Pulled: "in <pull> (<total> including waiting)": the wait is total − pull.
      const waits = seen
        .filter((e) => e.reason === "Pulled")
        .map((e) => {
          const m = / in (\S+) \((\S+) including waiting\)/.exec(e.message);
          assert.ok(m, e.message);
          return parseDuration(m[2] as string) - parseDuration(m[1] as string);
        })
        .sort((a, b) => a - b);
      return { ...w.stats(), waits };
    };
    const serial = await startThree("serial", {});
    assert.equal(serial.max, 1, "serializeImagePulls (default): one PullImage at a time");
    assert.equal(serial.calls, 3);
    assert.ok((serial.waits[2] ?? 0) >= 400, `the third pod waited for two pulls: ${serial.waits}`);
    const parallel = await startThree("parallel", { serializeImagePulls: false, maxParallelImagePulls: 2 });
    assert.equal(parallel.max, 2, "maxParallelImagePulls 2: two at once, never three");
    assert.equal(parallel.calls, 3);
    assert.ok(
      (parallel.waits[2] ?? 0) >= 200 && (parallel.waits[1] ?? 0) < (parallel.waits[2] ?? 0),
      `only the third waited for a slot: ${parallel.waits}`,
    );
    for (const prefix of ["serial", "parallel"])
      assert.equal((await ctrRefs(`${r.host}/${prefix}/`)).filter((ref) => ref.endsWith(":v1")).length, 3);
  });

  it("KEP-2535 with the basic-auth registry: the same decisions and the same records on both", async () => {
    const r = basic();
    const [user, password] = Object.entries(r.users)[0] ?? ["", ""];
    const secretImage = tinyImage({ layers: [{ "secret.txt": "behind basic auth\n" }] });
    await seedImage(r, "kep/app", "v1", secretImage);
    const image = `${r.host}/kep/app:v1`;
    const repository = `${r.host}/kep/app`;
    const secret = (meta: { uid: string; namespace: string; name: string }, pw: string) => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: meta,
      type: "kubernetes.io/dockerconfigjson",
      data: {
        ".dockerconfigjson": Buffer.from(
          JSON.stringify({ auths: { [r.host]: { auth: Buffer.from(`${user}:${pw}`).toString("base64") } } }),
        ).toString("base64"),
      },
    });
    const credentials = (secrets: unknown[]) => async () =>
      toPullCredentials(
        await new CredentialStore({ pullSecrets: secrets, dockerConfigDir: null, env: {} }).lookup(
          repository,
        ),
      );
    const pods = [
      {
        pod: "a",
        policy: "IfNotPresent",
        secrets: [secret({ uid: "s-a", namespace: "team-a", name: "regcred" }, password)],
      },
      { pod: "b", policy: "IfNotPresent", secrets: [] },
      { pod: "b-never", policy: "Never", secrets: [] },
      {
        pod: "c",
        policy: "IfNotPresent",
        secrets: [secret({ uid: "s-c", namespace: "team-c", name: "copied" }, password)],
      },
      {
        pod: "d",
        policy: "IfNotPresent",
        secrets: [secret({ uid: "s-d", namespace: "team-d", name: "wrong" }, "nope")],
      },
    ] as const;
    const scenario = async (backend: Backend) => {
      const root = tmp();
      const verifier = await CredentialVerifier.open({ root: stateRoot(backend, root) });
      const seen: NodeEvent[] = [];
      const node = await nodeOn(backend, root, { verifier, onEvent: (e) => seen.push(e) });
      const results: string[] = [];
      for (const p of pods) {
        seen.length = 0;
        const res = await node.manager.ensureImageExists({
          pod: { kind: "Pod", namespace: `ns-${p.pod}`, name: p.pod, uid: `uid-${p.pod}` },
          image,
          policy: p.policy,
          credentials: credentials([...p.secrets]),
        });
        const what = res.ok ? `ok pulled=${res.pulled}` : `${res.reason}`;
        results.push(
          `${p.pod}: ${what}; ${events(seen)
            .map((e) => e.reason)
            .join(",")}`,
        );
        if (!res.ok && res.reason === "ErrImagePull") assert.match(res.message, /401 Unauthorized/i, p.pod);
        if (res.ok && !res.pulled)
          assert.equal(
            seen[0]?.message,
            `Container image "${image}" already present on machine and can be accessed by the pod`,
          );
      }
      const dir = join(stateRoot(backend, root), "image_manager", "pulled");
      const records = readdirSync(dir).map((f) => {
        const { lastUpdatedTime: _t, ...rest } = JSON.parse(readFileSync(join(dir, f), "utf8"));
        return rest;
      });
      return { results, records };
    };
    const store = await scenario("store");
    const runtime = await scenario("runtime");
    assert.deepEqual(store.results, [
      "a: ok pulled=true; Pulling,Pulled",
      "b: ErrImagePull; Pulling,Failed",
      "b-never: ErrImageNeverPull; ErrImageNeverPull",
      "c: ok pulled=false; Pulled",
      "d: ErrImagePull; Pulling,Failed",
    ]);
    assert.deepEqual(runtime.results, store.results);
    assert.deepEqual(
      runtime.records,
      store.records,
      "records keyed by the same image ref (the config digest)",
    );
    assert.equal(runtime.records.length, 1);
    assert.equal(runtime.records[0]?.imageRef, secretImage.config.digest);
    assert.deepEqual(
      runtime.records[0]?.credentialMapping[repository].kubernetesSecrets.map(
        (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`,
      ),
      ["team-a/regcred", "team-c/copied"],
    );
  });

  it("image GC: the kubelet's thresholds and order on both, RemoveImage on containerd (A.6)", async () => {
    const r = open();
    const images = Object.fromEntries(
      ["a", "b", "c", "d", "e"].map((n) => [n, tinyImage({ layers: [{ [`gc-${n}.txt`]: `gc ${n}\n` }] })]),
    );
    for (const [n, img] of Object.entries(images)) await seedImage(r, `gc/${n}`, "v1", img);
    const ref = (n: string) => `${r.host}/gc/${n}:v1`;
    const amount = sizeOf(images.a as TestImage) + 1; // more than a alone, less than a + e
    const run = async (backend: Backend) => {
      const root = tmp();
      const node = await nodeOn(backend, root);
      for (const n of ["a", "b", "c", "d", "e"]) {
        assert.equal((await node.pull(ref(n), "IfNotPresent")).action, "pulled");
        await sleep(5);
      }
      await node.pin(ref("c")); // what kpull prepull does
      await node.holdImages("pod default/e", [ref("e")], false); // used, then gone
      await sleep(5);
      await node.holdImages("pod default/b", [ref("b")], false); // used more recently
      await node.holdImages("pod default/d", [ref("d")], true); // still running: in use
      const now = Date.now() + 10 * 60_000; // all older than imageMinimumGCAge
      const gc = (disk: { capacity: number; available: number }) =>
        backend === "store"
          ? node.store.garbageCollect({ now, disk })
          : garbageCollectRuntime(cri, node.store, { now, disk });
      const ours = (x: { names: readonly string[] }) => x.names.some((n) => n.includes("/gc/"));
      const summary = (g: Awaited<ReturnType<typeof gc>>) => ({
        spacePass: g.spacePass,
        amountToFree: g.amountToFree,
        removed: g.removed.map((x) => `${x.names.join(",")} ${x.reason} ${x.size}`),
        // containerd also holds the other tests' images: first seen by this GC, they are too young
        // (imageMinimumGCAge counts from firstDetected, as in the kubelet after a restart).
        skipped: g.skipped
          .filter(ours)
          .map((x) => `${x.names.join(",")} ${x.reason}`)
          .sort(),
        others: [...new Set(g.skipped.filter((x) => !ours(x)).map((x) => x.reason))],
        freedBySpacePass: g.freedBySpacePass,
        ok: g.ok,
        events: g.events.map((e) => e.reason),
      });
      // usage 90 % ≥ 85: free `amount`: a (never used) then e (least recently used) suffice.
      const first = summary(await gc({ capacity: 10 * amount, available: amount }));
      // A target nothing can meet: b goes, then FreeDiskSpaceFailed; again: ImageGCFailed as well.
      const second = summary(await gc({ capacity: 1_000_000_000, available: 0 }));
      const third = summary(await gc({ capacity: 1_000_000_000, available: 0 }));
      return { first, second, third };
    };
    const store = await run("store");
    const runtime = await run("runtime");
    for (const pass of [runtime.first, runtime.second, runtime.third]) {
      assert.ok(
        pass.others.every((reason) => reason === "min-age"),
        String(pass.others),
      );
      pass.others = [];
    }
    assert.deepEqual(runtime, store);
    const size = (n: string) => sizeOf(images[n] as TestImage);
    assert.deepEqual(store.first, {
      spacePass: true,
      amountToFree: amount,
      removed: [`${ref("a")} space ${size("a")}`, `${ref("e")} space ${size("e")}`],
      skipped: [`${ref("c")} pinned`, `${ref("d")} in-use`],
      freedBySpacePass: size("a") + size("e"),
      ok: true,
      events: [],
      others: [],
    });
    assert.deepEqual(store.second.removed, [`${ref("b")} space ${size("b")}`]);
    assert.deepEqual(store.second.events, ["FreeDiskSpaceFailed"]);
    assert.deepEqual(store.third.events, ["FreeDiskSpaceFailed", "ImageGCFailed"]);
    // containerd lost exactly what the plan removed (every name of each image, as RemoveImage by ID does).
    const left = await ctrRefs(`${r.host}/gc/`);
    assert.deepEqual(
      left.filter((x) => x.endsWith(":v1")),
      [ref("c"), ref("d")],
    );
    assert.equal(left.length, 4, "c and d by tag and by digest");
  });

  it("the CLI with --runtime-endpoint / KPULL_RUNTIME_ENDPOINT: pull, start, prepull, images, rmi, gc, runtime info", async () => {
    const r = open();
    const locked = basic();
    const appImage = tinyImage({ layers: [{ "cli.txt": "cli\n" }] });
    await seedImage(r, "cli/app", "v1", appImage);
    await seedImage(r, "cli/tool", "v1", tinyImage({ layers: [{ "tool.txt": "tool\n" }] }));
    await seedImage(locked, "cli/private", "v1", tinyImage({ layers: [{ "p.txt": "private\n" }] }));
    const endpoint = containerd().endpoint;
    const storeRoot = tmp();
    const runtimeRoot = tmp();
    const on = (backend: Backend, args: string[]) =>
      backend === "store"
        ? cli([
            ...args,
            "--root",
            storeRoot,
            ...(["pull", "start", "prepull"].includes(args[0] ?? "") ? ["--hosts-dir", hostsDir] : []),
          ])
        : cli([...args, "--root", runtimeRoot, "--runtime-endpoint", endpoint]);
    const json = (res: { code: number; stdout: string; stderr: string }) => {
      assert.ok(res.stdout.startsWith("{"), res.stderr);
      return JSON.parse(res.stdout);
    };

    // runtime info
    const info = await cli(["runtime", "info", "-o", "json"], { KPULL_RUNTIME_ENDPOINT: endpoint });
    assert.equal(info.code, 0, info.stderr);
    const parsed = JSON.parse(info.stdout);
    assert.equal(parsed.runtimeName, "containerd");
    assert.equal(parsed.runtimeApiVersion, "v1");
    assert.match(parsed.imageFilesystems[0].mountpoint, /io\.containerd\.snapshotter\.v1\.native$/);
    assert.ok(parsed.imageFilesystems[0].capacityBytes > 0);
    const text = await cli(["runtime", "info", "--runtime-endpoint", endpoint]);
    assert.match(text.stdout, /^Endpoint: {2}unix:\/\/.*\nRuntime: {3}containerd 1\.6\./);
    const nowhere = await cli(["runtime", "info", "--runtime-endpoint", `unix://${join(tmp(), "x.sock")}`]);
    assert.equal(nowhere.code, 1);
    assert.match(
      nowhere.stderr,
      /^error: validate service connection: validate CRI v1 image API for endpoint ".*": rpc error: code = Unavailable/,
    );

    // pull: the same JSON on both backends, across invocations (back-off kept under --root)
    const app = `${r.host}/cli/app:v1`;
    const missing = `${r.host}/cli/app:gone`;
    for (const [args, action] of [
      [["pull", app], "pulled"],
      [["pull", "--policy", "Always", app], "verified"],
      [["pull", "--policy", "Never", app], "present"],
      [["pull", missing], "failed"],
      [["pull", missing], "failed"],
    ] as const) {
      const s = await on("store", [...args, "-o", "json"]);
      const c = await on("runtime", [...args, "-o", "json"]);
      assert.equal(c.code, s.code, c.stderr);
      const [so, co] = [json(s), json(c)];
      assert.equal(co.action, action);
      const keys = ["image", "reference", "digest", "policy", "action", "code"] as const;
      assert.deepEqual(
        Object.fromEntries(keys.map((k) => [k, co[k]])),
        Object.fromEntries(keys.map((k) => [k, so[k]])),
      );
      assert.deepEqual(Object.keys(co), Object.keys(so), "the same fields");
    }
    const backedOff = json(await on("runtime", ["pull", missing, "-o", "json"]));
    assert.equal(backedOff.code, "ImagePullBackOff");
    assert.match(backedOff.message, /^Back-off pulling image ".*": ErrImagePull: rpc error: code = NotFound/);
    const warned = await on("runtime", ["pull", app, "--hosts-dir", hostsDir]);
    assert.equal(warned.code, 0);
    assert.match(warned.stderr, /warning: --hosts-dir is ignored with --runtime-endpoint/);
    assert.match(warned.stdout, /present \(policy IfNotPresent\)/);

    // start: a pull secret reaches containerd as AuthConfig; events as on the store
    const dir = tmp();
    const [user, password] = Object.entries(locked.users)[0] ?? ["", ""];
    const dockerconfig = Buffer.from(
      JSON.stringify({
        auths: { [locked.host]: { auth: Buffer.from(`${user}:${password}`).toString("base64") } },
      }),
    ).toString("base64");
    const podFile = join(dir, "pod.yaml");
    writeFileSync(
      podFile,
      `apiVersion: v1
kind: Secret
metadata: {name: regcred, namespace: default}
type: kubernetes.io/dockerconfigjson
data: {.dockerconfigjson: ${dockerconfig}}
---
kind: Pod
metadata: {name: web, namespace: default, uid: web-uid}
spec:
  imagePullSecrets: [{name: regcred}]
  initContainers: [{name: init, image: "${r.host}/cli/tool:v1"}]
  containers: [{name: app, image: "${locked.host}/cli/private:v1"}]
`,
    );
    const startS = json(await on("store", ["start", "-f", podFile, "-o", "json"]));
    const startC = json(await on("runtime", ["start", "-f", podFile, "-o", "json"]));
    assert.deepEqual(
      startC.containers.map((c: { name: string; state: string }) => `${c.name}:${c.state}`),
      ["init:ready", "app:ready"],
    );
    assert.deepEqual(startC.containers, startS.containers);
    assert.deepEqual(events(startC.events), events(startS.events));

    // prepull pins into kpull's runtime state; images shows it; gc keeps it
    const list = join(dir, "images.txt");
    writeFileSync(list, `${r.host}/cli/tool:v1\n`);
    const pre = json(await on("runtime", ["prepull", "-f", list, "-o", "json"]));
    assert.deepEqual(pre.readyForNever, [`${r.host}/cli/tool:v1`]);
    const imgs = json(await on("runtime", ["images", "-o", "json"])).images.filter((e: { name: string }) =>
      e.name.includes("/cli/"),
    );
    assert.deepEqual(
      imgs.map((e: { name: string; pinned: boolean; lastUsed: string | null }) => [
        e.name,
        e.pinned,
        e.lastUsed !== null,
      ]),
      [
        [`${r.host}/cli/app:v1`, false, false],
        [`${r.host}/cli/tool:v1`, true, true],
        [`${locked.host}/cli/private:v1`, false, true],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );
    const one = json(await on("runtime", ["images", app, "-o", "json"]));
    assert.deepEqual(
      one.images.map((e: { name: string }) => e.name),
      [app],
    );

    // gc --dry-run: everything unpinned would go (thresholds forced), the pinned image is kept
    const dry = json(
      await on("runtime", ["gc", "--dry-run", "--high", "0", "--low", "0", "--min-age", "0s", "-o", "json"]),
    );
    const storeDry = json(
      await on("store", ["gc", "--dry-run", "--high", "0", "--low", "0", "--min-age", "0s", "-o", "json"]),
    );
    assert.deepEqual(Object.keys(dry), Object.keys(storeDry), "the same report fields");
    assert.equal(dry.content, null);
    assert.equal(dry.bytesFreed, null);
    assert.ok(dry.removed.some((x: { names: string[] }) => x.names.includes(app)));
    assert.ok(
      dry.skipped.some(
        (x: { names: string[]; reason: string }) =>
          x.names.includes(`${r.host}/cli/tool:v1`) && x.reason === "pinned",
      ),
    );
    assert.ok((await ctrRefs(`${r.host}/cli/`)).includes(app), "a dry run removes nothing");

    // rmi: RemoveImage by ID; every name goes; ctr agrees; again: not found
    const rmi = await on("runtime", ["rmi", app, "-o", "json"]);
    assert.equal(rmi.code, 0, rmi.stderr);
    assert.deepEqual(JSON.parse(rmi.stdout), {
      removed: [{ name: app, id: appImage.config.digest }],
      notFound: [],
      inUse: [],
      blobsRemoved: null,
      bytesFreed: null,
    });
    assert.ok(!(await ctrRefs(`${r.host}/cli/app`)).length, "no name of the image is left in containerd");
    const again = await on("runtime", ["rmi", app]);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, `error: image "${app}" not found\n`);
  });
});
