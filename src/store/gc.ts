// Garbage collection. Two layers, as on a node:
//  - image GC (the kubelet's): which images to remove, by disk usage, age and last use (gc-plan.ts), executed
//    on the records;
//  - content sweep (containerd's mark and sweep): roots are the image records, every index.json entry and the
//    active leases; everything in blobs/ they do not reach is deleted. Partial ingests nobody works on are
//    kept for resuming until they are older than `ingestMaxAgeMs`.
// Both run under the store-wide metadata lock, so a pull's lease (written under the same lock before it
// checks for a blob) is always seen.

import { promises as fs } from "node:fs";
import { join } from "node:path";
import { isIndexType, isManifestType } from "../registry/index.ts";
import { crashPoint } from "./crash.ts";
import { StoreError } from "./errors.ts";
import { readJsonFile, writeFileAtomic } from "./fsutil.ts";
import {
  DEFAULT_GC_POLICY,
  type DiskUsage,
  diskPressure,
  type GcImage,
  type GcPlan,
  type GcPolicy,
  type GcSkipReason,
  planImageGc,
} from "./gc-plan.ts";
import { blobLockPath } from "./layout.ts";
import { deleteLease, type LeaseRecord, leaseActive, leaseUsesImage, listLeases } from "./leases.ts";
import { processAlive, tryAcquireLock } from "./lock.ts";
import {
  type ImageRecord,
  imageId,
  type OciIndex,
  readIndex,
  readRecords,
  recordDigests,
  writeRecords,
} from "./records.ts";
import { liveChainIds, sweepSnapshots } from "./snapshots.ts";
import type { Store } from "./store.ts";

export interface SweepOptions {
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal | undefined;
  /** Partial ingests untouched for longer than this, with no live writer, are removed (default 24 h). */
  readonly ingestMaxAgeMs?: number;
  /** Image IDs to treat as already removed (a dry run of image GC). */
  readonly excludeImageIds?: ReadonlySet<string>;
}

export interface SweepReport {
  readonly dryRun: boolean;
  readonly blobsRemoved: readonly { readonly digest: string; readonly size: number }[];
  /** Bytes of the removed blobs (for a dry run: that would be freed). */
  readonly bytesFreed: number;
  readonly ingestsRemoved: readonly { readonly digest: string; readonly size: number }[];
  readonly leasesRemoved: readonly string[];
  readonly tempFilesRemoved: readonly string[];
  /** Blobs kept because something references them. */
  readonly blobsKept: number;
  /** Config digests of the images that remain. */
  readonly liveImageIds: readonly string[];
  /** Snapshots (ChainIDs) removed because no remaining image or active lease needs them. */
  readonly snapshotsRemoved: readonly string[];
}

export const DEFAULT_INGEST_MAX_AGE_MS = 24 * 60 * 60_000;

/** Digests reachable from the roots: records, index.json entries (walked through stored manifests and
 * indexes), active leases' content. */
export async function markLive(
  store: Store,
  roots: {
    records: Iterable<ImageRecord>;
    index: OciIndex | null;
    leases: readonly LeaseRecord[];
  },
): Promise<Set<string>> {
  const live = new Set<string>();
  for (const record of roots.records) for (const d of recordDigests(record)) live.add(d.digest);
  for (const lease of roots.leases) for (const digest of lease.content) live.add(digest);
  const walk = async (mediaType: string, digest: string, depth: number): Promise<void> => {
    if (live.has(digest) && depth > 0) return;
    live.add(digest);
    if (depth > 8 || !(isIndexType(mediaType) || isManifestType(mediaType))) return;
    let doc: { manifests?: unknown; config?: unknown; layers?: unknown };
    try {
      doc = JSON.parse((await store.content.read(digest)).toString("utf8"));
    } catch {
      return; // absent or corrupt: nothing more to reach through it (verify reports it)
    }
    const children = [
      ...(Array.isArray(doc.manifests) ? doc.manifests : []),
      ...(doc.config !== undefined ? [doc.config] : []),
      ...(Array.isArray(doc.layers) ? doc.layers : []),
    ] as { mediaType?: unknown; digest?: unknown }[];
    for (const c of children) {
      if (c && typeof c.digest === "string") {
        await walk(typeof c.mediaType === "string" ? c.mediaType : "", c.digest, depth + 1);
      }
    }
  };
  for (const entry of roots.index?.manifests ?? []) {
    if (typeof entry?.digest === "string") await walk(entry.mediaType ?? "", entry.digest, 0);
  }
  return live;
}

