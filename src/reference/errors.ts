/**
 * Error types of the reference module. Messages are exactly the upstream strings
 * (github.com/distribution/reference, github.com/opencontainers/go-digest, Go's path package).
 */

/** Which rule an image reference broke; the message says the same in upstream's words. */
export type ReferenceErrorKind =
  | "format" // invalid reference format
  | "lowercase" // (raw) repository name must be lowercase / (normalized) invalid reference format: repository name (%s) must be lowercase
  | "empty" // repository name must have at least one component
  | "name-too-long" // repository name must not be more than 255 characters
  | "not-canonical" // repository name must be canonical
  | "hex-name" // invalid repository name (%s), cannot specify 64-byte hexadecimal strings
  | "digest-algorithm" // unsupported digest algorithm
  | "digest-length" // invalid checksum digest length
  | "digest-format" // invalid checksum digest format
  | "tag-format" // invalid tag format   (withTag)
  | "digest-format-ref" // invalid digest format (withDigest)
  | "no-name"; // reference %s has no name

/** Upstream messages that do not depend on the input. */
export const MESSAGES = {
  format: "invalid reference format",
  lowercase: "repository name must be lowercase",
  empty: "repository name must have at least one component",
  "name-too-long": "repository name must not be more than 255 characters",
  "not-canonical": "repository name must be canonical",
  "digest-algorithm": "unsupported digest algorithm",
  "digest-length": "invalid checksum digest length",
  "digest-format": "invalid checksum digest format",
  "tag-format": "invalid tag format",
  "digest-format-ref": "invalid digest format",
} as const;

/**
 * A string that is not a valid image reference (or tag, or digest).
 * `code` is the kubelet's waiting reason for such images; `message` is exactly the upstream error string.
 */
export class InvalidReferenceError extends Error {
  readonly code: "InvalidImageName" = "InvalidImageName";
  readonly kind: ReferenceErrorKind;
  /** The string handed to the public entry point that failed (the tag for withTag, the digest for withDigest). */
  readonly input: string;

  constructor(kind: ReferenceErrorKind, message: string, input: string) {
    super(message);
    this.name = "InvalidReferenceError";
    this.kind = kind;
    this.input = input;
  }
}

/** Error for a kind whose message does not mention the input. */
export function fixedError(kind: keyof typeof MESSAGES, input: string): InvalidReferenceError {
  return new InvalidReferenceError(kind, MESSAGES[kind], input);
}

/** A malformed shell pattern (Go's path.ErrBadPattern). */
export class PatternError extends Error {
  readonly code: "InvalidPattern" = "InvalidPattern";
  readonly pattern: string;

  constructor(pattern: string) {
    super("syntax error in pattern");
    this.name = "PatternError";
    this.pattern = pattern;
  }
}
