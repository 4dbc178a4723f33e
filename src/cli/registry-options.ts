// Registry options shared by every command that talks to a registry, and the client they configure.

import {
  CredentialStore,
  type Platform,
  parsePlatform,
  RegistryClient,
  type RegistryClientOptions,
} from "../registry/index.ts";
import { parseDuration } from "../store/core.ts";
import { UsageError } from "./args.ts";
import type { CliIo } from "./io.ts";

export const registryOptions = {
  "pull-secret": { type: "string", multiple: true },
  "docker-config": { type: "string" },
  "credential-provider-config": { type: "string" },
  "credential-provider-bin-dir": { type: "string" },
  "hosts-dir": { type: "string" },
  "insecure-registry": { type: "string", multiple: true },
  platform: { type: "string" },
} as const;

/** Flags of the commands that pull onto the node (pull, start, prepull). */
export const nodeOptions = {
  "pull-deadline": { type: "string" },
} as const;

export const nodeOptionsHelp = `Node flags:
  --pull-deadline DURATION              give up a pull after this long (e.g. 90s, 5m); default none, like the kubelet
`;

/** Node settings from the node flags, ready to spread into Node.open's options. */
export function nodeSettingsFrom(
  command: string,
  values: { "pull-deadline"?: string | undefined },
): { pullDeadlineMs?: number } {
  const value = values["pull-deadline"];
  if (value === undefined) return {};
  try {
    const ms = parseDuration(value);
    if (ms <= 0) throw new Error("must be positive");
    return { pullDeadlineMs: ms };
  } catch {
    throw new UsageError(command, `invalid --pull-deadline "${value}": use a duration such as 90s or 5m`);
  }
}

export const registryOptionsHelp = `Registry flags:
  --pull-secret FILE                    a Secret (kubernetes.io/dockerconfigjson or dockercfg) or config.json; repeatable
  --docker-config DIR                   directory of config.json (default: $DOCKER_CONFIG, else ~/.docker)
  --credential-provider-config FILE     kubelet CredentialProviderConfig for exec plugins
  --credential-provider-bin-dir DIR     where the plugins live
  --hosts-dir DIR                       containerd hosts.toml directory for mirrors and TLS (default /etc/containerd/certs.d)
  --insecure-registry HOST              allow plain HTTP or unverified TLS for HOST; repeatable
  --platform OS/ARCH[/VARIANT]          platform to choose from a multi-platform index (default: this machine's)
`;

export interface RegistryFlagValues {
  "pull-secret"?: string[] | undefined;
  "docker-config"?: string | undefined;
  "credential-provider-config"?: string | undefined;
  "credential-provider-bin-dir"?: string | undefined;
  "hosts-dir"?: string | undefined;
  "insecure-registry"?: string[] | undefined;
  platform?: string | undefined;
}

/** The credential lookup the flags describe, in the kubelet's order. */
export function credentialsFrom(command: string, values: RegistryFlagValues, io: CliIo): CredentialStore {
  if (
    values["credential-provider-config"] !== undefined &&
    values["credential-provider-bin-dir"] === undefined
  ) {
    throw new UsageError(command, "--credential-provider-config needs --credential-provider-bin-dir");
  }
  return new CredentialStore({
    ...(values["pull-secret"] ? { pullSecretFiles: values["pull-secret"] } : {}),
    ...(values["docker-config"] !== undefined ? { dockerConfigDir: values["docker-config"] } : {}),
    ...(values["credential-provider-config"] !== undefined
      ? {
          credentialProviderConfig: values["credential-provider-config"],
          credentialProviderBinDir: values["credential-provider-bin-dir"],
        }
      : {}),
    env: io.env,
    onWarning: (message) => io.stderr.write(`warning: ${message}\n`),
  });
}

/** Hosts and TLS settings from the flags (credentials apart). */
export function registryClientOptionsFrom(
  values: RegistryFlagValues,
): Omit<RegistryClientOptions, "credentials"> {
  return {
    ...(values["hosts-dir"] !== undefined ? { hostsDir: values["hosts-dir"] } : {}),
    ...(values["insecure-registry"] ? { insecureRegistries: values["insecure-registry"] } : {}),
  };
}

export function registryClientFrom(command: string, values: RegistryFlagValues, io: CliIo): RegistryClient {
  return new RegistryClient({
    credentials: credentialsFrom(command, values, io),
    ...registryClientOptionsFrom(values),
  });
}

export function platformFrom(command: string, value: string | undefined): Platform | undefined {
  if (value === undefined) return undefined;
  try {
    return parsePlatform(value);
  } catch (error) {
    throw new UsageError(command, (error as Error).message);
  }
}
