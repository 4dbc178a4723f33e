// kpull's command line: a thin shell over the modules. `run` returns the exit code instead of exiting, so
// tests and embedders can call it in-process.

import { readFileSync } from "node:fs";
import { UsageError } from "./args.ts";
import { type CliIo, ExitCode, processIo } from "./io.ts";

export type { CliIo } from "./io.ts";
export { ExitCode, processIo } from "./io.ts";

interface LoadedCommand {
  readonly help: string;
  readonly run: (argv: readonly string[], io: CliIo) => number | Promise<number>;
}

/** A command's module is imported only when that command runs (or its help is asked for): `kpull
 * --version` loads none of them, `kpull pull` only what pulling needs. */
interface Command {
  readonly summary: string;
  readonly load: () => Promise<LoadedCommand>;
}

const COMMANDS: Record<string, Command> = {
  ref: {
    summary: "Parse image references as Kubernetes does",
    load: async () => {
      const m = await import("./commands/ref.ts");
      return { help: m.refHelp, run: m.refCommand };
    },
  },
  explain: {
    summary: "Explain the effective pull policy of images or manifests",
    load: async () => {
      const m = await import("./commands/explain.ts");
      return { help: m.explainHelp, run: m.explainCommand };
    },
  },
  resolve: {
    summary: "Resolve an image to its digest with one HEAD",
    load: async () => {
      const m = await import("./commands/resolve.ts");
      return { help: m.resolveHelp, run: m.resolveCommand };
    },
  },
  manifest: {
    summary: "Print a manifest as the registry serves it, verified",
    load: async () => {
      const m = await import("./commands/manifest.ts");
      return { help: m.manifestHelp, run: m.manifestCommand };
    },
  },
  check: {
    summary: "Check manifests' images and pull policies against a cluster policy (CI)",
    load: async () => {
      const m = await import("./commands/check.ts");
      return { help: m.checkHelp, run: m.checkCommand };
    },
  },
  fix: {
    summary: "Set imagePullPolicy so the mode holds, keeping the YAML as written",
    load: async () => {
      const m = await import("./commands/fix.ts");
      return { help: m.fixHelp, run: m.fixCommand };
    },
  },
  pin: {
    summary: "Pin image tags to digests, with a lock file; verify that pinned tags have not moved",
    load: async () => {
      const m = await import("./commands/pin.ts");
      return { help: m.pinHelp, run: m.pinCommand };
    },
  },
  serve: {
    summary: "Serve the admission webhook that enforces the same policy in the cluster",
    load: async () => {
      const m = await import("./commands/serve.ts");
      return { help: m.serveHelp, run: m.serveCommand };
    },
  },
  pull: {
    summary: "Ensure an image on this node under a pull policy, as the kubelet does",
    load: async () => {
      const m = await import("./commands/pull.ts");
      return { help: m.pullHelp, run: m.pullCommand };
    },
  },
  prepull: {
    summary: "Pre-pull and pin the images manifests use, for imagePullPolicy: Never",
    load: async () => {
      const m = await import("./commands/prepull.ts");
      return { help: m.prepullHelp, run: m.prepullCommand };
    },
  },
  export: {
    summary: "Write images from the node's store into an OCI archive",
    load: async () => {
      const m = await import("./commands/archive.ts");
      return { help: m.exportHelp, run: m.exportCommand };
    },
  },
  import: {
    summary: "Import an OCI archive's images into the node's store, verified",
    load: async () => {
      const m = await import("./commands/archive.ts");
      return { help: m.importHelp, run: m.importCommand };
    },
  },
  copy: {
    summary: "Copy images between a registry and an OCI layout directory, verified",
    load: async () => {
      const m = await import("./commands/copy.ts");
      return { help: m.copyHelp, run: m.copyCommand };
    },
  },
  start: {
    summary: "Start pods' images on this node as the kubelet would (order, policies, events, secrets)",
    load: async () => {
      const m = await import("./commands/start.ts");
      return { help: m.startHelp, run: m.startCommand };
    },
  },
  images: {
    summary: "List the images in the node's store",
    load: async () => {
      const m = await import("./commands/images.ts");
      return { help: m.imagesHelp, run: m.imagesCommand };
    },
  },
  rmi: {
    summary: "Remove images from the node's store",
    load: async () => {
      const m = await import("./commands/rmi.ts");
      return { help: m.rmiHelp, run: m.rmiCommand };
    },
  },
  verify: {
    summary: "Re-hash the node's store and report damage",
    load: async () => {
      const m = await import("./commands/verify.ts");
      return { help: m.verifyHelp, run: m.verifyCommand };
    },
  },
  gc: {
    summary: "Garbage-collect the node's store as the kubelet does",
    load: async () => {
      const m = await import("./commands/gc.ts");
      return { help: m.gcHelp, run: m.gcCommand };
    },
  },
  runtime: {
    summary: "Ask a CRI runtime (containerd) for its name, version and image filesystem usage",
    load: async () => {
      const m = await import("./commands/runtime.ts");
      return { help: m.runtimeHelp, run: m.runtimeCommand };
    },
  },
};

/** Errors about what the user gave us (exit 2), as opposed to what a registry answered (exit 1). */
const INPUT_ERROR_CODES = new Set([
  "ManifestError",
  "InvalidImageName",
  "PlatformError",
  "HostsConfigError",
  "CredentialError",
]);

export function mainHelp(): string {
  const names = Object.keys(COMMANDS);
  const width = Math.max(...names.map((n) => n.length));
  return `kpull implements Kubernetes image pull policies end to end.

Examples:
  # How does Kubernetes read this image string, and which policy does it default to?
  kpull ref localhost:5000 localhost:5000/app

  # What will the node do for every container in these manifests?
  kpull explain -f deploy/

Commands:
${names.map((n) => `  ${n.padEnd(width)}   ${COMMANDS[n]?.summary}`).join("\n")}

Usage:
  kpull COMMAND [flags]
  kpull COMMAND --help     help and examples for one command
  kpull --version

Exit status: 0 success, 1 findings (an invalid image, a failed check), 2 bad usage or unreadable input.
`;
}

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

export async function run(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    const topic = name === "help" ? rest[0] : undefined;
    const command = topic === undefined ? undefined : COMMANDS[topic];
    if (topic !== undefined && command === undefined) return usageError(io, `unknown command "${topic}"`);
    io.stdout.write(command === undefined ? mainHelp() : (await command.load()).help);
    return ExitCode.ok;
  }
  if (name === "--version" || name === "version") {
    io.stdout.write(`kpull ${version()}\n`);
    return ExitCode.ok;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined)
    return usageError(io, `unknown command "${name}" for "kpull" (see 'kpull --help')`);
  const { run: runCommand } = await command.load();
  try {
    return await runCommand(rest, io);
  } catch (error) {
    if (error instanceof UsageError) return usageError(io, `${error.message} (see 'kpull ${name} --help')`);
    const coded = error as { code?: unknown; message?: unknown };
    if (typeof coded?.code === "string" && typeof coded.message === "string") {
      io.stderr.write(`error: ${coded.message.split("\n")[0]}\n`);
      return INPUT_ERROR_CODES.has(coded.code) ? ExitCode.usage : ExitCode.findings;
    }
    throw error;
  }
}

function usageError(io: CliIo, message: string): number {
  io.stderr.write(`error: ${message}\n`);
  return ExitCode.usage;
}
