// Writing a manifest back as it was read: same encoding, same byte order mark, same file (through symbolic
// links), replaced atomically so a crash leaves the old file or the new one, never half of each.

import { randomBytes } from "node:crypto";
import { realpath, rename, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { ManifestSource } from "../manifests/index.ts";

/** The bytes of `text` in the source's encoding, with its byte order mark if it had one. */
export function encodeText(text: string, source: Pick<ManifestSource, "encoding" | "bom">): Buffer {
  if (source.encoding === "utf-8") {
    const body = Buffer.from(text, "utf8");
    return source.bom ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]) : body;
  }
  const le = Buffer.from(`\uFEFF${text}`, "utf16le");
  if (source.encoding === "utf-16le") return le;
  for (let i = 0; i + 1 < le.length; i += 2) {
    const a = le[i] as number;
    le[i] = le[i + 1] as number;
    le[i + 1] = a;
  }
  return le;
}

/** Replaces `file`'s content atomically (a temporary file beside it, then rename), keeping its mode. */
export async function writeFileAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const target = await realpath(file).catch(() => file);
  const mode = (await stat(target).catch(() => null))?.mode;
  const temp = join(dirname(target), `.${basename(target)}.kpull-${randomBytes(6).toString("hex")}`);
  try {
    await writeFile(temp, bytes, mode === undefined ? {} : { mode: mode & 0o7777 });
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}
