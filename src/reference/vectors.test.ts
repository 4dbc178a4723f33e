// The 88 vectors of spec/oci.md §1.6, produced upstream by running distribution/reference@0965666.
// Notation: `<F>` = 64 × "f", `a×N` = N × "a".

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  familiarString,
  formatReference,
  parse,
  parseDockerRef,
  parseNormalizedNamed,
  InvalidReferenceError as RefError,
  type ReferenceErrorKind,
} from "./index.ts";

interface OkRow {
  n: number;
  input: string;
  domain: string;
  path: string;
  tag: string | null;
  digest: string | null;
  dockerRef: string;
  familiar: string;
}
interface ErrorRow {
  n: number;
  input: string;
  /** ParseNormalizedNamed's message. */
  error: string;
  /** Raw Parse: its message, or "accepts". */
  raw?: string;
}
type Row = OkRow | ErrorRow;

/** Expand the spec's notation. */
function x(s: string): string;
function x(s: string | null): string | null;
function x(s: string | null): string | null {
  if (s === null) return null;
  return s.replaceAll("<F>", "f".repeat(64)).replace(/a×(\d+)/g, (_, n: string) => "a".repeat(Number(n)));
}

/** The kind each upstream message maps to. */
function kindOf(message: string): ReferenceErrorKind {
  if (message.startsWith("invalid reference format: repository name (")) return "lowercase";
  if (message.startsWith("invalid repository name (")) return "hex-name";
  const kinds: Record<string, ReferenceErrorKind> = {
    "invalid reference format": "format",
    "repository name must be lowercase": "lowercase",
    "repository name must have at least one component": "empty",
    "repository name must not be more than 255 characters": "name-too-long",
    "unsupported digest algorithm": "digest-algorithm",
    "invalid checksum digest length": "digest-length",
    "invalid checksum digest format": "digest-format",
  };
  const kind = kinds[message];
  assert.ok(kind, `no kind for ${message}`);
  return kind;
}

function expectError(fn: () => unknown, message: string, input: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof RefError, `expected a InvalidReferenceError, got ${String(error)}`);
    assert.equal(error.message, message);
    assert.equal(error.code, "InvalidImageName");
    assert.equal(error.kind, kindOf(message));
    assert.equal(error.input, input);
    return true;
  });
}

