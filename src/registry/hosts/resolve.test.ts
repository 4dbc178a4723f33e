import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, it } from "node:test";
import { HostsConfigError, type RegistryHost, resolveHosts } from "./index.ts";

const FIXTURES = resolve(import.meta.dirname, "../../../test/fixtures/hosts");
const PEM = (name: string) => readFileSync(join(FIXTURES, "pem", name), "utf8");
const CA = PEM("ca.crt");
const CLIENT_CERT = PEM("client.cert");
const CLIENT_KEY = PEM("client.key");

const temps: string[] = [];
after(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

/** A hosts directory built from { "relative/path": contents }. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "kpull-hosts-"));
  temps.push(root);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  return root;
}

/** The fields that decide where and how a request goes, without PEM noise. */
function brief(h: RegistryHost) {
  return `${h.scheme}://${h.host}${h.path} [${h.capabilities.join(",")}]${h.isMirror ? " mirror" : ""}${
    h.tls.skipVerify ? " skip-verify" : ""
  }${h.httpFallback ? " http-fallback" : ""}`;
}

async function briefs(domain: string, hostsDir: string, insecureRegistries?: string[]): Promise<string[]> {
  return (
    await resolveHosts(domain, { hostsDir, ...(insecureRegistries ? { insecureRegistries } : {}) })
  ).map(brief);
}

async function configError(p: Promise<unknown>, file: string, reason: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HostsConfigError, `expected HostsConfigError, got ${String(err)}`);
    assert.equal(err.code, "HostsConfigError");
    assert.equal(err.file, file);
    assert.ok(err.message.includes(file), `message names the file: ${err.message}`);
    assert.match(err.message, reason);
    return true;
  });
}

const NONE = "/nonexistent/kpull-hosts-dir";

describe("resolveHosts without configuration", () => {
  it("serves docker.io from registry-1.docker.io over verified https with every capability", async () => {
    const [hub, ...rest] = await resolveHosts("docker.io", { hostsDir: NONE });
    assert.equal(rest.length, 0);
    assert.deepEqual(hub, {
      host: "registry-1.docker.io",
      scheme: "https",
      path: "/v2",
      capabilities: ["pull", "resolve", "push"],
      tls: { ca: [], clientPairs: [], skipVerify: false },
      headers: {},
      isMirror: false,
      httpFallback: false,
    });
  });

  it("serves every other domain from itself, https with verification, whatever its port", async () => {
    assert.deepEqual(await briefs("gcr.io", NONE), ["https://gcr.io/v2 [pull,resolve,push]"]);
    assert.deepEqual(await briefs("myregistry.local:5000", NONE), [
      "https://myregistry.local:5000/v2 [pull,resolve,push]",
    ]);
    // [::1] without a port is not loopback for containerd (SplitHostPort fails, ParseIP rejects brackets).
    assert.deepEqual(await briefs("[::1]", NONE), ["https://[::1]/v2 [pull,resolve,push]"]);
  });

  it("applies the loopback rule: no port or 443 → https unverified; 80 → http; other → https then http", async () => {
    assert.deepEqual(await briefs("localhost", NONE), [
      "https://localhost/v2 [pull,resolve,push] skip-verify",
    ]);
    assert.deepEqual(await briefs("localhost:443", NONE), [
      "https://localhost:443/v2 [pull,resolve,push] skip-verify",
    ]);
    assert.deepEqual(await briefs("127.0.0.1:80", NONE), ["http://127.0.0.1:80/v2 [pull,resolve,push]"]);
    assert.deepEqual(await briefs("127.0.0.1:5000", NONE), [
      "https://127.0.0.1:5000/v2 [pull,resolve,push] skip-verify http-fallback",
    ]);
    assert.deepEqual(await briefs("[::1]:5000", NONE), [
      "https://[::1]:5000/v2 [pull,resolve,push] skip-verify http-fallback",
    ]);
  });

  it("treats a missing hosts directory and an empty path list as no configuration", async () => {
    assert.deepEqual(await briefs("docker.io", ""), ["https://registry-1.docker.io/v2 [pull,resolve,push]"]);
  });

  it("refuses a domain the reference grammar does not allow (it would escape the hosts directory)", async () => {
    for (const bad of ["../etc", "a/b", "", "_default", "docker.io/../x"]) {
      await assert.rejects(resolveHosts(bad, { hostsDir: NONE }), TypeError, bad);
    }
  });
});

