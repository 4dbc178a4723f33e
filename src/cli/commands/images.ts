import { formatPlatform } from "../../registry/index.ts";
import type { ImageRecord } from "../../store/index.ts";
import { outputFormat, outputOption, parseCommandArgs } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import { openBackend, runtimeEndpointFrom, runtimeOptions, runtimeOptionsHelp } from "../runtime-options.ts";
import { renderTable } from "../table.ts";
import { runtimeImageEntries } from "./runtime-images.ts";
import {
  formatAge,
  formatBytes,
  openExisting,
  shortDigest,
  storeOptions,
  storeOptionsHelp,
  writeStructured,
} from "./store-options.ts";

export const imagesHelp = `List the images in the node's store.

Examples:
  # What does this node hold?
  kpull images

  # For scripts: every field, including digests, platform, last use and pin
  kpull images -o json | jq '.images[] | {name, id, lastUsed}'

  # Only some images (names are normalized: nginx means docker.io/library/nginx:latest)
  kpull images nginx:1.27 registry.example.com/team/app:v1

  # The images of the node's containerd (namespace k8s.io, as the kubelet sees them)
  kpull images --runtime-endpoint unix:///run/containerd/containerd.sock

Usage:
  kpull images [IMAGE...] [-o text|json|yaml] [--root DIR] [--runtime-endpoint URL]

Flags:
  -o, --output   text (a table, the default), json or yaml
  -h, --help     show this help

${storeOptionsHelp}
${runtimeOptionsHelp}
Columns: DIGEST is what the name resolved to at the registry (an index or a manifest); IMAGE ID the config
digest (what CRI reports); LAST USED when a container last used it ("never" images are GC'd first).
STATUS is "incomplete" when content is missing (after "kpull verify --repair"); the next pull refetches it.
On a runtime, one line per name (CRI's repo_tags, and repo_digests of repositories without a tag); PULLED
is when kpull first saw the image, and CRI does not say which media type or manifest a name points at.

Exit status: 0 listed, 1 an IMAGE given is not in the store, 2 bad usage.
`;

export interface ImageListEntry {
  name: string;
  repository: string;
  tag: string | null;
  /** null only for a runtime image known by its ID alone. */
  digest: string | null;
  /** null on a runtime: CRI does not report them. */
  mediaType: string | null;
  manifestDigest: string | null;
  id: string;
  platform: string | null;
  size: number;
  /** On a runtime: when kpull first saw the image; null if it never did before. */
  pulledAt: string | null;
  lastUsed: string | null;
  pinned: boolean;
  inUse: boolean;
  complete: boolean;
}

export async function imagesCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("images", argv, {
    ...outputOption,
    ...storeOptions,
    ...runtimeOptions,
  });
  if (values.help) {
    io.stdout.write(imagesHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("images", values.output);
  if (runtimeEndpointFrom(values, io) !== null) {
    const backend = await openBackend(values, io, { create: false });
    try {
      const runtime = backend.runtime as NonNullable<typeof backend.runtime>;
      const { entries, notFound } = await runtimeImageEntries(runtime, backend.store, positionals);
      for (const q of notFound) io.stderr.write(`error: image "${q}" not found\n`);
      if (format !== "text") writeStructured(io, format, { images: entries });
      else io.stdout.write(renderImages(entries));
      return notFound.length > 0 ? ExitCode.findings : ExitCode.ok;
    } finally {
      backend.close();
    }
  }
  let records: ImageRecord[] = [];
  let store: Awaited<ReturnType<typeof openExisting>> | null = null;
  try {
    store = await openExisting(values, io);
  } catch (error) {
    if ((error as { code?: string }).code !== "NOT_FOUND") throw error;
  }
  let exit: number = ExitCode.ok;
  if (store !== null) {
    const all = await store.images();
    if (positionals.length === 0) records = all;
    else {
      const wanted = new Set<string>();
      for (const q of positionals) {
        const found = await store.find(q);
        if (found.length === 0) {
          io.stderr.write(`error: image "${q}" not found\n`);
          exit = ExitCode.findings;
        }
        for (const r of found) wanted.add(r.name);
      }
      records = all.filter((r) => wanted.has(r.name));
    }
  } else {
    for (const q of positionals) io.stderr.write(`error: image "${q}" not found\n`);
    if (positionals.length > 0) exit = ExitCode.findings;
  }
  const entries: ImageListEntry[] = [];
  for (const r of records) {
    const status = store ? await store.status(r.name) : null;
    entries.push(entryOf(r, status?.complete ?? false, status?.inUse ?? false));
  }
  if (format !== "text") {
    writeStructured(io, format, { images: entries });
    return exit;
  }
  io.stdout.write(renderImages(entries));
  return exit;
}

/** The text table of `kpull images`. */
export function renderImages(entries: readonly ImageListEntry[]): string {
  const now = Date.now();
  const rows = entries.map((e) => [
    e.repository,
    e.tag ?? "<none>",
    e.digest === null ? "-" : shortDigest(e.digest),
    shortDigest(e.id),
    e.platform ?? "-",
    formatBytes(e.size),
    e.pulledAt === null ? "-" : `${formatAge(Date.parse(e.pulledAt), now)} ago`,
    e.lastUsed === null ? "never" : `${formatAge(Date.parse(e.lastUsed), now)} ago`,
    [e.complete ? "" : "incomplete", e.pinned ? "pinned" : "", e.inUse ? "in use" : ""]
      .filter(Boolean)
      .join(",") || "ok",
  ]);
  return renderTable(
    ["IMAGE", "TAG", "DIGEST", "IMAGE ID", "PLATFORM", "SIZE", "PULLED", "LAST USED", "STATUS"],
    rows,
  );
}

function entryOf(r: ImageRecord, complete: boolean, inUse: boolean): ImageListEntry {
  const at = r.name.indexOf("@");
  const base = at >= 0 ? r.name.slice(0, at) : r.name;
  const colon = base.lastIndexOf(":");
  const hasTag = colon > base.lastIndexOf("/");
  return {
    name: r.name,
    repository: hasTag ? base.slice(0, colon) : base,
    tag: hasTag ? base.slice(colon + 1) : null,
    digest: r.target.digest,
    mediaType: r.target.mediaType,
    manifestDigest: r.manifest.digest,
    id: r.config.digest,
    platform: r.platform ? formatPlatform(r.platform) : null,
    size: r.size,
    pulledAt: r.pulledAt,
    lastUsed: r.lastUsed,
    pinned: r.pinned,
    inUse,
    complete,
  };
}
