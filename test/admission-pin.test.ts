// The pin mutation against a real registry (CNCF Distribution from the harness): tags resolved to the
// digests the registry serves, one HEAD per tag thanks to the cache, failing open or closed when the
// registry is down, the time budget when it stalls, and `kpull serve --pin` wired end to end.

import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  AdmissionHandler,
  AdmissionMetrics,
  AdmissionServer,
  defaultPolicy,
  PinCache,
  type PinFailure,
  registryDigestLookup,
} from "../src/admission/index.ts";
import { RegistryClient } from "../src/registry/index.ts";
import {
  admissionReview,
  applyPatch,
  decodePatch,
  h1Request,
  h2Session,
  type Json,
  reviewResponse,
} from "./admission-helpers.ts";
import { makeTlsMaterial } from "./harness/certs.ts";
import { freePort, seedImage, startProxy, startServe, tinyImage, useRegistry } from "./harness/index.ts";

const dir = mkdtempSync(join(tmpdir(), "kpull-admission-pin-"));
const material = makeTlsMaterial(dir);
const hostsDir = mkdtempSync(join(tmpdir(), "kpull-admission-pin-hosts-"));

function pod(images: string[]): Json {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: "shop" },
    spec: {
      containers: images.map((image, i) => ({ name: `c${i}`, image, imagePullPolicy: "IfNotPresent" })),
    },
  };
}

