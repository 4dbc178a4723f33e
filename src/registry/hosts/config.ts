// Parsing one hosts.toml into containerd's per-host records (core/remotes/docker/config/hosts.go
// `parseHostsFile`, `parseHostConfig`): the `[host."<url>"]` tables in file order, then the root table
// (`server` and its own settings) as the last entry. Types are checked the way go-toml decodes into
// containerd's struct; unknown keys are ignored, as there.

import { isAbsolute, join, posix } from "node:path";
import { parse, TomlError } from "smol-toml";
import { parseGoDuration } from "../../policy/index.ts";
import { HostsConfigError } from "./errors.ts";
import { ALL_CAPABILITIES, type HostCapability } from "./host.ts";
import { hostsInFileOrder } from "./toml-order.ts";

export type { HostCapability } from "./host.ts";

/** One host as configured, before defaults and TLS loading (containerd's `hostConfig`). */
export interface HostConfig {
  /** "" when the file names no `server`: the caller fills in the reference's own host. */
  scheme: string;
  host: string;
  path: string;
  capabilities: HostCapability[];
  /** Absolute paths. `undefined` = not configured; `[]` (from `ca = []`) still counts as TLS configured. */
  caCerts?: string[];
  /** [cert, key] absolute paths; key "" = the key is in the cert file. */
  clientPairs?: [string, string][];
  skipVerify?: boolean;
  header?: Record<string, string[]>;
  dialTimeoutMs?: number;
}

type Table = Record<string, unknown>;

function isTable(v: unknown): v is Table {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** TOML value kinds as an operator would say them, for error messages. */
function kind(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (isTable(v)) return "table";
  if (typeof v === "object" && v !== null) return "datetime";
  if (typeof v === "number" || typeof v === "bigint") return Number.isInteger(v) ? "integer" : "float";
  return typeof v;
}

/**
 * Parses hosts.toml text read from `file` (its directory resolves relative `ca`/`client` paths).
 * Returns the mirrors in file order followed by the root (server) entry; never empty.
 */
export function parseHostsFile(file: string, baseDir: string, text: string): HostConfig[] {
  let doc: Table;
  try {
    doc = parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = err.message.split("\n")[0]?.replace(/^Invalid TOML document: /, "") ?? "invalid TOML";
      throw new HostsConfigError(file, `line ${err.line}, column ${err.column}: ${reason}`, { cause: err });
    }
    throw new HostsConfigError(file, `cannot parse TOML: ${String(err)}`, { cause: err });
  }
  const fail = (reason: string): never => {
    throw new HostsConfigError(file, reason);
  };

  const server = doc.server;
  if (server !== undefined && typeof server !== "string")
    fail(`"server" must be a string, not ${kind(server)}`);
  const hostTables = doc.host;
  if (hostTables !== undefined && !isTable(hostTables))
    fail(`"host" must be a table, not ${kind(hostTables)}`);

  // Like go-toml, decode every host table (a wrong type anywhere is an error), even those containerd
  // does not list as mirrors because they are not written as [host."..."] headers.
  const decoded = new Map<string, Table>();
  for (const [name, value] of Object.entries(hostTables ?? {})) {
    if (!isTable(value)) fail(`host.${quoteKey(name)} must be a table, not ${kind(value)}`);
    checkDecodedTypes(fail, `host.${quoteKey(name)}.`, value as Table);
    decoded.set(name, value as Table);
  }

  const hosts: HostConfig[] = [];
  for (const name of hostsInFileOrder(text)) {
    hosts.push(parseHostConfig(fail, `host.${quoteKey(name)}.`, name, baseDir, decoded.get(name) ?? {}));
  }
  hosts.push(parseHostConfig(fail, "", (server as string | undefined) ?? "", baseDir, doc));
  return hosts;
}

/**
 * The type checks go-toml makes when decoding a table into containerd's struct (typed fields only; `ca`,
 * `client` and header values are `interface{}` there and are checked when the host is used).
 */
