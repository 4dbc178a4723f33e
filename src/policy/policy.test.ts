import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  applyDefaultImageTag,
  decidePull,
  defaultPullPolicy,
  defaultPullPolicyFor,
  describePolicySource,
  effectivePullPolicy,
  formatGoDuration,
  goQuote,
  ImageNameError,
  messages,
  nodeBehaviour,
  parseGoDuration,
  parseImageName,
} from "./index.ts";

const D = `sha256:${"a".repeat(64)}`;

// kubelet.md §1.6 and Appendix A.1: API-server defaulting, and the string the kubelet sends to the CRI
// after applyDefaultImageTag (null = InvalidImageName).
const defaultingVectors: [id: string, image: string, policy: string, kubeletImage: string | null][] = [
  ["D01", "nginx", "Always", "nginx:latest"],
  ["D02", "nginx:latest", "Always", "nginx:latest"],
  ["D03", "nginx:1.25", "IfNotPresent", "nginx:1.25"],
  ["D04", "nginx:LATEST", "IfNotPresent", "nginx:LATEST"],
  ["D05", "nginx:Latest", "IfNotPresent", "nginx:Latest"],
  ["D06", `nginx@${D}`, "IfNotPresent", `nginx@${D}`],
  ["D07", `nginx:latest@${D}`, "Always", `nginx:latest@${D}`],
  ["D08", `nginx:1.25@${D}`, "IfNotPresent", `nginx:1.25@${D}`],
  ["D09", "docker.io/library/nginx", "Always", "docker.io/library/nginx:latest"],
  ["D10", "docker.io/nginx:latest", "Always", "docker.io/nginx:latest"],
  ["D11", "index.docker.io/library/nginx:1.0", "IfNotPresent", "index.docker.io/library/nginx:1.0"],
  ["D12", "library/nginx", "Always", "library/nginx:latest"],
  ["D13", "user/repo", "Always", "user/repo:latest"],
  ["D14", "user/repo:tag", "IfNotPresent", "user/repo:tag"],
  ["D15", "localhost:5000/x", "Always", "localhost:5000/x:latest"],
  ["D16", "localhost:5000/x:v1", "IfNotPresent", "localhost:5000/x:v1"],
  ["D17", "localhost:5000/x:latest", "Always", "localhost:5000/x:latest"],
  ["D18", "localhost:5000", "IfNotPresent", "localhost:5000"],
  ["D19", "localhost/x", "Always", "localhost/x:latest"],
  ["D20", "localhost", "Always", "localhost:latest"],
  ["D21", "registry.example.com/team/app", "Always", "registry.example.com/team/app:latest"],
  ["D22", "registry.example.com:443/team/app:2.0", "IfNotPresent", "registry.example.com:443/team/app:2.0"],
  ["D23", `registry.example.com/app:latest@${D}`, "Always", `registry.example.com/app:latest@${D}`],
  [
    "D24",
    `gcr.io/proj/img@sha512:${"b".repeat(128)}`,
    "IfNotPresent",
    `gcr.io/proj/img@sha512:${"b".repeat(128)}`,
  ],
  ["D25", "quay.io/a/b/c/d:latest", "Always", "quay.io/a/b/c/d:latest"],
  ["D26", "registry.k8s.io/pause:3.10", "IfNotPresent", "registry.k8s.io/pause:3.10"],
  ["D27", "busybox:latest-ish", "IfNotPresent", "busybox:latest-ish"],
  ["D28", "latest", "Always", "latest:latest"],
  ["D29", "Foo/bar", "Always", "Foo/bar:latest"],
  ["D30", "NGINX", "IfNotPresent", null],
  ["D31", "MyApp:latest", "IfNotPresent", null],
  ["D32", "nginx:", "IfNotPresent", null],
  ["D33", "", "IfNotPresent", null],
  ["D34a", " nginx", "IfNotPresent", null],
  ["D34b", "nginx ", "IfNotPresent", null],
  ["D35", "http://url", "IfNotPresent", null],
  ["D36", "a".repeat(64), "IfNotPresent", null],
  ["D37", "nginx@sha256:abc", "IfNotPresent", null],
  ["D38", `example.com/x:${"t".repeat(129)}`, "IfNotPresent", null],
  ["D39", "[::1]:5000/x", "Always", "[::1]:5000/x:latest"],
];

