// Upstream facts beyond the §1.6 table (spec/oci.md §1.4–1.6, dref normalize_test.go / reference_test.go),
// and the pieces of the API the table does not reach.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  DEFAULT_DOMAIN,
  DEFAULT_TAG,
  familiarMatch,
  familiarName,
  familiarString,
  formatReference,
  isDigest,
  isNamedReference,
  NAME_TOTAL_LENGTH_MAX,
  PatternError,
  parse,
  parseAnyReference,
  parseDockerRef,
  parseNamed,
  parseNormalizedNamed,
  InvalidReferenceError as RefError,
  type ReferenceErrorKind,
  repositoryName,
  tagNameOnly,
  tryParseNormalizedNamed,
  validateDigest,
  withDigest,
  withTag,
} from "./index.ts";

const F = "f".repeat(64);
const HEX = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";

function throwsRef(fn: () => unknown, kind: ReferenceErrorKind, message: string, input?: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof RefError, `expected a InvalidReferenceError, got ${String(error)}`);
    assert.ok(error instanceof Error);
    assert.equal(error.name, "InvalidReferenceError");
    assert.equal(error.code, "InvalidImageName");
    assert.equal(error.kind, kind);
    assert.equal(error.message, message);
    if (input !== undefined) assert.equal(error.input, input);
    return true;
  });
}

describe("constants", () => {
  test("match upstream", () => {
    assert.equal(DEFAULT_DOMAIN, "docker.io");
    assert.equal(DEFAULT_TAG, "latest");
    assert.equal(NAME_TOTAL_LENGTH_MAX, 255);
  });
});

describe("parse (raw)", () => {
  const cases: [string, string, string, string | null, string | null][] = [
    // input, domain, path, tag, digest
    ["localhost:5000", "", "localhost", "5000", null],
    ["test:5000/repo", "test:5000", "repo", null, null],
    ["[::1]:5000/repo", "[::1]:5000", "repo", null, null],
    ["[2001:db8::1]/repo:tag", "[2001:db8::1]", "repo", "tag", null],
    ["library/ubuntu", "library", "ubuntu", null, null],
    ["a/b", "a", "b", null, null],
    ["a/b/c", "a", "b/c", null, null],
    ["test_com/foo", "", "test_com/foo", null, null],
    ["a-b.c-d/e", "a-b.c-d", "e", null, null],
    ["a--b/c", "a--b", "c", null, null], // inner hyphens are fine in a domain component
    ["a__b/c", "", "a__b/c", null, null],
    [`a/b:c@sha256:${"0".repeat(64)}`, "a", "b", "c", `sha256:${"0".repeat(64)}`],
  ];
  for (const [input, domain, path, tag, digest] of cases) {
    test(JSON.stringify(input), () => {
      assert.deepEqual({ ...parse(input) }, { domain, path, tag, digest });
    });
  }

  test("the domain is not counted in the 255-character limit", () => {
    const path = "a".repeat(255);
    assert.equal(parse(`${"h".repeat(300)}.com/${path}`).path, path);
    throwsRef(
      () => parse(`h.com/${path}a`),
      "name-too-long",
      "repository name must not be more than 255 characters",
    );
    // Without a domain-like first component the whole name is the path.
    throwsRef(
      () => parse(`${"a_".repeat(128)}a/b`),
      "name-too-long",
      "repository name must not be more than 255 characters",
    );
  });

  test("the length check comes before digest validation", () => {
    throwsRef(
      () => parse(`${"a".repeat(256)}@md5:${F}`),
      "name-too-long",
      "repository name must not be more than 255 characters",
    );
  });

  test("the lowercase retry uses Go's case mapping (U+0130 and U+212A lower to ASCII)", () => {
    throwsRef(() => parse("\u0130mage/foo"), "lowercase", "repository name must be lowercase");
    throwsRef(() => parse("foo/\u212Aube"), "lowercase", "repository name must be lowercase");
    throwsRef(() => parse("foo/\u00C9"), "format", "invalid reference format");
    throwsRef(() => parse("FOO/Bar:TAG"), "lowercase", "repository name must be lowercase");
    throwsRef(() => parse("foo/Bar:-tag"), "format", "invalid reference format");
  });

  test("digest errors come from go-digest", () => {
    throwsRef(() => parse(`repo@SHA256:${F}`), "digest-format", "invalid checksum digest format");
    throwsRef(() => parse(`repo@md5:${F}`), "digest-algorithm", "unsupported digest algorithm");
    throwsRef(() => parse(`repo@sha256:${F}ff`), "digest-length", "invalid checksum digest length");
  });

  test("results are frozen plain data", () => {
    const r = parse("example.com/a:b");
    assert.ok(Object.isFrozen(r));
    assert.deepEqual(Object.keys(r).sort(), ["digest", "domain", "path", "tag"]);
  });
});

