// The part of the node's surface `kpull pull` needs: the image manager, Node and the image services, without
// runtime GC and KEP-2535 verification (index.ts exports all of this and those). Their modules, and the
// store's GC and unpacker behind them, then load only for the commands that use them. See
// docs/architecture.md.

export type { BackoffEntry } from "./backoff.ts";
export { Backoff, backoffKey, IMAGE_BACKOFF_INITIAL_MS, IMAGE_BACKOFF_MAX_MS } from "./backoff.ts";
export type {
  CredentialOrigin,
  EnsureImageRequest,
  EnsureImageResult,
  ImageManagerOptions,
  NodeEvent,
  ObjectReference,
  PullCredential,
  PullVerifier,
} from "./image-manager.ts";
export { classifyPullError, ImageManager } from "./image-manager.ts";
export { imageNames, repoDigestsFor, repositoryOf, resolvedDigest } from "./image-names.ts";
export type {
  AuthConfig,
  FilesystemUsage,
  Image,
  ImageService,
  ImageSpec,
  PullImageResponse,
  PullReport,
} from "./image-service.ts";
export type { NodeOptions, PullAction, PullOutcome } from "./node.ts";
export { CLI_POD, Node } from "./node.ts";
export type { ContainerStatus, PodContainer, PodContainerType, PodInput } from "./pod.ts";
export { startPod } from "./pod.ts";
export type { Puller, PullerConfig, PullResult } from "./puller.ts";
export {
  MAX_IMAGE_PULL_REQUESTS,
  makePuller,
  ParallelPuller,
  QpsExceededError,
  SerialPuller,
} from "./puller.ts";
export { PULL_QPS_EXCEEDED, PullRateLimiter } from "./ratelimit.ts";
export type { RuntimeImageRecord, RuntimeImageRecords } from "./runtime-state.ts";
export {
  noteRuntimeImages,
  openRuntimeState,
  pinRuntimeImage,
  RUNTIME_STATE_DIR,
  readRuntimeImages,
  runtimeImageInUse,
  runtimeStateRoot,
  updateRuntimeImages,
} from "./runtime-state.ts";
export type { StoreImageServiceOptions } from "./store-service.ts";
export { PullFailure, StoreImageService } from "./store-service.ts";
