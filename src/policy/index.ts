export type { PullAction, PullDecision } from "./decision.ts";
export { decidePull, nodeBehaviour } from "./decision.ts";
export type {
  Defaulting,
  DefaultingReason,
  EffectivePolicy,
  EffectivePolicyOptions,
  ImageSlot,
  ParsedImageName,
  PolicySource,
  PullPolicy,
} from "./defaulting.ts";
export {
  applyDefaultImageTag,
  defaultPullPolicy,
  defaultPullPolicyFor,
  describePolicySource,
  effectivePullPolicy,
  ImageNameError,
  isPullPolicy,
  PULL_POLICIES,
  parseImageName,
  unsupportedPolicyMessage,
} from "./defaulting.ts";
export { formatGoDuration, parseGoDuration } from "./duration.ts";
export { goQuote } from "./quote.ts";
export type { EventType, WaitingReason } from "./reasons.ts";
export {
  ErrImageNeverPull,
  ErrImagePull,
  EventReason,
  ImageInspectError,
  ImagePullBackOff,
  InvalidImageName,
  messages,
  RegistryUnavailable,
  SignatureValidationFailed,
} from "./reasons.ts";
