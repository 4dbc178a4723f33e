// The kubelet's EnsureImageExists (kubelet.md §2.2, v1.33+ shape) on any ImageService: tag defaulting, the
// decision per policy, back-off per pod and image, the puller, events with the kubelet's reasons and texts,
// and the credential-verification hook of KEP-2535.

import {
  applyDefaultImageTag,
  ErrImageNeverPull,
  ErrImagePull,
  EventReason,
  type EventType,
  goQuote,
  ImageInspectError,
  ImageNameError,
  ImagePullBackOff,
  InvalidImageName,
  messages,
  type PullPolicy,
  RegistryUnavailable,
  SignatureValidationFailed,
  type WaitingReason,
} from "../policy/index.ts";
import { type Backoff, backoffKey } from "./backoff.ts";
import type { AuthConfig, ImageService, ImageSpec, PullReport } from "./image-service.ts";
import type { Puller } from "./puller.ts";

export interface ObjectReference {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** `spec.containers{app}`, `spec.initContainers{init}`, ... */
  readonly fieldPath?: string;
}

export interface NodeEvent {
  readonly type: EventType;
  readonly reason: string;
  readonly message: string;
  readonly object: string;
  readonly time: number;
}

/**
 * Whose access a credential proves, for KEP-2535's records (kubelet.md §3.4, §3.5). A credential that worked
 * is recorded by this, never by its secret parts.
 */
export type CredentialOrigin =
  /** One of the pod's image pull secrets: its coordinates and the kubelet's AuthConfigHash of the
   * credential (`credentialHash` in src/registry). */
  | {
      readonly kind: "secret";
      readonly uid: string;
      readonly namespace: string;
      readonly name: string;
      readonly credentialHash: string;
    }
  /** A credential provider plugin that exchanged the pod's service-account token (KEP-4412). */
  | {
      readonly kind: "service-account";
      readonly uid: string;
      readonly namespace: string;
      readonly name: string;
    }
  /** The node's own credentials (config.json, credential helpers, plugins without a service account): every
   * pod on the node has them, so an image they pulled is `nodePodsAccessible`. */
  | { readonly kind: "node" };

/** A credential to try, with what identifies it for KEP-2535 records. */
export interface PullCredential {
  readonly auth: AuthConfig;
  /** Secret-free description for messages (`pull secret default/regcred`). */
  readonly source: string;
  readonly origin: CredentialOrigin;
}

/** KEP-2535's pull manager, as the image manager consults it (kubelet.md §3.4, §3.6). */
export interface PullVerifier {
  /** Present image: must the pod's credentials be checked against the registry before it may use it?
   * `credentials` is the pod's lazy, memoized lookup; it is called only when the records need it. */
  mustAttemptImagePull(
    image: string,
    imageRef: string,
    credentials: () => Promise<readonly PullCredential[]>,
  ): Promise<boolean>;
  /** Before a pull; a rejection stops the pull (kubelet.md §2.2 step 7). */
  recordPullIntent(image: string): Promise<void>;
  /** After a successful pull, with the credential that worked (null: anonymous). Never rejects. */
  recordImagePulled(image: string, imageRef: string, credential: PullCredential | null): Promise<void>;
  /** After a failed (or backed-off) pull. Never rejects. */
  recordImagePullFailed(image: string): Promise<void>;
}

