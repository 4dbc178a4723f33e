// `kpull pin`: rewrite `image: app:1.2` to `image: app:1.2@sha256:…` (the tag stays for readers; the digest
// decides), with the digest the registry gives for the tag now, or the lock file's with --offline; and
// `--verify`: report pins whose tag now points elsewhere.
//
// Only the image text changes: the digest is inserted right after the image inside the scalar, whatever its
// quoting, so comments, anchors (`image: &img app:1.2` pins every alias of it at once: they share the same
// string and so the same digest), order and line ends stay byte-identical.

import { isScalar, type Node } from "yaml";
import { type ImageUse, type ImageUseNodes, imageUseNodesFromText } from "../manifests/index.ts";
import { DEFAULT_TAG, formatReference, parseNormalizedNamed, type Reference } from "../reference/index.ts";
import type { Platform, RegistryClient } from "../registry/index.ts";
import { formatPlatform } from "../registry/index.ts";
import { applyEdits, replaceValue, type TextEdit } from "./edit.ts";
import type { LockEntry, LockFile } from "./lock.ts";

/** Resolves a tag to the digest it points to now. */
export interface Resolver {
  resolve(reference: Reference): Promise<LockEntry>;
}

/** A Resolver over kpull's registry client: one HEAD per tag (the index digest), or the platform's manifest. */
export function registryResolver(client: RegistryClient, platform?: Platform): Resolver {
  return {
    async resolve(reference) {
      const repo = client.repository(reference);
      const descriptor = await repo.resolve();
      if (platform === undefined) return { digest: descriptor.digest, mediaType: descriptor.mediaType };
      const chosen = await repo.platformDigest(descriptor, { platform });
      return { digest: chosen.digest, mediaType: chosen.mediaType, platform: formatPlatform(platform) };
    },
  };
}

/** The lock key of an image: the fully qualified reference with its tag, `latest` when none is written. */
export function lockKey(reference: Reference): string {
  return formatReference({ ...reference, tag: reference.tag ?? DEFAULT_TAG, digest: null });
}

export interface PinOptions {
  /** Null with `offline`: only the lock is used. */
  readonly resolver: Resolver | null;
  readonly lock: LockFile | null;
  readonly offline: boolean;
  /** The platform the pins are for (`--platform`), as recorded in the lock; undefined for the index. */
  readonly platform?: string | undefined;
  /** Resolves at once at most (default 8). */
  readonly concurrency?: number;
}

export type PinStatus =
  | "pinned" // a digest was added
  | "already-pinned" // the image carries a digest
  | "invalid" // the image does not parse
  | "failed"; // the registry (or the lock) could not give a digest

export interface PinItem {
  readonly use: ImageUse;
  readonly status: PinStatus;
  /** The lock key (normalized reference with tag); null for an invalid image. */
  readonly key: string | null;
  /** The image string written after the pin (for `pinned`), else as it was. */
  readonly image: string;
  readonly entry: LockEntry | null;
  /** Why it failed, or a note (a floating tag pinned as it is today). */
  readonly message: string | null;
}

export interface PinFileResult {
  readonly file: string;
  readonly before: string;
  readonly after: string;
  readonly items: readonly PinItem[];
}

export interface PinResult {
  readonly files: readonly PinFileResult[];
  /** The lock with every digest used by this run added or updated. */
  readonly lock: LockFile;
}

/** A limited-concurrency memo of lookups, so each tag is resolved once per run. */
function lookups(options: PinOptions): (ref: Reference) => Promise<LockEntry> {
  const memo = new Map<string, Promise<LockEntry>>();
  const limit = options.concurrency ?? 8;
  let running = 0;
  const queue: (() => void)[] = [];
  const slot = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= limit) await new Promise<void>((r) => queue.push(r));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      queue.shift()?.();
    }
  };
  return (ref) => {
    const key = lockKey(ref);
    let p = memo.get(key);
    if (p === undefined) {
      const locked = options.lock?.images[key];
      const usable = locked !== undefined && locked.platform === options.platform ? locked : undefined;
      if (options.offline || options.resolver === null) {
        p =
          usable !== undefined
            ? Promise.resolve(usable)
            : Promise.reject(
                new Error(
                  `${key} is not in the lock file${locked !== undefined ? ` for ${options.platform ?? "the index"}` : ""} (--offline)`,
                ),
              );
      } else {
        const resolver = options.resolver;
        p = slot(() => resolver.resolve(ref));
      }
      p.catch(() => {}); // handled where awaited
      memo.set(key, p);
    }
    return p;
  };
}

function parse(image: string): Reference | null {
  try {
    return parseNormalizedNamed(image);
  } catch {
    return null;
  }
}

