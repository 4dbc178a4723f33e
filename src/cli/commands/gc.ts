import { CredentialVerifier, garbageCollectRuntime } from "../../node/index.ts";
import { formatGoDuration } from "../../policy/index.ts";
import { type ImageGcReport, parseDuration, Store } from "../../store/index.ts";
import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import {
  openNodeBackend,
  runtimeEndpointFrom,
  runtimeOptions,
  runtimeOptionsHelp,
} from "../runtime-options.ts";
import {
  formatBytes,
  plural,
  rootFrom,
  shortDigest,
  storeOptions,
  storeOptionsHelp,
  writeStructured,
} from "./store-options.ts";

export const gcHelp = `Garbage-collect the node's store as the kubelet's image GC does, then sweep unreferenced content.

Examples:
  # What would go if the disk were under pressure? (nothing is removed)
  kpull gc --dry-run -o json

  # The kubelet's defaults: above 85 % disk usage, free down to 80 %, keep images younger than 2 minutes
  kpull gc

  # Also remove images unused for a week, whatever the disk usage
  kpull gc --max-age 168h

  # The node's containerd: ListImages, ImageFsInfo, RemoveImage, with the same rules
  kpull gc --dry-run --runtime-endpoint unix:///run/containerd/containerd.sock

Usage:
  kpull gc [--dry-run] [--high N] [--low N] [--min-age D] [--max-age D] [-o text|json|yaml] [--root DIR] [--runtime-endpoint URL]

Flags:
      --dry-run      report what would be removed; change nothing
      --high N       imageGCHighThresholdPercent: run the space pass at or above N % usage (default 85)
      --low N        imageGCLowThresholdPercent: free down to N % (default 80)
      --min-age D    imageMinimumGCAge: never remove images first stored less than D ago (default 2m)
      --max-age D    imageMaximumGCAge: remove images unused for longer than D (default 0s, off)
  -o, --output       text (the default), json or yaml
  -h, --help         show this help

${storeOptionsHelp}
${runtimeOptionsHelp}
Durations are Go's (90s, 2m, 1h30m). Usage is the kubelet's integer arithmetic on the filesystem holding the
root: 100 - floor(available * 100 / capacity). Images a running container's lease uses and pinned images
are never removed; never-used images go first, then the least recently used. The age pass starts once the
store is older than --max-age. Afterwards every blob no image, index.json entry or active lease references
is deleted, and partial downloads untouched for a day.
On a runtime: usage of the image filesystem ImageFsInfo names (statfs of its mountpoint), images from
ListImages, RemoveImage by image ID; in use are images that pods kpull started hold, pinned those that
kpull prepull pinned (or the runtime reports pinned); the runtime deletes content itself, so "content" and
"bytesFreed" are null.

Exit status: 0 done, 1 not enough could be freed (FreeDiskSpaceFailed) or the capacity is 0, 2 bad usage.
`;

function percent(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value))
    throw new UsageError("gc", `--${name} must be an integer percentage, got "${value}"`);
  return Number(value);
}

function duration(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  try {
    const ms = parseDuration(value);
    if (ms < 0) throw new Error("negative");
    return ms;
  } catch {
    throw new UsageError("gc", `--${name} must be a duration such as 2m or 1h30m, got "${value}"`);
  }
}

