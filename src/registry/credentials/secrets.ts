/**
 * Pull secrets (k8s pkg/credentialprovider/secrets/secrets.go MakeDockerKeyring): Kubernetes Secrets of type
 * `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`: `{"auths": {...}}`) or `kubernetes.io/dockercfg`
 * (`.dockercfg`: the bare map), read from YAML or JSON files (several documents, or a List), or a raw docker
 * config.json / .dockercfg file. Other secret types and empty keys are skipped, as the kubelet does (with a
 * warning, since here a person named the file); malformed content fails with a CredentialError naming the file.
 */

import { createRequire } from "node:module";
import type * as Yaml from "yaml";
import type { CredentialSource } from "./credential.ts";
import {
  type AuthEntry,
  DecodeError,
  decodeAuthsMap,
  decodeBase64,
  goField,
  isPlainObject,
  jsonType,
} from "./dockerconfig.ts";
import { CredentialError } from "./errors.ts";
import { parseJSONQuietly } from "./files.ts";

// yaml (72 modules, about 20 ms to load) is needed only when such a file is read: loaded then, not at start-up.
const load = createRequire(import.meta.url);
const yaml = (): typeof Yaml => load("yaml") as typeof Yaml;

export const SECRET_TYPE_DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson";
export const SECRET_TYPE_DOCKERCFG = "kubernetes.io/dockercfg";
export const DOCKER_CONFIG_JSON_KEY = ".dockerconfigjson";
export const DOCKERCFG_KEY = ".dockercfg";

/** The entries one secret (or raw config file) contributes, with the source they are tagged with. */
export interface SecretEntries {
  readonly source: Extract<CredentialSource, { kind: "pull-secret" }>;
  readonly entries: readonly [string, AuthEntry][];
}

/** Top-level keys that mark a raw object as a Docker config.json rather than a bare .dockercfg map. */
const CONFIG_JSON_KEYS = new Set(
  [
    "auths",
    "credsStore",
    "credHelpers",
    "HttpHeaders",
    "psFormat",
    "imagesFormat",
    "detachKeys",
    "currentContext",
    "proxies",
    "plugins",
    "aliases",
    "features",
    "experimental",
  ].map((k) => k.toLowerCase()),
);

type Warn = (message: string) => void;

interface Ctx {
  readonly file: string | null;
  readonly label: string; // the file name, or "pull secret #N" for in-memory objects
  readonly warn: Warn;
}

function fail(ctx: Ctx, what: string): never {
  throw new CredentialError(ctx.file === null ? {} : { file: ctx.file }, `${ctx.label}: ${what}`);
}

