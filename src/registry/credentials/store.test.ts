// The order across sources (kubelet.md §2.11 and the A.9 order example): pull secrets, then the node's Docker
// config, then provider plugins, each a keyring of its own; an empty list means anonymous.

import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Credential, CredentialError, type CredentialLookupOptions, CredentialStore } from "./index.ts";

const root = mkdtempSync(join(tmpdir(), "kpull-store-"));
after(() => rmSync(root, { recursive: true, force: true }));

function secret(name: string, auths: Record<string, unknown>) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    type: "kubernetes.io/dockerconfigjson",
    stringData: { ".dockerconfigjson": JSON.stringify({ auths }) },
  };
}

/** A node with a config.json and one plugin that answers `auth`. */
function node(
  configAuths: Record<string, unknown>,
  pluginAuth: Record<string, unknown> | null,
): Partial<CredentialLookupOptions> {
  const dir = mkdtempSync(join(root, "node-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ auths: configAuths }));
  if (pluginAuth === null) return { dockerConfigDir: dir };
  const bin = join(dir, "bin");
  mkdirSync(bin);
  const answer = JSON.stringify({
    apiVersion: "credentialprovider.kubelet.k8s.io/v1",
    kind: "CredentialProviderResponse",
    cacheKeyType: "Registry",
    auth: pluginAuth,
  });
  writeFileSync(join(bin, "plug"), `#!/bin/bash\ncat >/dev/null\nprintf '%s' '${answer}'\n`);
  chmodSync(join(bin, "plug"), 0o755);
  const config = join(dir, "providers.json");
  writeFileSync(
    config,
    JSON.stringify({
      apiVersion: "kubelet.config.k8s.io/v1",
      kind: "CredentialProviderConfig",
      providers: [
        {
          name: "plug",
          matchImages: ["registry.io", "other.io", "docker.io"],
          defaultCacheDuration: "0",
          apiVersion: "credentialprovider.kubelet.k8s.io/v1",
        },
      ],
    }),
  );
  return { dockerConfigDir: dir, credentialProviderConfig: config, credentialProviderBinDir: bin };
}

const who = (cs: Credential[]) => cs.map((c) => c.username);

describe("order across sources", () => {
  it("A.9: s1 {registry.io}, s2 {registry.io/team}, node config {registry.io}, plugin {registry.io} -> s2, s1, node, plugin", async () => {
    const store = new CredentialStore({
      pullSecrets: [
        secret("s1", { "registry.io": { username: "s1", password: "p1" } }),
        secret("s2", { "registry.io/team": { username: "s2", password: "p2" } }),
      ],
      ...node(
        { "registry.io": { username: "node", password: "pn" } },
        { "registry.io": { username: "plugin", password: "pp" } },
      ),
      env: { PATH: "/usr/bin:/bin" },
    });
    const creds = await store.lookup("registry.io/team/app");
    assert.deepEqual(who(creds), ["s2", "s1", "node", "plugin"]);
    assert.deepEqual(
      creds.map((c) => c.source.kind),
      ["pull-secret", "pull-secret", "docker-config", "provider-plugin"],
    );
    // Same setup, an image nothing matches: anonymous.
    assert.deepEqual(await store.lookup("other.io/x"), []);
  });

  it("sources are separate keyrings: a specific key in a later source does not jump ahead of an earlier source", async () => {
    const store = new CredentialStore({
      pullSecrets: [secret("s", { "registry.io": { username: "secret-host", password: "p" } })],
      ...node({ "registry.io/team/app": { username: "node-specific", password: "p" } }, null),
    });
    assert.deepEqual(who(await store.lookup("registry.io/team/app")), ["secret-host", "node-specific"]);
  });

  it("the Docker Hub fallback is per source: a match in the secrets does not suppress the node's index.docker.io entry", async () => {
    const store = new CredentialStore({
      pullSecrets: [
        secret("s", {
          "docker.io": { username: "secret-docker-io", password: "p" },
          "https://index.docker.io/v1/": { username: "secret-hub", password: "p" },
        }),
      ],
      ...node(
        { "https://index.docker.io/v1/": { username: "node-hub", password: "p" } },
        { "https://index.docker.io/v1/": { username: "plugin-hub", password: "p" } },
      ),
      env: { PATH: "/usr/bin:/bin" },
    });
    assert.deepEqual(who(await store.lookup("docker.io/library/nginx")), [
      "secret-docker-io",
      "node-hub",
      "plugin-hub",
    ]);
  });

  it("a malformed pull secret fails the whole lookup, as in the kubelet", async () => {
    const bad = {
      kind: "Secret",
      type: "kubernetes.io/dockerconfigjson",
      stringData: { ".dockerconfigjson": "{" },
    };
    const store = new CredentialStore({ pullSecrets: [bad], dockerConfigDir: null });
    await assert.rejects(store.lookup("registry.io/x"), CredentialError);
  });

  it("a missing bin dir with a provider config is a CredentialError naming the config", async () => {
    const opts = node({}, {});
    const store = new CredentialStore({ ...opts, credentialProviderBinDir: undefined });
    await assert.rejects(store.lookup("registry.io/x"), (err: unknown) => {
      assert.ok(err instanceof CredentialError);
      assert.equal(err.file, opts.credentialProviderConfig);
      return true;
    });
  });
});