export async function sweep(store: Store, options: SweepOptions = {}): Promise<SweepReport> {
  const dryRun = options.dryRun ?? false;
  const now = store.now();
  return store.withMetaLock(
    async () => {
      // Unreadable roots stop the sweep: deleting by an unknown root set could delete everything.
      const records = await readRecords(store.paths);
      const index = await readIndex(store.paths);
      const { leases, damaged } = await listLeases(store.paths);
      const active = leases.filter((l) => leaseActive(l, now));
      const excluded = options.excludeImageIds ?? new Set<string>();
      const kept = [...records.values()].filter((r) => !excluded.has(imageId(r)));
      const keptNames = new Set(kept.map((r) => r.name));
      const live = await markLive(store, {
        records: kept,
        index: {
          ...index,
          manifests: index.manifests.filter((d) => {
            const name = d.annotations?.["io.containerd.image.name"];
            return name === undefined || keptNames.has(name) || !records.has(name);
          }),
        },
        leases: active,
      });

      const blobsRemoved: { digest: string; size: number }[] = [];
      let blobsKept = 0;
      for (const blob of await store.content.list()) {
        if (options.signal?.aborted) throw new StoreError("ABORTED", "sweep aborted");
        if (blob.digest === null || !blob.isFile) continue; // not ours to judge; verify reports it
        if (live.has(blob.digest)) {
          blobsKept++;
          continue;
        }
        if (!dryRun) {
          const freed = await store.content.delete(blob.digest);
          blobsRemoved.push({ digest: blob.digest, size: freed });
          crashPoint("gc-sweep");
        } else {
          blobsRemoved.push({ digest: blob.digest, size: blob.size });
        }
      }

      crashPoint("gc-blobs-swept");
      const ingestsRemoved: { digest: string; size: number }[] = [];
      const maxAge = options.ingestMaxAgeMs ?? DEFAULT_INGEST_MAX_AGE_MS;
      for (const ingest of await store.content.ingests()) {
        if (ingest.active) continue;
        const committed = (await store.content.size(ingest.digest)) !== null;
        if (!committed && now - ingest.mtimeMs <= maxAge) continue;
        // Take the blob's lock without waiting (never wait on a blob lock under the metadata lock).
        const lock = await tryAcquireLock(blobLockPath(store.paths, ingest.digest), { purpose: "gc" });
        if (lock === null) continue;
        try {
          if (!dryRun) await fs.rm(ingest.path, { force: true });
          crashPoint("gc-ingest-removed");
          ingestsRemoved.push({ digest: ingest.digest, size: ingest.size });
        } finally {
          await lock.release();
        }
      }

      const leasesRemoved: string[] = [];
      for (const lease of leases) {
        if (active.includes(lease)) continue;
        if (!dryRun) await deleteLease(store.paths, lease.id);
        leasesRemoved.push(lease.id);
      }
      for (const id of damaged) {
        if (!dryRun) await deleteLease(store.paths, id);
        leasesRemoved.push(id);
      }

      const liveSnapshots = await liveChainIds(
        store,
        kept,
        active.flatMap((l) => l.snapshots ?? []),
      );
      const snapshots = await sweepSnapshots(store, liveSnapshots, dryRun);

      const tempFilesRemoved = [
        ...(dryRun ? [] : await removeDeadTempFiles(store, now)),
        ...snapshots.temps.map((t) => join(store.paths.snapshots, t)),
      ];
      if (!dryRun) await removeDeadLocks(store);

      return {
        dryRun,
        blobsRemoved,
        bytesFreed: blobsRemoved.reduce((n, b) => n + b.size, 0),
        ingestsRemoved,
        leasesRemoved,
        tempFilesRemoved,
        blobsKept,
        liveImageIds: [...new Set(kept.map(imageId))].sort(),
        snapshotsRemoved: snapshots.removed,
      };
    },
    { signal: options.signal, purpose: "gc sweep" },
  );
}

/** `.tmp-NAME-PID-RAND` files left by writers that died (fsutil.tempPathFor), or older than an hour. */
async function removeDeadTempFiles(store: Store, now: number): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of [store.root, store.paths.kpull, store.paths.leases, store.paths.ingest]) {
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^\.tmp-.*-(\d+)-[0-9a-f]{8}$/.exec(name);
      if (m === null) continue;
      const path = join(dir, name);
      const st = await fs.stat(path).catch(() => null);
      if (st === null) continue;
      const alive = processAlive({ pid: Number(m[1]), host: undefined });
      if (alive === false || now - st.mtimeMs > 60 * 60_000) {
        await fs.rm(path, { force: true });
        removed.push(path);
      }
    }
  }
  return removed;
}

