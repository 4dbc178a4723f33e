// Decoding an AdmissionReview body. Anything that is not a v1 AdmissionReview with a request uid is answered
// with HTTP 400 (there is no uid to echo); a review whose request is malformed past its uid is answered with
// a denial that echoes the uid and says what is wrong. Nothing here throws on input.

import {
  ADMISSION_API_VERSION,
  ADMISSION_KIND,
  type AdmissionRequest,
  type GroupVersionKind,
  type GroupVersionResource,
  type JsonObject,
  OPERATIONS,
  type Operation,
} from "./types.ts";

export type DecodedReview =
  | { readonly ok: true; readonly request: AdmissionRequest }
  /** `uid` null: answer HTTP 400 with `message`; else an AdmissionReview denial (status 400). */
  | { readonly ok: false; readonly uid: string | null; readonly message: string };

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  return typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}

function gvk(value: unknown): GroupVersionKind | null {
  if (!isObject(value)) return null;
  const { group, version, kind } = value;
  if (typeof kind !== "string") return null;
  return {
    group: typeof group === "string" ? group : "",
    version: typeof version === "string" ? version : "",
    kind,
  };
}

function gvr(value: unknown): GroupVersionResource | null {
  if (!isObject(value)) return null;
  const { group, version, resource } = value;
  if (typeof resource !== "string") return null;
  return {
    group: typeof group === "string" ? group : "",
    version: typeof version === "string" ? version : "",
    resource,
  };
}

/** Decodes the text of a request body. */
export function decodeReview(text: string): DecodedReview {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    return { ok: false, uid: null, message: `request body is not JSON: ${(error as Error).message}` };
  }
  return decodeReviewObject(body);
}

/** Checks the shape of a decoded body. */
export function decodeReviewObject(body: unknown): DecodedReview {
  if (!isObject(body))
    return { ok: false, uid: null, message: `expected an AdmissionReview object, got ${describe(body)}` };
  if (body.apiVersion !== ADMISSION_API_VERSION || body.kind !== ADMISSION_KIND) {
    return {
      ok: false,
      uid: null,
      message:
        `expected apiVersion ${ADMISSION_API_VERSION} and kind ${ADMISSION_KIND}, got apiVersion ` +
        `${describe(body.apiVersion)} and kind ${describe(body.kind)} (configure the webhook with ` +
        `admissionReviewVersions: [v1])`,
    };
  }
  const request = body.request;
  if (!isObject(request))
    return { ok: false, uid: null, message: `AdmissionReview has no request (got ${describe(request)})` };
  const uid = request.uid;
  if (typeof uid !== "string" || uid === "")
    return { ok: false, uid: null, message: `request.uid must be a non-empty string, got ${describe(uid)}` };
  const deny = (message: string): DecodedReview => ({ ok: false, uid, message });

  const operation = request.operation;
  if (!(OPERATIONS as readonly unknown[]).includes(operation))
    return deny(`request.operation must be one of ${OPERATIONS.join(", ")}, got ${describe(operation)}`);
  const op = operation as Operation;
  const object = request.object ?? null;
  const oldObject = request.oldObject ?? null;
  if ((op === "CREATE" || op === "UPDATE") && !isObject(object))
    return deny(`request.object must be an object for ${op}, got ${describe(request.object)}`);
  if (object !== null && !isObject(object))
    return deny(`request.object must be an object, got ${describe(object)}`);
  if (oldObject !== null && !isObject(oldObject))
    return deny(`request.oldObject must be an object, got ${describe(oldObject)}`);
  for (const key of ["subResource", "name", "namespace"] as const) {
    const v = request[key];
    if (v !== undefined && v !== null && typeof v !== "string")
      return deny(`request.${key} must be a string, got ${describe(v)}`);
  }
  if (request.dryRun !== undefined && request.dryRun !== null && typeof request.dryRun !== "boolean")
    return deny(`request.dryRun must be a boolean, got ${describe(request.dryRun)}`);
  const userInfo = request.userInfo;
  const username = isObject(userInfo) && typeof userInfo.username === "string" ? userInfo.username : null;
  return {
    ok: true,
    request: {
      uid,
      kind: gvk(request.kind),
      resource: gvr(request.resource),
      subResource: typeof request.subResource === "string" ? request.subResource : "",
      name: typeof request.name === "string" ? request.name : "",
      namespace: typeof request.namespace === "string" ? request.namespace : "",
      operation: op,
      object: object as JsonObject | null,
      oldObject: oldObject as JsonObject | null,
      dryRun: request.dryRun === true,
      username,
    },
  };
}
