// The words of responses: deny messages list findings as `kpull check` does (rule id, then the finding's own
// message), warnings are kept short enough for the API server to pass on whole.

import { describeObject, type Finding } from "../check/index.ts";
import { fieldPath } from "./patch.ts";

/** The API server may truncate longer warnings (admission/v1 types.go: "over 256 characters"). */
export const MAX_WARNING_LENGTH = 256;
/** Warnings beyond this many are summarised in one more. */
export const MAX_WARNINGS = 20;
/** Findings listed in a deny message at most; the rest are counted. */
export const MAX_LISTED_FINDINGS = 50;

/** `text` cut to `max` characters at a sentence or word boundary, with an ellipsis when cut. */
export function clip(text: string, max = MAX_WARNING_LENGTH): string {
  const oneLine = text.replaceAll(/\s*\n\s*/g, " ");
  if (oneLine.length <= max) return oneLine;
  const room = oneLine.slice(0, max - 1);
  const sentence = room.lastIndexOf(". ");
  if (sentence >= max / 2) return `${room.slice(0, sentence + 1)}…`;
  const space = room.lastIndexOf(" ");
  return `${space >= max / 2 ? room.slice(0, space) : room}…`;
}

/** At most MAX_WARNINGS warnings, each clipped, duplicates dropped. */
export function boundedWarnings(warnings: readonly string[]): string[] {
  const unique = [...new Set(warnings.map((w) => clip(w)))];
  if (unique.length <= MAX_WARNINGS) return unique;
  const kept = unique.slice(0, MAX_WARNINGS - 1);
  kept.push(`kpull: ${unique.length - kept.length} more warnings not shown`);
  return kept;
}

/** `kpull floating-tag: container "app": image "nginx" has no tag, ...` (the finding's message, clipped). */
export function findingWarning(finding: Finding, note = ""): string {
  const severity = finding.severity === "error" ? "" : ` (${finding.severity})`;
  return `kpull ${finding.rule}${severity}${note}: ${finding.message}`;
}

/** One line per finding, as `kpull check` prints them, with the field path in place of file:line:col. */
export function findingLines(findings: readonly Finding[]): string[] {
  const listed = findings.slice(0, MAX_LISTED_FINDINGS);
  const lines = listed.map((f) => `  ${fieldPath(f.path)}  ${f.rule}  ${f.message}`);
  if (findings.length > listed.length) lines.push(`  … and ${findings.length - listed.length} more findings`);
  return lines;
}

/** The deny message for findings of one object. */
export function denyMessage(findings: readonly Finding[], hints: readonly string[] = []): string {
  const first = findings[0];
  if (first === undefined) return "kpull: denied";
  const n = findings.length;
  const head = `kpull: ${describeObject(first)}: ${n} ${n === 1 ? "finding" : "findings"} (mode ${first.mode}):`;
  return [head, ...findingLines(findings), ...hints].join("\n");
}
