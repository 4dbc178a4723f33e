// `kpull serve` as a process: it starts, answers over both protocols, and on SIGTERM turns unready, keeps
// serving through the drain delay, finishes the requests in flight and exits 0. Bad usage exits 2.

import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { admissionReview, h1Request, h2Session, reviewResponse } from "./admission-helpers.ts";
import { makeTlsMaterial } from "./harness/certs.ts";
import { runKpull, startServe as serve } from "./harness/index.ts";

const dir = mkdtempSync(join(tmpdir(), "kpull-serve-"));
const material = makeTlsMaterial(dir);

const running: ChildProcess[] = [];
after(() => {
  for (const c of running) if (c.exitCode === null) c.kill("SIGKILL");
});

describe("kpull serve (process)", () => {
  it("drains on SIGTERM: /readyz 503, requests in flight over HTTP/1.1 and HTTP/2 complete, exit 0", async () => {
    const config = join(dir, ".kpull.yaml");
    writeFileSync(config, "mode: always\n");
    const s = await serve([
      "--tls-cert",
      material.certFile,
      "--tls-key",
      material.keyFile,
      "--config",
      config,
      "--port",
      "0",
      "--address",
      "127.0.0.1",
      "--shutdown-delay",
      "600ms",
      "--shutdown-timeout",
      "10s",
      "--request-timeout",
      "8s",
      "--namespace",
      "kpull-system",
    ]);
    running.push(s.child);
    const origin = `https://127.0.0.1:${s.port}`;
    assert.match(
      s.stderr(),
      /mode always, enforcing, mutate pull-policy, pin off; exempt namespaces: kpull-system, kube-system/,
    );

    // A normal request first.
    const warm = admissionReview({
      object: {
        kind: "Pod",
        metadata: { name: "p", namespace: "a" },
        spec: { containers: [{ name: "c", image: "c:1", imagePullPolicy: "IfNotPresent" }] },
      },
    });
    const warmed = reviewResponse(
      await h1Request(`${origin}/validate`, JSON.stringify(warm.body), { ca: material.caPem }),
      warm.uid,
    );
    assert.equal(warmed.allowed, false, "mode always from the config file");

    // Two requests whose bodies are only half sent when SIGTERM arrives.
    const r1 = admissionReview({
      object: {
        kind: "Pod",
        metadata: { name: "one", namespace: "a" },
        spec: { containers: [{ name: "c", image: "c:1", imagePullPolicy: "Always" }] },
      },
    });
    const r2 = admissionReview({
      object: {
        kind: "Pod",
        metadata: { name: "two", namespace: "a" },
        spec: { containers: [{ name: "c", image: "c:1", imagePullPolicy: "IfNotPresent" }] },
      },
    });
    const body1 = Buffer.from(JSON.stringify(r1.body));
    const body2 = Buffer.from(JSON.stringify(r2.body));
    let h1Body = "";
    let h1Status = 0;
    const h1Req = https.request(`${origin}/mutate`, {
      method: "POST",
      ca: material.caPem,
      agent: false,
      headers: { "content-type": "application/json", "content-length": String(body1.length) },
    });
    const h1Done = new Promise<void>((resolve, reject) => {
      h1Req.on("response", (res) => {
        h1Status = res.statusCode ?? 0;
        res.on("data", (c) => (h1Body += c));
        res.on("end", resolve);
      });
      h1Req.on("error", reject);
    });
    h1Req.write(body1.subarray(0, 20));
    const session = http2.connect(origin, { ca: material.caPem });
    session.on("error", () => {});
    const stream = session.request({
      ":method": "POST",
      ":path": "/validate",
      "content-type": "application/json",
    });
    let h2Body = "";
    let h2Status = 0;
    const h2Done = new Promise<void>((resolve, reject) => {
      stream.on("response", (h) => (h2Status = Number(h[":status"])));
      stream.on("data", (c) => (h2Body += c));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    stream.write(body2.subarray(0, 20));
    await new Promise((r) => setTimeout(r, 100));

    s.child.kill("SIGTERM");
    let ready = 200;
    for (let i = 0; i < 20 && ready === 200; i++) {
      ready = (await h1Request(`${origin}/readyz`, null, { ca: material.caPem })).status;
      if (ready === 200) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(ready, 503, "not ready once SIGTERM is received");
    const h2Probe = h2Session(origin, material.caPem);
    const probe = await h2Probe.request("/readyz", null);
    await h2Probe.close();
    assert.equal(probe.status, 503);
    assert.equal(probe.text, "shutting down\n");

    // Past the drain delay the listener is closed, but the two requests still complete.
    await new Promise((r) => setTimeout(r, 900));
    h1Req.end(body1.subarray(20));
    stream.end(body2.subarray(20));
    await Promise.all([h1Done, h2Done]);
    session.close();
    assert.equal(h1Status, 200);
    assert.equal(
      reviewResponse(
        {
          status: 200,
          headers: { "content-type": "application/json" },
          text: h1Body,
          httpVersion: "1.1",
          fingerprint: null,
        },
        r1.uid,
      ).allowed,
      true,
    );
    assert.equal(h2Status, 200);
    const denied = reviewResponse(
      {
        status: 200,
        headers: { "content-type": "application/json" },
        text: h2Body,
        httpVersion: "2.0",
        fingerprint: null,
      },
      r2.uid,
    );
    assert.equal(denied.allowed, false);

    const { code, signal } = await s.exit;
    assert.equal(signal, null);
    assert.equal(code, 0, s.stderr());
    assert.match(s.stderr(), /SIGTERM received/);
    assert.match(s.stderr(), /shut down\n$/);
    await assert.rejects(h1Request(`${origin}/healthz`, null, { ca: material.caPem }), /ECONNREFUSED/);
  });

  it("exits 2 on bad usage, a bad config file or an unreadable certificate; --help shows examples", async () => {
    const help = await runKpull(["serve", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Serve the admission webhook.*\n\nExamples:\n/);
    const cases: [string[], RegExp][] = [
      [[], /--tls-cert and --tls-key are required/],
      [
        ["--tls-cert", material.certFile, "--tls-key", material.keyFile, "--mode", "sometimes"],
        /unknown mode "sometimes"/,
      ],
      [
        ["--tls-cert", material.certFile, "--tls-key", material.keyFile, "--mutate", "all"],
        /unknown --mutate "all"/,
      ],
      [
        ["--tls-cert", material.certFile, "--tls-key", material.keyFile, "--pin-failure", "closed"],
        /need --pin/,
      ],
      [["--tls-cert", material.certFile, "--tls-key", material.keyFile, "--port", "99999"], /invalid --port/],
      [
        [
          "--tls-cert",
          material.certFile,
          "--tls-key",
          material.keyFile,
          "--mutate",
          "always-pull-images",
          "--mode",
          "never",
        ],
        /mode never contradicts --mutate always-pull-images/,
      ],
      [
        ["--tls-cert", join(dir, "missing.pem"), "--tls-key", material.keyFile, "--port", "0"],
        /cannot use the serving certificate: .*no such file/,
      ],
      [
        ["--tls-cert", material.caFile, "--tls-key", material.keyFile, "--port", "0"],
        /cannot use the serving certificate: the key in .* does not belong/,
      ],
      [
        ["--tls-cert", material.certFile, "--tls-key", material.keyFile, "--config", join(dir, "nope.yaml")],
        /nope\.yaml: no such file/,
      ],
    ];
    const results = await Promise.all(cases.map(([args]) => runKpull(["serve", ...args])));
    for (const [i, [args, pattern]] of cases.entries()) {
      const res = results[i];
      assert.equal(res?.code, 2, `${args.join(" ")}: ${res?.stderr}`);
      assert.match(res?.stderr ?? "", pattern);
    }
  });
});