describe("resolveHosts with the committed certs.d fixture (spec §5.1 example)", () => {
  const hostsDir = join(FIXTURES, "certs.d");

  it("tries the mirrors in file order, then the server, each with its capabilities", async () => {
    assert.deepEqual(await briefs("docker.io", hostsDir), [
      "https://mirror.internal/v2 [pull,resolve] mirror",
      "https://public-mirror.example.com/v2 [pull] mirror",
      "https://registry-1.docker.io/v2 [pull,resolve,push]",
    ]);
  });

  it("lets a caller pick resolve hosts and push hosts by capability", async () => {
    const hosts = await resolveHosts("docker.io", { hostsDir });
    // A public mirror must not be trusted to map tags: it is skipped for resolve but used for pulls.
    assert.deepEqual(
      hosts.filter((h) => h.capabilities.includes("resolve")).map((h) => h.host),
      ["mirror.internal", "registry-1.docker.io"],
    );
    assert.deepEqual(
      hosts.filter((h) => h.capabilities.includes("pull")).map((h) => h.host),
      ["mirror.internal", "public-mirror.example.com", "registry-1.docker.io"],
    );
    assert.equal(hosts.find((h) => h.capabilities.includes("push"))?.host, "registry-1.docker.io");
  });

  it("loads the mirror's CA from a path relative to hosts.toml, and only for that mirror", async () => {
    const [internal, pub, hub] = await resolveHosts("docker.io", { hostsDir });
    assert.equal(internal?.tls.ca.length, 1);
    assert.equal(internal?.tls.ca[0]?.trim(), CA.trim());
    assert.deepEqual(pub?.tls.ca, []);
    assert.deepEqual(hub?.tls.ca, []);
  });

  it("keeps root [header] for the server and per-host headers for their mirror only", async () => {
    const [internal, pub, hub] = await resolveHosts("docker.io", { hostsDir });
    assert.deepEqual(internal?.headers, { "x-mirror": ["internal", "1"] });
    assert.deepEqual(pub?.headers, {});
    assert.deepEqual(hub?.headers, { "x-upstream": ["hub"] });
  });

  it("uses no configuration for a domain without a directory (and no _default)", async () => {
    assert.deepEqual(await briefs("quay.io", hostsDir), ["https://quay.io/v2 [pull,resolve,push]"]);
  });
});

