// The kubelet's vocabulary: container waiting reasons (pkg/kubelet/images/types.go, cri-api errors), event
// reasons (pkg/kubelet/events/event.go) and message formats (image_manager.go). Spec: kubelet.md §2.5, §2.6.

import { formatGoDuration } from "./duration.ts";
import { goQuote } from "./quote.ts";

export const ErrImagePull = "ErrImagePull";
export const ImagePullBackOff = "ImagePullBackOff";
export const ErrImageNeverPull = "ErrImageNeverPull";
export const InvalidImageName = "InvalidImageName";
export const ImageInspectError = "ImageInspectError";
export const RegistryUnavailable = "RegistryUnavailable";
export const SignatureValidationFailed = "SignatureValidationFailed";

export type WaitingReason =
  | typeof ErrImagePull
  | typeof ImagePullBackOff
  | typeof ErrImageNeverPull
  | typeof InvalidImageName
  | typeof ImageInspectError
  | typeof RegistryUnavailable
  | typeof SignatureValidationFailed;

export type EventType = "Normal" | "Warning";

export const EventReason = {
  Pulling: "Pulling",
  Pulled: "Pulled",
  Failed: "Failed",
  BackOff: "BackOff",
  ErrImageNeverPull: "ErrImageNeverPull",
  InspectFailed: "InspectFailed",
  FailedToRetrieveImagePullSecret: "FailedToRetrieveImagePullSecret",
} as const;
export type EventReason = (typeof EventReason)[keyof typeof EventReason];

export const messages = {
  pulling: (image: string) => `Pulling image ${goQuote(image)}`,
  pulled: (image: string, pullMs: number, totalMs: number, sizeBytes: number) =>
    `Successfully pulled image ${goQuote(image)} in ${formatGoDuration(pullMs)} (${formatGoDuration(totalMs)} including waiting). Image size: ${sizeBytes} bytes.`,
  alreadyPresent: (image: string) => `Container image ${goQuote(image)} already present on machine`,
  alreadyPresentAccessible: (image: string) =>
    `Container image ${goQuote(image)} already present on machine and can be accessed by the pod`,
  failedToPull: (image: string, error: string) => `Failed to pull image ${goQuote(image)}: ${error}`,
  backOff: (image: string) => `Back-off pulling image ${goQuote(image)}`,
  neverPull: (image: string) => `Container image ${goQuote(image)} is not present with pull policy of Never`,
  invalidImageName: (image: string, parseError: string) =>
    `Failed to apply default image tag ${goQuote(image)}: ${parseError}`,
  inspectFailed: (imageRef: string, error: string) =>
    `Failed to inspect image ${goQuote(imageRef)}: ${error}`,
  containerError: (reason: string) => `Error: ${reason}`,
  failedToRetrieveImagePullSecret: (names: readonly string[]) =>
    `Unable to retrieve some image pull secrets (${names.join(", ")}); attempting to pull the image may not succeed.`,
  registryUnavailable: (image: string, rest: string) =>
    `image pull failed for ${image} because the registry is unavailable${rest}`,
  signatureValidationFailed: (image: string, rest: string) =>
    `image pull failed for ${image} because the signature validation failed${rest}`,
} as const;
