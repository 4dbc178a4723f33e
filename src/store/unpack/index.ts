// Layer unpacking for the node image store: apply layer tars (plain, gzip, zstd) onto snapshots keyed by
// ChainID, verifying DiffIDs, with whiteouts, opaque directories and the guards of spec oci.md §7.

export type { ApplyOptions, ApplyResult } from "./apply.ts";
export { applyLayer, DEFAULT_LIMITS } from "./apply.ts";
export { chainIds, parseDigest } from "./chain.ts";
export type { UnpackErrorReason, UnpackWarning, UnpackWarningKind } from "./errors.ts";
export { isUnpackError, UnpackError } from "./errors.ts";
export type { Compression } from "./mediatype.ts";
export { compressionOf, sniffCompression } from "./mediatype.ts";
export type { SnapshotOptions } from "./snapshot.ts";
export {
  buildSnapshot,
  commitSnapshot,
  discardSnapshot,
  isDir,
  prepareSnapshot,
  removeSnapshot,
  removeStaleSnapshotTemps,
  type SnapshotBuild,
  snapshotPath,
  syncFilesystem,
} from "./snapshot.ts";