describe("host directory lookup (containerd hostPaths)", () => {
  const mirror = (name: string) => `[host."https://${name}"]\n`;

  it("prefers host_port_ over host:port, and uses host:port when that is all there is", async () => {
    const both = tree({
      "127.0.0.1_5000_/hosts.toml": mirror("underscore.example"),
      "127.0.0.1:5000/hosts.toml": mirror("colon.example"),
    });
    assert.equal((await resolveHosts("127.0.0.1:5000", { hostsDir: both }))[0]?.host, "underscore.example");
    const colon = tree({ "127.0.0.1:5000/hosts.toml": mirror("colon.example") });
    assert.equal((await resolveHosts("127.0.0.1:5000", { hostsDir: colon }))[0]?.host, "colon.example");
  });

  it("names an IPv6 host's directory by its last colon: [::1]:5000 → [::1]_5000_", async () => {
    const dir = tree({ "[::1]_5000_/hosts.toml": mirror("v6.example") });
    assert.deepEqual(await briefs("[::1]:5000", dir), [
      "https://v6.example/v2 [pull,resolve,push] mirror",
      "https://[::1]:5000/v2 [pull,resolve,push] skip-verify http-fallback",
    ]);
  });

  it("falls back to _default for hosts without a directory, and a host's own directory wins", async () => {
    const dir = tree({
      "_default/hosts.toml": mirror("catch-all.example"),
      "docker.io/hosts.toml": mirror("hub-mirror.example"),
    });
    assert.deepEqual(await briefs("ghcr.io", dir), [
      "https://catch-all.example/v2 [pull,resolve,push] mirror",
      "https://ghcr.io/v2 [pull,resolve,push]",
    ]);
    assert.equal((await resolveHosts("docker.io", { hostsDir: dir }))[0]?.host, "hub-mirror.example");
  });

  it("searches several roots joined with ':' in order, each root's _default before the next root", async () => {
    const a = tree({ "_default/hosts.toml": mirror("a-default.example") });
    const b = tree({ "docker.io/hosts.toml": mirror("b-hub.example") });
    const c = tree({ "docker.io/hosts.toml": mirror("c-hub.example") });
    assert.equal(
      (await resolveHosts("docker.io", { hostsDir: `${NONE}:${b}:${c}` }))[0]?.host,
      "b-hub.example",
    );
    assert.equal((await resolveHosts("docker.io", { hostsDir: `${a}:${b}` }))[0]?.host, "a-default.example");
  });

  it("reads the files on every call, so edits apply without a restart", async () => {
    const dir = tree({ "docker.io/hosts.toml": mirror("one.example") });
    assert.equal((await resolveHosts("docker.io", { hostsDir: dir }))[0]?.host, "one.example");
    writeFileSync(join(dir, "docker.io/hosts.toml"), mirror("two.example"));
    assert.equal((await resolveHosts("docker.io", { hostsDir: dir }))[0]?.host, "two.example");
  });
});

