// A node as kpull runs it: the image manager on an image service — kpull's store (the default) or a CRI
// runtime (`service`) — with back-off kept in the store so it survives between invocations, and the outcome
// of one ensure-image in the shape `kpull pull` prints. Everything Node learns about images it learns from
// the image service (ImageStatus), so the outcome reads the same on both; with a runtime, `store` is the
// runtime's state directory (runtime-state.ts) and holds no images.

import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  applyDefaultImageTag,
  defaultPullPolicy,
  type PullPolicy,
  type WaitingReason,
} from "../policy/index.ts";
import { formatReference, parseNormalizedNamed } from "../reference/index.ts";
import type { CredentialProvider, Platform, RegistryClientOptions } from "../registry/index.ts";
import { imageName, type PullProgress, type Store } from "../store/core.ts";
import { Backoff, type BackoffEntry } from "./backoff.ts";
import {
  ImageManager,
  type NodeEvent,
  type ObjectReference,
  objectName,
  type PullVerifier,
} from "./image-manager.ts";
import { repoDigestsFor, resolvedDigest } from "./image-names.ts";
import type { Image, ImageService, PullReport } from "./image-service.ts";
import { makePuller, type PullerConfig } from "./puller.ts";
import { noteRuntimeImages, pinRuntimeImage } from "./runtime-state.ts";
import { StoreImageService } from "./store-service.ts";
import { toPullCredentials } from "./verification/credentials.ts";

export interface NodeOptions {
  readonly store: Store;
  readonly registry?: Omit<RegistryClientOptions, "credentials">;
  /** The node's credentials (config.json, helpers, plugins) and any pull secrets, in the kubelet's order. */
  readonly credentials?: CredentialProvider;
  readonly kubelet?: PullerConfig;
  /** Abort any one pull after this long (ms); none by default, as in the kubelet. */
  readonly pullDeadlineMs?: number;
  readonly platform?: Platform;
  readonly verifier?: PullVerifier | null;
  /** Another image service (a CRI runtime) instead of the store's. */
  readonly service?: ImageService;
  readonly now?: () => number;
  readonly onEvent?: (event: NodeEvent) => void;
  readonly onProgress?: (progress: PullProgress) => void;
  readonly signal?: AbortSignal;
}

export type PullAction = "pulled" | "present" | "verified" | "updated" | "failed";

/** What `kpull pull -o json` prints. */
export interface PullOutcome {
  readonly image: string;
  readonly reference: string | null;
  readonly digest: string | null;
  readonly policy: PullPolicy;
  readonly action: PullAction;
  readonly code: WaitingReason | null;
  readonly message: string | null;
  readonly requests: Readonly<Record<string, number>>;
  readonly bytesFetched: number;
  readonly layers: { readonly total: number; readonly fetched: number; readonly reused: number };
  /** All blobs, not only layers (extra to the fields above). */
  readonly fetched: { readonly blobs: number; readonly bytes: number };
  readonly reused: { readonly blobs: number; readonly bytes: number };
  /** False when a runtime pulled (PullImage): requests, bytes and layers were not seen by kpull and read
   * `{}`/0. True on kpull's store, and whenever no pull happened (nothing was requested). */
  readonly measured: boolean;
  readonly durationMs: number;
}

/** The pod `kpull pull` acts for: back-off and events are keyed by pod like the kubelet's. */
export const CLI_POD: ObjectReference = {
  kind: "Pod",
  namespace: "default",
  name: "kpull",
  uid: "kpull-cli",
};

export class Node {
  readonly store: Store;
  readonly service: ImageService;
  readonly manager: ImageManager;
  readonly backoff: Backoff;
  /** True when the images live in another image service (a CRI runtime) than the store's. */
  readonly onRuntime: boolean;
  readonly #options: NodeOptions;
  readonly #now: () => number;
  /** backoff.json as loaded or last saved: a save that would write the same text writes nothing. */
  #savedBackoff: string | null;

