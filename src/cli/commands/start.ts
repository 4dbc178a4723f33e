import { CredentialVerifier, Node, type NodeEvent, type PullVerifier, startPod } from "../../node/index.ts";
import type { Platform } from "../../registry/index.ts";
import { CredentialStore } from "../../registry/index.ts";
import { type OutputFormat, outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import {
  type KubeletImageConfig,
  type ManifestSet,
  podSecrets,
  readKubeletConfig,
  readPods,
} from "../pods.ts";
import {
  credentialsFrom,
  nodeOptions,
  nodeOptionsHelp,
  nodeSettingsFrom,
  platformFrom,
  type RegistryFlagValues,
  registryClientOptionsFrom,
  registryOptions,
  registryOptionsHelp,
} from "../registry-options.ts";
import {
  type NodeBackend,
  openNodeBackend,
  runtimeOptions,
  runtimeOptionsHelp,
  warnRuntimeIgnores,
} from "../runtime-options.ts";
import { renderTable } from "../table.ts";
import { storeOptions, storeOptionsHelp, writeStructured } from "./store-options.ts";

export const startHelp = `Start pods on this node as the kubelet would, as far as images go: every image volume, init container,
container and ephemeral container in the kubelet's order, each under its own pull policy, with the kubelet's
events, back-off and pull secrets.

Examples:
  # A Pod, or any workload's pod template
  kpull start -f deploy/web.yaml

  # Pull secrets: imagePullSecrets are resolved against Secret manifests given with -f too
  kpull start -f pod.yaml -f regcred-secret.yaml -o json

  # Several pods at once, pulled in parallel as a kubelet configured so would
  kpull start -f pods/ --kubelet-config kubelet.yaml

  # In front of the node's containerd: the runtime pulls, kpull decides as the kubelet does
  kpull start -f pod.yaml --runtime-endpoint unix:///run/containerd/containerd.sock

Usage:
  kpull start -f FILE|DIR|- [-f ...] [--kubelet-config FILE] [-o text|json|yaml] [--root DIR] [--runtime-endpoint URL] [registry flags]

Flags:
  -f, --filename         manifests: Pods, workloads, Secrets (repeatable; a directory is read recursively)
      --kubelet-config   a KubeletConfiguration: serializeImagePulls, maxParallelImagePulls, registryPullQPS,
                         registryBurst, featureGates.KubeletEnsureSecretPulledImages,
                         imagePullCredentialsVerificationPolicy, preloadedImagesVerificationAllowlist
  -o, --output           text (events like kubectl describe; the default), json or yaml
  -h, --help             show this help

${storeOptionsHelp}
${runtimeOptionsHelp}
${nodeOptionsHelp}
${registryOptionsHelp}
Exit status: 0 when every container's image is ready, 1 when any is waiting, 2 bad usage or unreadable input.
`;

export async function startCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs("start", argv, {
    ...outputOption,
    ...storeOptions,
    ...registryOptions,
    ...nodeOptions,
    ...runtimeOptions,
    filename: { type: "string", short: "f", multiple: true },
    "kubelet-config": { type: "string" },
  });
  if (values.help) {
    io.stdout.write(startHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("start", values.output);
  const files = values.filename ?? [];
  if (files.length === 0) throw new UsageError("start", "at least one -f FILE|DIR|- is required");
  const kubelet = values["kubelet-config"] ? await readKubeletConfig(values["kubelet-config"]) : null;
  const { pods, secrets } = await readPods(files, io.stdin);
  if (pods.length === 0)
    throw new UsageError("start", "the manifests hold no pod (Pod or a workload with a pod template)");
  const platform = platformFrom("start", values.platform);
  const backend = await openNodeBackend(values, io);
  if (backend.runtime) warnRuntimeIgnores(values, io);
  try {
    return await startOn(backend, values, io, { format, kubelet, pods, secrets, platform });
  } finally {
    backend.close();
  }
}

interface StartInput {
  readonly format: OutputFormat;
  readonly kubelet: KubeletImageConfig | null;
  readonly pods: ManifestSet["pods"];
  readonly secrets: ManifestSet["secrets"];
  readonly platform: Platform | undefined;
}

async function startOn(
  backend: NodeBackend,
  values: RegistryFlagValues & { "pull-deadline"?: string | undefined },
  io: CliIo,
  { format, kubelet, pods, secrets, platform }: StartInput,
): Promise<number> {
  const store = backend.store;
  const events: NodeEvent[] = [];
  const nodeCredentials = credentialsFrom("start", values, io);
  let verifier: PullVerifier | null = null;
  if (kubelet?.ensureSecretPulledImages) {
    verifier = await CredentialVerifier.open({
      root: store.root,
      // On a runtime, intents a crash left behind are matched against its images (kubelet.md §3.7).
      ...(backend.runtime ? { images: backend.runtime } : {}),
      ...(kubelet.imagePullCredentialsVerificationPolicy
        ? { policy: kubelet.imagePullCredentialsVerificationPolicy }
        : {}),
      ...(kubelet.preloadedImagesVerificationAllowlist
        ? { allowlist: kubelet.preloadedImagesVerificationAllowlist }
        : {}),
      onWarning: (m) => io.stderr.write(`warning: ${m}\n`),
    });
  }
  const node = await Node.open({
    store,
    ...(backend.runtime ? { service: backend.runtime } : {}),
    registry: registryClientOptionsFrom(values),
    ...nodeSettingsFrom("start", values),
    credentials: nodeCredentials,
    ...(kubelet ? { kubelet } : {}),
    ...(platform ? { platform } : {}),
    verifier,
    onEvent: (e) => events.push(e),
  });
  // Pods run concurrently, as the kubelet's pod workers do; inside a pod, containers go one by one.
  const results = await Promise.all(
    pods.map(async (pod) => {
      const { found, missing } = podSecrets(pod, secrets);
      // The pod's secrets first, then the node's credentials (kubelet.md §2.11).
      const podCredentials = new CredentialStore({ pullSecrets: found, dockerConfigDir: null, env: io.env });
      const credentials = {
        lookup: async (repository: string) => [
          ...(await podCredentials.lookup(repository)),
          ...(await nodeCredentials.lookup(repository)),
        ],
      };
      return startPod(node, { ...pod, missingPullSecrets: missing, credentials });
    }),
  );
  await node.save();
  const containers = results.flat();
  const output = {
    events: events.map(({ type, reason, message, object }) => ({ type, reason, message, object })),
    containers: containers.map(({ pod, name, image, state, reason, type, message }) => ({
      pod,
      name,
      type,
      image,
      state,
      reason,
      message,
    })),
  };
  if (format !== "text") writeStructured(io, format, output);
  else {
    io.stdout.write(
      renderTable(
        ["POD", "CONTAINER", "IMAGE", "STATE", "REASON", "NOTE"],
        containers.map((c) => [
          c.pod,
          c.name,
          c.image,
          c.state,
          c.reason ?? "",
          c.state === "ready" ? (c.message ?? "") : "",
        ]),
      ),
    );
    io.stdout.write(
      `\nEvents:\n${indent(
        renderTable(
          ["Type", "Reason", "Object", "Message"],
          events.map((e) => [e.type, e.reason, e.object, e.message]),
        ),
      )}`,
    );
  }
  return containers.every((c) => c.state === "ready") ? ExitCode.ok : ExitCode.findings;
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => (l === "" ? l : `  ${l}`))
    .join("\n");
}
