import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
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

Usage:
  kpull rmi IMAGE... [--force] [-o text|json|yaml] [--root DIR]

Flags:
      --force    remove images that an active lease (a running container) uses
  -o, --output   text (the default), json or yaml
  -h, --help     show this help

${storeOptionsHelp}
Layers shared with images that stay are kept. A pull in flight is never disturbed: its content is leased.

Exit status: 0 all removed, 1 an IMAGE was not found or is in use, 2 bad usage.
`;

export async function rmiCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("rmi", argv, {
    ...outputOption,
    ...storeOptions,
    force: { type: "boolean" },
  });
  if (values.help) {
    io.stdout.write(rmiHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("rmi", values.output);
  if (positionals.length === 0) throw new UsageError("rmi", "at least one IMAGE is required");
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
  if (format !== "text") writeStructured(io, format, summary);
  else {
    for (const r of summary.removed) io.stdout.write(`Deleted: ${r.name}\n`);
    if (summary.removed.length > 0) {
      io.stdout.write(`Freed ${formatBytes(summary.bytesFreed)} (${plural(summary.blobsRemoved, "blob")})\n`);
    }
  }
  for (const q of result.notFound) io.stderr.write(`error: image "${q}" not found\n`);
  for (const q of result.inUse) {
    io.stderr.write(
      `error: image "${q}" is in use by a running container (use --force to remove it anyway)\n`,
    );
  }
  return result.notFound.length + result.inUse.length > 0 ? ExitCode.findings : ExitCode.ok;
}
