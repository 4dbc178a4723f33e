// GitHub Actions workflow commands. GitHub shows at most 10 error, 10 warning and 10 notice annotations per
// step and drops the rest silently, so the first 10 of each level (errors first) become annotations, the
// rest are printed as plain log lines, and a Markdown summary for $GITHUB_STEP_SUMMARY lists everything.

import { describeObject } from "../engine.ts";
import type { CheckReport, Finding } from "../types.ts";
import { findingPath } from "./location.ts";

/** Annotations GitHub keeps per level and step. */
export const ANNOTATIONS_PER_LEVEL = 10;

/** Escapes a workflow command's message (actions/toolkit `escapeData`). */
export function escapeData(s: string): string {
  return s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

/** Escapes a workflow command's property value (actions/toolkit `escapeProperty`). */
export function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, "%3A").replace(/,/g, "%2C");
}

const COMMAND = { error: "error", warning: "warning", note: "notice" } as const;

function annotation(f: Finding, root: string | undefined): string {
  const where = findingPath(f, root);
  const props: [string, string][] = [];
  if (where !== null) {
    props.push(["file", where.path]);
    if (!where.rendered) {
      props.push(["line", String(f.line)], ["endLine", String(Math.max(f.endLine, f.line))]);
      props.push(["col", String(f.column)]);
      if (f.endLine === f.line && f.endColumn > f.column) props.push(["endColumn", String(f.endColumn)]);
    }
  }
  props.push(["title", `kpull ${f.rule}`]);
  const message = `${describeObject(f)}, ${f.message}`;
  return `::${COMMAND[f.severity]} ${props.map(([k, v]) => `${k}=${escapeProperty(v)}`).join(",")}::${escapeData(message)}`;
}

export interface GithubOutput {
  /** Lines for stdout: annotations, then the findings that did not fit, then a summary line. */
  readonly log: string;
  /** Markdown for $GITHUB_STEP_SUMMARY. */
  readonly stepSummary: string;
}

export function renderGithub(report: CheckReport, options: { root?: string } = {}): GithubOutput {
  const rank = { error: 0, warning: 1, note: 2 } as const;
  const ordered = [...report.findings].sort((a, b) => rank[a.severity] - rank[b.severity]);
  const used = { error: 0, warning: 0, note: 0 };
  const lines: string[] = [];
  const rest: Finding[] = [];
  for (const f of ordered) {
    if (used[f.severity] < ANNOTATIONS_PER_LEVEL) {
      used[f.severity]++;
      lines.push(annotation(f, options.root));
    } else rest.push(f);
  }
  if (rest.length > 0) {
    lines.push(
      `${rest.length} more finding${rest.length === 1 ? "" : "s"} not annotated (GitHub keeps ${ANNOTATIONS_PER_LEVEL} per level and step):`,
    );
    for (const f of rest)
      lines.push(escapeData(`${f.file}:${f.line}:${f.column}  ${f.severity}  ${f.rule}  ${f.message}`));
  }
  const s = report.summary;
  lines.push(
    `kpull check: ${s.errors} errors, ${s.warnings} warnings, ${s.notes} notes; ${s.images} images in ${s.objects} objects, ${s.files} files; mode ${s.mode}${s.suppressed > 0 ? `; ${s.suppressed} suppressed` : ""}`,
  );

  const cell = (x: string) => x.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
  const md: string[] = ["### kpull check", ""];
  if (report.findings.length === 0) md.push(`No findings in ${s.images} images (mode ${s.mode}).`);
  else {
    md.push(
      `${s.errors} errors, ${s.warnings} warnings, ${s.notes} notes in ${s.images} images (mode ${s.mode}).`,
      "",
      "| severity | rule | location | object | message |",
      "|---|---|---|---|---|",
    );
    for (const f of ordered) {
      md.push(
        `| ${f.severity} | \`${f.rule}\` | ${cell(`${f.file}:${f.line}:${f.column}`)} | ${cell(describeObject(f))} | ${cell(f.message)} |`,
      );
    }
  }
  if (rest.length > 0) md.push("", `${rest.length} of these were not annotated: GitHub keeps 10 per level.`);
  return { log: `${lines.join("\n")}\n`, stepSummary: `${md.join("\n")}\n` };
}
