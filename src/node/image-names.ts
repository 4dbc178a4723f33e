// Reading a CRI Image's names the same way on both image services: which digest a reference resolved to
// (from `repo_digests`), and the names to list an image under. containerd and kpull's store both record
// `repo@<digest the name resolved to>` for every name of an image (cri.md §4.5), so these work on either.

import { parseDockerRef, repositoryName } from "../reference/index.ts";
import type { Image } from "./image-service.ts";

/** The repository of `reference`, normalized (`nginx` → `docker.io/library/nginx`), or null if invalid. */
export function repositoryOf(reference: string): string | null {
  try {
    return repositoryName(parseDockerRef(reference));
  } catch {
    return null;
  }
}

/**
 * The digests `image` is known by in `reference`'s repository: the reference's own digest when it has one,
 * else every `repo@digest` of that repository (one, unless the same image was also pulled by another
 * digest, e.g. an index and its platform manifest).
 */
export function repoDigestsFor(image: Image, reference: string): string[] {
  let ref: ReturnType<typeof parseDockerRef>;
  try {
    ref = parseDockerRef(reference);
  } catch {
    return [];
  }
  if (ref.digest !== null) return [ref.digest];
  const prefix = `${repositoryName(ref)}@`;
  return image.repoDigests.filter((d) => d.startsWith(prefix)).map((d) => d.slice(prefix.length));
}

/**
 * The digest `reference` resolved to on the node, read from ImageStatus: the only candidate, or when the
 * image is known by several digests in that repository, the one that was not there before a pull
 * (`previous`), else the first in sorted order.
 */
export function resolvedDigest(
  image: Image,
  reference: string,
  previous: readonly string[] = [],
): string | null {
  const candidates = repoDigestsFor(image, reference);
  if (candidates.length <= 1) return candidates[0] ?? null;
  return candidates.find((d) => !previous.includes(d)) ?? [...candidates].sort()[0] ?? null;
}

/** One listing line per name: every `repo:tag`, and `repo@digest` for repositories with no tag (pulled by
 * digest only), as `kpull images` lists records. */
export function imageNames(image: Image): { name: string; repository: string; tag: string | null }[] {
  const out: { name: string; repository: string; tag: string | null }[] = [];
  const tagged = new Set<string>();
  for (const name of image.repoTags) {
    const colon = name.lastIndexOf(":");
    const repository = colon > name.lastIndexOf("/") ? name.slice(0, colon) : name;
    tagged.add(repository);
    out.push({ name, repository, tag: colon > name.lastIndexOf("/") ? name.slice(colon + 1) : null });
  }
  for (const name of image.repoDigests) {
    const repository = name.slice(0, name.indexOf("@"));
    if (!tagged.has(repository)) out.push({ name, repository, tag: null });
  }
  return out;
}
