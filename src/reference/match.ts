/**
 * Go's path.Match (shell patterns: `*`, `?`, `[...]`, `\` escapes; `*` and `?` never match `/`).
 *
 * Ported from Go's src/path/match.go. Go walks UTF-8 bytes and decodes runes for `?` and classes; this
 * port walks code points. For ASCII names (every formatted reference is ASCII) the answers are the same;
 * for non-ASCII names Go can differ where a `*` resumes in the middle of a multi-byte character. A
 * malformed pattern is reported whatever the name, as Go does since 1.16. Cost is
 * O(len(pattern) * len(name)): a `*` never backtracks into an earlier star.
 */

import { PatternError } from "./errors.ts";

const BAD = Symbol("bad pattern");
type Bad = typeof BAD;

/** Split off the next chunk: leading stars, then everything up to the next `*` outside a class. */
function scanChunk(pattern: string, from: number): { star: boolean; chunkEnd: number; chunkStart: number } {
  let i = from;
  let star = false;
  while (i < pattern.length && pattern[i] === "*") {
    i++;
    star = true;
  }
  const chunkStart = i;
  let inrange = false;
  for (; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      if (i + 1 < pattern.length) i++;
    } else if (c === "[") {
      inrange = true;
    } else if (c === "]") {
      inrange = false;
    } else if (c === "*" && !inrange) {
      break;
    }
  }
  return { star, chunkStart, chunkEnd: i };
}

function codePointLength(cp: number): number {
  return cp > 0xffff ? 2 : 1;
}

/** A possibly escaped character of a class; returns the code point and the index after it. */
function getEsc(p: string, i: number, end: number): { r: number; next: number } | Bad {
  if (i >= end || p[i] === "-" || p[i] === "]") return BAD;
  if (p[i] === "\\") {
    i++;
    if (i >= end) return BAD;
  }
  const r = p.codePointAt(i) as number;
  const next = i + codePointLength(r);
  if (next >= end) return BAD;
  return { r, next };
}

/**
 * Whether chunk p[start, end) matches a prefix of s from `at`; returns the index after the match, -1 when
 * it does not match, or BAD when the chunk is malformed (checked even after a mismatch).
 */
function matchChunk(p: string, start: number, end: number, s: string, at: number): number | Bad {
  let failed = false;
  let j = at;
  let i = start;
  while (i < end) {
    if (!failed && j >= s.length) failed = true;
    const c = p[i];
    if (c === "[") {
      let r = 0;
      if (!failed) {
        r = s.codePointAt(j) as number;
        j += codePointLength(r);
      }
      i++;
      let negated = false;
      if (i < end && p[i] === "^") {
        negated = true;
        i++;
      }
      let match = false;
      let nrange = 0;
      for (;;) {
        if (i < end && p[i] === "]" && nrange > 0) {
          i++;
          break;
        }
        const lo = getEsc(p, i, end);
        if (lo === BAD) return BAD;
        i = lo.next;
        let hi = lo.r;
        if (p[i] === "-") {
          const h = getEsc(p, i + 1, end);
          if (h === BAD) return BAD;
          i = h.next;
          hi = h.r;
        }
        if (lo.r <= r && r <= hi) match = true;
        nrange++;
      }
      if (match === negated) failed = true;
    } else if (c === "?") {
      if (!failed) {
        const r = s.codePointAt(j) as number;
        if (r === 0x2f) failed = true;
        j += codePointLength(r);
      }
      i++;
    } else {
      let cp = p.codePointAt(i) as number;
      if (c === "\\") {
        i++;
        if (i >= end) return BAD;
        cp = p.codePointAt(i) as number;
      }
      if (!failed) {
        if (s.codePointAt(j) !== cp) failed = true;
        j += codePointLength(cp);
      }
      i += codePointLength(cp);
    }
  }
  return failed ? -1 : j;
}

function match(pattern: string, name: string): boolean | Bad {
  let pi = 0;
  let ni = 0;
  outer: while (pi < pattern.length) {
    const { star, chunkStart, chunkEnd } = scanChunk(pattern, pi);
    pi = chunkEnd;
    const last = pi >= pattern.length;
    if (star && chunkStart === chunkEnd) {
      // Trailing * matches the rest of the name unless it has a `/`.
      return name.indexOf("/", ni) === -1;
    }
    const t = matchChunk(pattern, chunkStart, chunkEnd, name, ni);
    if (t === BAD) return BAD;
    if (t !== -1 && (t === name.length || !last)) {
      ni = t;
      continue;
    }
    if (star) {
      // Look for a match skipping i+1 characters; a star cannot skip `/`.
      for (let i = ni; i < name.length && name[i] !== "/"; i++) {
        const t2 = matchChunk(pattern, chunkStart, chunkEnd, name, i + 1);
        if (t2 === BAD) return BAD;
        if (t2 !== -1) {
          if (last && t2 < name.length) continue;
          ni = t2;
          continue outer;
        }
      }
    }
    // Before answering false, make sure the rest of the pattern is well formed.
    while (pi < pattern.length) {
      const next = scanChunk(pattern, pi);
      pi = next.chunkEnd;
      if (matchChunk(pattern, next.chunkStart, next.chunkEnd, "", 0) === BAD) return BAD;
    }
    return false;
  }
  return ni === name.length;
}

/**
 * Go's `path.Match(pattern, name)`. Throws PatternError ("syntax error in pattern") when the pattern is
 * malformed, where Go returns path.ErrBadPattern.
 */
export function pathMatch(pattern: string, name: string): boolean {
  const result = match(pattern, name);
  if (result === BAD) throw new PatternError(pattern);
  return result;
}
