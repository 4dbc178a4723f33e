// A node as kpull runs it: the image manager on the store-backed image service, with back-off kept in the
// store so it survives between invocations, and the outcome of one ensure-image in the shape `kpull pull`
// prints.

import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { defaultPullPolicy, type PullPolicy, type WaitingReason } from "../policy/index.ts";
import { formatReference, parseNormalizedNamed } from "../reference/index.ts";
import type { CredentialProvider, Platform, RegistryClientOptions } from "../registry/index.ts";
import { imageName, type PullProgress, type Store } from "../store/index.ts";
import { Backoff, type BackoffEntry } from "./backoff.ts";
import {
  ImageManager,
  type NodeEvent,
  type ObjectReference,
  objectName,
  type PullVerifier,
} from "./image-manager.ts";
import type { ImageService, PullReport } from "./image-service.ts";
import { makePuller, type PullerConfig } from "./puller.ts";
import { StoreImageService } from "./store-service.ts";
import { toPullCredentials } from "./verification/index.ts";

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
  readonly #options: NodeOptions;
  readonly #now: () => number;

  private constructor(options: NodeOptions, backoff: Backoff) {
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
    this.manager = new ImageManager({
      service: this.service,
      puller: makePuller(options.kubelet ?? {}, this.#now),
      backoff,
      now: this.#now,
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      verifier: options.verifier ?? null,
      ...(options.pullDeadlineMs !== undefined ? { pullDeadlineMs: options.pullDeadlineMs } : {}),
    });
  }

  static async open(options: NodeOptions): Promise<Node> {
    return new Node(options, await loadBackoff(backoffFile(options.store)));
  }

  /** Saves the back-off state (call after a batch of ensure-image calls). */
  async save(): Promise<void> {
    await saveBackoff(backoffFile(this.store), this.backoff.toJSON());
  }

  /** Records an event as the kubelet would, on `ref`. */
  event(ref: ObjectReference, type: "Normal" | "Warning", reason: string, message: string): void {
    this.#options.onEvent?.({ type, reason, message, object: objectName(ref), time: this.#now() });
  }

  /** Marks images as used by containers: a lease (held past this process when `keep`) and lastUsed. */
  async holdImages(purpose: string, images: readonly string[], keep: boolean): Promise<void> {
    const names = images.flatMap((i) => {
      try {
        return [imageName(i)];
      } catch {
        return [];
      }
    });
    const lease = await this.store.lease({ purpose, images: names, processBound: !keep });
    if (!keep) await lease.release();
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
    let previous: string | null = null;
    try {
      reference = formatReference(parseNormalizedNamed(image));
      previous = (await this.store.status(image))?.record.target.digest ?? null;
    } catch {
      reference = null;
    }
    const result = await this.manager.ensureImageExists({
      pod: { ...pod, fieldPath: pod.fieldPath ?? "spec.containers{kpull}" },
      image,
      policy,
      credentials: this.credentialsFor(image),
      ...(this.#options.signal ? { signal: this.#options.signal } : {}),
    });
    if (!result.ok) this.manager.recordContainerError(pod, result.reason);
    const report: PullReport = result.report ?? {};
    const digest =
      report.digest ??
      (reference === null ? null : ((await this.store.status(image))?.record.target.digest ?? null));
    let action: PullAction;
    if (!result.ok) action = "failed";
    else if (!result.pulled) action = "present";
    else if (previous === null) action = "pulled";
    else action = previous === digest ? "verified" : "updated";
    return {
      image,
      reference,
      digest,
      policy,
      action,
      code: result.ok ? null : result.reason,
      message: result.ok ? null : result.message,
      requests: { HEAD: 0, GET: 0, ...(report.requests ?? {}) },
      bytesFetched: report.bytesFetched ?? 0,
      layers: report.layers ?? { total: 0, fetched: 0, reused: 0 },
      fetched: report.fetched ?? { blobs: 0, bytes: 0 },
      reused: report.reused ?? { blobs: 0, bytes: 0 },
      durationMs: this.#now() - started,
    };
  }
}

function backoffFile(store: Store): string {
  return join(store.paths.kpull, "backoff.json");
}

async function loadBackoff(file: string): Promise<Backoff> {
  try {
    const entries = JSON.parse(await readFile(file, "utf8")) as Record<string, BackoffEntry>;
    if (entries === null || typeof entries !== "object" || Array.isArray(entries)) return new Backoff();
    const valid = Object.entries(entries).filter(
      ([, e]) =>
        e !== null && typeof e === "object" && Number.isFinite(e.backoffMs) && Number.isFinite(e.lastUpdate),
    );
    return new Backoff(undefined, undefined, Object.fromEntries(valid));
  } catch {
    // Missing or unreadable: back-off state is advisory, start afresh rather than fail a pull.
    return new Backoff();
  }
}

async function saveBackoff(file: string, entries: Record<string, BackoffEntry>): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(entries)}\n`);
  await rename(temp, file);
}
