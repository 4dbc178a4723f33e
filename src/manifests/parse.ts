// From manifest text to ImageUses: the pure core of the module.
//
// YAML is read as kubectl reads it (sigs.k8s.io/yaml, which decodes with go-yaml v2):
// - scalars resolve as in go-yaml v2 (scalars.ts): `yes`/`on` are booleans, `1.0` a number, a date a string;
// - `<<` merge keys (plain `<<` only; a quoted "<<" is an ordinary key), applied in place in key order as
//   go-yaml v2 does: a merge overrides keys written before it, keys written after it override the merge, and
//   of several merged maps (`<<: [*a, *b]`) the earlier one wins;
// - duplicate keys are allowed and the last one wins;
// - a stream that is not YAML but several JSON values one after another (`{...}{...}`) is read as one
//   document per value, as kubectl's YAML-or-JSON decoder does.
//
// The document is never converted to plain data. Values are looked up in the node tree, so that every
// position points at where the value is written, also through aliases and merge keys. Alias bombs are refused
// as kubectl refuses them (go-yaml's excessive-aliasing rule, computed without expanding anything); beyond
// that, only the few paths that lead to images are followed, and every step along them is charged to a budget
// proportional to the document's size, so no input makes the reader do more than linear work. Nothing
// recurses on the document's nesting except the parser, whose exhausted stack becomes a ManifestError.
//
// Order of the ImageUses: file order, then document order, then List items in order (nested Lists depth
// first), then within one pod spec the kubelet's start order: image volumes (pulled in SyncPod before any
// container is created, kubelet.md §1.3), init containers, containers, ephemeral containers (added to a
// running pod, so last); within each list, source order.
//
// Lenient on types, as a linter should be (kubeconform checks schemas): a pod spec path, container list or
// volume list that is missing or not of the expected type yields nothing, and so does a container or volume
// entry that is not a map; a non-string `kind`, `name` or `namespace` reads as null; a non-string image is
// reported with `imageStatus: "invalid-type"`. A document that is not a map (a scalar, a list, an empty
// document) is skipped. Any object with an `items` list is a List (kubectl's rule), whatever its kind.

import {
  type Alias,
  CST,
  type Document,
  type DocumentOptions,
  isAlias,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  Lexer,
  type Node,
  type ParseOptions,
  parseAllDocuments,
  type SchemaOptions,
  type YAMLMap,
} from "yaml";
import { CONTAINER_FIELDS, podSpecPaths, podTemplateMetadataPath } from "./kinds.ts";
import { scalarIsNull, scalarString } from "./scalars.ts";
import {
  type ContainerType,
  type ImageStatus,
  type ImageUse,
  ManifestError,
  type SourcePosition,
} from "./types.ts";

/**
 * Nesting deeper than this is refused before the YAML parser runs. The parser builds its syntax tree for
 * the whole text (about 1.5 KB a level) before its recursion gives out, so 4 MB of "[" took 3.6 GB and 40 s
 * to refuse, and a file at the 16 MiB limit would exhaust memory; "- - - …" and "? ? ? …" nest the same way
 * in block context. No manifest nests more than a few dozen levels.
 */
const MAX_NESTING = 1000;
/** Lists inside Lists deeper than this are refused (kubectl flattens any depth; real files use one level). */
const MAX_LIST_DEPTH = 32;
/** Merge keys whose merged maps merge further maps, deeper than this, are refused. */
const MAX_MERGE_DEPTH = 64;
/** Lookup steps allowed per document: this much plus STEPS_PER_NODE for each node in the document. */
const BASE_STEPS = 100_000;
const STEPS_PER_NODE = 20;

type Path = readonly (string | number)[];

/** Characters YAML does not allow in a stream (go-yaml: "control characters are not allowed"). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters to refuse
const CONTROL_CHARACTER = /[\u0001-\u0008\u000B\u000C\u000E-\u001F\u007F-\u0084\u0086-\u009F]/;
const LONE_CR = /\r(?!\n)/g;

/**
 * Every image used by a pod spec in `text`, the content of `file` (used only for messages and positions).
 * Throws ManifestError for input that is not text, not YAML, or hostile (alias bombs, cyclic anchors).
 */
