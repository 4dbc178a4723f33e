// The shapes shared by rules, the engine, reporters, fix and pin.

import type { ImageUse } from "../manifests/index.ts";
import type { EffectivePolicy, ParsedImageName, PullPolicy } from "../policy/index.ts";

/** Severities, as SARIF levels. */
export type Severity = "error" | "warning" | "note";
export const SEVERITIES: readonly Severity[] = Object.freeze(["error", "warning", "note"]);
export type SeverityOrOff = Severity | "off";

/**
 * Which pull policies a cluster allows:
 * - `always`: only Always (kube-score's rule);
 * - `always-unless-pinned`: Always, or IfNotPresent when the image is pinned by digest (the default);
 * - `pinned`: Always or IfNotPresent (and every image must carry a digest: rule unpinned-image);
 * - `never`: only Never, for air-gapped nodes with pre-pulled images.
 */
export type Mode = "always" | "always-unless-pinned" | "pinned" | "never";
export const MODES: readonly Mode[] = Object.freeze(["always", "always-unless-pinned", "pinned", "never"]);
export const DEFAULT_MODE: Mode = "always-unless-pinned";

export function isMode(value: unknown): value is Mode {
  return typeof value === "string" && (MODES as readonly string[]).includes(value);
}

export type RuleId = "invalid-image" | "floating-tag" | "pull-policy" | "unpinned-image";

/** One image use as the rules see it: parsed once, with its effective policy and the mode that applies. */
export interface Subject {
  readonly use: ImageUse;
  /** The mode for this object (configuration, flag, or the object's `kpull/mode` annotation). */
  readonly mode: Mode;
  /** The parsed image; null when the image is missing, not a string, or does not parse. */
  readonly parsed: ParsedImageName | null;
  /** Why the image does not parse (the kubelet's InvalidImageName text), else null. */
  readonly parseError: string | null;
  /** The policy as written and as the API server leaves it after defaulting. */
  readonly policy: EffectivePolicy;
  /** The image carries a (valid) digest. */
  readonly pinned: boolean;
}

/** How to make a finding go away by setting the pull policy (what `kpull fix` writes). */
export interface PolicyFix {
  /** `imagePullPolicy`, or `pullPolicy` for an image volume. */
  readonly field: "imagePullPolicy" | "pullPolicy";
  readonly value: PullPolicy;
}

/** What a rule returns for a subject it flags. */
export interface Violation {
  readonly message: string;
  /** A policy that satisfies the rule, when setting the policy is the fix; null otherwise. */
  readonly fix: PolicyFix | null;
}

/** A rule: data plus one pure function (kube-score's model). */
export interface Rule {
  readonly id: RuleId;
  /** PascalCase name, for SARIF. */
  readonly name: string;
  /** One line: what the rule flags. */
  readonly description: string;
  /** Why it matters and how to fix it. */
  readonly help: string;
  readonly defaultSeverity: Severity;
  /** SARIF tags; `security` makes GitHub rank the alert by `securitySeverity`. */
  readonly tags: readonly string[];
  /** SARIF `security-severity` (0.0–10.0), or null for a rule that is not about security. */
  readonly securitySeverity: string | null;
  /** The modes the rule runs in; null for every mode. */
  readonly modes: readonly Mode[] | null;
  /** The violation for this subject, or null when it passes. Never called for an image that does not parse,
   * except by invalid-image itself. */
  readonly check: (subject: Subject) => Violation | null;
}

/** An exemption that applied (or has expired) for a finding. */
export interface Exemption {
  /** The annotation that holds the rule list: `kpull/ignore`, on the object or its pod template. */
  readonly source: "object" | "template";
  readonly reason: string | null;
  /** `kpull/ignore-until` as written (YYYY-MM-DD), or null. */
  readonly until: string | null;
  /** The date has passed: the finding is reported again, with a note. */
  readonly expired: boolean;
}

export interface Finding {
  readonly rule: RuleId;
  readonly severity: Severity;
  readonly file: string;
  /** The line and column of the `image:` key (image volume: `reference:`), else where the image would be. */
  readonly line: number;
  readonly column: number;
  /** Where the image value ends (exclusive), for SARIF regions; the key's line and column when missing. */
  readonly endLine: number;
  readonly endColumn: number;
  readonly kind: string;
  readonly apiVersion: string | null;
  readonly namespace: string | null;
  readonly name: string | null;
  readonly containerType: ImageUse["containerType"];
  /** Container name, or the volume name for an image volume. */
  readonly container: string | null;
  readonly image: string | null;
  readonly message: string;
  readonly mode: Mode;
  /** The path from the document root to the container or volume. */
  readonly path: readonly (string | number)[];
  readonly document: number;
  readonly renderedFrom: string | null;
  /** Set when an annotation exempts the finding (then it is not counted) or did until it expired. */
  readonly exemption: Exemption | null;
  readonly fix: PolicyFix | null;
}

/** The outcome of one rule on one image use, for reports that list passing checks too (JUnit). */
export interface Evaluation {
  readonly use: ImageUse;
  readonly rule: RuleId;
  readonly severity: Severity;
  /** `pass`; `fail` (a finding in `findings`); `suppressed` (a finding exempted by annotation). */
  readonly outcome: "pass" | "fail" | "suppressed";
  readonly finding: Finding | null;
}

export interface Summary {
  readonly mode: Mode;
  readonly files: number;
  /** Objects carrying a pod spec that were checked. */
  readonly objects: number;
  /** Image uses (containers of every type and image volumes). */
  readonly images: number;
  readonly errors: number;
  readonly warnings: number;
  readonly notes: number;
  readonly suppressed: number;
  /** Active findings per rule id. */
  readonly rules: Readonly<Record<string, number>>;
}

export interface CheckReport {
  /** Active findings (exempted ones left out), in input order. */
  readonly findings: readonly Finding[];
  /** Findings exempted by a `kpull/ignore` annotation that is still in force. */
  readonly suppressed: readonly Finding[];
  readonly evaluations: readonly Evaluation[];
  readonly summary: Summary;
  /** Problems with annotations (unknown rule ids, bad dates, bad modes): for stderr. */
  readonly warnings: readonly string[];
}

export type { PullPolicy };
