import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import { openBackend, runtimeEndpointFrom, runtimeOptions, runtimeOptionsHelp } from "../runtime-options.ts";
import { runtimeRemove } from "./runtime-images.ts";
import {
  formatBytes,
  openExisting,
  plural,
  storeOptions,
  storeOptionsHelp,
  writeStructured,
} from "./store-options.ts";

export const rmiHelp = `Remove images from the node's store, then the content nothing else uses.

Examples:
  # Remove an image (every name of the same image ID goes, as CRI's RemoveImage does)
  kpull rmi registry.example.com/team/app:v1

  # By image ID or an unambiguous prefix of it, as "kpull images" shows it
  kpull rmi 3f1c0ffee4d2

  # Even if a running container's lease uses it
  kpull rmi --force nginx:1.27

  # From the node's containerd (RemoveImage by image ID, as the kubelet's GC does)
  kpull rmi --runtime-endpoint unix:///run/containerd/containerd.sock nginx:1.27

Usage:
  kpull rmi IMAGE... [--force] [-o text|json|yaml] [--root DIR] [--runtime-endpoint URL]

Flags:
      --force    remove images that an active lease (a running container) uses
  -o, --output   text (the default), json or yaml
  -h, --help     show this help

${storeOptionsHelp}
${runtimeOptionsHelp}
Layers shared with images that stay are kept. A pull in flight is never disturbed: its content is leased.
On a runtime the runtime deletes the content itself: "blobsRemoved" and "bytesFreed" are null.

Exit status: 0 all removed, 1 an IMAGE was not found or is in use, 2 bad usage.
`;

export async function rmiCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("rmi", argv, {
    ...outputOption,
    ...storeOptions,
    ...runtimeOptions,
    force: { type: "boolean" },
  });
  if (values.help) {
    io.stdout.write(rmiHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("rmi", values.output);
  if (positionals.length === 0) throw new UsageError("rmi", "at least one IMAGE is required");
  if (runtimeEndpointFrom(values, io) !== null) {
    const backend = await openBackend(values, io, { create: false });
    try {
      const runtime = backend.runtime as NonNullable<typeof backend.runtime>;
      const summary = await runtimeRemove(runtime, backend.store, positionals, values.force === true);
      return report(io, format, summary);
    } finally {
      backend.close();
    }
  }
  let store: Awaited<ReturnType<typeof openExisting>>;
  try {
    store = await openExisting(values, io);
  } catch (error) {
    if ((error as { code?: string }).code !== "NOT_FOUND") throw error;
    for (const q of positionals) io.stderr.write(`error: image "${q}" not found\n`);
    return ExitCode.findings;
  }
  const result = await store.remove(positionals, { force: values.force === true });
  const summary = {
    removed: result.removed.map((r) => ({ name: r.name, id: r.config.digest })),
    notFound: result.notFound,
    inUse: result.inUse,
    blobsRemoved: result.sweep?.blobsRemoved.length ?? 0,
    bytesFreed: result.sweep?.bytesFreed ?? 0,
  };
  return report(io, format, summary);
}

function report(
  io: CliIo,
  format: ReturnType<typeof outputFormat>,
  summary: {
    removed: readonly { name: string; id: string }[];
    notFound: readonly string[];
    inUse: readonly string[];
    blobsRemoved: number | null;
    bytesFreed: number | null;
  },
): number {
  if (format !== "text") writeStructured(io, format, summary);
  else {
    for (const r of summary.removed) io.stdout.write(`Deleted: ${r.name}\n`);
    if (summary.removed.length > 0 && summary.bytesFreed !== null) {
      io.stdout.write(
        `Freed ${formatBytes(summary.bytesFreed)} (${plural(summary.blobsRemoved ?? 0, "blob")})\n`,
      );
    }
  }
  for (const q of summary.notFound) io.stderr.write(`error: image "${q}" not found\n`);
  for (const q of summary.inUse) {
    io.stderr.write(
      `error: image "${q}" is in use by a running container (use --force to remove it anyway)\n`,
    );
  }
  return summary.notFound.length + summary.inUse.length > 0 ? ExitCode.findings : ExitCode.ok;
}