export function imageUsesFromText(text: string, file: string): ImageUse[] {
  return readText(text, file, null);
}

/**
 * The YAML behind one ImageUse, for tools that edit the text in place (`kpull fix`, `kpull pin`). Offsets in
 * node ranges are relative to the parsed text, which starts at `base` in the file's text (base is 0 except
 * for JSON values written one after another); the file's text is the one given, less a byte order mark.
 */
export interface ImageUseNodes {
  readonly use: ImageUse;
  readonly base: number;
  /** The map holding the image and policy keys: the container, or an image volume's `image` map. */
  readonly map: YAMLMap;
  /** `image` or, for an image volume, `reference`. */
  readonly imageKey: string;
  /** `imagePullPolicy` or, for an image volume, `pullPolicy`. */
  readonly policyKey: string;
  readonly image: FieldNodes | null;
  readonly policy: FieldNodes | null;
}

/** A key of `ImageUseNodes.map` as kubectl reads it (the last assignment, merge keys applied). */
export interface FieldNodes {
  readonly key: Node;
  /** The value as written under that key: an Alias, a Scalar, a collection, or null when empty. */
  readonly written: Node | null;
  /** The value after following an alias. */
  readonly value: Node | null;
  /** The key was found in a map merged with `<<`, not written in `map` itself. */
  readonly merged: boolean;
}

/**
 * imageUsesFromText with the YAML nodes behind each use (same uses, same order), except image volumes whose
 * `image` is not a map, which have nothing to edit. Each call parses anew: the nodes belong to the caller.
 */
export function imageUseNodesFromText(text: string, file: string): ImageUseNodes[] {
  const nodes: ImageUseNodes[] = [];
  readText(text, file, nodes);
  return nodes;
}

function readText(text: string, file: string, nodes: ImageUseNodes[] | null): ImageUse[] {
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  const lines = new LineIndex(text, file);
  const nul = text.indexOf("\u0000");
  if (nul >= 0) throw new ManifestError(file, "not a text file (it contains NUL bytes)");
  const control = CONTROL_CHARACTER.exec(text);
  if (control !== null) {
    const at = lines.position(control.index);
    const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, "0");
    throw new ManifestError(file, `control character U+${code} is not allowed in YAML`, at.line, at.column);
  }
  // YAML allows a lone CR as a line break; the parser does not. Same length, so offsets are unchanged.
  const source = text.includes("\r") ? text.replace(LONE_CR, "\n") : text;

  const out: ImageUse[] = [];
  for (const [index, unit] of parseStream(source, lines).entries()) {
    if (unit.doc === null) continue;
    const reader = new DocumentReader(unit.doc, unit.base, index, lines, source, out, nodes);
    reader.read();
  }
  return out;
}

interface StreamUnit {
  readonly doc: Document.Parsed | null;
  /** Offset of the parsed text within the file's text. */
  readonly base: number;
}

const PARSE_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  // Every scalar stays text; scalars.ts resolves them as go-yaml v2 does. `<<` is still recognised.
  schema: "failsafe",
  merge: true,
  uniqueKeys: false,
  prettyErrors: false,
};

/**
 * Refuses text that nests deeper than MAX_NESTING, with the streaming lexer (flat memory, linear time): flow
 * collections by their brackets, block collections by the indicators on one line plus half its indentation.
 * Text with fewer brackets than the limit and no line long enough to hold that many levels is let through
 * without lexing.
 */
function checkNesting(source: string, file: string): void {
  let brackets = 0;
  let longest = 0;
  let lineStart = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) brackets++;
    else if (c === 0x0a) {
      if (i - lineStart > longest) longest = i - lineStart;
      lineStart = i + 1;
    }
  }
  if (source.length - lineStart > longest) longest = source.length - lineStart;
  if (brackets <= MAX_NESTING && longest <= 2 * MAX_NESTING) return;
  let flow = 0;
  let line = 1;
  let column = 1;
  let block = 0;
  let lineBegins = true;
  for (const token of new Lexer().lex(source)) {
    const type = CST.tokenType(token);
    if (type === "newline") {
      line++;
      column = 1;
      block = 0;
      lineBegins = true;
      continue;
    }
    if (type === "space" && lineBegins) block = Math.floor(token.length / 2);
    else if (type === "flow-seq-start" || type === "flow-map-start") flow++;
    else if (type === "flow-seq-end" || type === "flow-map-end") flow = Math.max(0, flow - 1);
    else if (
      flow === 0 &&
      (type === "seq-item-ind" || type === "explicit-key-ind" || type === "map-value-ind")
    )
      block++;
    lineBegins = false;
    if (flow + block > MAX_NESTING)
      throw new ManifestError(file, "document is nested too deeply", line, column);
    // Marker tokens (document mode, scalar start) are single control characters, not text.
    if (!(token.length === 1 && token.charCodeAt(0) < 0x20 && token !== "\t")) column += token.length;
  }
}