describe("hosts.toml fields", () => {
  const one = (toml: string, domain = "registry.example.com") =>
    briefs(domain, tree({ [`${domain}/hosts.toml`]: toml }));

  it("reads server and host URLs without a scheme as https, and keeps http:// as plain http", async () => {
    assert.deepEqual(
      await one(
        'server = "upstream.example:5000"\n[host."mirror.example:8443"]\n[host."http://plain.example:8080"]\n',
      ),
      [
        "https://mirror.example:8443/v2 [pull,resolve,push] mirror",
        "http://plain.example:8080/v2 [pull,resolve,push] mirror",
        "https://upstream.example:5000/v2 [pull,resolve,push]",
      ],
    );
  });

  it("keeps the server even when it names another host, and keeps :443 as written", async () => {
    assert.deepEqual(await one('server = "https://other.example:443"\n'), [
      "https://other.example:443/v2 [pull,resolve,push]",
    ]);
  });

  it("appends /v2 to a URL path unless it ends with /v2 or override_path is set", async () => {
    assert.deepEqual(
      await one(
        [
          '[host."https://a.example/registry"]',
          '[host."https://b.example/proxy/v2/"]',
          '[host."https://c.example/api/docker"]',
          "  override_path = true",
          '[host."https://d.example/"]',
          '[host."https://e.example/x/../y//z"]',
          "",
        ].join("\n"),
      ),
      [
        "https://a.example/registry/v2 [pull,resolve,push] mirror",
        "https://b.example/proxy/v2 [pull,resolve,push] mirror",
        "https://c.example/api/docker [pull,resolve,push] mirror",
        "https://d.example/v2 [pull,resolve,push] mirror",
        "https://e.example/y/z/v2 [pull,resolve,push] mirror",
        "https://registry.example.com/v2 [pull,resolve,push]",
      ],
    );
  });

  it("ignores root capabilities and override_path when there is no server (containerd defaults the upstream)", async () => {
    assert.deepEqual(await one('capabilities = ["pull"]\noverride_path = true\n'), [
      "https://registry.example.com/v2 [pull,resolve,push]",
    ]);
    assert.deepEqual(
      await one('server = "https://s.example/root"\ncapabilities = ["pull"]\noverride_path = true\n'),
      ["https://s.example/root [pull]"],
    );
  });

  it("reads capabilities case-insensitively, in canonical order; empty or omitted means all", async () => {
    assert.deepEqual(
      await one(
        [
          '[host."https://a.example"]',
          '  capabilities = ["RESOLVE", "pull"]',
          '[host."https://b.example"]',
          "  capabilities = []",
          '[host."https://c.example"]',
          '  capabilities = ["push"]',
          '[host."https://d.example"]',
          '  capabilities = ["referrers"]',
          "",
        ].join("\n"),
      ),
      [
        "https://a.example/v2 [pull,resolve] mirror",
        "https://b.example/v2 [pull,resolve,push] mirror",
        "https://c.example/v2 [push] mirror",
        "https://d.example/v2 [] mirror",
        "https://registry.example.com/v2 [pull,resolve,push]",
      ],
    );
  });

  it("sets skip_verify per host without turning an https host into a fallback one", async () => {
    assert.deepEqual(
      await one('[host."https://a.example"]\n  skip_verify = true\n[host."https://b.example"]\n'),
      [
        "https://a.example/v2 [pull,resolve,push] mirror skip-verify",
        "https://b.example/v2 [pull,resolve,push] mirror",
        "https://registry.example.com/v2 [pull,resolve,push]",
      ],
    );
  });

  it("tries HTTPS first on an http:// host with TLS settings unless its port is 80", async () => {
    const dir = tree({
      "r.example/ca.crt": CA,
      "r.example/hosts.toml": [
        '[host."http://with-ca.example:5000"]',
        '  ca = "ca.crt"',
        '[host."http://skip-false.example:5000"]',
        "  skip_verify = false", // set at all counts as TLS configuration in containerd
        '[host."http://no-port.example"]',
        "  skip_verify = true",
        '[host."http://port-80.example:80"]',
        "  skip_verify = true",
        '[host."http://empty-ca.example:5000"]',
        "  ca = []", // a non-nil empty list in Go: still TLS configured
        '[host."http://empty-client.example:5000"]',
        "  client = []", // nothing appended: not configured
        '[host."http://plain.example:5000"]',
        "",
      ].join("\n"),
    });
    assert.deepEqual(await briefs("r.example", dir), [
      "https://with-ca.example:5000/v2 [pull,resolve,push] mirror http-fallback",
      "https://skip-false.example:5000/v2 [pull,resolve,push] mirror http-fallback",
      "https://no-port.example/v2 [pull,resolve,push] mirror skip-verify http-fallback",
      "http://port-80.example:80/v2 [pull,resolve,push] mirror skip-verify",
      "https://empty-ca.example:5000/v2 [pull,resolve,push] mirror http-fallback",
      "http://empty-client.example:5000/v2 [pull,resolve,push] mirror",
      "http://plain.example:5000/v2 [pull,resolve,push] mirror",
      "https://r.example/v2 [pull,resolve,push]",
    ]);
  });

  it("applies root settings to the defaulted upstream, and the loopback rule still wins on skip_verify", async () => {
    const dir = tree({
      "localhost:5000/hosts.toml": 'skip_verify = false\n[header]\n  x-a = "1"\n',
      "docker.io/hosts.toml": `ca = ${JSON.stringify(join(FIXTURES, "pem", "ca.crt"))}\n`,
    });
    const [local] = await resolveHosts("localhost:5000", { hostsDir: dir });
    assert.equal(
      brief(local as RegistryHost),
      "https://localhost:5000/v2 [pull,resolve,push] skip-verify http-fallback",
    );
    assert.deepEqual(local?.headers, { "x-a": ["1"] });
    const [hub] = await resolveHosts("docker.io", { hostsDir: dir });
    assert.equal(brief(hub as RegistryHost), "https://registry-1.docker.io/v2 [pull,resolve,push]");
    assert.equal(hub?.tls.ca[0]?.trim(), CA.trim()); // absolute ca path used as is
  });

  it("reads header values given as a string or a list, and keeps names as written", async () => {
    const [m] = await resolveHosts("r.example", {
      hostsDir: tree({
        "r.example/hosts.toml":
          '[host."https://m.example".header]\n  X-Token = "t"\n  accept-x = ["a", "b"]\n',
      }),
    });
    assert.deepEqual(m?.headers, { "X-Token": ["t"], "accept-x": ["a", "b"] });
  });

  it("parses dial_timeout as a Go duration", async () => {
    const hosts = await resolveHosts("r.example", {
      hostsDir: tree({
        "r.example/hosts.toml":
          'dial_timeout = "1m30.5s"\n[host."https://m.example"]\n  dial_timeout = "250ms"\n',
      }),
    });
    assert.deepEqual(
      hosts.map((h) => h.dialTimeoutMs),
      [250, 90_500],
    );
  });

  it("ignores fields it does not know, as containerd does", async () => {
    assert.deepEqual(
      await one('future_field = 1\n[host."https://m.example"]\n  also_unknown = { a = 1 }\n'),
      [
        "https://m.example/v2 [pull,resolve,push] mirror",
        "https://registry.example.com/v2 [pull,resolve,push]",
      ],
    );
  });
});