describe("sha384 and sha512 (registered by Kubernetes)", () => {
  test("accepted with their exact lengths", () => {
    const d384 = `sha384:${"a".repeat(96)}`;
    const d512 = `sha512:${"b".repeat(128)}`;
    assert.equal(parseNormalizedNamed(`repo@${d384}`).digest, d384);
    assert.equal(parseNormalizedNamed(`repo@${d512}`).digest, d512);
    assert.equal(formatReference(parseDockerRef(`repo:v1@${d512}`)), `docker.io/library/repo@${d512}`);
  });
  test("wrong lengths are length errors", () => {
    throwsRef(
      () => parseNormalizedNamed(`repo@sha512:${"f".repeat(127)}`),
      "digest-length",
      "invalid checksum digest length",
    );
    throwsRef(
      () => parseNormalizedNamed(`repo@sha384:${"f".repeat(128)}`),
      "digest-length",
      "invalid checksum digest length",
    );
    throwsRef(
      () => parseNormalizedNamed(`repo@sha256:${"f".repeat(128)}`),
      "digest-length",
      "invalid checksum digest length",
    );
  });
});

describe("validateDigest / isDigest (go-digest Validate order)", () => {
  const cases: [string, ReferenceErrorKind | null][] = [
    [`sha256:${F}`, null],
    [`sha384:${"0".repeat(96)}`, null],
    [`sha512:${"9".repeat(128)}`, null],
    ["", "digest-format"],
    ["sha256", "digest-format"],
    [`:${F}`, "digest-format"],
    ["sha256:", "digest-format"],
    ["md5:abc", "digest-algorithm"],
    ["sha256+b64:abc", "digest-algorithm"],
    ["a.b_c-d:x=y_z-", "digest-algorithm"],
    ["constructor:abc", "digest-algorithm"],
    ["MD5:abc", "digest-format"], // not registered, and the generic grammar wants lowercase algorithms
    ["md5:a+b", "digest-format"],
    ["md5..x:abc", "digest-format"],
    [`sha256:${F.slice(1)}`, "digest-length"],
    [`sha256:${F}0`, "digest-length"],
    [`sha256:${"F".repeat(64)}`, "digest-format"], // length first, then lowercase hex
    [`sha256:${"g".repeat(64)}`, "digest-format"],
    [`sha256:${F.slice(1)}\u00e9`, "digest-length"], // Go counts bytes: 63 + 2
    [`sha256:${F.slice(2)}\u00e9`, "digest-format"], // 62 + 2 = 64 bytes, not hex
    [`sha256:sha256:${F}`, "digest-length"],
  ];
  const messages: Record<string, string> = {
    "digest-format": "invalid checksum digest format",
    "digest-algorithm": "unsupported digest algorithm",
    "digest-length": "invalid checksum digest length",
  };
  for (const [d, kind] of cases) {
    test(`${JSON.stringify(d.length > 40 ? `${d.slice(0, 37)}…` : d)} → ${kind ?? "valid"}`, () => {
      assert.equal(isDigest(d), kind === null);
      if (kind === null) assert.doesNotThrow(() => validateDigest(d));
      else throwsRef(() => validateDigest(d), kind, messages[kind] as string, d);
    });
  }
});

