import { parseNormalizedNamed } from "../../reference/index.ts";
import { outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import {
  platformFrom,
  registryClientFrom,
  registryOptions,
  registryOptionsHelp,
} from "../registry-options.ts";

export const manifestHelp = `Print an image's manifest (or index) exactly as the registry serves it, after verifying its digest.

Examples:
  # The index or manifest the tag points to
  kpull manifest registry.example.com/team/app:v1

  # The manifest for one platform of a multi-platform image
  kpull manifest --platform linux/arm64 nginx:1.27 | jq .layers

Usage:
  kpull manifest IMAGE [--platform OS/ARCH[/VARIANT]] [registry flags]

Flags:
  -h, --help     show this help

${registryOptionsHelp}
Exit status: 0 printed, 1 the registry refused or failed, 2 bad usage.
`;

export async function manifestCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("manifest", argv, {
    help: outputOption.help,
    ...registryOptions,
  });
  if (values.help) {
    io.stdout.write(manifestHelp);
    return ExitCode.ok;
  }
  if (positionals.length !== 1) throw new UsageError("manifest", "exactly one IMAGE is required");
  const platform = platformFrom("manifest", values.platform);
  const client = registryClientFrom("manifest", values, io);
  try {
    const repo = client.repository(parseNormalizedNamed(positionals[0] as string));
    const fetched = platform ? (await repo.resolveImage({ platform })).manifest : await repo.manifest();
    io.stdout.write(fetched.bytes);
    if (fetched.bytes.at(-1) !== 0x0a && (io.stdout as { isTTY?: boolean }).isTTY) io.stdout.write("\n");
    return ExitCode.ok;
  } finally {
    await client.close();
  }
}
