import { stringify } from "yaml";
import { defaultPullPolicy, type PullPolicy } from "../../policy/index.ts";
import {
  familiarString,
  formatReference,
  repositoryName,
  tryParseNormalizedNamed,
} from "../../reference/index.ts";
import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import { renderTable } from "../table.ts";

export const refHelp = `Parse image references exactly as Kubernetes does, and show the pull policy the API server would default.

Examples:
  # Show how short names are normalized
  kpull ref nginx:1.27 localhost:5000/app ghcr.io/org/tool@sha256:...

  # One JSON object per input, in input order, for scripts
  kpull ref -o json nginx busybox:latest

  # Images that start with '-' go after '--'
  kpull ref -- -weird

Usage:
  kpull ref IMAGE... [-o text|json|yaml]

Flags:
  -o, --output   text (a table, the default), json (one object per line) or yaml
  -h, --help     show this help

Exit status: 0 when every input is a valid reference, 1 when any is invalid, 2 on bad usage.
`;

export type RefResult =
  | {
      input: string;
      valid: true;
      domain: string;
      path: string;
      tag: string | null;
      digest: string | null;
      name: string;
      reference: string;
      familiar: string;
      defaultPullPolicy: PullPolicy;
    }
  | { input: string; valid: false; error: string; defaultPullPolicy: PullPolicy };

export function describeReference(input: string): RefResult {
  const parsed = tryParseNormalizedNamed(input);
  const policy = defaultPullPolicy(input);
  if (!parsed.ok) return { input, valid: false, error: parsed.error.message, defaultPullPolicy: policy };
  const ref = parsed.ref;
  return {
    input,
    valid: true,
    domain: ref.domain,
    path: ref.path,
    tag: ref.tag,
    digest: ref.digest,
    name: repositoryName(ref),
    reference: formatReference(ref),
    familiar: familiarString(ref),
    defaultPullPolicy: policy,
  };
}

export function refCommand(argv: readonly string[], io: CliIo): number {
  const { values, positionals } = parseCommandArgs("ref", argv, outputOption);
  if (values.help) {
    io.stdout.write(refHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("ref", values.output);
  if (positionals.length === 0) throw new UsageError("ref", "at least one IMAGE is required");
  const results = positionals.map(describeReference);
  if (format === "json") {
    for (const r of results) io.stdout.write(`${JSON.stringify(r)}\n`);
  } else if (format === "yaml") {
    io.stdout.write(stringify(results));
  } else {
    const rows = results.map((r) =>
      r.valid
        ? [shown(r.input), r.reference, r.familiar, r.defaultPullPolicy, ""]
        : [shown(r.input), "-", "-", r.defaultPullPolicy, r.error],
    );
    io.stdout.write(renderTable(["INPUT", "REFERENCE", "FAMILIAR", "DEFAULT POLICY", "ERROR"], rows));
  }
  return results.every((r) => r.valid) ? ExitCode.ok : ExitCode.findings;
}

/** Inputs that would be invisible or ambiguous in a table are shown quoted. */
function shown(input: string): string {
  return input === "" || /\s/.test(input) ? JSON.stringify(input) : input;
}
