// From registry credentials to the image manager's PullCredentials, and from those to what KEP-2535 records
// and matches (kubelet.md §2.11, §3.4 step 8, §3.5 "What is recorded"; image_manager.go trackedToImagePullCreds).

import { type Credential, credentialHash, describeSource } from "../../registry/index.ts";
import type { CredentialOrigin, PullCredential } from "../image-manager.ts";
import type { PodCredentials } from "./check.ts";
import type { ImagePullCredentials, ImagePullServiceAccount } from "./records.ts";

export interface ToPullCredentialsOptions {
  /** The pod's service account, for plugins that exchange its token (KEP-4412). */
  readonly serviceAccount?: ImagePullServiceAccount | null;
  /** Names of the provider plugins that were given the service-account token; their credentials are recorded
   * under the service account. Every other plugin's credentials are node credentials. kpull runs no such
   * plugin today (it cannot mint tokens), so by default there are none. */
  readonly serviceAccountPlugins?: readonly string[];
}

/** Where a registry credential came from, as KEP-2535 sees it. */
export function credentialOrigin(
  credential: Credential,
  options: ToPullCredentialsOptions = {},
): CredentialOrigin {
  const source = credential.source;
  switch (source.kind) {
    case "pull-secret":
      // A raw docker config given as a pull secret has no Kubernetes metadata: it is recorded with an empty
      // UID (matched by hash only, see check.ts) and its file as the name, so two files stay apart.
      return {
        kind: "secret",
        uid: source.uid ?? "",
        namespace: source.namespace ?? "",
        name: source.name ?? source.file ?? "",
        credentialHash: credentialHash(credential),
      };
    case "provider-plugin": {
      const sa = options.serviceAccount ?? null;
      if (sa !== null && (options.serviceAccountPlugins ?? []).includes(source.plugin)) {
        return { kind: "service-account", uid: sa.uid, namespace: sa.namespace, name: sa.name };
      }
      return { kind: "node" };
    }
    case "docker-config":
    case "credential-helper":
    case "auth-config":
      return { kind: "node" };
  }
}

/** Registry credentials (CredentialStore.lookup, in the kubelet's order) → what the image manager tries, in
 * the same order, each with the CRI AuthConfig and its origin. */
export function toPullCredentials(
  credentials: readonly Credential[],
  options: ToPullCredentialsOptions = {},
): PullCredential[] {
  return credentials.map((c) => ({
    auth: {
      ...(c.username !== "" ? { username: c.username } : {}),
      ...(c.password !== "" ? { password: c.password } : {}),
      ...(c.identityToken ? { identityToken: c.identityToken } : {}),
      ...(c.registryToken ? { registryToken: c.registryToken } : {}),
    },
    source: describeSource(c.source),
    origin: credentialOrigin(c, options),
  }));
}

/** What the check compares (§3.4 step 8): every pull-secret credential, and the first service-account one. */
export function podCredentials(credentials: readonly PullCredential[]): PodCredentials {
  const secrets = [];
  let serviceAccount: ImagePullServiceAccount | null = null;
  for (const { origin } of credentials) {
    if (origin.kind === "secret") {
      secrets.push({
        uid: origin.uid,
        namespace: origin.namespace,
        name: origin.name,
        credentialHash: origin.credentialHash,
      });
    } else if (origin.kind === "service-account" && serviceAccount === null) {
      serviceAccount = { uid: origin.uid, namespace: origin.namespace, name: origin.name };
    }
  }
  return { secrets, serviceAccount };
}

/** What a successful pull records: the secret, the service account, or `nodePodsAccessible` for node
 * credentials and anonymous pulls (null). */
export function recordedCredentials(credential: PullCredential | null): ImagePullCredentials {
  const origin = credential?.origin ?? { kind: "node" };
  switch (origin.kind) {
    case "secret":
      return {
        kubernetesSecrets: [
          {
            uid: origin.uid,
            namespace: origin.namespace,
            name: origin.name,
            credentialHash: origin.credentialHash,
          },
        ],
      };
    case "service-account":
      return {
        kubernetesServiceAccounts: [{ uid: origin.uid, namespace: origin.namespace, name: origin.name }],
      };
    case "node":
      return { nodePodsAccessible: true };
  }
}