function stringOrNull(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

/** Decodes JSON text of a docker config (`.dockerconfigjson` form: only `auths` and `HttpHeaders` are read). */
function decodeConfigJSON(doc: unknown, ctx: Ctx, where: string): [string, AuthEntry][] {
  if (doc === null) return [];
  if (!isPlainObject(doc)) fail(ctx, `${where}: must be an object, not ${jsonType(doc)}`);
  const headers = goField(doc, "HttpHeaders");
  if (headers !== undefined && headers !== null) {
    if (!isPlainObject(headers) || Object.values(headers).some((v) => typeof v !== "string" && v !== null)) {
      fail(ctx, `${where}: HttpHeaders must be an object of strings`);
    }
  }
  return decodeMap(goField(doc, "auths"), ctx, `${where}: auths`);
}

function decodeMap(value: unknown, ctx: Ctx, where: string): [string, AuthEntry][] {
  try {
    return decodeAuthsMap(value, where, false);
  } catch (err) {
    if (err instanceof DecodeError) fail(ctx, err.message);
    throw err;
  }
}

function parseJSONText(text: string, ctx: Ctx, where: string): unknown {
  const parsed = parseJSONQuietly(text);
  if (!parsed.ok) fail(ctx, `${where}: ${parsed.reason}`);
  return parsed.value;
}

/** One Secret object. */
function fromSecret(obj: Record<string, unknown>, ctx: Ctx, out: SecretEntries[]): void {
  const meta = isPlainObject(obj.metadata) ? obj.metadata : {};
  const namespace = stringOrNull(meta.namespace);
  const name = stringOrNull(meta.name);
  const uid = stringOrNull(meta.uid);
  const who = `Secret ${namespace ?? ""}${namespace === null ? "" : "/"}${name ?? "(unnamed)"}`;
  const type = obj.type;
  const data = obj.data ?? null;
  const stringData = obj.stringData ?? null;
  if (data !== null && !isPlainObject(data)) fail(ctx, `${who}: data must be an object`);
  if (stringData !== null && !isPlainObject(stringData)) fail(ctx, `${who}: stringData must be an object`);

  // stringData is merged over data when the API server stores a secret; do the same.
  const value = (key: string): string | null => {
    const s = stringData?.[key];
    if (s !== undefined && s !== null) {
      if (typeof s !== "string") fail(ctx, `${who}: stringData[${JSON.stringify(key)}] must be a string`);
      return s;
    }
    const d = data?.[key];
    if (d === undefined || d === null) return null;
    if (typeof d !== "string") fail(ctx, `${who}: data[${JSON.stringify(key)}] must be a base64 string`);
    const bytes = decodeBase64(d, true);
    if (bytes === null) fail(ctx, `${who}: data[${JSON.stringify(key)}] is not valid base64`);
    return bytes.toString("utf8");
  };

  const source = { kind: "pull-secret", uid, namespace, name, file: ctx.file } as const;
  if (type === SECRET_TYPE_DOCKER_CONFIG_JSON) {
    const text = value(DOCKER_CONFIG_JSON_KEY);
    if (text === null || text === "") {
      ctx.warn(`${ctx.label}: ${who} has no ${DOCKER_CONFIG_JSON_KEY} key; ignored`);
      return;
    }
    const where = `${who}: ${DOCKER_CONFIG_JSON_KEY}`;
    out.push({ source, entries: decodeConfigJSON(parseJSONText(text, ctx, where), ctx, where) });
  } else if (type === SECRET_TYPE_DOCKERCFG) {
    const text = value(DOCKERCFG_KEY);
    if (text === null || text === "") {
      ctx.warn(`${ctx.label}: ${who} has no ${DOCKERCFG_KEY} key; ignored`);
      return;
    }
    const where = `${who}: ${DOCKERCFG_KEY}`;
    out.push({ source, entries: decodeMap(parseJSONText(text, ctx, where), ctx, where) });
  } else {
    const shown = typeof type === "string" ? JSON.stringify(type) : "no type";
    ctx.warn(
      `${ctx.label}: ${who} has ${shown}, not ${SECRET_TYPE_DOCKER_CONFIG_JSON} or ${SECRET_TYPE_DOCKERCFG}; ignored`,
    );
  }
}

/** A raw docker config.json or .dockercfg given as a pull secret. */
function fromRawConfig(obj: Record<string, unknown>, ctx: Ctx, out: SecretEntries[]): void {
  const source = { kind: "pull-secret", uid: null, namespace: null, name: null, file: ctx.file } as const;
  const isConfigJSON = Object.keys(obj).some((k) => CONFIG_JSON_KEYS.has(k.toLowerCase()));
  if (isConfigJSON) {
    if (goField(obj, "credsStore") || goField(obj, "credHelpers")) {
      ctx.warn(`${ctx.label}: credsStore/credHelpers are not used for pull secrets; only auths is read`);
    }
    out.push({ source, entries: decodeConfigJSON(obj, ctx, "docker config") });
  } else {
    out.push({ source, entries: decodeMap(obj, ctx, "dockercfg") });
  }
}

function fromObject(obj: unknown, ctx: Ctx, out: SecretEntries[], depth = 0): void {
  if (obj === null || obj === undefined) return;
  if (!isPlainObject(obj))
    fail(ctx, `expected a Secret, a List or a docker config object, not ${jsonType(obj)}`);
  const kind = obj.kind;
  if (typeof kind === "string" && kind.endsWith("List") && Array.isArray(obj.items) && depth === 0) {
    for (const item of obj.items) fromObject(item, ctx, out, depth + 1);
  } else if (kind === "Secret") {
    fromSecret(obj, ctx, out);
  } else if (kind === undefined && obj.apiVersion === undefined) {
    fromRawConfig(obj, ctx, out);
  } else {
    ctx.warn(`${ctx.label}: ${typeof kind === "string" ? kind : "object"} is not a Secret; ignored`);
  }
}

/** Decodes the text of a pull secret file: YAML or JSON, one or more documents. */
export function decodePullSecretText(text: string, file: string, warn: Warn): SecretEntries[] {
  const ctx: Ctx = { file, label: file, warn };
  const out: SecretEntries[] = [];
  const docs = yaml().parseAllDocuments(text, { uniqueKeys: false, prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((doc, n) => {
    const err = doc.errors[0];
    if (err !== undefined) {
      // yaml's message quotes the offending source line, which may hold a secret: report the position only.
      const pos = err.linePos?.[0];
      const at = pos ? ` at line ${pos.line}, column ${pos.col}` : "";
      fail(ctx, `document ${n + 1}: YAML/JSON syntax error (${err.code})${at}`);
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch {
      fail(ctx, `document ${n + 1}: cannot be converted to data (too many aliases?)`);
    }
    fromObject(value, ctx, out);
  });
  return out;
}

/** Decodes Secret objects already in memory (for example fetched from the API server). */
export function decodePullSecretObject(obj: unknown, index: number, warn: Warn): SecretEntries[] {
  const out: SecretEntries[] = [];
  fromObject(obj, { file: null, label: `pull secret #${index + 1}`, warn }, out);
  return out;
}
