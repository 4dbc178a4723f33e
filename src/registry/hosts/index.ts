// Registry host configuration: which hosts serve a reference domain, in which order, with which
// capabilities and TLS settings. containerd's hosts.toml semantics (spec/oci.md §2.1, §5.1).

export { HostsConfigError } from "./errors.ts";
export type { HostCapability } from "./host.ts";
export { defaultHost, isLoopback } from "./host.ts";
export {
  DEFAULT_HOSTS_DIR,
  type HostsOptions,
  hostDirectory,
  type RegistryHost,
  resolveHosts,
} from "./resolve.ts";
export type { ClientPair } from "./tls.ts";
