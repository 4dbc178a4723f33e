// The handler without HTTP: every kind, subresources, update semantics, the AlwaysPullImages behaviour,
// patches applied and the result judged clean, exemptions, warnings, audit mode, pinning with a fake
// registry, malformed reviews, and the uid echoed in every answer. Patches are applied with the strict
// RFC 6902 applier of test/admission-helpers.ts.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyPatch, type PatchOp } from "../../test/admission-helpers.ts";
import { checkImageUses, defaultConfig, parseConfig } from "../check/index.ts";
import { imageUsesFromText } from "../manifests/index.ts";
import type { Reference } from "../reference/index.ts";
import {
  AdmissionHandler,
  AdmissionMetrics,
  type AdmissionPolicy,
  type AdmissionResponse,
  defaultPolicy,
  type Endpoint,
  type HandlerResult,
  PinCache,
} from "./index.ts";

const D = `sha256:${"a".repeat(64)}`;
const E = `sha256:${"e".repeat(64)}`;
const CLOCK = () => new Date("2025-06-15T12:00:00Z");

type Json = Record<string, unknown>;

function decodePatch(response: AdmissionResponse): PatchOp[] {
  if (response.patch === undefined) return [];
  assert.equal(response.patchType, "JSONPatch");
  return JSON.parse(Buffer.from(response.patch, "base64").toString("utf8")) as PatchOp[];
}

// --- objects ---

interface C {
  name: string;
  image: string;
  imagePullPolicy?: string;
}

function podSpec(containers: C[], extra: Json = {}): Json {
  return { containers, ...extra };
}

function pod(containers: C[], extra: Json = {}, metadata: Json = {}): Json {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: "shop", ...metadata },
    spec: podSpec(containers, extra),
  };
}

const WORKLOADS: Record<
  string,
  { apiVersion: string; resource: [string, string]; wrap: (spec: Json) => Json }
> = {
  Pod: { apiVersion: "v1", resource: ["", "pods"], wrap: (spec) => ({ spec }) },
  PodTemplate: { apiVersion: "v1", resource: ["", "podtemplates"], wrap: (spec) => ({ template: { spec } }) },
  ReplicationController: {
    apiVersion: "v1",
    resource: ["", "replicationcontrollers"],
    wrap: (spec) => ({ spec: { template: { spec } } }),
  },
  ReplicaSet: {
    apiVersion: "apps/v1",
    resource: ["apps", "replicasets"],
    wrap: (spec) => ({ spec: { template: { spec } } }),
  },
  Deployment: {
    apiVersion: "apps/v1",
    resource: ["apps", "deployments"],
    wrap: (spec) => ({ spec: { template: { spec } } }),
  },
  StatefulSet: {
    apiVersion: "apps/v1",
    resource: ["apps", "statefulsets"],
    wrap: (spec) => ({ spec: { template: { spec } } }),
  },
  DaemonSet: {
    apiVersion: "apps/v1",
    resource: ["apps", "daemonsets"],
    wrap: (spec) => ({ spec: { template: { spec } } }),
  },
  Job: {
    apiVersion: "batch/v1",
    resource: ["batch", "jobs"],
    wrap: (spec) => ({ spec: { template: { spec } } }),
  },
  CronJob: {
    apiVersion: "batch/v1",
    resource: ["batch", "cronjobs"],
    wrap: (spec) => ({ spec: { jobTemplate: { spec: { template: { spec } } } } }),
  },
};

function workload(kind: string, spec: Json, metadata: Json = {}): Json {
  const w = WORKLOADS[kind];
  assert.ok(w !== undefined, kind);
  return {
    apiVersion: w.apiVersion,
    kind,
    metadata: { name: "web", namespace: "shop", ...metadata },
    ...w.wrap(spec),
  };
}

let uids = 0;

interface ReviewInput {
  operation?: string;
  object?: unknown;
  oldObject?: unknown;
  subResource?: string;
  namespace?: string;
  dryRun?: boolean;
  uid?: string;
}

function reviewText(input: ReviewInput): string {
  const object = (input.object ?? null) as Json | null;
  const kind = typeof object?.kind === "string" ? object.kind : "Pod";
  const [group, resource] = WORKLOADS[kind]?.resource ?? ["", "pods"];
  return JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: input.uid ?? `uid-${++uids}`,
      kind: { group, version: "v1", kind },
      resource: { group, version: "v1", resource },
      ...(input.subResource ? { subResource: input.subResource } : {}),
      name: "web",
      namespace: input.namespace ?? "shop",
      operation: input.operation ?? "CREATE",
      userInfo: { username: "alice" },
      object: input.object,
      ...(input.oldObject !== undefined ? { oldObject: input.oldObject } : {}),
      dryRun: input.dryRun ?? false,
    },
  });
}