function parseDocuments(source: string, file: string): Document.Parsed[] {
  checkNesting(source, file);
  try {
    return parseAllDocuments(source, PARSE_OPTIONS) as Document.Parsed[];
  } catch (error) {
    // The parser recurses on nesting; a hostile document can exhaust the stack. Any other throw is a parser
    // fault on strange input: still the input's problem from the user's point of view.
    const reason =
      error instanceof RangeError
        ? "document is nested too deeply"
        : `cannot parse: ${(error as Error).message}`;
    throw new ManifestError(file, reason);
  }
}

function parseStream(source: string, lines: LineIndex): StreamUnit[] {
  const docs = parseDocuments(source, lines.file);
  const failed = docs.find((doc) => doc.errors.length > 0);
  if (failed === undefined) return docs.map((doc) => ({ doc: isMap(doc.contents) ? doc : null, base: 0 }));

  // Not YAML; perhaps JSON values one after another, which kubectl's decoder accepts.
  const segments = jsonValueSegments(source);
  if (segments !== null && segments.length > 1) {
    const units: StreamUnit[] = [];
    for (const [start, end] of segments) {
      const [doc, ...rest] = parseDocuments(source.slice(start, end), lines.file);
      if (doc === undefined || rest.length > 0 || doc.errors.length > 0) return yamlError(failed, 0, lines);
      units.push({ doc: isMap(doc.contents) ? doc : null, base: start });
    }
    return units;
  }
  return yamlError(failed, 0, lines);
}

function yamlError(doc: Document.Parsed, base: number, lines: LineIndex): never {
  const error = doc.errors[0];
  const offset = base + (error?.pos[0] ?? 0);
  const at = lines.position(offset);
  const message = error?.message ?? "unknown error";
  // The parser recurses on nesting and reports an exhausted stack as an error of the document.
  const reason = /call stack/i.test(message) ? "document is nested too deeply" : `invalid YAML: ${message}`;
  throw new ManifestError(lines.file, reason, at.line, at.column);
}

/**
 * The [start, end) offsets of top-level JSON objects or arrays written one after another, separated only
 * by whitespace; null when the text is not such a stream. Only the brackets are matched: each value is parsed
 * afterwards.
 */
export function jsonValueSegments(text: string): [number, number][] | null {
  const segments: [number, number][] = [];
  let i = skipJsonSpace(text, 0);
  while (i < text.length) {
    const open = text[i];
    if (open !== "{" && open !== "[") return null;
    const start = i;
    let depth = 0;
    let inString = false;
    for (; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (c === "\\") i++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        depth--;
        if (depth === 0) break;
      }
    }
    if (depth !== 0 || i >= text.length) return null;
    segments.push([start, i + 1]);
    i = skipJsonSpace(text, i + 1);
  }
  return segments;
}

function skipJsonSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r"))
    i++;
  return i;
}

/** Offsets to 1-based line and column. */
class LineIndex {
  readonly file: string;
  readonly #starts: number[] = [0];

  constructor(text: string, file: string) {
    this.file = file;
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) this.#starts.push(i + 1);
    // Lone CRs end lines too (they are read as LF).
    if (text.includes("\r")) {
      for (const m of text.matchAll(LONE_CR)) this.#starts.push(m.index + 1);
      this.#starts.sort((a, b) => a - b);
    }
  }

  position(offset: number): SourcePosition {
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.#starts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { file: this.file, line: lo + 1, column: offset - (this.#starts[lo] ?? 0) + 1 };
  }
}