function checkDecodedTypes(fail: (reason: string) => never, prefix: string, config: Table): void {
  for (const name of ["skip_verify", "override_path"]) {
    const v = config[name];
    if (v !== undefined && typeof v !== "boolean")
      fail(`"${prefix}${name}" must be a boolean, not ${kind(v)}`);
  }
  const dialTimeout = config.dial_timeout;
  if (dialTimeout !== undefined && typeof dialTimeout !== "string") {
    fail(`"${prefix}dial_timeout" must be a string, not ${kind(dialTimeout)}`);
  }
  const caps = config.capabilities;
  if (caps !== undefined && (!Array.isArray(caps) || caps.some((c) => typeof c !== "string"))) {
    fail(`"${prefix}capabilities" must be an array of strings`);
  }
  const header = config.header;
  if (header !== undefined && !isTable(header))
    fail(`"${prefix}header" must be a table, not ${kind(header)}`);
}

function quoteKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
}

function parseHostConfig(
  fail: (reason: string) => never,
  prefix: string,
  server: string,
  baseDir: string,
  config: Table,
): HostConfig {
  const field = (name: string) => `"${prefix}${name}"`;

  const overridePath = config.override_path;
  if (overridePath !== undefined && typeof overridePath !== "boolean") {
    fail(`${field("override_path")} must be a boolean, not ${kind(overridePath)}`);
  }
  const result: HostConfig = { scheme: "", host: "", path: "", capabilities: [] };
  if (server !== "") {
    const url = parseServerURL(
      server,
      fail,
      prefix === "" ? field("server") : `host ${JSON.stringify(server)}`,
    );
    result.scheme = url.scheme;
    result.host = url.host;
    result.path = apiPath(url.path, overridePath === true);
  }

  const skipVerify = config.skip_verify;
  if (skipVerify !== undefined) {
    if (typeof skipVerify !== "boolean")
      fail(`${field("skip_verify")} must be a boolean, not ${kind(skipVerify)}`);
    result.skipVerify = skipVerify as boolean;
  }

  const capabilities = config.capabilities;
  if (capabilities !== undefined && !Array.isArray(capabilities)) {
    fail(`${field("capabilities")} must be an array of strings, not ${kind(capabilities)}`);
  }
  const caps = new Set<HostCapability>();
  for (const c of (capabilities as unknown[] | undefined) ?? []) {
    if (typeof c !== "string") fail(`${field("capabilities")} must be an array of strings, found ${kind(c)}`);
    const name = (c as string).toLowerCase();
    if (name === "pull" || name === "resolve" || name === "push") caps.add(name);
    // containerd 2.x main also knows "referrers"; kpull does not use that API, so it grants nothing here.
    else if (name !== "referrers") fail(`${field("capabilities")}: unknown capability ${JSON.stringify(c)}`);
  }
  // Omitted or empty = all (containerd tests len() > 0).
  result.capabilities =
    ((capabilities as unknown[] | undefined)?.length ?? 0) > 0
      ? ALL_CAPABILITIES.filter((c) => caps.has(c))
      : [...ALL_CAPABILITIES];

  const abs = (p: string) => (isAbsolute(p) ? p : join(baseDir, p));
  const ca = config.ca;
  if (ca !== undefined) {
    if (typeof ca === "string") result.caCerts = [abs(ca)];
    else if (Array.isArray(ca)) result.caCerts = stringList(ca, field("ca"), fail).map(abs);
    else fail(`${field("ca")} must be a path or an array of paths, not ${kind(ca)}`);
  }

  const client = config.client;
  if (client !== undefined) {
    if (typeof client === "string") {
      result.clientPairs = [[abs(client), ""]];
    } else if (Array.isArray(client)) {
      const pairs: [string, string][] = [];
      for (const entry of client) {
        if (typeof entry === "string") {
          pairs.push([abs(entry), ""]);
        } else if (Array.isArray(entry)) {
          const paths = stringList(entry, field("client"), fail).map(abs);
          const [cert, key] = paths;
          if (paths.length !== 2 || cert === undefined || key === undefined) {
            fail(`${field("client")}: a pair must be [cert, key], found ${paths.length} paths`);
          } else {
            pairs.push([cert, key]);
          }
        } else {
          fail(`${field("client")} entries must be paths or [cert, key] pairs, not ${kind(entry)}`);
        }
      }
      // containerd appends to a nil slice: `client = []` leaves TLS unconfigured.
      if (pairs.length > 0) result.clientPairs = pairs;
    } else {
      fail(
        `${field("client")} must be a path, an array of paths or of [cert, key] pairs, not ${kind(client)}`,
      );
    }
  }

  const header = config.header;
  if (header !== undefined) {
    if (!isTable(header)) fail(`${field("header")} must be a table, not ${kind(header)}`);
    const out: Record<string, string[]> = {};
    for (const [key, value] of Object.entries(header as Table)) {
      const name = `${field("header")} ${JSON.stringify(key)}`;
      if (typeof value === "string") out[key] = [value];
      else if (Array.isArray(value)) out[key] = stringList(value, name, fail);
      else fail(`${name} must be a string or an array of strings, not ${kind(value)}`);
    }
    result.header = out;
  }

  const dialTimeout = config.dial_timeout;
  if (dialTimeout !== undefined) {
    if (typeof dialTimeout !== "string")
      fail(`${field("dial_timeout")} must be a string, not ${kind(dialTimeout)}`);
    if (dialTimeout !== "") {
      const ms = parseGoDuration(dialTimeout as string);
      if (ms === null) fail(`${field("dial_timeout")}: invalid duration ${JSON.stringify(dialTimeout)}`);
      result.dialTimeoutMs = ms as number;
    }
  }
  return result;
}