function handler(policy: Partial<AdmissionPolicy> = {}, pinCache: PinCache | null = null): AdmissionHandler {
  return new AdmissionHandler({
    policy: defaultPolicy({ exemptNamespaces: ["kpull-system", "kube-system"], ...policy }),
    pinCache,
    now: CLOCK,
  });
}

async function call(
  h: AdmissionHandler,
  endpoint: Endpoint,
  input: ReviewInput,
): Promise<AdmissionResponse & { verdict: string }> {
  const text = reviewText(input);
  const uid = (JSON.parse(text) as { request: { uid: string } }).request.uid;
  const result: HandlerResult = await h.review(endpoint, text);
  assert.equal(result.status, 200, result.status === 400 ? result.message : "");
  if (result.status !== 200) throw new Error("unreachable");
  assert.equal(result.review.apiVersion, "admission.k8s.io/v1");
  assert.equal(result.review.kind, "AdmissionReview");
  assert.equal(result.review.response.uid, uid, "the uid is echoed");
  return { ...result.review.response, verdict: result.verdict };
}

/** The findings kpull check gives for the same object written as YAML-compatible JSON. */
function checkFindings(object: unknown, config = defaultConfig()) {
  return checkImageUses(imageUsesFromText(JSON.stringify(object), "x.json"), { config, now: CLOCK }).findings;
}