/** A node reached from a lookup, after following an alias. */
interface Resolved {
  readonly node: Node | null;
  /** Reached through an alias or merge key somewhere on the way. */
  readonly shared: boolean;
}

/** A key found in a map (possibly in a merged map). */
interface Found {
  readonly key: Node;
  /** The value as written; may be an alias. */
  readonly value: Node | null;
  /** Found in a map merged with `<<`. */
  readonly merged: boolean;
}

interface FieldValue {
  readonly status: ImageStatus;
  readonly value: string | null;
  /** Where the value is written; null when missing. */
  readonly valueOffset: number | null;
  readonly valueEnd: number | null;
  readonly keyOffset: number | null;
  readonly shared: boolean;
  /** The nodes behind the value, when the key is present. */
  readonly nodes: FieldNodes | null;
}

const MISSING: FieldValue = {
  status: "missing",
  value: null,
  valueOffset: null,
  valueEnd: null,
  keyOffset: null,
  shared: false,
  nodes: null,
};

interface ObjectInfo {
  readonly kind: string;
  readonly apiVersion: string | null;
  readonly namespace: string | null;
  readonly name: string | null;
  readonly annotations: Readonly<Record<string, string>>;
  readonly templateAnnotations: Readonly<Record<string, string>>;
}

class DocumentReader {
  readonly #doc: Document.Parsed;
  readonly #base: number;
  readonly #index: number;
  readonly #lines: LineIndex;
  readonly #out: ImageUse[];
  readonly #nodes: ImageUseNodes[] | null;
  /** Each alias and the node it names. */
  readonly #aliasOf = new Map<Alias, Node>();
  /** Nodes named by some alias: written once, used more than once. */
  readonly #aliasTargets = new Set<Node>();
  readonly #entriesCache = new Map<YAMLMap, ReadonlyMap<string, Found>>();
  readonly #lookupCache = new Map<YAMLMap, Map<string, Found | null>>();
  readonly #renderedFrom: string | null;
  #steps: number;

  constructor(
    doc: Document.Parsed,
    base: number,
    index: number,
    lines: LineIndex,
    source: string,
    out: ImageUse[],
    collect: ImageUseNodes[] | null,
  ) {
    this.#doc = doc;
    this.#nodes = collect;
    this.#base = base;
    this.#index = index;
    this.#lines = lines;
    this.#out = out;
    const nodes = this.#indexAnchors();
    this.#steps = BASE_STEPS + STEPS_PER_NODE * nodes;
    // The first document's range starts after its leading comments; later ones start at their `---`.
    const start = index === 0 ? 0 : base + doc.range[0];
    this.#renderedFrom = helmSource(source, start, base + (doc.contents?.range?.[0] ?? 0));
  }

  read(): void {
    const root = this.#deref(this.#doc.contents, false);
    if (isMap(root.node)) this.#readObject(root.node, [], root.shared, null, 0);
  }

