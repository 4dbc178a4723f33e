/**
 * Digest validation as github.com/opencontainers/go-digest v1.0.0 `Digest.Validate` does it, with the
 * algorithms a Kubernetes binary registers (it links crypto/sha256 and crypto/sha512, so sha256, sha384
 * and sha512 are all available).
 */

import { fixedError, type ReferenceErrorKind } from "./errors.ts";
import { matchGenericDigest } from "./grammar.ts";

export type DigestAlgorithm = "sha256" | "sha384" | "sha512";

/** Registered algorithms and the length of their lowercase hex encoding. */
export const DIGEST_ALGORITHMS: Readonly<Record<DigestAlgorithm, number>> = Object.freeze({
  sha256: 64,
  sha384: 96,
  sha512: 128,
});

function encodedLength(algorithm: string): number | undefined {
  switch (algorithm) {
    case "sha256":
    case "sha384":
    case "sha512":
      return DIGEST_ALGORITHMS[algorithm];
    default:
      return undefined;
  }
}

/** Length of s in UTF-8 bytes, as Go's len() counts it (lone surrogates become U+FFFD, 3 bytes). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else {
        n += 3;
      }
    } else n += 3;
  }
  return n;
}

function isLowerHex(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** What is wrong with digest d, or null when it is valid. */
export function digestProblem(
  d: string,
): Extract<ReferenceErrorKind, "digest-algorithm" | "digest-length" | "digest-format"> | null {
  const i = d.indexOf(":");
  if (i <= 0 || i + 1 === d.length) return "digest-format";
  const expected = encodedLength(d.slice(0, i));
  if (expected === undefined) return matchGenericDigest(d) ? "digest-algorithm" : "digest-format";
  const encoded = d.slice(i + 1);
  if (utf8Length(encoded) !== expected) return "digest-length";
  return isLowerHex(encoded) ? null : "digest-format";
}

/**
 * go-digest `Validate`: throws a InvalidReferenceError with kind `digest-format` ("invalid checksum digest
 * format"), `digest-algorithm` ("unsupported digest algorithm") or `digest-length` ("invalid checksum
 * digest length").
 */
export function validateDigest(d: string): void {
  const problem = digestProblem(d);
  if (problem !== null) throw fixedError(problem, d);
}

/** Whether d is a valid digest of a registered algorithm (`sha256:` + 64 lowercase hex, and so on). */
export function isDigest(d: string): boolean {
  return digestProblem(d) === null;
}
