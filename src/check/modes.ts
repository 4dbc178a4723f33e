// What each mode allows, and the policy `fix` writes to satisfy it.

import type { PullPolicy } from "../policy/index.ts";
import type { Mode } from "./types.ts";

/** The policies `mode` allows for an image, pinned by digest or not. */
export function allowedPolicies(mode: Mode, pinned: boolean): readonly PullPolicy[] {
  switch (mode) {
    case "always":
      return ["Always"];
    case "always-unless-pinned":
      return pinned ? ["Always", "IfNotPresent"] : ["Always"];
    case "pinned":
      return ["Always", "IfNotPresent"];
    case "never":
      return ["Never"];
  }
}

/**
 * The policy `fix` writes when the effective one is not allowed: Never in mode never; otherwise IfNotPresent
 * for an image pinned by digest where the mode allows it (a digest never changes, so asking the registry at
 * every start buys nothing), else Always. `fix` never adds a digest.
 */
export function fixPolicy(mode: Mode, pinned: boolean): PullPolicy {
  if (mode === "never") return "Never";
  if (mode === "always") return "Always";
  return pinned ? "IfNotPresent" : "Always";
}

/** "mode always-unless-pinned allows ..." for messages. */
export function describeAllowed(mode: Mode, pinned: boolean): string {
  switch (mode) {
    case "always":
      return "mode always allows only Always";
    case "always-unless-pinned":
      return pinned
        ? "mode always-unless-pinned allows Always, or IfNotPresent for an image pinned by digest"
        : "mode always-unless-pinned allows IfNotPresent only for images pinned by digest, so this image needs Always";
    case "pinned":
      return "mode pinned allows Always or IfNotPresent";
    case "never":
      return "mode never allows only Never (nodes run pre-pulled images and never contact a registry)";
  }
}