describe("API-server defaulting (spec vectors D01-D39)", () => {
  for (const [id, image, policy, kubeletImage] of defaultingVectors) {
    it(`${id} ${JSON.stringify(image)} -> ${policy}`, () => {
      assert.equal(defaultPullPolicy(image), policy);
      if (kubeletImage === null) {
        assert.throws(
          () => applyDefaultImageTag(image),
          (e: unknown) => {
            assert.ok(e instanceof ImageNameError);
            assert.equal(e.code, "InvalidImageName");
            return true;
          },
        );
      } else {
        assert.equal(applyDefaultImageTag(image), kubeletImage);
      }
    });
  }

  it("D40/D41 image volumes follow the same rule only with the ImageVolume gate", () => {
    const on = effectivePullPolicy("data:latest", undefined, "imageVolume");
    assert.equal(on.effective, "Always");
    assert.equal(on.source, "defaulted");
    const off = effectivePullPolicy("data:v1", "", "imageVolume", { imageVolumeGate: false });
    assert.equal(off.effective, null);
    assert.equal(off.source, "unset");
    // The gate only concerns image volumes.
    assert.equal(
      effectivePullPolicy("data:v1", "", "container", { imageVolumeGate: false }).effective,
      "IfNotPresent",
    );
  });

  it("never touches a written value, valid or not", () => {
    const written = effectivePullPolicy("nginx", "IfNotPresent");
    assert.equal(written.effective, "IfNotPresent");
    assert.equal(written.source, "written");
    assert.equal(describePolicySource(written), "written");
    const bogus = effectivePullPolicy("nginx", "always");
    assert.equal(bogus.effective, "always");
    assert.equal(
      bogus.invalidWritten,
      'Unsupported value: "always": supported values: "Always", "IfNotPresent", "Never"',
    );
  });

  it("explains why a default was chosen", () => {
    const why = (image: string) => describePolicySource(effectivePullPolicy(image, null));
    assert.equal(why("nginx"), "defaulted: no tag");
    assert.equal(why("nginx:latest"), "defaulted: tag is latest");
    assert.equal(why(`nginx:latest@${D}`), "defaulted: tag is latest");
    assert.equal(why(`nginx@${D}`), "defaulted: digest without tag");
    assert.equal(why("nginx:1.25"), "defaulted: tag is not latest");
    assert.equal(why("NGINX"), "defaulted: image does not parse");
    assert.equal(defaultPullPolicyFor("NGINX").parseError?.code, "InvalidImageName");
  });
});

describe("ParseImageName (kubelet.md A.2 messages)", () => {
  it("returns the normalized repository and defaults the tag only without a digest", () => {
    assert.deepEqual(
      (({ repository, tag, digest }) => ({ repository, tag, digest }))(parseImageName("nginx")),
      { repository: "docker.io/library/nginx", tag: "latest", digest: "" },
    );
    const pinned = parseImageName(`quay.io/a/b@${D}`);
    assert.equal(pinned.repository, "quay.io/a/b");
    assert.equal(pinned.tag, "");
    assert.equal(pinned.digest, D);
  });

  const invalid: [string, string][] = [
    [
      "FAILED_IMAGE",
      'Failed to apply default image tag "FAILED_IMAGE": couldn\'t parse image name "FAILED_IMAGE": invalid reference format: repository name (library/FAILED_IMAGE) must be lowercase',
    ],
    [
      "http://url",
      'Failed to apply default image tag "http://url": couldn\'t parse image name "http://url": invalid reference format',
    ],
    [
      "f".repeat(64),
      `Failed to apply default image tag "${"f".repeat(64)}": couldn't parse image name "${"f".repeat(64)}": invalid repository name (${"f".repeat(64)}), cannot specify 64-byte hexadecimal strings`,
    ],
  ];
  for (const [image, message] of invalid) {
    it(`InspectFailed message for ${image.slice(0, 20)}`, () => {
      try {
        applyDefaultImageTag(image);
        assert.fail("expected InvalidImageName");
      } catch (error) {
        assert.ok(error instanceof ImageNameError);
        assert.equal(messages.invalidImageName(image, error.message), message);
      }
    });
  }
});

