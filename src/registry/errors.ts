// Typed registry errors. Registry error codes come from the distribution spec's error envelope; the client's
// own failures (verification, transport, limits) have codes of the same shape. Each maps to the kubelet
// waiting reason a pull failure becomes (spec kubelet.md §2.5, oci.md §2.6).

export type RegistryErrorCode =
  // from the registry's JSON envelope (or inferred from the status when the body is not JSON)
  | "BLOB_UNKNOWN"
  | "BLOB_UPLOAD_INVALID"
  | "BLOB_UPLOAD_UNKNOWN"
  | "DIGEST_INVALID"
  | "MANIFEST_BLOB_UNKNOWN"
  | "MANIFEST_INVALID"
  | "MANIFEST_UNKNOWN"
  | "NAME_INVALID"
  | "NAME_UNKNOWN"
  | "SIZE_INVALID"
  | "UNAUTHORIZED"
  | "DENIED"
  | "UNSUPPORTED"
  | "TOOMANYREQUESTS"
  | "UNKNOWN"
  | "UNAVAILABLE"
  | "RANGE_INVALID"
  // the client's own
  | "DIGEST_MISMATCH"
  | "SIZE_MISMATCH"
  | "TOO_LARGE"
  | "BAD_RESPONSE"
  | "SCHEMA1_UNSUPPORTED"
  | "NO_MATCHING_PLATFORM"
  | "NETWORK"
  | "TLS"
  | "TIMEOUT"
  | "REDIRECT"
  | "AUTH_FAILED";

const STATUS_CODES: Record<number, RegistryErrorCode> = {
  401: "UNAUTHORIZED",
  403: "DENIED",
  404: "NAME_UNKNOWN",
  405: "UNSUPPORTED",
  416: "RANGE_INVALID",
  429: "TOOMANYREQUESTS",
  500: "UNKNOWN",
  502: "UNAVAILABLE",
  503: "UNAVAILABLE",
  504: "UNAVAILABLE",
};

export interface RegistryErrorDetails {
  readonly status?: number | undefined;
  readonly url?: string | undefined;
  readonly detail?: unknown;
  readonly retryAfterMs?: number | undefined;
  readonly cause?: unknown;
}

export class RegistryError extends Error {
  readonly code: RegistryErrorCode;
  readonly status: number | null;
  readonly url: string | null;
  readonly detail: unknown;
  readonly retryAfterMs: number | null;
  constructor(code: RegistryErrorCode, message: string, details: RegistryErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = "RegistryError";
    this.code = code;
    this.status = details.status ?? null;
    this.url = details.url ?? null;
    this.detail = details.detail;
    this.retryAfterMs = details.retryAfterMs ?? null;
  }

  /** The container waiting reason this failure becomes on the node: RegistryUnavailable for transport
   * failures and any 5xx answer (a 500 carries the code UNKNOWN, a 501 or 505 none of ours), else
   * ErrImagePull. */
  get kubeletReason(): "ErrImagePull" | "RegistryUnavailable" {
    return this.code === "NETWORK" ||
      this.code === "UNAVAILABLE" ||
      this.code === "TIMEOUT" ||
      (this.status !== null && this.status >= 500)
      ? "RegistryUnavailable"
      : "ErrImagePull";
  }

  /** Worth another attempt: transport failures, 5xx, 429, 408. */
  get retryable(): boolean {
    return (
      this.code === "NETWORK" ||
      this.code === "TIMEOUT" ||
      this.code === "UNAVAILABLE" ||
      this.code === "TOOMANYREQUESTS" ||
      (this.status !== null && (this.status >= 500 || this.status === 408))
    );
  }
}

const MAX_ERROR_BODY = 64 * 1024;

/** Decodes a non-2xx answer: the first entry of the spec's `{"errors":[...]}` envelope when the body is
 * that JSON, else a code inferred from the status, with a bounded excerpt of the body. */
export function errorFromResponse(
  status: number,
  body: Buffer,
  url: string,
  what: string,
  retryAfterMs?: number,
): RegistryError {
  const text = body.subarray(0, MAX_ERROR_BODY).toString("utf8");
  let code: RegistryErrorCode = STATUS_CODES[status] ?? (status >= 500 ? "UNKNOWN" : "BAD_RESPONSE");
  let message = "";
  let detail: unknown;
  try {
    const parsed = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown; detail?: unknown }[] };
    const first = Array.isArray(parsed?.errors) ? parsed.errors[0] : undefined;
    if (first && typeof first.code === "string" && /^[A-Z_]+$/.test(first.code)) {
      code = first.code as RegistryErrorCode;
      message = typeof first.message === "string" ? first.message : "";
      detail = first.detail;
    }
  } catch {
    // Not JSON: keep the status-derived code and show a short, single-line excerpt.
    message = text.replace(/\s+/g, " ").trim().slice(0, 200);
  }
  const suffix = message ? `: ${message}` : "";
  return new RegistryError(code, `${what}: ${status} ${code}${suffix}`, {
    status,
    url,
    detail,
    retryAfterMs,
  });
}
