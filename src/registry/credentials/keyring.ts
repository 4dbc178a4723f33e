/**
 * The kubelet's keyring (k8s pkg/credentialprovider/keyring.go, v1.35): how registry keys are normalized, how
 * a key matches an image repository, and in which order matching credentials come out.
 *
 * Go's net/url.Parse and net.SplitHostPort are ported as far as they decide a key's host, port and path, so
 * that odd keys (a `?` glob that url.Parse reads as a query, a key starting with `[`, a bad port) behave as in
 * the kubelet.
 */

import { globMatch } from "./glob.ts";

/** The key the kubelet stores Docker Hub credentials under (what `https://index.docker.io/v1/` normalizes to). */
export const DOCKER_HUB_KEY = "index.docker.io";

interface ParsedURL {
  readonly host: string;
  readonly path: string;
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/** Percent-decoding as Go's url.unescape in path mode; null for a malformed escape. */
function unescapePath(s: string): string | null {
  if (!s.includes("%")) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, "utf8");
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i] as number;
    if (b === 0x25) {
      const hex = raw.subarray(i + 1, i + 3).toString("latin1");
      if (!HEX.test(hex)) return null;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

function validOptionalPort(port: string): boolean {
  if (port === "") return true;
  return /^:[0-9]*$/.test(port);
}

/** ASCII characters Go's url package accepts unescaped in a host (shouldEscape(c, encodeHost) == false). */
const HOST_ASCII_OK = /^[A-Za-z0-9\-_.~!$&'()*+,;=:[\]<>"]$/;

/** Go's url.parseHost; null on error. Percent escapes in hosts are rejected (Go allows a few; none are useful). */
function parseHost(host: string): string | null {
  if (host.startsWith("[")) {
    const i = host.lastIndexOf("]");
    if (i < 0) return null;
    if (!validOptionalPort(host.slice(i + 1))) return null;
  } else {
    const i = host.lastIndexOf(":");
    if (i !== -1 && !validOptionalPort(host.slice(i))) return null;
  }
  for (const c of host) {
    if ((c.codePointAt(0) as number) >= 0x80) continue;
    if (!HOST_ASCII_OK.test(c)) return null;
  }
  return host;
}

const USERINFO_OK = /^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/;

/** Go's url.Parse for an absolute `scheme://authority/path` URL: the host and the unescaped path; null on error. */
function parseURL(raw: string): ParsedURL | null {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: Go rejects control bytes in URLs.
  if (/[\u0000-\u001f\u007f]/.test(raw)) return null;
  const hash = raw.indexOf("#");
  let rest = hash >= 0 ? raw.slice(0, hash) : raw;
  if (hash >= 0 && unescapePath(raw.slice(hash + 1)) === null) return null;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(rest);
  if (scheme === null) return null;
  rest = rest.slice(scheme[0].length);
  if (rest.endsWith("?") && rest.indexOf("?") === rest.length - 1) rest = rest.slice(0, -1);
  else {
    const q = rest.indexOf("?");
    if (q >= 0) rest = rest.slice(0, q);
  }
  if (!rest.startsWith("//")) return null;
  rest = rest.slice(2);
  const slash = rest.indexOf("/");
  let authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const rawPath = slash >= 0 ? rest.slice(slash) : "";
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    if (!USERINFO_OK.test(authority.slice(0, at))) return null;
    authority = authority.slice(at + 1);
  }
  const host = parseHost(authority);
  if (host === null) return null;
  const path = unescapePath(rawPath);
  if (path === null) return null;
  return { host, path };
}

/** The kubelet's ParseSchemelessURL: `https://` is put in front before parsing. */
function parseSchemeless(s: string): ParsedURL | null {
  return parseURL(`https://${s}`);
}

/** Go's net.SplitHostPort; null where Go returns an error (the keyring then uses the whole host, no port). */
function splitHostPort(hostport: string): { host: string; port: string } | null {
  const i = hostport.lastIndexOf(":");
  if (i < 0) return null;
  let host: string;
  let j = 0;
  let k = 0;
  if (hostport.startsWith("[")) {
    const end = hostport.indexOf("]");
    if (end < 0) return null;
    if (end + 1 === hostport.length) return null;
    if (end + 1 !== i) return null;
    host = hostport.slice(1, end);
    j = 1;
    k = end + 1;
  } else {
    host = hostport.slice(0, i);
    if (host.includes(":")) return null;
  }
  if (hostport.slice(j).includes("[")) return null;
  if (hostport.slice(k).includes("]")) return null;
  return { host, port: hostport.slice(i + 1) };
}

function splitURL(u: ParsedURL): { labels: string[]; port: string } {
  const hp = splitHostPort(u.host);
  const host = hp === null ? u.host : hp.host;
  const port = hp === null ? "" : hp.port;
  return { labels: host.split("."), port };
}

/**
 * The kubelet's URLsMatch on schemeless strings: same port string, same number of host labels, each label
 * glob-matched, and the glob's path a plain string prefix of the target's path. Case-sensitive.
 */
export function urlsMatch(glob: string, target: string): boolean {
  const g = parseSchemeless(glob);
  const t = parseSchemeless(target);
  if (g === null || t === null) return false;
  const gs = splitURL(g);
  const ts = splitURL(t);
  if (gs.port !== ts.port) return false;
  if (gs.labels.length !== ts.labels.length) return false;
  if (!t.path.startsWith(g.path)) return false;
  return gs.labels.every((label, i) => globMatch(label, ts.labels[i] as string));
}

/** Whether a matchImages pattern (credential provider config) is valid: the kubelet's ParseSchemelessURL succeeds. */
export function isValidMatchImage(pattern: string): boolean {
  return parseSchemeless(pattern) !== null;
}

/**
 * How BasicDockerKeyring.Add turns a config key into an index key: add `https://` unless the key has an
 * `http://`/`https://` scheme, parse as a URL, drop a leading `/v1` or `/v2` (of `/v1/...`, `/v2/...`), and
 * keep host + path, or just the host when the path is empty or `/`. Null for a key url.Parse rejects (the
 * kubelet logs and skips such entries).
 */
export function normalizeRegistryKey(key: string): string | null {
  const value = key.startsWith("https://") || key.startsWith("http://") ? key : `https://${key}`;
  const parsed = parseURL(value);
  if (parsed === null) return null;
  let path = parsed.path;
  if (path.startsWith("/v2/") || path.startsWith("/v1/")) path = path.slice(3);
  return path.length > 0 && path !== "/" ? parsed.host + path : parsed.host;
}

/**
 * Whether a credential stored under `key` (as written in a config: scheme, `/v1/` and `/v2/` allowed) is
 * offered for `repository` by the kubelet's glob match. The Docker Hub fallback is not a per-key match: it
 * applies to a whole keyring, only when no key matched (see `Keyring.lookup`).
 */
export function matchesRegistryKey(key: string, repository: string): boolean {
  const normalized = normalizeRegistryKey(key);
  return normalized !== null && urlsMatch(normalized, repository);
}

/** The kubelet's isDefaultRegistryMatch: does this repository live on Docker Hub? */
export function isDockerHubRepository(repository: string): boolean {
  const slash = repository.indexOf("/");
  const first = slash < 0 ? repository : repository.slice(0, slash);
  if (first.length === 0) return false;
  if (slash < 0) return true;
  if (first === "docker.io" || first === "index.docker.io") return true;
  return !/[.:]/.test(first);
}

/** Go's string order (bytewise on UTF-8), reversed. */
function reverseByteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(b, "utf8"), Buffer.from(a, "utf8"));
}

