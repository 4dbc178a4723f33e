// Kubelet credential provider plugins: the exec protocol, matchImages, the cache (key types and durations on an
// injected clock, calls counted in a file the plugin appends to), failures, and config validation.

import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { inspect } from "node:util";
import { type Credential, CredentialError, CredentialStore } from "./index.ts";

const V1 = "credentialprovider.kubelet.k8s.io/v1";
const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

// Records its stdin and args, optionally sleeps, prints $RESPONSE and exits with $EXIT.
const PLUGIN = `#!/bin/bash
req=$(cat)
printf '%s\\n' "$req" >> "$STATE_DIR/$PLUGIN_ID.requests"
printf '%s\\n' "$*" >> "$STATE_DIR/$PLUGIN_ID.args"
[ -n "$SLEEP" ] && sleep "$SLEEP"
printf '%s' "$RESPONSE"
exit "\${EXIT:-0}"
`;

interface Provider {
  name: string;
  matchImages?: string[];
  defaultCacheDuration?: string;
  apiVersion?: string;
  args?: string[];
  response?: unknown;
  env?: Record<string, string>;
  extra?: Record<string, unknown>;
}

function response(fields: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: V1, kind: "CredentialProviderResponse", ...fields };
}

function setup(providers: Provider[], opts: { install?: boolean; rawConfig?: string } = {}) {
  const root = mkdtempSync(join(tmpdir(), "kpull-plugins-"));
  roots.push(root);
  const binDir = join(root, "bin");
  const state = join(root, "state");
  mkdirSync(binDir);
  mkdirSync(state);
  const config = {
    apiVersion: "kubelet.config.k8s.io/v1",
    kind: "CredentialProviderConfig",
    providers: providers.map((p) => ({
      name: p.name,
      matchImages: p.matchImages ?? ["registry.io", "*.registry.io"],
      defaultCacheDuration: p.defaultCacheDuration ?? "1h",
      apiVersion: p.apiVersion ?? V1,
      ...(p.args ? { args: p.args } : {}),
      env: [
        { name: "PLUGIN_ID", value: p.name },
        {
          name: "RESPONSE",
          value:
            typeof p.response === "string"
              ? p.response
              : JSON.stringify(p.response ?? response({ cacheKeyType: "Image" })),
        },
        ...Object.entries(p.env ?? {}).map(([name, value]) => ({ name, value })),
      ],
      ...p.extra,
    })),
  };
  const configFile = join(root, "config.yaml");
  writeFileSync(configFile, opts.rawConfig ?? JSON.stringify(config, null, 2));
  if (opts.install !== false) {
    for (const p of providers) {
      writeFileSync(join(binDir, p.name), PLUGIN);
      chmodSync(join(binDir, p.name), 0o755);
    }
  }
  let now = 1_000_000;
  const warnings: string[] = [];
  const store = new CredentialStore({
    dockerConfigDir: null,
    credentialProviderConfig: configFile,
    credentialProviderBinDir: binDir,
    env: { PATH: "/usr/bin:/bin", STATE_DIR: state, PLUGIN_ID: "overridden-by-provider-env" },
    now: () => now,
    onWarning: (m) => warnings.push(m),
  });
  const lines = (name: string, kind: "requests" | "args") => {
    const f = join(state, `${name}.${kind}`);
    return existsSync(f) ? readFileSync(f, "utf8").split("\n").filter(Boolean) : [];
  };
  return {
    store,
    configFile,
    warnings,
    calls: (name: string) => lines(name, "requests").length,
    requests: (name: string) => lines(name, "requests").map((l) => JSON.parse(l)),
    args: (name: string) => lines(name, "args"),
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const userPass = (cs: Credential[]) => cs.map((c) => `${c.username}:${c.password}`);
const authFor = (key: string, username: string) => ({ [key]: { username, password: `${username}-pw` } });

describe("provider plugin exec", () => {
  it("sends the CredentialProviderRequest on stdin, with args and the provider's env; credentials tagged", async () => {
    const t = setup([
      {
        name: "ecr",
        args: ["get-credentials", "--verbose"],
        response: response({ cacheKeyType: "Image", auth: authFor("registry.io", "ecr-user") }),
      },
    ]);
    const creds = await t.store.lookup("registry.io/team/app");
    assert.deepEqual(userPass(creds), ["ecr-user:ecr-user-pw"]);
    assert.deepEqual(creds[0]?.source, { kind: "provider-plugin", plugin: "ecr" });
    assert.deepEqual(t.requests("ecr"), [
      { apiVersion: V1, kind: "CredentialProviderRequest", image: "registry.io/team/app" },
    ]);
    assert.deepEqual(t.args("ecr"), ["get-credentials --verbose"]);
  });

  it("runs only for images matchImages match (same matcher as the keyring)", async () => {
    const t = setup([
      {
        name: "p",
        matchImages: ["*.registry.io"],
        response: response({ cacheKeyType: "Image", auth: authFor("*.registry.io", "u") }),
      },
    ]);
    assert.deepEqual(await t.store.lookup("registry.io/app"), []); // label count differs
    assert.deepEqual(await t.store.lookup("other.io/app"), []);
    assert.equal(t.calls("p"), 0);
    assert.deepEqual(userPass(await t.store.lookup("eu.registry.io/app")), ["u:u-pw"]);
  });

  it("the auth map is a keyring: reverse-sorted keys, only matching keys, Docker Hub fallback", async () => {
    const t = setup([
      {
        name: "p",
        matchImages: ["registry.io", "docker.io"],
        response: response({
          cacheKeyType: "Image",
          auth: {
            ...authFor("registry.io", "host"),
            ...authFor("registry.io/team", "team"),
            ...authFor("other.io", "other"),
            ...authFor("https://index.docker.io/v1/", "hub"),
          },
        }),
      },
    ]);
    assert.deepEqual(userPass(await t.store.lookup("registry.io/team/app")), [
      "team:team-pw",
      "host:host-pw",
    ]);
    assert.deepEqual(userPass(await t.store.lookup("docker.io/library/nginx")), ["hub:hub-pw"]);
  });

  it("an earlier provider's credentials come first for the same key", async () => {
    const t = setup([
      { name: "first", response: response({ cacheKeyType: "Image", auth: authFor("registry.io", "first") }) },
      {
        name: "second",
        response: response({ cacheKeyType: "Image", auth: authFor("registry.io", "second") }),
      },
    ]);
    assert.deepEqual(userPass(await t.store.lookup("registry.io/app")), [
      "first:first-pw",
      "second:second-pw",
    ]);
  });

  it("concurrent lookups of one image share one exec", async () => {
    const t = setup([
      {
        name: "slow",
        env: { SLEEP: "0.3" },
        response: response({ cacheKeyType: "Image", cacheDuration: "0", auth: authFor("registry.io", "s") }),
      },
    ]);
    const all = await Promise.all([
      t.store.lookup("registry.io/app"),
      t.store.lookup("registry.io/app"),
      t.store.lookup("registry.io/app"),
    ]);
    assert.equal(t.calls("slow"), 1);
    for (const creds of all) assert.deepEqual(userPass(creds), ["s:s-pw"]);
  });
});

describe("provider plugin cache", () => {
  it("Registry key: other images of the registry hit the cache until the duration has passed", async () => {
    const t = setup([
      {
        name: "p",
        response: response({
          cacheKeyType: "Registry",
          cacheDuration: "10m",
          auth: authFor("registry.io", "u"),
        }),
      },
    ]);
    await t.store.lookup("registry.io/a");
    assert.deepEqual(userPass(await t.store.lookup("registry.io/b")), ["u:u-pw"]);
    assert.equal(t.calls("p"), 1);
    await t.store.lookup("eu.registry.io/c"); // another registry
    assert.equal(t.calls("p"), 2);
    t.advance(10 * 60_000); // exactly at expiry: still valid (expired means now > expiresAt)
    await t.store.lookup("registry.io/b");
    assert.equal(t.calls("p"), 2);
    t.advance(1);
    await t.store.lookup("registry.io/b");
    assert.equal(t.calls("p"), 3);
  });

  it("Image key: each image has its own entry", async () => {
    const t = setup([
      {
        name: "p",
        response: response({ cacheKeyType: "Image", cacheDuration: "1h", auth: authFor("registry.io", "u") }),
      },
    ]);
    await t.store.lookup("registry.io/a");
    await t.store.lookup("registry.io/b");
    await t.store.lookup("registry.io/a");
    assert.equal(t.calls("p"), 2);
  });

  it("Global key: one entry for every image the plugin matches; cached auth is re-matched per image", async () => {
    const t = setup([
      {
        name: "p",
        response: response({
          cacheKeyType: "Global",
          cacheDuration: "1h",
          auth: { ...authFor("registry.io", "root"), ...authFor("*.registry.io", "sub") },
        }),
      },
    ]);
    assert.deepEqual(userPass(await t.store.lookup("registry.io/a")), ["root:root-pw"]);
    assert.deepEqual(userPass(await t.store.lookup("eu.registry.io/b")), ["sub:sub-pw"]);
    assert.equal(t.calls("p"), 1);
  });

  it('cacheDuration "0" is never cached, even with a default', async () => {
    const t = setup([
      {
        name: "p",
        defaultCacheDuration: "1h",
        response: response({
          cacheKeyType: "Global",
          cacheDuration: "0s",
          auth: authFor("registry.io", "u"),
        }),
      },
    ]);
    await t.store.lookup("registry.io/a");
    await t.store.lookup("registry.io/a");
    assert.equal(t.calls("p"), 2);
  });

  it("no cacheDuration: defaultCacheDuration applies; a default of 0 means no caching", async () => {
    const cached = setup([
      {
        name: "p",
        defaultCacheDuration: "5m",
        response: response({ cacheKeyType: "Image", auth: authFor("registry.io", "u") }),
      },
    ]);
    await cached.store.lookup("registry.io/a");
    cached.advance(5 * 60_000);
    await cached.store.lookup("registry.io/a");
    assert.equal(cached.calls("p"), 1);
    cached.advance(1);
    await cached.store.lookup("registry.io/a");
    assert.equal(cached.calls("p"), 2);

    const uncached = setup([
      {
        name: "p",
        defaultCacheDuration: "0",
        response: response({ cacheKeyType: "Image", auth: authFor("registry.io", "u") }),
      },
    ]);
    await uncached.store.lookup("registry.io/a");
    await uncached.store.lookup("registry.io/a");
    assert.equal(uncached.calls("p"), 2);
  });

  it("auth: null is cached as 'no credentials' for the duration", async () => {
    const t = setup([
      { name: "p", response: response({ cacheKeyType: "Registry", cacheDuration: "1m", auth: null }) },
    ]);
    assert.deepEqual(await t.store.lookup("registry.io/a"), []);
    assert.deepEqual(await t.store.lookup("registry.io/b"), []);
    assert.equal(t.calls("p"), 1);
  });
});

describe("provider plugin failures: no credentials, a warning without the output, nothing cached", () => {
  const cases: [string, Partial<Provider>, RegExp][] = [
    [
      "non-zero exit",
      {
        env: { EXIT: "1" },
        response: response({ cacheKeyType: "Global", auth: authFor("registry.io", "hunter2") }),
      },
      /exit status 1/,
    ],
    ["not JSON", { response: '{"auth":{"registry.io":{"password":"hunter2-pw"' }, /not JSON/],
    [
      "wrong apiVersion",
      {
        response: {
          ...response({ cacheKeyType: "Global", auth: authFor("registry.io", "hunter2") }),
          apiVersion: "credentialprovider.kubelet.k8s.io/v1beta1",
        },
      },
      /apiVersion/,
    ],
    [
      "wrong kind",
      { response: { ...response({ cacheKeyType: "Global" }), kind: "CredentialProviderRequest" } },
      /kind/,
    ],
    [
      "unknown field (strict decoding)",
      { response: response({ cacheKeyType: "Global", auth: authFor("registry.io", "hunter2"), token: "x" }) },
      /unknown field "token"/,
    ],
    [
      "invalid cacheKeyType",
      { response: response({ cacheKeyType: "Node", auth: authFor("registry.io", "hunter2") }) },
      /cacheKeyType/,
    ],
    [
      "bad cacheDuration",
      {
        response: response({
          cacheKeyType: "Global",
          cacheDuration: "1d",
          auth: authFor("registry.io", "hunter2"),
        }),
      },
      /cacheDuration/,
    ],
  ];
  for (const [what, p, pattern] of cases) {
    it(what, async () => {
      const t = setup([{ name: "p", ...p }]);
      assert.deepEqual(await t.store.lookup("registry.io/a"), []);
      assert.equal(t.warnings.length, 1);
      assert.match(t.warnings[0] ?? "", pattern);
      assert.match(t.warnings[0] ?? "", /credential provider p/);
      assert.ok(!t.warnings[0]?.includes("hunter2"), t.warnings[0]);
      await t.store.lookup("registry.io/a");
      assert.equal(t.calls("p"), 2, "a failed answer is not cached");
    });
  }

  it("a plugin that hangs is killed at the timeout", async () => {
    const t = setup([{ name: "p", env: { SLEEP: "30" } }]);
    const store = new CredentialStore({
      dockerConfigDir: null,
      credentialProviderConfig: t.configFile,
      credentialProviderBinDir: join(t.configFile, "..", "bin"),
      env: { PATH: "/usr/bin:/bin", STATE_DIR: join(t.configFile, "..", "state") },
      pluginTimeoutMs: 300,
      onWarning: (m) => t.warnings.push(m),
    });
    const started = Date.now();
    assert.deepEqual(await store.lookup("registry.io/a"), []);
    assert.ok(Date.now() - started < 5000);
    assert.match(t.warnings[0] ?? "", /no answer within 300 ms/);
  });

  it("service-account token plugins are not run (kpull cannot mint tokens)", async () => {
    const t = setup([
      {
        name: "p",
        extra: {
          tokenAttributes: {
            serviceAccountTokenAudience: "aud",
            requireServiceAccount: true,
            cacheType: "Token",
          },
        },
      },
    ]);
    assert.deepEqual(await t.store.lookup("registry.io/a"), []);
    assert.equal(t.calls("p"), 0);
    assert.match(t.warnings.join("\n"), /service account token/);
  });
});

describe("CredentialProviderConfig validation: CredentialError naming the file", () => {
  async function configError(
    providers: Provider[],
    pattern: RegExp,
    opts: { install?: boolean; rawConfig?: string } = {},
  ) {
    const t = setup(providers, opts);
    let caught: unknown;
    try {
      await t.store.lookup("registry.io/a");
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof CredentialError, `expected CredentialError, got ${inspect(caught)}`);
    assert.equal(caught.file, t.configFile);
    assert.ok(caught.message.startsWith(`${t.configFile}: `), caught.message);
    assert.match(caught.message, pattern);
    return caught;
  }
  it("defaultCacheDuration is required", async () => {
    await configError(
      [{ name: "p", extra: { defaultCacheDuration: null } }],
      /defaultCacheDuration: required/,
    );
  });
  it("defaultCacheDuration must not be negative", async () => {
    await configError([{ name: "p", defaultCacheDuration: "-1m" }], /greater than or equal to 0/);
  });
  it("apiVersion must be supported", async () => {
    await configError([{ name: "p", apiVersion: "credentialprovider.kubelet.k8s.io/v2" }], /unsupported/);
  });
  it("names are unique", async () => {
    await configError([{ name: "p" }, { name: "p" }], /duplicate provider name/);
  });
  it("names are not paths", async () => {
    await configError([{ name: "../p" }], /cannot contain '\/'/, { install: false });
  });
  it("matchImages is required", async () => {
    await configError([{ name: "p", matchImages: [] }], /at least 1 item in matchImages/);
  });
  it("a missing plugin binary names the plugin", async () => {
    const err = await configError([{ name: "absent" }], /absent.*not an executable file/, { install: false });
    assert.equal(err.plugin, "absent");
  });
  it("YAML syntax errors give a position, not the line (env values may be secrets)", async () => {
    const err = await configError([{ name: "p" }], /syntax error.*line \d+, column \d+/, {
      rawConfig:
        "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: [{name: p, env: [{name: K, value: hunter2-env}]\n",
    });
    assert.ok(!err.message.includes("hunter2"));
  });
  it("a YAML config is read", async () => {
    const t = setup([{ name: "p" }], {
      rawConfig: `apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: p
    matchImages: ["registry.io"]
    defaultCacheDuration: "12h"
    apiVersion: ${V1}
    env:
      - name: PLUGIN_ID
        value: p
      - name: RESPONSE
        value: '${JSON.stringify(response({ cacheKeyType: "Image", auth: authFor("registry.io", "y") }))}'
`,
    });
    assert.deepEqual(userPass(await t.store.lookup("registry.io/a")), ["y:y-pw"]);
  });
});
