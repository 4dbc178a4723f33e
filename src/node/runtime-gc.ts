// The kubelet's image GC against any ImageService (kubelet.md §4, A.6), for a CRI runtime such as
// containerd: images from ListImages, usage of the image filesystem from ImageFsInfo (with statfs of its
// mountpoint for capacity and free space, as the kubelet gets them from cAdvisor), removal with
// RemoveImage by image ID. The decision is the store's planImageGc (same thresholds, order and passes);
// "in use" are the images that active leases of pods kpull started name, lastUsed/firstDetected and kpull's
// pins come from the runtime state (runtime-state.ts). Content is the runtime's business: containerd
// deletes blobs and snapshots itself once the last name of an image is gone, so there is no sweep here.

import {
  DEFAULT_GC_POLICY,
  type DiskUsage,
  type GcImage,
  type GcImageReport,
  type GcPlan,
  type GcPolicy,
  type ImageGcReport,
  imageGcReport,
  planImageGc,
  previousGcFailed,
  recordGcRun,
  type Store,
} from "../store/index.ts";
import { imageNames } from "./image-names.ts";
import type { FilesystemUsage, Image, ImageService } from "./image-service.ts";
import { runtimeImageInUse, updateRuntimeImages } from "./runtime-state.ts";

export interface RuntimeGcOptions {
  readonly policy?: Partial<GcPolicy>;
  readonly dryRun?: boolean;
  /** freeTime (default: the state's clock). */
  readonly now?: number;
  /** The GC clock's start for the age pass (default: when kpull first used this runtime). */
  readonly startedAt?: number;
  /** Filesystem numbers (default: capacity and free space of the first image filesystem's mountpoint). */
  readonly disk?: DiskUsage;
}

/** The store's GC report (src/store ImageGcReport) without a content sweep, and the runtime's disk. */
export interface RuntimeGcReport extends ImageGcReport {
  readonly disk: ImageGcReport["disk"] & {
    /** The image filesystem ImageFsInfo reports, and the bytes images use on it by the runtime's count. */
    readonly mountpoint: string | null;
    readonly usedBytes: number | null;
  };
  /** Always null: the runtime removes content itself, after RemoveImage, and does not say how much. */
  readonly content: null;
}

export class RuntimeGcError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "RuntimeGcError";
    this.code = code;
  }
}

function diskOf(fs: FilesystemUsage | undefined): DiskUsage {
  if (fs === undefined)
    throw new RuntimeGcError(
      "ImageFsUnknown",
      "the runtime reports no image filesystem (ImageFsInfo is empty)",
    );
  if (fs.capacityBytes === undefined || fs.availableBytes === undefined)
    throw new RuntimeGcError(
      "ImageFsUnknown",
      `cannot read capacity and free space of the image filesystem ${JSON.stringify(fs.mountpoint)}: run kpull where the runtime's filesystem is visible (as the kubelet does)`,
    );
  return { capacity: fs.capacityBytes, available: fs.availableBytes };
}

/** One GC run: plan with the kubelet's rules, then (unless a dry run) RemoveImage by ID in plan order. */
export async function garbageCollectRuntime(
  service: ImageService,
  state: Store,
  options: RuntimeGcOptions = {},
): Promise<RuntimeGcReport> {
  const dryRun = options.dryRun ?? false;
  const policy: GcPolicy = { ...DEFAULT_GC_POLICY, ...options.policy };
  const now = options.now ?? state.now();
  const startedAt = options.startedAt ?? (await state.createdAt());
  const listed = await service.listImages();
  const fs = (await service.imageFsInfo())[0];
  const disk = options.disk ?? diskOf(fs);
  // ListImages comes in the runtime's map order; sorted by ID, reports are the same from run to run.
  const byId = new Map<string, Image>(
    [...listed].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((i) => [i.id, i]),
  );

  const { plan, previousFailed } = await updateRuntimeImages(state, async (records) => {
    const leases = await state.activeLeases();
    const images: GcImage[] = [];
    const when = new Date(now).toISOString();
    for (const image of byId.values()) {
      const r = records[image.id];
      const inUse = runtimeImageInUse(image, leases);
      const firstDetected = r ? Date.parse(r.firstDetected) : now;
      const lastUsed = inUse ? now : r?.lastUsed ? Date.parse(r.lastUsed) : 0;
      images.push({
        id: image.id,
        size: image.size,
        lastUsed,
        firstDetected,
        inUse,
        pinned: image.pinned || r?.pinned === true,
      });
      // The kubelet's detectImages: first sight and "used now" are remembered (not on a dry run).
      if (!dryRun) {
        records[image.id] = {
          firstDetected: r?.firstDetected ?? when,
          lastUsed: inUse ? when : (r?.lastUsed ?? null),
          pinned: r?.pinned ?? false,
        };
      }
    }
    const plan = planImageGc({ images, policy, now, startedAt, disk });
    let previousFailed = false;
    if (!dryRun) {
      // Records of images the runtime no longer has, and of those about to go, are dropped.
      const doomed = new Set(plan.remove.map((r) => r.id));
      for (const id of Object.keys(records)) if (!byId.has(id) || doomed.has(id)) delete records[id];
      previousFailed = await previousGcFailed(state);
    }
    return { plan, previousFailed };
  });

  const errors: string[] = [];
  if (!dryRun) {
    for (const r of plan.remove) {
      try {
        await service.removeImage({ image: r.id });
      } catch (error) {
        // The kubelet remembers the error and goes on with the next image.
        errors.push(`failed to remove image ${r.id}: ${(error as Error).message}`);
      }
    }
  }
  const failure: GcPlan["failure"] | { code: "RemoveImageFailed"; message: string } =
    plan.failure ?? (errors.length > 0 ? { code: "RemoveImageFailed", message: errors.join("; ") } : null);
  if (!dryRun) {
    await recordGcRun(state, now, failure !== null);
  }

  const describe = (id: string): GcImageReport => {
    const image = byId.get(id);
    const names = image ? imageNames(image).map((n) => n.name) : [];
    return { id, names: names.length > 0 ? names : [id], size: image?.size ?? 0 };
  };
  const report = imageGcReport(plan, { disk, policy, dryRun, previousFailed, describe, failure });
  return {
    ...report,
    disk: { ...report.disk, mountpoint: fs?.mountpoint ?? null, usedBytes: fs?.usedBytes ?? null },
    content: null,
  };
}
