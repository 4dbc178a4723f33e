// The node's Docker config: `auths`, `credsStore`, `credHelpers` and the credential helper protocol, with small
// helper scripts written into a temp dir that the `env` option puts on PATH.

import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import { type Credential, CredentialError, type CredentialLookupOptions, CredentialStore } from "./index.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const userPass = (cs: Credential[]) => cs.map((c) => `${c.username}:${c.password}`);

let root: string;
let bin: string;
let log: string;

function script(name: string, body: string): void {
  const path = join(bin, name);
  writeFileSync(path, `#!/bin/bash\n${body}\n`);
  chmodSync(path, 0o755);
}

/** A config dir holding `config`, and a store over it whose helpers find `bin` on PATH. */
function storeWith(config: unknown, extra: Partial<CredentialLookupOptions> = {}): CredentialStore {
  const dir = mkdtempSync(join(root, "cfg-"));
  writeFileSync(join(dir, "config.json"), typeof config === "string" ? config : JSON.stringify(config));
  return new CredentialStore({
    dockerConfigDir: dir,
    env: { PATH: `${bin}:/usr/bin:/bin`, HELPER_LOG: log },
    ...extra,
  });
}

function helperCalls(): string[] {
  return existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean) : [];
}

async function rejection(p: Promise<unknown>): Promise<CredentialError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CredentialError, `expected a CredentialError, got ${inspect(err)}`);
    return err;
  }
  assert.fail("expected a rejection");
}

before(() => {
  root = mkdtempSync(join(tmpdir(), "kpull-dockercfg-"));
  bin = join(root, "bin");
  mkdirSync(bin);
  log = join(root, "helper.log");
  // Logs "<name> <args> <stdin>" and answers per server key, like a real helper.
  script(
    "docker-credential-test",
    `key=$(cat)
echo "test $* $key" >> "$HELPER_LOG"
[ "$1" = get ] || exit 2
case "$key" in
  "https://index.docker.io/v1/") printf '{"ServerURL":"%s","Username":"hub-helper","Secret":"hub-helper-secret"}' "$key" ;;
  "127.0.0.1:5000") printf '{"ServerURL":"%s","Username":"<token>","Secret":"identity-tok"}' "$key" ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac`,
  );
  script(
    "docker-credential-other",
    `key=$(cat)
echo "other $* $key" >> "$HELPER_LOG"
printf '{"ServerURL":"%s","Username":"other-user","Secret":"other-secret"}' "$key"`,
  );
  script("docker-credential-hang", `cat >/dev/null; sleep 30 & echo $! > "$HELPER_LOG.pid"; wait`);
  script("docker-credential-garbage", `cat >/dev/null; echo '{"Username":"u","Secret":"hunter2-garbage"'`);
  script("docker-credential-badtype", `cat >/dev/null; echo '{"Username":"u","Secret":["hunter2-array"]}'`);
  script("docker-credential-fail", `cat >/dev/null; echo "keychain locked, hunter2-fail"; exit 3`);
  script("docker-credential-big", `cat >/dev/null; head -c 3000000 /dev/zero | tr '\\0' 'x'`);
});

after(() => rmSync(root, { recursive: true, force: true }));

