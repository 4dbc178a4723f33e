/**
 * Kubelet credential provider plugins (kubelet config/v1 CredentialProviderConfig; credentialprovider/v1
 * Request/Response; k8s pkg/credentialprovider/plugin/plugin.go). A plugin runs only for images its
 * `matchImages` match (keyring matcher); its response is cached per image, registry or globally until the
 * duration expires; exec failures yield no credentials and a warning, as in the kubelet.
 */

import { createRequire } from "node:module";
import { join } from "node:path";
import type * as Yaml from "yaml";
import { parseGoDuration } from "../../policy/index.ts";
import { isPlainObject, jsonType } from "./dockerconfig.ts";
import { CredentialError } from "./errors.ts";
import { run } from "./exec.ts";
import { isValidMatchImage, urlsMatch } from "./keyring.ts";

// yaml (72 modules, about 20 ms to load) is needed only when such a file is read: loaded then, not at start-up.
const load = createRequire(import.meta.url);
const yaml = (): typeof Yaml => load("yaml") as typeof Yaml;

export const CONFIG_API_VERSIONS = new Set([
  "kubelet.config.k8s.io/v1",
  "kubelet.config.k8s.io/v1beta1",
  "kubelet.config.k8s.io/v1alpha1",
]);
export const PROVIDER_API_VERSIONS = new Set([
  "credentialprovider.kubelet.k8s.io/v1",
  "credentialprovider.kubelet.k8s.io/v1beta1",
  "credentialprovider.kubelet.k8s.io/v1alpha1",
]);
/** The kubelet's exec timeout for a plugin. */
export const DEFAULT_PLUGIN_TIMEOUT_MS = 60_000;
/** The kubelet purges expired cache entries at most this often. */
export const CACHE_PURGE_INTERVAL_MS = 15 * 60_000;
export const GLOBAL_CACHE_KEY = "global";

export interface ProviderConfig {
  readonly name: string;
  readonly matchImages: readonly string[];
  readonly defaultCacheDurationMs: number;
  readonly apiVersion: string;
  readonly args: readonly string[];
  readonly env: readonly (readonly [string, string])[];
  /** tokenAttributes asks for a service account token, which kpull cannot mint: such a plugin is not run. */
  readonly requiresServiceAccountToken: boolean;
}

export interface PluginAuth {
  readonly username: string;
  readonly password: string;
}

function configError(file: string, what: string): never {
  throw new CredentialError({ file }, `${file}: ${what}`);
}

function stringList(v: unknown, file: string, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
    configError(file, `${where}: must be a list of strings`);
  return v as string[];
}

/** Decodes and validates a CredentialProviderConfig the way the kubelet does at start-up. */
export function decodeCredentialProviderConfig(text: string, file: string): ProviderConfig[] {
  const docs = yaml().parseAllDocuments(text, { prettyErrors: true });
  const all = Array.isArray(docs) ? docs : [];
  for (const d of all) {
    const err = d.errors[0];
    if (err === undefined) continue;
    // yaml's message quotes the source line (the config may hold env values): give the position only.
    const pos = err.linePos?.[0];
    configError(
      file,
      `YAML/JSON syntax error (${err.code})${pos ? ` at line ${pos.line}, column ${pos.col}` : ""}`,
    );
  }
  const list = all.filter((d) => d.contents !== null);
  if (list.length !== 1)
    configError(file, `expected one CredentialProviderConfig document, found ${list.length}`);
  const doc = list[0] as (typeof list)[number];
  let obj: unknown;
  try {
    obj = doc.toJS({ maxAliasCount: 100 });
  } catch {
    configError(file, "cannot be converted to data (too many aliases?)");
  }
  if (!isPlainObject(obj)) configError(file, `must be an object, not ${jsonType(obj)}`);
  if (typeof obj.apiVersion !== "string" || !CONFIG_API_VERSIONS.has(obj.apiVersion)) {
    configError(file, `apiVersion must be one of ${[...CONFIG_API_VERSIONS].join(", ")}`);
  }
  if (obj.kind !== "CredentialProviderConfig") configError(file, "kind must be CredentialProviderConfig");
  const providers = obj.providers;
  if (!Array.isArray(providers) || providers.length === 0) {
    configError(file, "providers: at least 1 item in plugins is required");
  }
  const seen = new Set<string>();
  return providers.map((p: unknown, i: number): ProviderConfig => {
    const at = `providers[${i}]`;
    if (!isPlainObject(p)) configError(file, `${at}: must be an object`);
    const name = p.name;
    if (typeof name !== "string" || name === "") configError(file, `${at}.name: required`);
    if (name.includes("/")) configError(file, `${at}.name: provider name cannot contain '/'`);
    if (name.includes(" ")) configError(file, `${at}.name: provider name cannot contain spaces`);
    if (name === "." || name === "..") configError(file, `${at}.name: provider name cannot be '${name}'`);
    if (seen.has(name)) configError(file, `${at}.name: duplicate provider name ${JSON.stringify(name)}`);
    seen.add(name);
    const apiVersion = p.apiVersion;
    if (typeof apiVersion !== "string" || apiVersion === "") configError(file, `${at}.apiVersion: required`);
    if (!PROVIDER_API_VERSIONS.has(apiVersion)) {
      configError(file, `${at}.apiVersion: unsupported ${JSON.stringify(apiVersion)}`);
    }
    const matchImages = stringList(p.matchImages, file, `${at}.matchImages`);
    if (matchImages.length === 0)
      configError(file, `${at}.matchImages: at least 1 item in matchImages is required`);
    for (const m of matchImages) {
      if (!isValidMatchImage(m)) configError(file, `${at}.matchImages: match image is invalid: ${m}`);
    }
    if (p.defaultCacheDuration === undefined || p.defaultCacheDuration === null) {
      configError(file, `${at}.defaultCacheDuration: required`);
    }
    const defaultCacheDurationMs =
      typeof p.defaultCacheDuration === "string" ? parseGoDuration(p.defaultCacheDuration) : null;
    if (defaultCacheDurationMs === null) configError(file, `${at}.defaultCacheDuration: not a duration`);
    if (defaultCacheDurationMs < 0)
      configError(file, `${at}.defaultCacheDuration: must be greater than or equal to 0`);
    const args = stringList(p.args, file, `${at}.args`);
    const env: [string, string][] = [];
    if (p.env !== undefined && p.env !== null) {
      if (!Array.isArray(p.env)) configError(file, `${at}.env: must be a list`);
      p.env.forEach((e: unknown, j: number) => {
        if (
          !isPlainObject(e) ||
          typeof e.name !== "string" ||
          e.name === "" ||
          typeof (e.value ?? "") !== "string"
        ) {
          configError(file, `${at}.env[${j}]: must be {name, value} strings`);
        }
        env.push([e.name, (e.value ?? "") as string]);
      });
    }
    let requiresServiceAccountToken = false;
    if (p.tokenAttributes !== undefined && p.tokenAttributes !== null) {
      if (!isPlainObject(p.tokenAttributes)) configError(file, `${at}.tokenAttributes: must be an object`);
      requiresServiceAccountToken = p.tokenAttributes.requireServiceAccount !== false;
    }
    return { name, matchImages, defaultCacheDurationMs, apiVersion, args, env, requiresServiceAccountToken };
  });
}

