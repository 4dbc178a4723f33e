// The node's decision per policy (kubelet image_manager.go, v1.33+ shape; spec kubelet.md §2.4 and A.3),
// as pure functions so the image manager, `explain` and `check` give one verdict.

import type { PullPolicy } from "./defaulting.ts";
import { ErrImageNeverPull } from "./reasons.ts";

export type PullAction = "pull" | "use-local" | "fail";

export interface PullDecision {
  /** Ask the image service whether the image is present (CRI ImageStatus) before deciding. */
  readonly checksLocal: boolean;
  /** Contact the registry (a pull; under Always a cached image costs one resolve). */
  readonly contactsRegistry: boolean;
  readonly action: PullAction;
  /** The container waiting reason when the action is "fail". */
  readonly error: typeof ErrImageNeverPull | null;
}

/** What the node does for one container start, given the policy and whether the image is present.
 * `Always` never checks locally first; a digest in the reference changes nothing here. */
export function decidePull(policy: PullPolicy, present: boolean): PullDecision {
  switch (policy) {
    case "Always":
      return { checksLocal: false, contactsRegistry: true, action: "pull", error: null };
    case "IfNotPresent":
      return present
        ? { checksLocal: true, contactsRegistry: false, action: "use-local", error: null }
        : { checksLocal: true, contactsRegistry: true, action: "pull", error: null };
    case "Never":
      return present
        ? { checksLocal: true, contactsRegistry: false, action: "use-local", error: null }
        : { checksLocal: true, contactsRegistry: false, action: "fail", error: ErrImageNeverPull };
  }
}

/** One sentence for `explain`: what the node does at each container start under this policy. */
export function nodeBehaviour(policy: PullPolicy): string {
  switch (policy) {
    case "Always":
      return "resolves the tag's digest at every start; reuses cached layers";
    case "IfNotPresent":
      return "contacts the registry only when the image is absent";
    case "Never":
      return "never contacts the registry; fails with ErrImageNeverPull when absent";
  }
}
