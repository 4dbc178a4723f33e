/**
 * CredentialStore: the credentials to try for one repository, in the kubelet's order
 * (kubelet.md §2.11; k8s MakeDockerKeyring + UnionDockerKeyring):
 *
 *  1. pull secrets: one keyring over all secrets, in the order given;
 *  2. the node's Docker config (kpull's stand-in for the kubelet's config.json): the credential helper that
 *     docker would use for the registry (credHelpers, else credsStore), then the `auths` keyring;
 *  3. credential provider plugins: one keyring over every matching plugin's answer, in config order.
 *
 * Each keyring sorts its keys in reverse order and falls back to `index.docker.io` for Docker Hub images when
 * none matched. An empty result means "pull anonymously"; a non-empty one means "try these in order, and
 * never fall back to anonymous".
 */

import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { type Credential, type CredentialSource, describeSource, RegistryCredential } from "./credential.ts";
import { DecodeError, decodeDockerConfig, dockerConfigKey, isPlaceholder } from "./dockerconfig.ts";
import { CredentialError } from "./errors.ts";
import { parseJSONQuietly, readCredentialFile } from "./files.ts";
import { Keyring } from "./keyring.ts";
// Helpers, plugins and pull secrets are loaded when a lookup needs them: most pulls use none, and the
// helper and plugin runners bring node:child_process (a few ms of every `kpull pull` start otherwise).
import type { ProviderPlugin } from "./plugins.ts";
import type { SecretEntries } from "./secrets.ts";

export interface CredentialLookupOptions {
  /** Files holding Secrets (YAML or JSON, several documents or a List) or raw docker config files. */
  readonly pullSecretFiles?: readonly string[];
  /** Secret objects already in memory (after the files). */
  readonly pullSecrets?: readonly unknown[];
  /** Directory of the node's `config.json`; else `DOCKER_CONFIG`, else `~/.docker`; null reads none. */
  readonly dockerConfigDir?: string | null;
  /** A CredentialProviderConfig file (kubelet `--image-credential-provider-config`). */
  readonly credentialProviderConfig?: string;
  /** Where the plugins live (kubelet `--image-credential-provider-bin-dir`); required with the config. */
  readonly credentialProviderBinDir?: string;
  /** Environment for DOCKER_CONFIG/HOME/PATH and for helpers and plugins; default `process.env`. */
  readonly env?: Record<string, string | undefined>;
  /** Deadline for one credential helper call; default 10 s. */
  readonly helperTimeoutMs?: number;
  /** Deadline for one plugin call; default 60 s (the kubelet's). */
  readonly pluginTimeoutMs?: number;
  /** Bound on a helper's or plugin's stdout and stderr; default 1 MiB. */
  readonly maxOutputBytes?: number;
  /** Clock for the plugin cache, in milliseconds; default Date.now. */
  readonly now?: () => number;
  /** Secret-free notices: ignored secrets and keys, failed plugins (which yield no credentials, as in the kubelet). */
  readonly onWarning?: (message: string) => void;
}

export const DEFAULT_HELPER_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

export class CredentialStore {
  readonly #options: CredentialLookupOptions;
  readonly #env: Record<string, string | undefined>;
  readonly #warn: (message: string) => void;
  /** Files are re-read on every lookup; what is wrong with them is said once. */
  readonly #warned = new Set<string>();
  readonly #warnOnce = (message: string): void => {
    if (this.#warned.has(message)) return;
    this.#warned.add(message);
    this.#warn(message);
  };
  #plugins: Promise<ProviderPlugin[]> | null = null;

  constructor(options: CredentialLookupOptions = {}) {
    this.#options = { ...options };
    this.#env = { ...(options.env ?? process.env) };
    this.#warn = options.onWarning ?? (() => {});
  }

  /**
   * Credentials to try for a normalized repository (`docker.io/library/nginx`, `127.0.0.1:5000/app`; no tag or
   * digest), in order. Empty = anonymous. Rejects with CredentialError when a pull secret or config is
   * malformed or a credential helper fails (as `docker pull` does).
   */
  async lookup(repository: string): Promise<Credential[]> {
    if (typeof repository !== "string" || repository === "") {
      throw new TypeError("lookup needs a normalized repository name");
    }
    const fromSecrets = await this.#pullSecretCredentials(repository);
    const fromDocker = await this.#dockerConfigCredentials(repository);
    const fromPlugins = await this.#pluginCredentials(repository);
    return [...fromSecrets, ...fromDocker, ...fromPlugins];
  }

