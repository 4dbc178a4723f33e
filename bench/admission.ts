// Benchmark of the admission webhook: the real `kpull serve` (a child process, so it has a core of its own)
// driven over HTTPS with realistic AdmissionReviews, at increasing request rates (open loop: requests are
// sent on schedule whether or not earlier ones have been answered, as the API server does) and at fixed
// concurrency (closed loop: the most the server can do). Reports throughput and p50/p99/max latency.
//
//   npm run bench:admission                           HTTP/2, rates 100..2000/s, 5 s each
//   npm run bench:admission -- --protocol h1 --seconds 3
//   npm run bench:admission -- --rates 500 --seconds 10 --json
//
// The reviews: Pods and Deployments of 1 to 10 containers (init containers and an image volume in some),
// with the labels, annotations, managedFields and status an API server sends, two thirds CREATE and one
// third UPDATE (object and oldObject); a mix of clean objects and findings, to /validate and /mutate.
// Target (issue 8): p99 under 5 ms at 500 requests per second without pin, on a 2-core machine.

import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { makeTlsMaterial } from "../test/harness/certs.ts";
import { startServe } from "../test/harness/cli.ts";

const { values } = parseArgs({
  options: {
    protocol: { type: "string", default: "h2" },
    rates: { type: "string", default: "100,250,500,1000,2000" },
    concurrency: { type: "string", default: "1,8,32,128" },
    seconds: { type: "string", default: "5" },
    json: { type: "boolean", default: false },
  },
});
const PROTOCOL = values.protocol === "h1" ? "h1" : "h2";
const RATES = values.rates
  .split(",")
  .map(Number)
  .filter((n) => n > 0);
const CONCURRENCY = values.concurrency
  .split(",")
  .map(Number)
  .filter((n) => n > 0);
const SECONDS = Number(values.seconds);

const IMAGES = [
  "registry.example.com/team/api:2.1.0",
  `ghcr.io/org/worker:1.4@sha256:${"b".repeat(64)}`,
  "nginx:1.27",
  "busybox",
  "docker.io/library/redis:7.2",
  "quay.io/prometheus/node-exporter:v1.8.0",
];

function container(i: number, n: number) {
  const image = IMAGES[(i * 7 + n) % IMAGES.length] as string;
  return {
    name: `c${n}`,
    image,
    imagePullPolicy: image.includes("@") ? "IfNotPresent" : n % 3 === 0 ? "IfNotPresent" : "Always",
    ports: [{ containerPort: 8080 + n, protocol: "TCP", name: `http-${n}` }],
    env: [
      { name: "LOG_LEVEL", value: "info" },
      { name: "POD_NAME", valueFrom: { fieldRef: { apiVersion: "v1", fieldPath: "metadata.name" } } },
    ],
    resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
    readinessProbe: {
      httpGet: { path: "/ready", port: 8080 + n, scheme: "HTTP" },
      periodSeconds: 10,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    },
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "File",
    volumeMounts: [
      { name: "kube-api-access", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true },
    ],
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, runAsNonRoot: true },
  };
}

function podSpec(i: number, containers: number) {
  return {
    ...(i % 4 === 0 ? { initContainers: [container(i + 1, 99)] } : {}),
    containers: Array.from({ length: containers }, (_, n) => container(i, n)),
    volumes: [
      {
        name: "kube-api-access",
        projected: {
          defaultMode: 420,
          sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: "token" } }],
        },
      },
      ...(i % 5 === 0
        ? [
            {
              name: "models",
              image: { reference: "registry.example.com/models:3", pullPolicy: "IfNotPresent" },
            },
          ]
        : []),
    ],
    restartPolicy: "Always",
    terminationGracePeriodSeconds: 30,
    dnsPolicy: "ClusterFirst",
    serviceAccountName: "default",
    securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
    schedulerName: "default-scheduler",
    tolerations: [
      {
        key: "node.kubernetes.io/not-ready",
        operator: "Exists",
        effect: "NoExecute",
        tolerationSeconds: 300,
      },
      {
        key: "node.kubernetes.io/unreachable",
        operator: "Exists",
        effect: "NoExecute",
        tolerationSeconds: 300,
      },
    ],
    priority: 0,
    enableServiceLinks: true,
    preemptionPolicy: "PreemptLowerPriority",
  };
}

