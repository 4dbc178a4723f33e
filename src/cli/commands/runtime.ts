import { CriImageService, type CriRuntimeInfo, DEFAULT_CONTAINERD_ENDPOINT } from "../../cri/index.ts";
import { diskPressure } from "../../store/index.ts";
import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import { runtimeEndpointFrom, runtimeOptions } from "../runtime-options.ts";
import { formatAge, formatBytes, writeStructured } from "./store-options.ts";

export const runtimeHelp = `Ask a CRI runtime about itself: its name and version, and the image filesystem it reports.

Examples:
  # containerd's default socket
  kpull runtime info

  # Another socket, for scripts
  kpull runtime info --runtime-endpoint unix:///run/k3s/containerd/containerd.sock -o json

Usage:
  kpull runtime info [--runtime-endpoint URL] [-o text|json|yaml]

Flags:
      --runtime-endpoint URL   the runtime's CRI socket (default: $KPULL_RUNTIME_ENDPOINT, else
                               ${DEFAULT_CONTAINERD_ENDPOINT})
  -o, --output                 text (the default), json or yaml
  -h, --help                   show this help

The connection is validated as the kubelet does at start-up (ImageFsInfo on runtime.v1); then Version
(RuntimeService) and ImageFsInfo are reported. "usedBytes" and "inodesUsed" are what the runtime says its
images use (containerd refreshes them every 10 s); "capacityBytes" and "availableBytes" come from statfs of
the mountpoint, when kpull can see it (the kubelet asks cAdvisor); "timestamp" is in milliseconds.

Exit status: 0 answered, 1 the runtime could not be reached or does not serve CRI v1, 2 bad usage.
`;

export async function runtimeCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("runtime", argv, { ...outputOption, ...runtimeOptions });
  if (values.help) {
    io.stdout.write(runtimeHelp);
    return ExitCode.ok;
  }
  const [sub, ...rest] = positionals;
  if (sub === undefined) throw new UsageError("runtime", "a subcommand is required: info");
  if (sub !== "info") throw new UsageError("runtime", `unknown subcommand "${sub}": only "info"`);
  if (rest.length > 0) throw new UsageError("runtime", `unexpected argument "${rest[0]}"`);
  const format = outputFormat("runtime", values.output);
  const endpoint = runtimeEndpointFrom(values, io) ?? DEFAULT_CONTAINERD_ENDPOINT;
  const runtime = await CriImageService.connect(endpoint);
  try {
    const info = await runtime.runtimeInfo();
    if (format !== "text") writeStructured(io, format, info);
    else io.stdout.write(renderInfo(info));
    return ExitCode.ok;
  } finally {
    runtime.close();
  }
}

function renderInfo(info: CriRuntimeInfo): string {
  const lines = [
    `Endpoint:  ${info.endpoint}`,
    `Runtime:   ${info.runtimeName} ${info.runtimeVersion}`,
    `CRI API:   ${info.runtimeApiVersion}`,
  ];
  const now = Date.now();
  const describe = (label: string, fs: CriRuntimeInfo["imageFilesystems"][number]) => {
    lines.push(`${label}: ${fs.mountpoint}`);
    const inodes = fs.inodesUsed === null ? "" : `, ${fs.inodesUsed} inodes`;
    lines.push(
      `  used by images: ${formatBytes(fs.usedBytes)}${inodes} (as of ${formatAge(fs.timestamp, now)} ago)`,
    );
    if (fs.capacityBytes !== undefined && fs.availableBytes !== undefined && fs.capacityBytes > 0) {
      const usage = diskPressure(
        { capacity: fs.capacityBytes, available: fs.availableBytes },
        { highThresholdPercent: 100, lowThresholdPercent: 100 },
      ).usagePercent;
      lines.push(
        `  filesystem:     ${formatBytes(fs.availableBytes)} available of ${formatBytes(fs.capacityBytes)} (usage ${usage}%, as image GC counts it)`,
      );
    } else lines.push("  filesystem:     not visible from here (capacity unknown)");
  };
  if (info.imageFilesystems.length === 0) lines.push("Image filesystem: none reported");
  for (const fs of info.imageFilesystems) describe("Image filesystem", fs);
  for (const fs of info.containerFilesystems) describe("Container filesystem", fs);
  return `${lines.join("\n")}\n`;
}