  /**
   * Walks the whole document once, in document order and without recursion (nesting depth cannot exhaust the
   * stack), to bind each alias to the anchor in effect where the alias is written (the last one with that
   * name before it), to refuse aliases of unknown anchors and anchors that contain their own alias, and to
   * apply go-yaml's rule against alias bombs (see excessiveAliasing). Returns the number of nodes.
   */
  #indexAnchors(): number {
    interface Frame {
      readonly node: Node | null;
      readonly children: readonly unknown[];
      next: number;
      size: number;
      aliases: number;
    }
    const anchors = new Map<string, Node>();
    const open = new Set<Node>();
    const expanded = new Map<Node, { size: number; aliases: number }>();
    const root: Frame = { node: null, children: [this.#doc.contents], next: 0, size: 1, aliases: 0 };
    const stack: Frame[] = [root];
    let count = 0;
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as Frame;
      if (top.next >= top.children.length) {
        stack.pop();
        const parent = stack[stack.length - 1];
        if (top.node !== null && top.node.anchor !== undefined) {
          open.delete(top.node);
          expanded.set(top.node, { size: top.size, aliases: top.aliases });
        }
        if (parent !== undefined) {
          parent.size += top.size;
          parent.aliases += top.aliases;
        }
        continue;
      }
      const n = top.children[top.next++];
      if (n === null || n === undefined) continue;
      if (isPair(n)) {
        // go-yaml does not decode a merge key itself, only its value.
        stack.push({
          node: null,
          children: isMergeKey(n.key) ? [n.value] : [n.key, n.value],
          next: 0,
          size: 0,
          aliases: 0,
        });
        continue;
      }
      count++;
      if (isAlias(n)) {
        const target = anchors.get(n.source);
        const offset = n.range?.[0] ?? 0;
        if (target === undefined) throw this.#error(offset, `unknown anchor '${n.source}' referenced`);
        if (open.has(target)) throw this.#error(offset, `anchor '${n.source}' value contains itself`);
        const inner = expanded.get(target) ?? { size: 1, aliases: 0 };
        top.size += 1 + inner.size;
        top.aliases += 1 + inner.aliases;
        this.#aliasOf.set(n, target);
        this.#aliasTargets.add(target);
      } else if (isScalar(n)) {
        if (n.anchor !== undefined) {
          anchors.set(n.anchor, n);
          expanded.set(n, { size: 1, aliases: 0 });
        }
        top.size += 1;
      } else if (isMap(n) || isSeq(n)) {
        // An anchor is in effect from its node's start: an alias inside the node refers to the node itself.
        if (n.anchor !== undefined) {
          anchors.set(n.anchor, n);
          open.add(n);
        }
        stack.push({ node: n, children: n.items, next: 0, size: 1, aliases: 0 });
      }
    }
    if (excessiveAliasing(root.size, root.aliases)) {
      const offset = this.#doc.contents?.range?.[0] ?? 0;
      throw this.#error(offset, "document contains excessive aliasing (an alias bomb?)");
    }
    return count;
  }

  #error(offset: number, reason: string): ManifestError {
    const at = this.#lines.position(this.#base + offset);
    return new ManifestError(this.#lines.file, reason, at.line, at.column);
  }