function stringList(values: unknown[], field: string, fail: (reason: string) => never): string[] {
  return values.map((v) => {
    if (typeof v !== "string") fail(`${field} must hold strings, found ${kind(v)}`);
    return v as string;
  });
}

/**
 * A hosts.toml URL: `http(s)://host[:port][/path]`, or a bare `host[:port][/path]` meaning https.
 * Split by hand like Go's url.Parse (the WHATWG URL parser would drop `:443`/`:80` and lowercase the host,
 * and the port decides containerd's HTTPS-first rule).
 */
function parseServerURL(
  raw: string,
  fail: (reason: string) => never,
  what: string,
): { scheme: "http" | "https"; host: string; path: string } {
  // containerd tests only `strings.HasPrefix(server, "http")`, which mangles a host such as "httpbin.local"
  // and URLs with an upper-case or foreign scheme; kpull reads the scheme properly and refuses foreign ones.
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(raw);
  let scheme = "https";
  let rest = raw;
  if (m) {
    scheme = (m[1] as string).toLowerCase();
    rest = raw.slice(m[0].length);
    if (scheme !== "http" && scheme !== "https") fail(`${what}: unsupported scheme ${JSON.stringify(m[1])}`);
  }
  const stop = rest.search(/[/?#]/);
  let authority = stop < 0 ? rest : rest.slice(0, stop);
  const afterAuthority = stop < 0 ? "" : rest.slice(stop);
  const at = authority.lastIndexOf("@");
  if (at >= 0) authority = authority.slice(at + 1); // Go keeps userinfo out of u.Host
  if (!/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::[0-9]*)?$/.test(authority)) {
    fail(`${what}: ${authority === "" ? "no host in URL" : `invalid host ${JSON.stringify(authority)}`}`);
  }
  const rawPath = afterAuthority.startsWith("/") ? (afterAuthority.split(/[?#]/)[0] as string) : "";
  let path = rawPath;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    fail(`${what}: invalid URL escape in path ${JSON.stringify(rawPath)}`);
  }
  return { scheme: scheme as "http" | "https", host: authority, path };
}

/**
 * The API root: `/v2` appended unless the cleaned path already ends with `/v2` or `override_path` is set.
 * Returned without a trailing slash ("" = the host's root), so callers join with `${path}/${name}/...`.
 */
function apiPath(urlPath: string, overridePath: boolean): string {
  if (urlPath === "") return overridePath ? "" : "/v2";
  let cleaned = posix.normalize(urlPath);
  if (cleaned.length > 1 && cleaned.endsWith("/")) cleaned = cleaned.slice(0, -1);
  // containerd would make "https://m/" into "//v2"; the root path plainly means "/v2".
  if (cleaned === "/") return overridePath ? "" : "/v2";
  if (overridePath || cleaned.endsWith("/v2")) return cleaned;
  return `${cleaned}/v2`;
}