  private constructor(options: NodeOptions, backoff: Backoff, savedBackoff: string | null) {
    this.#savedBackoff = savedBackoff;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.store = options.store;
    this.backoff = backoff;
    this.service =
      options.service ??
      new StoreImageService(options.store, {
        ...(options.registry ? { registry: options.registry } : {}),
        ...(options.platform ? { platform: options.platform } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      });
    this.onRuntime = !(this.service instanceof StoreImageService);
    this.manager = new ImageManager({
      service: this.onRuntime ? unmeasured(this.service) : this.service,
      puller: makePuller(options.kubelet ?? {}, this.#now),
      backoff,
      now: this.#now,
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      verifier: options.verifier ?? null,
      ...(options.pullDeadlineMs !== undefined ? { pullDeadlineMs: options.pullDeadlineMs } : {}),
    });
  }

  static async open(options: NodeOptions): Promise<Node> {
    const { backoff, text } = await loadBackoff(backoffFile(options.store));
    return new Node(options, backoff, text);
  }

  /** Saves the back-off state (call after a batch of ensure-image calls). Unchanged state is not rewritten,
   * and no state (every pull succeeded) needs no file. */
  async save(): Promise<void> {
    const text = `${JSON.stringify(this.backoff.toJSON())}\n`;
    if (text === (this.#savedBackoff ?? "{}\n")) return;
    await saveBackoff(backoffFile(this.store), text);
    this.#savedBackoff = text;
  }

  /** Records an event as the kubelet would, on `ref`. */
  event(ref: ObjectReference, type: "Normal" | "Warning", reason: string, message: string): void {
    this.#options.onEvent?.({ type, reason, message, object: objectName(ref), time: this.#now() });
  }

  /** Marks images as used by containers: a lease (held past this process when `keep`) and lastUsed. On a
   * runtime the lease names the image IDs too, and lastUsed goes to the runtime state's records. */
  async holdImages(purpose: string, images: readonly string[], keep: boolean): Promise<void> {
    const names = images.flatMap((i) => {
      try {
        return [imageName(i)];
      } catch {
        return [];
      }
    });
    const ids: string[] = [];
    if (this.onRuntime) {
      for (const image of images) {
        const id = await this.#imageId(image);
        if (id !== null) ids.push(id);
      }
    }
    const lease = await this.store.lease({ purpose, images: [...names, ...ids], processBound: !keep });
    if (ids.length > 0) await noteRuntimeImages(this.store, ids, { used: true, now: this.#now() });
    if (!keep) await lease.release();
  }

  /** Pins an image against image GC: on the store its records; on a runtime kpull's record of its ID (CRI
   * has no pin call, and containerd 1.6 pins only its sandbox image). Returns the image ID, null if absent. */
  async pin(image: string): Promise<string | null> {
    if (!this.onRuntime) {
      await this.store.pin(image);
      return (await this.store.criImageStatus(image))?.id ?? null;
    }
    const id = await this.#imageId(image);
    if (id !== null) await pinRuntimeImage(this.store, id);
    return id;
  }

  /** The image ID the image service reports for `image` (tag-defaulted as the kubelet sends it), or null. */
  async #imageId(image: string): Promise<string | null> {
    try {
      return (await this.service.imageStatus({ image: applyDefaultImageTag(image) })).image?.id ?? null;
    } catch {
      return null;
    }
  }

  /** ImageStatus of `image` as the image manager asks it, with the digests of its repository; null when
   * absent, invalid or unreadable (this only shapes the outcome; the manager reports inspect errors). */
  async #status(image: string): Promise<{ id: string; digests: string[]; image: Image } | null> {
    try {
      const found = (await this.service.imageStatus({ image: applyDefaultImageTag(image) })).image;
      return found === null ? null : { id: found.id, digests: repoDigestsFor(found, image), image: found };
    } catch {
      return null;
    }
  }

  /** Credentials for a repository, in the kubelet's order, as the image manager tries them. */
  credentialsFor(
    image: string,
    provider: CredentialProvider | undefined = this.#options.credentials,
  ): () => Promise<ReturnType<typeof toPullCredentials>> {
    return async () => {
      if (provider === undefined) return [];
      let repository: string;
      try {
        const ref = parseNormalizedNamed(image);
        repository = `${ref.domain}/${ref.path}`;
      } catch {
        return [];
      }
      return toPullCredentials(await provider.lookup(repository));
    };
  }

  /** Ensures one image under a policy (default: the API server's default for the string), as `kpull pull`. */
  async pull(
    image: string,
    policy: PullPolicy = defaultPullPolicy(image),
    pod: ObjectReference = CLI_POD,
  ): Promise<PullOutcome> {
    const started = this.#now();
    let reference: string | null = null;
    try {
      reference = formatReference(parseNormalizedNamed(image));
    } catch {
      reference = null;
    }
    // What was there before, through the image service (ImageStatus), so both backends answer alike.
    const previous = reference === null ? null : await this.#status(image);
    const result = await this.manager.ensureImageExists({
      pod: { ...pod, fieldPath: pod.fieldPath ?? "spec.containers{kpull}" },
      image,
      policy,
      credentials: this.credentialsFor(image),
      ...(this.#options.signal ? { signal: this.#options.signal } : {}),
    });
    if (!result.ok) this.manager.recordContainerError(pod, result.reason);
    const report: PullReport = result.report ?? {};
    // The digest the pull resolved, when the image service reports it (kpull's store does); else what
    // ImageStatus says now (a runtime's pull, or no pull at all).
    let digest = report.digest ?? null;
    if (report.digest === undefined && reference !== null) {
      const now = await this.#status(image);
      digest = now === null ? null : resolvedDigest(now.image, image, previous?.digests ?? []);
    }
    if (result.ok && this.onRuntime) {
      await noteRuntimeImages(this.store, [result.imageRef], { now: this.#now() }).catch(() => undefined);
    }
    let action: PullAction;
    if (!result.ok) action = "failed";
    else if (!result.pulled) action = "present";
    else if (previous === null) action = "pulled";
    else if (previous.id !== result.imageRef) action = "updated";
    else action = digest === null || previous.digests.includes(digest) ? "verified" : "updated";
    // kpull's store reports the registry traffic of every pull; a runtime's PullImage reports none (its
    // report is {}), so only outcomes without a PullImage (present, never, back-off, QPS) count as measured.
    const measured = result.report === undefined || result.report.requests !== undefined;
    return {
      image,
      reference,
      digest,
      policy,
      action,
      code: result.ok ? null : result.reason,
      message: result.ok ? null : result.message,
      requests: measured ? { HEAD: 0, GET: 0, ...(report.requests ?? {}) } : {},
      bytesFetched: report.bytesFetched ?? 0,
      layers: report.layers ?? { total: 0, fetched: 0, reused: 0 },
      fetched: report.fetched ?? { blobs: 0, bytes: 0 },
      reused: report.reused ?? { blobs: 0, bytes: 0 },
      measured,
      durationMs: this.#now() - started,
    };
  }
}

/** The runtime's service as the image manager sees it: every PullImage outcome carries a report, empty
 * (nothing measured) unless the service gave one, so Node can tell "pulled, not measured" from "no pull". */
function unmeasured(service: ImageService): ImageService {
  return {
    pullImage: async (spec, auth, options) => {
      try {
        const res = await service.pullImage(spec, auth, options);
        return { imageRef: res.imageRef, report: res.report ?? {} };
      } catch (error) {
        if (error !== null && typeof error === "object" && !("report" in error))
          Object.assign(error, { report: {} });
        throw error;
      }
    },
    imageStatus: (spec) => service.imageStatus(spec),
    listImages: () => service.listImages(),
    removeImage: (spec) => service.removeImage(spec),
    imageFsInfo: () => service.imageFsInfo(),
  };
}

function backoffFile(store: Store): string {
  return join(store.paths.kpull, "backoff.json");
}

/** The back-off state, and the file's text (null when missing or unreadable) for save() to compare with. */
async function loadBackoff(file: string): Promise<{ backoff: Backoff; text: string | null }> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    // Missing or unreadable: back-off state is advisory, start afresh rather than fail a pull.
    return { backoff: new Backoff(), text: null };
  }
  try {
    const entries = JSON.parse(text) as Record<string, BackoffEntry>;
    if (entries === null || typeof entries !== "object" || Array.isArray(entries))
      return { backoff: new Backoff(), text };
    const valid = Object.entries(entries).filter(
      ([, e]) =>
        e !== null && typeof e === "object" && Number.isFinite(e.backoffMs) && Number.isFinite(e.lastUpdate),
    );
    return { backoff: new Backoff(undefined, undefined, Object.fromEntries(valid)), text };
  } catch {
    return { backoff: new Backoff(), text };
  }
}

async function saveBackoff(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    try {
      await writeFile(temp, text);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      await mkdir(dirname(file), { recursive: true }); // a state directory removed under a running node
      await writeFile(temp, text);
    }
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {}); // a full disk must not leave half a file behind
    throw error;
  }
}
