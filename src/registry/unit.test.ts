import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, it } from "node:test";
import { parseChallenge, pickChallenge } from "./challenge.ts";
import { parseManifestJson } from "./client.ts";
import { errorFromResponse, RegistryError } from "./errors.ts";
import { parseRetryAfter } from "./http.ts";
import {
  acceptablePlatforms,
  choosePlatformEntry,
  formatPlatform,
  normalizePlatform,
  parsePlatform,
} from "./platform.ts";

describe("platforms (oci.md §6.4)", () => {
  it("normalizes like containerd", () => {
    const n = (architecture: string, variant?: string) =>
      formatPlatform(normalizePlatform({ os: "linux", architecture, variant }));
    assert.equal(n("x86_64"), "linux/amd64");
    assert.equal(n("amd64", "v1"), "linux/amd64");
    assert.equal(n("aarch64", "v8"), "linux/arm64");
    assert.equal(n("arm64", "8"), "linux/arm64");
    assert.equal(n("arm64", "9.0"), "linux/arm64/v9");
    assert.equal(n("armhf"), "linux/arm/v7");
    assert.equal(n("armel"), "linux/arm/v6");
    assert.equal(n("arm"), "linux/arm/v7");
    assert.equal(n("arm", "6"), "linux/arm/v6");
    assert.equal(n("i386", "x"), "linux/386");
    assert.equal(formatPlatform(normalizePlatform({ os: "MacOS", architecture: "ARM64" })), "darwin/arm64");
  });

  it("ranks acceptable platforms in containerd's Only order", () => {
    const order = (p: string) => acceptablePlatforms(parsePlatform(p)).map(formatPlatform);
    assert.deepEqual(order("linux/amd64"), ["linux/amd64", "linux/386"]);
    assert.deepEqual(order("linux/amd64/v3"), [
      "linux/amd64/v3",
      "linux/amd64/v2",
      "linux/amd64",
      "linux/386",
    ]);
    assert.deepEqual(order("linux/arm64/v8"), [
      "linux/arm64",
      "linux/arm/v8",
      "linux/arm/v7",
      "linux/arm/v6",
      "linux/arm/v5",
    ]);
    assert.deepEqual(order("linux/arm64/v8.2").slice(0, 4), [
      "linux/arm64/v8.2",
      "linux/arm64/v8.1",
      "linux/arm64",
      "linux/arm/v8",
    ]);
    assert.deepEqual(order("linux/arm64/v9").slice(0, 3), [
      "linux/arm64/v9",
      "linux/arm64/v8.5",
      "linux/arm64/v8.4",
    ]);
    assert.deepEqual(order("linux/arm/v7"), ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]);
  });

  it("chooses the best entry, entries without platform last, first on ties", () => {
    const entries = [
      { platform: { os: "linux", architecture: "arm", variant: "v7" } },
      {},
      { platform: { os: "linux", architecture: "386" } },
      { platform: { os: "linux", architecture: "arm64", variant: "v8" } },
      { platform: { os: "linux", architecture: "aarch64" } },
      { platform: { os: "windows", architecture: "amd64" } },
    ];
    assert.equal(choosePlatformEntry(parsePlatform("linux/arm64"), entries), 3);
    assert.equal(choosePlatformEntry(parsePlatform("linux/amd64"), entries), 2);
    assert.equal(choosePlatformEntry(parsePlatform("linux/arm/v6"), entries), 1);
    assert.equal(
      choosePlatformEntry(parsePlatform("linux/s390x"), [
        { platform: { os: "linux", architecture: "amd64" } },
      ]),
      -1,
    );
  });

  it("rejects malformed --platform values", () => {
    for (const bad of ["linux", "linux/", "/amd64", "a/b/c/d", "linux/amd 64"]) {
      assert.throws(() => parsePlatform(bad), { code: "PlatformError" });
    }
  });
});

describe("WWW-Authenticate", () => {
  it("parses Bearer parameters with quoting and escapes", () => {
    const c = parseChallenge(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
    );
    assert.deepEqual(c, {
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:samalba/my-app:pull,push",
      },
    });
    assert.deepEqual(parseChallenge('BASIC Realm="a \\"quoted\\" realm"')?.params, {
      realm: 'a "quoted" realm',
    });
    assert.deepEqual(parseChallenge("Bearer realm=tok,error=invalid_token")?.params, {
      realm: "tok",
      error: "invalid_token",
    });
    assert.equal(parseChallenge('Negotiate realm="x"'), null);
    assert.equal(parseChallenge(""), null);
  });

  it("prefers Bearer over Basic", () => {
    assert.equal(pickChallenge(['Basic realm="r"', 'Bearer realm="https://t/token"'])?.scheme, "bearer");
    assert.equal(pickChallenge(['Basic realm="r"'])?.scheme, "basic");
    assert.equal(pickChallenge(["garbage"]), null);
  });
});

