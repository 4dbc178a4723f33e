// KEP-2535 records as the kubelet writes them (kubelet.md §3.5; pkg/kubelet/images/pullmanager/fs_pullrecords.go,
// kubelet: config/v1beta1/types.go): the JSON shapes, the file names, strict decoding of both API versions,
// and merging new credentials into a pulled record.

import { createHash } from "node:crypto";

export const RECORDS_GROUP = "kubelet.config.k8s.io";
/** What kpull writes (the newest kubelet's `encodeVersion`). */
export const RECORDS_API_VERSION = `${RECORDS_GROUP}/v1beta1`;
/** What kpull reads: the alpha writer's version too. */
export const READABLE_API_VERSIONS: readonly string[] = [`${RECORDS_GROUP}/v1alpha1`, RECORDS_API_VERSION];

/** Cache writes while matching stop at this many secrets in one entry (`writeRecordWhileMatchingLimit`). */
export const WRITE_RECORD_WHILE_MATCHING_LIMIT = 100;

export interface ImagePullIntent {
  /** The pod's image string, as written in the container spec. */
  readonly image: string;
}

export interface ImagePullSecret {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  /** The kubelet's AuthConfigHash of the credential; `""` never matches by hash. */
  readonly credentialHash: string;
}

export interface ImagePullServiceAccount {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
}

export interface ImagePullCredentials {
  /** Sorted by namespace, name, uid; empty lists are not written. */
  readonly kubernetesSecrets?: readonly ImagePullSecret[];
  readonly kubernetesServiceAccounts?: readonly ImagePullServiceAccount[];
  /** Pulled anonymously or with node-level credentials: every pod may use the image. */
  readonly nodePodsAccessible?: boolean;
}

export interface ImagePulledRecord {
  /** RFC 3339, seconds (metav1.Time). */
  readonly lastUpdatedTime: string;
  /** The image ref the CRI returned (config digest on containerd). */
  readonly imageRef: string;
  /** Normalized repository without tag or digest (`docker.io/library/nginx`) → who pulled it. */
  readonly credentialMapping: ReadonlyMap<string, ImagePullCredentials>;
}

/** `sha256-` + lowercase hex SHA-256 of the string: the pod's image for an intent, the image ref for a
 * pulled record. */
export function recordFileName(input: string): string {
  return `sha256-${createHash("sha256").update(input, "utf8").digest("hex")}`;
}

/** metav1.Time's JSON: UTC, RFC 3339, whole seconds. */
export function formatRecordTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Milliseconds since the epoch of a record's `lastUpdatedTime`; NaN when it is not RFC 3339. */
export function parseRecordTime(text: string): number {
  return RFC3339.test(text) ? Date.parse(text.toUpperCase()) : Number.NaN;
}

// ---------------------------------------------------------------------------------------------------------
// Encoding: the Kubernetes JSON codec (kind first, then apiVersion, fields in struct order, Go's escaping,
// maps sorted by key, a trailing newline from json.Encoder).

