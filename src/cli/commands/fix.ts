import { isAbsolute } from "node:path";
import {
  ConfigError,
  encodeText,
  type FixResult,
  fixText,
  loadSources,
  unifiedDiff,
  writeFileAtomic,
} from "../../check/index.ts";
import { ManifestError } from "../../manifests/index.ts";
import { parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import { policyOptions, reportInputErrors, requirePaths, resolvePolicy } from "./check.ts";

export const fixHelp = `Set imagePullPolicy (an image volume: pullPolicy) so the mode holds, editing manifests in place: comments,
key order, quoting, indentation and line ends stay as they are. Prints a unified diff; --write applies it.

Examples:
  # What would change? (a diff for review; exit 1 when something would)
  kpull fix deploy/

  # Apply it
  kpull fix --write deploy/

  # Air-gapped clusters: every policy becomes Never
  kpull fix --mode never --write k8s/node-agents/

Usage:
  kpull fix PATH... [--mode MODE] [--write] [--config FILE]

Flags:
  -m, --mode MODE        always | always-unless-pinned (default) | pinned | never; overrides the config file
  -w, --write            write the changes (files only, not stdin) instead of printing a diff
  -c, --config FILE      configuration file (default: the nearest .kpull.yaml upward from here)
      --no-config        do not look for .kpull.yaml
      --no-annotations   ignore kpull/ignore and kpull/mode annotations
  -h, --help             show this help

What it writes: Always, or IfNotPresent for an image pinned by digest where the mode allows it, or Never in
mode never. It never invents a digest (that is kpull pin) and never touches exempted containers. A value
shared through a YAML anchor is changed only when every container using it wants the same value; otherwise
the container gets its own key, or is reported as skipped. Running fix twice changes nothing the second time.
Changing a pod template's policy rolls out new pods; a Pod's policy cannot change in place (recreate it).

Exit status: without --write, 0 when nothing needs changing and 1 when the diff is not empty; with --write,
0 when every pull-policy finding was fixed and 1 when some were skipped; 2 on bad usage or unreadable input.
`;

function label(file: string, side: "a" | "b"): string {
  if (file === "-") return "-";
  return isAbsolute(file) ? file : `${side}/${file.replace(/^\.\//, "")}`;
}

export async function fixCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("fix", argv, {
    ...policyOptions,
    write: { type: "boolean", short: "w" },
  });
  if (values.help) {
    io.stdout.write(fixHelp);
    return ExitCode.ok;
  }
  requirePaths("fix", positionals);
  if (values.write && positionals.includes("-"))
    throw new UsageError("fix", "--write cannot write to stdin; give files or directories");
  let policy: Awaited<ReturnType<typeof resolvePolicy>>;
  try {
    policy = await resolvePolicy("fix", values);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    io.stderr.write(`error: ${error.message}\n`);
    return ExitCode.usage;
  }
  const { config, mode } = policy;
  const loaded = await loadSources(positionals, { config, stdin: io.stdin });
  const errors: Error[] = [...loaded.errors];
  const results: { result: FixResult; source: (typeof loaded.sources)[number] }[] = [];
  for (const source of loaded.sources) {
    try {
      const result = fixText(source.text, source.file, {
        config,
        mode,
        annotations: !values["no-annotations"],
      });
      results.push({ result, source });
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      errors.push(error);
    }
  }
  // Nothing is written unless every input could be read.
  if (reportInputErrors(errors, io)) return ExitCode.usage;

  let changes = 0;
  let files = 0;
  let skipped = 0;
  let templates = false;
  let pods = false;
  for (const { result, source } of results) {
    for (const s of result.skipped) {
      skipped++;
      io.stderr.write(`skipped: ${s.finding.file}:${s.finding.line}:${s.finding.column}: ${s.reason}\n`);
    }
    if (result.after === result.before) continue;
    files++;
    changes += result.changes.length;
    for (const c of result.changes) {
      if (c.kind === "Pod") pods = true;
      else templates = true;
    }
    if (values.write) await writeFileAtomic(source.file, encodeText(result.after, source));
    else
      io.stdout.write(
        unifiedDiff(result.before, result.after, label(source.file, "a"), label(source.file, "b")),
      );
  }
  const what = `${changes} pull polic${changes === 1 ? "y" : "ies"} in ${files} file${files === 1 ? "" : "s"}`;
  if (changes === 0) io.stderr.write("Nothing to fix.\n");
  else if (values.write) io.stderr.write(`Fixed ${what}.\n`);
  else io.stderr.write(`Would fix ${what}; run with --write to apply.\n`);
  if (changes > 0 && templates)
    io.stderr.write("note: changing a pod template's imagePullPolicy rolls out new pods when applied.\n");
  if (changes > 0 && pods)
    io.stderr.write(
      "note: a Pod's imagePullPolicy cannot be changed in place; apply with kubectl replace --force.\n",
    );
  if (values.write) return skipped > 0 ? ExitCode.findings : ExitCode.ok;
  return changes > 0 || skipped > 0 ? ExitCode.findings : ExitCode.ok;
}
