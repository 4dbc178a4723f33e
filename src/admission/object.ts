// Image uses of one decoded object (an AdmissionReview's `object`), read as the manifests module reads text.
//
// An AdmissionReview arrives as JSON and is decoded once with JSON.parse; walking the decoded object is an
// order of magnitude cheaper than handing it back to the YAML reader, and the webhook sits on the API
// server's critical path. The result matches `imageUsesFromText(JSON.stringify(object), file)` use for use
// (kind, names, annotations, container type and name, image, status, policy, path, order), which
// object.test.ts checks on every kind; only source positions differ: a decoded object has none, so every
// position is line 1, column 1 of `file`. Lists are not read: the API server never sends one.

import {
  CONTAINER_FIELDS,
  type ContainerType,
  type ImageStatus,
  type ImageUse,
  podSpecPaths,
  podTemplateMetadataPath,
  type SourcePosition,
} from "../manifests/index.ts";

type Path = readonly (string | number)[];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function stringField(obj: unknown, key: string): string | null {
  if (!isObject(obj)) return null;
  const v = own(obj, key);
  return typeof v === "string" ? v : null;
}

function at(obj: unknown, path: readonly string[]): unknown {
  let current = obj;
  for (const key of path) {
    if (!isObject(current)) return undefined;
    current = own(current, key);
  }
  return current;
}

function annotationsOf(metadata: unknown): Readonly<Record<string, string>> {
  const out: Record<string, string> = Object.create(null);
  const annotations = isObject(metadata) ? own(metadata, "annotations") : undefined;
  if (!isObject(annotations)) return out;
  for (const [k, v] of Object.entries(annotations)) if (typeof v === "string") out[k] = v;
  return out;
}

interface ObjectInfo {
  readonly file: string;
  readonly position: SourcePosition;
  readonly kind: string;
  readonly apiVersion: string | null;
  readonly namespace: string | null;
  readonly name: string | null;
  readonly annotations: Readonly<Record<string, string>>;
  readonly templateAnnotations: Readonly<Record<string, string>>;
}

function field(value: unknown): { status: ImageStatus; value: string | null } {
  if (value === undefined || value === null) return { status: "missing", value: null };
  if (typeof value === "string") return { status: "string", value };
  return { status: "invalid-type", value: null };
}

function emit(
  out: ImageUse[],
  info: ObjectInfo,
  containerType: ContainerType,
  container: string | null,
  image: { status: ImageStatus; value: string | null },
  policy: unknown,
  path: Path,
): void {
  out.push({
    file: info.file,
    document: 0,
    kind: info.kind,
    apiVersion: info.apiVersion,
    namespace: info.namespace,
    name: info.name,
    containerType,
    container,
    image: image.value,
    imageStatus: image.status,
    pullPolicy: typeof policy === "string" ? policy : null,
    position: info.position,
    imageEndPosition: null,
    imageKeyPosition: null,
    policyPosition: null,
    path,
    shared: false,
    annotations: info.annotations,
    templateAnnotations: info.templateAnnotations,
    renderedFrom: null,
  });
}

/**
 * Every image used by the pod spec of `object` (a Pod or a workload with a pod template), in the kubelet's
 * order: image volumes, init containers, containers, ephemeral containers. Empty for other kinds.
 */
export function imageUsesFromObject(object: unknown, file = "-"): ImageUse[] {
  if (!isObject(object)) return [];
  const kind = stringField(object, "kind");
  if (kind === null) return [];
  const specPaths = podSpecPaths(kind);
  if (specPaths.length === 0) return [];
  const metadata = own(object, "metadata");
  const templateMetadataPath = podTemplateMetadataPath(kind);
  const info: ObjectInfo = {
    file,
    position: { file, line: 1, column: 1 },
    kind,
    apiVersion: stringField(object, "apiVersion"),
    namespace: stringField(metadata, "namespace"),
    name: stringField(metadata, "name"),
    annotations: annotationsOf(metadata),
    templateAnnotations:
      templateMetadataPath === null ? Object.create(null) : annotationsOf(at(object, templateMetadataPath)),
  };
  const out: ImageUse[] = [];
  for (const specPath of specPaths) {
    const spec = at(object, specPath);
    if (!isObject(spec)) continue;
    const volumes = own(spec, "volumes");
    if (Array.isArray(volumes)) {
      for (const [i, volume] of volumes.entries()) {
        if (!isObject(volume)) continue;
        const source = own(volume, "image");
        if (source === undefined || source === null) continue;
        const path = [...specPath, "volumes", i];
        const name = stringField(volume, "name");
        if (!isObject(source)) {
          emit(out, info, "imageVolume", name, { status: "invalid-type", value: null }, null, path);
          continue;
        }
        emit(
          out,
          info,
          "imageVolume",
          name,
          field(own(source, "reference")),
          own(source, "pullPolicy"),
          path,
        );
      }
    }
    for (const { type, field: listField } of CONTAINER_FIELDS) {
      const list = own(spec, listField);
      if (!Array.isArray(list)) continue;
      for (const [i, container] of list.entries()) {
        if (!isObject(container)) continue;
        emit(
          out,
          info,
          type,
          stringField(container, "name"),
          field(own(container, "image")),
          own(container, "imagePullPolicy"),
          [...specPath, listField, i],
        );
      }
    }
  }
  return out;
}

/** The value at `path` in `object`, or undefined. */
export function valueAt(object: unknown, path: Path): unknown {
  let current = object;
  for (const key of path) {
    if (typeof key === "number") {
      if (!Array.isArray(current)) return undefined;
      current = current[key];
    } else {
      if (!isObject(current)) return undefined;
      current = own(current, key);
    }
  }
  return current;
}
