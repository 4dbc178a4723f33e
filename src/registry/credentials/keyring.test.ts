// The kubelet's keyring: key normalization, matching (kubelet.md A.9, oci.md §4.8), order and the Docker Hub
// fallback. Vectors come from the specs, which re-ran pkg/credentialprovider/keyring.go.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { globMatch } from "./glob.ts";
import { isDockerHubRepository, Keyring, matchesRegistryKey, normalizeRegistryKey } from "./keyring.ts";

describe("matchesRegistryKey: kubelet.md A.9", () => {
  const vectors: [string, string, boolean][] = [
    ["registry.io", "registry.io/foo/bar", true],
    ["*.registry.io", "eu.registry.io/app", true],
    ["*.registry.io", "registry.io/app", false], // label count
    ["*.io", "a.b.io/app", false],
    ["app*.k8s.io", "app1.k8s.io/x", true],
    ["registry.io:5000", "registry.io/app", false], // port
    ["registry.io", "registry.io:5000/app", false], // port
    ["registry.io/team", "registry.io/team/app", true],
    ["registry.io/team", "registry.io/teamx/app", true], // plain string prefix
    ["registry.io/team/", "registry.io/teamx/app", false],
    ["docker.io", "docker.io/library/nginx", true],
    ["https://index.docker.io/v1/", "docker.io/library/nginx", false], // only via the Docker Hub fallback
  ];
  for (const [key, image, want] of vectors) {
    it(`${key} vs ${image} -> ${want}`, () => assert.equal(matchesRegistryKey(key, image), want));
  }
});

describe("matchesRegistryKey: oci.md §4.8", () => {
  const vectors: [string, string, boolean][] = [
    ["*.example.com", "registry.example.com/app", true],
    ["*.example.com", "example.com/app", false],
    ["*.example.com", "a.b.example.com/app", false], // one label per *
    ["*.*.example.com", "a.b.example.com/app", true],
    ["example.com", "example.com:5000/app", false],
    ["example.com:5000", "example.com/app", false],
    ["example.com/team", "example.com/teammate/app", true],
    ["http://example.com/v2/team", "example.com/team/app", true],
    ["https://example.com/v1/", "example.com/app", true],
    ["k8s.*", "k8s.io/x", true],
    ["*.io", "registry.k8s.io/x", false],
    ["EXAMPLE.com", "example.com/x", false], // case-sensitive
    ["example.com:5000", "example.com:5000/app", true],
    ["127.0.0.1:5000", "127.0.0.1:5000/app", true],
  ];
  for (const [key, image, want] of vectors) {
    it(`${key} vs ${image} -> ${want}`, () => assert.equal(matchesRegistryKey(key, image), want));
  }

  it("a key path is a prefix of the image path, not the other way round", () => {
    assert.equal(matchesRegistryKey("registry.io/team/app/extra", "registry.io/team/app"), false);
  });
});

describe("normalizeRegistryKey (BasicDockerKeyring.Add)", () => {
  const vectors: [string, string | null][] = [
    ["https://index.docker.io/v1/", "index.docker.io"],
    ["http://example.com/v2/team", "example.com/team"],
    ["https://example.com/v1/", "example.com"],
    ["example.com/v2/", "example.com"],
    ["example.com/", "example.com"],
    ["example.com/team/", "example.com/team/"],
    ["registry.io:5000", "registry.io:5000"],
    ["user@registry.io/x", "registry.io/x"], // userinfo dropped by url.Parse
    // url.Parse reads `?` as the start of a query: the kubelet's index key is just "app".
    ["app?.k8s.io", "app"],
    // A leading `[` is an IPv6 literal to url.Parse, and "pp.io" is no port: the entry is dropped.
    ["[ab]pp.io", null],
    ["registry.io:port", null],
    ["bad host.io", null],
    ["registry.io/%zz", null],
  ];
  for (const [key, want] of vectors) {
    it(`${JSON.stringify(key)} -> ${JSON.stringify(want)}`, () =>
      assert.equal(normalizeRegistryKey(key), want));
  }
});

