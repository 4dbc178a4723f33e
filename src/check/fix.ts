// `kpull fix`: write the pull policy each pull-policy finding asks for, editing the text in place.
//
// Values shared through YAML anchors (ImageUse.shared) are handled by one rule: an edit changes a piece of
// text, and every image use whose policy depends on that text must be content with the result. For each
// finding the candidate edits are tried from the most shared to the most local:
//   - the policy comes from a map merged with `<<` or through an alias: first the anchored value itself
//     (so `<<: *defaults` stays the one place to change), else a key written in the container's own map
//     (after the merge key, so it wins; an alias is replaced by the value);
//   - the policy is written in the container's map: that value;
//   - there is none: a new key in the container's map, after `image:` (after the last merge key if one
//     follows `image:`).
// An edit is made only when every use depending on the changed text either asked for that same value or
// stays free of findings with it (an exempted use, or one whose rule is off, must keep the value it has). A
// finding no candidate can satisfy (a container map that is itself an alias of one used elsewhere with other
// needs) is reported as skipped, never "fixed" by changing someone else's container. Rounds repeat until
// nothing changes, so a second run of `kpull fix` changes nothing.

import { isAlias, isScalar, type Node, type Pair, type YAMLMap } from "yaml";
import { type ImageUse, type ImageUseNodes, imageUseNodesFromText } from "../manifests/index.ts";
import { applyEdits, insertPair, replaceValue, type TextEdit } from "./edit.ts";
import { type CheckOptions, checkImageUses } from "./engine.ts";
import { readExemptions } from "./exemptions.ts";
import type { Finding, PullPolicy } from "./types.ts";

export interface FixChange {
  readonly file: string;
  /** Where the image key is, in the text before the fix. */
  readonly line: number;
  readonly column: number;
  readonly kind: string;
  readonly namespace: string | null;
  readonly name: string | null;
  readonly containerType: ImageUse["containerType"];
  readonly container: string | null;
  readonly field: string;
  /** The written policy before (null when none was written). */
  readonly from: string | null;
  readonly to: PullPolicy;
  /** How: a new key, a replaced value, or the anchored value shared with other containers. */
  readonly how: "inserted" | "replaced" | "anchor";
}

export interface FixSkip {
  readonly finding: Finding;
  readonly reason: string;
}

export interface FixResult {
  readonly file: string;
  readonly before: string;
  readonly after: string;
  readonly changes: readonly FixChange[];
  readonly skipped: readonly FixSkip[];
  /** Findings left after the fix that a policy cannot fix (floating tags, missing digests, bad images). */
  readonly remaining: readonly Finding[];
}

type Site =
  | {
      readonly kind: "replace";
      readonly node: Node;
      readonly users: readonly ImageUseNodes[];
      readonly how: FixChange["how"];
    }
  | { readonly kind: "insert"; readonly map: YAMLMap; readonly users: readonly ImageUseNodes[] };

const MAX_ROUNDS = 8;

/** Fixes one file's text. Throws ManifestError for text that cannot be read. */
export function fixText(text: string, file: string, options: CheckOptions = {}): FixResult {
  let current = text;
  const changes: FixChange[] = [];
  let skipped: FixSkip[] = [];
  const changed = new Set<string>();
  let nodes = imageUseNodesFromText(current, file);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const step = fixRound(current, nodes, options);
    skipped = step.skipped;
    if (step.edits.length === 0) break;
    const next = applyEdits(current, step.edits);
    const nextNodes = imageUseNodesFromText(next, file);
    verify(nodes, nextNodes, file);
    nodes = nextNodes;
    for (const c of step.changes) {
      // Report each use once, with where it was in the original text.
      const key = `${c.document}\u0000${c.change.kind}\u0000${c.path}`;
      if (changed.has(key)) continue;
      changed.add(key);
      changes.push(c.change);
    }
    current = next;
  }
  const final = checkImageUses(
    nodes.map((n) => n.use),
    options,
  );
  return {
    file,
    before: text,
    after: current,
    changes,
    skipped,
    remaining: final.findings.filter((f) => f.fix === null),
  };
}

interface RoundChange {
  readonly document: number;
  readonly path: string;
  readonly change: FixChange;
}