describe("TLS material", () => {
  it("loads ca given as a list of relative and absolute paths, one PEM per certificate", async () => {
    const dir = tree({
      "r.example/certs/one.crt": CA,
      "r.example/bundle.pem": `${CA}\n# comment between blocks\n${CA}`,
      "r.example/hosts.toml": `[host."https://m.example"]\n  ca = ["certs/one.crt", "bundle.pem", ${JSON.stringify(join(FIXTURES, "pem", "ca.crt"))}]\n`,
    });
    const [m] = await resolveHosts("r.example", { hostsDir: dir });
    assert.equal(m?.tls.ca.length, 4);
    for (const pem of m?.tls.ca ?? []) assert.equal(pem.trim(), CA.trim());
  });

  it("names a missing CA file", async () => {
    const dir = tree({ "r.example/hosts.toml": '[host."https://m.example"]\n  ca = "missing.crt"\n' });
    await configError(
      resolveHosts("r.example", { hostsDir: dir }),
      join(dir, "r.example", "missing.crt"),
      /ENOENT/,
    );
  });

  it("refuses a CA file without a certificate, and one that is not a regular file", async () => {
    const dir = tree({
      "r.example/junk.crt": "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
      "r.example/hosts.toml":
        '[host."https://m.example"]\n  ca = "junk.crt"\n[host."https://n.example"]\n  ca = "sub"\n',
      "r.example/sub/x": "",
    });
    await configError(
      resolveHosts("r.example", { hostsDir: dir }),
      join(dir, "r.example", "junk.crt"),
      /no PEM certificate/,
    );
    writeFileSync(join(dir, "r.example", "junk.crt"), CA);
    await configError(
      resolveHosts("r.example", { hostsDir: dir }),
      join(dir, "r.example", "sub"),
      /not a regular file/,
    );
  });

  it("does not hang on a FIFO named as a CA file", { timeout: 10_000 }, async (t) => {
    const dir = tree({ "r.example/hosts.toml": 'ca = "fifo.crt"\n' });
    try {
      execFileSync("mkfifo", [join(dir, "r.example", "fifo.crt")]);
    } catch {
      t.skip("mkfifo not available");
      return;
    }
    await configError(
      resolveHosts("r.example", { hostsDir: dir }),
      join(dir, "r.example", "fifo.crt"),
      /not a regular file/,
    );
  });

  it("loads client certificates: one combined file, or [cert, key] pairs", async () => {
    const dir = tree({
      "r.example/combined.pem": `${CLIENT_CERT}${CLIENT_KEY}`,
      "r.example/c.cert": CLIENT_CERT,
      "r.example/c.key": CLIENT_KEY,
      "r.example/hosts.toml": [
        '[host."https://a.example"]',
        '  client = "combined.pem"',
        '[host."https://b.example"]',
        '  client = [["c.cert", "c.key"], "combined.pem"]',
        "",
      ].join("\n"),
    });
    const [a, b, upstream] = await resolveHosts("r.example", { hostsDir: dir });
    assert.equal(a?.tls.cert?.trim(), CLIENT_CERT.trim());
    assert.equal(a?.tls.key?.trim(), CLIENT_KEY.trim());
    assert.equal(b?.tls.clientPairs.length, 2);
    assert.equal(b?.tls.cert?.trim(), CLIENT_CERT.trim());
    assert.equal(b?.tls.key?.trim(), CLIENT_KEY.trim());
    assert.equal(upstream?.tls.cert, undefined);
    assert.deepEqual(upstream?.tls.clientPairs, []);
  });

  it("refuses a client key that does not match the certificate, naming the key file", async () => {
    const dir = tree({
      "r.example/c.cert": CLIENT_CERT,
      "r.example/wrong.key": PEM("other.key"),
      "r.example/hosts.toml": 'client = [["c.cert", "wrong.key"]]\n',
    });
    await configError(
      resolveHosts("r.example", { hostsDir: dir }),
      join(dir, "r.example", "wrong.key"),
      /does not match/,
    );
  });

  it("refuses a client file with a certificate but no key", async () => {
    const dir = tree({ "r.example/c.cert": CLIENT_CERT, "r.example/hosts.toml": 'client = "c.cert"\n' });
    await configError(
      resolveHosts("r.example", { hostsDir: dir }),
      join(dir, "r.example", "c.cert"),
      /no PEM private key/,
    );
  });

  it("uses Docker's certs.d layout when there is no hosts.toml (or an empty one)", async () => {
    for (const hostsToml of [undefined, ""]) {
      const dir = tree({
        "r.example:5000/ca.crt": CA,
        "r.example:5000/client.cert": CLIENT_CERT,
        "r.example:5000/client.key": CLIENT_KEY,
        "r.example:5000/notes.txt": "ignored",
        ...(hostsToml === undefined ? {} : { "r.example:5000/hosts.toml": hostsToml }),
      });
      const hosts = await resolveHosts("r.example:5000", { hostsDir: dir });
      assert.deepEqual(hosts.map(brief), ["https://r.example:5000/v2 [pull,resolve,push]"]);
      assert.equal(hosts[0]?.tls.ca[0]?.trim(), CA.trim());
      assert.equal(hosts[0]?.tls.key?.trim(), CLIENT_KEY.trim());
    }
  });
});

