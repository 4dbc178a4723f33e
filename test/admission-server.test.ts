// The real HTTPS server on loopback, driven with HTTP/1.1 and HTTP/2 clients: AdmissionReviews of every
// operation, kind, subresource and mode, dry-run and exempt namespaces; health, readiness and metrics in the
// Prometheus text format; hostile input; certificate rotation while requests run; configuration reload.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import tls from "node:tls";
import {
  AdmissionHandler,
  AdmissionMetrics,
  type AdmissionPolicy,
  AdmissionServer,
  defaultPolicy,
} from "../src/admission/index.ts";
import { checkImageUses, loadConfig } from "../src/check/index.ts";
import { imageUsesFromText } from "../src/manifests/index.ts";
import {
  admissionReview,
  applyPatch,
  decodePatch,
  type HttpAnswer,
  h1Request,
  h2Session,
  type Json,
  parsePrometheus,
  reviewResponse,
  sampleValue,
} from "./admission-helpers.ts";
import { makeTlsMaterial, type TlsMaterial } from "./harness/certs.ts";

const D = `sha256:${"a".repeat(64)}`;

/** A Secret volume as the kubelet writes it: files are symlinks into `..data`, itself a symlink swapped atomically. */
function secretVolume(dir: string, material: TlsMaterial, version: string): void {
  const versioned = join(dir, `..${version}`);
  mkdirSync(versioned);
  writeFileSync(join(versioned, "tls.crt"), material.certPem);
  writeFileSync(join(versioned, "tls.key"), material.keyPem);
  symlinkSync(`..${version}`, join(dir, "..data_tmp"));
  renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
  for (const f of ["tls.crt", "tls.key"]) {
    try {
      symlinkSync(join("..data", f), join(dir, f));
    } catch {
      // already linked
    }
  }
}

function pod(containers: Json[], metadata: Json = {}, spec: Json = {}): Json {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: "shop", ...metadata },
    spec: { containers, ...spec },
  };
}

function deployment(containers: Json[], metadata: Json = {}): Json {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "shop", ...metadata },
    spec: { replicas: 2, template: { metadata: { labels: { app: "web" } }, spec: { containers } } },
  };
}