describe("registry errors", () => {
  it("decodes the error envelope and maps to kubelet reasons", () => {
    const e = errorFromResponse(
      404,
      Buffer.from(
        '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}',
      ),
      "http://r/v2/a/manifests/x",
      "manifest a:x",
    );
    assert.equal(e.code, "MANIFEST_UNKNOWN");
    assert.equal(e.message, "manifest a:x: 404 MANIFEST_UNKNOWN: manifest unknown");
    assert.deepEqual(e.detail, { Tag: "x" });
    assert.equal(e.kubeletReason, "ErrImagePull");
    assert.equal(e.retryable, false);
  });

  it("infers a code from the status when the body is HTML", () => {
    const e = errorFromResponse(503, Buffer.from("<html>\n<b>down</b>\n</html>"), "u", "blob x");
    assert.equal(e.code, "UNAVAILABLE");
    assert.equal(e.message, "blob x: 503 UNAVAILABLE: <html> <b>down</b> </html>");
    assert.equal(e.kubeletReason, "RegistryUnavailable");
    assert.equal(e.retryable, true);
    assert.equal(errorFromResponse(429, Buffer.alloc(0), "u", "m", 2000).retryAfterMs, 2000);
  });

  it("maps every 5xx to RegistryUnavailable, whatever code the body carries", () => {
    const unknown = errorFromResponse(
      500,
      Buffer.from('{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}'),
      "u",
      "m",
    );
    assert.equal(unknown.code, "UNKNOWN");
    assert.equal(unknown.kubeletReason, "RegistryUnavailable");
    assert.equal(errorFromResponse(501, Buffer.alloc(0), "u", "m").kubeletReason, "RegistryUnavailable");
    assert.equal(errorFromResponse(429, Buffer.alloc(0), "u", "m").kubeletReason, "ErrImagePull");
    assert.equal(errorFromResponse(403, Buffer.alloc(0), "u", "m").kubeletReason, "ErrImagePull");
  });

  it("reads Retry-After in seconds and as an HTTP date", () => {
    assert.equal(parseRetryAfter("7", 0), 7000);
    const now = Date.parse("2026-11-29T10:00:00Z");
    assert.equal(parseRetryAfter("Sun, 29 Nov 2026 10:00:30 GMT", now), 30_000);
    assert.equal(parseRetryAfter("soon", now), undefined);
    assert.equal(parseRetryAfter(undefined, now), undefined);
  });
});

describe("manifest validation", () => {
  const digest = `sha256:${"a".repeat(64)}`;
  const desc = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest, size: 3 };
  const manifest = (o: object) => Buffer.from(JSON.stringify(o));
  const ociManifest = "application/vnd.oci.image.manifest.v1+json";

  it("accepts a well-formed manifest and index", () => {
    const m = parseManifestJson(
      manifest({ schemaVersion: 2, mediaType: ociManifest, config: desc, layers: [desc] }),
      ociManifest,
      "m",
    );
    assert.equal(m.mediaType, ociManifest);
    const i = parseManifestJson(
      manifest({ schemaVersion: 2, manifests: [desc] }),
      "application/vnd.oci.image.index.v1+json",
      "i",
    );
    assert.equal("manifests" in i, true);
  });

  const bad: [string, Buffer, string, RegExp][] = [
    ["not JSON", Buffer.from("<html>"), ociManifest, /not valid JSON/],
    [
      "schema1",
      manifest({ schemaVersion: 1, fsLayers: [] }),
      "application/vnd.docker.distribution.manifest.v1+prettyjws",
      /schema 1/,
    ],
    ["index with layers", manifest({ schemaVersion: 2, manifests: [], layers: [] }), "", /index must not/],
    [
      "type mismatch",
      manifest({ schemaVersion: 2, mediaType: ociManifest, config: desc, layers: [] }),
      "application/vnd.docker.distribution.manifest.v2+json",
      /does not match/,
    ],
    [
      "bad digest",
      manifest({ schemaVersion: 2, config: { ...desc, digest: "sha256:XYZ" }, layers: [] }),
      ociManifest,
      /digest/,
    ],
    [
      "negative size",
      manifest({ schemaVersion: 2, config: { ...desc, size: -1 }, layers: [] }),
      ociManifest,
      /malformed descriptor/,
    ],
    ["array", Buffer.from("[]"), ociManifest, /not a JSON object/],
  ];
  for (const [name, bytes, type, message] of bad) {
    it(`refuses ${name} with a typed error`, () => {
      assert.throws(
        () => parseManifestJson(bytes, type, "m"),
        (e: unknown) => e instanceof RegistryError && message.test(e.message),
      );
    });
  }
});