function metadata(i: number, name: string) {
  return {
    name,
    namespace: `team-${i % 7}`,
    uid: `5c0f2b6e-0000-4000-8000-${String(i).padStart(12, "0")}`,
    resourceVersion: String(100000 + i),
    generation: 1,
    creationTimestamp: "2026-01-01T00:00:00Z",
    labels: { app: name, "app.kubernetes.io/part-of": "shop", "pod-template-hash": "7d4b9c8f6" },
    annotations: {
      "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({ kind: "x", name }).repeat(8),
    },
    managedFields: [
      {
        manager: "kubectl-client-side-apply",
        operation: "Update",
        apiVersion: "v1",
        time: "2026-01-01T00:00:00Z",
        fieldsType: "FieldsV1",
        fieldsV1: {
          "f:metadata": { "f:labels": { ".": {}, "f:app": {} } },
          "f:spec": { "f:containers": { 'k:{"name":"c0"}': { ".": {}, "f:image": {}, "f:name": {} } } },
        },
      },
    ],
  };
}

function object(i: number) {
  const containers = 1 + (i % 10);
  if (i % 2 === 0)
    return {
      apiVersion: "v1",
      kind: "Pod",
      metadata: metadata(i, `web-${i}`),
      spec: podSpec(i, containers),
      status: { phase: "Pending", qosClass: "Burstable" },
    };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadata(i, `api-${i}`),
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: `api-${i}` } },
      template: { metadata: { labels: { app: `api-${i}` } }, spec: podSpec(i, containers) },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    },
    status: {},
  };
}

function review(i: number): { path: string; body: Buffer } {
  const o = object(i) as { kind: string; metadata: { name: string; namespace: string } };
  const update = i % 3 === 2;
  const pod = o.kind === "Pod";
  const gvr = pod
    ? { group: "", version: "v1", resource: "pods" }
    : { group: "apps", version: "v1", resource: "deployments" };
  const body = {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
      kind: { group: gvr.group, version: "v1", kind: o.kind },
      resource: gvr,
      requestKind: { group: gvr.group, version: "v1", kind: o.kind },
      requestResource: gvr,
      name: o.metadata.name,
      namespace: o.metadata.namespace,
      operation: update ? "UPDATE" : "CREATE",
      userInfo: {
        username: "system:serviceaccount:kube-system:replicaset-controller",
        uid: "u",
        groups: ["system:serviceaccounts", "system:authenticated"],
      },
      object: o,
      ...(update ? { oldObject: object(i) } : {}),
      dryRun: false,
      options: { kind: update ? "UpdateOptions" : "CreateOptions", apiVersion: "meta.k8s.io/v1" },
    },
  };
  return {
    path: i % 4 === 3 ? "/mutate?timeout=10s" : "/validate?timeout=10s",
    body: Buffer.from(JSON.stringify(body)),
  };
}

const REVIEWS = Array.from({ length: 400 }, (_, i) => review(i));

// --- server ---

const dir = mkdtempSync(join(tmpdir(), "kpull-bench-admission-"));
const tls = makeTlsMaterial(dir);
const { child: server, port } = await startServe([
  "--tls-cert",
  tls.certFile,
  "--tls-key",
  tls.keyFile,
  "--port",
  "0",
  "--address",
  "127.0.0.1",
]);
const origin = `https://127.0.0.1:${port}`;

// --- clients ---

type Send = (r: { path: string; body: Buffer }) => Promise<number>;

function h2Client(sessions: number): { send: Send; close: () => void } {
  const pool = Array.from({ length: sessions }, () => {
    const s = http2.connect(origin, { ca: tls.caPem });
    s.on("error", () => {});
    return s;
  });
  let next = 0;
  return {
    send: (r) =>
      new Promise((resolve, reject) => {
        const session = pool[next++ % pool.length] as http2.ClientHttp2Session;
        const stream = session.request({
          ":method": "POST",
          ":path": r.path,
          "content-type": "application/json",
          "content-length": String(r.body.length),
        });
        let status = 0;
        stream.on("response", (h) => (status = Number(h[":status"])));
        stream.on("data", () => {});
        stream.on("end", () => resolve(status));
        stream.on("error", reject);
        stream.end(r.body);
      }),
    close: () => {
      for (const s of pool) s.close();
    },
  };
}