describe("insecure registries", () => {
  it("lets a listed host skip verification and fall back to http; others stay verified https", async () => {
    assert.deepEqual(await briefs("registry.internal:5000", NONE, ["registry.internal:5000"]), [
      "https://registry.internal:5000/v2 [pull,resolve,push] skip-verify http-fallback",
    ]);
    assert.deepEqual(await briefs("registry.internal:5000", NONE, ["registry.internal"]), [
      "https://registry.internal:5000/v2 [pull,resolve,push]",
    ]);
  });

  it("matches case-insensitively, ignores a scheme, and matches the domain for the upstream entry", async () => {
    assert.deepEqual(await briefs("docker.io", NONE, ["HTTP://Docker.IO/"]), [
      "https://registry-1.docker.io/v2 [pull,resolve,push] skip-verify http-fallback",
    ]);
  });

  it("applies to mirror entries by the mirror's host, and leaves plain-http entries plain", async () => {
    const dir = tree({
      "docker.io/hosts.toml":
        '[host."https://cache.lan:5000"]\n[host."http://plain.lan:8080"]\n[host."https://other.lan"]\n',
    });
    assert.deepEqual(await briefs("docker.io", dir, ["cache.lan:5000", "plain.lan:8080"]), [
      "https://cache.lan:5000/v2 [pull,resolve,push] mirror skip-verify http-fallback",
      "http://plain.lan:8080/v2 [pull,resolve,push] mirror skip-verify",
      "https://other.lan/v2 [pull,resolve,push] mirror",
      "https://registry-1.docker.io/v2 [pull,resolve,push]",
    ]);
  });
});