describe("parseNamed", () => {
  for (const s of [
    "test_com/foo",
    "test.com",
    "foo",
    "library/foo",
    "docker.io/foo",
    "docker.io/library/foo:",
  ]) {
    test(`rejects ${s}`, () => {
      if (s.endsWith(":")) throwsRef(() => parseNamed(s), "format", "invalid reference format");
      else throwsRef(() => parseNamed(s), "not-canonical", "repository name must be canonical", s);
    });
  }
  for (const s of [
    "docker.io/library/foo",
    "test.com/foo",
    "test:8080/foo",
    `docker.io/library/foo:v1@sha256:${F}`,
  ]) {
    test(`accepts ${s}`, () => {
      assert.equal(formatReference(parseNamed(s)), s);
    });
  }
});

describe("parseAnyReference", () => {
  test("64 hex is an image ID, i.e. a sha256 digest reference", () => {
    const r = parseAnyReference(HEX);
    assert.deepEqual({ ...r }, { digest: `sha256:${HEX}` });
    assert.equal(isNamedReference(r), false);
  });
  test("63 hex is a Docker Hub repository", () => {
    const r = parseAnyReference(HEX.slice(0, 63));
    assert.ok(isNamedReference(r));
    assert.equal(formatReference(r), `docker.io/library/${HEX.slice(0, 63)}`);
  });
  test("a bare digest of a registered algorithm is a digest reference", () => {
    assert.deepEqual({ ...parseAnyReference(`sha256:${HEX}`) }, { digest: `sha256:${HEX}` });
    const d512 = `sha512:${"1".repeat(128)}`;
    assert.deepEqual({ ...parseAnyReference(d512) }, { digest: d512 });
  });
  test("an invalid digest falls through to a name with a tag", () => {
    const r = parseAnyReference(`sha256:${HEX.slice(1)}`);
    assert.ok(isNamedReference(r));
    assert.deepEqual(
      { ...r },
      { domain: "docker.io", path: "library/sha256", tag: HEX.slice(1), digest: null },
    );
  });
  test("names are normalized", () => {
    const r = parseAnyReference(`redis@sha256:${HEX}`);
    assert.ok(isNamedReference(r));
    assert.equal(formatReference(r), `docker.io/library/redis@sha256:${HEX}`);
  });
});