/** Go's encoding/json string escaping (HTML-safe `<`, `>`, `&`, and U+2028/U+2029). */
function goString(s: string): string {
  return JSON.stringify(s).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function goObject(fields: readonly [string, string][]): string {
  return `{${fields.map(([k, v]) => `${goString(k)}:${v}`).join(",")}}`;
}

function encodeSecret(s: ImagePullSecret): string {
  return goObject([
    ["uid", goString(s.uid)],
    ["namespace", goString(s.namespace)],
    ["name", goString(s.name)],
    ["credentialHash", goString(s.credentialHash)],
  ]);
}

function encodeServiceAccount(s: ImagePullServiceAccount): string {
  return goObject([
    ["uid", goString(s.uid)],
    ["namespace", goString(s.namespace)],
    ["name", goString(s.name)],
  ]);
}

function encodeCredentials(c: ImagePullCredentials): string {
  const fields: [string, string][] = [];
  if (c.kubernetesSecrets && c.kubernetesSecrets.length > 0) {
    fields.push(["kubernetesSecrets", `[${c.kubernetesSecrets.map(encodeSecret).join(",")}]`]);
  }
  if (c.kubernetesServiceAccounts && c.kubernetesServiceAccounts.length > 0) {
    fields.push([
      "kubernetesServiceAccounts",
      `[${c.kubernetesServiceAccounts.map(encodeServiceAccount).join(",")}]`,
    ]);
  }
  if (c.nodePodsAccessible === true) fields.push(["nodePodsAccessible", "true"]);
  return goObject(fields);
}

/** Go sorts map keys by their bytes; for UTF-8 that is code point order. */
function byCodePoint(a: string, b: string): number {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return Buffer.compare(x, y);
}

export function encodeIntent(intent: ImagePullIntent, apiVersion = RECORDS_API_VERSION): string {
  return `${goObject([
    ["kind", goString("ImagePullIntent")],
    ["apiVersion", goString(apiVersion)],
    ["image", goString(intent.image)],
  ])}\n`;
}

export function encodePulledRecord(record: ImagePulledRecord, apiVersion = RECORDS_API_VERSION): string {
  const fields: [string, string][] = [
    ["kind", goString("ImagePulledRecord")],
    ["apiVersion", goString(apiVersion)],
    ["lastUpdatedTime", goString(record.lastUpdatedTime)],
    ["imageRef", goString(record.imageRef)],
  ];
  if (record.credentialMapping.size > 0) {
    const keys = [...record.credentialMapping.keys()].sort(byCodePoint);
    fields.push([
      "credentialMapping",
      goObject(keys.map((k) => [k, encodeCredentials(record.credentialMapping.get(k) ?? {})])),
    ]);
  }
  return `${goObject(fields)}\n`;
}

// ---------------------------------------------------------------------------------------------------------
// Strict decoding: unknown fields, wrong types, another kind or an unknown apiVersion fail. `null` is the
// zero value, as with Go's decoder.

export class RecordDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RecordDecodeError";
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fieldsOf(v: unknown, at: string, allowed: readonly string[]): Record<string, Json> {
  if (!isObject(v)) throw new RecordDecodeError(`${at}: expected an object`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw new RecordDecodeError(`${at}: unknown field "${k}"`);
  }
  return v;
}

function str(v: Json | undefined, at: string): string {
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new RecordDecodeError(`${at}: expected a string`);
  return v;
}

function bool(v: Json | undefined, at: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw new RecordDecodeError(`${at}: expected a boolean`);
  return v;
}

function list(v: Json | undefined, at: string): Json[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new RecordDecodeError(`${at}: expected a list`);
  return v;
}

function header(text: string, kind: string): { body: Record<string, Json>; apiVersion: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new RecordDecodeError(`not JSON: ${(error as Error).message}`);
  }
  if (!isObject(parsed)) throw new RecordDecodeError("expected a JSON object");
  const gotKind = parsed.kind;
  const apiVersion = parsed.apiVersion;
  if (typeof apiVersion !== "string" || !READABLE_API_VERSIONS.includes(apiVersion)) {
    throw new RecordDecodeError(`unknown apiVersion ${JSON.stringify(apiVersion ?? "")}`);
  }
  if (gotKind !== kind) {
    throw new RecordDecodeError(`expected kind ${kind}, got ${JSON.stringify(gotKind ?? "")}`);
  }
  return { body: parsed, apiVersion };
}

export function decodeIntent(text: string): { intent: ImagePullIntent; apiVersion: string } {
  const { body, apiVersion } = header(text, "ImagePullIntent");
  const f = fieldsOf(body, "ImagePullIntent", ["kind", "apiVersion", "image"]);
  return { intent: { image: str(f.image, "image") }, apiVersion };
}

