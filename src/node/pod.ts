// Starting a pod's images as the kubelet does: image volumes before any container (KEP-4639), init
// containers one by one (a failure stops the pod there), then regular containers, then ephemeral ones; each
// container's image ensured with its own policy, events on its object reference, and a lease so that
// image GC never removes what the "running" containers use.

import type { PullPolicy, WaitingReason } from "../policy/index.ts";
import { effectivePullPolicy, isPullPolicy, messages, parseImageName } from "../policy/index.ts";
import type { CredentialProvider } from "../registry/index.ts";
import type { ObjectReference } from "./image-manager.ts";
import type { Node } from "./node.ts";

export type PodContainerType = "container" | "initContainer" | "ephemeralContainer" | "imageVolume";

export interface PodContainer {
  readonly name: string;
  readonly type: PodContainerType;
  readonly image: string;
  /** As written; empty means the API server's default for the image. */
  readonly pullPolicy: string | null;
}

export interface PodInput {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly containers: readonly PodContainer[];
  /** Names from `spec.imagePullSecrets` that could not be found (the kubelet warns and goes on). */
  readonly missingPullSecrets?: readonly string[];
  /** The pod's credentials: its pull secrets first, then the node's. */
  readonly credentials?: CredentialProvider;
}

export interface ContainerStatus {
  readonly pod: string;
  readonly name: string;
  readonly type: PodContainerType;
  readonly image: string;
  readonly policy: string;
  readonly state: "ready" | "waiting";
  readonly reason:
    | WaitingReason
    | "PodInitializing"
    | "ContainerCreating"
    | "CreateContainerConfigError"
    | null;
  readonly message: string | null;
  readonly imageRef: string | null;
}

const ORDER: Record<PodContainerType, number> = {
  imageVolume: 0,
  initContainer: 1,
  container: 2,
  ephemeralContainer: 3,
};

function fieldPath(c: PodContainer): string {
  switch (c.type) {
    case "imageVolume":
      return `spec.volumes{${c.name}}`;
    case "initContainer":
      return `spec.initContainers{${c.name}}`;
    case "ephemeralContainer":
      return `spec.ephemeralContainers{${c.name}}`;
    default:
      return `spec.containers{${c.name}}`;
  }
}

/** Ensures every image of a pod in the kubelet's order; returns one status per container. A lease on the
 * images that became ready keeps them from GC until `releaseLease` (pass `keepLease` to hold it). */
export async function startPod(
  node: Node,
  pod: PodInput,
  options: { keepLease?: boolean } = {},
): Promise<ContainerStatus[]> {
  const podRef: ObjectReference = { kind: "Pod", namespace: pod.namespace, name: pod.name, uid: pod.uid };
  const podName = `${pod.namespace}/${pod.name}`;
  if ((pod.missingPullSecrets ?? []).length > 0) {
    node.event(
      podRef,
      "Warning",
      "FailedToRetrieveImagePullSecret",
      messages.failedToRetrieveImagePullSecret(pod.missingPullSecrets ?? []),
    );
  }
  const ordered = [...pod.containers].sort((a, b) => ORDER[a.type] - ORDER[b.type]);
  const statuses: ContainerStatus[] = [];
  let blockedBy: "PodInitializing" | "ContainerCreating" | null = null;
  const ready: string[] = [];
  for (const c of ordered) {
    const written = c.pullPolicy ?? "";
    const effective = effectivePullPolicy(c.image, written, c.type).effective ?? "IfNotPresent";
    const base = { pod: podName, name: c.name, type: c.type, image: c.image, policy: effective };
    if (blockedBy !== null && c.type !== "ephemeralContainer") {
      statuses.push({ ...base, state: "waiting", reason: blockedBy, message: null, imageRef: null });
      continue;
    }
    if (!isPullPolicy(effective)) {
      // The API server would have refused the object; the kubelet never sees such a pod.
      statuses.push({
        ...base,
        state: "waiting",
        reason: "CreateContainerConfigError",
        message: `unsupported imagePullPolicy ${JSON.stringify(effective)}`,
        imageRef: null,
      });
      continue;
    }
    const ref: ObjectReference = { ...podRef, fieldPath: fieldPath(c) };
    const result = await node.manager.ensureImageExists({
      pod: ref,
      image: c.image,
      policy: effective as PullPolicy,
      credentials: node.credentialsFor(c.image, pod.credentials),
    });
    if (result.ok) {
      ready.push(c.image);
      statuses.push({
        ...base,
        state: "ready",
        reason: null,
        message: staleNote(c.image, effective, result.pulled),
        imageRef: result.imageRef,
      });
      continue;
    }
    node.manager.recordContainerError(ref, result.reason);
    statuses.push({
      ...base,
      state: "waiting",
      reason: result.reason,
      message: result.message,
      imageRef: null,
    });
    // A failed image volume fails the sync before any container; a failed init container stops the rest.
    if (c.type === "imageVolume") blockedBy = "ContainerCreating";
    else if (c.type === "initContainer") blockedBy = "PodInitializing";
  }
  if (ready.length > 0)
    await node.holdImages(`pod ${podName} (${pod.uid})`, ready, options.keepLease === true);
  return statuses;
}

/** The stale-tag pitfall, said where it bites: a cached image under IfNotPresent is used without asking the
 * registry, so a tag that moved since is not noticed. */
function staleNote(image: string, policy: string, pulled: boolean): string | null {
  if (pulled || policy !== "IfNotPresent") return null;
  try {
    const { tag, digest } = parseImageName(image);
    if (digest !== "") return null;
    return `image already on the node; under IfNotPresent the tag ${JSON.stringify(tag)} is not checked against the registry, so if it moved this is the old image`;
  } catch {
    return null;
  }
}
