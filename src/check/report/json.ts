// JSON output: {"findings": [...], "summary": {...}}; each finding carries exactly the documented keys.

import type { CheckReport } from "../types.ts";

export function renderJson(report: CheckReport): string {
  const findings = report.findings.map((f) => ({
    rule: f.rule,
    severity: f.severity,
    file: f.file,
    line: f.line,
    column: f.column,
    kind: f.kind,
    namespace: f.namespace,
    name: f.name,
    container: f.container,
    image: f.image,
    message: f.message,
  }));
  return `${JSON.stringify({ findings, summary: report.summary }, null, 2)}\n`;
}