/** Pins every image with a tag (or none) and no digest in the given texts. */
export async function pinTexts(
  sources: readonly { readonly file: string; readonly text: string }[],
  options: PinOptions,
): Promise<PinResult> {
  const lookup = lookups(options);
  const parsed = sources.map((s) => ({ source: s, nodes: imageUseNodesFromText(s.text, s.file) }));
  // Start every lookup first, so they run concurrently across files.
  for (const { nodes } of parsed) {
    for (const n of nodes) {
      const ref = n.use.image === null ? null : parse(n.use.image);
      if (ref !== null && ref.digest === null) void lookup(ref).catch(() => {});
    }
  }
  const images: Record<string, LockEntry> = { ...(options.lock?.images ?? {}) };
  const files: PinFileResult[] = [];
  for (const { source, nodes } of parsed) {
    const items: PinItem[] = [];
    const edits: TextEdit[] = [];
    const edited = new Set<Node>();
    for (const n of nodes) {
      const use = n.use;
      if (use.imageStatus !== "string" || use.image === null) continue;
      const ref = parse(use.image);
      if (ref === null) {
        items.push({
          use,
          status: "invalid",
          key: null,
          image: use.image,
          entry: null,
          message: "not a valid image reference",
        });
        continue;
      }
      const key = lockKey(ref);
      if (ref.digest !== null) {
        items.push({ use, status: "already-pinned", key, image: use.image, entry: null, message: null });
        continue;
      }
      let entry: LockEntry;
      try {
        entry = await lookup(ref);
      } catch (error) {
        items.push({
          use,
          status: "failed",
          key,
          image: use.image,
          entry: null,
          message: (error as Error).message,
        });
        continue;
      }
      images[key] = entry;
      const pinnedImage = `${use.image}@${entry.digest}`;
      const node = n.image?.value ?? null;
      if (node !== null && !edited.has(node)) {
        edited.add(node);
        edits.push(pinEdit(source.text, n, node, use.image, pinnedImage));
      }
      const floating = ref.tag === null || ref.tag === DEFAULT_TAG;
      items.push({
        use,
        status: "pinned",
        key,
        image: pinnedImage,
        entry,
        message: floating
          ? `${JSON.stringify(use.image)} floats (${ref.tag === null ? "no tag" : "tag latest"}): pinned to what it points to today; prefer a version tag`
          : null,
      });
    }
    const after = edits.length > 0 ? applyEdits(source.text, edits) : source.text;
    if (after !== source.text) verify(source.text, after, source.file);
    files.push({ file: source.file, before: source.text, after, items });
  }
  return { files, lock: { lockfileVersion: 1, images } };
}

/** Inserts `@digest` after the image inside its scalar; re-writes the scalar only when that is impossible. */
function pinEdit(text: string, n: ImageUseNodes, node: Node, image: string, pinned: string): TextEdit {
  const range = node.range;
  if (isScalar(node) && range) {
    const start = n.base + range[0];
    const end = n.base + range[1];
    const suffix = pinned.slice(image.length);
    if (node.type === "PLAIN" && text.slice(start, end) === image) return { start: end, end, text: suffix };
    if (
      (node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE") &&
      text.slice(start + 1, end - 1) === image
    )
      return { start: end - 1, end: end - 1, text: suffix };
  }
  return replaceValue(text, n.base, node, pinned);
}

function verify(before: string, after: string, file: string): void {
  const a = imageUseNodesFromText(before, file).map((n) => n.use);
  const b = imageUseNodesFromText(after, file).map((n) => n.use);
  const ok =
    a.length === b.length &&
    a.every((u, i) => {
      const v = b[i] as ImageUse;
      return (
        u.container === v.container &&
        u.pullPolicy === v.pullPolicy &&
        (u.image === v.image || (u.image !== null && v.image?.startsWith(`${u.image}@`) === true))
      );
    });
  if (!ok) throw new Error(`${file}: internal error: pinning changed more than the images; nothing written`);
}

export interface Verification {
  readonly use: ImageUse;
  readonly key: string;
  /** The digest written in the manifest. */
  readonly pinned: string;
  /** What the tag points to now (or in the lock, offline); null when that could not be found. */
  readonly current: string | null;
  /** The lock's digest for the tag, when the lock has one. */
  readonly locked: string | null;
  readonly status: "ok" | "moved" | "lock-differs" | "failed";
  readonly message: string;
}

/**
 * For every image written as `name:tag@digest`: does the tag still point to that digest? Online the
 * registry answers (and a lock that disagrees with the pin is reported too); offline, the lock does.
 * Digest-only images have no tag to check and are left out.
 */
export async function verifyPins(
  sources: readonly { readonly file: string; readonly text: string }[],
  options: PinOptions,
): Promise<Verification[]> {
  const lookup = lookups(options);
  const uses = sources.flatMap((s) => imageUseNodesFromText(s.text, s.file).map((n) => n.use));
  const targets = uses.flatMap((use) => {
    const ref = use.image === null ? null : parse(use.image);
    return ref !== null && ref.digest !== null && ref.tag !== null ? [{ use, ref, digest: ref.digest }] : [];
  });
  for (const t of targets) void lookup({ ...t.ref, digest: null }).catch(() => {});
  const out: Verification[] = [];
  for (const { use, ref, digest } of targets) {
    const key = lockKey(ref);
    const lockedEntry = options.lock?.images[key];
    const locked =
      lockedEntry !== undefined && lockedEntry.platform === options.platform ? lockedEntry.digest : null;
    let current: string;
    try {
      current = (await lookup({ ...ref, digest: null })).digest;
    } catch (error) {
      out.push({
        use,
        key,
        pinned: digest,
        current: null,
        locked,
        status: "failed",
        message: (error as Error).message,
      });
      continue;
    }
    const seen = { use, key, pinned: digest, current, locked };
    const tag = `${ref.tag}`;
    if (current !== digest) {
      out.push({
        ...seen,
        status: "moved",
        message: `tag ${tag} now points to ${current}, but the image is pinned to ${digest}${options.offline ? " (per the lock file)" : ""}`,
      });
    } else if (!options.offline && locked !== null && locked !== digest) {
      out.push({
        ...seen,
        status: "lock-differs",
        message: `the lock file records ${locked} for ${key}, but the image is pinned to ${digest} (which the tag points to)`,
      });
    } else {
      out.push({ ...seen, status: "ok", message: `tag ${tag} still points to ${digest}` });
    }
  }
  return out;
}