describe("validate", () => {
  it("denies every kind with a floating image, listing the findings as kpull check words them", async () => {
    const h = handler();
    for (const kind of Object.keys(WORKLOADS)) {
      const object = workload(
        kind,
        podSpec([
          { name: "app", image: "nginx" },
          { name: "ok", image: `nginx:1.27@${D}`, imagePullPolicy: "IfNotPresent" },
        ]),
      );
      const res = await call(h, "validate", { object });
      assert.equal(res.allowed, false, kind);
      assert.equal(res.status?.code, 403);
      assert.equal(res.status?.reason, "Forbidden");
      const expected = checkFindings(object);
      assert.deepEqual(
        expected.map((f) => f.rule),
        ["floating-tag"],
        kind,
      );
      const message = res.status?.message ?? "";
      assert.match(
        message,
        new RegExp(`^kpull: ${kind} shop/web: 1 finding \\(mode always-unless-pinned\\):`),
        message,
      );
      for (const f of expected)
        assert.ok(message.includes(`  floating-tag  ${f.message}`), `${kind}: ${message}`);
      const path =
        { Pod: "spec", PodTemplate: "template.spec", CronJob: "spec.jobTemplate.spec.template.spec" }[kind] ??
        "spec.template.spec";
      assert.ok(
        message.includes(`  ${path}.containers[0]  floating-tag  container "app": image "nginx" has no tag`),
        message,
      );
      assert.deepEqual(res.auditAnnotations, { findings: "floating-tag" });
    }
  });

  it("admits clean objects of every kind without warnings", async () => {
    const h = handler();
    for (const kind of Object.keys(WORKLOADS)) {
      const res = await call(h, "validate", {
        object: workload(kind, podSpec([{ name: "app", image: "nginx:1.27", imagePullPolicy: "Always" }])),
      });
      assert.equal(res.allowed, true, kind);
      assert.equal(res.warnings, undefined);
      assert.equal(res.verdict, "allowed");
    }
  });

  it("judges the defaulted object the API server sends: an explicit IfNotPresent on a tag is a finding", async () => {
    const h = handler();
    const res = await call(h, "validate", {
      object: pod([{ name: "app", image: "nginx:1.27", imagePullPolicy: "IfNotPresent" }]),
    });
    assert.equal(res.allowed, false);
    assert.match(
      res.status?.message ?? "",
      /pull-policy {2}container "app": imagePullPolicy is IfNotPresent \(written\)/,
    );
  });

  it("checks init containers, ephemeral containers and image volumes", async () => {
    const h = handler();
    const object = pod([{ name: "app", image: "nginx:1.27", imagePullPolicy: "Always" }], {
      initContainers: [{ name: "init", image: "busybox:latest", imagePullPolicy: "Always" }],
      ephemeralContainers: [{ name: "debug", image: "NGINX:1", imagePullPolicy: "IfNotPresent" }],
      volumes: [{ name: "models", image: { reference: "models:v1", pullPolicy: "IfNotPresent" } }],
    });
    const res = await call(h, "validate", { object });
    const message = res.status?.message ?? "";
    assert.deepEqual(
      message
        .split("\n")
        .slice(1)
        .map((l) => l.trim().split("  ").slice(0, 2).join(" ")),
      [
        "spec.volumes[0] pull-policy",
        "spec.initContainers[0] floating-tag",
        "spec.ephemeralContainers[0] invalid-image",
      ],
    );
    assert.deepEqual(
      checkFindings(object).map((f) => f.rule),
      ["pull-policy", "floating-tag", "invalid-image"],
    );
  });

  it("pods/ephemeralcontainers: only the container the update adds is judged", async () => {
    const h = handler();
    const old = pod([{ name: "app", image: "legacy", imagePullPolicy: "IfNotPresent" }]);
    const bad = structuredClone(old);
    (bad.spec as Json).ephemeralContainers = [
      { name: "debug", image: "busybox", imagePullPolicy: "IfNotPresent" },
    ];
    const res = await call(h, "validate", {
      operation: "UPDATE",
      subResource: "ephemeralcontainers",
      object: bad,
      oldObject: old,
    });
    assert.equal(res.allowed, false);
    const lines = (res.status?.message ?? "").split("\n");
    assert.ok(
      lines.every((l) => !l.includes("spec.containers[0]")),
      "the existing container is not judged",
    );
    assert.ok(lines.some((l) => l.startsWith("  spec.ephemeralContainers[0]  floating-tag")));
    assert.ok(
      res.warnings?.some((w) =>
        /2 findings \(floating-tag, pull-policy\) already present before this update/.test(w),
      ),
    );

    const good = structuredClone(old);
    (good.spec as Json).ephemeralContainers = [
      { name: "debug", image: "busybox:1.36", imagePullPolicy: "Always" },
    ];
    const ok = await call(h, "validate", {
      operation: "UPDATE",
      subResource: "ephemeralcontainers",
      object: good,
      oldObject: old,
    });
    assert.equal(ok.allowed, true);
  });

  it("other subresources, DELETE and CONNECT are not judged", async () => {
    const h = handler();
    const bad = pod([{ name: "app", image: "nginx" }]);
    for (const input of [
      { operation: "UPDATE", subResource: "status", object: bad, oldObject: bad },
      { operation: "DELETE", oldObject: bad },
      { operation: "CONNECT", object: { kind: "PodExecOptions" } },
    ]) {
      const res = await call(h, "validate", input);
      assert.equal(res.allowed, true);
      assert.equal(res.verdict, "skipped");
    }
    const svc = await call(h, "validate", { object: { kind: "Service", metadata: { name: "s" } } });
    assert.equal(svc.allowed, true);
  });

  it("UPDATE: findings the old object had do not deny; new ones do", async () => {
    const h = handler();
    const old = workload(
      "Deployment",
      podSpec([{ name: "app", image: "legacy:latest", imagePullPolicy: "Always" }]),
      { labels: { a: "1" } },
    );
    const relabelled = structuredClone(old);
    (relabelled.metadata as Json).labels = { a: "2" };
    const same = await call(h, "validate", { operation: "UPDATE", object: relabelled, oldObject: old });
    assert.equal(same.allowed, true);
    assert.equal(same.verdict, "warned");
    assert.deepEqual(same.warnings, [
      "kpull: 1 finding (floating-tag) already present before this update; not judged on update",
    ]);
    const changed = workload(
      "Deployment",
      podSpec([{ name: "app", image: "other", imagePullPolicy: "Always" }]),
    );
    const res = await call(h, "validate", { operation: "UPDATE", object: changed, oldObject: old });
    assert.equal(res.allowed, false);
    assert.match(res.status?.message ?? "", /image "other" has no tag/);
    // Without an old object an UPDATE is judged whole.
    const whole = await call(h, "validate", { operation: "UPDATE", object: relabelled });
    assert.equal(whole.allowed, false);
  });

  it("a Pod update that needs a different policy explains that the policy cannot change", async () => {
    const h = handler();
    const old = pod([{ name: "app", image: `app:1@${D}`, imagePullPolicy: "IfNotPresent" }]);
    const next = pod([{ name: "app", image: "app:2", imagePullPolicy: "IfNotPresent" }]);
    const res = await call(h, "validate", { operation: "UPDATE", object: next, oldObject: old });
    assert.equal(res.allowed, false);
    assert.match(res.status?.message ?? "", /imagePullPolicy cannot change on an existing Pod/);
  });

  it("warning- and note-severity findings go to warnings, in check's words", async () => {
    const config = parseConfig("rules:\n  floating-tag: warning\n  pull-policy: note\n", ".kpull.yaml", "/");
    const h = handler({ config });
    const object = pod([
      { name: "app", image: "nginx" },
      { name: "side", image: "side:1", imagePullPolicy: "IfNotPresent" },
    ]);
    const res = await call(h, "validate", { object });
    assert.equal(res.allowed, true);
    assert.equal(res.verdict, "warned");
    const expected = checkFindings(object, config);
    assert.equal(res.warnings?.length, 2);
    assert.ok(
      res.warnings?.[0]?.startsWith(
        'kpull floating-tag (warning): container "app": image "nginx" has no tag',
      ),
    );
    assert.ok(
      res.warnings?.[1]?.startsWith(
        'kpull pull-policy (note): container "side": imagePullPolicy is IfNotPresent',
      ),
    );
    for (const [i, w] of (res.warnings ?? []).entries()) {
      assert.ok(w.length <= 256, w);
      const body = w.replace(/^kpull [a-z-]+ \((warning|note)\): /, "").replace(/…$/, "");
      assert.ok(expected[i]?.message.startsWith(body), `${w}\n${expected[i]?.message}`);
    }
  });

  it("audit mode: nothing is denied; errors are warnings that say they would deny", async () => {
    const metrics = new AdmissionMetrics();
    const h = new AdmissionHandler({ policy: defaultPolicy({ action: "warn" }), metrics, now: CLOCK });
    const res = await call(h, "validate", { object: pod([{ name: "app", image: "nginx" }]) });
    assert.equal(res.allowed, true);
    assert.equal(res.verdict, "audited");
    assert.match(res.warnings?.[0] ?? "", /^kpull floating-tag \(audit: would deny\): container "app"/);
    assert.deepEqual(res.auditAnnotations, { findings: "floating-tag" });
    assert.equal(
      metrics.findings.get({
        endpoint: "validate",
        rule: "floating-tag",
        severity: "error",
        action: "warned",
      }),
      1,
    );
  });

  it("honours kpull/ignore (object or template), kpull/mode, and --no-annotations", async () => {
    const h = handler();
    const ignored = workload("Deployment", podSpec([{ name: "app", image: "nginx" }]), {
      annotations: { "kpull/ignore": "floating-tag", "kpull/ignore-reason": "vendor" },
    });
    assert.equal((await call(h, "validate", { object: ignored })).allowed, true);
    const inTemplate = workload("Deployment", podSpec([{ name: "app", image: "nginx" }]));
    ((inTemplate.spec as Json).template as Json).metadata = {
      annotations: { "kpull/ignore": "floating-tag" },
    };
    assert.equal((await call(h, "validate", { object: inTemplate })).allowed, true);
    const expired = pod(
      [{ name: "app", image: "nginx" }],
      {},
      { annotations: { "kpull/ignore": "floating-tag", "kpull/ignore-until": "2025-01-01" } },
    );
    const res = await call(h, "validate", { object: expired });
    assert.equal(res.allowed, false);
    assert.match(res.status?.message ?? "", /the exemption by kpull\/ignore expired after 2025-01-01/);
    const pinnedMode = pod(
      [{ name: "app", image: "nginx:1.27", imagePullPolicy: "Always" }],
      {},
      { annotations: { "kpull/mode": "pinned" } },
    );
    const pm = await call(h, "validate", { object: pinnedMode });
    assert.match(pm.status?.message ?? "", /\(mode pinned\):\n {2}spec\.containers\[0\] {2}unpinned-image/);
    const typo = pod(
      [{ name: "app", image: "nginx:1", imagePullPolicy: "Always" }],
      {},
      { annotations: { "kpull/ignore": "floating" } },
    );
    const t = await call(h, "validate", { object: typo });
    assert.equal(t.allowed, true);
    assert.match(
      t.warnings?.[0] ?? "",
      /^kpull: AdmissionReview: Pod shop\/web: kpull\/ignore names unknown rule "floating"/,
    );
    const strict = handler({ annotations: false });
    assert.equal((await call(strict, "validate", { object: ignored })).allowed, false);
  });

  it("exempt namespaces are admitted untouched, by /validate and /mutate", async () => {
    const h = handler({ mutation: "always-pull-images" });
    for (const namespace of ["kube-system", "kpull-system"]) {
      const object = pod(
        [{ name: "app", image: "nginx", imagePullPolicy: "IfNotPresent" }],
        {},
        { namespace },
      );
      for (const endpoint of ["validate", "mutate"] as const) {
        const res = await call(h, endpoint, { object, namespace });
        assert.equal(res.allowed, true);
        assert.equal(res.patch, undefined);
        assert.equal(res.warnings, undefined);
        assert.equal(res.verdict, "exempt");
      }
    }
  });

  it("dry-run requests get the same verdict", async () => {
    const h = handler();
    const object = pod([{ name: "app", image: "nginx" }]);
    const wet = await call(h, "validate", { object });
    const dry = await call(h, "validate", { object, dryRun: true });
    assert.equal(dry.allowed, wet.allowed);
    assert.equal(dry.status?.message, wet.status?.message);
  });
});

