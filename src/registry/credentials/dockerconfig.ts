/**
 * Docker config entries as the kubelet decodes them (k8s pkg/credentialprovider/config.go): the `auths` map of
 * config.json and `.dockerconfigjson`, the bare map of `.dockercfg`, and the `auth` field. Decoding follows
 * Go's encoding/json where it matters: object keys match struct fields case-insensitively, a value of the
 * wrong type fails the whole document, `null` leaves a field empty.
 */

/** One `auths` entry after decoding; `auth` has already replaced username/password when it was set. */
export interface AuthEntry {
  readonly username: string;
  readonly password: string;
  readonly email: string;
  readonly identityToken: string;
  readonly registryToken: string;
}

/** A decoding failure; `where` names the JSON path, never the value. */
export class DecodeError extends Error {
  constructor(where: string, what: string) {
    super(`${where}: ${what}`);
    this.name = "DecodeError";
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The value of a struct field, matched the way Go's encoding/json does (exact or ASCII case-insensitive; last wins). */
export function goField(obj: Record<string, unknown>, name: string): unknown {
  let found: unknown;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(obj)) {
    if (k.toLowerCase() === lower) found = v;
  }
  return found;
}

/** A string field: absent or null is "", another type is an error (Go's UnmarshalTypeError). */
export function stringField(obj: Record<string, unknown>, name: string, where: string): string {
  const v = goField(obj, name);
  if (v === undefined || v === null) return "";
  if (typeof v !== "string")
    throw new DecodeError(`${where}.${name}`, `must be a string, not ${jsonType(v)}`);
  return v;
}

export function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return `a ${typeof v}`;
}

const PADDED = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const UNPADDED = /^[A-Za-z0-9+/]*$/;

/**
 * Go's base64.StdEncoding (padded) or RawStdEncoding (unpadded) DecodeString: `\r` and `\n` are ignored,
 * anything else outside the alphabet, wrong padding or a dangling character is an error (null).
 */
export function decodeBase64(text: string, padded: boolean): Buffer | null {
  const s = text.replace(/[\r\n]/g, "");
  if (padded) {
    if (!PADDED.test(s)) return null;
  } else if (!UNPADDED.test(s) || s.length % 4 === 1) {
    return null;
  }
  return Buffer.from(s, "base64");
}

/**
 * The kubelet's decodeDockerConfigFieldAuth: padded std base64 when the (trimmed) field ends with `=`, else
 * unpadded; then split at the first `:`.
 */
export function decodeAuthField(field: string, where: string): { username: string; password: string } {
  const bytes = decodeBase64(field, field.trim().endsWith("="));
  if (bytes === null) throw new DecodeError(`${where}.auth`, "is not valid base64");
  const text = bytes.toString("utf8");
  const colon = text.indexOf(":");
  if (colon < 0) {
    throw new DecodeError(
      `${where}.auth`,
      "unable to parse auth field, must be formatted as base64(username:password)",
    );
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * One entry. `tokens` reads `identitytoken`/`registrytoken` too (Docker's own config.json); pull secrets
 * leave them out, as the kubelet does.
 */
export function decodeEntry(value: unknown, where: string, tokens: boolean): AuthEntry {
  if (value === null) return { username: "", password: "", email: "", identityToken: "", registryToken: "" };
  if (!isPlainObject(value)) throw new DecodeError(where, `must be an object, not ${jsonType(value)}`);
  let username = stringField(value, "username", where);
  let password = stringField(value, "password", where);
  const email = stringField(value, "email", where);
  const auth = stringField(value, "auth", where);
  if (auth !== "") ({ username, password } = decodeAuthField(auth, where));
  return {
    username,
    password,
    email,
    identityToken: tokens ? stringField(value, "identitytoken", where) : "",
    registryToken: tokens ? stringField(value, "registrytoken", where) : "",
  };
}

/** A map of server key to entry (`auths`, or a whole `.dockercfg`), in document order. */
export function decodeAuthsMap(value: unknown, where: string, tokens: boolean): [string, AuthEntry][] {
  if (value === undefined || value === null) return [];
  if (!isPlainObject(value)) throw new DecodeError(where, `must be an object, not ${jsonType(value)}`);
  return Object.entries(value).map(([key, entry]) => [
    key,
    decodeEntry(entry, `${where}[${JSON.stringify(key)}]`, tokens),
  ]);
}

/** Whether an entry carries nothing to authenticate with (what `docker login` leaves when a helper holds the secret). */
export function isPlaceholder(e: AuthEntry): boolean {
  return e.username === "" && e.password === "" && e.identityToken === "" && e.registryToken === "";
}

/** What kpull reads from a config.json. */
export interface DockerConfigFile {
  readonly auths: [string, AuthEntry][];
  readonly credsStore: string;
  readonly credHelpers: ReadonlyMap<string, string>;
}

/** Decodes a parsed config.json (`auths`, `credsStore`, `credHelpers`; `HttpHeaders` type-checked only). */
export function decodeDockerConfig(doc: unknown, tokens: boolean): DockerConfigFile {
  if (doc === null) return { auths: [], credsStore: "", credHelpers: new Map() };
  if (!isPlainObject(doc)) throw new DecodeError("document", `must be an object, not ${jsonType(doc)}`);
  const auths = decodeAuthsMap(goField(doc, "auths"), "auths", tokens);
  const credsStore = stringField(doc, "credsStore", "document");
  const helpers = goField(doc, "credHelpers");
  const credHelpers = new Map<string, string>();
  if (helpers !== undefined && helpers !== null) {
    if (!isPlainObject(helpers))
      throw new DecodeError("credHelpers", `must be an object, not ${jsonType(helpers)}`);
    for (const [k, v] of Object.entries(helpers)) {
      if (typeof v !== "string")
        throw new DecodeError(`credHelpers[${JSON.stringify(k)}]`, "must be a string");
      credHelpers.set(k, v);
    }
  }
  const headers = goField(doc, "HttpHeaders");
  if (headers !== undefined && headers !== null) {
    if (!isPlainObject(headers) || Object.values(headers).some((v) => typeof v !== "string" && v !== null)) {
      throw new DecodeError("HttpHeaders", "must be an object of strings");
    }
  }
  return { auths, credsStore, credHelpers };
}

/** Docker's key for a registry host: `https://index.docker.io/v1/` for Docker Hub, else `host[:port]`. */
export const DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/";

/** The registry host of a normalized repository (`docker.io/library/nginx` -> `docker.io`). */
export function registryHost(repository: string): string {
  const slash = repository.indexOf("/");
  const first = slash < 0 ? "" : repository.slice(0, slash);
  if (first === "" || (!/[.:]/.test(first) && first !== "localhost")) return "docker.io";
  return first;
}

/** The key Docker's CLI uses for a repository's registry in config.json, credHelpers and helper calls. */
export function dockerConfigKey(repository: string): string {
  const host = registryHost(repository);
  return host === "docker.io" || host === "index.docker.io" ? DOCKER_HUB_CONFIG_KEY : host;
}
