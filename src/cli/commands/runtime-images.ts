// `kpull images` and `kpull rmi` on a CRI runtime (--runtime-endpoint): the same entries and summaries as on
// kpull's store, read from ListImages/ImageStatus and kpull's runtime state (firstDetected, lastUsed, pins,
// leases), and removal with RemoveImage by image ID (every name of the image goes, as on the store).

import type { CriImageService } from "../../cri/index.ts";
import {
  type Image,
  imageNames,
  readRuntimeImages,
  resolvedDigest,
  runtimeImageInUse,
  updateRuntimeImages,
} from "../../node/index.ts";
import { formatReference } from "../../reference/index.ts";
import { type LeaseRecord, parseImageQuery, type Store } from "../../store/index.ts";
import type { ImageListEntry } from "./images.ts";

/** The platform from containerd's verbose ImageStatus (`info.imageSpec`, the OCI config); null elsewhere. */
async function platformOf(runtime: CriImageService, id: string): Promise<string | null> {
  try {
    const { info } = await runtime.imageStatus({ image: id }, { verbose: true });
    const spec = (JSON.parse(info.info ?? "{}") as { imageSpec?: Record<string, unknown> }).imageSpec;
    const parts = [spec?.os, spec?.architecture, spec?.variant].filter(
      (p): p is string => typeof p === "string" && p !== "",
    );
    return parts.length >= 2 ? parts.join("/") : null;
  } catch {
    return null;
  }
}

/** Images a user's string names (as the store's find reads it): a name, `repo@digest`, an image ID or an
 * unambiguous ID prefix of at least 3 hex digits. `name` is set when the query named one name only. */
export function findRuntimeImages(
  images: readonly Image[],
  query: string,
): { image: Image; name: string | null }[] {
  const q = parseImageQuery(query);
  if (q.digest !== null) {
    return images.filter((i) => i.id === q.digest).map((image) => ({ image, name: null }));
  }
  if (q.ref !== null) {
    const name = formatReference(q.ref);
    const found = images.filter((i) => i.repoTags.includes(name) || i.repoDigests.includes(name));
    if (found.length > 0) return found.map((image) => ({ image, name }));
  }
  const prefix = q.idPrefix;
  if (prefix !== null) {
    const matches = images.filter((i) => i.id.slice("sha256:".length).startsWith(prefix));
    if (matches.length > 1)
      throw Object.assign(
        new Error(`image ID prefix "${q.text}" is ambiguous: it matches ${matches.length} images`),
        { code: "INVALID" },
      );
    return matches.map((image) => ({ image, name: null }));
  }
  return [];
}

/** The listing entries of one runtime image, one per name (`kpull images` on the store lists records). */
function entriesOf(
  image: Image,
  platform: string | null,
  record: { firstDetected: string; lastUsed: string | null; pinned: boolean } | undefined,
  inUse: boolean,
): ImageListEntry[] {
  const names = imageNames(image);
  const base = {
    mediaType: null,
    manifestDigest: null,
    id: image.id,
    platform,
    size: image.size,
    pulledAt: record?.firstDetected ?? null,
    lastUsed: record?.lastUsed ?? null,
    pinned: image.pinned || record?.pinned === true,
    inUse,
    complete: true,
  };
  if (names.length === 0) return [{ name: image.id, repository: "<none>", tag: null, digest: null, ...base }];
  return names.map((n) => ({
    name: n.name,
    repository: n.repository,
    tag: n.tag,
    digest: n.name.includes("@") ? n.name.slice(n.name.indexOf("@") + 1) : resolvedDigest(image, n.name),
    ...base,
  }));
}

/** `kpull images` on a runtime: entries sorted by name, and the queries that matched nothing. */
export async function runtimeImageEntries(
  runtime: CriImageService,
  state: Store | null,
  queries: readonly string[],
): Promise<{ entries: ImageListEntry[]; notFound: string[] }> {
  const images = await runtime.listImages();
  const records = state ? await readRuntimeImages(state) : {};
  const leases: LeaseRecord[] = state ? await state.activeLeases() : [];
  let selected: { image: Image; name: string | null }[] = images.map((image) => ({ image, name: null }));
  const notFound: string[] = [];
  if (queries.length > 0) {
    selected = [];
    for (const q of queries) {
      const found = findRuntimeImages(images, q);
      if (found.length === 0) notFound.push(q);
      selected.push(...found);
    }
  }
  const entries = new Map<string, ImageListEntry>();
  const platforms = new Map<string, string | null>();
  for (const { image, name } of selected) {
    if (!platforms.has(image.id)) platforms.set(image.id, await platformOf(runtime, image.id));
    const all = entriesOf(
      image,
      platforms.get(image.id) ?? null,
      records[image.id],
      runtimeImageInUse(image, leases),
    );
    const wanted = name === null ? all : all.filter((e) => e.name === name || e.digest === name);
    for (const e of wanted.length > 0 ? wanted : all) entries.set(e.name, e);
  }
  return {
    entries: [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    notFound,
  };
}

export interface RuntimeRemoveSummary {
  readonly removed: { name: string; id: string }[];
  readonly notFound: string[];
  readonly inUse: string[];
  /** null: the runtime deletes content itself after RemoveImage and does not say how much. */
  readonly blobsRemoved: null;
  readonly bytesFreed: null;
}

/** `kpull rmi` on a runtime: RemoveImage by ID for every image a query names, unless a lease of a pod
 * kpull started uses it (`force` removes it anyway). */
export async function runtimeRemove(
  runtime: CriImageService,
  state: Store | null,
  queries: readonly string[],
  force: boolean,
): Promise<RuntimeRemoveSummary> {
  const images = await runtime.listImages();
  const leases: LeaseRecord[] = state ? await state.activeLeases() : [];
  const notFound: string[] = [];
  const inUse: string[] = [];
  const doomed = new Map<string, Image>();
  for (const q of queries) {
    const found = findRuntimeImages(images, q);
    if (found.length === 0) {
      notFound.push(q);
      continue;
    }
    if (!force && found.some(({ image }) => runtimeImageInUse(image, leases))) {
      inUse.push(q);
      continue;
    }
    for (const { image } of found) doomed.set(image.id, image);
  }
  const removed: { name: string; id: string }[] = [];
  for (const image of doomed.values()) {
    await runtime.removeImage({ image: image.id });
    const names = imageNames(image).map((n) => n.name);
    for (const name of names.length > 0 ? names : [image.id]) removed.push({ name, id: image.id });
  }
  if (state !== null && doomed.size > 0) {
    await updateRuntimeImages(state, (records) => {
      for (const id of doomed.keys()) delete records[id];
    });
  }
  return { removed, notFound, inUse, blobsRemoved: null, bytesFreed: null };
}
