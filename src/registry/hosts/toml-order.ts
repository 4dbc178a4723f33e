// The order of `[host."..."]` tables in a hosts.toml, as containerd computes it (core/remotes/docker/config/
// hosts.go `getSortedHosts`). A parsed TOML object cannot give this: JavaScript orders integer-like keys
// first, and containerd looks only at `[table]` headers, so a host given as an inline table or with dotted
// keys (`host."https://m".capabilities = [...]`) is not a mirror for containerd, and a host whose sub-table
// comes back after another host (`[host.a]`, `[host.b]`, `[host.a.header]`) is listed again.
//
// The scanner runs only on text that smol-toml has already accepted, so it needs to know just enough TOML
// to find where table headers start: strings (which may hide `[`, `#` or newlines), comments, and the
// nesting of arrays and inline tables (a line of a multi-line array may start with `[`).

/** Key parts of every standard table header (`[a."b".c]`, not `[[array]]`), in file order. */
export function tableHeaders(src: string): string[][] {
  const headers: string[][] = [];
  let i = 0;
  let depth = 0;
  let lineStart = true;
  while (i < src.length) {
    const c = src[i];
    if (c === "\n") {
      if (depth === 0) lineStart = true;
      i++;
    } else if (c === " " || c === "\t" || c === "\r" || c === "\uFEFF") {
      i++;
    } else if (c === "#") {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === '"' || c === "'") {
      i = skipString(src, i);
      lineStart = false;
    } else if (c === "[" && depth === 0 && lineStart) {
      const array = src[i + 1] === "[";
      const key = readKey(src, i + (array ? 2 : 1));
      if (!array) headers.push(key.parts);
      i = key.end + (array ? 2 : 1);
      lineStart = false;
    } else {
      if (c === "[" || c === "{") depth++;
      else if (c === "]" || c === "}") depth--;
      lineStart = false;
      i++;
    }
  }
  return headers;
}

/**
 * containerd's list: the second key part of each table header whose first part is `host`, skipping a
 * header that names the same host as the header just before it (only consecutive repeats are skipped).
 */
export function hostsInFileOrder(src: string): string[] {
  const hosts: string[] = [];
  let last: string | undefined;
  for (const parts of tableHeaders(src)) {
    const [first, second] = parts;
    if (parts.length < 2 || first !== "host" || second === undefined || second === last) continue;
    last = second;
    hosts.push(second);
  }
  return hosts;
}

/** Reads a dotted key up to (not past) the closing `]`. */
function readKey(src: string, start: number): { parts: string[]; end: number } {
  const parts: string[] = [];
  let i = start;
  for (;;) {
    while (src[i] === " " || src[i] === "\t") i++;
    const c = src[i];
    if (c === '"') {
      const end = skipString(src, i);
      parts.push(unescapeBasic(src.slice(i + 1, end - 1)));
      i = end;
    } else if (c === "'") {
      const end = skipString(src, i);
      parts.push(src.slice(i + 1, end - 1));
      i = end;
    } else {
      let end = i;
      while (end < src.length && /[A-Za-z0-9_-]/.test(src[end] ?? "")) end++;
      parts.push(src.slice(i, end));
      i = end;
    }
    while (src[i] === " " || src[i] === "\t") i++;
    if (src[i] !== ".") return { parts, end: i };
    i++;
  }
}

/** Index just past the string starting at `start` (basic, literal, or either multi-line form). */
function skipString(src: string, start: number): number {
  const q = src[start] as '"' | "'";
  const triple = src.startsWith(q.repeat(3), start);
  let i = start + (triple ? 3 : 1);
  while (i < src.length) {
    const c = src[i];
    if (c === "\\" && q === '"') {
      i += 2;
    } else if (triple && src.startsWith(q.repeat(3), i)) {
      i += 3;
      // Up to two quotes may sit right before the closing delimiter: `"""a""""` holds `a"`.
      for (let extra = 0; extra < 2 && src[i] === q; extra++) i++;
      return i;
    } else if (!triple && c === q) {
      return i + 1;
    } else {
      i++;
    }
  }
  return i;
}

const ESCAPES: Record<string, string> = {
  b: "\b",
  t: "\t",
  n: "\n",
  f: "\f",
  r: "\r",
  e: "\x1b",
  '"': '"',
  "\\": "\\",
};

/** The value of a single-line basic string's body (TOML escapes; `\e` and `\xHH` are TOML 1.1). */
function unescapeBasic(body: string): string {
  return body.replace(/\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2}|.)/g, (_, e: string) => {
    if (e.length > 1) return String.fromCodePoint(Number.parseInt(e.slice(1), 16));
    return ESCAPES[e] ?? e;
  });
}
