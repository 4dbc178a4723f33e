import { appendFileSync, readFileSync } from "node:fs";
import {
  type CheckConfig,
  type CheckReport,
  ConfigError,
  checkImageUses,
  defaultConfig,
  findConfigFile,
  isMode,
  type LoadedSources,
  loadConfig,
  loadSources,
  MODES,
  type Mode,
  RULES,
  renderGithub,
  renderJson,
  renderJunit,
  renderSarif,
  renderText,
  reportExitCode,
  ruleSeverity,
  withoutIgnoredSources,
} from "../../check/index.ts";
import { type ImageUse, imageUsesFromText, ManifestError } from "../../manifests/index.ts";
import { parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";

export const checkHelp = `Check the images and pull policies of Kubernetes manifests against a cluster policy, for CI.

Examples:
  # Every manifest under deploy/, with the default mode (always-unless-pinned)
  kpull check deploy/

  # Rendered charts from stdin; GitHub code scanning wants SARIF
  helm template . | kpull check - -o sarif > kpull.sarif

  # Air-gapped nodes: only imagePullPolicy: Never is allowed
  kpull check --mode never k8s/

  # GitLab: a JUnit report, annotations in GitHub Actions
  kpull check -o junit deploy/ > kpull-junit.xml
  kpull check -o github deploy/

Usage:
  kpull check PATH... [--mode MODE] [-o text|json|sarif|junit|github] [--config FILE]

Flags:
  -m, --mode MODE          always | always-unless-pinned (default) | pinned | never; overrides the config file
  -o, --output FORMAT      text (default), json, sarif (2.1.0, for GitHub code scanning), junit, github
                           (workflow commands; also writes a summary to $GITHUB_STEP_SUMMARY)
  -c, --config FILE        configuration file (default: the nearest .kpull.yaml upward from here)
      --no-config          do not look for .kpull.yaml
      --no-annotations     ignore kpull/ignore and kpull/mode annotations (an audit of every exemption)
      --include-suppressed also emit exempted findings in SARIF, marked with "suppressions"
  -h, --help               show this help

PATH is a file, a directory (recursive: .yaml, .yml, .json) or - for stdin. Kinds with a pod spec are read
(Pod, PodTemplate, ReplicationController, ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob, and
the items of a List); every container, init container, ephemeral container and image volume is checked.

Rules: invalid-image, floating-tag, pull-policy, unpinned-image (mode pinned). See docs/check.md.
Exemptions: annotations kpull/ignore: RULE[,RULE], kpull/ignore-reason, kpull/ignore-until: YYYY-MM-DD,
kpull/mode: MODE, on the object or its pod template.

Exit status: 0 no finding of severity error, 1 at least one, 2 bad usage, a bad config file, or input that
cannot be read (each such file is named on stderr; nothing is judged).
`;

export const CHECK_FORMATS = ["text", "json", "sarif", "junit", "github"] as const;
export type CheckFormat = (typeof CHECK_FORMATS)[number];

/** Flags shared by check, fix and pin: the configuration and the mode. */
export const policyOptions = {
  mode: { type: "string", short: "m" },
  config: { type: "string", short: "c" },
  "no-config": { type: "boolean" },
  "no-annotations": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export interface PolicyFlagValues {
  mode?: string | undefined;
  config?: string | undefined;
  "no-config"?: boolean | undefined;
}

/** The configuration and mode the flags ask for. Throws UsageError or ConfigError. */
export async function resolvePolicy(
  command: string,
  values: PolicyFlagValues,
  cwd: string = process.cwd(),
): Promise<{ config: CheckConfig; mode: Mode | undefined }> {
  let mode: Mode | undefined;
  if (values.mode !== undefined) {
    if (!isMode(values.mode))
      throw new UsageError(command, `unknown mode "${values.mode}": modes are ${MODES.join(", ")}`);
    mode = values.mode;
  }
  if (values.config !== undefined && values["no-config"])
    throw new UsageError(command, "--config and --no-config cannot be used together");
  let config = defaultConfig(cwd);
  if (values.config !== undefined) config = await loadConfig(values.config);
  else if (!values["no-config"]) {
    const found = await findConfigFile(cwd);
    if (found !== null) config = await loadConfig(found);
  }
  return { config, mode };
}

export function requirePaths(command: string, positionals: readonly string[]): void {
  if (positionals.length === 0)
    throw new UsageError(command, "at least one PATH (a file, a directory or -) is required");
  if (positionals.filter((p) => p === "-").length > 1)
    throw new UsageError(command, "stdin (-) can be read only once");
}

/** Prints each unreadable input on stderr; true when there were any (exit 2). */
export function reportInputErrors(errors: readonly Error[], io: CliIo): boolean {
  for (const e of errors) io.stderr.write(`error: ${e.message.split("\n")[0]}\n`);
  return errors.length > 0;
}

/** Parses every source into image uses, collecting the files that fail. */
export function parseSources(
  loaded: LoadedSources,
  config: CheckConfig,
): { uses: ImageUse[]; errors: Error[] } {
  const uses: ImageUse[] = [];
  const errors: Error[] = [...loaded.errors];
  for (const source of loaded.sources) {
    try {
      for (const u of imageUsesFromText(source.text, source.file)) uses.push(u);
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      errors.push(error);
    }
  }
  return { uses: withoutIgnoredSources(uses, config), errors };
}

/** kpull's version, for SARIF's tool.driver. */
export function version(): string {
  return readVersion();
}

function readVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

export async function checkCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("check", argv, {
    ...policyOptions,
    output: { type: "string", short: "o" },
    "include-suppressed": { type: "boolean" },
  });
  if (values.help) {
    io.stdout.write(checkHelp);
    return ExitCode.ok;
  }
  const format = (values.output ?? "text") as CheckFormat;
  if (!CHECK_FORMATS.includes(format))
    throw new UsageError(
      "check",
      `unknown output format "${values.output}": allowed formats are ${CHECK_FORMATS.join(", ")}`,
    );
  requirePaths("check", positionals);
  let policy: Awaited<ReturnType<typeof resolvePolicy>>;
  try {
    policy = await resolvePolicy("check", values);
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`error: ${error.message}\n`);
      return ExitCode.usage;
    }
    throw error;
  }
  const { config, mode } = policy;
  const loaded = await loadSources(positionals, { config, stdin: io.stdin });
  const { uses, errors } = parseSources(loaded, config);
  if (reportInputErrors(errors, io)) return ExitCode.usage;

  const report = checkImageUses(uses, {
    config,
    mode,
    annotations: !values["no-annotations"],
    files: loaded.sources.length,
  });
  for (const w of report.warnings) io.stderr.write(`warning: ${w}\n`);
  io.stdout.write(render(report, format, config, io, values["include-suppressed"] ?? false));
  return reportExitCode(report);
}

function render(
  report: CheckReport,
  format: CheckFormat,
  config: CheckConfig,
  io: CliIo,
  includeSuppressed: boolean,
): string {
  switch (format) {
    case "json":
      return renderJson(report);
    case "sarif":
      return renderSarif(report, {
        version: version(),
        severities: Object.fromEntries(RULES.map((r) => [r.id, ruleSeverity(r, config)])),
        includeSuppressed,
      });
    case "junit":
      return renderJunit(report);
    case "github": {
      const out = renderGithub(report);
      const summaryFile = io.env.GITHUB_STEP_SUMMARY;
      if (summaryFile) {
        try {
          appendFileSync(summaryFile, out.stepSummary);
        } catch (error) {
          io.stderr.write(`warning: cannot write $GITHUB_STEP_SUMMARY: ${(error as Error).message}\n`);
        }
      }
      return out.log;
    }
    default:
      return renderText(report, {
        color: io.stdout.isTTY === true && !io.env.NO_COLOR && io.env.TERM !== "dumb",
      });
  }
}
