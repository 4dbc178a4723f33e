// The one interface the image manager sees, shaped like the CRI ImageService (runtime.v1): implemented by
// kpull's own store and by a CRI client in front of a real runtime. Field names follow the CRI messages.

export interface ImageSpec {
  /** The image string after the kubelet's tag defaulting (`nginx:latest`), not normalized. */
  readonly image: string;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly runtimeHandler?: string;
}

/** CRI AuthConfig: what the kubelet hands the runtime for one pull attempt. */
export interface AuthConfig {
  readonly username?: string;
  readonly password?: string;
  readonly auth?: string;
  readonly serverAddress?: string;
  readonly identityToken?: string;
  readonly registryToken?: string;
}

export interface Image {
  /** The image ref the kubelet records (config digest on containerd, `sha256:…`). */
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
  readonly size: number;
  readonly pinned: boolean;
}

/** Extra figures an implementation may report about a pull (kpull's store does). */
export interface PullReport {
  readonly digest?: string;
  readonly requests?: Readonly<Record<string, number>>;
  readonly bytesFetched?: number;
  readonly layers?: { readonly total: number; readonly fetched: number; readonly reused: number };
  /** Every blob (index, manifests, config, layers): how many and how many bytes were fetched or reused. */
  readonly fetched?: { readonly blobs: number; readonly bytes: number };
  readonly reused?: { readonly blobs: number; readonly bytes: number };
}

export interface PullImageResponse {
  readonly imageRef: string;
  readonly report?: PullReport;
}

export interface FilesystemUsage {
  readonly timestamp: number;
  readonly mountpoint: string;
  readonly usedBytes: number;
  readonly inodesUsed: number | null;
  readonly capacityBytes?: number;
  readonly availableBytes?: number;
}

export interface ImageService {
  pullImage(
    spec: ImageSpec,
    auth: AuthConfig | null,
    options?: { signal?: AbortSignal },
  ): Promise<PullImageResponse>;
  /** `image: null` when absent; a rejection is an inspect failure (ImageInspectError). */
  imageStatus(spec: ImageSpec): Promise<{ image: Image | null }>;
  listImages(): Promise<Image[]>;
  removeImage(spec: ImageSpec): Promise<void>;
  imageFsInfo(): Promise<FilesystemUsage[]>;
}
