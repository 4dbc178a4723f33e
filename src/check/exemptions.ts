// Per-object exemptions by annotation, on the object or on its pod template (as kube-score reads them):
//
//   kpull/ignore: floating-tag,pull-policy   rules to skip for every image of the object
//   kpull/ignore-reason: "vendor image, tracked in OPS-123"
//   kpull/ignore-until: 2026-03-31          the exemption holds through that day (UTC); after it the
//                                           findings return, with a note saying the exemption expired
//   kpull/mode: pinned                      the mode for this object
//
// Each of the two places (object, template) is read on its own: its ignore list goes with its own reason
// and date. A malformed annotation never suppresses anything; it yields a warning.

import type { ImageUse } from "../manifests/index.ts";
import { isRuleId, RULE_IDS } from "./rules/index.ts";
import { isMode, MODES, type Mode, type RuleId } from "./types.ts";

export const ANNOTATION_IGNORE = "kpull/ignore";
export const ANNOTATION_REASON = "kpull/ignore-reason";
export const ANNOTATION_UNTIL = "kpull/ignore-until";
export const ANNOTATION_MODE = "kpull/mode";

export interface ExemptionSet {
  readonly source: "object" | "template";
  readonly rules: ReadonlySet<RuleId>;
  readonly reason: string | null;
  readonly until: string | null;
  /** The date has passed (or is not a date): the exemption no longer suppresses anything. */
  readonly expired: boolean;
}

export interface ObjectExemptions {
  readonly sets: readonly ExemptionSet[];
  /** The `kpull/mode` annotation (template first, it is nearer the containers), when valid. */
  readonly mode: Mode | null;
  readonly warnings: readonly string[];
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Whether `value` is a calendar date written YYYY-MM-DD. */
export function isCalendarDate(value: string): boolean {
  const m = DATE.exec(value);
  if (m === null) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

/** Today's date in UTC, YYYY-MM-DD. */
export function utcDate(now: Date): string {
  return now.toISOString().slice(0, 10);
}

function where(use: ImageUse, source: "object" | "template"): string {
  const name = `${use.kind} ${use.namespace === null ? "" : `${use.namespace}/`}${use.name ?? "(unnamed)"}`;
  return `${use.file}: ${name}${source === "template" ? " (pod template)" : ""}`;
}

/** Reads the exemptions of the object `use` belongs to. `now` decides whether ignore-until has passed. */
export function readExemptions(use: ImageUse, now: Date): ObjectExemptions {
  const sets: ExemptionSet[] = [];
  const warnings: string[] = [];
  let mode: Mode | null = null;
  const today = utcDate(now);
  const sources: ["object" | "template", Readonly<Record<string, string>>][] = [
    ["template", use.templateAnnotations],
    ["object", use.annotations],
  ];
  for (const [source, annotations] of sources) {
    const modeValue = annotations[ANNOTATION_MODE];
    if (modeValue !== undefined) {
      const trimmed = modeValue.trim();
      if (isMode(trimmed)) mode ??= trimmed;
      else
        warnings.push(
          `${where(use, source)}: ${ANNOTATION_MODE} ${JSON.stringify(modeValue)} is not one of ${MODES.join(", ")}; ignored`,
        );
    }
    const list = annotations[ANNOTATION_IGNORE];
    const reason = annotations[ANNOTATION_REASON] ?? null;
    const until = annotations[ANNOTATION_UNTIL] ?? null;
    if (list === undefined) {
      if (until !== null || reason !== null)
        warnings.push(
          `${where(use, source)}: ${until !== null ? ANNOTATION_UNTIL : ANNOTATION_REASON} without ${ANNOTATION_IGNORE} has no effect`,
        );
      continue;
    }
    const rules = new Set<RuleId>();
    for (const raw of list.split(",")) {
      const id = raw.trim();
      if (id === "") continue;
      if (isRuleId(id)) rules.add(id);
      else
        warnings.push(
          `${where(use, source)}: ${ANNOTATION_IGNORE} names unknown rule ${JSON.stringify(id)} (rules: ${RULE_IDS.join(", ")})`,
        );
    }
    let expired = false;
    if (until !== null) {
      const date = until.trim();
      if (!isCalendarDate(date)) {
        warnings.push(
          `${where(use, source)}: ${ANNOTATION_UNTIL} ${JSON.stringify(until)} is not a date (YYYY-MM-DD); the exemption is not applied`,
        );
        expired = true;
      } else expired = today > date;
    }
    sets.push({ source, rules, reason, until: until?.trim() ?? null, expired });
  }
  return { sets, mode, warnings };
}
