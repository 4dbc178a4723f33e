// KEP-2535's pull manager on disk (kubelet.md §3; pkg/kubelet/images/pullmanager/image_pull_manager.go): the
// image manager's PullVerifier. Intents before pulls, pulled records after them, the check for present
// images, restart handling of intents left by a crash, and pruning after image GC.

import { parseImageName } from "../../policy/index.ts";
import type { PullCredential, PullVerifier } from "../image-manager.ts";
import type { ImageService } from "../image-service.ts";
import { type CheckResult, matchCredentials, precheck } from "./check.ts";
import { podCredentials, recordedCredentials } from "./credentials.ts";
import { PullRecordsStore } from "./fs-records.ts";
import { makeVerificationEnforcer, type VerificationEnforcer } from "./policy.ts";
import {
  formatRecordTime,
  type ImagePullCredentials,
  type ImagePulledRecord,
  mergePulledRecord,
  newPulledRecord,
  parseRecordTime,
} from "./records.ts";

export interface CredentialVerifierOptions {
  /** The kubelet root directory (kpull: the store root); records live in `<root>/image_manager/`. */
  readonly root: string;
  /** `imagePullCredentialsVerificationPolicy`; default `NeverVerifyPreloadedImages`. */
  readonly policy?: string;
  /** `preloadedImagesVerificationAllowlist`; validated whatever the policy. */
  readonly allowlist?: readonly string[];
  /** Clock in milliseconds, for `lastUpdatedTime`; default Date.now. */
  readonly now?: () => number;
  /** What the kubelet would log: unreadable records, failed writes. Never contains credentials. */
  readonly onWarning?: (message: string) => void;
  /** Every check's outcome, with its reason (for `explain`-style output and tests). */
  readonly onCheck?: (check: { image: string; imageRef: string; result: CheckResult }) => void;
}

export interface InitializeReport {
  /** Files rewritten from an older apiVersion. */
  readonly migrated: readonly string[];
  /** Temporary files a crash left behind, removed. */
  readonly removedTemporaries: readonly string[];
  /** Intents whose image the runtime has: now pulled records without credentials. */
  readonly converted: readonly { readonly image: string; readonly imageRef: string }[];
  /** Intents that match no image: left on disk, they keep marking the image string as kubelet-pulled. */
  readonly keptIntents: readonly string[];
  /** Record files that could not be read. */
  readonly unreadable: readonly string[];
}

/** Temporary files younger than this may belong to a writer in another process. */
const STALE_TEMPORARY_MS = 10 * 60 * 1000;

/** One async critical section per key. */
class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export class CredentialVerifier implements PullVerifier {
  readonly records: PullRecordsStore;
  readonly enforcer: VerificationEnforcer;
  readonly #now: () => number;
  readonly #warn: (message: string) => void;
  readonly #onCheck: CredentialVerifierOptions["onCheck"];
  /** In-flight pulls per image string in this process (the kubelet's intentCounters). */
  readonly #intentCounters = new Map<string, number>();
  readonly #intentLocks = new KeyedMutex();
  readonly #pulledLocks = new KeyedMutex();

  /** Validates the policy and the allowlist (throws VerificationConfigError with the kubelet's text); touches
   * no file. Call initialize() before use, or use open(). */
  constructor(options: CredentialVerifierOptions) {
    this.enforcer = makeVerificationEnforcer(options.policy, options.allowlist);
    this.records = new PullRecordsStore(options.root);
    this.#now = options.now ?? Date.now;
    this.#warn = options.onWarning ?? (() => {});
    this.#onCheck = options.onCheck;
  }

  /** A verifier whose records are initialized against the images the runtime has. */
  static async open(
    options: CredentialVerifierOptions & { readonly images?: Pick<ImageService, "listImages"> | null },
  ): Promise<CredentialVerifier> {
    const verifier = new CredentialVerifier(options);
    await verifier.initialize(options.images ?? null);
    return verifier;
  }