interface CacheEntry {
  readonly expiresAt: number;
  readonly auth: readonly [string, PluginAuth][];
}

interface Response {
  readonly cacheKeyType: unknown;
  readonly cacheDurationMs: number | null; // null = absent
  readonly auth: [string, PluginAuth][];
}

export interface PluginRuntime {
  readonly binDir: string;
  readonly env: Record<string, string | undefined>;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  readonly now: () => number;
  readonly warn: (message: string) => void;
}

const RESPONSE_FIELDS = new Set(["kind", "apiVersion", "cacheKeyType", "cacheDuration", "auth"]);
const AUTH_FIELDS = new Set(["username", "password"]);

/** One configured plugin with its cache. */
export class ProviderPlugin {
  readonly config: ProviderConfig;
  readonly #rt: PluginRuntime;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<Response | string>>();
  #lastPurge: number;
  #warnedToken = false;

  constructor(config: ProviderConfig, runtime: PluginRuntime) {
    this.config = config;
    this.#rt = runtime;
    this.#lastPurge = runtime.now();
  }

  get executable(): string {
    return join(this.#rt.binDir, this.config.name);
  }

  matches(image: string): boolean {
    return this.config.matchImages.some((m) => urlsMatch(m, image));
  }

  /** The plugin's `auth` map for `image` (cached or fresh); empty when it does not apply or failed. */
  async provide(image: string): Promise<readonly [string, PluginAuth][]> {
    if (!this.matches(image)) return [];
    const cached = this.#cached(image);
    if (cached !== null) return cached;
    if (this.config.requiresServiceAccountToken) {
      if (!this.#warnedToken) {
        this.#warnedToken = true;
        this.#rt.warn(
          `credential provider ${this.config.name}: tokenAttributes requires a service account token, which kpull cannot provide; plugin not run`,
        );
      }
      return [];
    }
    let pending = this.#inflight.get(image);
    if (pending === undefined) {
      pending = this.#exec(image).finally(() => this.#inflight.delete(image));
      this.#inflight.set(image, pending);
    }
    const response = await pending;
    if (typeof response === "string") {
      this.#rt.warn(response);
      return [];
    }
    let cacheKey: string;
    switch (response.cacheKeyType) {
      case "Image":
        cacheKey = image;
        break;
      case "Registry":
        cacheKey = registryOf(image);
        break;
      case "Global":
        cacheKey = GLOBAL_CACHE_KEY;
        break;
      default:
        this.#rt.warn(
          `credential provider ${this.config.name}: image ${image}: invalid cacheKeyType ${JSON.stringify(response.cacheKeyType)}; response ignored`,
        );
        return [];
    }
    const duration = response.cacheDurationMs ?? this.config.defaultCacheDurationMs;
    if (duration !== 0) {
      this.#cache.set(cacheKey, { expiresAt: this.#rt.now() + duration, auth: response.auth });
    }
    return response.auth;
  }

  /** Cache lookup in the kubelet's order: image key, registry key, global key. */
  #cached(image: string): readonly [string, PluginAuth][] | null {
    const now = this.#rt.now();
    if (now > this.#lastPurge + CACHE_PURGE_INTERVAL_MS) {
      for (const [k, e] of this.#cache) if (now > e.expiresAt) this.#cache.delete(k);
      this.#lastPurge = now;
    }
    for (const key of [image, registryOf(image), GLOBAL_CACHE_KEY]) {
      const entry = this.#cache.get(key);
      if (entry === undefined) continue;
      if (now > entry.expiresAt) {
        this.#cache.delete(key);
        continue;
      }
      return entry.auth;
    }
    return null;
  }

  /** Runs the plugin; a Response, or a secret-free failure message. */
  async #exec(image: string): Promise<Response | string> {
    const { name, apiVersion } = this.config;
    const ctx = `credential provider ${name}: image ${image}`;
    const request = JSON.stringify({ apiVersion, kind: "CredentialProviderRequest", image });
    const env: Record<string, string | undefined> = { ...this.#rt.env };
    for (const [k, v] of this.config.env) env[k] = v;
    const result = await run({
      command: this.executable,
      args: this.config.args,
      input: request,
      env,
      timeoutMs: this.#rt.timeoutMs,
      maxStdoutBytes: this.#rt.maxOutputBytes,
      maxStderrBytes: this.#rt.maxOutputBytes,
    });
    switch (result.kind) {
      case "timeout":
        return `${ctx}: no answer within ${this.#rt.timeoutMs} ms; killed`;
      case "too-much-output":
        return `${ctx}: ${result.stream} exceeded ${this.#rt.maxOutputBytes} bytes; killed`;
      case "spawn-failed":
        return `${ctx}: cannot run ${this.executable}: ${result.errno}`;
      case "exited":
        break;
    }
    if (result.code !== 0) {
      const status = result.code === null ? `signal ${result.signal}` : `exit status ${result.code}`;
      return `${ctx}: failed with ${status} (output withheld)`;
    }
    return decodeResponse(result.stdout.toString("utf8"), apiVersion, ctx);
  }
}

