/**
 * A linear-time scanner for the reference grammar of github.com/distribution/reference (regexp.go).
 *
 * It accepts exactly the strings the compiled regexes accept and splits them as Go's leftmost-first
 * submatch extraction does, without a backtracking regex:
 *
 *   referencePat    = ^(namePat)(?::(tag))?(?:@(digestPat))?$
 *   anchoredNamePat = ^(?:(domainAndPort)/)?(remoteName)$
 *
 * Why a fixed split is exact:
 * - `@` occurs in no production but the digest separator, so a match has at most one `@`, and it
 *   starts the digest.
 * - Neither a tag nor a digest contains `/`, and a remote name contains no `:`, so the tag (if any)
 *   starts after the first `:` that follows the last `/` before the `@`. A `:` before that `/` can only
 *   belong to the domain (a port or an IPv6 address).
 * - A domain contains no `/`, so the optional domain group can only capture the text before the first
 *   `/`. Leftmost-first semantics take it whenever the rest still matches (`library/ubuntu` has domain
 *   `library` in a raw parse).
 * Each check below is one forward pass, so the whole scan is O(n).
 */

const CH = {
  slash: 0x2f,
  colon: 0x3a,
  dot: 0x2e,
  dash: 0x2d,
  underscore: 0x5f,
  plus: 0x2b,
  lbracket: 0x5b,
  rbracket: 0x5d,
} as const;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isLower(c: number): boolean {
  return c >= 0x61 && c <= 0x7a;
}
function isUpper(c: number): boolean {
  return c >= 0x41 && c <= 0x5a;
}
function isLowerAlnum(c: number): boolean {
  return isLower(c) || isDigit(c);
}
function isAlpha(c: number): boolean {
  return isLower(c) || isUpper(c);
}
function isAlnum(c: number): boolean {
  return isAlpha(c) || isDigit(c);
}
/** Go's `\w` (ASCII only). */
function isWord(c: number): boolean {
  return isAlnum(c) || c === CH.underscore;
}
/** `[[:xdigit:]]` */
function isXdigit(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * remoteName = pathComponent (?:/ pathComponent)*,
 * pathComponent = [a-z0-9]+ (?:(?:[._]|__|[-]+)[a-z0-9]+)*, over s[start, end).
 */
export function matchRemoteName(s: string, start: number, end: number): boolean {
  let i = start;
  for (;;) {
    // An alphanumeric run is required at the start, after every separator and after every `/`.
    if (i >= end || !isLowerAlnum(s.charCodeAt(i))) return false;
    i++;
    while (i < end && isLowerAlnum(s.charCodeAt(i))) i++;
    if (i === end) return true;
    const c = s.charCodeAt(i);
    if (c === CH.dot || c === CH.slash) {
      i++;
    } else if (c === CH.underscore) {
      i++;
      if (i < end && s.charCodeAt(i) === CH.underscore) i++;
    } else if (c === CH.dash) {
      i++;
      while (i < end && s.charCodeAt(i) === CH.dash) i++;
    } else {
      return false;
    }
  }
}

/**
 * domainName = domainNameComponent (?:\. domainNameComponent)*,
 * domainNameComponent = [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9], over s[start, end).
 */
function matchDomainName(s: string, start: number, end: number): boolean {
  let componentStart = start;
  for (let i = start; i <= end; i++) {
    const c = i < end ? s.charCodeAt(i) : CH.dot;
    if (c === CH.dot) {
      // A component is non-empty and neither starts nor ends with `-`.
      if (
        i === componentStart ||
        s.charCodeAt(componentStart) === CH.dash ||
        s.charCodeAt(i - 1) === CH.dash
      ) {
        return false;
      }
      componentStart = i + 1;
    } else if (!isAlnum(c) && c !== CH.dash) {
      return false;
    }
  }
  return true;
}

/** domainAndPort = (?:domainName | \[(?:[a-fA-F0-9:]+)\]) (?::[0-9]+)?, over s[start, end). */
export function matchDomainAndPort(s: string, start: number, end: number): boolean {
  if (start >= end) return false;
  let hostEnd: number;
  if (s.charCodeAt(start) === CH.lbracket) {
    let i = start + 1;
    for (; i < end; i++) {
      const c = s.charCodeAt(i);
      if (!isXdigit(c) && c !== CH.colon) break;
    }
    if (i === start + 1 || i >= end || s.charCodeAt(i) !== CH.rbracket) return false;
    hostEnd = i + 1;
  } else {
    // A domain name contains no `:`, so the host ends at the first one.
    const colon = s.indexOf(":", start);
    hostEnd = colon === -1 || colon >= end ? end : colon;
    if (!matchDomainName(s, start, hostEnd)) return false;
  }
  if (hostEnd === end) return true;
  if (s.charCodeAt(hostEnd) !== CH.colon || hostEnd + 1 === end) return false;
  for (let i = hostEnd + 1; i < end; i++) {
    if (!isDigit(s.charCodeAt(i))) return false;
  }
  return true;
}

/** tag = [\w][\w.-]{0,127}, over s[start, end). */
export function matchTag(s: string, start: number, end: number): boolean {
  const n = end - start;
  if (n < 1 || n > 128 || !isWord(s.charCodeAt(start))) return false;
  for (let i = start + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (!isWord(c) && c !== CH.dot && c !== CH.dash) return false;
  }
  return true;
}

/**
 * digestPat = [A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}, over s[start, end).
 */
export function matchDigestPat(s: string, start: number, end: number): boolean {
  let i = start;
  for (;;) {
    if (i >= end || !isAlpha(s.charCodeAt(i))) return false;
    i++;
    while (i < end && isAlnum(s.charCodeAt(i))) i++;
    if (i >= end) return false;
    const c = s.charCodeAt(i);
    if (c === CH.dash || c === CH.underscore || c === CH.plus || c === CH.dot) {
      i++;
      continue;
    }
    if (c !== CH.colon) return false;
    i++;
    break;
  }
  if (end - i < 32) return false;
  for (; i < end; i++) {
    if (!isXdigit(s.charCodeAt(i))) return false;
  }
  return true;
}

/**
 * go-digest's DigestRegexpAnchored: ^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$
 * (decides "unsupported digest algorithm" versus "invalid checksum digest format").
 */
export function matchGenericDigest(s: string): boolean {
  const end = s.length;
  let i = 0;
  for (;;) {
    if (i >= end || !isLowerAlnum(s.charCodeAt(i))) return false;
    i++;
    while (i < end && isLowerAlnum(s.charCodeAt(i))) i++;
    if (i >= end) return false;
    const c = s.charCodeAt(i);
    if (c === CH.dot || c === CH.plus || c === CH.underscore || c === CH.dash) {
      i++;
      continue;
    }
    if (c !== CH.colon) return false;
    i++;
    break;
  }
  if (i >= end) return false;
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    if (!isAlnum(c) && c !== 0x3d /* = */ && c !== CH.underscore && c !== CH.dash) return false;
  }
  return true;
}

