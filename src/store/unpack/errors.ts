// Typed errors and warnings of layer unpacking (spec oci.md §7).

/** Why a layer was refused. Stable strings: callers and tests match on them. */
export type UnpackErrorReason =
  /** an entry name is absolute or climbs above the root with `..` */
  | "path-escape"
  /** an entry is written through a symlink the same layer created, or through a relative symlink that climbs above the root */
  | "symlink-escape"
  /** a hardlink target is absolute or climbs above the root */
  | "hardlink-escape"
  /** a non-directory entry resolves to the root itself */
  | "replaces-root"
  /** the uncompressed stream exceeds the size, ratio or entry-count limit */
  | "bomb"
  /** the uncompressed stream would not fit the free space of the root's filesystem, or the disk filled up */
  | "no-space"
  /** the uncompressed digest differs from the config's `rootfs.diff_ids` entry */
  | "diffid-mismatch"
  /** not a tar archive, a corrupt or truncated one, a corrupt compressed stream, an oversized header */
  | "bad-archive"
  /** an entry type we do not apply (GNU sparse, volume labels, ...) or a name we cannot represent */
  | "unsupported-entry"
  /** `.wh.` with nothing after it, or a whiteout naming `.` or `..` */
  | "invalid-whiteout"
  /** the snapshot's parent does not exist */
  | "missing-parent"
  /** the caller's AbortSignal fired */
  | "aborted"
  /** a filesystem operation failed for another reason (the cause is attached) */
  | "io";

export class UnpackError extends Error {
  readonly code: "UnpackError" = "UnpackError";
  readonly reason: UnpackErrorReason;
  /** The tar entry at fault, as named in the archive, when there is one. */
  readonly entry: string | undefined;

  constructor(reason: UnpackErrorReason, message: string, options?: { entry?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "UnpackError";
    this.reason = reason;
    this.entry = options?.entry;
  }
}

export function isUnpackError(e: unknown): e is UnpackError {
  return e instanceof UnpackError;
}

/** Something applied differently from what the archive asked, because of privileges or platform limits. */
export type UnpackWarningKind =
  /** ownership was not applied (not root, or lchown failed) */
  | "ownership"
  /** setuid/setgid bits dropped because the intended owner could not be set */
  | "setid-dropped"
  /** a device node was replaced by an empty regular file */
  | "device"
  /** owner permission bits were added so an unprivileged store can read, copy and remove the tree */
  | "mode-relaxed"
  /** extended attributes were not set */
  | "xattr"
  /** an entry was skipped on purpose (reserved `.wh..wh.` metadata, `.` directory) */
  | "ignored-entry";

export interface UnpackWarning {
  readonly kind: UnpackWarningKind;
  /** The entry's path inside the root (as cleaned, without a leading `/`). */
  readonly path: string;
  readonly message: string;
}