  #position(offset: number): SourcePosition {
    return this.#lines.position(this.#base + offset);
  }

  #step(offset: number): void {
    if (--this.#steps < 0) {
      throw this.#error(
        offset,
        `document ${this.#index} expands too many aliases or merge keys (an alias bomb?)`,
      );
    }
  }

  /** Follows an alias to the node it names. */
  #deref(node: unknown, shared: boolean): Resolved {
    if (isAlias(node)) {
      this.#step(node.range?.[0] ?? 0);
      return { node: this.#aliasOf.get(node) ?? null, shared: true };
    }
    if (!(isScalar(node) || isMap(node) || isSeq(node))) return { node: null, shared };
    return { node, shared: shared || this.#aliasTargets.has(node) };
  }

  /**
   * Every string key of `map` with its pair as kubectl reads it, `<<` merge keys applied as #lookup does.
   * Used for annotations, whose keys are not known in advance. (indexAnchors has refused cyclic anchors.)
   */
  #entries(map: YAMLMap, depth = 0): ReadonlyMap<string, Found> {
    const cached = this.#entriesCache.get(map);
    if (cached !== undefined) return cached;
    const offset = map.range?.[0] ?? 0;
    if (depth > MAX_MERGE_DEPTH) throw this.#error(offset, "merge keys are nested too deeply");
    const out = new Map<string, Found>();
    for (const pair of map.items) {
      this.#step(offset);
      if (isMergeKey(pair.key)) {
        const source = this.#deref(pair.value, false).node;
        // Of several merged maps the earlier wins: apply them last to first.
        const sources = isSeq(source) ? [...source.items].reverse() : [pair.value];
        for (const item of sources) {
          const merged = this.#deref(item, false).node;
          if (!isMap(merged)) {
            const at = isNode(item) ? (item.range?.[0] ?? offset) : offset;
            throw this.#error(at, "map merge requires map or sequence of maps as the value");
          }
          for (const [name, found] of this.#entries(merged, depth + 1)) {
            this.#step(offset);
            out.set(name, found.merged ? found : { ...found, merged: true });
          }
        }
      } else {
        const key = this.#deref(pair.key, false).node;
        const name = isScalar(key) ? scalarString(key) : null;
        if (key !== null && name !== null) {
          out.set(name, { key, value: isNode(pair.value) ? pair.value : null, merged: false });
        }
      }
    }
    this.#entriesCache.set(map, out);
    return out;
  }

  /**
   * The pair for `name` in `map` as kubectl reads it: the last assignment wins, where a `<<` pair assigns
   * every key of its merged maps (the earliest map first). Scans backwards and stops at the first assignment;
   * results are cached per map and name, so a map merged into many others is searched once per name.
   */
  #lookup(map: YAMLMap, name: string, depth = 0): Found | undefined {
    let cache = this.#lookupCache.get(map);
    if (cache === undefined) {
      cache = new Map();
      this.#lookupCache.set(map, cache);
    }
    const cached = cache.get(name);
    if (cached !== undefined) return cached ?? undefined;
    const offset = map.range?.[0] ?? 0;
    if (depth > MAX_MERGE_DEPTH) throw this.#error(offset, "merge keys are nested too deeply");
    let found: Found | undefined;
    for (let i = map.items.length - 1; i >= 0 && found === undefined; i--) {
      const pair = map.items[i] as (typeof map.items)[number];
      this.#step(offset);
      if (isMergeKey(pair.key)) {
        const source = this.#deref(pair.value, false).node;
        for (const item of isSeq(source) ? source.items : [pair.value]) {
          const merged = this.#deref(item, false).node;
          if (!isMap(merged)) {
            const at = isNode(item) ? (item.range?.[0] ?? offset) : offset;
            throw this.#error(at, "map merge requires map or sequence of maps as the value");
          }
          const inner = this.#lookup(merged, name, depth + 1);
          if (inner !== undefined) {
            found = inner.merged ? inner : { ...inner, merged: true };
            break;
          }
        }
      } else if (this.#isKey(pair.key, name)) {
        found = { key: pair.key as Node, value: isNode(pair.value) ? pair.value : null, merged: false };
      }
    }
    cache.set(name, found ?? null);
    return found;
  }

  #isKey(key: unknown, name: string): boolean {
    const k = this.#deref(key, false).node;
    return isScalar(k) && scalarString(k) === name;
  }

  /** The value under `name`, alias followed. */
  #get(map: YAMLMap, name: string, shared: boolean): Resolved {
    const found = this.#lookup(map, name);
    if (found === undefined) return { node: null, shared };
    return this.#deref(found.value, shared || found.merged);
  }

  #getPath(map: YAMLMap, path: readonly string[], shared: boolean): Resolved {
    let current: Resolved = { node: map, shared };
    for (const name of path) {
      if (!isMap(current.node)) return { node: null, shared };
      current = this.#get(current.node, name, current.shared);
    }
    return current;
  }

  #string(map: YAMLMap, name: string): string | null {
    const node = this.#get(map, name, false).node;
    return isScalar(node) ? scalarString(node) : null;
  }

  #annotations(metadata: Resolved): Readonly<Record<string, string>> {
    const out: Record<string, string> = Object.create(null);
    if (!isMap(metadata.node)) return out;
    const annotations = this.#get(metadata.node, "annotations", false).node;
    if (!isMap(annotations)) return out;
    for (const [name, found] of this.#entries(annotations)) {
      const value = this.#deref(found.value, false).node;
      const text = isScalar(value) ? scalarString(value) : null;
      if (text !== null) out[name] = text;
    }
    return out;
  }

  #readObject(
    obj: YAMLMap,
    path: Path,
    shared: boolean,
    inherited: { kind: string; apiVersion: string | null } | null,
    listDepth: number,
  ): void {
    this.#step(obj.range?.[0] ?? 0);
    const items = this.#get(obj, "items", shared);
    if (isSeq(items.node)) {
      if (listDepth >= MAX_LIST_DEPTH) throw this.#error(obj.range?.[0] ?? 0, "Lists are nested too deeply");
      // kubectl (unstructured decoding): an item with neither kind nor apiVersion takes the List's apiVersion
      // and the List's kind without its "List" suffix.
      const listKind = this.#string(obj, "kind") ?? "";
      const itemDefaults = {
        kind: listKind.endsWith("List") ? listKind.slice(0, -4) : listKind,
        apiVersion: this.#string(obj, "apiVersion"),
      };
      for (const [i, raw] of items.node.items.entries()) {
        const item = this.#deref(raw, items.shared);
        if (isMap(item.node))
          this.#readObject(item.node, [...path, "items", i], item.shared, itemDefaults, listDepth + 1);
      }
      return;
    }

    let kind = this.#string(obj, "kind");
    let apiVersion = this.#string(obj, "apiVersion");
    if (inherited !== null && !kind && !apiVersion) {
      kind = inherited.kind;
      apiVersion = inherited.apiVersion;
    }
    if (kind === null) return;
    const specPaths = podSpecPaths(kind);
    if (specPaths.length === 0) return;

    const metadata = this.#get(obj, "metadata", shared);
    const templateMetadataPath = podTemplateMetadataPath(kind);
    const info: ObjectInfo = {
      kind,
      apiVersion,
      namespace: isMap(metadata.node) ? this.#string(metadata.node, "namespace") : null,
      name: isMap(metadata.node) ? this.#string(metadata.node, "name") : null,
      annotations: this.#annotations(metadata),
      templateAnnotations:
        templateMetadataPath === null
          ? Object.create(null)
          : this.#annotations(this.#getPath(obj, templateMetadataPath, shared)),
    };
    for (const specPath of specPaths) {
      const spec = this.#getPath(obj, specPath, shared);
      if (isMap(spec.node)) this.#readPodSpec(spec.node, [...path, ...specPath], spec.shared, info);
    }
  }

  #readPodSpec(spec: YAMLMap, path: Path, shared: boolean, info: ObjectInfo): void {
    const volumes = this.#get(spec, "volumes", shared);
    if (isSeq(volumes.node)) {
      for (const [i, raw] of volumes.node.items.entries()) {
        const volume = this.#deref(raw, volumes.shared);
        if (isMap(volume.node))
          this.#readImageVolume(volume.node, [...path, "volumes", i], volume.shared, info);
      }
    }
    for (const { type, field } of CONTAINER_FIELDS) {
      const list = this.#get(spec, field, shared);
      if (!isSeq(list.node)) continue;
      for (const [i, raw] of list.node.items.entries()) {
        const container = this.#deref(raw, list.shared);
        if (isMap(container.node)) {
          this.#readContainer(container.node, type, [...path, field, i], container.shared, info);
        }
      }
    }
  }

  #readContainer(
    container: YAMLMap,
    type: ContainerType,
    path: Path,
    shared: boolean,
    info: ObjectInfo,
  ): void {
    const image = this.#field(container, "image");
    const policy = this.#field(container, "imagePullPolicy");
    this.#emit(
      info,
      type,
      this.#string(container, "name"),
      image,
      policy,
      container.range?.[0] ?? 0,
      path,
      shared,
      { map: container, imageKey: "image", policyKey: "imagePullPolicy" },
    );
  }

  #readImageVolume(volume: YAMLMap, path: Path, shared: boolean, info: ObjectInfo): void {
    const found = this.#lookup(volume, "image");
    if (found === undefined) return;
    const source = this.#deref(found.value, shared || found.merged);
    if (source.node === null || (isScalar(source.node) && scalarIsNull(source.node))) return; // no image source
    const name = this.#string(volume, "name");
    const keyOffset = found.key.range?.[0] ?? 0;
    if (!isMap(source.node)) {
      const offset = source.node.range?.[0] ?? keyOffset;
      const wrong: FieldValue = {
        status: "invalid-type",
        value: null,
        valueOffset: offset,
        valueEnd: source.node.range?.[1] ?? offset,
        keyOffset,
        shared: source.shared,
        nodes: null,
      };
      this.#emit(info, "imageVolume", name, wrong, MISSING, keyOffset, path, shared || source.shared, null);
      return;
    }
    const reference = this.#field(source.node, "reference");
    const policy = this.#field(source.node, "pullPolicy");
    this.#emit(info, "imageVolume", name, reference, policy, keyOffset, path, shared || source.shared, {
      map: source.node,
      imageKey: "reference",
      policyKey: "pullPolicy",
    });
  }

  /** A string field of a container or image volume source. */
  #field(map: YAMLMap, name: string): FieldValue {
    const found = this.#lookup(map, name);
    if (found === undefined) return MISSING;
    const keyOffset = found.key.range?.[0] ?? 0;
    const value = this.#deref(found.value, found.merged);
    const node = value.node;
    const nodes: FieldNodes = { key: found.key, written: found.value, value: node, merged: found.merged };
    if (node === null || (isScalar(node) && scalarIsNull(node))) {
      return {
        status: "missing",
        value: null,
        valueOffset: null,
        valueEnd: null,
        keyOffset,
        shared: value.shared,
        nodes,
      };
    }
    const valueOffset = node.range?.[0] ?? keyOffset;
    const valueEnd = node.range?.[1] ?? valueOffset;
    const text = isScalar(node) ? scalarString(node) : null;
    const status: ImageStatus = text !== null ? "string" : "invalid-type";
    return { status, value: text, valueOffset, valueEnd, keyOffset, shared: value.shared, nodes };
  }

  #emit(
    info: ObjectInfo,
    containerType: ContainerType,
    container: string | null,
    image: FieldValue,
    policy: FieldValue,
    fallbackOffset: number,
    path: Path,
    shared: boolean,
    where: { map: YAMLMap; imageKey: string; policyKey: string } | null,
  ): void {
    const imageOffset = image.valueOffset ?? image.keyOffset ?? fallbackOffset;
    this.#step(imageOffset);
    const use: ImageUse = {
      file: this.#lines.file,
      document: this.#index,
      kind: info.kind,
      apiVersion: info.apiVersion,
      namespace: info.namespace,
      name: info.name,
      containerType,
      container,
      image: image.value,
      imageStatus: image.status,
      pullPolicy: policy.status === "string" ? policy.value : null,
      position: this.#position(imageOffset),
      imageEndPosition: image.valueEnd === null ? null : this.#position(image.valueEnd),
      imageKeyPosition: image.keyOffset === null ? null : this.#position(image.keyOffset),
      policyPosition: policy.valueOffset === null ? null : this.#position(policy.valueOffset),
      path,
      shared: shared || image.shared || policy.shared,
      annotations: info.annotations,
      templateAnnotations: info.templateAnnotations,
      renderedFrom: this.#renderedFrom,
    };
    this.#out.push(use);
    if (this.#nodes !== null && where !== null) {
      this.#nodes.push({ use, base: this.#base, ...where, image: image.nodes, policy: policy.nodes });
    }
  }
}