describe("mutate: pull-policy", () => {
  it("patches only the policies the mode needs; the patched object passes validation", async () => {
    const h = handler();
    for (const kind of Object.keys(WORKLOADS)) {
      const object = workload(
        kind,
        podSpec(
          [
            { name: "tag", image: "app:1.2", imagePullPolicy: "IfNotPresent" },
            { name: "pinned", image: `app@${D}`, imagePullPolicy: "IfNotPresent" },
            { name: "always", image: "app:1.2", imagePullPolicy: "Always" },
            { name: "unset", image: "app:1.3" },
          ],
          {
            initContainers: [{ name: "never", image: "app:1.2", imagePullPolicy: "Never" }],
            volumes: [
              { name: "v", image: { reference: "models:2" } },
              { name: "e", emptyDir: {} },
            ],
          },
        ),
      );
      const res = await call(h, "mutate", { object });
      assert.equal(res.allowed, true);
      assert.equal(res.verdict, "patched");
      const ops = decodePatch(res);
      const base =
        { Pod: "/spec", PodTemplate: "/template/spec", CronJob: "/spec/jobTemplate/spec/template/spec" }[
          kind
        ] ?? "/spec/template/spec";
      assert.deepEqual(
        ops,
        [
          { op: "add", path: `${base}/volumes/0/image/pullPolicy`, value: "Always" },
          { op: "replace", path: `${base}/initContainers/0/imagePullPolicy`, value: "Always" },
          { op: "replace", path: `${base}/containers/0/imagePullPolicy`, value: "Always" },
          { op: "add", path: `${base}/containers/3/imagePullPolicy`, value: "Always" },
        ],
        kind,
      );
      const patched = applyPatch(object, ops);
      assert.deepEqual(checkFindings(patched), [], `${kind}: the patched object is clean`);
      const again = await call(h, "mutate", { object: patched });
      assert.equal(again.patch, undefined, "idempotent: nothing left to patch (reinvocation)");
      assert.equal((await call(h, "validate", { object: patched })).allowed, true);
      assert.match(res.auditAnnotations?.patched ?? "", /containers\[0\]\.imagePullPolicy=Always/);
    }
  });

  it("writes the policy of the mode: Never in mode never, IfNotPresent for pinned images", async () => {
    const never = handler({ mode: "never" });
    const res = await call(never, "mutate", {
      object: pod([{ name: "a", image: "app:1", imagePullPolicy: "IfNotPresent" }]),
    });
    assert.deepEqual(decodePatch(res), [
      { op: "replace", path: "/spec/containers/0/imagePullPolicy", value: "Never" },
    ]);
    const pinned = handler({ mode: "pinned" });
    const p = await call(pinned, "mutate", {
      object: pod([{ name: "a", image: `app:1@${D}`, imagePullPolicy: "Never" }]),
    });
    assert.deepEqual(decodePatch(p), [
      { op: "replace", path: "/spec/containers/0/imagePullPolicy", value: "IfNotPresent" },
    ]);
    const bogus = await call(handler(), "mutate", {
      object: pod([{ name: "a", image: "app:1", imagePullPolicy: "always" }]),
    });
    assert.deepEqual(decodePatch(bogus), [
      { op: "replace", path: "/spec/containers/0/imagePullPolicy", value: "Always" },
    ]);
  });

  it("leaves exempted containers alone and never patches a Pod update (the policy is immutable there)", async () => {
    const h = handler();
    const exempt = pod(
      [{ name: "a", image: "app:1", imagePullPolicy: "IfNotPresent" }],
      {},
      { annotations: { "kpull/ignore": "pull-policy" } },
    );
    assert.equal((await call(h, "mutate", { object: exempt })).patch, undefined);
    const old = pod([{ name: "a", image: `app:1@${D}`, imagePullPolicy: "IfNotPresent" }]);
    const next = pod([{ name: "a", image: "app:2", imagePullPolicy: "IfNotPresent" }]);
    assert.equal(
      (await call(h, "mutate", { operation: "UPDATE", object: next, oldObject: old })).patch,
      undefined,
    );
  });

  it("workload UPDATE: only containers whose finding is new are patched (no rollout for an unrelated change)", async () => {
    const h = handler();
    const old = workload(
      "Deployment",
      podSpec([
        { name: "old", image: "app:1", imagePullPolicy: "IfNotPresent" },
        { name: "b", image: `b@${D}`, imagePullPolicy: "IfNotPresent" },
      ]),
    );
    const next = workload(
      "Deployment",
      podSpec([
        { name: "old", image: "app:1", imagePullPolicy: "IfNotPresent" },
        { name: "b", image: "b:2", imagePullPolicy: "IfNotPresent" },
      ]),
    );
    const res = await call(h, "mutate", { operation: "UPDATE", object: next, oldObject: old });
    assert.deepEqual(decodePatch(res), [
      { op: "replace", path: "/spec/template/spec/containers/1/imagePullPolicy", value: "Always" },
    ]);
  });

  it("ephemeral containers added through the subresource are patched", async () => {
    const h = handler();
    const old = pod([{ name: "a", image: "app:1", imagePullPolicy: "Always" }]);
    const next = structuredClone(old);
    (next.spec as Json).ephemeralContainers = [
      { name: "debug", image: "busybox:1.36", imagePullPolicy: "IfNotPresent" },
    ];
    const res = await call(h, "mutate", {
      operation: "UPDATE",
      subResource: "ephemeralcontainers",
      object: next,
      oldObject: old,
    });
    assert.deepEqual(decodePatch(res), [
      { op: "replace", path: "/spec/ephemeralContainers/0/imagePullPolicy", value: "Always" },
    ]);
  });

  it("mutate none changes nothing", async () => {
    const res = await call(handler({ mutation: "none" }), "mutate", {
      object: pod([{ name: "a", image: "app:1", imagePullPolicy: "IfNotPresent" }]),
    });
    assert.equal(res.patch, undefined);
    assert.equal(res.verdict, "allowed");
  });
});

