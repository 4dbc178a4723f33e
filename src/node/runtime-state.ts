// kpull's own node state when the images live in a CRI runtime (containerd) rather than in kpull's store.
//
// The runtime holds the images; what the kubelet keeps for itself kpull keeps under its root, one directory
// per runtime endpoint so that two runtimes (or the store and a runtime) never share back-off, KEP-2535
// records or GC bookkeeping:
//
//   ROOT/cri/<16 hex of sha256(endpoint URL)>/          a store layout that holds no images, only state:
//     endpoint.json                                     {"endpoint":"unix:///run/containerd/containerd.sock"}
//     kpull/backoff.json                                the image back-off (as on the store)
//     kpull/leases/ID.json                              images in use by pods kpull started (as on the store)
//     kpull/runtime-images.json                         per image ID: firstDetected, lastUsed, pinned
//     kpull/gc.json                                     the last GC's outcome (ImageGCFailed)
//     image_manager/{pulling,pulled}/                   KEP-2535 intents and pulled records
//
// The kubelet keeps firstDetected/lastUsed in memory and learns "in use" from the runtime's containers;
// kpull is not a daemon and starts no containers, so it records them here: firstDetected when kpull first
// sees an image (a pull, a pod start, a GC run), lastUsed when a pod kpull starts uses it, and "in use" from
// the active leases of pods started with a held lease.

import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type LeaseRecord, Store } from "../store/core.ts";
import type { Image } from "./image-service.ts";

export const RUNTIME_STATE_DIR = "cri";

/** Where kpull keeps its node state for the runtime at `endpointUrl` (`unix:///…`) under `root`. */
export function runtimeStateRoot(root: string, endpointUrl: string): string {
  const key = createHash("sha256").update(endpointUrl).digest("hex").slice(0, 16);
  return join(root, RUNTIME_STATE_DIR, key);
}

/**
 * Opens (by default creates) the state directory for a runtime as a Store, which gives it the store's
 * metadata lock, leases and back-off file; it never holds images. With `create: false` a missing directory
 * is null (read-only commands create nothing).
 */
export async function openRuntimeState(
  root: string,
  endpointUrl: string,
  options: { create?: boolean; now?: () => number } = {},
): Promise<Store | null> {
  const dir = runtimeStateRoot(root, endpointUrl);
  try {
    const state = await Store.open(dir, {
      create: options.create !== false,
      ...(options.now ? { now: options.now } : {}),
    });
    if (options.create !== false) {
      const file = join(dir, "endpoint.json");
      try {
        await readFile(file);
      } catch {
        await writeAtomic(file, `${JSON.stringify({ endpoint: endpointUrl })}\n`);
      }
    }
    return state;
  } catch (error) {
    if (options.create === false && (error as { code?: string }).code === "NOT_FOUND") return null;
    throw error;
  }
}

export interface RuntimeImageRecord {
  /** When kpull first saw the image (ISO 8601). */
  readonly firstDetected: string;
  /** When a pod kpull started last used it; null: never. */
  readonly lastUsed: string | null;
  /** Pinned by `kpull prepull` (containerd 1.6 cannot pin through CRI): image GC keeps it. */
  readonly pinned: boolean;
}

export type RuntimeImageRecords = Record<string, RuntimeImageRecord>;

function recordsFile(state: Store): string {
  return join(state.paths.kpull, "runtime-images.json");
}

async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(join(file, ".."), { recursive: true });
  const temp = `${file}.${process.pid}.${Math.random().toString(16).slice(2, 10)}.tmp`;
  try {
    await writeFile(temp, text);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {}); // a full disk must not leave half a file behind
    throw error;
  }
}

/** The records, or {} when there are none (or the file is unreadable: bookkeeping is advisory). */
export async function readRuntimeImages(state: Store): Promise<RuntimeImageRecords> {
  try {
    const parsed = JSON.parse(await readFile(recordsFile(state), "utf8")) as {
      images?: RuntimeImageRecords;
    };
    const images = parsed?.images;
    if (images === null || typeof images !== "object" || Array.isArray(images)) return {};
    const out: RuntimeImageRecords = {};
    for (const [id, r] of Object.entries(images)) {
      if (r && typeof r.firstDetected === "string")
        out[id] = {
          firstDetected: r.firstDetected,
          lastUsed: typeof r.lastUsed === "string" ? r.lastUsed : null,
          pinned: r.pinned === true,
        };
    }
    return out;
  } catch {
    return {};
  }
}

/** Changes the records under the state's metadata lock (`change` returns false to skip the write). */
export async function updateRuntimeImages<T>(
  state: Store,
  change: (records: RuntimeImageRecords) => T | Promise<T>,
): Promise<T> {
  return state.withMetaLock(async () => {
    const records = await readRuntimeImages(state);
    const before = JSON.stringify(records);
    const result = await change(records);
    const after = JSON.stringify({ images: records });
    if (JSON.stringify(records) !== before) await writeAtomic(recordsFile(state), `${after}\n`);
    return result;
  });
}

/** Notes images as seen now (keeps an earlier firstDetected) and, with `used`, as used by a container now. */
export async function noteRuntimeImages(
  state: Store,
  ids: readonly string[],
  options: { used?: boolean; now?: number } = {},
): Promise<void> {
  if (ids.length === 0) return;
  const when = new Date(options.now ?? state.now()).toISOString();
  await updateRuntimeImages(state, (records) => {
    for (const id of ids) {
      const r = records[id];
      records[id] = {
        firstDetected: r?.firstDetected ?? when,
        lastUsed: options.used ? when : (r?.lastUsed ?? null),
        pinned: r?.pinned ?? false,
      };
    }
  });
}

/** Sets or clears kpull's pin on an image ID. */
export async function pinRuntimeImage(state: Store, id: string, pinned = true): Promise<void> {
  const when = new Date(state.now()).toISOString();
  await updateRuntimeImages(state, (records) => {
    const r = records[id];
    records[id] = { firstDetected: r?.firstDetected ?? when, lastUsed: r?.lastUsed ?? null, pinned };
  });
}

/** Whether an active lease (a pod kpull started and holds) names the image: by ID or by any of its names. */
export function runtimeImageInUse(image: Image, leases: readonly LeaseRecord[]): boolean {
  return leases.some(
    (l) =>
      l.images.includes(image.id) ||
      image.repoTags.some((t) => l.images.includes(t)) ||
      image.repoDigests.some((d) => l.images.includes(d)),
  );
}
