// kpull's command line: a thin shell over the modules. `run` returns the exit code instead of exiting, so
// tests and embedders can call it in-process.

import { readFileSync } from "node:fs";
import { UsageError } from "./args.ts";
import { exportCommand, exportHelp, importCommand, importHelp } from "./commands/archive.ts";
import { checkCommand, checkHelp } from "./commands/check.ts";
import { copyCommand, copyHelp } from "./commands/copy.ts";
import { explainCommand, explainHelp } from "./commands/explain.ts";
import { fixCommand, fixHelp } from "./commands/fix.ts";
import { gcCommand, gcHelp } from "./commands/gc.ts";
import { imagesCommand, imagesHelp } from "./commands/images.ts";
import { manifestCommand, manifestHelp } from "./commands/manifest.ts";
import { pinCommand, pinHelp } from "./commands/pin.ts";
import { prepullCommand, prepullHelp } from "./commands/prepull.ts";
import { pullCommand, pullHelp } from "./commands/pull.ts";
import { refCommand, refHelp } from "./commands/ref.ts";
import { resolveCommand, resolveHelp } from "./commands/resolve.ts";
import { rmiCommand, rmiHelp } from "./commands/rmi.ts";
import { runtimeCommand, runtimeHelp } from "./commands/runtime.ts";
import { serveCommand, serveHelp } from "./commands/serve.ts";
import { startCommand, startHelp } from "./commands/start.ts";
import { verifyCommand, verifyHelp } from "./commands/verify.ts";
import { type CliIo, ExitCode, processIo } from "./io.ts";

export type { CliIo } from "./io.ts";
export { ExitCode, processIo } from "./io.ts";

interface Command {
  readonly summary: string;
  readonly help: string;
  readonly run: (argv: readonly string[], io: CliIo) => number | Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  ref: { summary: "Parse image references as Kubernetes does", help: refHelp, run: refCommand },
  explain: {
    summary: "Explain the effective pull policy of images or manifests",
    help: explainHelp,
    run: explainCommand,
  },
  resolve: {
    summary: "Resolve an image to its digest with one HEAD",
    help: resolveHelp,
    run: resolveCommand,
  },
  manifest: {
    summary: "Print a manifest as the registry serves it, verified",
    help: manifestHelp,
    run: manifestCommand,
  },
  check: {
    summary: "Check manifests' images and pull policies against a cluster policy (CI)",
    help: checkHelp,
    run: checkCommand,
  },
  fix: {
    summary: "Set imagePullPolicy so the mode holds, keeping the YAML as written",
    help: fixHelp,
    run: fixCommand,
  },
  pin: {
    summary: "Pin image tags to digests, with a lock file; verify that pinned tags have not moved",
    help: pinHelp,
    run: pinCommand,
  },
  serve: {
    summary: "Serve the admission webhook that enforces the same policy in the cluster",
    help: serveHelp,
    run: serveCommand,
  },
  pull: {
    summary: "Ensure an image on this node under a pull policy, as the kubelet does",
    help: pullHelp,
    run: pullCommand,
  },
  prepull: {
    summary: "Pre-pull and pin the images manifests use, for imagePullPolicy: Never",
    help: prepullHelp,
    run: prepullCommand,
  },
  export: {
    summary: "Write images from the node's store into an OCI archive",
    help: exportHelp,
    run: exportCommand,
  },
  import: {
    summary: "Import an OCI archive's images into the node's store, verified",
    help: importHelp,
    run: importCommand,
  },
  copy: {
    summary: "Copy images between a registry and an OCI layout directory, verified",
    help: copyHelp,
    run: copyCommand,
  },
  start: {
    summary: "Start pods' images on this node as the kubelet would (order, policies, events, secrets)",
    help: startHelp,
    run: startCommand,
  },
  images: { summary: "List the images in the node's store", help: imagesHelp, run: imagesCommand },
  rmi: { summary: "Remove images from the node's store", help: rmiHelp, run: rmiCommand },
  verify: { summary: "Re-hash the node's store and report damage", help: verifyHelp, run: verifyCommand },
  gc: { summary: "Garbage-collect the node's store as the kubelet does", help: gcHelp, run: gcCommand },
  runtime: {
    summary: "Ask a CRI runtime (containerd) for its name, version and image filesystem usage",
    help: runtimeHelp,
    run: runtimeCommand,
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
    io.stdout.write(command?.help ?? mainHelp());
    return ExitCode.ok;
  }
  if (name === "--version" || name === "version") {
    io.stdout.write(`kpull ${version()}\n`);
    return ExitCode.ok;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined)
    return usageError(io, `unknown command "${name}" for "kpull" (see 'kpull --help')`);
  try {
    return await command.run(rest, io);
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
