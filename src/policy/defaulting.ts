// The API server's imagePullPolicy defaulting (pkg/apis/core/v1/defaults.go SetDefaults_Container and
// SetDefaults_Volume) and the kubelet's node-side tag defaulting (image_manager.go applyDefaultImageTag).

import {
  DEFAULT_TAG,
  InvalidReferenceError,
  parseNormalizedNamed,
  type Reference,
  repositoryName,
} from "../reference/index.ts";
import { goQuote } from "./quote.ts";

export type PullPolicy = "Always" | "IfNotPresent" | "Never";
export const PULL_POLICIES: readonly PullPolicy[] = ["Always", "IfNotPresent", "Never"];

export function isPullPolicy(value: unknown): value is PullPolicy {
  return value === "Always" || value === "IfNotPresent" || value === "Never";
}

/** Where an image sits in a pod spec; image volumes have their own defaulting gate. */
export type ImageSlot = "container" | "initContainer" | "ephemeralContainer" | "imageVolume";

/** The result of Kubernetes' ParseImageName: normalized repository, tag ("latest" added only when neither
 * tag nor digest is written) and digest. */
export interface ParsedImageName {
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  readonly reference: Reference;
}

/** Kubernetes' pkg/util/parsers ParseImageName, with its error wrapper. */
export function parseImageName(image: string): ParsedImageName {
  let reference: Reference;
  try {
    reference = parseNormalizedNamed(image);
  } catch (error) {
    if (error instanceof InvalidReferenceError) throw new ImageNameError(image, error);
    throw error;
  }
  const digest = reference.digest ?? "";
  let tag = reference.tag ?? "";
  if (tag === "" && digest === "") tag = DEFAULT_TAG;
  return { repository: repositoryName(reference), tag, digest, reference };
}

/** `couldn't parse image name "<image>": <parse error>`; code InvalidImageName like the kubelet's error. */
export class ImageNameError extends Error {
  readonly code = "InvalidImageName";
  readonly image: string;
  override readonly cause: InvalidReferenceError;
  constructor(image: string, cause: InvalidReferenceError) {
    super(`couldn't parse image name ${goQuote(image)}: ${cause.message}`);
    this.name = "ImageNameError";
    this.image = image;
    this.cause = cause;
  }
}

/** Why the API server chose a default. */
export type DefaultingReason = "latest-tag" | "no-tag" | "other-tag" | "digest-only" | "unparsable";

export interface Defaulting {
  readonly policy: PullPolicy;
  readonly reason: DefaultingReason;
  /** The parse error the API server ignored, when the string does not parse. */
  readonly parseError: ImageNameError | null;
}

/** The API server's rule on the raw image string: tag exactly `latest` (also when implied) → Always; anything
 * else, including a string that does not parse, → IfNotPresent. The digest plays no part. */
export function defaultPullPolicyFor(image: string): Defaulting {
  let parsed: ParsedImageName;
  try {
    parsed = parseImageName(image);
  } catch (error) {
    if (error instanceof ImageNameError)
      return { policy: "IfNotPresent", reason: "unparsable", parseError: error };
    throw error;
  }
  const written = parsed.reference;
  if (parsed.tag === DEFAULT_TAG) {
    return { policy: "Always", reason: written.tag === null ? "no-tag" : "latest-tag", parseError: null };
  }
  return {
    policy: "IfNotPresent",
    reason: written.tag === null ? "digest-only" : "other-tag",
    parseError: null,
  };
}

export function defaultPullPolicy(image: string): PullPolicy {
  return defaultPullPolicyFor(image).policy;
}

export interface EffectivePolicyOptions {
  /** The ImageVolume feature gate on the API server (on by default since v1.35). Without it an image volume's
   * pullPolicy stays empty. */
  readonly imageVolumeGate?: boolean;
}

export type PolicySource = "written" | "defaulted" | "unset";

export interface EffectivePolicy {
  /** What the object says, null when the field is empty or absent. */
  readonly written: string | null;
  /** What the node acts on: the written value, else the API server's default; null only for an image volume
   * with the gate off. A written value that is not a valid policy is kept as written and flagged. */
  readonly effective: string | null;
  readonly source: PolicySource;
  readonly defaulting: Defaulting | null;
  /** Set when the written value is not one of the three policies (the API server rejects the object). */
  readonly invalidWritten: string | null;
}

/** The field after the API server's defaulting: defaulting runs only when the field is empty. */
export function effectivePullPolicy(
  image: string,
  written: string | null | undefined,
  slot: ImageSlot = "container",
  options: EffectivePolicyOptions = {},
): EffectivePolicy {
  if (written !== null && written !== undefined && written !== "") {
    return {
      written,
      effective: written,
      source: "written",
      defaulting: null,
      invalidWritten: isPullPolicy(written) ? null : unsupportedPolicyMessage(written),
    };
  }
  if (slot === "imageVolume" && options.imageVolumeGate === false) {
    return { written: null, effective: null, source: "unset", defaulting: null, invalidWritten: null };
  }
  const defaulting = defaultPullPolicyFor(image);
  return {
    written: null,
    effective: defaulting.policy,
    source: "defaulted",
    defaulting,
    invalidWritten: null,
  };
}

/** The API server's validation text for a value outside the enum. */
export function unsupportedPolicyMessage(value: string): string {
  return `Unsupported value: ${goQuote(value)}: supported values: ${PULL_POLICIES.map(goQuote).join(", ")}`;
}

/** Human text for `explain`: `written`, `defaulted: tag is latest`, `defaulted: no tag`, ... */
export function describePolicySource(policy: EffectivePolicy): string {
  if (policy.source === "written") return "written";
  if (policy.source === "unset") return "unset: ImageVolume gate is off, so nothing is defaulted";
  switch (policy.defaulting?.reason) {
    case "latest-tag":
      return "defaulted: tag is latest";
    case "no-tag":
      return "defaulted: no tag";
    case "digest-only":
      return "defaulted: digest without tag";
    case "other-tag":
      return "defaulted: tag is not latest";
    default:
      return "defaulted: image does not parse";
  }
}

/** The kubelet's applyDefaultImageTag: append `:latest` to the string as written (never normalized) when it
 * has neither tag nor digest, so the runtime does its own normalization. Throws ImageNameError. */
export function applyDefaultImageTag(image: string): string {
  const { tag, digest } = parseImageName(image);
  if (digest === "" && tag !== "" && !image.endsWith(`:${tag}`)) return `${image}:${tag}`;
  return image;
}