describe("normalization (dref normalize_test.go)", () => {
  const valid = [
    "docker/docker",
    "library/debian",
    "debian",
    "index.docker.io/docker/docker",
    "127.0.0.1:5000/library/debian",
    "192.168.0.1",
    "192.168.0.1:80",
    "192.168.0.1:8/debian",
    "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    "[fc00::1]:5000/docker",
    "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    "Docker/docker",
    "DOCKER/docker",
    "docker-rules/docker",
    "d/docker",
    "jess/t",
  ];
  const invalid = [
    "docker/Docker",
    "-docker",
    "-docker/docker",
    "-docker.io/docker/docker",
    "docker.io/docker/Docker",
    "docker.io/docker///docker",
    "[fc00::1]",
    "[fc00::1]:5000",
    "fc00::1:5000/debian",
    "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
    "-docker-/docker",
    "_docker/_docker",
    "dock_.er/docker",
    "dock-.er/docker",
    `${"this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_".repeat(4)}/docker`,
  ];
  for (const s of valid) test(`valid: ${s}`, () => assert.doesNotThrow(() => parseNormalizedNamed(s)));
  for (const s of invalid)
    test(`invalid: ${s.slice(0, 50)}`, () => assert.throws(() => parseNormalizedNamed(s), RefError));

  const info: [string, string, string, string][] = [
    // input, familiar name, full name, domain
    ["index.docker.io/fooo/bar", "fooo/bar", "docker.io/fooo/bar", "docker.io"],
    ["nonlibrary/ubuntu", "nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu", "docker.io"],
    [
      "127.0.0.1:8000/privatebase",
      "127.0.0.1:8000/privatebase",
      "127.0.0.1:8000/privatebase",
      "127.0.0.1:8000",
    ],
    [
      "index.docker.io/library/ubuntu-12.04-base",
      "ubuntu-12.04-base",
      "docker.io/library/ubuntu-12.04-base",
      "docker.io",
    ],
    ["store/foo/bar", "store/foo/bar", "docker.io/store/foo/bar", "docker.io"],
    ["FOO/bar", "FOO/bar", "FOO/bar", "FOO"],
    ["xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo", "xn--n3h.com:18080"],
  ];
  for (const [input, familiar, full, domain] of info) {
    test(`repository info: ${input}`, () => {
      const r = parseNormalizedNamed(input);
      assert.equal(familiarName(r), familiar);
      assert.equal(repositoryName(r), full);
      assert.equal(r.domain, domain);
    });
  }

  test("errors keep the caller's input, not the normalized string", () => {
    throwsRef(() => parseNormalizedNamed("foo@md5:x"), "format", "invalid reference format", "foo@md5:x");
    throwsRef(
      () => parseNormalizedNamed(`foo@md5:${F}`),
      "digest-algorithm",
      "unsupported digest algorithm",
      `foo@md5:${F}`,
    );
  });

  test("the lowercase check covers the remainder up to its first ':' (including digest text)", () => {
    throwsRef(
      () => parseNormalizedNamed(`foo@SHA256:${F}`),
      "lowercase",
      "invalid reference format: repository name (library/foo@SHA256) must be lowercase",
    );
  });

  test("familiar form is ambiguous for Docker Hub paths whose first component looks like a domain", () => {
    // Upstream behaviour, kept on purpose: the familiar string re-parses to a different registry.
    const r = parseNormalizedNamed("docker.io/localhost/bar");
    assert.equal(familiarString(r), "localhost/bar");
    assert.equal(parseNormalizedNamed(familiarString(r)).domain, "localhost");
    assert.equal(familiarString(parseNormalizedNamed("docker.io/foo.bar/baz")), "foo.bar/baz");
  });
});

describe("parseDockerRef / tagNameOnly", () => {
  test("tag and digest: only the digest is kept", () => {
    const r = parseDockerRef(`busybox:latest@sha256:${F}`);
    assert.deepEqual(
      { ...r },
      { domain: "docker.io", path: "library/busybox", tag: null, digest: `sha256:${F}` },
    );
  });
  test("neither: latest is added", () => {
    assert.equal(parseDockerRef("busybox").tag, "latest");
  });
  test("tagNameOnly adds latest only when there is neither tag nor digest", () => {
    const bare = parseNormalizedNamed("busybox");
    assert.equal(formatReference(tagNameOnly(bare)), "docker.io/library/busybox:latest");
    const tagged = parseNormalizedNamed("busybox:1");
    assert.equal(tagNameOnly(tagged), tagged);
    const digested = parseNormalizedNamed(`busybox@sha256:${F}`);
    assert.equal(formatReference(tagNameOnly(digested)), `docker.io/library/busybox@sha256:${F}`);
    // An empty tag is "no tag", as in upstream where the zero value means absent.
    assert.equal(tagNameOnly({ domain: "", path: "x", tag: "", digest: null }).tag, "latest");
  });
});