// biome-ignore format: one vector per line, as in the spec table
const ROWS: readonly Row[] = [
  { n: 1, input: "ubuntu", domain: "docker.io", path: "library/ubuntu", tag: null, digest: null, dockerRef: "docker.io/library/ubuntu:latest", familiar: "ubuntu" },
  { n: 2, input: "ubuntu:22.04", domain: "docker.io", path: "library/ubuntu", tag: "22.04", digest: null, dockerRef: "docker.io/library/ubuntu:22.04", familiar: "ubuntu:22.04" },
  { n: 3, input: "library/ubuntu", domain: "docker.io", path: "library/ubuntu", tag: null, digest: null, dockerRef: "docker.io/library/ubuntu:latest", familiar: "ubuntu" },
  { n: 4, input: "docker.io/ubuntu", domain: "docker.io", path: "library/ubuntu", tag: null, digest: null, dockerRef: "docker.io/library/ubuntu:latest", familiar: "ubuntu" },
  { n: 5, input: "docker.io/library/ubuntu:22.04", domain: "docker.io", path: "library/ubuntu", tag: "22.04", digest: null, dockerRef: "docker.io/library/ubuntu:22.04", familiar: "ubuntu:22.04" },
  { n: 6, input: "index.docker.io/ubuntu", domain: "docker.io", path: "library/ubuntu", tag: null, digest: null, dockerRef: "docker.io/library/ubuntu:latest", familiar: "ubuntu" },
  { n: 7, input: "index.docker.io/library/ubuntu", domain: "docker.io", path: "library/ubuntu", tag: null, digest: null, dockerRef: "docker.io/library/ubuntu:latest", familiar: "ubuntu" },
  { n: 8, input: "registry-1.docker.io/ubuntu", domain: "registry-1.docker.io", path: "ubuntu", tag: null, digest: null, dockerRef: "registry-1.docker.io/ubuntu:latest", familiar: "registry-1.docker.io/ubuntu" },
  { n: 9, input: "dmcgowan/myapp", domain: "docker.io", path: "dmcgowan/myapp", tag: null, digest: null, dockerRef: "docker.io/dmcgowan/myapp:latest", familiar: "dmcgowan/myapp" },
  { n: 10, input: "docker.io/dmcgowan/myapp:latest", domain: "docker.io", path: "dmcgowan/myapp", tag: "latest", digest: null, dockerRef: "docker.io/dmcgowan/myapp:latest", familiar: "dmcgowan/myapp:latest" },
  { n: 11, input: "library/foo/bar", domain: "docker.io", path: "library/foo/bar", tag: null, digest: null, dockerRef: "docker.io/library/foo/bar:latest", familiar: "library/foo/bar" },
  { n: 12, input: "docker.io/library/foo/bar", domain: "docker.io", path: "library/foo/bar", tag: null, digest: null, dockerRef: "docker.io/library/foo/bar:latest", familiar: "library/foo/bar" },
  { n: 13, input: "other/library", domain: "docker.io", path: "other/library", tag: null, digest: null, dockerRef: "docker.io/other/library:latest", familiar: "other/library" },
  { n: 14, input: "docker.io/library", domain: "docker.io", path: "library/library", tag: null, digest: null, dockerRef: "docker.io/library/library:latest", familiar: "library" },
  { n: 15, input: "gcr.io/library/busybox", domain: "gcr.io", path: "library/busybox", tag: null, digest: null, dockerRef: "gcr.io/library/busybox:latest", familiar: "gcr.io/library/busybox" },
  { n: 16, input: "quay.io/coreos/etcd:v3.5.0", domain: "quay.io", path: "coreos/etcd", tag: "v3.5.0", digest: null, dockerRef: "quay.io/coreos/etcd:v3.5.0", familiar: "quay.io/coreos/etcd:v3.5.0" },
  { n: 17, input: "registry.k8s.io/pause:3.9", domain: "registry.k8s.io", path: "pause", tag: "3.9", digest: null, dockerRef: "registry.k8s.io/pause:3.9", familiar: "registry.k8s.io/pause:3.9" },
  { n: 18, input: "localhost/foo", domain: "localhost", path: "foo", tag: null, digest: null, dockerRef: "localhost/foo:latest", familiar: "localhost/foo" },
  { n: 19, input: "localhost:5000/foo", domain: "localhost:5000", path: "foo", tag: null, digest: null, dockerRef: "localhost:5000/foo:latest", familiar: "localhost:5000/foo" },
  { n: 20, input: "localhost:5000", domain: "docker.io", path: "library/localhost", tag: "5000", digest: null, dockerRef: "docker.io/library/localhost:5000", familiar: "localhost:5000" },
  { n: 21, input: "localhost", domain: "docker.io", path: "library/localhost", tag: null, digest: null, dockerRef: "docker.io/library/localhost:latest", familiar: "localhost" },
  { n: 22, input: "Localhost/foo", domain: "Localhost", path: "foo", tag: null, digest: null, dockerRef: "Localhost/foo:latest", familiar: "Localhost/foo" },
  { n: 23, input: "LOCALDOMAIN/debian", domain: "LOCALDOMAIN", path: "debian", tag: null, digest: null, dockerRef: "LOCALDOMAIN/debian:latest", familiar: "LOCALDOMAIN/debian" },
  { n: 24, input: "Foo/bar", domain: "Foo", path: "bar", tag: null, digest: null, dockerRef: "Foo/bar:latest", familiar: "Foo/bar" },
  { n: 25, input: "example.com", domain: "docker.io", path: "library/example.com", tag: null, digest: null, dockerRef: "docker.io/library/example.com:latest", familiar: "example.com" },
  { n: 26, input: "example.com/Foo/bar", error: "invalid reference format: repository name (Foo/bar) must be lowercase", raw: "repository name must be lowercase" },
  { n: 27, input: "test.com:5000", domain: "docker.io", path: "library/test.com", tag: "5000", digest: null, dockerRef: "docker.io/library/test.com:5000", familiar: "test.com:5000" },
  { n: 28, input: "test:5000/repo", domain: "test:5000", path: "repo", tag: null, digest: null, dockerRef: "test:5000/repo:latest", familiar: "test:5000/repo" },
  { n: 29, input: "test_com/foo", domain: "docker.io", path: "test_com/foo", tag: null, digest: null, dockerRef: "docker.io/test_com/foo:latest", familiar: "test_com/foo" },
  { n: 30, input: "test-com:8080/foo", domain: "test-com:8080", path: "foo", tag: null, digest: null, dockerRef: "test-com:8080/foo:latest", familiar: "test-com:8080/foo" },
  { n: 31, input: "foo_bar.com:8080", domain: "docker.io", path: "library/foo_bar.com", tag: "8080", digest: null, dockerRef: "docker.io/library/foo_bar.com:8080", familiar: "foo_bar.com:8080" },
  { n: 32, input: "dock.er/docker", domain: "dock.er", path: "docker", tag: null, digest: null, dockerRef: "dock.er/docker:latest", familiar: "dock.er/docker" },
  { n: 33, input: "docker---rules/docker", domain: "docker.io", path: "docker---rules/docker", tag: null, digest: null, dockerRef: "docker.io/docker---rules/docker:latest", familiar: "docker---rules/docker" },
  { n: 34, input: "dock__er/docker", domain: "docker.io", path: "dock__er/docker", tag: null, digest: null, dockerRef: "docker.io/dock__er/docker:latest", familiar: "dock__er/docker" },
  { n: 35, input: "192.168.1.1", domain: "docker.io", path: "library/192.168.1.1", tag: null, digest: null, dockerRef: "docker.io/library/192.168.1.1:latest", familiar: "192.168.1.1" },
  { n: 36, input: "192.168.1.1:5000", domain: "docker.io", path: "library/192.168.1.1", tag: "5000", digest: null, dockerRef: "docker.io/library/192.168.1.1:5000", familiar: "192.168.1.1:5000" },
  { n: 37, input: "192.168.1.1:5000/repo:5050", domain: "192.168.1.1:5000", path: "repo", tag: "5050", digest: null, dockerRef: "192.168.1.1:5000/repo:5050", familiar: "192.168.1.1:5000/repo:5050" },
  { n: 38, input: "127.0.0.1:5000/docker/docker", domain: "127.0.0.1:5000", path: "docker/docker", tag: null, digest: null, dockerRef: "127.0.0.1:5000/docker/docker:latest", familiar: "127.0.0.1:5000/docker/docker" },
  { n: 39, input: "[2001:db8::1]/repo", domain: "[2001:db8::1]", path: "repo", tag: null, digest: null, dockerRef: "[2001:db8::1]/repo:latest", familiar: "[2001:db8::1]/repo" },
  { n: 40, input: "[2001:db8::1]:5000/repo:tag", domain: "[2001:db8::1]:5000", path: "repo", tag: "tag", digest: null, dockerRef: "[2001:db8::1]:5000/repo:tag", familiar: "[2001:db8::1]:5000/repo:tag" },
  { n: 41, input: "[::1]:5000/repo", domain: "[::1]:5000", path: "repo", tag: null, digest: null, dockerRef: "[::1]:5000/repo:latest", familiar: "[::1]:5000/repo" },
  { n: 42, input: "[2001:db8::1]:5000", error: "invalid reference format" },
  { n: 43, input: "[fe80::1%eth0]:5000/repo", error: "invalid reference format" },
  { n: 44, input: "[2001:db8:3:4::192.0.2.33]:5000/debian", error: "invalid reference format" },
  { n: 45, input: "fc00::1:5000/debian", error: "invalid reference format" },
  { n: 46, input: "xn--n3h.com/myimage:xn--n3h.com", domain: "xn--n3h.com", path: "myimage", tag: "xn--n3h.com", digest: null, dockerRef: "xn--n3h.com/myimage:xn--n3h.com", familiar: "xn--n3h.com/myimage:xn--n3h.com" },
  { n: 47, input: "b.gcr.io/test.example.com/my-app:test.example.com", domain: "b.gcr.io", path: "test.example.com/my-app", tag: "test.example.com", digest: null, dockerRef: "b.gcr.io/test.example.com/my-app:test.example.com", familiar: "b.gcr.io/test.example.com/my-app:test.example.com" },
  { n: 48, input: "UPPER.example.com/foo", domain: "UPPER.example.com", path: "foo", tag: null, digest: null, dockerRef: "UPPER.example.com/foo:latest", familiar: "UPPER.example.com/foo" },
  { n: 49, input: "EXAMPLE.COM:5000/foo:TAG", domain: "EXAMPLE.COM:5000", path: "foo", tag: "TAG", digest: null, dockerRef: "EXAMPLE.COM:5000/foo:TAG", familiar: "EXAMPLE.COM:5000/foo:TAG" },
  { n: 50, input: "lowercase:Uppercase", domain: "docker.io", path: "library/lowercase", tag: "Uppercase", digest: null, dockerRef: "docker.io/library/lowercase:Uppercase", familiar: "lowercase:Uppercase" },
  { n: 51, input: "busybox@sha256:<F>", domain: "docker.io", path: "library/busybox", tag: null, digest: "sha256:<F>", dockerRef: "docker.io/library/busybox@sha256:<F>", familiar: "busybox@sha256:<F>" },
  { n: 52, input: "busybox:latest@sha256:<F>", domain: "docker.io", path: "library/busybox", tag: "latest", digest: "sha256:<F>", dockerRef: "docker.io/library/busybox@sha256:<F>", familiar: "busybox:latest@sha256:<F>" },
  { n: 53, input: "gcr.io/library/busybox:latest@sha256:<F>", domain: "gcr.io", path: "library/busybox", tag: "latest", digest: "sha256:<F>", dockerRef: "gcr.io/library/busybox@sha256:<F>", familiar: "gcr.io/library/busybox:latest@sha256:<F>" },
  { n: 54, input: "localhost:5000/foo:bar@sha256:<F>", domain: "localhost:5000", path: "foo", tag: "bar", digest: "sha256:<F>", dockerRef: "localhost:5000/foo@sha256:<F>", familiar: "localhost:5000/foo:bar@sha256:<F>" },
  { n: 55, input: ":latest@sha256:<F>", error: "invalid reference format" },
  { n: 56, input: "@sha256:<F>", error: "invalid reference format" },
  { n: 57, input: "sha256:<F>", domain: "docker.io", path: "library/sha256", tag: "<F>", digest: null, dockerRef: "docker.io/library/sha256:<F>", familiar: "sha256:<F>" },
  { n: 58, input: "<F>", error: "invalid repository name (<F>), cannot specify 64-byte hexadecimal strings", raw: "accepts" },
  { n: 59, input: "docker.io/<F>", domain: "docker.io", path: "library/<F>", tag: null, digest: null, dockerRef: "docker.io/library/<F>:latest", familiar: "<F>" },
  { n: 60, input: "dbcc1", domain: "docker.io", path: "library/dbcc1", tag: null, digest: null, dockerRef: "docker.io/library/dbcc1:latest", familiar: "dbcc1" },
  { n: 61, input: "repo@sha256:ffffffffffffffffffffffffffffffffff", error: "invalid checksum digest length" },
  { n: 62, input: "repo@sha256:FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", error: "invalid checksum digest format" },
  { n: 63, input: "validname@invaliddigest:<F>", error: "unsupported digest algorithm" },
  // Spec row 64 says `unsupported digest algorithm`: plain distribution/reference registers only sha256.
  // kpull deliberately matches Kubernetes, which links crypto/sha512 and so registers sha384 and
  // sha512 (go-digest Algorithm.Available): the reference is valid.
  { n: 64, input: "validname@sha512:<F><F>", domain: "docker.io", path: "library/validname", tag: null, digest: "sha512:<F><F>", dockerRef: "docker.io/library/validname@sha512:<F><F>", familiar: "validname@sha512:<F><F>" },
  { n: 65, input: "Uppercase:tag", error: "invalid reference format: repository name (library/Uppercase) must be lowercase", raw: "repository name must be lowercase" },
  { n: 66, input: "docker/Docker", error: "invalid reference format: repository name (docker/Docker) must be lowercase", raw: "repository name must be lowercase" },
  { n: 67, input: "test:5000/Uppercase/lowercase:tag", error: "invalid reference format: repository name (Uppercase/lowercase) must be lowercase", raw: "repository name must be lowercase" },
  { n: 68, input: "ghcr.io/OWNER/repo", error: "invalid reference format: repository name (OWNER/repo) must be lowercase", raw: "repository name must be lowercase" },
  { n: 69, input: "nginx:_latest", domain: "docker.io", path: "library/nginx", tag: "_latest", digest: null, dockerRef: "docker.io/library/nginx:_latest", familiar: "nginx:_latest" },
  { n: 70, input: "nginx:-latest", error: "invalid reference format" },
  { n: 71, input: "nginx:.latest", error: "invalid reference format" },
  { n: 72, input: "nginx:a×128", domain: "docker.io", path: "library/nginx", tag: "a×128", digest: null, dockerRef: "docker.io/library/nginx:a×128", familiar: "nginx:a×128" },
  { n: 73, input: "nginx:a×129", error: "invalid reference format" },
  { n: 74, input: "nginx:latest:extra", error: "invalid reference format" },
  { n: 75, input: "nginx@latest", error: "invalid reference format" },
  { n: 76, input: "-docker", error: "invalid reference format" },
  { n: 77, input: "docker-/docker", error: "invalid reference format" },
  { n: 78, input: "dock___er/docker", error: "invalid reference format" },
  { n: 79, input: "dock..er/docker", error: "invalid reference format" },
  { n: 80, input: "____/____", error: "invalid reference format" },
  { n: 81, input: "docker///docker", error: "invalid reference format" },
  { n: 82, input: "docker/", error: "invalid reference format" },
  { n: 83, input: "https://github.com/docker/docker", error: "invalid reference format" },
  { n: 84, input: "", error: "invalid reference format", raw: "repository name must have at least one component" },
  { n: 85, input: "a×247", domain: "docker.io", path: "library/a×247", tag: null, digest: null, dockerRef: "docker.io/library/a×247:latest", familiar: "a×247" },
  { n: 86, input: "a×248", error: "repository name must not be more than 255 characters", raw: "accepts" },
  { n: 87, input: "example.com/a×255:tag", domain: "example.com", path: "a×255", tag: "tag", digest: null, dockerRef: "example.com/a×255:tag", familiar: "example.com/a×255:tag" },
  { n: 88, input: "example.com/a×256:tag", error: "repository name must not be more than 255 characters" },
];

describe("spec §1.6 vectors", () => {
  test("the table has all 88 rows, numbered in order", () => {
    assert.deepEqual(
      ROWS.map((r) => r.n),
      Array.from({ length: 88 }, (_, i) => i + 1),
    );
  });

  for (const row of ROWS) {
    const input = x(row.input);
    const label = `#${row.n} ${JSON.stringify(row.input)}`;
    if ("error" in row) {
      test(`${label} → ${row.error}`, () => {
        const message = x(row.error);
        expectError(() => parseNormalizedNamed(input), message, input);
        expectError(() => parseDockerRef(input), message, input);
        if (row.raw === "accepts") {
          assert.doesNotThrow(() => parse(input));
        } else if (row.raw !== undefined) {
          expectError(() => parse(input), row.raw, input);
        }
      });
    } else {
      test(`${label} → ${row.dockerRef}`, () => {
        const ref = parseNormalizedNamed(input);
        assert.deepEqual(
          { ...ref },
          { domain: x(row.domain), path: x(row.path), tag: x(row.tag), digest: x(row.digest) },
        );
        assert.equal(formatReference(parseDockerRef(input)), x(row.dockerRef));
        assert.equal(familiarString(ref), x(row.familiar));
      });
    }
  }
});