  /**
   * Start-up (kubelet.md §3.7): rewrite records of an older apiVersion, remove stale temporary files, and
   * turn every intent whose image string is one of an image's RepoTags or RepoDigests into a pulled record
   * for that image with no credentials (the next pod must prove access), deleting the intent.
   */
  async initialize(images: Pick<ImageService, "listImages"> | null): Promise<InitializeReport> {
    let migrated: string[] = [];
    let removedTemporaries: string[] = [];
    const unreadable: string[] = [];
    try {
      migrated = await this.records.migrate();
    } catch (error) {
      this.#warn(`failed to migrate image pull records: ${message(error)}`);
    }
    try {
      removedTemporaries = await this.records.removeStaleTemporaries(this.#now(), STALE_TEMPORARY_MS);
    } catch (error) {
      this.#warn(`failed to remove temporary image pull record files: ${message(error)}`);
    }
    for (const l of await this.records.listPulled()) {
      if (!l.ok) {
        unreadable.push(l.file);
        this.#warn(`unreadable ImagePulledRecord: ${l.error.message}`);
      }
    }
    const intents: string[] = [];
    for (const l of await this.records.listIntents()) {
      if (l.ok) intents.push(l.value.image);
      else {
        unreadable.push(l.file);
        this.#warn(`unreadable ImagePullIntent: ${l.error.message}`);
      }
    }
    const converted: { image: string; imageRef: string }[] = [];
    if (intents.length > 0 && images !== null) {
      let listed: Awaited<ReturnType<ImageService["listImages"]>> = [];
      try {
        listed = await images.listImages();
      } catch (error) {
        this.#warn(`failed to list images: ${message(error)}`);
      }
      const inFlight = new Set(intents);
      for (const image of listed) {
        const found = new Set([...image.repoDigests, ...image.repoTags].filter((s) => inFlight.has(s)));
        for (const s of found) {
          try {
            await this.#writePulledIfChanged(s, image.id, null);
          } catch (error) {
            this.#warn(`failed to write an image pulled record for ${image.id}: ${message(error)}`);
            continue;
          }
          try {
            await this.records.deleteIntent(s);
          } catch (error) {
            this.#warn(`failed to remove image pull intent file for ${JSON.stringify(s)}: ${message(error)}`);
          }
          converted.push({ image: s, imageRef: image.id });
        }
      }
    }
    const done = new Set(converted.map((c) => c.image));
    return {
      migrated,
      removedTemporaries,
      converted,
      keptIntents: intents.filter((i) => !done.has(i)),
      unreadable,
    };
  }

  async mustAttemptImagePull(
    image: string,
    imageRef: string,
    credentials: () => Promise<readonly PullCredential[]>,
  ): Promise<boolean> {
    return (await this.check(image, imageRef, credentials)).pull;
  }

  /** MustAttemptImagePull with its reason. The pod's credentials are looked up only when the record needs
   * them; a match may add the pod's secret to the record (§3.4 step 8). */
  async check(
    image: string,
    imageRef: string,
    credentials: () => Promise<readonly PullCredential[]>,
  ): Promise<CheckResult> {
    let record: ImagePulledRecord | null = null;
    let intent = false;
    let readError: string | null = null;
    if (imageRef !== "") {
      await this.#pulledLocks.run(imageRef, () =>
        this.#intentLocks.run(image, async () => {
          try {
            record = await this.records.readPulled(imageRef);
            if (record === null) {
              intent = (this.#intentCounters.get(image) ?? 0) > 0 || (await this.records.intentExists(image));
            }
          } catch (error) {
            readError = message(error);
            this.#warn(`unable to access cache records about image pulls: ${readError}`);
          }
        }),
      );
    }
    const pre = precheck({ image, imageRef, enforcer: this.enforcer, record, intent, readError });
    let result: CheckResult;
    if ("decided" in pre) result = pre.decided;
    else {
      result = matchCredentials(pre.key, pre.entry, podCredentials(await credentials()));
      if (result.update !== null) {
        try {
          await this.#writePulledIfChanged(image, imageRef, result.update.credentials);
        } catch (error) {
          this.#warn(`failed to write an image pulled record for ${imageRef}: ${message(error)}`);
        }
      }
    }
    this.#onCheck?.({ image, imageRef, result });
    return result;
  }

  /** Before a pull: the intent file, then the in-memory counter. Rejects when the file cannot be written. */
  async recordPullIntent(image: string): Promise<void> {
    await this.#intentLocks.run(image, async () => {
      try {
        await this.records.writeIntent(image);
      } catch (error) {
        throw new Error(`failed to record image pull intent: ${message(error)}`);
      }
      this.#intentCounters.set(image, (this.#intentCounters.get(image) ?? 0) + 1);
    });
  }

  /** After a successful pull: write or merge the record, then release the intent. If the record cannot be
   * written the intent is kept on purpose, so the image still counts as kubelet-pulled after a restart. */
  async recordImagePulled(image: string, imageRef: string, credential: PullCredential | null): Promise<void> {
    try {
      await this.#writePulledIfChanged(image, imageRef, recordedCredentials(credential));
    } catch (error) {
      this.#warn(`failed to write image pulled record for ${imageRef}: ${message(error)}`);
      return;
    }
    await this.#releaseIntent(image);
  }

  async recordImagePullFailed(image: string): Promise<void> {
    await this.#releaseIntent(image);
  }

  /**
   * After image GC (PruneUnknownRecords): deletes each pulled record whose ref is not among `imageRefs` (the
   * runtime's images) and whose `lastUpdatedTime` is before `until` (the GC's start). Returns the refs
   * whose records were deleted.
   */
  async pruneUnknownRecords(imageRefs: Iterable<string>, until: number): Promise<string[]> {
    const inUse = new Set(imageRefs);
    const deleted: string[] = [];
    for (const l of await this.records.listPulled()) {
      if (!l.ok) {
        this.#warn(`unreadable ImagePulledRecord, left in place: ${l.error.message}`);
        continue;
      }
      const ref = l.value.imageRef;
      if (inUse.has(ref)) continue;
      await this.#pulledLocks.run(ref, async () => {
        let current: ImagePulledRecord | null;
        try {
          current = await this.records.readPulled(ref);
        } catch {
          return;
        }
        if (current === null || !(parseRecordTime(current.lastUpdatedTime) < until)) return;
        try {
          await this.records.deletePulled(ref);
          deleted.push(ref);
        } catch (error) {
          this.#warn(`failed to remove an ImagePulledRecord for ${ref}: ${message(error)}`);
        }
      });
    }
    return deleted;
  }

  /**
   * The kubelet's post-GC hook (kubelet.md §3.7): once an image GC's space pass has run, the records of
   * images no longer among `imageRefs` and not updated since `gcStartedAt` go. A store that never recorded
   * a pull has nothing to prune.
   */
  static async pruneAfterGc(
    root: string,
    imageRefs: Iterable<string>,
    gcStartedAt: number,
    onWarning?: (message: string) => void,
  ): Promise<string[]> {
    return new CredentialVerifier({ root, ...(onWarning ? { onWarning } : {}) }).pruneUnknownRecords(
      imageRefs,
      gcStartedAt,
    );
  }

  /** Pulls of `image` in flight in this process. */
  inFlight(image: string): number {
    return this.#intentCounters.get(image) ?? 0;
  }

  async #releaseIntent(image: string): Promise<void> {
    await this.#intentLocks.run(image, async () => {
      const count = this.#intentCounters.get(image) ?? 0;
      if (count > 1) {
        this.#intentCounters.set(image, count - 1);
        return;
      }
      try {
        await this.records.deleteIntent(image);
      } catch (error) {
        this.#warn(`failed to remove image pull intent for ${JSON.stringify(image)}: ${message(error)}`);
        return;
      }
      this.#intentCounters.delete(image);
    });
  }

  /** writePulledRecordIfChanged: null credentials create a record without any (kubelet-pulled, credentials
   * unknown) and change nothing in an existing one. A record that cannot be read is replaced. */
  async #writePulledIfChanged(
    image: string,
    imageRef: string,
    credentials: ImagePullCredentials | null,
  ): Promise<void> {
    let key: string;
    try {
      key = parseImageName(image).repository;
    } catch (error) {
      throw new Error(`invalid image name ${JSON.stringify(image)}: ${message(error)}`);
    }
    await this.#pulledLocks.run(imageRef, async () => {
      let existing: ImagePulledRecord | null = null;
      try {
        existing = await this.records.readPulled(imageRef);
      } catch (error) {
        this.#warn(`failed to retrieve an ImagePulledRecord, replacing it: ${message(error)}`);
      }
      const now = formatRecordTime(this.#now());
      if (existing === null) {
        await this.records.writePulled(newPulledRecord(imageRef, key, credentials, now));
        return;
      }
      const merged = mergePulledRecord(existing, key, credentials, now);
      if (merged.changed) await this.records.writePulled(merged.record);
    });
  }
}
