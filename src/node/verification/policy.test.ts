import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  allowlistSubject,
  makeVerificationEnforcer,
  parseAllowlistPattern,
  VERIFICATION_POLICIES,
  VerificationConfigError,
  validateAllowlist,
} from "./index.ts";

describe("allowlist patterns (kubelet.md A.8)", () => {
  const valid: [string, { pattern: string; wildcard: boolean }][] = [
    ["registry.host/org/image-name", { pattern: "registry.host/org/image-name", wildcard: false }],
    ["registry.host/*", { pattern: "registry.host/", wildcard: true }],
    ["registry.host/org/*", { pattern: "registry.host/org/", wildcard: true }],
    ["docker.io/library/nginx", { pattern: "docker.io/library/nginx", wildcard: false }],
  ];
  for (const [pattern, expected] of valid) {
    it(`${pattern} → ${expected.wildcard ? "prefix" : "exact"} ${expected.pattern}`, () => {
      assert.deepEqual(parseAllowlistPattern(pattern), expected);
    });
  }

  const invalid: [string, string][] = [
    ["nginx", "neither tag nor digest is accepted in an image reference: nginx"],
    [
      "registry.host/org/image:tag",
      "neither tag nor digest is accepted in an image reference: registry.host/org/image:tag",
    ],
    ["registry.host", "neither tag nor digest is accepted in an image reference: registry.host"],
    [" registry.host/x", "leading/trailing spaces are not allowed:  registry.host/x"],
    ["registry.host/x ", "leading/trailing spaces are not allowed: registry.host/x "],
    ["*", "not a valid wildcard pattern, only patterns ending with '/*' are allowed: *"],
    [
      "registry.host/org/*/x",
      "not a valid wildcard pattern, only patterns ending with '/*' are allowed: registry.host/org/*/x",
    ],
    ["/*", "at least registry hostname is required"],
    ["", "the supplied pattern is too short: "],
    [
      `registry.host/org/image@sha256:${"a".repeat(64)}`,
      `neither tag nor digest is accepted in an image reference: registry.host/org/image@sha256:${"a".repeat(64)}`,
    ],
    [
      "Registry.host/Org",
      "failed to parse as an image name: invalid reference format: repository name (Org) must be lowercase",
    ],
    ["registry.host/org/", "failed to parse as an image name: invalid reference format"],
  ];
  for (const [pattern, text] of invalid) {
    it(`${JSON.stringify(pattern)} → ${text}`, () => {
      assert.throws(
        () => parseAllowlistPattern(pattern),
        (e: unknown) => e instanceof VerificationConfigError && e.message === text,
      );
      assert.throws(
        () => makeVerificationEnforcer("NeverVerifyAllowlistedImages", ["registry.host/*", pattern]),
        {
          message: text,
        },
      );
    });
  }

  it("validateAllowlist returns every parsed pattern; the allowlist is validated under any policy", () => {
    assert.deepEqual(validateAllowlist(["a.io/*", "a.io/b"]), [
      { pattern: "a.io/", wildcard: true },
      { pattern: "a.io/b", wildcard: false },
    ]);
    assert.throws(() => makeVerificationEnforcer("AlwaysVerify", ["nginx"]), VerificationConfigError);
  });
});

describe("verification policies (kubelet.md §3.2)", () => {
  it("an unknown policy fails with the kubelet's text; the default is NeverVerifyPreloadedImages", () => {
    assert.throws(() => makeVerificationEnforcer("Sometimes"), {
      message: "unknown image pull credential verification policy: Sometimes",
    });
    assert.equal(makeVerificationEnforcer().policy, "NeverVerifyPreloadedImages");
    assert.deepEqual(
      [...VERIFICATION_POLICIES],
      ["NeverVerify", "NeverVerifyPreloadedImages", "NeverVerifyAllowlistedImages", "AlwaysVerify"],
    );
  });

  it("RequireCredentialVerificationForImage per policy", () => {
    const table: [string, boolean, boolean][] = [
      // policy, pulledByKubelet=false, pulledByKubelet=true
      ["NeverVerify", false, false],
      ["NeverVerifyPreloadedImages", false, true],
      ["AlwaysVerify", true, true],
    ];
    for (const [policy, preloaded, pulled] of table) {
      const e = makeVerificationEnforcer(policy);
      assert.equal(e.requireVerification("nginx:1.25", false), preloaded, `${policy} preloaded`);
      assert.equal(e.requireVerification("nginx:1.25", true), pulled, `${policy} kubelet-pulled`);
    }
  });

  it("NeverVerifyAllowlistedImages: only the allowlist is exempt, whoever pulled it", () => {
    const e = makeVerificationEnforcer("NeverVerifyAllowlistedImages", [
      "registry.host/org/image-name",
      "registry.host/team/*",
      "docker.io/library/alpine",
    ]);
    const cases: [string, boolean][] = [
      ["registry.host/org/image-name", false],
      ["registry.host/org/image-name:v1", false],
      [`registry.host/org/image-name@sha256:${"b".repeat(64)}`, false],
      ["registry.host/org/image-name-2", true],
      ["registry.host/team/app:1", false],
      ["registry.host/team/sub/app", false],
      ["registry.host/teamx/app", true],
      // [kpull] familiar names match their normalized entry (the v1.36 fix, PR #137629)
      ["alpine", false],
      ["alpine:3.20", false],
      ["docker.io/alpine", false],
      ["nginx", true],
      ["NOT A NAME", true],
    ];
    for (const [image, require] of cases) {
      assert.equal(e.requireVerification(image, false), require, `${image} (preloaded)`);
      assert.equal(e.requireVerification(image, true), require, `${image} (kubelet-pulled)`);
    }
  });

  it("the allowlist subject is the normalized name without tag or digest", () => {
    assert.equal(allowlistSubject("nginx:1.25"), "docker.io/library/nginx");
    assert.equal(allowlistSubject("localhost:5000/x:v1"), "localhost:5000/x");
    assert.equal(allowlistSubject("NOT A NAME"), "NOT A NAME");
  });
});
