/**
 * Go's filepath.Match (Unix) for one host label, as the kubelet's keyring applies it: `*` is any run of
 * characters except `/`, `?` one character except `/`, `[...]` / `[^...]` a class of single characters or
 * ranges (a reversed range matches nothing), `\` escapes. A malformed pattern matches nothing (Go returns
 * ErrBadPattern, which the keyring treats as "no match"). The whole pattern is validated even when an early
 * character already fails, as Go does since 1.16.
 */

type Token =
  | { readonly t: "star" }
  | { readonly t: "any" }
  | { readonly t: "lit"; readonly cp: number }
  | {
      readonly t: "class";
      readonly negated: boolean;
      readonly ranges: readonly (readonly [number, number])[];
    };

const BAD = null;
const cache = new Map<string, Token[] | null>();

function tokenize(pattern: string): Token[] | null {
  const cps = Array.from(pattern, (c) => c.codePointAt(0) as number);
  const out: Token[] = [];
  const BACKSLASH = 0x5c;
  const DASH = 0x2d;
  const CLOSE = 0x5d;
  let i = 0;
  // getEsc of Go's match.go: one possibly escaped class character that must be followed by something.
  const esc = (): number | null => {
    let c = cps[i];
    if (c === undefined || c === DASH || c === CLOSE) return BAD;
    if (c === BACKSLASH) {
      i++;
      c = cps[i];
      if (c === undefined) return BAD;
    }
    i++;
    if (i >= cps.length) return BAD;
    return c;
  };
  while (i < cps.length) {
    const c = cps[i] as number;
    if (c === 0x2a) {
      out.push({ t: "star" });
      i++;
    } else if (c === 0x3f) {
      out.push({ t: "any" });
      i++;
    } else if (c === BACKSLASH) {
      const next = cps[i + 1];
      if (next === undefined) return BAD;
      out.push({ t: "lit", cp: next });
      i += 2;
    } else if (c === 0x5b) {
      i++;
      let negated = false;
      if (cps[i] === 0x5e) {
        negated = true;
        i++;
      }
      const ranges: [number, number][] = [];
      for (;;) {
        if (cps[i] === CLOSE && ranges.length > 0) {
          i++;
          break;
        }
        const lo = esc();
        if (lo === BAD) return BAD;
        let hi = lo;
        if (cps[i] === DASH) {
          i++;
          const h = esc();
          if (h === BAD) return BAD;
          hi = h;
        }
        ranges.push([lo, hi]);
      }
      out.push({ t: "class", negated, ranges });
    } else {
      out.push({ t: "lit", cp: c });
      i++;
    }
  }
  return out;
}

function compiled(pattern: string): Token[] | null {
  let tokens = cache.get(pattern);
  if (tokens === undefined) {
    tokens = tokenize(pattern);
    if (cache.size > 1024) cache.clear();
    cache.set(pattern, tokens);
  }
  return tokens;
}

/** Whether `name` matches the shell pattern `pattern` (Go filepath.Match on Unix); false for a bad pattern. */
export function globMatch(pattern: string, name: string): boolean {
  const tokens = compiled(pattern);
  if (tokens === null) return false;
  const s = Array.from(name, (c) => c.codePointAt(0) as number);
  const SLASH = 0x2f;
  // reach[j]: the tokens so far can consume exactly s[0, j). O(tokens × name) without backtracking.
  let reach: boolean[] = new Array(s.length + 1).fill(false);
  reach[0] = true;
  for (const tok of tokens) {
    const next: boolean[] = new Array(s.length + 1).fill(false);
    if (tok.t === "star") {
      for (let j = 0; j <= s.length; j++) {
        if (reach[j]) next[j] = true;
        else if (j > 0 && next[j - 1] && s[j - 1] !== SLASH) next[j] = true;
      }
    } else {
      for (let j = 0; j < s.length; j++) {
        if (!reach[j]) continue;
        const c = s[j] as number;
        let ok: boolean;
        if (tok.t === "any") ok = c !== SLASH;
        else if (tok.t === "lit") ok = c === tok.cp;
        else ok = tok.ranges.some(([lo, hi]) => lo <= c && c <= hi) !== tok.negated;
        if (ok) next[j + 1] = true;
      }
    }
    reach = next;
  }
  return reach[s.length] === true;
}
