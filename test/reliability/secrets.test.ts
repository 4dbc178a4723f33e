// Secrets never leak: runs of kpull that use credentials — from a pull secret, a Docker config.json, a
// credential helper, a kubelet credential provider plugin, an identity token; against Basic and token auth;
// succeeding and failing (a wrong password, a helper that fails and prints the secret on its stderr, a 401
// storm); kpull pull in text, JSON and YAML, resolve, manifest, start (the kubelet's events), serve --pin
// (its log, /metrics and the reviews it answers); with KPULL_DEBUG=1 — are captured whole: stdout, stderr,
// and every file they left in the store root. The test fails if any holds a password, a base64 user:password
// pair, a helper's or plugin's secret, an identity token, or a bearer token (a JWT).

import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { admissionReview, h1Request } from "../admission-helpers.ts";
import { makeTlsMaterial } from "../harness/certs.ts";
import { startFaultProxy } from "../harness/faults.ts";
import { type RunningRegistry, seedImage, startServe, tinyImage, useRegistry } from "../harness/index.ts";
import { emptyHostsDir, FULL, kpull, record, tempDir } from "./common.ts";

const tag = randomBytes(6).toString("hex");
const S = {
  basic: `kpull-basic-pw-${tag}`,
  token: `kpull-token-pw-${tag}`,
  wrong: `kpull-wrong-pw-${tag}`,
  helperLeak: `kpull-helper-leak-${tag}`,
  identity: `kpull-identity-token-${tag}`,
  registryToken: `kpull-registry-token-${tag}`,
};
const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("secrets: nothing kpull prints or writes holds a credential", { timeout: 300_000 }, () => {
  const basic = useRegistry({ auth: "basic", users: { alice: S.basic } });
  const token = useRegistry({ auth: "token", users: { bob: S.token } });
  const outputs: { run: string; text: string }[] = [];
  const roots: string[] = [];
  const image = tinyImage({ layers: [{ "etc/secret-test": "x\n" }] });
  let rb: RunningRegistry;
  let rt: RunningRegistry;
  const served: ChildProcess[] = [];

  before(async () => {
    rb = basic();
    rt = token();
    await seedImage(rb, "team/app", "v1", image);
    await seedImage(rt, "team/app", "v1", image);
  });
  after(() => {
    for (const c of served) if (c.exitCode === null) c.kill("SIGKILL");
  });

  /** Needles: the secrets in every form they could take on the way out. */
  function needles(): string[] {
    const out = [
      ...Object.values(S),
      b64(`alice:${S.basic}`),
      b64(`bob:${S.token}`),
      b64(`alice:${S.wrong}`),
      b64(S.basic),
      b64(S.token),
      b64(S.identity),
    ];
    return out;
  }
  const JWT = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}/;

  async function capture(
    name: string,
    args: string[],
    root: string | null,
    env: Record<string, string> = {},
  ) {
    if (root !== null) roots.push(root);
    const run = await kpull(args, {
      ...(root ? { root } : {}),
      env: { DOCKER_CONFIG: emptyHostsDir, ...env },
    });
    outputs.push(
      { run: `${name} (stdout)`, text: run.stdout },
      { run: `${name} (stderr)`, text: run.stderr },
    );
    return run;
  }

  function dockerConfig(auths: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
    const dir = tempDir("secrets-docker");
    writeFileSync(join(dir, "config.json"), JSON.stringify({ auths, ...extra }));
    return dir;
  }

  function pullSecret(host: string, user: string, password: string): string {
    const file = join(tempDir("secrets-ps"), "regcred.yaml");
    const config = JSON.stringify({ auths: { [host]: { auth: b64(`${user}:${password}`) } } });
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\n  namespace: default\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: ${b64(config)}\n`,
    );
    return file;
  }

  function helper(name: string, body: string): string {
    const bin = tempDir("secrets-bin");
    const file = join(bin, `docker-credential-${name}`);
    writeFileSync(file, `#!/bin/sh\n${body}\n`);
    chmodSync(file, 0o755);
    return bin;
  }

  it("pulls, resolves and fetches with every credential source, and fails, without printing a secret", async () => {
    const flags = (r: RunningRegistry) => ["--insecure-registry", r.host, "--hosts-dir", emptyHostsDir];
    const ref = (r: RunningRegistry) => `${r.host}/team/app:v1`;

    // Pull secrets, Basic and token, every output format, with KPULL_DEBUG.
    for (const [r, user, pw] of [
      [rb, "alice", S.basic],
      [rt, "bob", S.token],
    ] as const) {
      const ps = pullSecret(r.host, user, pw);
      for (const output of FULL ? ["json", "yaml", "text"] : ["json"]) {
        const run = await capture(
          `pull -o ${output} --pull-secret (${r.auth})`,
          ["pull", "-o", output, "--pull-secret", ps, ...flags(r), ref(r)],
          tempDir("secrets-root"),
          { KPULL_DEBUG: "1" },
        );
        assert.equal(run.code, 0, run.stderr);
      }
      await capture(`resolve (${r.auth})`, ["resolve", "--pull-secret", ps, ...flags(r), ref(r)], null, {
        KPULL_DEBUG: "1",
      });
      await capture(`manifest (${r.auth})`, ["manifest", "--pull-secret", ps, ...flags(r), ref(r)], null);
    }

    // config.json auths, a helper, a provider plugin, an identity token and a registry token.
    const cfg = dockerConfig({ [rb.host]: { auth: b64(`alice:${S.basic}`) } });
    assert.equal(
      (
        await capture("pull, config.json", ["pull", ...flags(rb), ref(rb)], tempDir("secrets-root"), {
          DOCKER_CONFIG: cfg,
        })
      ).code,
      0,
    );
    const okHelper = helper("rel", `cat >/dev/null; printf '{"Username":"alice","Secret":"${S.basic}"}'`);
    const helperCfg = dockerConfig({}, { credHelpers: { [rb.host]: "rel" } });
    const viaHelper = await capture(
      "pull, credential helper",
      ["pull", "-o", "json", ...flags(rb), ref(rb)],
      tempDir("secrets-root"),
      {
        DOCKER_CONFIG: helperCfg,
        PATH: `${okHelper}:${process.env.PATH}`,
      },
    );
    assert.equal(viaHelper.code, 0, viaHelper.stderr);
    const pluginBin = tempDir("secrets-plugin");
    writeFileSync(
      join(pluginBin, "rel-plugin"),
      `#!/bin/sh\ncat >/dev/null\nprintf '%s' '${JSON.stringify({
        apiVersion: "credentialprovider.kubelet.k8s.io/v1",
        kind: "CredentialProviderResponse",
        cacheKeyType: "Registry",
        auth: { [rt.host]: { username: "bob", password: S.token } },
      })}'\n`,
    );
    chmodSync(join(pluginBin, "rel-plugin"), 0o755);
    const pluginConfig = join(pluginBin, "config.yaml");
    writeFileSync(
      pluginConfig,
      `apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: rel-plugin\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    matchImages: ["${rt.host}"]\n    defaultCacheDuration: 1m\n`,
    );
    const viaPlugin = await capture(
      "pull, provider plugin",
      [
        "pull",
        "-o",
        "json",
        "--credential-provider-config",
        pluginConfig,
        "--credential-provider-bin-dir",
        pluginBin,
        ...flags(rt),
        ref(rt),
      ],
      tempDir("secrets-root"),
    );
    assert.equal(viaPlugin.code, 0, viaPlugin.stderr);
    await capture(
      "pull, identity token",
      ["pull", "-o", "json", ...flags(rt), ref(rt)],
      tempDir("secrets-root"),
      {
        DOCKER_CONFIG: dockerConfig({ [rt.host]: { identitytoken: S.identity } }),
        KPULL_DEBUG: "1",
      },
    );
    await capture(
      "pull, registry token",
      ["pull", "-o", "json", ...flags(rt), ref(rt)],
      tempDir("secrets-root"),
      {
        DOCKER_CONFIG: dockerConfig({ [rt.host]: { registrytoken: S.registryToken } }),
      },
    );

    // Failures: a wrong password, a helper that fails and prints the secret, a 401 storm.
    const wrong = await capture(
      "pull, wrong password",
      ["pull", "-o", "json", ...flags(rb), ref(rb)],
      tempDir("secrets-root"),
      {
        DOCKER_CONFIG: dockerConfig({ [rb.host]: { auth: b64(`alice:${S.wrong}`) } }),
        KPULL_DEBUG: "1",
      },
    );
    assert.equal(wrong.code, 1);
    const badHelper = helper(
      "leaky",
      `echo "helper failed for alice:${S.helperLeak}" >&2; echo "${S.helperLeak}"; exit 1`,
    );
    await capture(
      "pull, failing helper",
      ["pull", "-o", "json", ...flags(rb), ref(rb)],
      tempDir("secrets-root"),
      {
        DOCKER_CONFIG: dockerConfig({}, { credHelpers: { [rb.host]: "leaky" } }),
        PATH: `${badHelper}:${process.env.PATH}`,
      },
    );
    await capture("pull text, failing helper", ["pull", ...flags(rb), ref(rb)], tempDir("secrets-root"), {
      DOCKER_CONFIG: dockerConfig({}, { credHelpers: { [rb.host]: "leaky" } }),
      PATH: `${badHelper}:${process.env.PATH}`,
    });
    const storm = await startFaultProxy(rt, (req) =>
      req.path.startsWith("/v2/")
        ? {
            kind: "respond",
            status: 401,
            headers: {
              "www-authenticate": `Bearer realm="${rt.tokenServer?.realm}",service="${rt.tokenServer?.service}"`,
            },
          }
        : null,
    );
    try {
      await capture(
        "pull, 401 storm",
        [
          "pull",
          "-o",
          "json",
          "--insecure-registry",
          storm.host,
          "--hosts-dir",
          emptyHostsDir,
          `${storm.host}/team/app:v1`,
        ],
        tempDir("secrets-root"),
        {
          DOCKER_CONFIG: dockerConfig({ [storm.host]: { auth: b64(`bob:${S.token}`) } }),
          KPULL_DEBUG: "1",
        },
      );
    } finally {
      await storm.stop();
    }

    // kpull start: a pod with imagePullSecrets, its events as text and JSON.
    const manifests = tempDir("secrets-pod");
    writeFileSync(
      join(manifests, "pod.yaml"),
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: default\nspec:\n  imagePullSecrets: [{name: regcred}]\n  containers:\n  - name: app\n    image: ${ref(rb)}\n    imagePullPolicy: Always\n`,
    );
    writeFileSync(join(manifests, "regcred.yaml"), readFileSync(pullSecret(rb.host, "alice", S.basic)));
    writeFileSync(
      join(manifests, "wrong.yaml"),
      readFileSync(pullSecret(rb.host, "alice", S.wrong))
        .toString()
        .replace("name: regcred", "name: wrongcred"),
    );
    for (const output of ["text", "json"]) {
      const root = tempDir("secrets-root");
      await capture(
        `start -o ${output}`,
        [
          "start",
          "-o",
          output,
          "-f",
          join(manifests, "pod.yaml"),
          "-f",
          join(manifests, "regcred.yaml"),
          ...flags(rb),
        ],
        root,
      );
      // The same pod with the wrong secret: Failed events, ErrImagePull, back-off recorded in the store.
      const wrongPod = join(manifests, "pod-wrong.yaml");
      writeFileSync(
        wrongPod,
        readFileSync(join(manifests, "pod.yaml"), "utf8").replace("regcred", "wrongcred"),
      );
      await capture(
        `start -o ${output}, wrong secret`,
        ["start", "-o", output, "-f", wrongPod, "-f", join(manifests, "wrong.yaml"), ...flags(rb)],
        root,
      );
    }
  });

  it("kpull serve --pin with registry credentials: its log, /metrics and reviews hold no secret", async () => {
    const tls = makeTlsMaterial(tempDir("secrets-tls"));
    const cfg = dockerConfig({ [rb.host]: { auth: b64(`alice:${S.basic}`) } });
    const server = await startServe(
      [
        "--tls-cert",
        tls.certFile,
        "--tls-key",
        tls.keyFile,
        "--port",
        "0",
        "--address",
        "127.0.0.1",
        "--pin",
        "--docker-config",
        cfg,
        "--insecure-registry",
        rb.host,
        "--hosts-dir",
        emptyHostsDir,
      ],
      { env: { KPULL_DEBUG: "1" } },
    );
    const { child, port } = server;
    served.push(child);
    const origin = `https://127.0.0.1:${port}`;
    for (const image of [`${rb.host}/team/app:v1`, `${rb.host}/team/missing:v1`]) {
      const { body } = admissionReview({
        object: {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "p", namespace: "default" },
          spec: { containers: [{ name: "a", image }] },
        },
      });
      const answer = await h1Request(`${origin}/mutate?timeout=10s`, JSON.stringify(body), { ca: tls.caPem });
      outputs.push({
        run: `serve /mutate ${image.split("/").pop()}`,
        text: `${answer.text}\n${Buffer.from(JSON.parse(answer.text).response?.patch ?? "", "base64")}`,
      });
    }
    // The credentials were used: the tag was pinned to its digest.
    assert.ok(
      outputs.some((o) => o.run.startsWith("serve /mutate") && o.text.includes(image.manifest.digest)),
      "pinned",
    );
    const metrics = await h1Request(`${origin}/metrics`, null, { ca: tls.caPem });
    outputs.push({ run: "serve /metrics", text: metrics.text });
    child.kill("SIGTERM");
    await server.exit;
    outputs.push({ run: "serve log", text: server.output() });
    assert.match(server.output(), /listening/);
  });

  it("scan: no secret in any output or stored file", () => {
    const files: { run: string; text: string }[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        const st = statSync(p);
        if (st.isDirectory()) {
          if (name !== "blobs" && name !== "snapshots") walk(p);
        } else if (st.isFile() && st.size < 10 << 20)
          files.push({ run: `file ${p}`, text: readFileSync(p, "latin1") });
      }
    };
    for (const root of roots) {
      try {
        walk(root);
      } catch {
        // a root a failed run never created
      }
    }
    // The scanner finds what it looks for (a planted secret and a planted token are caught).
    const planted = [{ run: "control", text: `x${S.basic}x eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJib2IifQ.sig` }];
    const everything = [...planted, ...outputs, ...files];
    const hits: string[] = [];
    for (const { run, text } of everything) {
      for (const needle of needles())
        if (text.includes(needle)) hits.push(`${run}: contains ${needle.slice(0, 24)}…`);
      const jwt = JWT.exec(text);
      if (jwt) hits.push(`${run}: contains a bearer token ${jwt[0].slice(0, 24)}…`);
    }
    assert.equal(
      hits.filter((h) => h.startsWith("control:")).length,
      2,
      "the planted secret and token are found",
    );
    hits.splice(0, 2);
    const bytes = everything.reduce((n, o) => n + o.text.length, 0);
    record("secrets", {
      outputs: outputs.length,
      files: files.length,
      bytesScanned: bytes,
      needles: needles().length,
      leaks: hits.length,
    });
    if (FULL)
      console.log(`secrets: scanned ${outputs.length} outputs and ${files.length} files, ${bytes} bytes`);
    assert.ok(outputs.length > (FULL ? 40 : 30), `${outputs.length} outputs captured`);
    assert.deepEqual(hits, []);
  });
});
