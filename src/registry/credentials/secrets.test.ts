// Pull secrets from files: both secret types, base64 with and without padding, `auth` overriding
// username/password, Lists and multi-document YAML, raw docker config files, and malformed input.

import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { type Credential, CredentialError, CredentialStore } from "./index.ts";

const FIXTURES = resolve(import.meta.dirname, "../../../test/fixtures/credentials");
const fx = (name: string) => join(FIXTURES, name);

function store(files: string[], warnings: string[] = [], pullSecrets?: unknown[]) {
  return new CredentialStore({
    pullSecretFiles: files,
    ...(pullSecrets ? { pullSecrets } : {}),
    dockerConfigDir: null,
    env: {},
    onWarning: (m) => warnings.push(m),
  });
}

const userPass = (cs: Credential[]) => cs.map((c) => `${c.username}:${c.password}`);

async function rejectsCleanly(p: Promise<unknown>, file: string, secret: string): Promise<CredentialError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof CredentialError, `expected a CredentialError, got ${inspect(caught)}`);
  assert.equal(caught.code, "CredentialError");
  assert.equal(caught.file, file);
  assert.ok(caught.message.includes(file), caught.message);
  assert.ok(!inspect(caught).includes(secret), `secret leaked: ${inspect(caught)}`);
  assert.ok(!String(caught.stack).includes(secret));
  return caught;
}

describe("pull secret files", () => {
  it("dockerconfigjson Secret (YAML, base64 data): auth (padded) overrides username/password; source tagged", async () => {
    const creds = await store([fx("dockerconfigjson-secret.yaml")]).lookup("registry.io/app");
    assert.deepEqual(userPass(creds), ["bob:pwd"]);
    assert.deepEqual(creds[0]?.source, {
      kind: "pull-secret",
      uid: "0b8e5a3c-1111-4f00-9c55-000000000001",
      namespace: "default",
      name: "regcred",
      file: fx("dockerconfigjson-secret.yaml"),
    });
    assert.equal(creds[0]?.email, "bob@example.com"); // kept for the kubelet's credential hash
  });

  it("dockercfg Secret (JSON, stringData, bare map): unpadded auth, password split at the first colon", async () => {
    const creds = await store([fx("dockercfg-secret.json")]).lookup("registry.io/team/app");
    assert.deepEqual(userPass(creds), ["carol:p:w1"]);
    assert.equal(creds[0]?.source.kind === "pull-secret" && creds[0].source.name, "legacy");
  });

  it("Docker Hub fallback to the index.docker.io entry, only for Docker Hub images", async () => {
    const s = store([fx("dockerconfigjson-secret.yaml")]);
    assert.deepEqual(userPass(await s.lookup("docker.io/library/nginx")), ["hub-user:hub-pass"]);
    assert.deepEqual(userPass(await s.lookup("quay.io/app")), []);
  });

  it("List, multi-document YAML, empty documents; other secret types are skipped with a warning", async () => {
    const warnings: string[] = [];
    const s = store([fx("multi.yaml")], warnings);
    assert.deepEqual(userPass(await s.lookup("registry.io/a/b")), ["erin:erin-pass"]);
    assert.deepEqual(userPass(await s.lookup("registry.io/x")), ["dave:dave-pass"]);
    await s.lookup("registry.io/x");
    assert.equal(warnings.length, 1, "one warning, said once");
    assert.match(warnings[0] ?? "", /not-a-pull-secret.*Opaque.*ignored/);
    assert.ok(!warnings[0]?.includes("opaque-value"));
  });

  it("all secrets form one keyring: more specific keys first across files, then file order", async () => {
    const s = store([fx("dockerconfigjson-secret.yaml"), fx("dockercfg-secret.json"), fx("multi.yaml")]);
    assert.deepEqual(userPass(await s.lookup("registry.io/team/app")), ["carol:p:w1", "bob:pwd"]);
    assert.deepEqual(userPass(await s.lookup("registry.io/a/b")), ["erin:erin-pass", "bob:pwd"]);
  });

  it("a raw docker config.json: scheme and /v1/, /v2/ stripped from keys; credsStore ignored with a warning", async () => {
    const warnings: string[] = [];
    const s = store([fx("raw-config.json")], warnings);
    const creds = await s.lookup("example.com/team/app");
    assert.deepEqual(userPass(creds), ["frank:frank-pass", "grace:grace-pass"]);
    assert.deepEqual(creds[0]?.source, {
      kind: "pull-secret",
      uid: null,
      namespace: null,
      name: null,
      file: fx("raw-config.json"),
    });
    assert.deepEqual(userPass(await s.lookup("example.com/other")), ["grace:grace-pass"]);
    assert.match(warnings.join("\n"), /credsStore/);
  });

  it("a raw .dockercfg map file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kpull-cred-"));
    const file = join(dir, ".dockercfg");
    writeFileSync(file, JSON.stringify({ "registry.io": { username: "u", password: "p" } }));
    assert.deepEqual(userPass(await store([file]).lookup("registry.io/x")), ["u:p"]);
  });

  it("secrets given as objects (in memory) come after the files", async () => {
    const secret = {
      kind: "Secret",
      type: "kubernetes.io/dockerconfigjson",
      metadata: { name: "mem", namespace: "ns", uid: "u-mem" },
      stringData: {
        ".dockerconfigjson": JSON.stringify({ auths: { "registry.io": { username: "m", password: "mp" } } }),
      },
    };
    const creds = await store([fx("dockerconfigjson-secret.yaml")], [], [secret]).lookup("registry.io/x");
    assert.deepEqual(userPass(creds), ["bob:pwd", "m:mp"]);
    assert.equal(creds[1]?.source.kind === "pull-secret" && creds[1].source.file, null);
  });

  it("identitytoken/registrytoken in a secret are not read (the kubelet ignores them)", async () => {
    const secret = {
      kind: "Secret",
      type: "kubernetes.io/dockerconfigjson",
      stringData: {
        ".dockerconfigjson": JSON.stringify({
          auths: { "registry.io": { username: "u", password: "p", identitytoken: "tok" } },
        }),
      },
    };
    const [c] = await store([], [], [secret]).lookup("registry.io/x");
    assert.equal(c?.identityToken, undefined);
  });

  it("JSON field names match case-insensitively, as Go's encoding/json does", async () => {
    const secret = {
      kind: "Secret",
      type: "kubernetes.io/dockerconfigjson",
      stringData: {
        ".dockerconfigjson": JSON.stringify({ Auths: { "registry.io": { Username: "U", Password: "P" } } }),
      },
    };
    assert.deepEqual(userPass(await store([], [], [secret]).lookup("registry.io/x")), ["U:P"]);
  });

  it("stringData wins over data for the same key", async () => {
    const secret = {
      kind: "Secret",
      type: "kubernetes.io/dockerconfigjson",
      data: {
        ".dockerconfigjson": Buffer.from(
          JSON.stringify({ auths: { "registry.io": { username: "old", password: "o" } } }),
        ).toString("base64"),
      },
      stringData: {
        ".dockerconfigjson": JSON.stringify({ auths: { "registry.io": { username: "new", password: "n" } } }),
      },
    };
    assert.deepEqual(userPass(await store([], [], [secret]).lookup("registry.io/x")), ["new:n"]);
  });
});

