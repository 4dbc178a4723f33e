// A CRI ImageService client (runtime.v1) on a Unix socket, shaped like node's ImageService so the image
// manager can drive a real runtime such as containerd (cri.md §1–§3). It behaves like the kubelet's client
// (cri-client pkg/remote_image.go): insecure gRPC with authority `localhost`, 16 MiB messages, start-up
// validation with ImageFsInfo, `runtimeRequestTimeout` (2 min) on every call except PullImage (which only
// its AbortSignal ends), and the same error texts, so the kubelet's prefix rule works on PullImage errors.

import { lstatSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { Client, credentials, Metadata, type ServiceError, status } from "@grpc/grpc-js";
import { toWireAuth } from "./auth.ts";
import { parseCriEndpoint } from "./endpoint.ts";
import { CriError, rpcErrorText } from "./errors.ts";
import { type AnyMethod, criMethod, type ImageMethod } from "./proto.ts";
import type {
  CriAuthConfig,
  CriFilesystemUsage,
  CriImage,
  CriImageFsInfo,
  CriImageSpec,
  CriImageStatusResponse,
  CriPodSandboxConfig,
  CriPullImageResponse,
  CriRuntimeInfo,
  CriRuntimeVersion,
} from "./types.ts";
import {
  fromWireFilesystem,
  fromWireImage,
  fromWireVersion,
  toBigInt,
  toWireSandbox,
  toWireSpec,
  type WireFilesystemUsage,
  type WireImage,
  type WireVersionResponse,
} from "./wire.ts";

/** The kubelet's `runtimeRequestTimeout` default (KubeletConfiguration): 2 minutes. */
export const RUNTIME_REQUEST_TIMEOUT_MS = 120_000;
/** cri-client's maxMsgSize. */
export const CRI_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** What the kubelet sends in VersionRequest.version (kuberuntime's kubeRuntimeAPIVersion). */
export const KUBE_RUNTIME_API_VERSION = "0.1.0";

export interface CriClientOptions {
  /** Deadline of every call except PullImage, in ms; default RUNTIME_REQUEST_TIMEOUT_MS. */
  readonly timeoutMs?: number;
  /** Fill capacityBytes/availableBytes from statfs of each image filesystem's mountpoint (what the
   * kubelet learns from cAdvisor); silently skipped when the mountpoint is not visible. Default true. */
  readonly statfs?: boolean;
}

export interface CriCallOptions {
  readonly signal?: AbortSignal;
  /** Overrides the client's deadline for this call (ms); for PullImage the default is no deadline. */
  readonly timeoutMs?: number;
}

export interface CriPullOptions extends CriCallOptions {
  /** PullImageRequest.sandbox_config: the pod's sandbox (containerd 1.6 ignores it). */
  readonly sandboxConfig?: CriPodSandboxConfig;
}

const VALIDATE_PREFIX = (endpoint: string) =>
  `validate service connection: validate CRI v1 image API for endpoint ${JSON.stringify(endpoint)}: `;

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "no such file or directory",
  ECONNREFUSED: "connection refused",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOTSOCK: "socket operation on non-socket",
};

export class CriImageService {
  /** The endpoint as given (used in messages, like the kubelet). */
  readonly endpoint: string;
  /** `unix:///abs/path.sock` */
  readonly url: string;
  readonly socketPath: string;
  readonly timeoutMs: number;
  readonly #statfs: boolean;
  #client: Client | null = null;
  #closed = false;

  /** A client that connects on first use; see connect() for the kubelet's start-up validation. */
  constructor(endpoint: string, options: CriClientOptions = {}) {
    const parsed = parseCriEndpoint(endpoint);
    this.endpoint = endpoint;
    this.url = parsed.url;
    this.socketPath = parsed.socketPath;
    this.timeoutMs = options.timeoutMs ?? RUNTIME_REQUEST_TIMEOUT_MS;
    this.#statfs = options.statfs ?? true;
  }

  /** Create a client and validate the endpoint as the kubelet does at start-up (ImageFsInfo); closes the
   * client and throws the validation error when that fails. */
  static async connect(endpoint: string, options: CriClientOptions = {}): Promise<CriImageService> {
    const service = new CriImageService(endpoint, options);
    try {
      await service.validate();
    } catch (error) {
      service.close();
      throw error;
    }
    return service;
  }

  /** The kubelet's validateServiceConnection: one ImageFsInfo on runtime.v1. Errors carry its wording:
   * `validate service connection: validate CRI v1 image API for endpoint "<endpoint>": <err>`. */
  async validate(options: CriCallOptions = {}): Promise<CriImageFsInfo> {
    try {
      return await this.fsInfo(options);
    } catch (error) {
      if (error instanceof CriError) throw error.withPrefix(VALIDATE_PREFIX(this.endpoint));
      throw error;
    }
  }

  /** RuntimeService.Version (same socket on containerd and CRI-O). */
  async version(options: CriCallOptions = {}): Promise<CriRuntimeVersion> {
    const res = await this.#call<WireVersionResponse>(
      criMethod("RuntimeService", "Version"),
      { version: KUBE_RUNTIME_API_VERSION },
      options,
      this.timeoutMs,
    );
    return fromWireVersion(res);
  }

  /** Version and image filesystem usage together: what `kpull runtime info` prints. */
  async runtimeInfo(options: CriCallOptions = {}): Promise<CriRuntimeInfo> {
    const [version, fs] = await Promise.all([this.version(options), this.fsInfo(options)]);
    return {
      endpoint: this.url,
      ...version,
      imageFilesystems: fs.imageFilesystems,
      containerFilesystems: fs.containerFilesystems,
    };
  }

  /** PullImage: no deadline unless `timeoutMs`; the signal cancels it. An empty image_ref is an error, as in
   * the kubelet (`imageRef of image "<image>" is not set`). */
  async pullImage(
    spec: CriImageSpec,
    auth: CriAuthConfig | null,
    options: CriPullOptions = {},
  ): Promise<CriPullImageResponse> {
    const res = await this.#image<{ image_ref: string }>(
      "PullImage",
      {
        image: toWireSpec(spec),
        auth: toWireAuth(auth),
        sandbox_config: options.sandboxConfig ? toWireSandbox(options.sandboxConfig) : null,
      },
      options,
      null,
    );
    if (!res.image_ref)
      throw new CriError("INVALID_RESPONSE", `imageRef of image ${JSON.stringify(spec.image)} is not set`, {
        method: criMethod("ImageService", "PullImage").path,
        endpoint: this.endpoint,
      });
    return { imageRef: res.image_ref };
  }

  /** ImageStatus: `image: null` when the runtime does not hold it. An image without id or size is rejected
   * like the kubelet does (`Id or size of image "<image>" is not set`). */
  async imageStatus(
    spec: CriImageSpec,
    options: CriCallOptions & { readonly verbose?: boolean } = {},
  ): Promise<CriImageStatusResponse> {
    const res = await this.#image<{ image: WireImage | null; info: Record<string, string> | null }>(
      "ImageStatus",
      { image: toWireSpec(spec), verbose: Boolean(options.verbose) },
      options,
      this.timeoutMs,
    );
    const info = { ...(res.info ?? {}) };
    if (!res.image) return { image: null, info };
    if (!res.image.id || toBigInt(res.image.size, "Image.size") === 0n)
      throw new CriError("INVALID_RESPONSE", `Id or size of image ${JSON.stringify(spec.image)} is not set`, {
        method: criMethod("ImageService", "ImageStatus").path,
        endpoint: this.endpoint,
      });
    return { image: fromWireImage(res.image), info };
  }

  /** ListImages. The filter is sent when given, but containerd ignores it (cri.md §2.4). */
  async listImages(options: CriCallOptions & { readonly filter?: CriImageSpec } = {}): Promise<CriImage[]> {
    const res = await this.#image<{ images: WireImage[] | null }>(
      "ListImages",
      { filter: options.filter ? { image: toWireSpec(options.filter) } : null },
      options,
      this.timeoutMs,
    );
    return (res.images ?? []).map(fromWireImage);
  }

  /** RemoveImage: idempotent; on containerd removing one name removes every name of that image ID. */
  async removeImage(spec: CriImageSpec, options: CriCallOptions = {}): Promise<void> {
    await this.#image("RemoveImage", { image: toWireSpec(spec) }, options, this.timeoutMs);
  }

  /** ImageFsInfo's image filesystems (containerd refreshes the numbers every stats_collect_period, 10 s). */
  async imageFsInfo(options: CriCallOptions = {}): Promise<CriFilesystemUsage[]> {
    return [...(await this.fsInfo(options)).imageFilesystems];
  }

  /** ImageFsInfo with both lists. */
  async fsInfo(options: CriCallOptions = {}): Promise<CriImageFsInfo> {
    const res = await this.#image<{
      image_filesystems: WireFilesystemUsage[] | null;
      container_filesystems: WireFilesystemUsage[] | null;
    }>("ImageFsInfo", {}, options, this.timeoutMs);
    const decode = (list: WireFilesystemUsage[] | null) =>
      Promise.all((list ?? []).map((fs) => this.#withStatfs(fromWireFilesystem(fs))));
    return {
      imageFilesystems: await decode(res.image_filesystems),
      containerFilesystems: await decode(res.container_filesystems),
    };
  }

  /** Closes the channel; later calls fail with CLOSED. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#client?.close();
    this.#client = null;
  }

  async #withStatfs(fs: CriFilesystemUsage): Promise<CriFilesystemUsage> {
    if (!this.#statfs || !fs.mountpoint) return fs;
    try {
      const s = await statfs(fs.mountpoint, { bigint: true });
      const capacity = s.blocks * s.bsize;
      const available = s.bavail * s.bsize;
      const max = BigInt(Number.MAX_SAFE_INTEGER);
      if (capacity > max || available > max) return fs;
      return { ...fs, capacityBytes: Number(capacity), availableBytes: Number(available) };
    } catch {
      return fs; // another mount namespace, a remote socket, or gone meanwhile
    }
  }

  #channel(): Client {
    if (this.#closed)
      throw new CriError("CLOSED", `CRI client for endpoint ${JSON.stringify(this.endpoint)} is closed`, {
        endpoint: this.endpoint,
      });
    this.#client ??= new Client(this.url, credentials.createInsecure(), {
      "grpc.max_receive_message_length": CRI_MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": CRI_MAX_MESSAGE_BYTES,
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 3000,
    });
    return this.#client;
  }

  #image<T>(
    name: ImageMethod,
    request: object,
    options: CriCallOptions,
    defaultTimeoutMs: number | null,
  ): Promise<T> {
    return this.#call<T>(criMethod("ImageService", name), request, options, defaultTimeoutMs);
  }

  #call<T>(
    method: AnyMethod,
    request: object,
    options: CriCallOptions,
    defaultTimeoutMs: number | null,
  ): Promise<T> {
    const signal = options.signal;
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    const deadline = timeoutMs === null ? null : Date.now() + timeoutMs;
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted) {
        reject(this.#cancelled(method.path, signal.reason));
        return;
      }
      let client: Client;
      try {
        client = this.#channel();
      } catch (error) {
        reject(error);
        return;
      }
      const onAbort = () => call.cancel();
      const call = client.makeUnaryRequest<object, T>(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        new Metadata(),
        deadline === null ? {} : { deadline },
        (error, response) => {
          signal?.removeEventListener("abort", onAbort);
          if (error) reject(this.#mapError(error, method.path, signal));
          else if (response === undefined) reject(this.#mapError(null, method.path, signal));
          else resolve(response);
        },
      );
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  #cancelled(method: string, cause: unknown): CriError {
    return new CriError("CANCELLED", rpcErrorText(status.CANCELLED, "context canceled"), {
      grpcCode: status.CANCELLED,
      details: "context canceled",
      method,
      endpoint: this.endpoint,
      cause,
    });
  }

  #mapError(error: ServiceError | null, method: string, signal: AbortSignal | undefined): CriError {
    const base = { method, endpoint: this.endpoint, cause: error ?? undefined };
    if (signal?.aborted) return this.#cancelled(method, signal.reason);
    if (error === null)
      return new CriError("INVALID_RESPONSE", `${method}: empty response`, { ...base, grpcCode: null });
    const code = error.code;
    const details = error.details ?? "";
    const withStatus = { ...base, grpcCode: code, details };
    if (this.#closed && code === status.CANCELLED)
      return new CriError(
        "CLOSED",
        `CRI client for endpoint ${JSON.stringify(this.endpoint)} is closed`,
        base,
      );
    switch (code) {
      case status.DEADLINE_EXCEEDED:
        // grpc-js's local deadline reads "Deadline exceeded after …"; Go's client says this.
        return new CriError(
          "DEADLINE_EXCEEDED",
          rpcErrorText(code, /^Deadline exceeded/.test(details) ? "context deadline exceeded" : details),
          withStatus,
        );
      case status.UNAVAILABLE:
        return this.#unavailable(details, withStatus);
      case status.UNIMPLEMENTED:
        return new CriError("UNSUPPORTED_API", rpcErrorText(code, details), withStatus);
      case status.UNKNOWN:
        // cri-client: PullImage's Unknown-code errors become the bare status message (kubelet.md §2.5).
        return new CriError(
          "RPC",
          method.endsWith("/PullImage") ? details : rpcErrorText(code, details),
          withStatus,
        );
      default:
        return new CriError("RPC", rpcErrorText(code, details), withStatus);
    }
  }

  /** Transport failures, classified by the errno grpc-js reports, worded like Go's dialer. */
  #unavailable(details: string, d: { grpcCode: number; details: string; method: string }): CriError {
    const errno = /\bconnect (E[A-Z]+)\b/.exec(details)?.[1];
    if (errno === undefined) return new CriError("UNAVAILABLE", rpcErrorText(status.UNAVAILABLE, details), d);
    const text = ERRNO_TEXT[errno] ?? errno;
    const message = rpcErrorText(
      status.UNAVAILABLE,
      `connection error: desc = "transport: Error while dialing: dial unix ${this.socketPath}: connect: ${text}"`,
    );
    const all = { ...d, endpoint: this.endpoint };
    if (errno === "ENOENT") return new CriError("SOCKET_MISSING", message, all);
    if (errno === "EACCES" || errno === "EPERM") return new CriError("PERMISSION_DENIED", message, all);
    if (errno === "ECONNREFUSED" || errno === "ENOTSOCK") {
      let isSocket = true;
      try {
        isSocket = lstatSync(this.socketPath).isSocket();
      } catch {
        // vanished meanwhile: still refused
      }
      return new CriError(isSocket ? "CONNECTION_REFUSED" : "NOT_A_SOCKET", message, all);
    }
    return new CriError("UNAVAILABLE", message, all);
  }
}
