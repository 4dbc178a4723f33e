// Typed store errors. Each carries a stable `code` that scripts and the CLI can rely on; messages are one line
// and name the blob, image or path involved.

export type StoreErrorCode =
  /** Stored bytes do not match their digest or their descriptor's size. */
  | "CORRUPT"
  /** A lock could not be taken (timeout or abort while waiting). */
  | "LOCKED"
  /** No such image, blob or lease. */
  | "NOT_FOUND"
  /** The filesystem holding the store is full (ENOSPC, EDQUOT). */
  | "NO_SPACE"
  /** Content that arrived or was given does not match what was expected (size or digest). */
  | "MISMATCH"
  /** The image is protected by an active lease (a pull in flight or a running container). */
  | "IN_USE"
  /** Bad input: a digest, a name, a record or an option the store cannot use. */
  | "INVALID"
  /** The operation was aborted by its signal. */
  | "ABORTED"
  /** The kubelet's image GC could not free enough space (its `FreeDiskSpaceFailed`). */
  | "FreeDiskSpaceFailed"
  /** The filesystem reports a capacity of 0 (the kubelet's `InvalidDiskCapacity`). */
  | "InvalidDiskCapacity"
  /** Any other filesystem failure (permissions, I/O errors). */
  | "IO";

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  /** The path, digest or image the error is about, when there is one. */
  readonly subject: string | null;

  constructor(code: StoreErrorCode, message: string, options: { subject?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "StoreError";
    this.code = code;
    this.subject = options.subject ?? null;
  }
}

/** Maps a Node filesystem error to a StoreError (ENOSPC → NO_SPACE, ENOENT → NOT_FOUND, else IO). */
export function fsError(error: unknown, what: string): StoreError {
  if (error instanceof StoreError) return error;
  const e = error as NodeJS.ErrnoException;
  const code = e?.code;
  if (code === "ENOSPC" || code === "EDQUOT")
    return new StoreError("NO_SPACE", `${what}: no space left on the store's filesystem`, { cause: error });
  if (code === "ENOENT") return new StoreError("NOT_FOUND", `${what}: not found`, { cause: error });
  if (code === "ABORT_ERR" || e?.name === "AbortError")
    return new StoreError("ABORTED", `${what}: aborted`, { cause: error });
  return new StoreError("IO", `${what}: ${e?.message ?? String(error)}`, { cause: error });
}

export function abortError(signal: AbortSignal | undefined, what: string): StoreError {
  const reason = signal?.reason;
  const text = reason instanceof Error ? reason.message : reason === undefined ? "aborted" : String(reason);
  return new StoreError("ABORTED", `${what}: ${text}`, { cause: reason });
}
