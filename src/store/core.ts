// The part of the store's surface a pull needs: the store, its content, locks, leases and records, without
// GC, unpack, verify, OCI directories and archives (their modules, and the unpacker's, load only when used).
// index.ts exports all of this and the rest; modules that only pull (node, the CLI's pull path) import this
// one so that every `kpull pull` does not load and compile ~25 modules it never runs. See docs/architecture.md.

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
export type { ImageStatus, OpenStoreOptions, RemoveResult } from "./store.ts";
export { findIn, type ImageQuery, imageName, Lease, parseImageQuery, Store } from "./store.ts";
