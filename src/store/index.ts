// kpull's node image store: verified content in an OCI image layout, image records, leases, GC and verify,
// safe for many processes sharing one root. See docs/store.md.

export type { ExportReport, ImportOptions, ImportReport } from "./archive.ts";
export { exportArchive, importArchive } from "./archive.ts";
export type {
  BlobDescriptor,
  BlobSource,
  IngestInfo,
  IngestOptions,
  IngestProgress,
  IngestResult,
  IngestStatus,
} from "./content.ts";
export { ContentStore } from "./content.ts";
export { parseDuration } from "./duration.ts";
export type { StoreErrorCode } from "./errors.ts";
export { StoreError } from "./errors.ts";
export type { GcEvent, GcImageReport, GcOptions, GcReport, SweepOptions, SweepReport } from "./gc.ts";
export { DEFAULT_INGEST_MAX_AGE_MS, gcOutcome, statfsUsage } from "./gc.ts";
export type { DiskUsage, GcImage, GcPlan, GcPolicy, GcRemoval, GcSkipReason, PlanInput } from "./gc-plan.ts";
export { DEFAULT_GC_POLICY, diskPressure, evictionOrder, planImageGc, validateGcPolicy } from "./gc-plan.ts";
export type { StoreInfo, StorePaths } from "./layout.ts";
export { OCI_LAYOUT_VERSION, storeExists, storePaths } from "./layout.ts";
export type { LeaseOptions, LeaseRecord } from "./leases.ts";
export { leaseActive, leaseUsesImage } from "./leases.ts";
export type { LockOptions, LockOwner, ProcessIdentity } from "./lock.ts";
export {
  acquireLock,
  currentProcess,
  FileLock,
  lockStatus,
  processAlive,
  tryAcquireLock,
  withLock,
} from "./lock.ts";
export type { CopyOptions, CopyReport } from "./oci-dir.ts";
export { copyFromDirectory, copyToDirectory, OciDirectory } from "./oci-dir.ts";
export type {
  BlobKind,
  ByteCount,
  ImageSource,
  PulledBlob,
  PullOptions,
  PullProgress,
  PullResult,
} from "./pull.ts";
export type { ImageRecord, OciIndex, RecordDescriptor } from "./records.ts";
export {
  ANNOTATION_IMAGE_NAME,
  ANNOTATION_REF_NAME,
  imageId,
  recordDigests,
  refNameAnnotation,
} from "./records.ts";
export type { RootOptions } from "./root.ts";
export { SYSTEM_ROOT, storeRoot } from "./root.ts";
export type { UnpackedLayer, UnpackImageOptions, UnpackImageResult } from "./snapshots.ts";
export { imageChainIds, imageDiffIds, isUnpacked } from "./snapshots.ts";
export type { ImageStatus, OpenStoreOptions, RemoveResult } from "./store.ts";
export { findIn, imageName, Lease, Store } from "./store.ts";
export type { CorruptBlob, MissingBlob, VerifyOptions, VerifyReport } from "./verify.ts";
