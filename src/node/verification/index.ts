// KEP-2535 "Ensure secret pulled images" for kpull's image manager (kubelet.md §3): which credentials pulled
// each image, recorded on disk in the kubelet's format, and the check that makes a pod prove access to a
// cached image before it may use it.

export type { CheckInput, CheckReason, CheckResult, PodCredentials } from "./check.ts";
export { matchCredentials, mustAttemptImagePull, NO_POD_CREDENTIALS, precheck } from "./check.ts";
export type { ToPullCredentialsOptions } from "./credentials.ts";
export {
  credentialOrigin,
  podCredentials,
  recordedCredentials,
  toPullCredentials,
} from "./credentials.ts";
export type { Listed } from "./fs-records.ts";
export {
  INTENTS_SUBDIR,
  PULLED_SUBDIR,
  PullRecordsStore,
  RECORDS_DIR,
  RecordReadError,
} from "./fs-records.ts";
export type { AllowlistPattern, VerificationEnforcer, VerificationPolicy } from "./policy.ts";
export {
  allowlistSubject,
  DEFAULT_VERIFICATION_POLICY,
  isVerificationPolicy,
  makeVerificationEnforcer,
  parseAllowlistPattern,
  VERIFICATION_POLICIES,
  VerificationConfigError,
  validateAllowlist,
} from "./policy.ts";
export type {
  ImagePullCredentials,
  ImagePulledRecord,
  ImagePullIntent,
  ImagePullSecret,
  ImagePullServiceAccount,
} from "./records.ts";
export {
  decodeIntent,
  decodePulledRecord,
  encodeIntent,
  encodePulledRecord,
  formatRecordTime,
  mergePulledRecord,
  newPulledRecord,
  parseRecordTime,
  READABLE_API_VERSIONS,
  RECORDS_API_VERSION,
  RecordDecodeError,
  recordFileName,
  WRITE_RECORD_WHILE_MATCHING_LIMIT,
} from "./records.ts";
export type { CredentialVerifierOptions, InitializeReport } from "./verifier.ts";
export { CredentialVerifier } from "./verifier.ts";