describe("mutate: always-pull-images (the in-tree plugin)", () => {
  // Mode pinned without the digest rule: Always and IfNotPresent are both fine for the check rules, so what
  // is denied below is the plugin's own rule.
  const config = parseConfig("mode: pinned\nrules:\n  unpinned-image: off\n", ".kpull.yaml", "/");
  const h = handler({ mutation: "always-pull-images", config });
  const all = () =>
    pod(
      [
        { name: "a", image: "app:1", imagePullPolicy: "IfNotPresent" },
        { name: "b", image: "b:1", imagePullPolicy: "Always" },
      ],
      {
        initContainers: [{ name: "i", image: "init:1", imagePullPolicy: "Never" }],
        ephemeralContainers: [{ name: "e", image: "dbg:1", imagePullPolicy: "IfNotPresent" }],
        volumes: [{ name: "v", image: { reference: "vol:1", pullPolicy: "IfNotPresent" } }],
      },
    );

  it("CREATE: every container type is set to Always (image volumes untouched by default)", async () => {
    const object = all();
    const res = await call(h, "mutate", { object });
    const ops = decodePatch(res);
    assert.deepEqual(ops, [
      { op: "replace", path: "/spec/initContainers/0/imagePullPolicy", value: "Always" },
      { op: "replace", path: "/spec/containers/0/imagePullPolicy", value: "Always" },
      { op: "replace", path: "/spec/ephemeralContainers/0/imagePullPolicy", value: "Always" },
    ]);
    const patched = applyPatch(object, ops);
    assert.equal((await call(h, "validate", { object: patched })).allowed, true);
    // The plugin's Validate denies what is not Always, in its words.
    const denied = await call(h, "validate", { object });
    assert.equal(denied.allowed, false);
    assert.match(
      denied.status?.message ?? "",
      /pods "web" is forbidden:\n {2}spec\.initContainers\[0\]\.imagePullPolicy: Unsupported value: "Never": supported values: "Always"/,
    );
  });

  it("--image-volumes: image volumes too", async () => {
    const hv = handler({ mutation: "always-pull-images", imageVolumes: true });
    const ops = decodePatch(await call(hv, "mutate", { object: all() }));
    assert.deepEqual(ops[0], { op: "replace", path: "/spec/volumes/0/image/pullPolicy", value: "Always" });
    assert.equal(ops.length, 4);
  });

  it("UPDATE without a new image is ignored; with one, only the containers whose image changed", async () => {
    const old = all();
    const relabelled = structuredClone(old);
    (relabelled.metadata as Json).labels = { x: "y" };
    assert.equal(
      (await call(h, "mutate", { operation: "UPDATE", object: relabelled, oldObject: old })).patch,
      undefined,
    );
    assert.equal(
      (await call(h, "validate", { operation: "UPDATE", object: relabelled, oldObject: old })).allowed,
      true,
    );
    // Swapping images between containers introduces no new image: the plugin ignores it.
    const swapped = structuredClone(old);
    const cs = (swapped.spec as Json).containers as C[];
    const [c0, c1] = cs as [C, C];
    [c0.image, c1.image] = [c1.image, c0.image];
    assert.equal(
      (await call(h, "mutate", { operation: "UPDATE", object: swapped, oldObject: old })).patch,
      undefined,
    );
    const changed = structuredClone(old);
    (((changed.spec as Json).containers as C[])[0] as C).image = "app:2";
    const ops = decodePatch(
      await call(h, "mutate", { operation: "UPDATE", object: changed, oldObject: old }),
    );
    assert.deepEqual(ops, [{ op: "replace", path: "/spec/containers/0/imagePullPolicy", value: "Always" }]);
  });

  it("subresources and resources other than pods are not touched", async () => {
    const old = pod([{ name: "a", image: "app:1", imagePullPolicy: "Always" }]);
    const next = structuredClone(old);
    (next.spec as Json).ephemeralContainers = [
      { name: "e", image: "dbg:1", imagePullPolicy: "IfNotPresent" },
    ];
    assert.equal(
      (
        await call(h, "mutate", {
          operation: "UPDATE",
          subResource: "ephemeralcontainers",
          object: next,
          oldObject: old,
        })
      ).patch,
      undefined,
    );
    const deploy = workload(
      "Deployment",
      podSpec([{ name: "a", image: "app:1", imagePullPolicy: "IfNotPresent" }]),
    );
    assert.equal((await call(h, "mutate", { object: deploy })).patch, undefined);
  });
});