function decodeCredentials(v: Json, at: string): ImagePullCredentials {
  const f = fieldsOf(v ?? {}, at, ["kubernetesSecrets", "kubernetesServiceAccounts", "nodePodsAccessible"]);
  const secrets = list(f.kubernetesSecrets, `${at}.kubernetesSecrets`).map((s, i) => {
    const where = `${at}.kubernetesSecrets[${i}]`;
    const g = fieldsOf(s, where, ["uid", "namespace", "name", "credentialHash"]);
    return {
      uid: str(g.uid, `${where}.uid`),
      namespace: str(g.namespace, `${where}.namespace`),
      name: str(g.name, `${where}.name`),
      credentialHash: str(g.credentialHash, `${where}.credentialHash`),
    };
  });
  const accounts = list(f.kubernetesServiceAccounts, `${at}.kubernetesServiceAccounts`).map((s, i) => {
    const where = `${at}.kubernetesServiceAccounts[${i}]`;
    const g = fieldsOf(s, where, ["uid", "namespace", "name"]);
    return {
      uid: str(g.uid, `${where}.uid`),
      namespace: str(g.namespace, `${where}.namespace`),
      name: str(g.name, `${where}.name`),
    };
  });
  const out: {
    kubernetesSecrets?: ImagePullSecret[];
    kubernetesServiceAccounts?: ImagePullServiceAccount[];
    nodePodsAccessible?: boolean;
  } = {};
  if (secrets.length > 0) out.kubernetesSecrets = secrets;
  if (accounts.length > 0) out.kubernetesServiceAccounts = accounts;
  if (bool(f.nodePodsAccessible, `${at}.nodePodsAccessible`)) out.nodePodsAccessible = true;
  return out;
}