describe("glob per label (Go filepath.Match)", () => {
  it("classes, ranges, negation, escapes, ?", () => {
    assert.equal(globMatch("a[0-9]", "a7"), true);
    assert.equal(globMatch("a[^0-9]", "a7"), false);
    assert.equal(globMatch("a[^0-9]", "ab"), true);
    assert.equal(globMatch("a?c", "abc"), true);
    assert.equal(globMatch("a?c", "ac"), false);
    assert.equal(globMatch("\\*", "*"), true);
    assert.equal(globMatch("\\*", "x"), false);
    assert.equal(globMatch("*b*", "abc"), true);
    assert.equal(globMatch("*", ""), true);
  });
  it("a reversed range matches nothing instead of throwing", () => {
    assert.equal(globMatch("a[9-0]", "a5"), false);
  });
  it("malformed patterns match nothing, even when the mismatch comes first", () => {
    assert.equal(globMatch("[", "["), false);
    assert.equal(globMatch("a[", "a"), false);
    assert.equal(globMatch("x[", "a"), false);
    assert.equal(globMatch("[]a]", "a"), false);
    assert.equal(globMatch("a\\", "a"), false);
  });
  it("star is linear, not exponential", () => {
    const start = performance.now();
    assert.equal(globMatch("*a*a*a*a*a*a*a*a*a*a*b", "a".repeat(200)), false);
    assert.ok(performance.now() - start < 500);
  });
  it("a class inside a key works end to end", () => {
    assert.equal(matchesRegistryKey("eu[0-9].registry.io", "eu1.registry.io/app"), true);
    assert.equal(matchesRegistryKey("eu[0-9].registry.io", "eux.registry.io/app"), false);
  });
});

describe("isDockerHubRepository (isDefaultRegistryMatch)", () => {
  const vectors: [string, boolean][] = [
    ["docker.io/library/nginx", true],
    ["index.docker.io/library/nginx", true],
    ["library/nginx", true],
    ["nginx", true],
    ["user/app", true],
    ["registry.io/app", false],
    ["localhost:5000/app", false],
    ["/app", false],
  ];
  for (const [image, want] of vectors) {
    it(`${image} -> ${want}`, () => assert.equal(isDockerHubRepository(image), want));
  }
});

describe("Keyring order and fallback", () => {
  it("every matching key contributes, keys in reverse lexicographic order, entries in insertion order", () => {
    const k = new Keyring<string>();
    k.add("registry.io", "host-1");
    k.add("registry.io/team", "team");
    k.add("https://registry.io/v2/", "host-2"); // same normalized key as "registry.io"
    k.add("*.io", "glob");
    k.add("registry.io/team/app", "team-app");
    k.add("other.io", "other");
    assert.deepEqual(k.keys(), [
      "registry.io/team/app",
      "registry.io/team",
      "registry.io",
      "other.io",
      "*.io",
    ]);
    assert.deepEqual(k.lookup("registry.io/team/app"), ["team-app", "team", "host-1", "host-2", "glob"]);
  });

  it("reverse order is bytewise (Go strings), so wildcard keys come after letters", () => {
    const k = new Keyring<string>();
    k.add("*.registry.io", "wild");
    k.add("eu.registry.io", "eu");
    assert.deepEqual(k.lookup("eu.registry.io/app"), ["eu", "wild"]);
  });

  it("Docker Hub fallback: index.docker.io credentials when nothing matched and the image is on Docker Hub", () => {
    const k = new Keyring<string>();
    k.add("https://index.docker.io/v1/", "hub");
    k.add("registry.io", "reg");
    assert.deepEqual(k.lookup("docker.io/library/nginx"), ["hub"]);
    assert.deepEqual(k.lookup("library/nginx"), ["hub"]);
    assert.deepEqual(k.lookup("index.docker.io/library/nginx"), ["hub"]); // by glob, same labels
    assert.deepEqual(k.lookup("registry.io/x"), ["reg"]);
    assert.deepEqual(k.lookup("quay.io/x"), []);
  });

  it("no fallback when another key matched", () => {
    const k = new Keyring<string>();
    k.add("https://index.docker.io/v1/", "hub");
    k.add("docker.io", "docker-io");
    assert.deepEqual(k.lookup("docker.io/library/nginx"), ["docker-io"]);
  });

  it("an unparseable key is refused, not indexed", () => {
    const k = new Keyring<string>();
    assert.equal(k.add("registry.io:port", "x"), false);
    assert.equal(k.size, 0);
  });
});