/**
 * go-yaml v2's guard against alias bombs (CVE-2019-11253), which kubectl and the API server apply: a document
 * whose full expansion decodes more than 1000 nodes with more than 100 alias expansions is refused when
 * the share of alias expansions exceeds 99% (up to 400,000 nodes), falling linearly to 10% (4,000,000 nodes
 * and more). go-yaml checks while decoding; this checks the totals, computed without expanding anything.
 */
export function excessiveAliasing(decodeCount: number, aliasCount: number): boolean {
  if (!Number.isFinite(decodeCount) || !Number.isFinite(aliasCount)) return true; // beyond counting
  if (aliasCount <= 100 || decodeCount <= 1000) return false;
  const low = 400_000;
  const high = 4_000_000;
  const allowed =
    decodeCount <= low
      ? 0.99
      : decodeCount >= high
        ? 0.1
        : 0.99 - 0.89 * ((decodeCount - low) / (high - low));
  return aliasCount / decodeCount > allowed;
}

function isMergeKey(key: unknown): boolean {
  return isScalar(key) && typeof key.value === "symbol" && key.value.description === "<<";
}

const HELM_SOURCE = /^#\s*Source:\s*(\S(?:.*\S)?)\s*$/;

/**
 * The path in a Helm `# Source: <path>` comment among the comment lines that head a document (between its
 * start, or its `---`, and its content).
 */
function helmSource(text: string, start: number, contentStart: number): string | null {
  const head = text.slice(start, Math.max(start, contentStart));
  for (const raw of head.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line === "---" || line.startsWith("%")) continue;
    if (!line.startsWith("#")) return null;
    const m = HELM_SOURCE.exec(line);
    if (m !== null) return m[1] ?? null;
  }
  return null;
}