describe("config.json auths", () => {
  it("auths entries: auth overrides user/password, identitytoken and registrytoken are read, source is the file", async () => {
    const s = storeWith({
      auths: {
        "registry.io": { username: "x", password: "y", auth: b64("ann:ann-pass") },
        "ghcr.io": { identitytoken: "refresh-tok" },
        "token.io": { registrytoken: "bearer-tok" },
      },
    });
    const [reg] = await s.lookup("registry.io/app");
    assert.deepEqual([reg?.username, reg?.password], ["ann", "ann-pass"]);
    assert.equal(reg?.source.kind, "docker-config");
    assert.equal(reg?.source.kind === "docker-config" && reg.source.file, s.dockerConfigFile());
    assert.equal((await s.lookup("ghcr.io/o/r"))[0]?.identityToken, "refresh-tok");
    assert.equal((await s.lookup("token.io/o/r"))[0]?.registryToken, "bearer-tok");
  });

  it("Docker Hub's https://index.docker.io/v1/ key serves docker.io images through the fallback", async () => {
    const s = storeWith({ auths: { "https://index.docker.io/v1/": { auth: b64("hub:hub-pw") } } });
    assert.deepEqual(userPass(await s.lookup("docker.io/library/nginx")), ["hub:hub-pw"]);
    assert.deepEqual(userPass(await s.lookup("registry.io/x")), []);
  });

  it("DOCKER_CONFIG, then $HOME/.docker; a missing config.json means no credentials", async () => {
    const dir = mkdtempSync(join(root, "env-"));
    writeFileSync(
      join(dir, "config.json"),
      JSON.stringify({ auths: { "registry.io": { username: "e", password: "p" } } }),
    );
    const viaEnv = new CredentialStore({ env: { DOCKER_CONFIG: dir } });
    assert.deepEqual(userPass(await viaEnv.lookup("registry.io/x")), ["e:p"]);
    const home = mkdtempSync(join(root, "home-"));
    mkdirSync(join(home, ".docker"));
    writeFileSync(
      join(home, ".docker", "config.json"),
      JSON.stringify({ auths: { "registry.io": { username: "h", password: "p" } } }),
    );
    const viaHome = new CredentialStore({ env: { HOME: home } });
    assert.deepEqual(userPass(await viaHome.lookup("registry.io/x")), ["h:p"]);
    const none = new CredentialStore({ env: { HOME: join(root, "nowhere") } });
    assert.deepEqual(await none.lookup("registry.io/x"), []);
  });

  it("malformed config.json: CredentialError naming the file, without the secret", async () => {
    const s = storeWith('{"auths":{"registry.io":{"password":"hunter2-cfg"}');
    const err = await rejection(s.lookup("registry.io/x"));
    assert.equal(err.file, s.dockerConfigFile());
    assert.ok(err.message.includes(s.dockerConfigFile() as string));
    assert.ok(!inspect(err).includes("hunter2"));
  });
});