describe("mutate: pin", () => {
  function fakeRegistry(digests: Record<string, string>, options: { delayMs?: number; fail?: boolean } = {}) {
    const calls: string[] = [];
    const lookup = async (ref: Reference, signal: AbortSignal) => {
      const key = `${ref.domain}/${ref.path}:${ref.tag ?? "latest"}`;
      calls.push(key);
      if (options.delayMs)
        await new Promise((r, j) => {
          const t = setTimeout(r, options.delayMs);
          signal.addEventListener("abort", () => {
            clearTimeout(t);
            j(new Error("aborted"));
          });
        });
      if (options.fail) throw new Error("connect ECONNREFUSED 127.0.0.1:5000");
      const digest = digests[key];
      if (digest === undefined) throw new Error(`manifest unknown: ${key}`);
      return digest;
    };
    return { calls, lookup };
  }

  it("pins tags to digests (tag kept), once per tag thanks to the cache, then sets the policy the mode allows", async () => {
    const reg = fakeRegistry({ "docker.io/library/nginx:1.27": D, "docker.io/library/nginx:latest": E });
    const cache = new PinCache({ lookup: reg.lookup });
    const h = handler({ pin: { failure: "open", budgetMs: 500 } }, cache);
    const object = pod([
      { name: "a", image: "nginx:1.27", imagePullPolicy: "IfNotPresent" },
      { name: "b", image: "nginx", imagePullPolicy: "Always" },
      { name: "c", image: `x@${D}`, imagePullPolicy: "IfNotPresent" },
      { name: "d", image: "nginx:1.27", imagePullPolicy: "IfNotPresent" },
    ]);
    const res = await call(h, "mutate", { object });
    const ops = decodePatch(res);
    assert.deepEqual(ops, [
      { op: "replace", path: "/spec/containers/0/image", value: `nginx:1.27@${D}` },
      { op: "replace", path: "/spec/containers/1/image", value: `nginx@${E}` },
      { op: "replace", path: "/spec/containers/3/image", value: `nginx:1.27@${D}` },
    ]);
    assert.deepEqual(reg.calls.sort(), ["docker.io/library/nginx:1.27", "docker.io/library/nginx:latest"]);
    const patched = applyPatch(object, ops);
    assert.deepEqual(
      checkFindings(patched),
      [],
      "pinned images pass with IfNotPresent in always-unless-pinned",
    );
    assert.match(
      res.auditAnnotations?.pinned ?? "",
      /spec\.containers\[0\]\.image: nginx:1\.27 -> nginx:1\.27@sha256:a{64}/,
    );
    await call(h, "mutate", { object });
    assert.equal(reg.calls.length, 2, "the second request is served from the cache");
  });

  it("fails open with a warning, or closed with a denial, when the registry fails", async () => {
    const reg = fakeRegistry({}, { fail: true });
    const object = pod([{ name: "a", image: "nginx:1.27", imagePullPolicy: "Always" }]);
    const open = await call(
      handler({ pin: { failure: "open", budgetMs: 500 } }, new PinCache({ lookup: reg.lookup })),
      "mutate",
      { object },
    );
    assert.equal(open.allowed, true);
    assert.equal(open.patch, undefined);
    assert.match(
      open.warnings?.[0] ?? "",
      /^kpull pin: container "a": cannot resolve "nginx:1\.27" to a digest: connect ECONNREFUSED .*; admitted unpinned$/,
    );
    const closed = await call(
      handler({ pin: { failure: "closed", budgetMs: 500 } }, new PinCache({ lookup: reg.lookup })),
      "mutate",
      { object },
    );
    assert.equal(closed.allowed, false);
    assert.equal(closed.status?.code, 503);
    assert.match(closed.status?.message ?? "", /pinning failed and the webhook fails closed/);
  });

  it("answers within the time budget when the registry is slow", async () => {
    const reg = fakeRegistry({ "docker.io/library/nginx:1.27": D }, { delayMs: 5000 });
    const h = handler(
      { pin: { failure: "open", budgetMs: 150 } },
      new PinCache({ lookup: reg.lookup, timeoutMs: 400 }),
    );
    const t0 = Date.now();
    const res = await call(h, "mutate", {
      object: pod([{ name: "a", image: "nginx:1.27", imagePullPolicy: "Always" }]),
    });
    const took = Date.now() - t0;
    assert.ok(took >= 140 && took < 1000, `took ${took} ms`);
    assert.match(res.warnings?.[0] ?? "", /no answer within the 150 ms pin budget/);
  });

  it("on UPDATE pins only images the update changes", async () => {
    const reg = fakeRegistry({ "docker.io/library/app:2": D, "docker.io/library/app:1": E });
    const h = handler({ pin: { failure: "closed", budgetMs: 500 } }, new PinCache({ lookup: reg.lookup }));
    const old = workload(
      "Deployment",
      podSpec([
        { name: "a", image: "app:1", imagePullPolicy: "Always" },
        { name: "b", image: "app:1", imagePullPolicy: "Always" },
      ]),
    );
    const next = workload(
      "Deployment",
      podSpec([
        { name: "a", image: "app:1", imagePullPolicy: "Always" },
        { name: "b", image: "app:2", imagePullPolicy: "Always" },
      ]),
    );
    const ops = decodePatch(await call(h, "mutate", { operation: "UPDATE", object: next, oldObject: old }));
    assert.deepEqual(ops, [
      { op: "replace", path: "/spec/template/spec/containers/1/image", value: `app:2@${D}` },
    ]);
  });
});

