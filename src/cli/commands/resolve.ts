import { stringify } from "yaml";
import { formatReference, parseNormalizedNamed } from "../../reference/index.ts";
import { requestCounts } from "../../registry/index.ts";
import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import {
  platformFrom,
  registryClientFrom,
  registryOptions,
  registryOptionsHelp,
} from "../registry-options.ts";

export const resolveHelp = `Resolve an image to its digest with one HEAD request, as the node does for Always.

Examples:
  # What does the tag point to now?
  kpull resolve registry.example.com/team/app:v1

  # For scripts: digest, media type, the platform's manifest and the requests it took
  kpull resolve -o json --platform linux/arm64 nginx:1.27

Usage:
  kpull resolve IMAGE [--platform OS/ARCH[/VARIANT]] [-o text|json|yaml] [registry flags]

Flags:
  -o, --output   text (the default), json or yaml
  -h, --help     show this help

${registryOptionsHelp}
Output: "digest" is what the reference points to (an index or a manifest); "platformDigest" the manifest
for the platform. A single-platform image costs one HEAD; an index one more GET.

Exit status: 0 resolved, 1 the registry refused or failed (the error names the reason), 2 bad usage.
`;

export async function resolveCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("resolve", argv, { ...outputOption, ...registryOptions });
  if (values.help) {
    io.stdout.write(resolveHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("resolve", values.output);
  if (positionals.length !== 1) throw new UsageError("resolve", "exactly one IMAGE is required");
  const image = positionals[0] as string;
  const platform = platformFrom("resolve", values.platform);
  const reference = parseNormalizedNamed(image);
  const client = registryClientFrom("resolve", values, io);
  try {
    const repo = client.repository(reference);
    const descriptor = await repo.resolve();
    const platformDescriptor = await repo.platformDigest(descriptor, platform ? { platform } : {});
    const result = {
      image,
      reference: formatReference(reference),
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
      size: descriptor.size,
      platformDigest: platformDescriptor.digest,
      requests: requestCounts(client.stats),
    };
    if (format === "json") io.stdout.write(`${JSON.stringify(result)}\n`);
    else if (format === "yaml") io.stdout.write(stringify(result));
    else {
      io.stdout.write(
        `${result.reference}\n  digest:          ${result.digest}\n  media type:      ${result.mediaType}\n  size:            ${result.size}\n  platform digest: ${result.platformDigest}\n  requests:        ${Object.entries(
          result.requests,
        )
          .map(([m, n]) => `${m} ${n}`)
          .join(", ")}\n`,
      );
    }
    return ExitCode.ok;
  } finally {
    await client.close();
  }
}
