import { parseNormalizedNamed } from "../../reference/index.ts";
import { requestCounts } from "../../registry/index.ts";
import { copyFromDirectory, copyToDirectory, OciDirectory } from "../../store/index.ts";
import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import {
  platformFrom,
  registryClientFrom,
  registryOptions,
  registryOptionsHelp,
} from "../registry-options.ts";
import { formatBytes, writeStructured } from "./store-options.ts";

export const copyHelp = `Copy an image between a registry and an OCI image layout directory, in either direction, verifying
every byte: the way to carry images to air-gapped nodes and mirrors.

Examples:
  # Registry to a directory (every platform of a multi-platform image)
  kpull copy docker://registry.example.com/team/app:v1 oci:/media/usb/images:app-v1

  # One platform only
  kpull copy --platform linux/arm64 docker://nginx:1.27 oci:./nginx:1.27

  # Directory to a mirror registry
  kpull copy oci:/media/usb/images:app-v1 docker://mirror.internal:5000/team/app:v1

Usage:
  kpull copy SRC DST [--platform OS/ARCH[/VARIANT]] [-o text|json|yaml] [registry flags]

SRC and DST are docker://IMAGE (a registry) or oci:DIR[:TAG] (an OCI image layout; TAG is the
org.opencontainers.image.ref.name annotation in its index.json). One side must be each.

Flags:
  -o, --output   text (the default), json or yaml
  -h, --help     show this help

${registryOptionsHelp}
Without --platform a multi-platform image is copied whole (index and every platform); with it, only that
platform's manifest. Blobs already at the destination are not copied again.

Exit status: 0 copied, 1 the registry or the layout failed (nothing unverified is kept), 2 bad usage.
`;

type Endpoint = { kind: "docker"; image: string } | { kind: "oci"; dir: string; tag: string | null };

export function parseEndpoint(text: string): Endpoint {
  if (text.startsWith("docker://")) return { kind: "docker", image: text.slice("docker://".length) };
  if (text.startsWith("oci:")) {
    const rest = text.slice(4);
    // The tag follows the last ':' unless that ':' is part of the path (a Windows drive never occurs here).
    const colon = rest.lastIndexOf(":");
    const slash = rest.lastIndexOf("/");
    if (colon > 0 && colon > slash)
      return { kind: "oci", dir: rest.slice(0, colon), tag: rest.slice(colon + 1) || null };
    return { kind: "oci", dir: rest, tag: null };
  }
  throw new UsageError(
    "copy",
    `unknown transport in ${JSON.stringify(text)}: use docker://IMAGE or oci:DIR[:TAG]`,
  );
}

export async function copyCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("copy", argv, { ...outputOption, ...registryOptions });
  if (values.help) {
    io.stdout.write(copyHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("copy", values.output);
  if (positionals.length !== 2) throw new UsageError("copy", "SRC and DST are required");
  const src = parseEndpoint(positionals[0] as string);
  const dst = parseEndpoint(positionals[1] as string);
  if (src.kind === dst.kind)
    throw new UsageError("copy", "one of SRC and DST must be docker:// and the other oci:");
  const platform = platformFrom("copy", values.platform);
  const client = registryClientFrom("copy", values, io);
  try {
    const options = platform ? { platform } : {};
    const report =
      src.kind === "docker" && dst.kind === "oci"
        ? await copyToDirectory(
            client.repository(parseNormalizedNamed(src.image)),
            await OciDirectory.open(dst.dir, true),
            dst.tag,
            options,
          )
        : src.kind === "oci" && dst.kind === "docker"
          ? await copyFromDirectory(
              await OciDirectory.open(src.dir, false),
              src.tag,
              client.repository(parseNormalizedNamed(dst.image)),
              options,
            )
          : null;
    if (report === null) throw new UsageError("copy", "unsupported direction");
    const result = {
      source: positionals[0],
      destination: positionals[1],
      digest: report.descriptor.digest,
      mediaType: report.descriptor.mediaType,
      blobs: report.blobs,
      requests: requestCounts(client.stats),
    };
    if (format !== "text") writeStructured(io, format, result);
    else {
      io.stdout.write(
        `copied ${result.source} to ${result.destination}\n  digest: ${result.digest}\n  blobs:  ${report.blobs.copied} copied (${formatBytes(report.blobs.bytes)}), ${report.blobs.skipped} already there\n`,
      );
    }
    return ExitCode.ok;
  } finally {
    await client.close();
  }
}