export interface EnsureImageRequest {
  readonly pod: ObjectReference;
  readonly image: string;
  readonly policy: PullPolicy;
  /** Credentials in the kubelet's order; looked up lazily, only when a pull happens. */
  readonly credentials: () => Promise<readonly PullCredential[]>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

export type EnsureImageResult =
  | { readonly ok: true; readonly imageRef: string; readonly pulled: boolean; readonly report?: PullReport }
  | {
      readonly ok: false;
      readonly reason: WaitingReason;
      readonly message: string;
      readonly report?: PullReport;
    };

export interface ImageManagerOptions {
  readonly service: ImageService;
  readonly puller: Puller;
  readonly backoff: Backoff;
  readonly now?: () => number;
  readonly onEvent?: (event: NodeEvent) => void;
  /** KEP-2535; null when the `KubeletEnsureSecretPulledImages` gate is off. */
  readonly verifier?: PullVerifier | null;
  /** Abort a pull that takes longer than this (ms), counted from dispatch. The kubelet has none of its own
   * (containerd cancels stalled pulls); kpull offers one so a slow registry cannot hold a start forever. */
  readonly pullDeadlineMs?: number;
}

export function objectName(ref: ObjectReference): string {
  const base = `${ref.kind.toLowerCase()}/${ref.namespace}/${ref.name}`;
  return ref.fieldPath ? `${base}{${ref.fieldPath}}` : base;
}

interface PullAttempt {
  readonly imageRef: string;
  readonly report: PullReport | undefined;
  readonly credential: PullCredential | null;
}

export class ImageManager {
  readonly #o: ImageManagerOptions;
  readonly #now: () => number;

  constructor(options: ImageManagerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  #event(ref: ObjectReference, type: EventType, reason: string, message: string): void {
    this.#o.onEvent?.({ type, reason, message, object: objectName(ref), time: this.#now() });
  }

