import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { portOf, splitHostPort } from "./host.ts";
import { defaultHost, isLoopback } from "./index.ts";

describe("defaultHost", () => {
  it("maps only docker.io to registry-1.docker.io", () => {
    assert.equal(defaultHost("docker.io"), "registry-1.docker.io");
    // Normalization already turned index.docker.io into docker.io; containerd maps nothing else.
    assert.equal(defaultHost("index.docker.io"), "index.docker.io");
    assert.equal(defaultHost("registry-1.docker.io"), "registry-1.docker.io");
    assert.equal(defaultHost("gcr.io"), "gcr.io");
    assert.equal(defaultHost("localhost:5000"), "localhost:5000");
  });
});

describe("isLoopback (containerd IsLocalhost)", () => {
  const cases: [string, boolean][] = [
    ["localhost", true],
    ["localhost:5000", true],
    ["127.0.0.1", true],
    ["127.0.0.1:5000", true],
    ["127.1.2.3:80", true], // all of 127.0.0.0/8
    ["[::1]:5000", true],
    ["::1", true], // Go: SplitHostPort fails (too many colons), ParseIP accepts
    ["[::1]", false], // Go: SplitHostPort fails (no port), ParseIP rejects the brackets
    ["[0:0:0:0:0:0:0:1]:443", true],
    ["[::ffff:127.0.0.1]:5000", true], // IPv4-mapped
    ["Localhost:5000", false], // case-sensitive, as in Go
    ["localhost.localdomain", false],
    ["128.0.0.1", false],
    ["127.000.0.1", false], // Go rejects leading zeros
    ["[fe80::1%25lo]:5000", false],
    ["myregistry.local:5000", false],
    ["registry-1.docker.io", false],
  ];
  for (const [host, want] of cases) {
    it(`${host} → ${want}`, () => assert.equal(isLoopback(host), want));
  }
});

describe("splitHostPort (Go net.SplitHostPort)", () => {
  it("splits host:port and [v6]:port, keeps an empty port, rejects what Go rejects", () => {
    assert.deepEqual(splitHostPort("a.example:5000"), { host: "a.example", port: "5000" });
    assert.deepEqual(splitHostPort("[::1]:443"), { host: "::1", port: "443" });
    assert.deepEqual(splitHostPort("localhost:"), { host: "localhost", port: "" });
    assert.equal(splitHostPort("a.example"), null);
    assert.equal(splitHostPort("[::1]"), null);
    assert.equal(splitHostPort("::1"), null);
    assert.equal(splitHostPort("[::1]x:5"), null);
    assert.equal(portOf("[::1]"), "");
    assert.equal(portOf("a:80"), "80");
  });
});