describe("withTag / withDigest", () => {
  const base = parseNormalizedNamed("busybox");
  test("withTag validates the tag", () => {
    for (const bad of ["-foo", ".foo", "", "a".repeat(129), "a:b", "a/b", "a@b"]) {
      throwsRef(() => withTag(base, bad), "tag-format", "invalid tag format", bad);
    }
    assert.equal(withTag(base, "a".repeat(128)).tag, "a".repeat(128));
    assert.equal(withTag(base, "_x").tag, "_x");
  });
  test("withTag keeps the digest, withDigest keeps the tag", () => {
    const d = `sha256:${F}`;
    assert.equal(formatReference(withTag(withDigest(base, d), "v1")), `docker.io/library/busybox:v1@${d}`);
    assert.equal(formatReference(withDigest(withTag(base, "v1"), d)), `docker.io/library/busybox:v1@${d}`);
  });
  test("withDigest checks the reference digest grammar only, like upstream", () => {
    for (const bad of ["foo", `sha256:${"f".repeat(31)}`, `1sha:${F}`, `sha256:${F}g`, `sha256@${F}`]) {
      throwsRef(() => withDigest(base, bad), "digest-format-ref", "invalid digest format", bad);
    }
    // An unregistered algorithm passes WithDigest (upstream does not call go-digest here).
    assert.equal(withDigest(base, `md5:${"0".repeat(32)}`).digest, `md5:${"0".repeat(32)}`);
    assert.equal(withDigest(base, `sha256:${"F".repeat(64)}`).digest, `sha256:${"F".repeat(64)}`);
  });
});

describe("names and familiar forms", () => {
  test("repositoryName with and without a domain", () => {
    assert.equal(repositoryName(parse("foo_bar/baz")), "foo_bar/baz");
    assert.equal(repositoryName(parse("example.com/foo")), "example.com/foo");
  });
  test("familiar forms", () => {
    const r = parseNormalizedNamed(`busybox:latest@sha256:${F}`);
    assert.equal(familiarName(r), "busybox");
    assert.equal(familiarString(r), `busybox:latest@sha256:${F}`);
    assert.equal(familiarName(parseNormalizedNamed("library/foo/bar")), "library/foo/bar");
    assert.equal(familiarName(parseNormalizedNamed("gcr.io/library/busybox")), "gcr.io/library/busybox");
    // Raw references on docker.io are familiarized too (every upstream reference type is normalizedNamed).
    assert.equal(familiarString(parse("docker.io/library/foo:1")), "foo:1");
  });
});

describe("familiarMatch (dref TestMatch)", () => {
  const cases: [string, string, boolean][] = [
    ["foo", "foo/**/ba[rz]", false],
    ["foo/any/bat", "foo/**/ba[rz]", false],
    ["foo/a/bar", "foo/**/ba[rz]", true],
    ["foo/b/baz", "foo/**/ba[rz]", true],
    ["foo/c/baz:tag", "foo/**/ba[rz]", true],
    ["foo/c/baz:tag", "foo/*/baz:tag", true],
    ["foo/c/baz:tag", "foo/c/baz:tag", true],
    ["example.com/foo/c/baz:tag", "*/foo/c/baz", true],
    ["example.com/foo/c/baz:tag", "example.com/foo/c/baz", true],
    ["nginx:1.25", "nginx", true],
    ["nginx:1.25", "nginx:1.*", true],
    ["nginx:1.25", "docker.io/library/nginx", false],
  ];
  for (const [ref, pattern, expected] of cases) {
    test(`${pattern} ~ ${ref} → ${expected}`, () => {
      assert.equal(familiarMatch(pattern, parseNormalizedNamed(ref)), expected);
    });
  }
  test("a malformed pattern throws PatternError", () => {
    assert.throws(
      () => familiarMatch("[-x]", parseNormalizedNamed("foo")),
      (e: unknown) =>
        e instanceof PatternError && e.message === "syntax error in pattern" && e.pattern === "[-x]",
    );
  });
});

describe("tryParseNormalizedNamed", () => {
  test("ok", () => {
    const r = tryParseNormalizedNamed("nginx");
    assert.ok(r.ok);
    assert.equal(r.ref.path, "library/nginx");
  });
  test("error", () => {
    const r = tryParseNormalizedNamed("nginx:-x");
    assert.ok(!r.ok);
    assert.ok(r.error instanceof RefError);
    assert.equal(r.error.kind, "format");
    assert.equal(r.error.input, "nginx:-x");
  });
});
