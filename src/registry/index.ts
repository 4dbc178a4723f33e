// kpull's OCI Distribution client: the only module that talks to registries.

export type {
  CredentialSource as CredentialProvider,
  Descriptor,
  FetchedManifest,
  ImageIndex,
  ImageManifest,
  RegistryClientOptions,
} from "./client.ts";
export {
  MAX_CONFIG_BYTES,
  MAX_MANIFEST_BYTES,
  parseManifestJson,
  RegistryClient,
  Repository,
  sha256,
} from "./client.ts";
export type { Credential, CredentialLookupOptions, CredentialSource } from "./credentials/index.ts";
export {
  CredentialError,
  CredentialStore,
  credentialHash,
  describeSource,
  matchesRegistryKey,
  RegistryCredential,
  redact,
} from "./credentials/index.ts";
export type { RegistryErrorCode } from "./errors.ts";
export { RegistryError } from "./errors.ts";
export type { HostCapability, HostsOptions, RegistryHost } from "./hosts/index.ts";
export { DEFAULT_HOSTS_DIR, defaultHost, HostsConfigError, isLoopback, resolveHosts } from "./hosts/index.ts";
export { bareMediaType, isIndexType, isManifestType, MANIFEST_ACCEPT, MediaType } from "./mediatypes.ts";
export type { Platform } from "./platform.ts";
export {
  acceptablePlatforms,
  choosePlatformEntry,
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  PlatformError,
  parsePlatform,
} from "./platform.ts";
export type { HttpMethod, RateLimit, RequestStats } from "./stats.ts";
export { parseRateLimit, requestCounts } from "./stats.ts";