describe("decision table (kubelet.md A.3, gate off)", () => {
  it("Always never checks locally and always contacts the registry (M1-M3)", () => {
    for (const present of [true, false]) {
      assert.deepEqual(decidePull("Always", present), {
        checksLocal: false,
        contactsRegistry: true,
        action: "pull",
        error: null,
      });
    }
  });
  it("IfNotPresent pulls only when absent (M4, M5)", () => {
    assert.equal(decidePull("IfNotPresent", false).action, "pull");
    assert.equal(decidePull("IfNotPresent", false).contactsRegistry, true);
    assert.equal(decidePull("IfNotPresent", true).action, "use-local");
    assert.equal(decidePull("IfNotPresent", true).contactsRegistry, false);
    assert.equal(decidePull("IfNotPresent", true).checksLocal, true);
  });
  it("Never never contacts the registry and fails when absent (M8, M9)", () => {
    assert.deepEqual(decidePull("Never", false), {
      checksLocal: true,
      contactsRegistry: false,
      action: "fail",
      error: "ErrImageNeverPull",
    });
    assert.equal(decidePull("Never", true).action, "use-local");
    assert.equal(decidePull("Never", true).contactsRegistry, false);
  });
  it("describes each policy for explain", () => {
    assert.equal(nodeBehaviour("Always"), "resolves the tag's digest at every start; reuses cached layers");
    assert.equal(nodeBehaviour("IfNotPresent"), "contacts the registry only when the image is absent");
    assert.equal(
      nodeBehaviour("Never"),
      "never contacts the registry; fails with ErrImageNeverPull when absent",
    );
  });
});

describe("message formats (kubelet.md §2.6, A.10)", () => {
  it("formats durations like Go's time.Duration", () => {
    assert.equal(formatGoDuration(8658), "8.658s");
    assert.equal(formatGoDuration(523), "523ms");
    assert.equal(formatGoDuration(0), "0s");
    assert.equal(formatGoDuration(61_500), "1m1.5s");
    assert.equal(formatGoDuration(120_000), "2m0s");
    assert.equal(formatGoDuration(3_600_000), "1h0m0s");
    assert.equal(formatGoDuration(2345.9), "2.345s");
    assert.equal(formatGoDuration(1050), "1.05s");
  });

  it("quotes like Go's %q", () => {
    assert.equal(goQuote("nginx"), '"nginx"');
    assert.equal(goQuote('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(goQuote("tab\there\n"), '"tab\\there\\n"');
    assert.equal(goQuote("\u0001"), '"\\x01"');
    assert.equal(goQuote("\u00e9"), '"\u00e9"');
    assert.equal(goQuote("\u2028"), '"\\u2028"');
    assert.equal(goQuote("\u{1F600}"), '"\u{1F600}"');
    assert.equal(goQuote("\u{E0001}"), '"\\U000e0001"');
  });

  it("builds the kubelet's event messages", () => {
    assert.equal(messages.pulling("nginx:1.25"), 'Pulling image "nginx:1.25"');
    assert.equal(
      messages.pulled("nginx:1.25", 2345, 2345, 67108864),
      'Successfully pulled image "nginx:1.25" in 2.345s (2.345s including waiting). Image size: 67108864 bytes.',
    );
    assert.equal(
      messages.pulled("nginx:1.25", 2345, 6345, 67108864),
      'Successfully pulled image "nginx:1.25" in 2.345s (6.345s including waiting). Image size: 67108864 bytes.',
    );
    assert.equal(
      messages.neverPull("app:1"),
      'Container image "app:1" is not present with pull policy of Never',
    );
    assert.equal(messages.alreadyPresent("app:1"), 'Container image "app:1" already present on machine');
    assert.equal(messages.backOff("typo_image"), 'Back-off pulling image "typo_image"');
  });
});

describe("parseGoDuration (Go's time.ParseDuration)", () => {
  const ok: [string, number][] = [
    ["0", 0],
    ["12h", 12 * 3600_000],
    ["1h30m", 90 * 60_000],
    ["1.5s", 1500],
    [".5s", 500],
    ["1.s", 1000],
    ["300ms", 300],
    ["-1m", -60_000],
    ["+2s", 2000],
    ["1µs", 0.001],
  ];
  for (const [s, ms] of ok) it(`${s} -> ${ms} ms`, () => assert.equal(parseGoDuration(s), ms));
  for (const s of ["", "1", "h", ".s", "1d", "1h 2m", "10e3s", "-", "3000000h"]) {
    it(`${JSON.stringify(s)} is invalid`, () => assert.equal(parseGoDuration(s), null));
  }
});
