/**
 * Image references: the grammar, parsing and normalization of github.com/distribution/reference as
 * Kubernetes 1.29+ uses it (IPv6 hosts, an uppercase first component read as a host, sha256/sha384/sha512
 * digests). Parsing is a hand-written linear-time scanner.
 */

export { DIGEST_ALGORITHMS, type DigestAlgorithm, isDigest, validateDigest } from "./digest.ts";
export { InvalidReferenceError, PatternError, type ReferenceErrorKind } from "./errors.ts";
export { pathMatch } from "./match.ts";
export {
  DEFAULT_DOMAIN,
  DEFAULT_TAG,
  type DigestReference,
  familiarMatch,
  familiarName,
  familiarString,
  formatReference,
  isNamedReference,
  LEGACY_DEFAULT_DOMAIN,
  NAME_TOTAL_LENGTH_MAX,
  OFFICIAL_REPO_PREFIX,
  parse,
  parseAnyReference,
  parseDockerRef,
  parseNamed,
  parseNormalizedNamed,
  type Reference,
  repositoryName,
  tagNameOnly,
  tryParseNormalizedNamed,
  withDigest,
  withTag,
} from "./reference.ts";
