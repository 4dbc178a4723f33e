// kpull's CRI client: the ImageService (runtime.v1) of a real container runtime such as containerd, over
// gRPC on a Unix socket, shaped like node's ImageService so the image manager can stand in front of it.

export type { WireAuthConfig } from "./auth.ts";
export { redactAuth, toWireAuth } from "./auth.ts";
export type { CriCallOptions, CriClientOptions, CriPullOptions } from "./client.ts";
export {
  CRI_MAX_MESSAGE_BYTES,
  CriImageService,
  KUBE_RUNTIME_API_VERSION,
  RUNTIME_REQUEST_TIMEOUT_MS,
} from "./client.ts";
export type { CriEndpoint } from "./endpoint.ts";
export { DEFAULT_CONTAINERD_ENDPOINT, parseCriEndpoint } from "./endpoint.ts";
export type { CriErrorCode, CriErrorDetails } from "./errors.ts";
export { CriError, GRPC_CODE_NAMES, grpcCodeName, rpcErrorText } from "./errors.ts";
export { LOADER_OPTIONS, PROTO_FILE } from "./proto.ts";
export type {
  CriAuthConfig,
  CriFilesystemUsage,
  CriImage,
  CriImageFsInfo,
  CriImageSpec,
  CriImageStatusResponse,
  CriPodSandboxConfig,
  CriPodSandboxMetadata,
  CriPullImageResponse,
  CriRuntimeInfo,
  CriRuntimeVersion,
} from "./types.ts";
export { toBigInt, toSafeNumber } from "./wire.ts";
