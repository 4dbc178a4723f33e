import { Node } from "../../node/core.ts";
import { isPullPolicy, PULL_POLICIES, type PullPolicy } from "../../policy/index.ts";
import type { PullProgress } from "../../store/core.ts";
import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import { PullProgressView } from "../progress.ts";
import {
  credentialsFrom,
  nodeOptions,
  nodeOptionsHelp,
  nodeSettingsFrom,
  platformFrom,
  registryClientOptionsFrom,
  registryOptions,
  registryOptionsHelp,
} from "../registry-options.ts";
import {
  openNodeBackend,
  runtimeOptions,
  runtimeOptionsHelp,
  warnRuntimeIgnores,
} from "../runtime-options.ts";
import { formatBytes, storeOptions, storeOptionsHelp, writeStructured } from "./store-options.ts";

export const pullHelp = `Ensure an image on this node as the kubelet does for one container start, under a pull policy.

Examples:
  # The API server's default policy for the string (Always for :latest or no tag, else IfNotPresent)
  kpull pull registry.example.com/team/app:v1

  # Always on a cached image: one HEAD request, no download unless the tag moved
  kpull pull --policy Always -o json registry.example.com/team/app:v1 | jq '{action, requests}'

  # Never: use only what is on the node (fails with ErrImageNeverPull when absent)
  kpull pull --policy Never registry.example.com/team/app:v1

  # The same in front of the node's containerd (CRI), as the kubelet would ask it
  kpull pull --runtime-endpoint unix:///run/containerd/containerd.sock registry.example.com/team/app:v1

Usage:
  kpull pull IMAGE [--policy Always|IfNotPresent|Never] [--unpack] [--platform OS/ARCH[/VARIANT]] [-o text|json|yaml] [--root DIR] [--runtime-endpoint URL] [registry flags]

Flags:
      --policy   Always, IfNotPresent or Never (default: what the API server would set for IMAGE)
      --unpack   also unpack the image into snapshots (one per ChainID, shared between images)
  -o, --output   text (the default), json or yaml
  -h, --help     show this help

${storeOptionsHelp}
${runtimeOptionsHelp}
${nodeOptionsHelp}
${registryOptionsHelp}
Output "action": pulled (was absent), present (used as is, no registry contact), verified (Always: the tag
still points at the cached image, nothing fetched), updated (Always: the tag moved, only new content
fetched), failed (with "code": ErrImagePull, ErrImageNeverPull, ImagePullBackOff, InvalidImageName,
RegistryUnavailable, ...). A failed pull backs off like the kubelet (10 s doubling to 5 min), kept in the
store between runs. Progress goes to stderr on a terminal; -o json prints only the result. With
--runtime-endpoint the runtime makes the registry requests: "measured" is false and requests, bytes and
layers are not known to kpull.

Exit status: 0 the image is ready, 1 it is not (the code says why), 2 bad usage.
`;

export async function pullCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("pull", argv, {
    ...outputOption,
    ...storeOptions,
    ...registryOptions,
    ...nodeOptions,
    ...runtimeOptions,
    policy: { type: "string" },
    unpack: { type: "boolean" },
  });
  if (values.help) {
    io.stdout.write(pullHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("pull", values.output);
  if (positionals.length !== 1) throw new UsageError("pull", "exactly one IMAGE is required");
  const image = positionals[0] as string;
  let policy: PullPolicy | undefined;
  if (values.policy !== undefined) {
    if (!isPullPolicy(values.policy)) {
      throw new UsageError(
        "pull",
        `unknown policy "${values.policy}": allowed values are ${PULL_POLICIES.join(", ")}`,
      );
    }
    policy = values.policy;
  }
  const platform = platformFrom("pull", values.platform);
  const backend = await openNodeBackend(values, io);
  if (values.unpack && backend.runtime) {
    backend.close();
    throw new UsageError("pull", "--unpack applies to kpull's store; a CRI runtime unpacks images itself");
  }
  if (backend.runtime) warnRuntimeIgnores(values, io);
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error("interrupted"));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const progress = format === "text" ? new PullProgressView(io.stderr) : null;
  // With --unpack, layers are unpacked as they arrive, while the rest still download.
  const unpacking = values.unpack
    ? await backend.store.unpackWhilePulling(image, { signal: controller.signal })
    : null;
  const onProgress =
    progress || unpacking
      ? (p: PullProgress) => {
          progress?.update(p);
          unpacking?.onProgress(p);
        }
      : null;
  try {
    const node = await Node.open({
      store: backend.store,
      ...(backend.runtime ? { service: backend.runtime } : {}),
      registry: registryClientOptionsFrom(values),
      ...nodeSettingsFrom("pull", values),
      credentials: credentialsFrom("pull", values, io),
      ...(platform ? { platform } : {}),
      signal: controller.signal,
      ...(onProgress ? { onProgress } : {}),
    });
    const pulled = await node.pull(image, policy);
    await node.save();
    progress?.finish();
    // Unpack into ChainID snapshots: layers shared with images already unpacked are not unpacked again.
    // When this pull fetched nothing (the image was present), the unpack starts now, from the record.
    const unpacked =
      unpacking && pulled.action !== "failed"
        ? ((await unpacking.finish(true)) ??
          (await backend.store.unpack(image, { signal: controller.signal })))
        : null;
    const outcome = unpacked
      ? {
          ...pulled,
          unpacked: {
            chainId: unpacked.chainId,
            rootfs: unpacked.rootfs,
            layers: {
              total: unpacked.layers.length,
              created: unpacked.layers.filter((l) => l.created).length,
            },
            warnings: unpacked.warnings.length,
          },
        }
      : pulled;
    if (format !== "text") writeStructured(io, format, outcome);
    else if (outcome.action === "failed") {
      io.stderr.write(`error: ${outcome.code}: ${outcome.message}\n`);
    } else {
      const requests = Object.entries(outcome.requests)
        .map(([m, n]) => `${m} ${n}`)
        .join(", ");
      io.stdout.write(
        outcome.measured
          ? `${outcome.reference}: ${outcome.action} (policy ${outcome.policy})\n  digest:   ${outcome.digest}\n  requests: ${requests}\n  fetched:  ${formatBytes(outcome.bytesFetched)}; layers: ${outcome.layers.fetched} fetched, ${outcome.layers.reused} reused of ${outcome.layers.total}\n`
          : `${outcome.reference}: ${outcome.action} (policy ${outcome.policy})\n  digest:   ${outcome.digest}\n  requests: made by the runtime (not seen by kpull)\n`,
      );
      if (unpacked) {
        io.stdout.write(
          `  unpacked: ${unpacked.rootfs} (${unpacked.layers.filter((l) => l.created).length} of ${unpacked.layers.length} layers unpacked now; the rest shared)\n  read-only: its files are shared with other snapshots; mount it as an overlay's lower directory or copy it\n`,
        );
        for (const w of unpacked.warnings) io.stderr.write(`warning: ${w.layer}: ${w.message}\n`);
      }
    }
    return outcome.action === "failed" ? ExitCode.findings : ExitCode.ok;
  } finally {
    // After a failed pull (or anything that threw) a running unpack is stopped and its builds removed.
    await unpacking?.finish(false);
    backend.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