export async function gcCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("gc", argv, {
    ...outputOption,
    ...storeOptions,
    ...runtimeOptions,
    "dry-run": { type: "boolean" },
    high: { type: "string" },
    low: { type: "string" },
    "min-age": { type: "string" },
    "max-age": { type: "string" },
  });
  if (values.help) {
    io.stdout.write(gcHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("gc", values.output);
  if (positionals.length > 0) throw new UsageError("gc", `unexpected argument "${positionals[0]}"`);
  const policy = {
    highThresholdPercent: percent("high", values.high, 85),
    lowThresholdPercent: percent("low", values.low, 80),
    minAgeMs: duration("min-age", values["min-age"], 2 * 60_000),
    maxAgeMs: duration("max-age", values["max-age"], 0),
  };
  if (policy.highThresholdPercent > 100 || policy.lowThresholdPercent > 100) {
    throw new UsageError("gc", "--high and --low must be in range [0-100]");
  }
  if (policy.lowThresholdPercent > policy.highThresholdPercent) {
    throw new UsageError(
      "gc",
      `LowThresholdPercent ${policy.lowThresholdPercent} can not be higher than HighThresholdPercent ${policy.highThresholdPercent}`,
    );
  }
  let report: ImageGcReport;
  let prunedRecords: string[] = [];
  const started = Date.now();
  // The kubelet's post-GC hook (KEP-2535, kubelet.md §3.7): once the space pass has removed what it could
  // (enough or not, but not when a removal failed), the pull records of images that are gone and were not
  // updated since the GC started go too (image_gc_manager.go runs the hooks before the freed-enough check).
  const prune = async (root: string, imageIds: () => Promise<Iterable<string>>) => {
    if (report.dryRun || !report.spacePass) return;
    if (report.error !== null && report.error.code !== "FreeDiskSpaceFailed") return;
    prunedRecords = await CredentialVerifier.pruneAfterGc(root, await imageIds(), started, (m) =>
      io.stderr.write(`warning: ${m}\n`),
    );
  };
  if (runtimeEndpointFrom(values, io) !== null) {
    const backend = await openNodeBackend(values, io);
    try {
      const runtime = backend.runtime as NonNullable<typeof backend.runtime>;
      report = await garbageCollectRuntime(runtime, backend.store, {
        policy,
        dryRun: values["dry-run"] === true,
      });
      await prune(backend.store.root, async () => (await runtime.listImages()).map((i) => i.id));
    } finally {
      backend.close();
    }
  } else {
    const store = await Store.open(rootFrom(values, io), { create: false });
    report = await store.garbageCollect({ policy, dryRun: values["dry-run"] === true });
    await prune(store.root, async () => (await store.images()).map((r) => r.config.digest));
  }
  if (format !== "text")
    writeStructured(io, format, { ...toJson(report), pulledRecordsPruned: prunedRecords });
  else {
    io.stdout.write(renderGc(report));
    if (prunedRecords.length > 0) {
      io.stdout.write(
        `removed the pull records (KEP-2535) of ${plural(prunedRecords.length, "image")} gone\n`,
      );
    }
  }
  for (const e of report.events) io.stderr.write(`${e.type} ${e.reason}: ${e.message}\n`);
  return report.ok ? ExitCode.ok : ExitCode.findings;
}

/** The report with durations as Go prints them and the totals first. */
function toJson(r: ImageGcReport) {
  return {
    dryRun: r.dryRun,
    disabled: r.disabled,
    ok: r.ok,
    error: r.error,
    policy: {
      highThresholdPercent: r.policy.highThresholdPercent,
      lowThresholdPercent: r.policy.lowThresholdPercent,
      minAge: formatGoDuration(r.policy.minAgeMs),
      maxAge: formatGoDuration(r.policy.maxAgeMs),
    },
    disk: r.disk,
    agePass: r.agePass,
    spacePass: r.spacePass,
    amountToFree: r.amountToFree,
    removed: r.removed,
    skipped: r.skipped,
    freedBySpacePass: r.freedBySpacePass,
    bytesFreed: r.content?.bytesFreed ?? null,
    content: r.content,
    events: r.events,
  };
}

function renderGc(r: ImageGcReport): string {
  const lines: string[] = [];
  const verb = r.dryRun ? "would remove" : "removed";
  lines.push(
    `disk usage ${r.disk.usagePercent}% (high ${r.policy.highThresholdPercent}%, low ${r.policy.lowThresholdPercent}%)${r.spacePass ? `: freeing ${formatBytes(r.amountToFree)}` : ""}`,
  );
  if (r.disabled) lines.push("image GC is disabled (--high 100 and no --max-age); sweeping content only");
  for (const x of r.removed) {
    lines.push(`${verb} ${x.names.join(", ")} (${shortDigest(x.id)}, ${formatBytes(x.size)}, ${x.reason})`);
  }
  for (const x of r.skipped) lines.push(`kept    ${x.names.join(", ")} (${x.reason})`);
  if (r.content === null) {
    if (r.removed.length > 0) lines.push("the runtime deletes the content of removed images itself");
  } else {
    lines.push(
      `${r.dryRun ? "would free" : "freed"} ${formatBytes(r.content.bytesFreed)} in ${plural(r.content.blobsRemoved.length, "blob")}${r.content.ingestsRemoved.length > 0 ? `, ${r.content.ingestsRemoved.length} stale partial downloads` : ""}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