describe("bad reviews", () => {
  const h = handler();

  it("answer HTTP 400 when there is no uid to echo", async () => {
    for (const [text, pattern] of [
      ["{", /not JSON/],
      ["[]", /expected an AdmissionReview object, got a list/],
      [
        '{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}',
        /expected apiVersion admission\.k8s\.io\/v1 and kind AdmissionReview, got apiVersion "admission\.k8s\.io\/v1beta1"/,
      ],
      ['{"apiVersion":"admission.k8s.io/v1","kind":"ConversionReview"}', /kind "ConversionReview"/],
      ['{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', /has no request/],
      [
        '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}',
        /request\.uid must be a non-empty string, got number 7/,
      ],
    ] as const) {
      const res = await h.review("validate", text);
      assert.equal(res.status, 400, text);
      if (res.status === 400) assert.match(res.message, pattern);
    }
  });

  it("deny with status 400 and the uid when the request is malformed past its uid", async () => {
    const base = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" };
    for (const [request, pattern] of [
      [
        { uid: "u1", operation: "PATCH", object: {} },
        /request\.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got "PATCH"/,
      ],
      [{ uid: "u2", operation: "CREATE" }, /request\.object must be an object for CREATE, got nothing/],
      [
        { uid: "u3", operation: "UPDATE", object: "x" },
        /request\.object must be an object for UPDATE, got "x"/,
      ],
      [{ uid: "u4", operation: "CREATE", object: {}, namespace: 5 }, /request\.namespace must be a string/],
      [
        { uid: "u5", operation: "UPDATE", object: {}, oldObject: [] },
        /request\.oldObject must be an object, got a list/,
      ],
    ] as const) {
      for (const endpoint of ["validate", "mutate"] as const) {
        const res = await h.review(endpoint, JSON.stringify({ ...base, request }));
        assert.equal(res.status, 200);
        if (res.status !== 200) continue;
        assert.equal(res.review.response.uid, request.uid);
        assert.equal(res.review.response.allowed, false);
        assert.equal(res.review.response.status?.code, 400);
        assert.match(res.review.response.status?.message ?? "", pattern);
      }
    }
  });

  it("objects with wrong types inside are judged, not crashed on", async () => {
    const weird = {
      kind: "Pod",
      metadata: { name: 5, annotations: [] },
      spec: { containers: [{ name: "a", image: 1.5 }, "x", null], volumes: {} },
    };
    const res = await call(h, "validate", { object: weird });
    assert.equal(res.allowed, false);
    assert.match(res.status?.message ?? "", /invalid-image {2}container "a": image is not a string/);
    const m = await call(h, "mutate", { object: weird });
    assert.equal(m.allowed, true);
  });
});