/**
 * A BasicDockerKeyring: credentials indexed by normalized key; lookup returns every matching key's
 * credentials, keys in reverse lexicographic order, each key's credentials in the order they were added;
 * when nothing matched and the repository is on Docker Hub, the credentials stored under `index.docker.io`.
 */
export class Keyring<T> {
  readonly #creds = new Map<string, T[]>();
  #index: string[] | null = null;

  /** Adds a credential under a config key; false (and nothing added) when the key does not parse. */
  add(key: string, credential: T): boolean {
    const normalized = normalizeRegistryKey(key);
    if (normalized === null) return false;
    const list = this.#creds.get(normalized);
    if (list) list.push(credential);
    else this.#creds.set(normalized, [credential]);
    this.#index = null;
    return true;
  }

  get size(): number {
    return this.#creds.size;
  }

  /** The de-duplicated index in lookup order. */
  keys(): string[] {
    this.#index ??= [...this.#creds.keys()].sort(reverseByteOrder);
    return [...this.#index];
  }

  lookup(repository: string): T[] {
    const out: T[] = [];
    for (const key of this.keys()) {
      if (urlsMatch(key, repository)) out.push(...(this.#creds.get(key) as T[]));
    }
    if (out.length > 0) return out;
    if (isDockerHubRepository(repository)) return [...(this.#creds.get(DOCKER_HUB_KEY) ?? [])];
    return [];
  }
}
