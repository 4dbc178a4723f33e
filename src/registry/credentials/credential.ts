/**
 * The Credential value: what one source offers for one repository. Secrets (password, tokens) live in
 * private fields behind getters, so they are not own enumerable properties: `util.inspect`, `console.log`,
 * `JSON.stringify`, `String()`, object spread and `Object.entries` never show them.
 */

import { createHash } from "node:crypto";
import { inspect } from "node:util";

/** Where a credential came from (kubelet's `CredentialSource`, widened for kpull's extra sources). */
export type CredentialSource =
  | {
      readonly kind: "pull-secret";
      /** The Secret's metadata; null for a raw docker config file passed as a pull secret. */
      readonly uid: string | null;
      readonly namespace: string | null;
      readonly name: string | null;
      /** The file the secret was read from; null when it was given in memory. */
      readonly file: string | null;
    }
  | { readonly kind: "docker-config"; readonly file: string }
  | { readonly kind: "credential-helper"; readonly helper: string }
  | { readonly kind: "provider-plugin"; readonly plugin: string }
  /** Handed over with a pull request, like CRI's AuthConfig (the caller looked it up). */
  | { readonly kind: "auth-config" };

export interface Credential {
  readonly username: string;
  readonly password: string;
  /** OAuth refresh token (config.json `identitytoken`, or a helper answering Username `<token>`). */
  readonly identityToken?: string;
  /** Bearer token to send as is (config.json `registrytoken`). */
  readonly registryToken?: string;
  /** Kept because the kubelet's credential hash covers it; never sent anywhere. */
  readonly email?: string;
  readonly source: CredentialSource;
}

/** The fields of the kubelet's AuthConfig that its hash covers; a Credential is one. */
export interface CredentialHashInput {
  readonly username?: string;
  readonly password?: string;
  readonly auth?: string;
  readonly email?: string;
  readonly serverAddress?: string;
  readonly identityToken?: string;
  readonly registryToken?: string;
}

export interface CredentialInit {
  username: string;
  password: string;
  identityToken?: string | undefined;
  registryToken?: string | undefined;
  email?: string | undefined;
  source: CredentialSource;
}

const MASK = "***";

/** A Credential whose secrets do not leak through inspection, serialization or string conversion. */
export class RegistryCredential implements Credential {
  readonly username: string;
  readonly source: CredentialSource;
  readonly #password: string;
  readonly #identityToken: string | undefined;
  readonly #registryToken: string | undefined;
  readonly #email: string | undefined;

  constructor(init: CredentialInit) {
    this.username = init.username;
    this.source = Object.freeze({ ...init.source });
    this.#password = init.password;
    this.#identityToken = init.identityToken || undefined;
    this.#registryToken = init.registryToken || undefined;
    this.#email = init.email || undefined;
    Object.freeze(this);
  }

  get password(): string {
    return this.#password;
  }
  get identityToken(): string | undefined {
    return this.#identityToken;
  }
  get registryToken(): string | undefined {
    return this.#registryToken;
  }
  get email(): string | undefined {
    return this.#email;
  }

  /** What may be shown: the username, the source, and which secrets are present (masked). */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { username: this.username };
    if (this.#password !== "") out.password = MASK;
    if (this.#identityToken !== undefined) out.identityToken = MASK;
    if (this.#registryToken !== undefined) out.registryToken = MASK;
    out.source = this.source;
    return out;
  }

  toString(): string {
    return `Credential(${describeSource(this.source)}, username ${JSON.stringify(this.username)})`;
  }

  [inspect.custom](): string {
    return `Credential ${inspect(this.toJSON(), { depth: 3, breakLength: Number.POSITIVE_INFINITY })}`;
  }
}

/** A short, secret-free description of a source, for messages. */
export function describeSource(source: CredentialSource): string {
  switch (source.kind) {
    case "pull-secret":
      if (source.namespace !== null || source.name !== null) {
        return `pull secret ${source.namespace ?? ""}/${source.name ?? ""}`;
      }
      return `pull secret file ${source.file ?? "(in memory)"}`;
    case "docker-config":
      return `docker config ${source.file}`;
    case "credential-helper":
      return `credential helper ${source.helper}`;
    case "provider-plugin":
      return `credential provider ${source.plugin}`;
    case "auth-config":
      return "credentials given with the pull request";
  }
}

/**
 * Go's encoding/json string escaping: JSON.stringify plus HTML-safe escapes for `<`, `>`, `&` and escapes for
 * U+2028/U+2029, which Go adds and JavaScript does not.
 */
function goJSONString(s: string): string {
  return JSON.stringify(s).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * The kubelet's AuthConfigHash (pkg/credentialprovider/keyring.go): lowercase hex SHA-256 of the JSON of
 * `{username, password, auth, email, serveraddress, identitytoken, registrytoken}` with empty fields omitted,
 * in that order, encoded as Go's encoding/json does.
 */
export function credentialHash(c: CredentialHashInput): string {
  const fields: [string, string | undefined][] = [
    ["username", c.username],
    ["password", c.password],
    ["auth", c.auth],
    ["email", c.email],
    ["serveraddress", c.serverAddress],
    ["identitytoken", c.identityToken],
    ["registrytoken", c.registryToken],
  ];
  const body = fields
    .filter((f): f is [string, string] => typeof f[1] === "string" && f[1] !== "")
    .map(([k, v]) => `"${k}":${goJSONString(v)}`)
    .join(",");
  return createHash("sha256").update(`{${body}}`, "utf8").digest("hex");
}

/**
 * Every string derived from a credential that must never be printed: password, tokens, and the
 * `base64(username:password)` of a Basic Authorization header. Feed it to `redact`.
 */
export function credentialSecrets(c: Credential): string[] {
  const out: string[] = [];
  if (c.password) {
    out.push(c.password);
    out.push(Buffer.from(`${c.username}:${c.password}`, "utf8").toString("base64"));
  }
  if (c.identityToken) out.push(c.identityToken);
  if (c.registryToken) out.push(c.registryToken);
  return out;
}