describe("bad configuration → HostsConfigError naming the file", () => {
  const cases: [string, string, RegExp][] = [
    ["malformed TOML", 'server = "https://x\n', /line 1/],
    ["duplicate table", '[host."https://a"]\n[host."https://a"]\n', /line 2/],
    ["server not a string", "server = 5\n", /"server" must be a string, not integer/],
    ["host not a table", 'host = "https://a"\n', /"host" must be a table/],
    ["host entry not a table", 'host."https://a" = 1\n', /must be a table, not integer/],
    [
      "capabilities not an array",
      '[host."https://a"]\ncapabilities = "pull"\n',
      /capabilities" must be an array/,
    ],
    [
      "capability not a string",
      '[host."https://a"]\ncapabilities = ["pull", 1]\n',
      /capabilities" must be an array/,
    ],
    [
      "unknown capability",
      '[host."https://a"]\ncapabilities = ["pull", "delete"]\n',
      /unknown capability "delete"/,
    ],
    ["skip_verify not a boolean", 'skip_verify = "yes"\n', /"skip_verify" must be a boolean, not string/],
    [
      "override_path not a boolean",
      '[host."https://a"]\noverride_path = 1\n',
      /override_path" must be a boolean/,
    ],
    ["ca not a path", "ca = 1\n", /"ca" must be a path/],
    ["ca list with a number", 'ca = ["a.crt", 2]\n', /"ca" must hold strings/],
    ["client pair of three", 'client = [["a", "b", "c"]]\n', /a pair must be \[cert, key\]/],
    ["client entry a table", "client = [{ a = 1 }]\n", /"client" entries must be paths/],
    ["header not a table", 'header = "x"\n', /"header" must be a table/],
    ["header value a number", "[header]\nx = 1\n", /"header" "x" must be a string or an array/],
    ["dial_timeout not a duration", 'dial_timeout = "soon"\n', /invalid duration "soon"/],
    ["dial_timeout without unit", 'dial_timeout = "30"\n', /invalid duration "30"/],
    ["foreign scheme", '[host."ftp://a.example"]\n', /unsupported scheme "ftp"/],
    ["no host", 'server = "https:///v2"\n', /no host in URL/],
    [
      "wrong type in a host containerd does not list",
      'host."https://a".skip_verify = "no"\n',
      /must be a boolean/,
    ],
  ];
  for (const [name, toml, reason] of cases) {
    it(name, async () => {
      const dir = tree({ "r.example/hosts.toml": toml });
      await configError(
        resolveHosts("r.example", { hostsDir: dir }),
        join(dir, "r.example", "hosts.toml"),
        reason,
      );
    });
  }

  it("refuses a hosts.toml that is not UTF-8 or is far too large", async () => {
    const dir = tree({ "r.example/hosts.toml": "" });
    const file = join(dir, "r.example", "hosts.toml");
    writeFileSync(file, Buffer.from([0x73, 0x3d, 0x22, 0xff, 0x22, 0x0a]));
    await configError(resolveHosts("r.example", { hostsDir: dir }), file, /UTF-8/);
    writeFileSync(file, `# ${"x".repeat(1024 * 1024)}\n`);
    await configError(resolveHosts("r.example", { hostsDir: dir }), file, /larger than/);
  });

  it("refuses a hosts directory it cannot read (a file where the root should be)", async () => {
    const dir = tree({ "root-is-a-file": "" });
    const root = join(dir, "root-is-a-file");
    await configError(resolveHosts("docker.io", { hostsDir: root }), join(root, "docker.io"), /ENOTDIR/);
  });
});