/** Strict decoding of a CredentialProviderResponse; a failure message names no part of the output. */
export function decodeResponse(text: string, apiVersion: string, ctx: string): Response | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return `${ctx}: malformed response: not JSON (output withheld)`;
  }
  if (!isPlainObject(doc)) return `${ctx}: malformed response: not a JSON object`;
  for (const k of Object.keys(doc)) {
    if (!RESPONSE_FIELDS.has(k)) return `${ctx}: malformed response: unknown field ${JSON.stringify(k)}`;
  }
  if (doc.apiVersion !== apiVersion) {
    return `${ctx}: apiVersion from credential plugin response did not match expected apiVersion ${apiVersion}`;
  }
  if (doc.kind !== "CredentialProviderResponse") {
    return `${ctx}: kind from credential plugin response was not CredentialProviderResponse`;
  }
  let cacheDurationMs: number | null = null;
  if (doc.cacheDuration !== undefined && doc.cacheDuration !== null) {
    cacheDurationMs = typeof doc.cacheDuration === "string" ? parseGoDuration(doc.cacheDuration) : null;
    if (cacheDurationMs === null) return `${ctx}: malformed response: cacheDuration is not a duration`;
  }
  const auth: [string, PluginAuth][] = [];
  if (doc.auth !== undefined && doc.auth !== null) {
    if (!isPlainObject(doc.auth)) return `${ctx}: malformed response: auth must be an object`;
    for (const [key, value] of Object.entries(doc.auth)) {
      if (value === null) {
        auth.push([key, { username: "", password: "" }]);
        continue;
      }
      if (!isPlainObject(value))
        return `${ctx}: malformed response: auth[${JSON.stringify(key)}] must be an object`;
      for (const k of Object.keys(value)) {
        if (!AUTH_FIELDS.has(k)) {
          return `${ctx}: malformed response: auth[${JSON.stringify(key)}]: unknown field ${JSON.stringify(k)}`;
        }
      }
      const username = value.username ?? "";
      const password = value.password ?? "";
      if (typeof username !== "string" || typeof password !== "string") {
        return `${ctx}: malformed response: auth[${JSON.stringify(key)}]: username and password must be strings`;
      }
      auth.push([key, { username, password }]);
    }
  }
  return { cacheKeyType: doc.cacheKeyType, cacheDurationMs, auth };
}

/** The kubelet's parseRegistry: the text before the first `/`. */
export function registryOf(image: string): string {
  const slash = image.indexOf("/");
  return slash < 0 ? image : image.slice(0, slash);
}