/** Lock files whose holders are gone (tryAcquire breaks a stale lock; releasing removes it). */
async function removeDeadLocks(store: Store): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(store.paths.locks);
  } catch {
    return;
  }
  for (const name of names) {
    if (!/^blob-sha256-[a-f0-9]{64}\.lock$/.test(name)) continue;
    const lock = await tryAcquireLock(join(store.paths.locks, name), { purpose: "gc" });
    await lock?.release();
  }
}

// ---- image GC ------------------------------------------------------------------------------------------

export interface GcOptions {
  readonly policy?: Partial<GcPolicy>;
  readonly dryRun?: boolean;
  readonly signal?: AbortSignal | undefined;
  /** freeTime (default: the store's clock). */
  readonly now?: number;
  /** The GC clock's start for the age pass (default: when the store was created). */
  readonly startedAt?: number;
  /** Filesystem numbers (default: statfs of the root). */
  readonly disk?: DiskUsage | (() => Promise<DiskUsage>);
  readonly ingestMaxAgeMs?: number;
}

export interface GcEvent {
  readonly type: "Warning" | "Normal";
  readonly reason: "FreeDiskSpaceFailed" | "ImageGCFailed" | "InvalidDiskCapacity";
  readonly message: string;
}

/**
 * What an image GC reports whatever the backend, but for what each adds (the store its content sweep, a
 * runtime its disk details): the plan's passes and images, described by `describe`; the kubelet's events
 * (a second failing run in a row adds ImageGCFailed); the usage figure (computed even when image GC is
 * disabled). `failure` is the plan's unless the caller met one of its own while removing.
 */
export function imageGcReport(
  plan: GcPlan,
  run: {
    readonly disk: DiskUsage;
    readonly policy: GcPolicy;
    readonly dryRun: boolean;
    readonly previousFailed: boolean;
    readonly describe: (id: string) => GcImageReport;
    readonly failure?: ImageGcReport["error"];
  },
): Omit<ImageGcReport, "content"> {
  const { disk, policy, describe } = run;
  const failure = run.failure === undefined ? plan.failure : run.failure;
  const events: GcEvent[] = [];
  if (plan.failure !== null) {
    events.push({ type: "Warning", reason: plan.failure.code, message: plan.failure.message });
    if (run.previousFailed)
      events.push({ type: "Warning", reason: "ImageGCFailed", message: plan.failure.message });
  }
  let usagePercent = plan.usagePercent;
  if (plan.disabled) {
    try {
      usagePercent = diskPressure(disk, policy).usagePercent;
    } catch {
      usagePercent = 0; // capacity 0: nothing to report, and image GC is off anyway
    }
  }
  const capacity = Math.trunc(disk.capacity);
  return {
    dryRun: run.dryRun,
    disabled: plan.disabled,
    policy,
    disk: { capacity, available: Math.min(Math.trunc(disk.available), capacity), usagePercent },
    agePass: plan.agePass,
    spacePass: plan.spacePass,
    amountToFree: plan.amountToFree,
    removed: plan.remove.map((r) => ({ ...describe(r.id), reason: r.reason })),
    skipped: plan.skipped.map((x) => ({ ...describe(x.id), reason: x.reason })),
    freedBySpacePass: plan.freedBySpacePass,
    events,
    ok: failure === null,
    error: failure,
  };
}

/** Whether the previous image GC on this root failed (`gc.json`): a second failure adds ImageGCFailed. */
export async function previousGcFailed(store: Store): Promise<boolean> {
  const state = await readJsonFile<GcState | null>(store.paths.gcJson, null).catch(() => null);
  return state?.failed === true;
}

/** Records this image GC's outcome in `gc.json`, durably. */
export async function recordGcRun(store: Store, now: number, failed: boolean): Promise<void> {
  const next: GcState = { lastRun: new Date(now).toISOString(), failed };
  await writeFileAtomic(store.paths.gcJson, `${JSON.stringify(next)}\n`);
}

export interface GcImageReport {
  readonly id: string;
  readonly names: readonly string[];
  readonly size: number;
}

