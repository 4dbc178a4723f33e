// The rule registry: every rule, in the order they run and are listed. Ids are stable.

import type { Rule, RuleId } from "../types.ts";
import { floatingTag } from "./floating-tag.ts";
import { invalidImage } from "./invalid-image.ts";
import { pullPolicy } from "./pull-policy.ts";
import { unpinnedImage } from "./unpinned-image.ts";

export const RULES: readonly Rule[] = Object.freeze([invalidImage, floatingTag, pullPolicy, unpinnedImage]);

export const RULE_IDS: readonly RuleId[] = Object.freeze(RULES.map((r) => r.id));

export function isRuleId(value: unknown): value is RuleId {
  return typeof value === "string" && (RULE_IDS as readonly string[]).includes(value);
}

export function ruleById(id: RuleId): Rule {
  const rule = RULES.find((r) => r.id === id);
  if (rule === undefined) throw new Error(`unknown rule ${id}`);
  return rule;
}
