// Text edits on a manifest that leave every other byte as it was: replace a scalar in its own quoting style,
// replace an alias with a value, insert a key into a block or flow map with the map's indentation, quoting
// and line ends. Node positions come from the `yaml` package's source ranges (eemeli/yaml keeps documents,
// nodes and source ranges apart), so nothing is ever re-serialized.

import { isAlias, isScalar, type Node, type Pair, type Scalar, type YAMLMap } from "yaml";

export interface TextEdit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/** Applies non-overlapping edits (in any order); throws when two overlap. */
export function applyEdits(text: string, edits: readonly TextEdit[]): string {
  const sorted = [...edits].sort((a, b) => a.start - b.start || a.end - b.end);
  let out = "";
  let at = 0;
  for (const e of sorted) {
    if (e.start < at) throw new Error(`overlapping edits at offset ${e.start}`);
    out += text.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + text.slice(at);
}

/** The line break the file uses: CRLF when the first line break is one, else LF. */
export function lineBreak(text: string): string {
  const i = text.indexOf("\n");
  return i > 0 && text[i - 1] === "\r" ? "\r\n" : "\n";
}

type Style = "PLAIN" | "QUOTE_DOUBLE" | "QUOTE_SINGLE";

function styleOf(node: Node | null | undefined): Style {
  if (isScalar(node) && (node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE")) return node.type;
  return "PLAIN";
}

/** A scalar in the given style; the values written here (policies, image references) need no escapes. */
export function renderScalar(value: string, style: Style): string {
  if (style === "QUOTE_DOUBLE") return JSON.stringify(value);
  if (style === "QUOTE_SINGLE") return `'${value.replace(/'/g, "''")}'`;
  return value;
}

/**
 * Replaces the value `node` (a scalar, an alias, or any value of the wrong type) with `value`, keeping a
 * scalar's quoting style. A block scalar becomes a plain scalar on the same line, its line break kept.
 */
export function replaceValue(text: string, base: number, node: Node, value: string): TextEdit {
  const range = node.range;
  if (!range) throw new Error("node without a source range");
  const start = base + range[0];
  const end = base + range[1];
  if (isAlias(node)) return { start, end, text: value };
  if (isScalar(node) && (node.type === "BLOCK_LITERAL" || node.type === "BLOCK_FOLDED")) {
    const old = text.slice(start, end);
    const brk = old.endsWith("\r\n") ? "\r\n" : old.endsWith("\n") ? "\n" : "";
    return { start, end, text: value + brk };
  }
  if (start === end) {
    // An empty value (`key:`): put a space after the colon.
    return { start, end, text: text[start - 1] === ":" ? ` ${value}` : value };
  }
  return { start, end, text: renderScalar(value, styleOf(node)) };
}

function lineStartOf(text: string, offset: number): number {
  return text.lastIndexOf("\n", offset - 1) + 1;
}

function pairEnd(pair: Pair): number {
  const v = pair.value as Node | null;
  return v?.range?.[1] ?? (pair.key as Node | null)?.range?.[1] ?? 0;
}

/**
 * Inserts `key: value` into `map` right after the pair `after` (a pair of `map`), in the map's own layout:
 * a block map gets a new line indented like `after`'s key; a flow map written one key per line gets
 * `,<line break><indent>key: value`, one written on a line gets `, key: value`. The key and value are
 * quoted like `after`'s key and value (JSON stays JSON).
 */
export function insertPair(
  text: string,
  base: number,
  map: YAMLMap,
  after: Pair,
  key: string,
  value: string,
): TextEdit {
  const keyNode = after.key as Node | null;
  const keyStart = base + (keyNode?.range?.[0] ?? 0);
  const lineStart = lineStartOf(text, keyStart);
  const before = text.slice(lineStart, keyStart);
  const keyStyle = styleOf(keyNode);
  const valueStyle = isScalar(after.value) ? styleOf(after.value as Scalar) : keyStyle;
  const entry = `${renderScalar(key, keyStyle)}: ${renderScalar(value, valueStyle)}`;
  const brk = lineBreak(text);
  const end = base + pairEnd(after);
  if (map.flow) {
    const ownLine = /^[ \t]*$/.test(before);
    return {
      start: end,
      end,
      text: ownLine ? `,${brk}${before}${entry}` : `, ${entry}`,
    };
  }
  // Block map: the key's column, as spaces (it may follow `- ` on its line).
  const indent = /^[ \t]*$/.test(before) ? before : " ".repeat(keyStart - lineStart);
  let at: number;
  if (end > 0 && text[end - 1] === "\n") at = end;
  else {
    const nl = text.indexOf("\n", end);
    if (nl < 0) return { start: text.length, end: text.length, text: `${brk}${indent}${entry}` };
    at = nl + 1;
  }
  return { start: at, end: at, text: `${indent}${entry}${brk}` };
}
