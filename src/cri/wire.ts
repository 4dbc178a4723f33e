// Between kpull's types and the messages as @grpc/proto-loader hands them over (keepCase, longs as decimal
// strings, defaults on: absent messages are null, absent scalars their zero value). 64-bit fields are
// decoded from the decimal string with BigInt, so nothing is rounded on the way: a count that does not fit
// a JavaScript number exactly (> 2^53 − 1) is an INVALID_RESPONSE, never a silently different number, and
// the nanosecond timestamp is kept exactly as a string beside its millisecond number.

import { CriError } from "./errors.ts";
import type {
  CriFilesystemUsage,
  CriImage,
  CriImageSpec,
  CriPodSandboxConfig,
  CriRuntimeVersion,
} from "./types.ts";

type Long = string | number | null | undefined;

export interface WireImageSpec {
  image: string;
  annotations: Record<string, string>;
  user_specified_image: string;
  runtime_handler: string;
  image_ref: string;
}

export interface WireImage {
  id: string;
  repo_tags: string[] | null;
  repo_digests: string[] | null;
  size: Long;
  uid: { value: Long } | null;
  username: string;
  spec: WireImageSpec | null;
  pinned: boolean;
}

export interface WireFilesystemUsage {
  timestamp: Long;
  fs_id: { mountpoint: string } | null;
  used_bytes: { value: Long } | null;
  inodes_used: { value: Long } | null;
}

export interface WireVersionResponse {
  version: string;
  runtime_name: string;
  runtime_version: string;
  runtime_api_version: string;
}

function invalid(what: string, value: unknown): CriError {
  return new CriError("INVALID_RESPONSE", `invalid CRI response: ${what} = ${JSON.stringify(value)}`);
}

/** A 64-bit integer field as an exact BigInt. */
export function toBigInt(value: Long, what: string): bigint {
  if (value === null || value === undefined || value === "") return 0n;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw invalid(what, value);
    return BigInt(value);
  }
  if (!/^-?\d+$/.test(value)) throw invalid(what, value);
  return BigInt(value);
}

/** A 64-bit integer field as a number, only when that number is exact. */
export function toSafeNumber(value: Long, what: string): number {
  const big = toBigInt(value, what);
  if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER))
    throw new CriError(
      "INVALID_RESPONSE",
      `invalid CRI response: ${what} = ${big} does not fit a JavaScript number exactly`,
    );
  return Number(big);
}

const NANOS_PER_MS = 1_000_000n;

export function toWireSpec(spec: CriImageSpec): WireImageSpec {
  return {
    image: spec.image,
    annotations: { ...(spec.annotations ?? {}) },
    user_specified_image: spec.userSpecifiedImage ?? "",
    runtime_handler: spec.runtimeHandler ?? "",
    image_ref: spec.imageRef ?? "",
  };
}

export function toWireSandbox(config: CriPodSandboxConfig): Record<string, unknown> {
  return {
    metadata: config.metadata
      ? {
          name: config.metadata.name,
          uid: config.metadata.uid,
          namespace: config.metadata.namespace,
          attempt: config.metadata.attempt ?? 0,
        }
      : null,
    hostname: config.hostname ?? "",
    log_directory: config.logDirectory ?? "",
    labels: { ...(config.labels ?? {}) },
    annotations: { ...(config.annotations ?? {}) },
  };
}

function fromWireSpec(spec: WireImageSpec | null): CriImageSpec | null {
  if (!spec) return null;
  const annotations = spec.annotations ?? {};
  return {
    image: spec.image ?? "",
    ...(Object.keys(annotations).length > 0 ? { annotations: { ...annotations } } : {}),
    ...(spec.runtime_handler ? { runtimeHandler: spec.runtime_handler } : {}),
    ...(spec.user_specified_image ? { userSpecifiedImage: spec.user_specified_image } : {}),
    ...(spec.image_ref ? { imageRef: spec.image_ref } : {}),
  };
}

export function fromWireImage(image: WireImage): CriImage {
  return {
    id: image.id ?? "",
    repoTags: [...(image.repo_tags ?? [])],
    repoDigests: [...(image.repo_digests ?? [])],
    size: toSafeNumber(image.size, "Image.size"),
    uid: image.uid ? toSafeNumber(image.uid.value, "Image.uid") : null,
    username: image.username ?? "",
    spec: fromWireSpec(image.spec),
    pinned: Boolean(image.pinned),
  };
}

export function fromWireFilesystem(fs: WireFilesystemUsage): CriFilesystemUsage {
  const nanos = toBigInt(fs.timestamp, "FilesystemUsage.timestamp");
  return {
    timestamp: Number(nanos / NANOS_PER_MS),
    timestampNanos: nanos.toString(),
    mountpoint: fs.fs_id?.mountpoint ?? "",
    usedBytes: fs.used_bytes ? toSafeNumber(fs.used_bytes.value, "FilesystemUsage.used_bytes") : 0,
    inodesUsed: fs.inodes_used ? toSafeNumber(fs.inodes_used.value, "FilesystemUsage.inodes_used") : null,
  };
}

export function fromWireVersion(v: WireVersionResponse): CriRuntimeVersion {
  return {
    version: v.version ?? "",
    runtimeName: v.runtime_name ?? "",
    runtimeVersion: v.runtime_version ?? "",
    runtimeApiVersion: v.runtime_api_version ?? "",
  };
}
