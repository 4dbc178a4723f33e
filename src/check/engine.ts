// The engine: image uses in, findings out. Pure apart from the clock, which is injected.

import type { ImageUse } from "../manifests/index.ts";
import {
  effectivePullPolicy,
  ImageNameError,
  type ParsedImageName,
  parseImageName,
} from "../policy/index.ts";
import { type CheckConfig, defaultConfig } from "./config.ts";
import { type ExemptionSet, readExemptions } from "./exemptions.ts";
import { RULES } from "./rules/index.ts";
import {
  type CheckReport,
  DEFAULT_MODE,
  type Evaluation,
  type Exemption,
  type Finding,
  type Mode,
  type Rule,
  type Severity,
  type SeverityOrOff,
  type Subject,
  type Summary,
} from "./types.ts";

export interface CheckOptions {
  /** Mode, rule severities (path ignores are applied by whoever reads the files). Default: built-in. */
  readonly config?: CheckConfig;
  /** Overrides the configuration's mode; a `kpull/mode` annotation overrides both for its object. */
  readonly mode?: Mode | undefined;
  /** Honour `kpull/ignore*` and `kpull/mode` annotations (default true). */
  readonly annotations?: boolean;
  /** The clock for `kpull/ignore-until`; default the system clock. */
  readonly now?: () => Date;
  /** How many files were read, for the summary. */
  readonly files?: number;
}

/** Parses the image and computes its effective policy under `mode`. */
export function analyse(use: ImageUse, mode: Mode): Subject {
  let parsed: ParsedImageName | null = null;
  let parseError: string | null = null;
  if (use.imageStatus === "string" && use.image !== null) {
    try {
      parsed = parseImageName(use.image);
    } catch (error) {
      if (!(error instanceof ImageNameError)) throw error;
      parseError = error.message;
    }
  }
  return {
    use,
    mode,
    parsed,
    parseError,
    policy: effectivePullPolicy(use.image ?? "", use.pullPolicy, use.containerType),
    pinned: parsed !== null && parsed.digest !== "",
  };
}

/** The severity of a rule under a configuration: the configured one, else the rule's default. */
export function ruleSeverity(rule: Rule, config: CheckConfig): SeverityOrOff {
  return config.rules[rule.id] ?? rule.defaultSeverity;
}

const CONTAINER_LABEL: Record<ImageUse["containerType"], string> = {
  container: "container",
  initContainer: "init container",
  ephemeralContainer: "ephemeral container",
  imageVolume: "image volume",
};

/** `container "app"`, `init container "setup"`, `image volume "models"`. */
export function describeContainer(use: ImageUse): string {
  return `${CONTAINER_LABEL[use.containerType]} ${use.container === null ? "(unnamed)" : JSON.stringify(use.container)}`;
}

/** `Deployment shop/web`. */
export function describeObject(use: { kind: string; namespace: string | null; name: string | null }): string {
  return `${use.kind} ${use.namespace === null ? "" : `${use.namespace}/`}${use.name ?? "(unnamed)"}`;
}

/** A key identifying the object a use belongs to: file, document and the List item path. */
export function objectKey(use: Pick<ImageUse, "file" | "document" | "path">): string {
  let n = 0;
  while (use.path[n] === "items" && typeof use.path[n + 1] === "number") n += 2;
  return `${use.file}\u0000${use.document}\u0000${use.path.slice(0, n).join("/")}`;
}

function expiryNote(set: ExemptionSet): string {
  const reason = set.reason === null ? "" : `; reason: ${JSON.stringify(set.reason)}`;
  return ` (the exemption by kpull/ignore ${set.until !== null && /^\d{4}-\d{2}-\d{2}$/.test(set.until) ? `expired after ${set.until}` : `has an invalid kpull/ignore-until ${JSON.stringify(set.until)}`}${reason})`;
}

/** Runs every enabled rule on every image use. */
export function checkImageUses(uses: readonly ImageUse[], options: CheckOptions = {}): CheckReport {
  const config = options.config ?? defaultConfig();
  const baseMode = options.mode ?? config.mode ?? DEFAULT_MODE;
  const now = (options.now ?? (() => new Date()))();
  const honour = options.annotations ?? true;
  const enabled = RULES.map((rule) => ({ rule, severity: ruleSeverity(rule, config) })).filter(
    (r): r is { rule: Rule; severity: Severity } => r.severity !== "off",
  );

  const findings: Finding[] = [];
  const suppressed: Finding[] = [];
  const evaluations: Evaluation[] = [];
  const warnings = new Set<string>();
  const objects = new Set<string>();

  for (const use of uses) {
    objects.add(objectKey(use));
    const exemptions = honour ? readExemptions(use, now) : null;
    for (const w of exemptions?.warnings ?? []) warnings.add(w);
    const mode = exemptions?.mode ?? baseMode;
    if (use.imageStatus === "missing") continue; // a template filled in later: nothing to judge
    const subject = analyse(use, mode);
    const invalid = use.imageStatus === "invalid-type" || subject.parseError !== null;
    for (const { rule, severity } of enabled) {
      if (invalid !== (rule.id === "invalid-image")) continue;
      if (rule.modes !== null && !rule.modes.includes(mode)) continue;
      const violation = rule.check(subject);
      if (violation === null) {
        evaluations.push({ use, rule: rule.id, severity, outcome: "pass", finding: null });
        continue;
      }
      const covering = exemptions?.sets.filter((s) => s.rules.has(rule.id)) ?? [];
      const inForce = covering.find((s) => !s.expired);
      const lapsed = inForce === undefined ? covering.find((s) => s.expired) : undefined;
      const set = inForce ?? lapsed ?? null;
      const exemption: Exemption | null =
        set === null
          ? null
          : { source: set.source, reason: set.reason, until: set.until, expired: set.expired };
      const key = use.imageKeyPosition ?? use.position;
      const end = use.imageEndPosition ?? key;
      const finding: Finding = {
        rule: rule.id,
        severity,
        file: use.file,
        line: key.line,
        column: key.column,
        endLine: end.line,
        endColumn: end.column,
        kind: use.kind,
        apiVersion: use.apiVersion,
        namespace: use.namespace,
        name: use.name,
        containerType: use.containerType,
        container: use.container,
        image: use.image,
        message: `${describeContainer(use)}: ${violation.message}${lapsed ? expiryNote(lapsed) : ""}`,
        mode,
        path: use.path,
        document: use.document,
        renderedFrom: use.renderedFrom,
        exemption,
        fix: violation.fix,
      };
      if (inForce !== undefined) suppressed.push(finding);
      else findings.push(finding);
      evaluations.push({
        use,
        rule: rule.id,
        severity,
        outcome: inForce !== undefined ? "suppressed" : "fail",
        finding,
      });
    }
  }

  const rules: Record<string, number> = {};
  for (const f of findings) rules[f.rule] = (rules[f.rule] ?? 0) + 1;
  const count = (s: Severity) => findings.filter((f) => f.severity === s).length;
  const summary: Summary = {
    mode: baseMode,
    files: options.files ?? new Set(uses.map((u) => u.file)).size,
    objects: objects.size,
    images: uses.length,
    errors: count("error"),
    warnings: count("warning"),
    notes: count("note"),
    suppressed: suppressed.length,
    rules,
  };
  return { findings, suppressed, evaluations, summary, warnings: [...warnings] };
}

/** Exit status for a report: 1 when any active finding has severity error, else 0. */
export function reportExitCode(report: CheckReport): 0 | 1 {
  return report.summary.errors > 0 ? 1 : 0;
}