function fixRound(
  text: string,
  all: readonly ImageUseNodes[],
  options: CheckOptions,
): { edits: TextEdit[]; changes: RoundChange[]; skipped: FixSkip[] } {
  const report = checkImageUses(
    all.map((n) => n.use),
    options,
  );
  const byUse = new Map<ImageUse, ImageUseNodes>(all.map((n) => [n.use, n]));
  const desired = new Map<ImageUseNodes, { value: PullPolicy; finding: Finding }>();
  for (const e of report.evaluations) {
    if (e.rule !== "pull-policy" || e.outcome !== "fail" || e.finding?.fix == null) continue;
    const n = byUse.get(e.use);
    if (n !== undefined) desired.set(n, { value: e.finding.fix.value, finding: e.finding });
  }

  const edits: TextEdit[] = [];
  const changes: RoundChange[] = [];
  const skipped: FixSkip[] = [];
  const taken = new Set<unknown>();
  for (const [n, want] of desired) {
    const site = candidates(n, all).find((s) => acceptable(s, want.value, desired, options));
    if (site === undefined) {
      skipped.push({
        finding: want.finding,
        reason:
          "the container shares its policy through a YAML anchor with other containers that need a different " +
          "value; change it by hand, or give this container its own copy",
      });
      continue;
    }
    const identity = site.kind === "insert" ? site.map : site.node;
    if (!taken.has(identity)) {
      taken.add(identity);
      edits.push(
        site.kind === "insert"
          ? insertPair(text, n.base, site.map, insertAfter(n, site.map), n.policyKey, want.value)
          : replaceValue(text, n.base, site.node, want.value),
      );
    }
    const u = n.use;
    const key = u.imageKeyPosition ?? u.position;
    changes.push({
      document: u.document,
      path: u.path.join("/"),
      change: {
        file: u.file,
        line: key.line,
        column: key.column,
        kind: u.kind,
        namespace: u.namespace,
        name: u.name,
        containerType: u.containerType,
        container: u.container,
        field: n.policyKey,
        from: u.pullPolicy,
        to: want.value,
        how: site.kind === "insert" ? "inserted" : site.how,
      },
    });
  }
  return { edits, changes, skipped };
}

/** The places whose text decides this use's policy, most shared first. */
function candidates(n: ImageUseNodes, all: readonly ImageUseNodes[]): Site[] {
  const sameMap = all.filter((m) => m.map === n.map);
  const insert: Site = { kind: "insert", map: n.map, users: sameMap };
  const p = n.policy;
  if (p === null || p.written === null) return [insert];
  const resolved = p.value;
  const sharing = resolved === null ? [] : all.filter((m) => m.policy?.value === resolved);
  const anchorShared = resolved !== null && (p.merged || isAlias(p.written));
  const out: Site[] = [];
  if (resolved !== null && (isScalar(resolved) || !anchorShared))
    out.push({ kind: "replace", node: resolved, users: sharing, how: anchorShared ? "anchor" : "replaced" });
  if (p.merged) out.push(insert);
  else if (isAlias(p.written))
    out.push({ kind: "replace", node: p.written, users: sameMap, how: "replaced" });
  return out;
}

/** Whether writing `value` at `site` leaves every use that depends on it content. */
function acceptable(
  site: Site,
  value: PullPolicy,
  desired: ReadonlyMap<ImageUseNodes, { value: PullPolicy }>,
  options: CheckOptions,
): boolean {
  return site.users.every((user) => {
    const want = desired.get(user);
    if (want !== undefined) return want.value === value;
    if (user.use.pullPolicy === value) return true;
    // An exempted container keeps what it has, whatever fix would think of the new value.
    if (options.annotations !== false) {
      const now = (options.now ?? (() => new Date()))();
      const sets = readExemptions(user.use, now).sets;
      if (sets.some((s) => !s.expired && s.rules.has("pull-policy"))) return false;
    }
    // Someone who asked for nothing: the new value must give them no finding.
    const after: ImageUse = { ...user.use, pullPolicy: value };
    const report = checkImageUses([after], options);
    const evaluation = report.evaluations.find((e) => e.rule === "pull-policy");
    return evaluation !== undefined && evaluation.outcome === "pass";
  });
}

/** The pair of `map` after which the new key goes: `image:` unless a merge key follows it; else the last. */
function insertAfter(n: ImageUseNodes, map: YAMLMap): Pair {
  const items = map.items as Pair[];
  const last = items[items.length - 1] as Pair;
  const image = n.image;
  if (image === null || image.merged) return last;
  const index = items.findIndex((pair) => pair.key === image.key);
  if (index < 0) return last;
  const mergeAfter = items.slice(index + 1).some((pair) => isMergeKey(pair.key));
  return mergeAfter ? last : (items[index] as Pair);
}

function isMergeKey(key: unknown): boolean {
  return isScalar(key) && typeof key.value === "symbol";
}

/** Never hand back broken YAML: the result must read, with the same images in the same places. */
function verify(before: readonly ImageUseNodes[], after: readonly ImageUseNodes[], file: string): void {
  const a = before.map((n) => n.use);
  const b = after.map((n) => n.use);
  const same =
    a.length === b.length &&
    a.every((u, i) => {
      const v = b[i] as ImageUse;
      return u.image === v.image && u.container === v.container && u.kind === v.kind && u.name === v.name;
    });
  if (!same)
    throw new Error(`${file}: internal error: the edit changed more than the pull policy; nothing written`);
}
