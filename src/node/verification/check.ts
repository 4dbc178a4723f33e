// MustAttemptImagePull as a pure function (kubelet.md §3.4; pkg/kubelet/images/pullmanager/image_pull_manager.go):
// given what the records say and what the pod brings, pull or use the local image, and which cache write the
// match implies. The disk and the locks are the verifier's business (verifier.ts).

import { parseImageName } from "../../policy/index.ts";
import type { VerificationEnforcer } from "./policy.ts";
import {
  type ImagePullCredentials,
  type ImagePulledRecord,
  type ImagePullSecret,
  type ImagePullServiceAccount,
  WRITE_RECORD_WHILE_MATCHING_LIMIT,
} from "./records.ts";

/** What the pod brings: its pull-secret credentials and the first service-account credential. */
export interface PodCredentials {
  readonly secrets: readonly ImagePullSecret[];
  readonly serviceAccount: ImagePullServiceAccount | null;
}

export const NO_POD_CREDENTIALS: PodCredentials = Object.freeze({ secrets: [], serviceAccount: null });

/** Why the check decided as it did (the kubelet's metric results, spelled out). */
export type CheckReason =
  /** 1: no image ref → pull. */
  | "no-image-ref"
  /** 2: the pulled record or the intent could not be read → pull (fail safe). */
  | "records-unreadable"
  /** 3: the policy needs no verification for this image → local. */
  | "policy-exempt"
  /** 4: the kubelet pulled it (intent) but there is no pulled record → pull. */
  | "no-record"
  /** 5: the pod image does not parse → pull. */
  | "unparsable-image"
  /** 5: the record has no entry for this repository → pull. */
  | "repository-not-recorded"
  /** 6: pulled anonymously or with node credentials → local. */
  | "node-accessible"
  /** 7: tracked without credentials (e.g. after a restart with an intent) → pull. */
  | "credentials-unknown"
  /** 8: a pod secret's credential hash is recorded → local. */
  | "secret-hash-match"
  /** 8: the same Secret object, rotated content → local. */
  | "secret-coordinates-match"
  /** 9: the pod's service account is recorded → local. */
  | "service-account-match"
  /** 10: nothing the pod brings is recorded → pull. */
  | "no-credential-match";

export interface CheckResult {
  /** true: the pod's credentials must be checked against the registry (or `Never` fails). */
  readonly pull: boolean;
  readonly reason: CheckReason;
  /** A write the match implies (§3.4 step 8): merge `credentials` into the record's entry for `key`. */
  readonly update: { readonly key: string; readonly credentials: ImagePullCredentials } | null;
}

export interface CheckInput {
  /** The pod's image string. */
  readonly image: string;
  /** What the runtime reports for the present image. */
  readonly imageRef: string;
  readonly enforcer: VerificationEnforcer;
  /** The pulled record for `imageRef`, null when there is none. */
  readonly record: ImagePulledRecord | null;
  /** An intent file exists for `image`, or a pull of it is in flight in this process. Only consulted when
   * there is no record. */
  readonly intent: boolean;
  /** Reading the record or the intent failed (anything but "absent"). */
  readonly readError?: string | null;
  readonly credentials: PodCredentials;
}

const result = (pull: boolean, reason: CheckReason, update: CheckResult["update"] = null): CheckResult => ({
  pull,
  reason,
  update,
});

/** The record's entry for the pod image, or a decision made before the pod's credentials matter. */
export function precheck(
  input: Omit<CheckInput, "credentials">,
): { decided: CheckResult } | { key: string; entry: ImagePullCredentials } {
  if (input.imageRef === "") return { decided: result(true, "no-image-ref") };
  if (input.readError !== undefined && input.readError !== null) {
    return { decided: result(true, "records-unreadable") };
  }
  const pulledByKubelet = input.record !== null || input.intent;
  if (!input.enforcer.requireVerification(input.image, pulledByKubelet)) {
    return { decided: result(false, "policy-exempt") };
  }
  if (input.record === null) return { decided: result(true, "no-record") };
  let key: string;
  try {
    key = parseImageName(input.image).repository;
  } catch {
    return { decided: result(true, "unparsable-image") };
  }
  const entry = input.record.credentialMapping.get(key);
  if (entry === undefined) return { decided: result(true, "repository-not-recorded") };
  if (entry.nodePodsAccessible === true) return { decided: result(false, "node-accessible") };
  if ((entry.kubernetesSecrets?.length ?? 0) === 0 && (entry.kubernetesServiceAccounts?.length ?? 0) === 0) {
    return { decided: result(true, "credentials-unknown") };
  }
  return { key, entry };
}

/**
 * Steps 8–10: every pod secret against every cached secret, then the service account.
 * [kpull] Coordinates match only with a non-empty UID: a pull secret without Kubernetes metadata (a raw
 * config file) is matched by its hash alone, so two such files can never pass for one rotated Secret.
 */
export function matchCredentials(key: string, entry: ImagePullCredentials, pod: PodCredentials): CheckResult {
  const cached = entry.kubernetesSecrets ?? [];
  const roomToWrite = cached.length < WRITE_RECORD_WHILE_MATCHING_LIMIT;
  const write = (s: ImagePullSecret) => ({ key, credentials: { kubernetesSecrets: [{ ...s }] } });
  for (const podSecret of pod.secrets) {
    for (const c of cached) {
      const hashesMatch = c.credentialHash !== "" && podSecret.credentialHash === c.credentialHash;
      const coordinatesMatch =
        podSecret.uid !== "" &&
        podSecret.uid === c.uid &&
        podSecret.namespace === c.namespace &&
        podSecret.name === c.name;
      if (hashesMatch) {
        return result(false, "secret-hash-match", !coordinatesMatch && roomToWrite ? write(podSecret) : null);
      }
      if (coordinatesMatch && roomToWrite) {
        return result(false, "secret-coordinates-match", write(podSecret));
      }
    }
  }
  const sa = pod.serviceAccount;
  if (
    sa !== null &&
    (entry.kubernetesServiceAccounts ?? []).some(
      (c) => c.uid === sa.uid && c.namespace === sa.namespace && c.name === sa.name,
    )
  ) {
    return result(false, "service-account-match");
  }
  return result(true, "no-credential-match");
}

/** MustAttemptImagePull, all steps, on values. */
export function mustAttemptImagePull(input: CheckInput): CheckResult {
  const pre = precheck(input);
  if ("decided" in pre) return pre.decided;
  return matchCredentials(pre.key, pre.entry, input.credentials);
}
