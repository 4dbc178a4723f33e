// Human output: `file:line:col  rule  message`, grouped by object, a summary line; colour on a terminal.

import { describeObject, objectKey } from "../engine.ts";
import type { CheckReport, Finding } from "../types.ts";

export interface TextOptions {
  /** ANSI colour (on when stdout is a TTY and NO_COLOR is unset). */
  readonly color?: boolean;
}

const SGR = { red: 31, yellow: 33, cyan: 36, green: 32, dim: 2, bold: 1 } as const;

function paint(on: boolean, code: keyof typeof SGR, s: string): string {
  return on ? `\u001b[${SGR[code]}m${s}\u001b[0m` : s;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

export function renderText(report: CheckReport, options: TextOptions = {}): string {
  const color = options.color ?? false;
  const groups = new Map<string, Finding[]>();
  for (const f of report.findings) {
    const key = objectKey(f);
    const list = groups.get(key);
    if (list === undefined) groups.set(key, [f]);
    else list.push(f);
  }
  const out: string[] = [];
  for (const findings of groups.values()) {
    const first = findings[0] as Finding;
    const from = first.renderedFrom === null ? "" : paint(color, "dim", ` (# Source: ${first.renderedFrom})`);
    out.push(`${paint(color, "bold", describeObject(first))}${from}`);
    for (const f of findings) {
      const where = `${f.file}:${f.line}:${f.column}`;
      const level = f.severity === "error" ? "red" : f.severity === "warning" ? "yellow" : "cyan";
      const rule = paint(color, level, f.severity === "error" ? f.rule : `${f.rule} (${f.severity})`);
      out.push(`  ${paint(color, "dim", where)}  ${rule}  ${f.message}`);
    }
    out.push("");
  }
  const s = report.summary;
  const scope = `${plural(s.images, "image")}, ${plural(s.files, "file")}; mode ${s.mode}`;
  const suppressed = s.suppressed > 0 ? `; ${s.suppressed} suppressed by kpull/ignore` : "";
  if (report.findings.length === 0) {
    out.push(
      `${paint(color, "green", "No findings")} in ${plural(s.objects, "object")} (${scope})${suppressed}`,
    );
  } else {
    const counts = [
      s.errors > 0 ? paint(color, "red", plural(s.errors, "error")) : null,
      s.warnings > 0 ? paint(color, "yellow", plural(s.warnings, "warning")) : null,
      s.notes > 0 ? paint(color, "cyan", plural(s.notes, "note")) : null,
    ].filter((x) => x !== null);
    out.push(
      `${counts.join(", ")} in ${groups.size} of ${plural(s.objects, "object")} (${scope})${suppressed}`,
    );
  }
  return `${out.join("\n")}\n`;
}
