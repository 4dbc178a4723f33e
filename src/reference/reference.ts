/**
 * Parsing, normalization and formatting of image references, as github.com/distribution/reference
 * (reference.go, normalize.go, helpers.go) does it.
 */

import { digestProblem } from "./digest.ts";
import { fixedError, InvalidReferenceError as InvalidReference } from "./errors.ts";
import { isDigestPat, isIdentifier, isTag, scanReference } from "./grammar.ts";
import { pathMatch } from "./match.ts";

export const DEFAULT_DOMAIN = "docker.io";
export const LEGACY_DEFAULT_DOMAIN = "index.docker.io";
export const OFFICIAL_REPO_PREFIX = "library/";
export const DEFAULT_TAG = "latest";
export const NAME_TOTAL_LENGTH_MAX = 255;

/** A named image reference: `[domain/]path[:tag][@digest]`. */
export interface Reference {
  /** "" when a raw parse found no domain. */
  readonly domain: string;
  /** e.g. "library/nginx" */
  readonly path: string;
  readonly tag: string | null;
  /** e.g. "sha256:…" */
  readonly digest: string | null;
}

/** A reference by digest only (what ParseAnyReference returns for an image ID or a bare digest). */
export interface DigestReference {
  readonly digest: string;
}

function makeReference(domain: string, path: string, tag: string | null, digest: string | null): Reference {
  return Object.freeze({ domain, path, tag, digest });
}

/** Upstream stores an absent tag or digest as "", so an empty string counts as absent here as well. */
function has(value: string | null): value is string {
  return value !== null && value !== "";
}

/**
 * Go's strings.ToLower, as far as it matters for matching the (ASCII) grammar: A-Z, and the only two
 * non-ASCII code points whose simple lowercase mapping is ASCII (U+0130 → i, U+212A KELVIN SIGN → k).
 * Every other non-ASCII character stays non-ASCII, so it fails the grammar either way.
 */
function goLowerForGrammar(s: string): string {
  return s.replace(/[A-Z\u0130\u212A]/g, (c) => {
    if (c === "\u0130") return "i";
    if (c === "\u212A") return "k";
    return String.fromCharCode(c.charCodeAt(0) + 0x20);
  });
}

/** Parse as upstream `Parse` does; errors carry `input` as the caller's string. */
function parseRaw(s: string, input: string): Reference {
  if (s === "") throw fixedError("empty", input);
  const m = scanReference(s);
  if (m === null) {
    const lower = goLowerForGrammar(s);
    if (lower !== s && scanReference(lower) !== null) throw fixedError("lowercase", input);
    throw fixedError("format", input);
  }
  if (m.path.length > NAME_TOTAL_LENGTH_MAX) throw fixedError("name-too-long", input);
  if (m.digest !== null) {
    const problem = digestProblem(m.digest);
    if (problem !== null) throw fixedError(problem, input);
  }
  return makeReference(m.domain, m.path, m.tag, m.digest);
}

/**
 * `Parse`: the raw grammar, no normalization. Any first component that can be a domain is the domain
 * (`library/ubuntu` → domain `library`); a name without one has domain "".
 */
export function parse(s: string): Reference {
  return parseRaw(s, s);
}

/** `splitDockerDomain` */
function splitDockerDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf("/");
  if (slash === -1) {
    // Upstream FIXME: bare "localhost" or "example.com" names are Docker Hub names, before any domain detection.
    return { domain: DEFAULT_DOMAIN, remainder: OFFICIAL_REPO_PREFIX + name };
  }
  const maybeDomain = name.slice(0, slash);
  let domain: string;
  let remainder: string;
  if (maybeDomain === "localhost") {
    domain = maybeDomain;
    remainder = name.slice(slash + 1);
  } else if (maybeDomain === LEGACY_DEFAULT_DOMAIN) {
    domain = DEFAULT_DOMAIN;
    remainder = name.slice(slash + 1);
  } else if (maybeDomain.includes(".") || maybeDomain.includes(":")) {
    domain = maybeDomain;
    remainder = name.slice(slash + 1);
  } else if (maybeDomain.toLowerCase() !== maybeDomain) {
    // Uppercase namespaces are not allowed on Docker Hub, so this is taken as a domain.
    domain = maybeDomain;
    remainder = name.slice(slash + 1);
  } else {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  }
  if (domain === DEFAULT_DOMAIN && !remainder.includes("/")) remainder = OFFICIAL_REPO_PREFIX + remainder;
  return { domain, remainder };
}

/**
 * `ParseNormalizedNamed`: the familiar form as Docker and Kubernetes read it. A name without a domain is
 * on Docker Hub (`docker.io`), single-component Docker Hub names get `library/`, `index.docker.io` becomes
 * `docker.io`. Tag and digest are kept as written; no default tag is added.
 */
