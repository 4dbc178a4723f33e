// Pods, Secrets and KubeletConfiguration from the files given with -f, for `start` and `prepull`: images
// come from the manifests module (positions, every kind); pull-secret names and Secret objects are read
// from the same, already validated, documents.

import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import {
  expandInputs,
  type ImageUse,
  imageUsesFromText,
  ManifestError,
  readManifestSource,
} from "../manifests/index.ts";
import type { PodContainer, PullerConfig } from "../node/index.ts";

export interface PodFromManifest {
  readonly file: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly containers: PodContainer[];
  readonly imagePullSecrets: string[];
}

export interface ManifestSet {
  readonly pods: PodFromManifest[];
  /** Secret objects, as plain data (the credentials module reads dockerconfigjson/dockercfg ones). */
  readonly secrets: Record<string, unknown>[];
}

function get(obj: unknown, path: readonly (string | number)[]): unknown {
  let cur = obj;
  for (const key of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[key];
  }
  return cur;
}

function str(v: unknown): string | null {
  return typeof v === "string" && v !== "" ? v : null;
}

export async function readPods(
  inputs: readonly string[],
  stdin: NodeJS.ReadableStream,
): Promise<ManifestSet> {
  const pods = new Map<string, PodFromManifest>();
  const secrets: Record<string, unknown>[] = [];
  for (const file of await expandInputs(inputs)) {
    const source = await readManifestSource(file, { stdin });
    const uses = imageUsesFromText(source.text, file); // validates: bounded aliases, well-formed YAML
    const docs = parseAllDocuments(source.text, { merge: true }).map(
      (d) => d.toJS({ maxAliasCount: 1000 }) as unknown,
    );
    for (const doc of docs) collectSecrets(doc, secrets);
    for (const use of uses) addUse(pods, docs, use);
  }
  return { pods: [...pods.values()], secrets };
}

function collectSecrets(doc: unknown, out: Record<string, unknown>[]): void {
  if (doc === null || typeof doc !== "object") return;
  const d = doc as Record<string, unknown>;
  if (d.kind === "Secret") out.push(d);
  if (Array.isArray(d.items)) for (const item of d.items) collectSecrets(item, out);
}

function addUse(pods: Map<string, PodFromManifest>, docs: unknown[], use: ImageUse): void {
  const doc = docs[use.document];
  // The pod spec holds the container list: drop [<list>, <index>] from the container's path.
  const specPath = use.path.slice(0, -2);
  const objectPath = use.path[0] === "items" ? use.path.slice(0, 2) : [];
  const key = `${use.file}\0${use.document}\0${specPath.join("/")}`;
  let pod = pods.get(key);
  if (pod === undefined) {
    const namespace = use.namespace ?? "default";
    const name = use.name ?? "unnamed";
    const uid = str(get(doc, [...objectPath, "metadata", "uid"])) ?? derivedUid(use.kind, namespace, name);
    const secrets = get(doc, [...specPath, "imagePullSecrets"]);
    pod = {
      file: use.file,
      kind: use.kind,
      namespace,
      name,
      uid,
      containers: [],
      imagePullSecrets: Array.isArray(secrets)
        ? secrets.flatMap((s) => (str(get(s, ["name"])) === null ? [] : [str(get(s, ["name"])) as string]))
        : [],
    };
    pods.set(key, pod);
  }
  pod.containers.push({
    name: use.container ?? "unnamed",
    type: use.containerType,
    image: use.image ?? "",
    pullPolicy: use.pullPolicy,
  });
}

/** A stable UID for a pod that has none in its manifest, so back-off and records key the same each run. */
function derivedUid(kind: string, namespace: string, name: string): string {
  const h = createHash("sha256").update(`${kind}/${namespace}/${name}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Splits a pod's imagePullSecrets into Secrets found (same namespace) and names missing. */
export function podSecrets(
  pod: PodFromManifest,
  secrets: readonly Record<string, unknown>[],
): { found: Record<string, unknown>[]; missing: string[] } {
  const found: Record<string, unknown>[] = [];
  const missing: string[] = [];
  for (const name of pod.imagePullSecrets) {
    const secret = secrets.find(
      (s) =>
        get(s, ["metadata", "name"]) === name &&
        (str(get(s, ["metadata", "namespace"])) ?? "default") === pod.namespace,
    );
    if (secret) found.push(secret);
    else missing.push(name);
  }
  return { found, missing };
}

/** The fields of a KubeletConfiguration (kubelet.config.k8s.io/v1beta1) that concern image pulls. */
export interface KubeletImageConfig extends PullerConfig {
  readonly imagePullCredentialsVerificationPolicy?: string;
  readonly preloadedImagesVerificationAllowlist?: readonly string[];
  readonly ensureSecretPulledImages: boolean;
}

export async function readKubeletConfig(file: string): Promise<KubeletImageConfig> {
  let doc: Record<string, unknown>;
  try {
    doc = parseYaml(await readFile(file, "utf8"), { maxAliasCount: 100 }) as Record<string, unknown>;
  } catch (error) {
    throw new ManifestError(file, `cannot read kubelet config: ${(error as Error).message.split("\n")[0]}`);
  }
  if (doc === null || typeof doc !== "object" || doc.kind !== "KubeletConfiguration") {
    throw new ManifestError(file, "not a KubeletConfiguration (kind: KubeletConfiguration)");
  }
  const num = (k: string) => {
    const v = doc[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new ManifestError(file, `${k} must be a number`);
    return v;
  };
  const gates = (doc.featureGates ?? {}) as Record<string, unknown>;
  const policy = str(doc.imagePullCredentialsVerificationPolicy);
  const allowlist = doc.preloadedImagesVerificationAllowlist;
  const out: Record<string, unknown> = {
    ensureSecretPulledImages: gates.KubeletEnsureSecretPulledImages === true,
  };
  if (typeof doc.serializeImagePulls === "boolean") out.serializeImagePulls = doc.serializeImagePulls;
  const max = num("maxParallelImagePulls");
  if (max !== undefined) out.maxParallelImagePulls = max;
  const qps = num("registryPullQPS");
  if (qps !== undefined) out.registryPullQPS = qps;
  const burst = num("registryBurst");
  if (burst !== undefined) out.registryBurst = burst;
  if (policy !== null) out.imagePullCredentialsVerificationPolicy = policy;
  if (Array.isArray(allowlist)) out.preloadedImagesVerificationAllowlist = allowlist.map(String);
  return out as unknown as KubeletImageConfig;
}