describe("kpull serve: the HTTPS server", () => {
  const dir = mkdtempSync(join(tmpdir(), "kpull-admission-"));
  const tlsDir = join(dir, "tls");
  mkdirSync(tlsDir);
  const first = makeTlsMaterial(mkdtempSync(join(dir, "ca1-")));
  const configFile = join(dir, ".kpull.yaml");
  writeFileSync(configFile, "mode: always-unless-pinned\n");
  const metrics = new AdmissionMetrics();
  const base = (config: AdmissionPolicy["config"]): AdmissionPolicy =>
    defaultPolicy({ config, exemptNamespaces: ["kpull-system", "kube-system"] });
  let handler: AdmissionHandler;
  let server: AdmissionServer;
  let origin: string;
  let cas = [first.caPem];
  const logs: string[] = [];

  before(async () => {
    secretVolume(tlsDir, first, "v1");
    handler = new AdmissionHandler({ policy: base(await loadConfig(configFile)), metrics });
    server = await AdmissionServer.start({
      handler,
      metrics,
      certFile: join(tlsDir, "tls.crt"),
      keyFile: join(tlsDir, "tls.key"),
      port: 0,
      host: "127.0.0.1",
      requestTimeoutMs: 1500,
      headersTimeoutMs: 1000,
      reloadIntervalMs: 100,
      policySource: {
        files: [configFile],
        load: async () => ({ ...handler.policy, config: await loadConfig(configFile) }),
      },
      log: (m) => logs.push(m),
    });
    origin = `https://127.0.0.1:${server.port}`;
  });

  after(async () => {
    await server?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sends one review over HTTP/1.1 or HTTP/2 and returns its response, envelope checked. */
  async function send(
    protocol: "h1" | "h2",
    endpoint: "validate" | "mutate",
    input: Parameters<typeof admissionReview>[0],
  ) {
    const { uid, body } = admissionReview(input);
    const text = JSON.stringify(body);
    let answer: HttpAnswer;
    if (protocol === "h1") answer = await h1Request(`${origin}/${endpoint}?timeout=10s`, text, { ca: cas });
    else {
      const h2 = h2Session(origin, cas);
      try {
        answer = await h2.request(`/${endpoint}?timeout=10s`, text);
      } finally {
        await h2.close();
      }
    }
    assert.equal(answer.httpVersion, protocol === "h1" ? "1.1" : "2.0");
    return reviewResponse(answer, uid);
  }

  it("answers AdmissionReviews of every operation, kind, subresource and mode over HTTP/1.1 and HTTP/2", async () => {
    const cases: {
      name: string;
      endpoint: "validate" | "mutate";
      input: Parameters<typeof admissionReview>[0];
      allowed: boolean;
      message?: RegExp;
      warnings?: RegExp[];
      patched?: (object: Json) => void;
    }[] = [
      {
        name: "Pod CREATE, floating tag",
        endpoint: "validate",
        input: { object: pod([{ name: "app", image: "nginx", imagePullPolicy: "Always" }]) },
        allowed: false,
        message:
          /^kpull: Pod shop\/web: 1 finding \(mode always-unless-pinned\):\n {2}spec\.containers\[0\] {2}floating-tag {2}container "app": image "nginx" has no tag/,
      },
      {
        name: "Pod CREATE dry-run: the same verdict",
        endpoint: "validate",
        input: { object: pod([{ name: "app", image: "nginx", imagePullPolicy: "Always" }]), dryRun: true },
        allowed: false,
        message: /floating-tag/,
      },
      {
        name: "Deployment CREATE, clean",
        endpoint: "validate",
        input: {
          object: deployment([{ name: "app", image: `app:1@${D}`, imagePullPolicy: "IfNotPresent" }]),
        },
        allowed: true,
      },
      {
        name: "Deployment UPDATE keeping an old finding: warned, admitted",
        endpoint: "validate",
        input: {
          operation: "UPDATE",
          object: deployment([{ name: "app", image: "app:latest", imagePullPolicy: "Always" }], {
            labels: { v: "2" },
          }),
          oldObject: deployment([{ name: "app", image: "app:latest", imagePullPolicy: "Always" }]),
        },
        allowed: true,
        warnings: [/already present before this update/],
      },
      {
        name: "CronJob in mode never (kpull/mode on the template)",
        endpoint: "validate",
        input: {
          object: {
            apiVersion: "batch/v1",
            kind: "CronJob",
            metadata: { name: "nightly", namespace: "batch" },
            spec: {
              jobTemplate: {
                spec: {
                  template: {
                    metadata: { annotations: { "kpull/mode": "never" } },
                    spec: { containers: [{ name: "job", image: "job:1", imagePullPolicy: "IfNotPresent" }] },
                  },
                },
              },
            },
          },
        },
        allowed: false,
        message:
          /\(mode never\):\n {2}spec\.jobTemplate\.spec\.template\.spec\.containers\[0\] {2}pull-policy {2}container "job": imagePullPolicy is IfNotPresent \(written\)/,
      },
      {
        name: "mode pinned by annotation: unpinned-image",
        endpoint: "validate",
        input: {
          object: pod([{ name: "app", image: "app:1", imagePullPolicy: "Always" }], {
            annotations: { "kpull/mode": "pinned" },
          }),
        },
        allowed: false,
        message: /unpinned-image {2}container "app": image "app:1" is not pinned by digest/,
      },
      {
        name: "mode always by annotation: IfNotPresent on a digest",
        endpoint: "validate",
        input: {
          object: pod([{ name: "app", image: `app@${D}`, imagePullPolicy: "IfNotPresent" }], {
            annotations: { "kpull/mode": "always" },
          }),
        },
        allowed: false,
        message:
          /pull-policy {2}container "app": imagePullPolicy is IfNotPresent \(written\)\. Mode always allows only Always/,
      },
      {
        name: "exempted by kpull/ignore",
        endpoint: "validate",
        input: {
          object: pod([{ name: "app", image: "nginx", imagePullPolicy: "Always" }], {
            annotations: { "kpull/ignore": "floating-tag" },
          }),
        },
        allowed: true,
      },
      {
        name: "exempt namespace",
        endpoint: "validate",
        input: { object: pod([{ name: "app", image: "nginx" }], { namespace: "kube-system" }) },
        allowed: true,
      },
      {
        name: "pods/ephemeralcontainers UPDATE adding a floating debug container",
        endpoint: "validate",
        input: {
          operation: "UPDATE",
          subResource: "ephemeralcontainers",
          oldObject: pod([{ name: "app", image: "app:1", imagePullPolicy: "Always" }]),
          object: pod(
            [{ name: "app", image: "app:1", imagePullPolicy: "Always" }],
            {},
            {
              ephemeralContainers: [{ name: "debugger", image: "busybox", imagePullPolicy: "Always" }],
            },
          ),
        },
        allowed: false,
        message: /spec\.ephemeralContainers\[0\] {2}floating-tag {2}ephemeral container "debugger"/,
      },
      {
        name: "pods/status is not judged",
        endpoint: "validate",
        input: {
          operation: "UPDATE",
          subResource: "status",
          object: pod([{ name: "app", image: "nginx" }]),
          oldObject: pod([{ name: "app", image: "nginx" }]),
        },
        allowed: true,
      },
      {
        name: "DELETE is not judged",
        endpoint: "validate",
        input: { operation: "DELETE", oldObject: pod([{ name: "app", image: "nginx" }]) },
        allowed: true,
      },
      {
        name: "mutate Deployment: the fix kpull fix writes",
        endpoint: "mutate",
        input: {
          object: deployment([
            { name: "app", image: "app:1.2", imagePullPolicy: "IfNotPresent" },
            { name: "pinned", image: `app@${D}`, imagePullPolicy: "IfNotPresent" },
          ]),
        },
        allowed: true,
        patched: (o) => {
          const c = ((o.spec as Json).template as Json).spec as { containers: Json[] };
          assert.deepEqual(
            c.containers.map((x) => x.imagePullPolicy),
            ["Always", "IfNotPresent"],
          );
        },
      },
      {
        name: "mutate dry-run Job: patched all the same",
        endpoint: "mutate",
        input: {
          dryRun: true,
          object: {
            apiVersion: "batch/v1",
            kind: "Job",
            metadata: { name: "j", namespace: "shop" },
            spec: {
              template: {
                spec: {
                  initContainers: [{ name: "i", image: "i:2", imagePullPolicy: "IfNotPresent" }],
                  containers: [{ name: "c", image: `c@${D}` }],
                },
              },
            },
          },
        },
        allowed: true,
        patched: (o) => {
          const spec = ((o.spec as Json).template as Json).spec as {
            initContainers: Json[];
            containers: Json[];
          };
          assert.equal(spec.initContainers[0]?.imagePullPolicy, "Always");
          // Digest only: the API server defaults IfNotPresent, which the mode allows; nothing to add.
          assert.equal(spec.containers[0]?.imagePullPolicy, undefined);
        },
      },
    ];
    for (const protocol of ["h1", "h2"] as const) {
      for (const c of cases) {
        const res = await send(protocol, c.endpoint, c.input);
        assert.equal(res.allowed, c.allowed, `${protocol} ${c.name}: ${res.status?.message}`);
        if (c.message) assert.match(res.status?.message ?? "", c.message, `${protocol} ${c.name}`);
        if (!c.allowed) assert.equal(res.status?.code, 403);
        for (const w of c.warnings ?? [])
          assert.ok(
            res.warnings?.some((x) => w.test(x)),
            `${protocol} ${c.name}: ${res.warnings}`,
          );
        if (c.patched) {
          const object = applyPatch(c.input.object as Json, decodePatch(res));
          c.patched(object);
          // The patched object is what the validating webhook then sees: clean.
          const again = await send(protocol, "validate", { ...c.input, object });
          assert.equal(again.allowed, true, `${protocol} ${c.name}: ${again.status?.message}`);
          const findings = checkImageUses(imageUsesFromText(JSON.stringify(object), "x.json")).findings;
          assert.deepEqual(findings, []);
        } else if (c.endpoint === "mutate") assert.equal(res.patch, undefined);
      }
    }
  });

  it("serves AlwaysPullImages and mutate none when the policy says so", async () => {
    const before = handler.policy;
    try {
      handler.policy = { ...before, mutation: "always-pull-images" };
      const object = pod(
        [{ name: "a", image: `a@${D}`, imagePullPolicy: "IfNotPresent" }],
        {},
        { initContainers: [{ name: "i", image: "i:1", imagePullPolicy: "Always" }] },
      );
      for (const protocol of ["h1", "h2"] as const) {
        const res = await send(protocol, "mutate", { object });
        assert.deepEqual(decodePatch(res), [
          { op: "replace", path: "/spec/containers/0/imagePullPolicy", value: "Always" },
        ]);
        const v = await send(protocol, "validate", { object });
        assert.equal(v.allowed, false);
        assert.match(
          v.status?.message ?? "",
          /spec\.containers\[0\]\.imagePullPolicy: Unsupported value: "IfNotPresent": supported values: "Always"/,
        );
        const same = await send(protocol, "mutate", { operation: "UPDATE", object, oldObject: object });
        assert.equal(same.patch, undefined, "an update without a new image is ignored");
      }
      handler.policy = { ...before, mutation: "none" };
      assert.equal((await send("h2", "mutate", { object })).patch, undefined);
    } finally {
      handler.policy = before;
    }
  });

  it("health, readiness and metrics; the exposition parses and counts requests by endpoint, verdict and rule", async () => {
    for (const protocol of ["h1", "h2"] as const) {
      for (const path of ["/healthz", "/readyz"]) {
        const res =
          protocol === "h1"
            ? await h1Request(`${origin}${path}`, null, { ca: cas })
            : await (async () => {
                const h2 = h2Session(origin, cas);
                try {
                  return await h2.request(path, null);
                } finally {
                  await h2.close();
                }
              })();
        assert.equal(res.status, 200);
        assert.equal(res.text, "ok\n");
      }
    }
    const res = await h1Request(`${origin}/metrics`, null, { ca: cas });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    const families = parsePrometheus(res.text);
    assert.ok(
      sampleValue(families, "kpull_admission_requests_total", { endpoint: "validate", verdict: "denied" }) >=
        10,
    );
    assert.ok(
      sampleValue(families, "kpull_admission_requests_total", { endpoint: "mutate", verdict: "patched" }) >=
        2,
    );
    assert.ok(
      sampleValue(families, "kpull_admission_rule_requests_total", {
        endpoint: "validate",
        verdict: "denied",
        rule: "floating-tag",
      }) >= 4,
    );
    assert.ok(
      sampleValue(families, "kpull_admission_request_duration_seconds_count", { endpoint: "validate" }) >= 20,
    );
    assert.equal(families.get("kpull_admission_request_duration_seconds")?.type, "histogram");
    assert.equal(sampleValue(families, "kpull_ready"), 1);
    assert.ok(sampleValue(families, "kpull_tls_certificate_expiry_timestamp_seconds") > Date.now() / 1000);
    const head = await h1Request(`${origin}/metrics`, null, { ca: cas, method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
  });

  it("refuses hostile input with a 4xx and keeps serving: bad JSON, wrong kind, 10 MB, wrong method, slowloris", async () => {
    const h2 = h2Session(origin, cas);
    try {
      for (const send1 of [
        (body: string, headers?: Record<string, string>) =>
          h1Request(`${origin}/validate`, body, { ca: cas, ...(headers ? { headers } : {}) }),
        (body: string, headers?: Record<string, string>) =>
          h2.request("/validate", body, headers ? { headers } : {}),
      ]) {
        const bad = await send1("{not json");
        assert.equal(bad.status, 400);
        assert.match(bad.text, /^request body is not JSON/);
        const v1beta1 = await send1(
          JSON.stringify({
            apiVersion: "admission.k8s.io/v1beta1",
            kind: "AdmissionReview",
            request: { uid: "x" },
          }),
        );
        assert.equal(v1beta1.status, 400);
        assert.match(v1beta1.text, /expected apiVersion admission\.k8s\.io\/v1 and kind AdmissionReview/);
        const noObject = await send1(
          JSON.stringify({
            apiVersion: "admission.k8s.io/v1",
            kind: "AdmissionReview",
            request: { uid: "u-1", operation: "CREATE" },
          }),
        );
        const denial = reviewResponse(noObject, "u-1");
        assert.equal(denial.allowed, false);
        assert.equal(denial.status?.code, 400);
        assert.match(denial.status?.message ?? "", /request\.object must be an object for CREATE/);
        const form = await send1("a=b", { "content-type": "application/x-www-form-urlencoded" });
        assert.equal(form.status, 415);
        const huge = Buffer.alloc(10 * 1024 * 1024, 0x20);
        const big = await send1(huge.toString());
        assert.equal(big.status, 413);
        assert.match(big.text, /exceeds the limit of 6291456 bytes/);
      }
      // 10 MB without a Content-Length (chunked): cut off as it passes the limit.
      const chunked = await new Promise<number>((resolve, reject) => {
        import("node:https").then(({ request }) => {
          const req = request(
            `${origin}/validate`,
            { method: "POST", ca: cas, agent: false, headers: { "content-type": "application/json" } },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on("error", (e) =>
            e.message.includes("EPIPE") || e.message.includes("ECONNRESET") ? resolve(413) : reject(e),
          );
          for (let i = 0; i < 10; i++) req.write(Buffer.alloc(1024 * 1024, 0x20));
          req.end();
        }, reject);
      });
      assert.equal(chunked, 413);
      const get = await h1Request(`${origin}/validate`, null, { ca: cas });
      assert.equal(get.status, 405);
      assert.equal(get.headers.allow, "POST");
      assert.equal((await h2.request("/nope", null)).status, 404);

      // Slowloris, HTTP/1.1 headers: a header line every 200 ms never completes the request.
      const headersCut = await slowClient(server.port, (s) => {
        s.write("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n");
        return setInterval(() => s.write("X-Slow: 1\r\n"), 200);
      });
      assert.ok(headersCut.ms < 4000, `slow headers cut after ${headersCut.ms} ms`);
      // Slowloris, HTTP/1.1 body: one byte every 200 ms.
      const bodyCut = await slowClient(server.port, (s) => {
        s.write(
          "POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        );
        return setInterval(() => s.write(" "), 200);
      });
      assert.match(bodyCut.data, /^HTTP\/1\.1 408/);
      assert.ok(bodyCut.ms < 4000, `slow body cut after ${bodyCut.ms} ms`);
      // Slowloris, HTTP/2 body.
      const t0 = Date.now();
      const status = await new Promise<number>((resolve) => {
        const stream = h2.session.request({
          ":method": "POST",
          ":path": "/mutate",
          "content-type": "application/json",
        });
        const timer = setInterval(() => stream.write(" "), 200);
        stream.on("response", (h) => resolve(Number(h[":status"])));
        stream.on("close", () => clearInterval(timer));
        stream.on("error", () => {});
      });
      assert.equal(status, 408);
      assert.ok(Date.now() - t0 < 4000);

      // Still healthy, and the rejections are counted.
      const ok = await send("h2", "validate", {
        object: pod([{ name: "a", image: "a:1", imagePullPolicy: "Always" }]),
      });
      assert.equal(ok.allowed, true);
      const families = parsePrometheus((await h2.request("/metrics", null)).text);
      assert.ok(sampleValue(families, "kpull_http_rejected_total", { reason: "too-large" }) >= 3);
      assert.ok(sampleValue(families, "kpull_http_rejected_total", { reason: "timeout" }) >= 2);
      assert.ok(sampleValue(families, "kpull_http_rejected_total", { reason: "bad-review" }) >= 4);
    } finally {
      await h2.close();
    }
  });

  it("rotates the certificate while requests run: new connections get the new one, no request fails", async () => {
    const second = makeTlsMaterial(mkdtempSync(join(dir, "ca2-")));
    cas = [first.caPem, second.caPem];
    const before = server.certificateFingerprint;
    let failures = 0;
    let done = 0;
    const seen = new Set<string>();
    let stop = false;
    const worker = async (protocol: "h1" | "h2") => {
      while (!stop) {
        try {
          const { uid, body } = admissionReview({
            object: pod([{ name: "a", image: "a:1", imagePullPolicy: "Always" }]),
          });
          const text = JSON.stringify(body);
          let answer: HttpAnswer;
          if (protocol === "h1") answer = await h1Request(`${origin}/validate`, text, { ca: cas });
          else {
            const h2 = h2Session(origin, cas);
            try {
              answer = await h2.request("/validate", text);
            } finally {
              await h2.close();
            }
          }
          assert.equal(reviewResponse(answer, uid).allowed, true);
          if (answer.fingerprint) seen.add(answer.fingerprint);
          done++;
        } catch (error) {
          failures++;
          logs.push(`request failed: ${(error as Error).message}`);
        }
      }
    };
    const workers = [worker("h1"), worker("h2"), worker("h1"), worker("h2")];
    await new Promise((r) => setTimeout(r, 200));
    secretVolume(tlsDir, second, "v2"); // the kubelet's atomic swap of ..data
    const deadline = Date.now() + 5000;
    while (server.certificateFingerprint === before && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(workers);
    assert.notEqual(server.certificateFingerprint, before, "the new certificate is in use");
    assert.equal(failures, 0, logs.filter((l) => l.startsWith("request failed")).join("\n"));
    assert.ok(done > 20, `${done} requests`);
    assert.ok(seen.size === 2, "clients saw both certificates");
    // A broken replacement (key of another certificate) is refused; the good one stays.
    const third = makeTlsMaterial(mkdtempSync(join(dir, "ca3-")));
    const broken = { ...third, keyPem: first.keyPem };
    secretVolume(tlsDir, broken, "v3");
    const serving = server.certificateFingerprint;
    assert.equal(await server.reloadCertificate(), false);
    assert.equal(server.certificateFingerprint, serving);
    const ok = await h1Request(`${origin}/healthz`, null, { ca: cas });
    assert.equal(ok.status, 200);
    assert.ok(
      logs.some((l) =>
        /certificate not reloaded, the previous one stays in use: the key in .* does not belong/.test(l),
      ),
    );
  });

  it("reloads the configuration when the file changes; a broken file keeps the previous one", async () => {
    const object = pod([{ name: "app", image: "nginx", imagePullPolicy: "Always" }]);
    assert.equal((await send("h1", "validate", { object })).allowed, false);
    writeFileSync(configFile, "mode: always-unless-pinned\nrules:\n  floating-tag: warning\n");
    const until = Date.now() + 5000;
    let res = await send("h1", "validate", { object });
    while (!res.allowed && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      res = await send("h1", "validate", { object });
    }
    assert.equal(res.allowed, true, "floating-tag is a warning now");
    assert.match(res.warnings?.[0] ?? "", /^kpull floating-tag \(warning\): /);
    writeFileSync(configFile, "mode: sometimes\n");
    const errorsBefore = metrics.reloads.get({ what: "config", result: "error" });
    const until2 = Date.now() + 5000;
    while (metrics.reloads.get({ what: "config", result: "error" }) === errorsBefore && Date.now() < until2)
      await new Promise((r) => setTimeout(r, 50));
    assert.ok(
      logs.some((l) =>
        /configuration not reloaded, the previous one stays in force: .*mode "sometimes" is not one of/.test(
          l,
        ),
      ),
    );
    assert.equal(
      (await send("h2", "validate", { object })).allowed,
      true,
      "the previous configuration holds",
    );
  });
});

/** Opens a raw TLS connection, lets `drive` dribble bytes, and reports when and how the server ended it. */
function slowClient(
  port: number,
  drive: (socket: tls.TLSSocket) => NodeJS.Timeout,
): Promise<{ ms: number; data: string }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let data = "";
    let timer: NodeJS.Timeout | undefined;
    const socket = tls.connect(
      { port, host: "127.0.0.1", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] },
      () => {
        timer = drive(socket);
      },
    );
    socket.on("data", (c) => {
      data += c;
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearInterval(timer);
      resolve({ ms: Date.now() - t0, data });
    });
  });
}
