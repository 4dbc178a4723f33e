// SARIF 2.1.0 as GitHub code scanning accepts it: every rule declared (so resolved alerts close), one
// result per finding with a physical location whose region has startLine, relative URIs, and our own
// partialFingerprints from object identity and field path.

import { RULES } from "../rules/index.ts";
import type { CheckReport, Finding, Severity, SeverityOrOff } from "../types.ts";
import { artifactUri, findingPath, fingerprint } from "./location.ts";

export const SARIF_SCHEMA =
  "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/** GitHub code scanning's limit of results per run. */
export const MAX_RESULTS = 25_000;

export interface SarifOptions {
  /** kpull's version, for tool.driver.version. */
  readonly version: string;
  /** The severity each rule ran with (rules turned off are declared disabled). */
  readonly severities: Readonly<Record<string, SeverityOrOff>>;
  /** Paths are made relative to this directory (the repository root); default the working directory. */
  readonly root?: string;
  /** Also emit exempted findings, with SARIF `suppressions` (GitHub does not read them everywhere). */
  readonly includeSuppressed?: boolean;
  /** automationDetails.id, to tell several analyses of one commit apart; default `kpull/check/`. */
  readonly category?: string;
}

function pascal(id: string): string {
  return id.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}

export function sarifLog(report: CheckReport, options: SarifOptions): Record<string, unknown> {
  const rules = RULES.map((rule) => {
    const severity = options.severities[rule.id] ?? rule.defaultSeverity;
    return {
      id: rule.id,
      name: pascal(rule.id),
      shortDescription: { text: rule.description },
      fullDescription: { text: rule.help },
      help: { text: rule.help, markdown: rule.help },
      defaultConfiguration:
        severity === "off" ? { enabled: false, level: rule.defaultSeverity } : { level: severity },
      properties: {
        tags: [...rule.tags],
        precision: "very-high",
        ...(rule.securitySeverity !== null ? { "security-severity": rule.securitySeverity } : {}),
      },
    };
  });
  const index = new Map(RULES.map((r, i) => [r.id as string, i]));
  const result = (f: Finding) => {
    const where = findingPath(f, options.root);
    const region =
      where?.rendered === true
        ? { startLine: 1 }
        : {
            startLine: f.line,
            startColumn: f.column,
            ...(f.endLine > f.line || (f.endLine === f.line && f.endColumn > f.column)
              ? { endLine: f.endLine, endColumn: f.endColumn }
              : {}),
          };
    const rendered = where?.rendered === true ? ` (line ${f.line} of the rendered input)` : "";
    return {
      ruleId: f.rule,
      ruleIndex: index.get(f.rule),
      level: f.severity satisfies Severity,
      message: { text: `${objectName(f)}, ${f.message}${rendered}` },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: artifactUri(f, options.root), uriBaseId: "%SRCROOT%" },
            region,
          },
          logicalLocations: [
            {
              name: f.container ?? "",
              fullyQualifiedName: [f.kind, f.namespace ?? "", f.name ?? "", ...f.path].join("/"),
              kind: "object",
            },
          ],
        },
      ],
      partialFingerprints: { "kpullFingerprint/v1": fingerprint(f, options.root) },
      ...(f.exemption !== null && !f.exemption.expired
        ? {
            suppressions: [
              {
                kind: "inSource",
                status: "accepted",
                ...(f.exemption.reason !== null ? { justification: f.exemption.reason } : {}),
              },
            ],
          }
        : {}),
    };
  };
  // GitHub refuses runs with more than 25,000 results: keep the most severe.
  const rank = { error: 0, warning: 1, note: 2 } as const;
  const all = [...report.findings, ...(options.includeSuppressed ? report.suppressed : [])];
  const kept =
    all.length <= MAX_RESULTS
      ? all
      : [...all].sort((a, b) => rank[a.severity] - rank[b.severity]).slice(0, MAX_RESULTS);
  const results = kept.map(result);
  return {
    version: "2.1.0",
    $schema: SARIF_SCHEMA,
    runs: [
      {
        tool: {
          driver: {
            name: "kpull",
            version: options.version,
            semanticVersion: options.version,
            rules,
          },
        },
        automationDetails: { id: options.category ?? "kpull/check/" },
        columnKind: "utf16CodeUnits",
        results,
        ...(kept.length < all.length ? { properties: { omittedResults: all.length - kept.length } } : {}),
      },
    ],
  };
}

function objectName(f: Finding): string {
  return `${f.kind} ${f.namespace === null ? "" : `${f.namespace}/`}${f.name ?? "(unnamed)"}`;
}

export function renderSarif(report: CheckReport, options: SarifOptions): string {
  return `${JSON.stringify(sarifLog(report, options), null, 2)}\n`;
}
