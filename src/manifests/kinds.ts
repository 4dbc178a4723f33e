// Which kinds carry a pod spec, and where (spec/policy-tools.md §3.1).

import type { ContainerType } from "./types.ts";

const POD_SPEC_PATH: ReadonlyMap<string, readonly string[]> = new Map(
  (
    [
      ["Pod", ["spec"]],
      ["PodTemplate", ["template", "spec"]],
      ["ReplicationController", ["spec", "template", "spec"]],
      ["ReplicaSet", ["spec", "template", "spec"]],
      ["Deployment", ["spec", "template", "spec"]],
      ["StatefulSet", ["spec", "template", "spec"]],
      ["DaemonSet", ["spec", "template", "spec"]],
      ["Job", ["spec", "template", "spec"]],
      ["CronJob", ["spec", "jobTemplate", "spec", "template", "spec"]],
    ] as const
  ).map(([kind, path]) => [kind, Object.freeze([...path])]),
);

/** Every kind whose pod spec is read, in the order of the table in spec/policy-tools.md §3.1. */
export const WORKLOAD_KINDS: readonly string[] = Object.freeze([...POD_SPEC_PATH.keys()]);

/**
 * The paths from an object of this kind to its pod spec(s); empty for a kind that carries none. Kinds are
 * matched exactly and by kind alone, whatever the apiVersion: old groups (`extensions/v1beta1`,
 * `batch/v1beta1`) and look-alike custom resources with the same layout (OpenKruise's Advanced StatefulSet and
 * DaemonSet) are read the same way; a look-alike without that path yields nothing.
 */
export function podSpecPaths(kind: string): readonly (readonly string[])[] {
  const path = POD_SPEC_PATH.get(kind);
  return path === undefined ? [] : [path];
}

/**
 * The path from an object of this kind to the metadata of its pod template (whose annotations kube-score also
 * reads), or null when the kind has no template (Pod) or no pod spec.
 */
export function podTemplateMetadataPath(kind: string): readonly string[] | null {
  const [path] = podSpecPaths(kind);
  return path === undefined || path.length < 2 ? null : [...path.slice(0, -1), "metadata"];
}

/** The pod spec field that lists each container type, in the order the kubelet starts them. */
export const CONTAINER_FIELDS: readonly {
  readonly type: Exclude<ContainerType, "imageVolume">;
  readonly field: string;
}[] = Object.freeze([
  { type: "initContainer", field: "initContainers" },
  { type: "container", field: "containers" },
  { type: "ephemeralContainer", field: "ephemeralContainers" },
]);