function h1Client(): { send: Send; close: () => void } {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 256, ca: tls.caPem });
  return {
    send: (r) =>
      new Promise((resolve, reject) => {
        const req = https.request(
          `${origin}${r.path}`,
          {
            method: "POST",
            agent,
            headers: { "content-type": "application/json", "content-length": String(r.body.length) },
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", reject);
        req.end(r.body);
      }),
    close: () => agent.destroy(),
  };
}

const client = PROTOCOL === "h2" ? h2Client(4) : h1Client();

interface Result {
  readonly label: string;
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

function summarize(label: string, latencies: number[], errors: number, seconds: number): Result {
  const sorted = [...latencies].sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
  return {
    label,
    requests: sorted.length,
    errors,
    seconds,
    throughput: sorted.length / seconds,
    p50: q(0.5),
    p99: q(0.99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

let counter = 0;
async function timed(latencies: number[], failures: { n: number }): Promise<void> {
  const r = REVIEWS[counter++ % REVIEWS.length] as { path: string; body: Buffer };
  const t0 = performance.now();
  try {
    const status = await client.send(r);
    if (status !== 200) failures.n++;
    else latencies.push(performance.now() - t0);
  } catch {
    failures.n++;
  }
}

/** Open loop: `rate` requests per second on a 1 ms schedule, for SECONDS. */
async function openLoop(rate: number): Promise<Result> {
  const latencies: number[] = [];
  const failures = { n: 0 };
  const pending: Promise<void>[] = [];
  const start = performance.now();
  const total = Math.round(rate * SECONDS);
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    while (sent < due) {
      pending.push(timed(latencies, failures));
      sent++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  return summarize(`${rate}/s`, latencies, failures.n, (performance.now() - start) / 1000);
}

/** Closed loop: `concurrency` requests always in flight, for SECONDS. */
async function closedLoop(concurrency: number): Promise<Result> {
  const latencies: number[] = [];
  const failures = { n: 0 };
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await timed(latencies, failures);
    }),
  );
  return summarize(`${concurrency} in flight`, latencies, failures.n, (performance.now() - start) / 1000);
}

const sizes = REVIEWS.map((r) => r.body.length).sort((a, b) => a - b);
const results: { open: Result[]; closed: Result[] } = { open: [], closed: [] };
try {
  // Warm up: JIT, TLS sessions, connection pools.
  await closedLoop(8).catch(() => {});
  for (const rate of RATES) results.open.push(await openLoop(rate));
  for (const c of CONCURRENCY) results.closed.push(await closedLoop(c));
} finally {
  client.close();
  server.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}

if (values.json) {
  process.stdout.write(
    `${JSON.stringify({ protocol: PROTOCOL, cpus: cpus().length, seconds: SECONDS, reviewBytes: { min: sizes[0], median: sizes[Math.floor(sizes.length / 2)], max: sizes.at(-1) }, ...results }, null, 2)}\n`,
  );
} else {
  const fmt = (r: Result) =>
    `| ${r.label.padEnd(12)} | ${r.throughput.toFixed(0).padStart(7)} | ${r.p50.toFixed(2).padStart(6)} | ${r.p99.toFixed(2).padStart(6)} | ${r.max.toFixed(1).padStart(6)} | ${String(r.errors).padStart(6)} |`;
  const head = "| load         | req/s   | p50 ms | p99 ms | max ms | errors |\n|---|---|---|---|---|---|";
  console.log(
    `kpull serve, ${PROTOCOL === "h2" ? "HTTP/2 (4 sessions)" : "HTTP/1.1 keep-alive"}, ${cpus().length} CPUs, ${SECONDS} s per step; ` +
      `reviews ${sizes[0]}-${sizes.at(-1)} bytes (median ${sizes[Math.floor(sizes.length / 2)]})\n`,
  );
  console.log(`Open loop (requests sent on schedule):\n${head}\n${results.open.map(fmt).join("\n")}\n`);
  console.log(`Closed loop (fixed concurrency):\n${head}\n${results.closed.map(fmt).join("\n")}\n`);
  const at500 = results.open.find((r) => r.label === "500/s");
  if (at500)
    console.log(
      `Target p99 < 5 ms at 500/s: ${at500.p99 < 5 && at500.errors === 0 ? "met" : "NOT met"} (p99 ${at500.p99.toFixed(2)} ms)`,
    );
}
