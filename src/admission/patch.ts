// RFC 6902 JSON Patch, the only patch type admission v1 takes: kpull writes `add` (the field is absent) and
// `replace` (it is present; the API server has usually defaulted imagePullPolicy already), addressed by
// RFC 6901 JSON pointers.

import { valueAt } from "./object.ts";
import type { PatchOperation } from "./types.ts";

/** An RFC 6901 pointer for a path: `~` is written `~0` and `/` is written `~1`. */
export function jsonPointer(path: readonly (string | number)[]): string {
  return path.map((p) => `/${String(p).replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");
}

/** `add` when `path` does not exist in `object` (its parent must), else `replace`. */
export function setOperation(
  object: unknown,
  path: readonly (string | number)[],
  value: unknown,
): PatchOperation {
  const parent = valueAt(object, path.slice(0, -1));
  const last = path[path.length - 1];
  const exists =
    typeof parent === "object" &&
    parent !== null &&
    last !== undefined &&
    Object.hasOwn(parent, typeof last === "number" ? String(last) : last);
  return { op: exists ? "replace" : "add", path: jsonPointer(path), value };
}

/** The response's `patch` field: base64 of the JSON text. */
export function encodePatch(ops: readonly PatchOperation[]): string {
  return Buffer.from(JSON.stringify(ops)).toString("base64");
}

/** `spec.template.spec.containers[0].imagePullPolicy`: a path as kubectl and the API server print one. */
export function fieldPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out === "" ? p : `.${p}`;
  return out;
}
