// Typed CRI client errors. Messages read like the kubelet's CRI client (cri-client pkg/remote_image.go):
// a failed call is `rpc error: code = <Go code name> desc = <status message>`, except a PullImage failure
// with code Unknown, which is the bare status message so that the kubelet's prefix rule (RegistryUnavailable,
// SignatureValidationFailed; kubelet.md §2.5) sees the runtime's text first. `code` is kpull's stable
// classification; `grpcCode` is the gRPC status when there was one.

export type CriErrorCode =
  /** The endpoint is not `unix:///path` or a plain path. */
  | "INVALID_ENDPOINT"
  /** Nothing at the socket path (runtime not running, wrong path). */
  | "SOCKET_MISSING"
  /** Something is at the path but nobody accepts connections (a stale socket). */
  | "CONNECTION_REFUSED"
  /** The path exists but is not a socket. */
  | "NOT_A_SOCKET"
  /** The socket is not ours to open (containerd's is root:root 0660). */
  | "PERMISSION_DENIED"
  /** Any other transport failure: the peer closed, does not speak gRPC, … */
  | "UNAVAILABLE"
  /** The server answered Unimplemented: it does not serve `runtime.v1` (e.g. only v1alpha2). */
  | "UNSUPPORTED_API"
  /** The call's deadline (runtimeRequestTimeout) passed. */
  | "DEADLINE_EXCEEDED"
  /** The caller's AbortSignal ended the call. */
  | "CANCELLED"
  /** The runtime answered with an error status; see grpcCode. */
  | "RPC"
  /** The answer breaks the CRI contract (empty image_ref, image without id or size, a 64-bit overflow). */
  | "INVALID_RESPONSE"
  /** The client was closed. */
  | "CLOSED";

/** gRPC status codes with the names Go's codes.Code.String() prints (note `Canceled`). */
export const GRPC_CODE_NAMES: readonly string[] = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

export function grpcCodeName(code: number): string {
  return GRPC_CODE_NAMES[code] ?? `Code(${code})`;
}

/** Go's status error text. */
export function rpcErrorText(code: number, desc: string): string {
  return `rpc error: code = ${grpcCodeName(code)} desc = ${desc}`;
}

export interface CriErrorDetails {
  readonly grpcCode?: number | null;
  /** The status message the runtime (or the transport) gave, unchanged. */
  readonly details?: string | null;
  /** `/runtime.v1.ImageService/PullImage` */
  readonly method?: string | null;
  readonly endpoint?: string | null;
  readonly cause?: unknown;
}

export class CriError extends Error {
  readonly code: CriErrorCode;
  readonly grpcCode: number | null;
  readonly details: string | null;
  readonly method: string | null;
  readonly endpoint: string | null;
  constructor(code: CriErrorCode, message: string, d: CriErrorDetails = {}) {
    super(message, d.cause === undefined ? undefined : { cause: d.cause });
    this.name = "CriError";
    this.code = code;
    this.grpcCode = d.grpcCode ?? null;
    this.details = d.details ?? null;
    this.method = d.method ?? null;
    this.endpoint = d.endpoint ?? null;
  }

  /** Go's name of the gRPC code (`NotFound`), or null when no status was involved. */
  get grpcCodeName(): string | null {
    return this.grpcCode === null ? null : grpcCodeName(this.grpcCode);
  }

  /** A copy with a prefix in front of the message (the kubelet's start-up validation wording). */
  withPrefix(prefix: string): CriError {
    return new CriError(this.code, `${prefix}${this.message}`, {
      grpcCode: this.grpcCode,
      details: this.details,
      method: this.method,
      endpoint: this.endpoint,
      cause: this,
    });
  }
}