describe("malformed pull secrets: CredentialError naming the file, no secret in the message", () => {
  it("invalid JSON inside .dockerconfigjson", async () => {
    await rejectsCleanly(
      store([fx("malformed-json.yaml")]).lookup("registry.io/x"),
      fx("malformed-json.yaml"),
      "hunter2-leak",
    );
  });
  it("YAML syntax error on the line holding the password", async () => {
    const err = await rejectsCleanly(
      store([fx("malformed-yaml.yaml")]).lookup("registry.io/x"),
      fx("malformed-yaml.yaml"),
      "hunter2-leak",
    );
    assert.match(err.message, /line \d+/);
  });
  it("auth with wrong padding (Go's base64 rejects what a lenient decoder would accept)", async () => {
    const err = await rejectsCleanly(
      store([fx("bad-auth.yaml")]).lookup("registry.io/x"),
      fx("bad-auth.yaml"),
      "hunter2-leak",
    );
    assert.match(err.message, /auth/);
  });
  it("data that is not base64", async () => {
    await rejectsCleanly(
      store([fx("bad-data.yaml")]).lookup("registry.io/x"),
      fx("bad-data.yaml"),
      "hunter2-leak",
    );
  });
  it("auth without a colon", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kpull-cred-"));
    const file = join(dir, "nocolon.json");
    const auth = Buffer.from("hunter2-leak").toString("base64");
    writeFileSync(file, JSON.stringify({ auths: { "registry.io": { auth } } }));
    const err = await rejectsCleanly(store([file]).lookup("registry.io/x"), file, "hunter2-leak");
    assert.ok(!err.message.includes(auth));
  });
  it("a value of the wrong type", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kpull-cred-"));
    const file = join(dir, "type.json");
    writeFileSync(file, JSON.stringify({ auths: { "registry.io": { username: "u", password: 12345 } } }));
    const err = await rejectsCleanly(store([file]).lookup("registry.io/x"), file, "12345");
    assert.match(err.message, /password/);
  });
  it("a missing file", async () => {
    await rejectsCleanly(
      store([fx("does-not-exist.yaml")]).lookup("registry.io/x"),
      fx("does-not-exist.yaml"),
      "x-no-secret-x",
    );
  });
  it("a huge file is refused without reading it all", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kpull-cred-"));
    const file = join(dir, "huge.yaml");
    writeFileSync(file, Buffer.alloc(5 * 1024 * 1024, 0x20));
    const err = await rejectsCleanly(store([file]).lookup("registry.io/x"), file, "x-no-secret-x");
    assert.match(err.message, /larger than/);
  });
});