describe("credential helpers", () => {
  it("credsStore: Docker Hub is asked for with https://index.docker.io/v1/, placeholders in auths are skipped", async () => {
    rmSync(log, { force: true });
    const s = storeWith({ auths: { "https://index.docker.io/v1/": {} }, credsStore: "test" });
    const creds = await s.lookup("docker.io/library/nginx");
    assert.deepEqual(userPass(creds), ["hub-helper:hub-helper-secret"]);
    assert.deepEqual(creds[0]?.source, { kind: "credential-helper", helper: "docker-credential-test" });
    assert.deepEqual(helperCalls(), ["test get https://index.docker.io/v1/"]);
  });

  it("other registries are asked for with host:port; Username <token> means an identity token", async () => {
    rmSync(log, { force: true });
    const s = storeWith({ credsStore: "test" });
    const [c] = await s.lookup("127.0.0.1:5000/app");
    assert.deepEqual([c?.username, c?.password, c?.identityToken], ["", "", "identity-tok"]);
    assert.deepEqual(helperCalls(), ["test get 127.0.0.1:5000"]);
  });

  it("'credentials not found' is no credential, and auths entries with real credentials still count", async () => {
    const s = storeWith({ auths: { "registry.io": { username: "a", password: "b" } }, credsStore: "test" });
    assert.deepEqual(userPass(await s.lookup("registry.io/x")), ["a:b"]);
    const empty = storeWith({ auths: { "quay.io": {} }, credsStore: "test" });
    assert.deepEqual(await empty.lookup("quay.io/x"), []);
  });

  it("the helper's answer comes before the auths entry for the same registry", async () => {
    const s = storeWith({
      auths: { "https://index.docker.io/v1/": { auth: b64("file:file-pw") } },
      credsStore: "test",
    });
    assert.deepEqual(userPass(await s.lookup("docker.io/library/nginx")), [
      "hub-helper:hub-helper-secret",
      "file:file-pw",
    ]);
  });

  it("credHelpers wins over credsStore for its registry only", async () => {
    rmSync(log, { force: true });
    const s = storeWith({ credsStore: "test", credHelpers: { "registry.io": "other" } });
    assert.deepEqual(userPass(await s.lookup("registry.io/x")), ["other-user:other-secret"]);
    assert.deepEqual(userPass(await s.lookup("docker.io/library/nginx")), ["hub-helper:hub-helper-secret"]);
    assert.deepEqual(helperCalls(), ["other get registry.io", "test get https://index.docker.io/v1/"]);
  });

  it("credHelpers keys are exact: Docker Hub's is https://index.docker.io/v1/, not docker.io", async () => {
    rmSync(log, { force: true });
    const s = storeWith({ credHelpers: { "docker.io": "other", "https://index.docker.io/v1/": "test" } });
    assert.deepEqual(userPass(await s.lookup("docker.io/library/nginx")), ["hub-helper:hub-helper-secret"]);
  });

  it('credHelpers "" turns the helper off for that registry, even with a credsStore', async () => {
    rmSync(log, { force: true });
    const s = storeWith({
      auths: { "registry.io": { username: "a", password: "b" } },
      credsStore: "test",
      credHelpers: { "registry.io": "" },
    });
    assert.deepEqual(userPass(await s.lookup("registry.io/x")), ["a:b"]);
    assert.deepEqual(helperCalls(), []);
  });

  it("a missing helper is a CredentialError naming it", async () => {
    const err = await rejection(storeWith({ credsStore: "missing" }).lookup("registry.io/x"));
    assert.equal(err.helper, "docker-credential-missing");
    assert.match(err.message, /docker-credential-missing.*not found in PATH/);
  });

  it("a helper is looked up on the env option's PATH, not the process's", async () => {
    const s = new CredentialStore({
      dockerConfigDir: mkdtempSync(join(root, "cfg-")),
      env: { PATH: "/usr/bin:/bin" },
    });
    writeFileSync(join(s.dockerConfigFile() as string), JSON.stringify({ credsStore: "test" }));
    const err = await rejection(s.lookup("registry.io/x"));
    assert.equal(err.helper, "docker-credential-test");
  });

  it("a helper that hangs is killed at the deadline, with whatever it started", async () => {
    rmSync(`${log}.pid`, { force: true });
    const started = Date.now();
    const err = await rejection(
      storeWith({ credsStore: "hang" }, { helperTimeoutMs: 300 }).lookup("registry.io/x"),
    );
    assert.ok(Date.now() - started < 5000, "bounded time");
    assert.equal(err.helper, "docker-credential-hang");
    assert.match(err.message, /300 ms/);
    const pid = Number(readFileSync(`${log}.pid`, "utf8"));
    // Killed means gone or a zombie waiting for init to reap it (which can take a while on a loaded
    // machine); a live process after 3 s means the process group was not killed.
    const dead = () => {
      try {
        return readFileSync(`/proc/${pid}/stat`, "utf8")
          .replace(/^.*\) /s, "")
          .startsWith("Z");
      } catch {
        return true;
      }
    };
    for (let waited = 0; !dead() && waited < 3000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    assert.ok(dead(), "the helper's child process must be gone");
  });

  for (const [name, secret, pattern] of [
    ["garbage", "hunter2-garbage", /malformed output/],
    ["badtype", "hunter2-array", /Secret: must be a string/],
    ["fail", "hunter2-fail", /exit status 3/],
    ["big", "xxxxxxxx", /exceeded/],
  ] as const) {
    it(`a helper whose output is bad (${name}): CredentialError without the output`, async () => {
      const err = await rejection(
        storeWith({ credsStore: name }, { maxOutputBytes: 1 << 20 }).lookup("registry.io/x"),
      );
      assert.equal(err.helper, `docker-credential-${name}`);
      assert.match(err.message, pattern);
      assert.ok(!inspect(err).includes(secret), inspect(err));
    });
  }

  it("a helper name that is a path is refused", async () => {
    const err = await rejection(storeWith({ credsStore: "../../bin/sh" }).lookup("registry.io/x"));
    assert.match(err.message, /invalid credential helper name/);
  });
});
