import { exportArchive, importArchive, Store } from "../../store/index.ts";
import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import { platformFrom } from "../registry-options.ts";
import {
  formatBytes,
  openExisting,
  rootFrom,
  storeOptions,
  storeOptionsHelp,
  writeStructured,
} from "./store-options.ts";

export const exportHelp = `Write images from the node's store into an OCI archive (a tar of an OCI image layout), to carry them to
air-gapped nodes. Every blob is verified as it is read; the file appears only when complete.

Examples:
  # Two images into one archive
  kpull export --file images.tar registry.example.com/team/app:v1 registry.k8s.io/pause:3.10

  # On the air-gapped node
  kpull import images.tar && kpull pull --policy Never registry.example.com/team/app:v1

Usage:
  kpull export IMAGE... --file FILE [-o text|json|yaml] [--root DIR]

Flags:
      --file     the archive to write (must not exist)
  -o, --output   text (the default), json or yaml
  -h, --help     show this help

${storeOptionsHelp}
The archive names each image in index.json (io.containerd.image.name, org.opencontainers.image.ref.name),
as containerd's exporter does; skopeo reads it as oci-archive:FILE:TAG.

Exit status: 0 written, 1 an image is missing or a blob is damaged, 2 bad usage.
`;

export const importHelp = `Import the images of an OCI archive into the node's store, verifying every blob, as a pull would.

Examples:
  kpull import images.tar
  kpull import --platform linux/arm64 -o json multi-arch.tar

Usage:
  kpull import FILE [--platform OS/ARCH[/VARIANT]] [-o text|json|yaml] [--root DIR]

Flags:
  -o, --output   text (the default), json or yaml
  -h, --help     show this help

${storeOptionsHelp}
Only oci-layout, index.json and blobs/sha256/<digest> members are accepted; images are recorded under the
name in io.containerd.image.name (or a full reference in org.opencontainers.image.ref.name).

Exit status: 0 imported, 1 the archive is damaged or holds no named image, 2 bad usage.
`;

export async function exportCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("export", argv, {
    ...outputOption,
    ...storeOptions,
    file: { type: "string" },
  });
  if (values.help) {
    io.stdout.write(exportHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("export", values.output);
  if (positionals.length === 0) throw new UsageError("export", "at least one IMAGE is required");
  if (values.file === undefined) throw new UsageError("export", "--file FILE is required");
  const store = await openExisting(values, io);
  const report = await exportArchive(store, positionals, values.file);
  if (format !== "text") writeStructured(io, format, { file: values.file, ...report });
  else {
    io.stdout.write(
      `wrote ${values.file}: ${report.images.length} image(s), ${report.blobs} blobs, ${formatBytes(report.bytes)}\n${report.images.map((i) => `  ${i.name}  ${i.digest}\n`).join("")}`,
    );
  }
  return ExitCode.ok;
}

export async function importCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("import", argv, {
    ...outputOption,
    ...storeOptions,
    platform: { type: "string" },
  });
  if (values.help) {
    io.stdout.write(importHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("import", values.output);
  if (positionals.length !== 1) throw new UsageError("import", "exactly one FILE is required");
  const platform = platformFrom("import", values.platform);
  const store = await Store.open(rootFrom(values, io));
  const report = await importArchive(store, positionals[0] as string, platform ? { platform } : {});
  const images = report.images.map((r) => ({
    name: r.name,
    digest: r.target.digest,
    id: r.id,
    imported: r.fetched,
    alreadyPresent: r.reused,
  }));
  if (format !== "text") writeStructured(io, format, { images });
  else
    for (const i of images)
      io.stdout.write(
        `imported ${i.name}  ${i.digest} (${i.imported.blobs} new blobs, ${i.alreadyPresent.blobs} already present)\n`,
      );
  return ExitCode.ok;
}
