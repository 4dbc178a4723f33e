import { requestCounts } from "../../registry/index.ts";
import { type PullResult, Store } from "../../store/index.ts";
import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import {
  platformFrom,
  registryClientFrom,
  registryOptions,
  registryOptionsHelp,
} from "../registry-options.ts";
import {
  formatBytes,
  plural,
  rootFrom,
  storeOptions,
  storeOptionsHelp,
  writeStructured,
} from "./store-options.ts";

export const pullHelp = `Pull an image into the node's store: fetch only the blobs it does not hold, verify, commit, record.

Examples:
  # Pull (a cached image costs one HEAD request and nothing else)
  kpull pull registry.example.com/team/app:v1

  # Another platform of a multi-platform image, into a given store
  kpull pull --platform linux/arm64 --root /tmp/store nginx:1.27

  # What was fetched and what was reused, for scripts
  kpull pull -o json busybox:1.36 | jq '{fetched, reused, requests}'

Usage:
  kpull pull IMAGE [--platform OS/ARCH[/VARIANT]] [-o text|json|yaml] [--root DIR] [registry flags]

Flags:
  -o, --output   text (the default), json or yaml
  -h, --help     show this help

${storeOptionsHelp}
${registryOptionsHelp}
This is the store-level pull; pull policies (Always, IfNotPresent, Never) are the image manager's business.
Processes pulling into one root at the same time download each blob once; an interrupted pull resumes
its partial downloads with Range requests.

Exit status: 0 pulled, 1 the registry refused or failed or the store could not take it, 2 bad usage.
`;

export async function pullCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("pull", argv, {
    ...outputOption,
    ...storeOptions,
    ...registryOptions,
  });
  if (values.help) {
    io.stdout.write(pullHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("pull", values.output);
  if (positionals.length !== 1) throw new UsageError("pull", "exactly one IMAGE is required");
  const image = positionals[0] as string;
  const platform = platformFrom("pull", values.platform);
  const client = registryClientFrom("pull", values, io);
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error("interrupted"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const started = Date.now();
  try {
    const store = await Store.open(rootFrom(values, io));
    const result = await store.pullImage(client, image, {
      ...(platform ? { platform } : {}),
      signal: controller.signal,
    });
    const summary = summarize(image, result, requestCounts(client.stats), Date.now() - started);
    if (format !== "text") writeStructured(io, format, summary);
    else {
      io.stdout.write(
        `${result.name}: ${result.fetched.blobs === 0 ? "up to date" : "pulled"}\n  digest:   ${result.target.digest}\n  image id: ${result.id}\n  fetched:  ${formatBytes(result.fetched.bytes)} in ${plural(result.fetched.blobs, "blob")}${result.resumed.blobs > 0 ? ` (resumed ${result.resumed.blobs})` : ""}\n  reused:   ${formatBytes(result.reused.bytes)} in ${plural(result.reused.blobs, "blob")}\n`,
      );
    }
    return ExitCode.ok;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await client.close();
  }
}

function summarize(
  image: string,
  r: PullResult,
  requests: Record<string, number | undefined>,
  durationMs: number,
) {
  const layers = r.blobs.filter((b) => b.kind === "layer");
  return {
    image,
    name: r.name,
    digest: r.target.digest,
    manifestDigest: r.manifest.digest,
    id: r.id,
    platform: r.platform,
    size: r.size,
    fetched: r.fetched,
    reused: r.reused,
    resumed: r.resumed,
    layers: {
      total: layers.length,
      fetched: layers.filter((b) => b.status === "fetched").length,
      reused: layers.filter((b) => b.status !== "fetched").length,
      /** Reused because another process fetched them while this one waited. */
      waited: layers.filter((b) => b.status === "waited").length,
    },
    requests,
    durationMs,
  };
}
