// pull-policy: the effective policy (the written one, else what the API server defaults for that exact
// string) is not allowed by the mode. The message says what is written, what is effective and why, and
// what to write instead; the fix is that value.

import { isPullPolicy } from "../../policy/index.ts";
import { allowedPolicies, describeAllowed, fixPolicy } from "../modes.ts";
import type { Rule, Subject } from "../types.ts";

/** Why the API server chose its default, as a clause. */
function why(subject: Subject): string {
  const tag = subject.parsed?.reference.tag ?? null;
  switch (subject.policy.defaulting?.reason) {
    case "latest-tag":
      return "the tag is latest";
    case "no-tag":
      return "the image has no tag, which means latest";
    case "digest-only":
      return "the image has a digest and no tag";
    case "other-tag":
      return `the tag ${JSON.stringify(tag)} is not latest`;
    default:
      return "the image does not parse";
  }
}

/** What the effective policy does wrong under the mode, when there is something useful to say. */
function consequence(subject: Subject, effective: string): string {
  if (effective === "IfNotPresent" && !subject.pinned)
    return "; a node that already holds the tag keeps running the old image after the tag moves";
  if (effective === "Always" && subject.mode === "never")
    return "; Always asks the registry at every start, which nodes without a registry cannot do";
  if (effective === "Never")
    return "; Never fails with ErrImageNeverPull on any node that does not already hold the image";
  return "";
}

export const pullPolicy: Rule = {
  id: "pull-policy",
  name: "PullPolicy",
  description: "The effective imagePullPolicy is not one the mode allows",
  help:
    "The effective policy is the written imagePullPolicy (an image volume: pullPolicy), else the API " +
    "server's default for that exact string: Always when the tag is latest or absent (also with a digest), " +
    "IfNotPresent otherwise. Modes: always (only Always), always-unless-pinned (Always, or IfNotPresent for " +
    "images pinned by digest; the default), pinned (Always or IfNotPresent), never (only Never, for " +
    "air-gapped nodes with pre-pulled images). `kpull fix` writes the policy the mode needs.",
  defaultSeverity: "error",
  tags: ["security", "kubernetes"],
  securitySeverity: "3.0",
  modes: null,
  check(subject) {
    if (subject.parsed === null) return null;
    const { policy, mode, pinned } = subject;
    const field = subject.use.containerType === "imageVolume" ? "pullPolicy" : "imagePullPolicy";
    const target = fixPolicy(mode, pinned);
    const fix = { field, value: target } as const;
    const effective = policy.effective;
    if (effective === null) return null; // an image volume with the ImageVolume gate off: nothing to judge
    if (policy.invalidWritten !== null) {
      return {
        message:
          `${field} ${JSON.stringify(policy.written)} is not a pull policy: the API server rejects the object ` +
          `(${policy.invalidWritten}). Set ${field}: ${target} (${describeAllowed(mode, pinned)}).`,
        fix,
      };
    }
    if (!isPullPolicy(effective) || allowedPolicies(mode, pinned).includes(effective)) return null;
    const what =
      policy.source === "written"
        ? `${field} is ${effective} (written)`
        : `${field} is not written, so the API server defaults it to ${effective} because ${why(subject)}`;
    const pin =
      mode === "always-unless-pinned" && !pinned ? ", or pin a digest (kpull pin) and use IfNotPresent" : "";
    return {
      message: `${what}${consequence(subject, effective)}. ${capitalize(describeAllowed(mode, pinned))}: set ${field}: ${target}${pin}.`,
      fix,
    };
  },
};

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