/** identifier, anchored: ^[a-f0-9]{64}$ */
export function isIdentifier(s: string): boolean {
  if (s.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i);
    if (!isDigit(c) && !(c >= 0x61 && c <= 0x66)) return false;
  }
  return true;
}

/** The submatches of referencePat and anchoredNamePat; `null` stands for a group that did not take part. */
export interface ScannedReference {
  readonly domain: string;
  readonly path: string;
  readonly tag: string | null;
  readonly digest: string | null;
}

/** Split `name` as anchoredNamePat does, or return null when it is not a name. */
export function splitName(name: string): { domain: string; path: string } | null {
  const end = name.length;
  const slash = name.indexOf("/");
  if (slash !== -1 && matchDomainAndPort(name, 0, slash) && matchRemoteName(name, slash + 1, end)) {
    return { domain: name.slice(0, slash), path: name.slice(slash + 1) };
  }
  if (matchRemoteName(name, 0, end)) return { domain: "", path: name };
  return null;
}

/**
 * Match s against referencePat and split the name with anchoredNamePat.
 * Returns null when s does not match. No digest validation, no length limit.
 */
export function scanReference(s: string): ScannedReference | null {
  let nameTagEnd = s.length;
  let digest: string | null = null;
  const at = s.indexOf("@");
  if (at !== -1) {
    // A second `@` would also fail the digest grammar; checking it first is just cheaper.
    if (s.indexOf("@", at + 1) !== -1 || !matchDigestPat(s, at + 1, s.length)) return null;
    nameTagEnd = at;
    digest = s.slice(at + 1);
  }
  const lastSlash = nameTagEnd === 0 ? -1 : s.lastIndexOf("/", nameTagEnd - 1);
  let colon = s.indexOf(":", lastSlash + 1);
  if (colon >= nameTagEnd) colon = -1;
  let nameEnd = nameTagEnd;
  let tag: string | null = null;
  if (colon !== -1) {
    if (!matchTag(s, colon + 1, nameTagEnd)) return null;
    tag = s.slice(colon + 1, nameTagEnd);
    nameEnd = colon;
  }
  const split = splitName(s.slice(0, nameEnd));
  if (split === null) return null;
  return { domain: split.domain, path: split.path, tag, digest };
}

/** anchoredTagRegexp: ^tag$ (used by WithTag). */
export function isTag(s: string): boolean {
  return matchTag(s, 0, s.length);
}

/** anchoredDigestRegexp: ^digestPat$ (used by WithDigest). */
export function isDigestPat(s: string): boolean {
  return matchDigestPat(s, 0, s.length);
}