  /** Where the Docker config is read from (null when disabled). */
  dockerConfigFile(): string | null {
    if (this.#options.dockerConfigDir === null) return null;
    const dir =
      this.#options.dockerConfigDir ??
      this.#env.DOCKER_CONFIG ??
      join(this.#env.HOME ?? homedir(), ".docker");
    return join(dir, "config.json");
  }

  async #pullSecretCredentials(repository: string): Promise<RegistryCredential[]> {
    const files = this.#options.pullSecretFiles ?? [];
    const objects = this.#options.pullSecrets ?? [];
    if (files.length === 0 && objects.length === 0) return [];
    const { decodePullSecretObject, decodePullSecretText } = await import("./secrets.ts");
    const all: SecretEntries[] = [];
    for (const file of files) {
      const text = (await readCredentialFile(file, false)) as string;
      all.push(...decodePullSecretText(text, file, this.#warnOnce));
    }
    objects.forEach((obj, i) => {
      all.push(...decodePullSecretObject(obj, i, this.#warnOnce));
    });
    const keyring = new Keyring<RegistryCredential>();
    for (const { source, entries } of all) {
      for (const [key, e] of entries) {
        const cred = new RegistryCredential({
          username: e.username,
          password: e.password,
          email: e.email,
          source,
        });
        if (!keyring.add(key, cred)) this.#warnKey(key, source);
      }
    }
    return keyring.lookup(repository);
  }

  async #dockerConfigCredentials(repository: string): Promise<RegistryCredential[]> {
    const file = this.dockerConfigFile();
    if (file === null) return [];
    const text = await readCredentialFile(file, true);
    if (text === null) return [];
    const parsed = parseJSONQuietly(text);
    if (!parsed.ok) throw new CredentialError({ file }, `${file}: ${parsed.reason}`);
    let config: ReturnType<typeof decodeDockerConfig>;
    try {
      config = decodeDockerConfig(parsed.value, true);
    } catch (err) {
      if (err instanceof DecodeError) throw new CredentialError({ file }, `${file}: ${err.message}`);
      throw err;
    }

    const out: RegistryCredential[] = [];
    // docker/cli configfile.GetCredentialsStore: credHelpers[key] (even "") wins over credsStore.
    const key = dockerConfigKey(repository);
    const helper = config.credHelpers.has(key) ? (config.credHelpers.get(key) as string) : config.credsStore;
    if (helper !== "") {
      const { helperExecutable, helperGet } = await import("./helper.ts");
      const found = await helperGet(helper, key, {
        env: this.#env,
        timeoutMs: this.#options.helperTimeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS,
        maxOutputBytes: this.#options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
      });
      if (found !== null) {
        out.push(
          new RegistryCredential({
            ...found,
            source: { kind: "credential-helper", helper: helperExecutable(helper) },
          }),
        );
      }
    }

    const source = { kind: "docker-config", file } as const;
    const keyring = new Keyring<RegistryCredential>();
    for (const [k, e] of config.auths) {
      // With a helper in charge, `docker login` leaves empty entries in auths: they are not credentials.
      if (helper !== "" && isPlaceholder(e)) continue;
      const cred = new RegistryCredential({ ...e, source });
      if (!keyring.add(k, cred)) this.#warnKey(k, source);
    }
    out.push(...keyring.lookup(repository));
    return out;
  }

  async #pluginCredentials(repository: string): Promise<RegistryCredential[]> {
    if (this.#options.credentialProviderConfig === undefined) return [];
    if (this.#plugins === null) {
      this.#plugins = this.#loadPlugins();
      this.#plugins.catch(() => {
        this.#plugins = null; // a fixed config is picked up on the next lookup
      });
    }
    const plugins = await this.#plugins;
    const answers = await Promise.all(plugins.map((p) => p.provide(repository)));
    const keyring = new Keyring<RegistryCredential>();
    answers.forEach((auth, i) => {
      const plugin = plugins[i] as ProviderPlugin;
      const source = { kind: "provider-plugin", plugin: plugin.config.name } as const;
      for (const [k, a] of auth) {
        if (!keyring.add(k, new RegistryCredential({ ...a, source }))) this.#warnKey(k, source);
      }
    });
    return keyring.lookup(repository);
  }

  async #loadPlugins(): Promise<ProviderPlugin[]> {
    const file = this.#options.credentialProviderConfig as string;
    const binDir = this.#options.credentialProviderBinDir;
    const { DEFAULT_PLUGIN_TIMEOUT_MS, decodeCredentialProviderConfig, ProviderPlugin } = await import(
      "./plugins.ts"
    );
    const text = (await readCredentialFile(file, false)) as string;
    const configs = decodeCredentialProviderConfig(text, file);
    if (binDir === undefined || binDir === "") {
      throw new CredentialError(
        { file },
        `${file}: a credential provider bin dir is required with a provider config`,
      );
    }
    const plugins = configs.map(
      (config) =>
        new ProviderPlugin(config, {
          binDir,
          env: this.#env,
          timeoutMs: this.#options.pluginTimeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS,
          maxOutputBytes: this.#options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
          now: this.#options.now ?? Date.now,
          warn: this.#warn,
        }),
    );
    // The kubelet refuses to start when a configured plugin binary is missing.
    for (const p of plugins) {
      try {
        await access(p.executable, constants.X_OK);
      } catch {
        throw new CredentialError(
          { file, plugin: p.config.name },
          `${file}: credential provider ${p.config.name}: ${p.executable} is not an executable file`,
        );
      }
    }
    return plugins;
  }

  #warnKey(key: string, source: CredentialSource): void {
    this.#warn(
      `registry key ${JSON.stringify(key)} is not a valid URL; entry ignored (${describeSource(source)})`,
    );
  }
}
