// Inputs to text: files, directories, stdin; decoding and the limits that keep hostile input harmless.

import { createReadStream, type Dirent } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { resolve, sep } from "node:path";
import { imageUsesFromText } from "./parse.ts";
import { type ImageUse, ManifestError, type ReadOptions } from "./types.ts";

export const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;

/** File name endings read when walking a directory (kubectl's list; exact, case-sensitive). */
export const MANIFEST_EXTENSIONS: readonly string[] = Object.freeze([".yaml", ".yml", ".json"]);

/** The name used for stdin, in inputs and in positions. */
export const STDIN = "-";

export type TextEncoding = "utf-8" | "utf-16le" | "utf-16be";

export interface ManifestSource {
  /** As given by the user, or found in a directory; `-` for stdin. */
  readonly file: string;
  /** The decoded text without its byte order mark; positions of ImageUses refer to this text. */
  readonly text: string;
  readonly encoding: TextEncoding;
  /** The input started with a byte order mark (which `fix` must write back). */
  readonly bom: boolean;
}

/**
 * Every image in the manifests named by `inputs`: files (read whatever their name), directories (walked
 * recursively, see expandInputs), or `-` for stdin. Order: inputs in order, files of a directory in walk
 * order, then as imageUsesFromText. A file reached twice (`dir` and `dir/a.yaml`, or `-` twice) is read once,
 * at its first place. Throws ManifestError for the first input that cannot be read; a directory without
 * manifest files is not an error.
 */
export async function readImageUses(
  inputs: readonly string[],
  options: ReadOptions = {},
): Promise<ImageUse[]> {
  const out: ImageUse[] = [];
  for (const file of await expandInputs(inputs)) {
    const source = await readManifestSource(file, options);
    for (const use of imageUsesFromText(source.text, source.file)) out.push(use);
  }
  return out;
}

/**
 * The files behind `inputs`, in order and without repeats (compared by absolute path; `-` once). A directory
 * is walked recursively in lexical order of the names' UTF-8 bytes, entries of a directory interleaved as Go's
 * filepath.Walk does (so kubectl's order); only files ending in .yaml, .yml or .json are taken. Names starting
 * with a dot are skipped in the walk (.git, .github, editor files, kpull's own .kpull.yaml); a path given
 * explicitly is always read. Symbolic links to files are followed, links to directories are not (no cycles).
 * Throws ManifestError for a path that does not exist.
 */
export async function expandInputs(inputs: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  const seen = new Set<string>();
  const add = (file: string): void => {
    const key = file === STDIN ? STDIN : resolve(file);
    if (seen.has(key)) return;
    seen.add(key);
    files.push(file);
  };
  for (const input of inputs) {
    if (input === STDIN) {
      add(STDIN);
      continue;
    }
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(input);
    } catch (error) {
      throw fsError(input, error);
    }
    if (info.isDirectory()) {
      for (const file of await walk(input)) add(file);
    } else {
      add(input);
    }
  }
  return files;
}

function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function child(dir: string, name: string): string {
  return dir.endsWith("/") || dir.endsWith(sep) ? `${dir}${name}` : `${dir}${sep}${name}`;
}

async function walk(dir: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw fsError(dir, error);
  }
  entries.sort((a, b) => byUtf8(a.name, b.name));
  const out: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith(".")) continue;
    const path = child(dir, entry.name);
    if (entry.isDirectory()) {
      out.push(...(await walk(path)));
      continue;
    }
    if (!MANIFEST_EXTENSIONS.some((ext) => entry.name.endsWith(ext))) continue;
    if (entry.isFile()) {
      out.push(path);
    } else if (entry.isSymbolicLink()) {
      // A link to a file is read; a link to a directory is not followed; a dangling link fails when read.
      const target = await stat(path).catch(() => null);
      if (target === null || target.isFile()) out.push(path);
    }
    // FIFOs, sockets and devices found in a walk are skipped: reading them could block.
  }
  return out;
}

const FS_REASONS: Readonly<Record<string, string>> = {
  ENOENT: "no such file or directory",
  ENOTDIR: "not a directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "file name too long",
};

function fsError(file: string, error: unknown): ManifestError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const reason = (code !== undefined && FS_REASONS[code]) || (error as Error).message || String(error);
  return new ManifestError(file, reason);
}

/** Reads one input (a file path or `-`) into text, refusing oversized, binary and undecodable input. */
export async function readManifestSource(file: string, options: ReadOptions = {}): Promise<ManifestSource> {
  const limit = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  let bytes: Buffer;
  if (file === STDIN) {
    bytes = await readLimited(options.stdin ?? process.stdin, limit, file);
  } else {
    // Streamed rather than sized by stat: pipes (`<(helm template .)`) report size 0.
    const stream = createReadStream(file);
    try {
      bytes = await readLimited(stream, limit, file);
    } catch (error) {
      if (error instanceof ManifestError) throw error;
      throw fsError(file, error);
    } finally {
      stream.destroy();
    }
  }
  return { file, ...decodeManifestBytes(bytes, file) };
}

async function readLimited(stream: NodeJS.ReadableStream, limit: number, file: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : Buffer.from(chunk as Uint8Array);
    total += buf.length;
    if (total > limit)
      throw new ManifestError(file, `file is larger than the limit of ${formatBytes(limit)}`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks, total);
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

/**
 * Bytes to text as kubectl decodes them: UTF-8, with or without a byte order mark, or UTF-16 when a byte order
 * mark says so (what Windows PowerShell writes with `>`). NUL bytes in UTF-8 input and undecodable bytes mean
 * "not a text file".
 */
export function decodeManifestBytes(
  bytes: Uint8Array,
  file: string,
): { text: string; encoding: TextEncoding; bom: boolean } {
  let encoding: TextEncoding = "utf-8";
  let skip = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) skip = 3;
  else if (bytes[0] === 0xff && bytes[1] === 0xfe) [encoding, skip] = ["utf-16le", 2];
  else if (bytes[0] === 0xfe && bytes[1] === 0xff) [encoding, skip] = ["utf-16be", 2];
  const body = bytes.subarray(skip);
  if (encoding === "utf-8" && body.includes(0))
    throw new ManifestError(file, "not a text file (it contains NUL bytes)");
  let text: string;
  try {
    text = new TextDecoder(encoding, { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    throw new ManifestError(file, `not a text file (it is not valid ${encoding.toUpperCase()})`);
  }
  if (text.includes("\u0000")) throw new ManifestError(file, "not a text file (it contains NUL characters)");
  return { text, encoding, bom: skip > 0 };
}
