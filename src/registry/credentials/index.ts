/**
 * Registry credentials, in the kubelet's order: pull secrets, then the node's Docker config (with Docker's
 * credential helpers), then kubelet credential provider plugins. See store.ts for the order and keyring.ts for
 * the matching rules.
 */

export type { Credential, CredentialHashInput, CredentialSource } from "./credential.ts";
export { credentialHash, credentialSecrets, describeSource, RegistryCredential } from "./credential.ts";
export { dockerConfigKey } from "./dockerconfig.ts";
export type { CredentialErrorOrigin } from "./errors.ts";
export { CredentialError, REDACTED, redact } from "./errors.ts";
export { isDockerHubRepository, matchesRegistryKey, normalizeRegistryKey } from "./keyring.ts";
export type { CredentialLookupOptions } from "./store.ts";
export { CredentialStore, DEFAULT_HELPER_TIMEOUT_MS, DEFAULT_MAX_OUTPUT_BYTES } from "./store.ts";