  async ensureImageExists(req: EnsureImageRequest): Promise<EnsureImageResult> {
    const { pod, image, policy } = req;
    let tagged: string;
    try {
      tagged = applyDefaultImageTag(image);
    } catch (error) {
      if (!(error instanceof ImageNameError)) throw error;
      const message = messages.invalidImageName(image, error.message);
      this.#event(pod, "Warning", EventReason.InspectFailed, message);
      return { ok: false, reason: InvalidImageName, message };
    }
    const spec: ImageSpec = { image: tagged, ...(req.annotations ? { annotations: req.annotations } : {}) };

    let presentRef: string | null = null;
    if (policy !== "Always") {
      try {
        presentRef = (await this.#o.service.imageStatus(spec)).image?.id ?? null;
      } catch (error) {
        // Current main builds this message from the still-empty ref (kubelet.md §2.2 step 4).
        const message = messages.inspectFailed("", (error as Error).message);
        this.#event(pod, "Warning", EventReason.InspectFailed, message);
        return { ok: false, reason: ImageInspectError, message };
      }
      if (presentRef === null && policy === "Never") return this.#neverPull(pod, image);
    }

    let credentials: readonly PullCredential[] | null = null;
    const lookup = async () => {
      credentials ??= await req.credentials();
      return credentials;
    };

    if (presentRef !== null) {
      const verifier = this.#o.verifier ?? null;
      if (verifier === null) {
        this.#event(pod, "Normal", EventReason.Pulled, messages.alreadyPresent(image));
        return { ok: true, imageRef: presentRef, pulled: false };
      }
      if (!(await verifier.mustAttemptImagePull(image, presentRef, lookup))) {
        this.#event(pod, "Normal", EventReason.Pulled, messages.alreadyPresentAccessible(image));
        return { ok: true, imageRef: presentRef, pulled: false };
      }
      // Deliberately the same answer as an absent image, so presence is not revealed.
      if (policy === "Never") return this.#neverPull(pod, image);
    }

    try {
      await this.#o.verifier?.recordPullIntent(image);
    } catch (error) {
      const message = `Failed to record image pull intent for container image ${goQuote(image)}: ${(error as Error).message}`;
      return { ok: false, reason: ErrImagePull, message };
    }
    const key = backoffKey(pod.uid, image);
    const backoff = this.#o.backoff;
    if (backoff.isInBackOffSinceUpdate(key, this.#now())) {
      this.#event(pod, "Normal", EventReason.BackOff, messages.backOff(image));
      await this.#o.verifier?.recordImagePullFailed(image);
      const previous = backoff.lastError(key);
      return {
        ok: false,
        reason: ImagePullBackOff,
        message: `${messages.backOff(image)}${previous ? `: ${previous}` : ""}`,
      };
    }
    backoff.setLastError(key, undefined);
    this.#event(pod, "Normal", EventReason.Pulling, messages.pulling(image));
    const started = this.#now();
    const tried = await lookup();
    try {
      const { value, pullMs } = await this.#o.puller.pull(async () => {
        const deadline = this.#o.pullDeadlineMs;
        const signal =
          deadline === undefined
            ? req.signal
            : req.signal
              ? AbortSignal.any([req.signal, AbortSignal.timeout(deadline)])
              : AbortSignal.timeout(deadline);
        let pulled: PullAttempt;
        try {
          pulled = await this.#pullWithCredentials(spec, tried, signal);
        } catch (error) {
          if (deadline !== undefined && signal?.aborted && !req.signal?.aborted) {
            throw Object.assign(new Error(`pull deadline of ${deadline} ms exceeded`), {
              report: (error as { report?: PullReport }).report,
            });
          }
          throw error;
        }
        // The kubelet's pull duration includes the best-effort size lookup.
        let size = 0;
        try {
          size = (await this.#o.service.imageStatus(spec)).image?.size ?? 0;
        } catch {
          size = 0;
        }
        return { ...pulled, size };
      });
      const totalMs = this.#now() - started;
      this.#event(pod, "Normal", EventReason.Pulled, messages.pulled(image, pullMs, totalMs, value.size));
      backoff.gc(this.#now());
      await this.#o.verifier?.recordImagePulled(image, value.imageRef, value.credential);
      return {
        ok: true,
        imageRef: value.imageRef,
        pulled: true,
        ...(value.report ? { report: value.report } : {}),
      };
    } catch (error) {
      const raw = (error as Error).message;
      this.#event(pod, "Warning", EventReason.Failed, messages.failedToPull(image, raw));
      backoff.next(key, this.#now());
      const classified = classifyPullError(image, raw);
      backoff.setLastError(key, `${classified.reason}: ${classified.message}`);
      await this.#o.verifier?.recordImagePullFailed(image);
      const report = (error as { report?: PullReport }).report;
      return { ok: false, ...classified, ...(report ? { report } : {}) };
    }
  }

  #neverPull(pod: ObjectReference, image: string): EnsureImageResult {
    const message = messages.neverPull(image);
    this.#event(pod, "Warning", EventReason.ErrImageNeverPull, message);
    return { ok: false, reason: ErrImageNeverPull, message };
  }

  /** Tries each credential in order and stops at the first success; anonymous only when none matched
   * (kuberuntime_image.go PullImage). All failing: the errors joined. */
  async #pullWithCredentials(
    spec: ImageSpec,
    credentials: readonly PullCredential[],
    signal: AbortSignal | undefined,
  ): Promise<PullAttempt> {
    const attempts: (PullCredential | null)[] = credentials.length > 0 ? [...credentials] : [null];
    const errors: Error[] = [];
    for (const credential of attempts) {
      try {
        const res = await this.#o.service.pullImage(spec, credential?.auth ?? null, signal ? { signal } : {});
        return { imageRef: res.imageRef, report: res.report, credential };
      } catch (error) {
        errors.push(error as Error);
      }
    }
    if (errors.length === 1) throw errors[0];
    const joined = new Error(`[${errors.map((e) => e.message).join(", ")}]`) as Error & {
      report?: PullReport;
    };
    const report = (errors.at(-1) as { report?: PullReport }).report;
    if (report) joined.report = report;
    throw joined;
  }

  /** What `startContainer` records after an EnsureImageExists error. */
  recordContainerError(ref: ObjectReference, reason: WaitingReason): void {
    this.#event(ref, "Warning", EventReason.Failed, messages.containerError(reason));
  }
}

/** evalCRIPullErr: the runtime's two typed errors are recognised by prefix; anything else is ErrImagePull
 * with the raw text (kubelet.md §2.5). */
export function classifyPullError(image: string, raw: string): { reason: WaitingReason; message: string } {
  if (raw.startsWith(RegistryUnavailable)) {
    return {
      reason: RegistryUnavailable,
      message: messages.registryUnavailable(image, raw.slice(RegistryUnavailable.length)),
    };
  }
  if (raw.startsWith(SignatureValidationFailed)) {
    return {
      reason: SignatureValidationFailed,
      message: messages.signatureValidationFailed(image, raw.slice(SignatureValidationFailed.length)),
    };
  }
  return { reason: ErrImagePull, message: raw };
}
