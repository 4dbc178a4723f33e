// The ImageService on kpull's own store: what containerd's CRI plugin does, on the store in src/store.
// PullImage resolves, fetches only missing content and records the image; the image ref is the config
// digest, as containerd reports it.

import { Buffer } from "node:buffer";
import {
  type Platform,
  RegistryClient,
  type RegistryClientOptions,
  RegistryCredential,
  RegistryError,
  requestCounts,
} from "../registry/index.ts";
import type { PullProgress, Store } from "../store/core.ts";
import type {
  AuthConfig,
  FilesystemUsage,
  Image,
  ImageService,
  ImageSpec,
  PullImageResponse,
  PullReport,
} from "./image-service.ts";

export interface StoreImageServiceOptions {
  /** Registry settings (hosts dir, insecure registries, timeouts); credentials come with each pull. */
  readonly registry?: Omit<RegistryClientOptions, "credentials">;
  readonly platform?: Platform;
  readonly signal?: AbortSignal;
  /** Store-level progress, for the CLI's progress display. */
  readonly onProgress?: (progress: PullProgress) => void;
}

/** A pull failure that carries what was measured up to the failure. */
export class PullFailure extends Error {
  readonly report: PullReport;
  readonly code: string;
  constructor(message: string, code: string, report: PullReport) {
    super(message);
    this.name = "PullFailure";
    this.code = code;
    this.report = report;
  }
}

function credentialFrom(auth: AuthConfig | null): RegistryCredential | null {
  if (auth === null) return null;
  let username = auth.username ?? "";
  let password = auth.password ?? "";
  if (auth.auth && username === "" && password === "") {
    const decoded = Buffer.from(auth.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon >= 0) {
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
  }
  return new RegistryCredential({
    username,
    password,
    identityToken: auth.identityToken,
    registryToken: auth.registryToken,
    source: { kind: "auth-config" },
  });
}

export class StoreImageService implements ImageService {
  readonly store: Store;
  readonly #options: StoreImageServiceOptions;

  constructor(store: Store, options: StoreImageServiceOptions = {}) {
    this.store = store;
    this.#options = options;
  }

  async pullImage(
    spec: ImageSpec,
    auth: AuthConfig | null,
    options: { signal?: AbortSignal } = {},
  ): Promise<PullImageResponse> {
    const credential = credentialFrom(auth);
    const client = new RegistryClient({
      ...this.#options.registry,
      credentials: { lookup: async () => (credential === null ? [] : [credential]) },
    });
    const signal = options.signal ?? this.#options.signal;
    try {
      const result = await this.store.pullImage(client, spec.image, {
        ...(this.#options.platform ? { platform: this.#options.platform } : {}),
        ...(signal ? { signal } : {}),
        ...(this.#options.onProgress ? { onProgress: this.#options.onProgress } : {}),
      });
      const report: PullReport = {
        digest: result.target.digest,
        requests: requestCounts(client.stats),
        bytesFetched: result.fetched.bytes,
        layers: layerCounts(result.blobs),
        fetched: result.fetched,
        reused: result.reused,
      };
      return { imageRef: result.id, report };
    } catch (error) {
      const report: PullReport = {
        requests: requestCounts(client.stats),
        bytesFetched: client.stats.bytesReceived,
      };
      // Network failures and 5xx become the runtime's RegistryUnavailable, which the kubelet recognises by
      // prefix (kubelet.md §2.5); everything else is a plain pull error.
      const e = error as { message?: string; code?: string };
      const unavailable = error instanceof RegistryError && error.kubeletReason === "RegistryUnavailable";
      const message = unavailable ? `RegistryUnavailable: ${e.message}` : (e.message ?? String(error));
      throw new PullFailure(message, e.code ?? "ErrImagePull", report);
    } finally {
      await client.close();
    }
  }

  async imageStatus(spec: ImageSpec): Promise<{ image: Image | null }> {
    return { image: await this.store.criImageStatus(spec.image) };
  }

  async listImages(): Promise<Image[]> {
    return this.store.listCriImages();
  }

  async removeImage(spec: ImageSpec): Promise<void> {
    await this.store.remove([spec.image]);
  }

  async imageFsInfo(): Promise<FilesystemUsage[]> {
    const u = await this.store.usage();
    return [
      {
        timestamp: u.timestamp,
        mountpoint: u.mountpoint,
        usedBytes: u.usedBytes,
        inodesUsed: u.inodesUsed,
        capacityBytes: u.capacityBytes,
        availableBytes: u.availableBytes,
      },
    ];
  }
}

function layerCounts(blobs: readonly { kind: string; fetchedBytes: number; status: string }[]) {
  const layers = blobs.filter((b) => b.kind === "layer");
  const fetched = layers.filter((b) => b.fetchedBytes > 0).length;
  return { total: layers.length, fetched, reused: layers.length - fetched };
}
