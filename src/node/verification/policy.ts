// `imagePullCredentialsVerificationPolicy` and `preloadedImagesVerificationAllowlist` (kubelet.md §3.2, §3.3;
// pkg/kubelet/images/pullmanager/image_pull_policies.go). Error texts are the kubelet's.

import { parseImageName } from "../../policy/index.ts";
import { InvalidReferenceError, parseNormalizedNamed, repositoryName } from "../../reference/index.ts";

export const VERIFICATION_POLICIES = [
  "NeverVerify",
  "NeverVerifyPreloadedImages",
  "NeverVerifyAllowlistedImages",
  "AlwaysVerify",
] as const;
export type VerificationPolicy = (typeof VERIFICATION_POLICIES)[number];

/** The kubelet's default while the `KubeletEnsureSecretPulledImages` gate is on. */
export const DEFAULT_VERIFICATION_POLICY: VerificationPolicy = "NeverVerifyPreloadedImages";

export class VerificationConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VerificationConfigError";
  }
}

export function isVerificationPolicy(value: unknown): value is VerificationPolicy {
  return typeof value === "string" && (VERIFICATION_POLICIES as readonly string[]).includes(value);
}

/** One validated allowlist entry: an exact repository name, or a prefix ending in `/` (from `…/*`). */
export interface AllowlistPattern {
  readonly pattern: string;
  readonly wildcard: boolean;
}

/** getAllowlistImagePattern: throws VerificationConfigError with the kubelet's text (kubelet.md A.8). */
export function parseAllowlistPattern(pattern: string): AllowlistPattern {
  if (pattern !== pattern.trim()) {
    throw new VerificationConfigError(`leading/trailing spaces are not allowed: ${pattern}`);
  }
  const wildcard = pattern.endsWith("/*");
  const trimmed = wildcard ? pattern.slice(0, -1) : pattern;
  if (trimmed.length === 0)
    throw new VerificationConfigError(`the supplied pattern is too short: ${pattern}`);
  if (trimmed.includes("*")) {
    throw new VerificationConfigError(
      `not a valid wildcard pattern, only patterns ending with '/*' are allowed: ${pattern}`,
    );
  }
  if (wildcard) {
    if (trimmed.length === 1) throw new VerificationConfigError("at least registry hostname is required");
    return { pattern: trimmed, wildcard: true };
  }
  let name: string;
  try {
    name = repositoryName(parseNormalizedNamed(trimmed));
  } catch (error) {
    if (error instanceof InvalidReferenceError) {
      throw new VerificationConfigError(`failed to parse as an image name: ${error.message}`);
    }
    throw error;
  }
  if (trimmed !== name) {
    throw new VerificationConfigError(`neither tag nor digest is accepted in an image reference: ${pattern}`);
  }
  return { pattern: trimmed, wildcard: false };
}

/** ValidateAllowlistImagesPatterns: the first invalid pattern's error. */
export function validateAllowlist(patterns: readonly string[]): AllowlistPattern[] {
  return patterns.map(parseAllowlistPattern);
}

/**
 * The pod image as compared with the allowlist: normalized, without tag or digest (`alpine:3` →
 * `docker.io/library/alpine`). [kpull] The code read compared the raw pod string; v1.36 fixed familiar names
 * (PR #137629). An image that does not parse is compared as written (and so matches only by accident of a
 * prefix; it never reaches a pull anyway).
 */
export function allowlistSubject(image: string): string {
  try {
    return parseImageName(image).repository;
  } catch {
    return image;
  }
}

/** RequireCredentialVerificationForImage. */
export interface VerificationEnforcer {
  readonly policy: VerificationPolicy;
  requireVerification(image: string, pulledByKubelet: boolean): boolean;
}

/** NewImagePullCredentialVerificationPolicy: an unknown policy or an invalid allowlist pattern throws. The
 * allowlist is validated whatever the policy (the kubelet validates the config field on its own). */
export function makeVerificationEnforcer(
  policy: string = DEFAULT_VERIFICATION_POLICY,
  allowlist: readonly string[] = [],
): VerificationEnforcer {
  if (!isVerificationPolicy(policy)) {
    throw new VerificationConfigError(`unknown image pull credential verification policy: ${policy}`);
  }
  const patterns = validateAllowlist(allowlist);
  const exact = new Set(patterns.filter((p) => !p.wildcard).map((p) => p.pattern));
  const prefixes = patterns.filter((p) => p.wildcard).map((p) => p.pattern);
  const allowlisted = (image: string) => {
    const subject = allowlistSubject(image);
    return exact.has(subject) || prefixes.some((p) => subject.startsWith(p));
  };
  switch (policy) {
    case "NeverVerify":
      return { policy, requireVerification: () => false };
    case "NeverVerifyPreloadedImages":
      return { policy, requireVerification: (_image, pulledByKubelet) => pulledByKubelet };
    case "NeverVerifyAllowlistedImages":
      return { policy, requireVerification: (image) => !allowlisted(image) };
    case "AlwaysVerify":
      return { policy, requireVerification: () => true };
  }
}
