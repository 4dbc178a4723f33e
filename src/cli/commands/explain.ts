import { stringify } from "yaml";
import { type ContainerType, readImageUses } from "../../manifests/index.ts";
import {
  describePolicySource,
  effectivePullPolicy,
  isPullPolicy,
  nodeBehaviour,
  parseImageName,
} from "../../policy/index.ts";
import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";

export const explainHelp = `Explain the effective imagePullPolicy of images or of every container in manifests, and what the node
will do at each container start.

Examples:
  # Why does this image get Always?
  kpull explain nginx

  # Every container, init container, ephemeral container and image volume in a directory of manifests
  kpull explain -f deploy/

  # From a chart, as JSON
  helm template . | kpull explain -f - -o json

Usage:
  kpull explain IMAGE... [-o text|json|yaml]
  kpull explain -f FILE|DIR|- [-f ...] [-o text|json|yaml]

Flags:
  -f, --filename   a manifest file, a directory (recursive: .yaml, .yml, .json) or - for stdin; repeatable
  -o, --output     text (the default), json or yaml
  -h, --help       show this help

Exit status: 0 when everything was explained, 2 on bad usage or unreadable manifests.
`;

export interface ExplainedContainer {
  file: string | null;
  kind: string | null;
  namespace: string | null;
  name: string | null;
  containerType: ContainerType;
  container: string | null;
  image: string | null;
  pullPolicy: string | null;
  effectivePullPolicy: string | null;
  reason: string;
  pinned: boolean;
  onStart: string;
  notes: string[];
  line: number | null;
  column: number | null;
}

/** What is explained: an image with where it sits; the rest of ExplainedContainer is derived. */
type Subject = Omit<ExplainedContainer, "effectivePullPolicy" | "reason" | "pinned" | "onStart" | "notes">;

export function explainSubject(subject: Subject): ExplainedContainer {
  const image = subject.image ?? "";
  const policy = effectivePullPolicy(image, subject.pullPolicy, subject.containerType);
  const notes: string[] = [];
  let pinned = false;
  let onStart: string;
  let parseError: string | null = null;
  try {
    const parsed = parseImageName(image);
    pinned = parsed.digest !== "";
    if (policy.effective === "IfNotPresent" && !pinned) {
      notes.push(
        `tag ${JSON.stringify(parsed.tag)} is mutable: a node that already holds it keeps the old image when the tag moves`,
      );
    }
    if (policy.effective === "Always" && pinned) {
      notes.push("pinned by digest: Always costs one registry request per start and downloads nothing new");
    }
  } catch (error) {
    parseError = (error as Error).message;
  }
  if (policy.invalidWritten !== null) {
    onStart = `the API server rejects the object: ${policy.invalidWritten}`;
  } else if (parseError !== null) {
    onStart = `fails with InvalidImageName: ${parseError}`;
  } else if (policy.effective !== null && isPullPolicy(policy.effective)) {
    onStart = nodeBehaviour(policy.effective);
  } else {
    onStart = "image volumes are not supported while the ImageVolume gate is off";
  }
  if (subject.image === null)
    notes.push("no image is set (allowed only in templates that are filled in later)");
  return {
    file: subject.file,
    kind: subject.kind,
    namespace: subject.namespace,
    name: subject.name,
    containerType: subject.containerType,
    container: subject.container,
    image: subject.image,
    pullPolicy: subject.pullPolicy,
    effectivePullPolicy: policy.effective,
    reason: describePolicySource(policy),
    pinned,
    onStart,
    notes,
    line: subject.line,
    column: subject.column,
  };
}

export async function explainCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("explain", argv, {
    ...outputOption,
    filename: { type: "string", short: "f", multiple: true },
  });
  if (values.help) {
    io.stdout.write(explainHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("explain", values.output);
  const files = values.filename ?? [];
  if (files.length > 0 && positionals.length > 0) {
    throw new UsageError("explain", "give either IMAGE arguments or -f, not both");
  }
  if (files.length === 0 && positionals.length === 0) {
    throw new UsageError("explain", "at least one IMAGE or -f FILE|DIR|- is required");
  }
  if (files.filter((f) => f === "-").length > 1)
    throw new UsageError("explain", "stdin (-) can be read only once");

  const subjects: Subject[] =
    files.length > 0
      ? (await readImageUses(files, { stdin: io.stdin })).map((use) => ({
          file: use.file,
          kind: use.kind,
          namespace: use.namespace,
          name: use.name,
          containerType: use.containerType,
          container: use.container,
          image: use.image,
          pullPolicy: use.pullPolicy,
          line: use.position.line,
          column: use.position.column,
        }))
      : positionals.map((image) => ({
          file: null,
          kind: null,
          namespace: null,
          name: null,
          containerType: "container",
          container: null,
          image,
          pullPolicy: null,
          line: null,
          column: null,
        }));
  const containers = subjects.map(explainSubject);

  if (format === "json") io.stdout.write(`${JSON.stringify({ containers }, null, 2)}\n`);
  else if (format === "yaml") io.stdout.write(stringify({ containers }));
  else io.stdout.write(renderExplainText(containers));
  return ExitCode.ok;
}

function renderExplainText(containers: readonly ExplainedContainer[]): string {
  if (containers.length === 0) return "No containers found.\n";
  const blocks = containers.map((c) => {
    const head =
      c.file === null
        ? `image ${c.image}`
        : `${c.file}:${c.line}  ${c.kind} ${c.namespace === null ? "" : `${c.namespace}/`}${c.name ?? "(unnamed)"}  ${c.containerType} ${c.container ?? "(unnamed)"}`;
    const lines = [
      head,
      ...(c.file === null ? [] : [`  image:      ${c.image === null ? "(none)" : c.image}`]),
      `  policy:     ${c.effectivePullPolicy ?? "(unset)"} (${c.reason})`,
      `  pinned:     ${c.pinned ? "yes, by digest" : "no"}`,
      `  each start: ${c.onStart}`,
      ...c.notes.map((n) => `  note:       ${n}`),
    ];
    return lines.join("\n");
  });
  return `${blocks.join("\n\n")}\n`;
}
