// The Credential value: the kubelet's hash, and secrets that do not leak through inspection or serialization.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { format, inspect } from "node:util";
import { credentialHash, credentialSecrets, RegistryCredential } from "./credential.ts";
import { CredentialError, REDACTED, redact } from "./errors.ts";

const sha = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

describe("credentialHash (kubelet AuthConfigHash)", () => {
  it("matches the upstream vector (kubelet.md §2.11, A.7)", () => {
    assert.equal(
      credentialHash({ username: "user", password: "password" }),
      "a55436fc140d516560d072c5fe8700385ce9f41629abf65c1edcbcb39fac691d",
    );
  });

  it("is the same for a Credential object (source and getters do not enter the hash)", () => {
    const c = new RegistryCredential({
      username: "user",
      password: "password",
      source: { kind: "docker-config", file: "/x" },
    });
    assert.equal(credentialHash(c), "a55436fc140d516560d072c5fe8700385ce9f41629abf65c1edcbcb39fac691d");
  });

  it("uses the AuthConfig field order and omits empty fields", () => {
    assert.equal(
      credentialHash({ registryToken: "r", email: "e@x", username: "u", password: "", identityToken: "i" }),
      sha('{"username":"u","email":"e@x","identitytoken":"i","registrytoken":"r"}'),
    );
  });

  it("escapes like Go's encoding/json (<, >, & and U+2028 become \\u escapes)", () => {
    assert.equal(
      credentialHash({ username: "a<b>&c", password: "p\u2028q" }),
      sha('{"username":"a\\u003cb\\u003e\\u0026c","password":"p\\u2028q"}'),
    );
  });
});

describe("Credential does not leak its secrets", () => {
  const cred = new RegistryCredential({
    username: "alice",
    password: "pw-SECRET-1",
    identityToken: "id-SECRET-2",
    registryToken: "rt-SECRET-3",
    source: { kind: "credential-helper", helper: "docker-credential-test" },
  });
  const leaks = (text: string) => /SECRET/.test(text);

  it("still hands the secrets to the code that needs them", () => {
    assert.equal(cred.password, "pw-SECRET-1");
    assert.equal(cred.identityToken, "id-SECRET-2");
    assert.equal(cred.registryToken, "rt-SECRET-3");
  });
  it("util.inspect / console.log formatting", () => {
    const shown = inspect(cred, { depth: 10, showHidden: true });
    assert.ok(!leaks(shown), shown);
    assert.match(shown, /alice/);
    assert.ok(!leaks(format("%o %O %s %j", cred, cred, cred, cred)));
    assert.ok(!leaks(inspect({ nested: [cred] }, { depth: 10 })));
  });
  it("JSON.stringify, String(), template literals", () => {
    const json = JSON.stringify({ creds: [cred] });
    assert.ok(!leaks(json), json);
    assert.deepEqual(JSON.parse(json).creds[0].password, "***");
    assert.ok(!leaks(String(cred)));
    assert.ok(!leaks(`${cred}`));
  });
  it("object spread, Object.keys/entries, structuredClone", () => {
    assert.ok(!leaks(JSON.stringify(Object.entries({ ...cred }))));
    assert.ok(!Object.keys(cred).includes("password"));
    assert.ok(!leaks(inspect(structuredClone(cred))));
  });
  it("is frozen: the password cannot be swapped for a plain property", () => {
    assert.throws(() => {
      (cred as unknown as { username: string }).username = "mallory";
    }, TypeError);
  });
});

describe("redact", () => {
  it("replaces raw, JSON-escaped and URL-encoded forms", () => {
    const secret = 'p"a ss/&';
    const text = `raw=${secret} json=${JSON.stringify(secret)} url=${encodeURIComponent(secret)} form=${new URLSearchParams({ p: secret })}`;
    const out = redact(text, [secret]);
    assert.ok(!out.includes("a ss"), out);
    assert.ok(!out.includes("a%20ss"), out);
    assert.ok(!out.includes("a+ss"), out);
    assert.ok(out.includes(REDACTED));
  });
  it("longest secret first, so an overlapping shorter secret does not reveal the rest", () => {
    assert.equal(redact("token=abcdef", ["abc", "abcdef"]), `token=${REDACTED}`);
  });
  it("ignores empty secrets and treats regex characters literally", () => {
    assert.equal(redact("a.b", ["", "."]), `a${REDACTED}b`);
    assert.equal(redact("x", []), "x");
  });
  it("credentialSecrets covers the Basic header form", () => {
    const c = new RegistryCredential({
      username: "u",
      password: "pw",
      source: { kind: "docker-config", file: "/f" },
    });
    const header = `Authorization: Basic ${Buffer.from("u:pw").toString("base64")}`;
    assert.equal(redact(header, credentialSecrets(c)), `Authorization: Basic ${REDACTED}`);
  });
});

describe("CredentialError", () => {
  it("has a stable code and the origin", () => {
    const e = new CredentialError({ helper: "docker-credential-x" }, "boom");
    assert.equal(e.code, "CredentialError");
    assert.equal(e.helper, "docker-credential-x");
    assert.ok(e instanceof Error);
  });
});
