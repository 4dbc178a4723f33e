// admission: the AdmissionReview v1 webhook (`kpull serve`): validate and mutate with the check engine, so
// CI and the cluster give the same verdict. The public surface of the module.

export {
  AdmissionHandler,
  type AdmissionHandlerOptions,
  type AdmissionPolicy,
  defaultPolicy,
  type HandlerResult,
  type PinFailure,
  type PinSettings,
  REVIEW_FILE,
  type ReviewOptions,
  type Verdict,
} from "./handler.ts";
export { boundedWarnings, clip, denyMessage, findingLines, MAX_WARNING_LENGTH } from "./messages.ts";
export {
  AdmissionMetrics,
  Counter,
  EXPOSITION_CONTENT_TYPE,
  Gauge,
  Histogram,
  LATENCY_BUCKETS,
  MetricsRegistry,
} from "./metrics.ts";
export { imageUsesFromObject, valueAt } from "./object.ts";
export { encodePatch, fieldPath, jsonPointer, setOperation } from "./patch.ts";
export {
  type DigestLookup,
  type PinAnswer,
  PinCache,
  type PinCacheOptions,
  type PinOutcome,
  registryDigestLookup,
} from "./pin.ts";
export { FileWatcher, type FileWatcherOptions } from "./reload.ts";
export { type DecodedReview, decodeReview, decodeReviewObject } from "./review.ts";
export { AdmissionServer, DEFAULT_MAX_BODY_BYTES, type ServerOptions } from "./server.ts";
export {
  ADMISSION_API_VERSION,
  ADMISSION_KIND,
  type AdmissionRequest,
  type AdmissionResponse,
  type AdmissionReviewResponse,
  type AdmissionStatus,
  type Endpoint,
  type GroupVersionKind,
  type GroupVersionResource,
  isMutationMode,
  type JsonObject,
  MUTATION_MODES,
  type MutationMode,
  OPERATIONS,
  type Operation,
  type PatchOperation,
} from "./types.ts";