export function parseNormalizedNamed(s: string): Reference {
  if (isIdentifier(s)) {
    throw new InvalidReference(
      "hex-name",
      `invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`,
      s,
    );
  }
  const { domain, remainder } = splitDockerDomain(s);
  const tagSep = remainder.indexOf(":");
  const remote = tagSep === -1 ? remainder : remainder.slice(0, tagSep);
  if (remote.toLowerCase() !== remote) {
    throw new InvalidReference(
      "lowercase",
      `invalid reference format: repository name (${remote}) must be lowercase`,
      s,
    );
  }
  // Parse always yields a name here (the path is non-empty), so upstream's "reference %s has no name"
  // cannot happen.
  return parseRaw(`${domain}/${remainder}`, s);
}

/** parseNormalizedNamed without exceptions for invalid input. */
export function tryParseNormalizedNamed(
  s: string,
): { ok: true; ref: Reference } | { ok: false; error: InvalidReference } {
  try {
    return { ok: true, ref: parseNormalizedNamed(s) };
  } catch (error) {
    if (error instanceof InvalidReference) return { ok: false, error };
    throw error;
  }
}

/** `TagNameOnly`: add tag `latest` when the reference has neither a tag nor a digest. */
export function tagNameOnly(r: Reference): Reference {
  if (has(r.tag) || has(r.digest)) return r;
  return makeReference(r.domain, r.path, DEFAULT_TAG, null);
}

/**
 * `ParseDockerRef`, what CRI and containerd use: normalize, then keep only the digest when there are
 * both a tag and a digest, or add `latest` when there is neither.
 */
export function parseDockerRef(s: string): Reference {
  const named = parseNormalizedNamed(s);
  if (has(named.tag) && has(named.digest)) return makeReference(named.domain, named.path, null, named.digest);
  return tagNameOnly(named);
}

/** `ParseAnyReference`: an image ID (64 hex), a digest of a registered algorithm, or a normalized name. */
export function parseAnyReference(s: string): Reference | DigestReference {
  if (isIdentifier(s)) return Object.freeze({ digest: `sha256:${s}` });
  if (digestProblem(s) === null) return Object.freeze({ digest: s });
  return parseNormalizedNamed(s);
}

/** Whether a parseAnyReference result has a name. */
export function isNamedReference(r: Reference | DigestReference): r is Reference {
  return "path" in r;
}

/** `ParseNamed`: parseNormalizedNamed, but the input must already be in canonical form. */
export function parseNamed(s: string): Reference {
  const named = parseNormalizedNamed(s);
  if (formatReference(named) !== s) throw fixedError("not-canonical", s);
  return named;
}

/** `WithTag`: replace the tag (a digest is kept). Throws `invalid tag format`. */
export function withTag(r: Reference, tag: string): Reference {
  if (!isTag(tag)) throw fixedError("tag-format", tag);
  return makeReference(r.domain, r.path, tag, has(r.digest) ? r.digest : null);
}

/**
 * `WithDigest`: replace the digest (a tag is kept). Like upstream it checks only the reference digest
 * grammar (`invalid digest format`), not whether the algorithm is registered; use validateDigest for that.
 */
export function withDigest(r: Reference, digest: string): Reference {
  if (!isDigestPat(digest)) throw fixedError("digest-format-ref", digest);
  return makeReference(r.domain, r.path, has(r.tag) ? r.tag : null, digest);
}

/** `Name()`: domain + "/" + path, or the path alone when there is no domain. */
export function repositoryName(r: Reference): string {
  return r.domain === "" ? r.path : `${r.domain}/${r.path}`;
}

/** `String()`: name[:tag][@digest]. */
export function formatReference(r: Reference): string {
  let s = repositoryName(r);
  if (has(r.tag)) s += `:${r.tag}`;
  if (has(r.digest)) s += `@${r.digest}`;
  return s;
}

/** `familiarizeName`: drop `docker.io/`, and `library/` when no further `/` follows it. */
function familiarize(r: Reference): Reference {
  if (r.domain !== DEFAULT_DOMAIN) return r;
  let path = r.path;
  if (path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = path.slice(OFFICIAL_REPO_PREFIX.length);
    if (!rest.includes("/")) path = rest;
  }
  return makeReference("", path, r.tag, r.digest);
}

/** `FamiliarName`: the name as `docker` prints it (`nginx`, `user/app`, `ghcr.io/o/app`). */
export function familiarName(r: Reference): string {
  return repositoryName(familiarize(r));
}

/** `FamiliarString`: the familiar name with tag and digest. */
export function familiarString(r: Reference): string {
  return formatReference(familiarize(r));
}

/**
 * `FamiliarMatch`: Go's path.Match of the pattern against the familiar string, then against the familiar
 * name. Throws PatternError for a malformed pattern (upstream returns path.ErrBadPattern).
 */
export function familiarMatch(pattern: string, r: Reference): boolean {
  return pathMatch(pattern, familiarString(r)) || pathMatch(pattern, familiarName(r));
}
