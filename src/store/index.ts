// kpull's node image store: verified content in an OCI image layout, image records, leases, GC and verify,
// safe for many processes sharing one root. See docs/store.md.

export type { ExportReport, ImportOptions, ImportReport } from "./archive.ts";
export { exportArchive, importArchive } from "./archive.ts";
export * from "./core.ts";
export type {
  GcEvent,
  GcImageReport,
  GcOptions,
  GcReport,
  ImageGcReport,
  SweepOptions,
  SweepReport,
} from "./gc.ts";
export {
  DEFAULT_INGEST_MAX_AGE_MS,
  imageGcReport,
  previousGcFailed,
  recordGcRun,
  statfsUsage,
} from "./gc.ts";
export type { DiskUsage, GcImage, GcPlan, GcPolicy, GcRemoval, GcSkipReason, PlanInput } from "./gc-plan.ts";
export { DEFAULT_GC_POLICY, diskPressure, evictionOrder, planImageGc, validateGcPolicy } from "./gc-plan.ts";
export type { CopyOptions, CopyReport } from "./oci-dir.ts";
export { copyFromDirectory, copyToDirectory, OciDirectory } from "./oci-dir.ts";
export type {
  UnpackedLayer,
  UnpackImageOptions,
  UnpackImageResult,
  UnpackWhilePulling,
} from "./snapshots.ts";
export { imageChainIds, imageDiffIds, isUnpacked } from "./snapshots.ts";
export type { CorruptBlob, MissingBlob, VerifyOptions, VerifyReport } from "./verify.ts";
