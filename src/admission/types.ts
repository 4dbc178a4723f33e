// AdmissionReview admission.k8s.io/v1, the part a webhook reads and writes (spec/policy-tools.md §4.1-4.2;
// k8s.io/api/admission/v1/types.go).

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";
export const ADMISSION_KIND = "AdmissionReview";

export type Operation = "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
export const OPERATIONS: readonly Operation[] = Object.freeze(["CREATE", "UPDATE", "DELETE", "CONNECT"]);

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface GroupVersionResource {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
}

/** A JSON object as decoded: the shape is checked where it is read. */
export type JsonObject = { readonly [key: string]: unknown };

/** The request of an AdmissionReview, after its shape has been checked (review.ts). */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: GroupVersionKind | null;
  readonly resource: GroupVersionResource | null;
  /** `ephemeralcontainers`, `status`, ...; empty for the main resource. */
  readonly subResource: string;
  readonly name: string;
  readonly namespace: string;
  readonly operation: Operation;
  readonly object: JsonObject | null;
  readonly oldObject: JsonObject | null;
  readonly dryRun: boolean;
  readonly username: string | null;
}

/** metav1.Status, as far as an admission denial uses it. */
export interface AdmissionStatus {
  readonly code: number;
  readonly reason?: string;
  readonly message: string;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: AdmissionStatus;
  /** base64 of an RFC 6902 JSON Patch. */
  readonly patch?: string;
  readonly patchType?: "JSONPatch";
  readonly warnings?: readonly string[];
  /** The API server prefixes each key with the webhook's name. */
  readonly auditAnnotations?: Readonly<Record<string, string>>;
}

export interface AdmissionReviewResponse {
  readonly apiVersion: typeof ADMISSION_API_VERSION;
  readonly kind: typeof ADMISSION_KIND;
  readonly response: AdmissionResponse;
}

/** One RFC 6902 operation; kpull writes only `add` and `replace`. */
export interface PatchOperation {
  readonly op: "add" | "replace";
  readonly path: string;
  readonly value: unknown;
}

/** Which endpoint a review came to. */
export type Endpoint = "validate" | "mutate";

/**
 * What /mutate does:
 * - `pull-policy`: set imagePullPolicy (an image volume: pullPolicy) where the mode is not met, to the value
 *   `kpull fix` writes (the rule's fix);
 * - `always-pull-images`: what the in-tree AlwaysPullImages admission plugin does (kubelet.md §5);
 * - `none`: no policy changes (pinning may still apply).
 */
export type MutationMode = "pull-policy" | "always-pull-images" | "none";
export const MUTATION_MODES: readonly MutationMode[] = Object.freeze([
  "pull-policy",
  "always-pull-images",
  "none",
]);

export function isMutationMode(value: unknown): value is MutationMode {
  return typeof value === "string" && (MUTATION_MODES as readonly string[]).includes(value);
}