describe("pin against a real registry", () => {
  const registry = useRegistry();
  const app = tinyImage();
  const side = tinyImage({ layers: [{ "side.txt": "sidecar\n" }] });
  const servers: AdmissionServer[] = [];
  const clients: RegistryClient[] = [];

  before(async () => {
    await seedImage(registry(), "team/app", "v1", app);
    await seedImage(registry(), "team/side", "2", side);
  });
  after(async () => {
    for (const s of servers) await s.shutdown();
    for (const c of clients) await c.close();
  });

  async function start(failure: PinFailure, budgetMs: number) {
    const client = new RegistryClient({ hostsDir, attempts: 1, headersTimeoutMs: budgetMs });
    clients.push(client);
    const metrics = new AdmissionMetrics();
    const handler = new AdmissionHandler({
      policy: defaultPolicy({ pin: { failure, budgetMs } }),
      pinCache: new PinCache({ lookup: registryDigestLookup(client), timeoutMs: budgetMs }),
      metrics,
    });
    const server = await AdmissionServer.start({
      handler,
      metrics,
      certFile: material.certFile,
      keyFile: material.keyFile,
      port: 0,
      host: "127.0.0.1",
    });
    servers.push(server);
    return { origin: `https://127.0.0.1:${server.port}`, metrics };
  }

  it("pins each tag to the digest the registry serves, with one HEAD per tag, and the result is clean", async () => {
    const r = registry();
    const { origin, metrics } = await start("closed", 2000);
    const images = [`${r.host}/team/app:v1`, `${r.host}/team/side:2`, `${r.host}/team/app:v1`];
    const object = pod(images);
    const before = (await r.accessLog()).filter((e) => e.method === "HEAD").length;
    const { uid, body } = admissionReview({ object });
    const res = reviewResponse(
      await h1Request(`${origin}/mutate?timeout=10s`, JSON.stringify(body), { ca: material.caPem }),
      uid,
    );
    assert.equal(res.allowed, true);
    const patched = applyPatch(object, decodePatch(res));
    const containers = (patched.spec as { containers: Json[] }).containers;
    assert.deepEqual(
      containers.map((c) => c.image),
      [
        `${images[0]}@${app.manifest.digest}`,
        `${images[1]}@${side.manifest.digest}`,
        `${images[2]}@${app.manifest.digest}`,
      ],
    );
    // Pinned images may keep IfNotPresent in the default mode: no policy change was needed.
    assert.deepEqual(
      containers.map((c) => c.imagePullPolicy),
      ["IfNotPresent", "IfNotPresent", "IfNotPresent"],
    );
    const v = admissionReview({ object: patched });
    assert.equal(
      reviewResponse(
        await h1Request(`${origin}/validate`, JSON.stringify(v.body), { ca: material.caPem }),
        v.uid,
      ).allowed,
      true,
    );
    const heads = (await r.accessLog()).filter((e) => e.method === "HEAD").length - before;
    assert.equal(heads, 2, "one HEAD per distinct tag");
    // Again, over HTTP/2: the cache answers, the registry sees nothing.
    const h2 = h2Session(origin, material.caPem);
    const again = admissionReview({ object });
    const res2 = reviewResponse(await h2.request("/mutate", JSON.stringify(again.body)), again.uid);
    await h2.close();
    assert.equal(res2.patch, res.patch);
    assert.equal((await r.accessLog()).filter((e) => e.method === "HEAD").length - before, 2);
    assert.equal(metrics.pinLookups.get({ outcome: "miss" }), 3);
    assert.equal(metrics.pinLookups.get({ outcome: "hit" }), 3);
    assert.match(
      res.auditAnnotations?.pinned ?? "",
      /spec\.containers\[0\]\.image: .*team\/app:v1 -> .*@sha256:/,
    );
  });

  it("a tag the registry does not have: denied when failing closed, admitted unpinned with a warning when open", async () => {
    const r = registry();
    const object = pod([`${r.host}/team/app:nope`]);
    for (const failure of ["closed", "open"] as const) {
      const { origin } = await start(failure, 2000);
      const { uid, body } = admissionReview({ object });
      const res = reviewResponse(
        await h1Request(`${origin}/mutate`, JSON.stringify(body), { ca: material.caPem }),
        uid,
      );
      if (failure === "closed") {
        assert.equal(res.allowed, false);
        assert.equal(res.status?.code, 503);
        assert.match(
          res.status?.message ?? "",
          /container "c0": cannot resolve ".*team\/app:nope" to a digest: resolve team\/app:nope on .*: 404 NAME_UNKNOWN$/,
        );
      } else {
        assert.equal(res.allowed, true);
        // Unpinned, so the tag needs Always in the default mode: that is the only change.
        assert.deepEqual(decodePatch(res), [
          { op: "replace", path: "/spec/containers/0/imagePullPolicy", value: "Always" },
        ]);
        assert.match(
          res.warnings?.[0] ?? "",
          /^kpull pin: container "c0": cannot resolve .*; admitted unpinned$/,
        );
      }
    }
  });

  it("the registry is down: fail closed denies, fail open admits, both answer at once", async () => {
    const down = `127.0.0.1:${await freePort()}`;
    const object = pod([`${down}/team/app:v1`]);
    for (const failure of ["closed", "open"] as const) {
      const { origin } = await start(failure, 2000);
      const { uid, body } = admissionReview({ object });
      const t0 = Date.now();
      const res = reviewResponse(
        await h1Request(`${origin}/mutate`, JSON.stringify(body), { ca: material.caPem }),
        uid,
      );
      assert.ok(Date.now() - t0 < 1500, `answered in ${Date.now() - t0} ms`);
      assert.equal(res.allowed, failure === "open");
      const text = failure === "open" ? (res.warnings?.[0] ?? "") : (res.status?.message ?? "");
      assert.match(text, /ECONNREFUSED|connect|refused/i);
    }
  });

  it("the registry stalls: the answer comes within the budget (and the API server's ?timeout)", async () => {
    const r = registry();
    const proxy = await startProxy(r, [{ method: "HEAD", path: /\/manifests\//, action: { kind: "stall" } }]);
    try {
      const object = pod([`${proxy.host}/team/app:v1`]);
      for (const [failure, budget, query, limit] of [
        ["open", 300, "", 1500],
        ["closed", 5000, "?timeout=1s", 1500], // 80% of the API server's 1 s wins over the 5 s budget
      ] as const) {
        const { origin } = await start(failure, budget);
        const { uid, body } = admissionReview({ object });
        const t0 = Date.now();
        const res = reviewResponse(
          await h1Request(`${origin}/mutate${query}`, JSON.stringify(body), { ca: material.caPem }),
          uid,
        );
        const took = Date.now() - t0;
        assert.ok(took < limit, `${failure}: answered after ${took} ms`);
        assert.equal(res.allowed, failure === "open");
        const text = failure === "open" ? (res.warnings?.[0] ?? "") : (res.status?.message ?? "");
        assert.match(text, /no answer (from the registry )?within (the )?\d+ ms/);
      }
    } finally {
      await proxy.stop();
    }
  });

  it("kpull serve --pin wires the registry flags through", async () => {
    const r = registry();
    const served = await startServe([
      "--tls-cert",
      material.certFile,
      "--tls-key",
      material.keyFile,
      "--port",
      "0",
      "--address",
      "127.0.0.1",
      "--pin",
      "--pin-failure",
      "closed",
      "--pin-timeout",
      "3s",
      "--hosts-dir",
      hostsDir,
      "--docker-config",
      dir,
    ]);
    const { port } = served;
    try {
      assert.match(served.stderr(), /pin fail-closed/);
      const object = pod([`${r.host}/team/side:2`]);
      const { uid, body } = admissionReview({ object });
      const res = reviewResponse(
        await h1Request(`https://127.0.0.1:${port}/mutate`, JSON.stringify(body), { ca: material.caPem }),
        uid,
      );
      assert.deepEqual(decodePatch(res), [
        {
          op: "replace",
          path: "/spec/containers/0/image",
          value: `${r.host}/team/side:2@${side.manifest.digest}`,
        },
      ]);
    } finally {
      served.child.kill("SIGTERM");
      await served.exit;
    }
  });
});