/** What an image GC reports, on the store (GcReport) or on a runtime (node's RuntimeGcReport). */
export interface ImageGcReport {
  readonly dryRun: boolean;
  /** Image GC did not run: high = 100 and maxAge = 0, as the kubelet (the sweep still runs). */
  readonly disabled: boolean;
  readonly policy: GcPolicy;
  readonly disk: DiskUsage & { readonly usagePercent: number };
  readonly agePass: boolean;
  readonly spacePass: boolean;
  readonly amountToFree: number;
  /** Images removed (or, in a dry run, that would be), in the order the kubelet removes them. */
  readonly removed: readonly (GcImageReport & { readonly reason: "age" | "space" })[];
  readonly skipped: readonly (GcImageReport & { readonly reason: GcSkipReason })[];
  /** Image sizes the space pass removed (the kubelet's measure against amountToFree). */
  readonly freedBySpacePass: number;
  /** The content sweep after it; null on a runtime, which removes content itself. */
  readonly content: SweepReport | null;
  readonly events: readonly GcEvent[];
  /** False when the space pass could not free enough, or capacity was 0. */
  readonly ok: boolean;
  readonly error: { readonly code: string; readonly message: string } | null;
}

export interface GcReport extends ImageGcReport {
  readonly content: SweepReport;
}

interface GcState {
  lastRun: string;
  failed: boolean;
}

export async function statfsUsage(path: string): Promise<DiskUsage> {
  const st = await fs.statfs(path);
  return { capacity: st.blocks * st.bsize, available: st.bavail * st.bsize };
}

export async function garbageCollect(store: Store, options: GcOptions = {}): Promise<GcReport> {
  const dryRun = options.dryRun ?? false;
  const policy: GcPolicy = { ...DEFAULT_GC_POLICY, ...options.policy };
  const now = options.now ?? store.now();
  const startedAt = options.startedAt ?? (await store.createdAt());
  let plan!: GcPlan;
  let groups!: Map<string, ImageRecord[]>;
  let disk!: DiskUsage;
  let previousFailed = false;
  await store.withMetaLock(
    async () => {
      const records = await readRecords(store.paths);
      const active = (await listLeases(store.paths)).leases.filter((l) => leaseActive(l, now));
      groups = new Map();
      for (const r of records.values()) groups.set(imageId(r), [...(groups.get(imageId(r)) ?? []), r]);
      const images: GcImage[] = [];
      let touched = false;
      for (const [id, group] of groups) {
        const inUse = group.some((r) => active.some((l) => leaseUsesImage(l, r)));
        if (inUse && !dryRun) {
          // The kubelet's detectImages: an image in use is "used now".
          for (const r of group) records.set(r.name, { ...r, lastUsed: new Date(now).toISOString() });
          touched = true;
        }
        const lastUsed = inUse
          ? now
          : Math.max(0, ...group.map((r) => (r.lastUsed ? Date.parse(r.lastUsed) : 0)));
        images.push({
          id,
          size: Math.max(...group.map((r) => r.size)),
          lastUsed,
          firstDetected: Math.min(...group.map((r) => Date.parse(r.pulledAt))),
          inUse,
          pinned: group.some((r) => r.pinned),
        });
      }
      disk =
        typeof options.disk === "function"
          ? await options.disk()
          : (options.disk ?? (await statfsUsage(store.root)));
      plan = planImageGc({ images, policy, now, startedAt, disk });
      if (!dryRun) {
        const doomed = new Set(plan.remove.map((r) => r.id));
        for (const [name, r] of records) if (doomed.has(imageId(r))) records.delete(name);
        crashPoint("gc-before-records");
        if (doomed.size > 0 || touched) await writeRecords(store.paths, records);
        crashPoint("gc-after-records");
        previousFailed = await previousGcFailed(store);
        await recordGcRun(store, now, plan.failure !== null);
      }
    },
    { signal: options.signal, purpose: "image gc" },
  );

  const excluded = new Set(plan.remove.map((r) => r.id));
  crashPoint("gc-before-sweep");
  const content = await sweep(store, {
    dryRun,
    signal: options.signal,
    ...(options.ingestMaxAgeMs !== undefined ? { ingestMaxAgeMs: options.ingestMaxAgeMs } : {}),
    ...(dryRun ? { excludeImageIds: excluded } : {}),
  });

  const describe = (id: string): GcImageReport => {
    const group = groups.get(id) ?? [];
    return { id, names: group.map((r) => r.name), size: Math.max(0, ...group.map((r) => r.size)) };
  };
  return { ...imageGcReport(plan, { disk, policy, dryRun, previousFailed, describe }), content };
}
