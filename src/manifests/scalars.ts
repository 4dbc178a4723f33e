// Which YAML scalars are strings, as kubectl decides: sigs.k8s.io/yaml decodes with go-yaml v2 into untyped
// values (resolve.go `resolve`, decode.go `scalar`). The documents are parsed with the failsafe schema, so
// every scalar arrives as its text and this file alone says what it means.

import type { Scalar } from "yaml";

const CORE = "tag:yaml.org,2002:";

/** go-yaml v2's `resolveMap`: plain scalars that are booleans, nulls, infinities, NaN or the merge key. */
const RESOLVED_WORDS = new Set([
  ...["y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"],
  ...["n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"],
  ...["~", "null", "Null", "NULL"],
  ...[".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"],
  "<<",
]);

const NULL_WORDS = new Set(["", "~", "null", "Null", "NULL"]);

/** go-yaml v2's `yamlStyleFloat`. */
const YAML_STYLE_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
/** What Go's strconv.ParseInt(s, 0, 64) accepts (after go-yaml removed underscores), ignoring overflow. */
const GO_INT = /^[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[0-9]+)$/;
/** What Go's strconv.ParseFloat accepts for a plain scalar starting with a dot. */
const DOT_FLOAT = /^\.[0-9]+([eE][-+]?[0-9]+)?$/;

/** Whether go-yaml v2 reads this plain (unquoted, untagged) scalar as a string. */
export function plainIsString(text: string): boolean {
  if (text === "") return false; // null
  const first = text[0] as string;
  if ("yYnNtTfFoO~".includes(first)) return !RESOLVED_WORDS.has(text);
  if (first === ".")
    return !RESOLVED_WORDS.has(text) && !(DOT_FLOAT.test(text) && Number.isFinite(Number(text)));
  if (first === "+" || first === "-" || (first >= "0" && first <= "9")) {
    if (RESOLVED_WORDS.has(text)) return false;
    // Timestamps (2001-12-14) resolve as such but go-yaml keeps them as strings in untyped values; they never
    // match a number below, so they stay strings here too.
    const plain = text.replaceAll("_", "");
    if (GO_INT.test(plain)) return false;
    // strconv.ParseFloat fails on overflow ("1e999"), and go-yaml then keeps the string.
    return !(YAML_STYLE_FLOAT.test(plain) && Number.isFinite(Number(plain)));
  }
  return true;
}

/** The string a scalar holds for kubectl, or null when it is a number, boolean, null or other non-string. */
export function scalarString(node: Scalar): string | null {
  const value = node.value;
  if (typeof value !== "string") return null; // the merge key's symbol
  const tag = node.tag;
  if (tag !== undefined && tag !== "!") {
    if (tag === `${CORE}str` || tag === `${CORE}timestamp`) return value;
    if (tag.startsWith(CORE)) return null;
    // An application tag (`!Ref`): go-yaml resolves the scalar as if untagged.
  }
  if (node.type !== "PLAIN" || tag === "!") return value;
  return plainIsString(value) ? value : null;
}

/** Whether kubectl reads this scalar as null (`key:`, `~`, `null`, `!!null`). */
export function scalarIsNull(node: Scalar): boolean {
  if (node.tag === `${CORE}null`) return true;
  if (node.tag !== undefined || node.type !== "PLAIN") return false;
  return typeof node.value === "string" && NULL_WORDS.has(node.value);
}