export function decodePulledRecord(text: string): { record: ImagePulledRecord; apiVersion: string } {
  const { body, apiVersion } = header(text, "ImagePulledRecord");
  const f = fieldsOf(body, "ImagePulledRecord", [
    "kind",
    "apiVersion",
    "lastUpdatedTime",
    "imageRef",
    "credentialMapping",
  ]);
  const lastUpdatedTime = str(f.lastUpdatedTime, "lastUpdatedTime");
  if (lastUpdatedTime !== "" && Number.isNaN(parseRecordTime(lastUpdatedTime))) {
    throw new RecordDecodeError(`lastUpdatedTime: not an RFC 3339 time: ${JSON.stringify(lastUpdatedTime)}`);
  }
  const mapping = new Map<string, ImagePullCredentials>();
  const rawMapping = f.credentialMapping;
  if (rawMapping !== undefined && rawMapping !== null) {
    if (!isObject(rawMapping)) throw new RecordDecodeError("credentialMapping: expected an object");
    for (const [k, v] of Object.entries(rawMapping)) {
      mapping.set(k, decodeCredentials(v, `credentialMapping[${JSON.stringify(k)}]`));
    }
  }
  return {
    record: { lastUpdatedTime, imageRef: str(f.imageRef, "imageRef"), credentialMapping: mapping },
    apiVersion,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Merging (pulledRecordMergeNewCreds, mergePullSecrets).

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function secretOrder(a: ImagePullSecret, b: ImagePullSecret): number {
  return compare(a.namespace, b.namespace) || compare(a.name, b.name) || compare(a.uid, b.uid);
}

function accountOrder(a: ImagePullServiceAccount, b: ImagePullServiceAccount): number {
  return compare(a.namespace, b.namespace) || compare(a.name, b.name) || compare(a.uid, b.uid);
}

const coordinates = (s: { uid: string; namespace: string; name: string }) =>
  JSON.stringify([s.uid, s.namespace, s.name]);

/** Secrets unique per (uid, namespace, name), the newer hash winning, sorted by namespace, name, uid. */
function mergeSecrets(
  orig: readonly ImagePullSecret[],
  added: readonly ImagePullSecret[],
): { merged: readonly ImagePullSecret[]; changed: boolean } {
  const byCoordinates = new Map<string, ImagePullSecret>();
  for (const s of orig) byCoordinates.set(coordinates(s), s);
  let changed = false;
  for (const s of added) {
    const existing = byCoordinates.get(coordinates(s));
    if (existing === undefined || existing.credentialHash !== s.credentialHash) {
      changed = true;
      byCoordinates.set(coordinates(s), { ...s });
    }
  }
  if (!changed) return { merged: orig, changed };
  return { merged: [...byCoordinates.values()].sort(secretOrder), changed };
}

/** Service accounts as a set, sorted by namespace, name, uid. */
function mergeAccounts(
  orig: readonly ImagePullServiceAccount[],
  added: readonly ImagePullServiceAccount[],
): { merged: readonly ImagePullServiceAccount[]; changed: boolean } {
  const byCoordinates = new Map<string, ImagePullServiceAccount>();
  for (const s of orig) byCoordinates.set(coordinates(s), s);
  let changed = false;
  for (const s of added) {
    if (!byCoordinates.has(coordinates(s))) {
      changed = true;
      byCoordinates.set(coordinates(s), { ...s });
    }
  }
  if (!changed) return { merged: orig, changed };
  return { merged: [...byCoordinates.values()].sort(accountOrder), changed };
}

function hasAny(c: ImagePullCredentials): boolean {
  return (
    c.nodePodsAccessible === true ||
    (c.kubernetesSecrets?.length ?? 0) > 0 ||
    (c.kubernetesServiceAccounts?.length ?? 0) > 0
  );
}

function withLists(
  secrets: readonly ImagePullSecret[],
  accounts: readonly ImagePullServiceAccount[],
): ImagePullCredentials {
  return {
    ...(secrets.length > 0 ? { kubernetesSecrets: secrets } : {}),
    ...(accounts.length > 0 ? { kubernetesServiceAccounts: accounts } : {}),
  };
}

/**
 * A new record for `imageRef`: `credentials` under `key`, or no mapping at all (null: "kubelet-pulled,
 * credentials unknown", which forces verification).
 */
export function newPulledRecord(
  imageRef: string,
  key: string,
  credentials: ImagePullCredentials | null,
  now: string,
): ImagePulledRecord {
  const mapping = new Map<string, ImagePullCredentials>();
  if (credentials !== null) mapping.set(key, credentials);
  return { lastUpdatedTime: now, imageRef, credentialMapping: mapping };
}

/**
 * Merges `added` into the entry for `key` (kubelet.md §3.5 "Merging"): nothing to add → unchanged; a new key
 * takes `added` as is; a `nodePodsAccessible` entry absorbs everything; `nodePodsAccessible` replaces the
 * lists; otherwise secrets merge by coordinates (newer hash wins) and service accounts as a set.
 * `lastUpdatedTime` moves only when the record changes.
 */
export function mergePulledRecord(
  orig: ImagePulledRecord,
  key: string,
  added: ImagePullCredentials | null,
  now: string,
): { record: ImagePulledRecord; changed: boolean } {
  if (added === null || !hasAny(added)) return { record: orig, changed: false };
  const current = orig.credentialMapping.get(key);
  const next = (entry: ImagePullCredentials) => {
    const mapping = new Map(orig.credentialMapping);
    mapping.set(key, entry);
    return { record: { ...orig, lastUpdatedTime: now, credentialMapping: mapping }, changed: true };
  };
  if (current === undefined) return next(added);
  if (current.nodePodsAccessible === true) return { record: orig, changed: false };
  if (added.nodePodsAccessible === true) return next({ nodePodsAccessible: true });
  const secrets = mergeSecrets(current.kubernetesSecrets ?? [], added.kubernetesSecrets ?? []);
  const accounts = mergeAccounts(
    current.kubernetesServiceAccounts ?? [],
    added.kubernetesServiceAccounts ?? [],
  );
  if (!secrets.changed && !accounts.changed) return { record: orig, changed: false };
  return next(withLists(secrets.merged, accounts.merged));
}
