// WWW-Authenticate parsing as containerd does it (spec oci.md §4.1): one challenge per header value; scheme
// lowercased and one of basic/bearer (digest is parsed but unused); parameter names lowercased; values are
// tokens or quoted strings with backslash escapes. Bearer is preferred over Basic.

export interface Challenge {
  readonly scheme: "basic" | "bearer";
  readonly params: Readonly<Record<string, string>>;
}

const SEPARATORS = new Set('"(),/:;<=>?@[\\]{}');

function isTokenChar(ch: string): boolean {
  const code = ch.charCodeAt(0);
  return code > 0x20 && code !== 0x7f && !SEPARATORS.has(ch);
}

export function parseChallenge(value: string): Challenge | null {
  let i = 0;
  const n = value.length;
  const skipSpace = () => {
    while (i < n && (value[i] === " " || value[i] === "\t")) i++;
  };
  const readToken = () => {
    const start = i;
    while (i < n && isTokenChar(value[i] as string)) i++;
    return value.slice(start, i);
  };
  skipSpace();
  const scheme = readToken().toLowerCase();
  if (scheme !== "basic" && scheme !== "bearer") return null;
  const params: Record<string, string> = {};
  while (i < n) {
    skipSpace();
    if (value[i] === ",") {
      i++;
      continue;
    }
    const name = readToken().toLowerCase();
    if (name === "") break;
    skipSpace();
    if (value[i] !== "=") break;
    i++;
    skipSpace();
    let v = "";
    if (value[i] === '"') {
      i++;
      while (i < n && value[i] !== '"') {
        if (value[i] === "\\" && i + 1 < n) i++;
        v += value[i];
        i++;
      }
      i++; // closing quote
    } else {
      v = readToken();
    }
    params[name] = v;
  }
  return { scheme, params };
}

/** The challenge to answer from all WWW-Authenticate values of one response: Bearer first, then Basic. */
export function pickChallenge(values: readonly string[]): Challenge | null {
  const parsed = values.map(parseChallenge).filter((c): c is Challenge => c !== null);
  return (
    parsed.find((c) => c.scheme === "bearer" && c.params.realm) ??
    parsed.find((c) => c.scheme === "basic") ??
    null
  );
}
