// The CRI client's own types (cri.md §2). `cri` sits below `node` in the module map, so these are declared
// here with the same shapes as node's ImageService types: a CriImageService is assignable to node's
// ImageService by structure (checked in test/cri-client.test.ts), and carries a few extra CRI fields.
// Field names are the camelCase of the CRI message fields.

/** CRI ImageSpec: names an image in requests and responses. */
export interface CriImageSpec {
  /** A reference (`repo:tag`, `repo@sha256:…`) or an image ID, as the caller names it. */
  readonly image: string;
  readonly annotations?: Readonly<Record<string, string>>;
  /** RuntimeClass handler whose image store to use; `""`/absent = the default. */
  readonly runtimeHandler?: string;
  /** The reference as the user wrote it (the kubelet sets it in CreateContainer only). */
  readonly userSpecifiedImage?: string;
  /** Image volumes: the digest of the image used (cri-api v0.36). */
  readonly imageRef?: string;
}

/** CRI AuthConfig, as a caller hands it in (see toCriAuth for what goes on the wire). */
export interface CriAuthConfig {
  readonly username?: string;
  readonly password?: string;
  /** base64 of `username:password` */
  readonly auth?: string;
  readonly serverAddress?: string;
  readonly identityToken?: string;
  readonly registryToken?: string;
}

/** CRI PodSandboxMetadata. */
export interface CriPodSandboxMetadata {
  readonly name: string;
  readonly uid: string;
  readonly namespace: string;
  readonly attempt?: number;
}

/** The top level of CRI PodSandboxConfig that a pull can use (containerd 1.6 ignores all of it). */
export interface CriPodSandboxConfig {
  readonly metadata?: CriPodSandboxMetadata;
  readonly hostname?: string;
  readonly logDirectory?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** CRI Image. */
export interface CriImage {
  /** The image's ID on the node (containerd: the config digest); equals PullImage's image_ref. */
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
  /** Bytes as the runtime counts them (containerd: compressed blobs); exact (≤ 2^53 − 1, else an error). */
  readonly size: number;
  /** Default UID from the config's `User` when numeric, else null. */
  readonly uid: number | null;
  /** Default user name when `User` is not numeric, else `""`. */
  readonly username: string;
  /** The image spec the runtime reports (unset on containerd 1.6). */
  readonly spec: CriImageSpec | null;
  readonly pinned: boolean;
}

export interface CriPullImageResponse {
  /** The runtime's identifier of the pulled image (containerd: config digest). */
  readonly imageRef: string;
}

export interface CriImageStatusResponse {
  /** null when the runtime does not hold the image (not an error in CRI). */
  readonly image: CriImage | null;
  /** Runtime-defined, values JSON; non-empty only for `verbose`. */
  readonly info: Readonly<Record<string, string>>;
}

/** CRI FilesystemUsage, plus what statfs says about the mountpoint when kpull can see it. */
export interface CriFilesystemUsage {
  /** When the runtime collected the numbers, in **milliseconds** since the epoch (exact to the ms). */
  readonly timestamp: number;
  /** The same instant exactly as the runtime sent it: nanoseconds since the epoch, decimal. */
  readonly timestampNanos: string;
  readonly mountpoint: string;
  /** Bytes used by images on that filesystem (0 when the runtime left it unset). */
  readonly usedBytes: number;
  /** Inodes used by images, null when unset. */
  readonly inodesUsed: number | null;
  /** statfs of the mountpoint (the kubelet asks cAdvisor); absent when kpull cannot see it. */
  readonly capacityBytes?: number;
  readonly availableBytes?: number;
}

export interface CriImageFsInfo {
  readonly imageFilesystems: readonly CriFilesystemUsage[];
  /** Only for a split image filesystem (cri-api v0.29); empty on containerd 1.6. */
  readonly containerFilesystems: readonly CriFilesystemUsage[];
}

/** RuntimeService.Version. */
export interface CriRuntimeVersion {
  /** The kubelet's CRI client version as echoed by the runtime. */
  readonly version: string;
  /** `containerd` */
  readonly runtimeName: string;
  /** `1.6.20~ds1` */
  readonly runtimeVersion: string;
  /** `v1` */
  readonly runtimeApiVersion: string;
}

/** What `kpull runtime info` prints. */
export interface CriRuntimeInfo extends CriRuntimeVersion {
  readonly endpoint: string;
  readonly imageFilesystems: readonly CriFilesystemUsage[];
  readonly containerFilesystems: readonly CriFilesystemUsage[];
}
