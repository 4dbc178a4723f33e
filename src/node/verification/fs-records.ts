// The records on disk (kubelet.md §3.5; fs_pullrecords.go): `<root>/image_manager/pulling/` for intents and
// `<root>/image_manager/pulled/` for pulled records, directories 0700, files 0600, each file named
// `sha256-<hex of its input>`. Writes are crash-safe: a unique `<name>.<id>.tmp` is written and fsynced,
// renamed over the record, and the directory fsynced, so a reader sees the old record or the new one, never
// half of one. Files not starting with `sha256-` and `.tmp` files are ignored when listing.

import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import {
  decodeIntent,
  decodePulledRecord,
  encodeIntent,
  encodePulledRecord,
  type ImagePulledRecord,
  type ImagePullIntent,
  RECORDS_API_VERSION,
  RecordDecodeError,
  recordFileName,
} from "./records.ts";

export const RECORDS_DIR = "image_manager";
export const INTENTS_SUBDIR = "pulling";
export const PULLED_SUBDIR = "pulled";
const FILE_PREFIX = "sha256-";
const TMP_SUFFIX = ".tmp";

/** A record that exists but cannot be used: unreadable, corrupt, or not the record its name says. */
export class RecordReadError extends Error {
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "RecordReadError";
    this.file = file;
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === "ENOENT";
}

/** One listed file: its decoded content, or why it could not be used. */
export type Listed<T> =
  | { readonly file: string; readonly ok: true; readonly value: T; readonly apiVersion: string }
  | { readonly file: string; readonly ok: false; readonly error: RecordReadError };

export class PullRecordsStore {
  /** `<root>/image_manager` */
  readonly dir: string;
  readonly intentsDir: string;
  readonly pulledDir: string;

  /** `root` is the kubelet root directory (kpull: the store root). */
  constructor(root: string) {
    this.dir = join(root, RECORDS_DIR);
    this.intentsDir = join(this.dir, INTENTS_SUBDIR);
    this.pulledDir = join(this.dir, PULLED_SUBDIR);
  }

  intentPath(image: string): string {
    return join(this.intentsDir, recordFileName(image));
  }

  pulledPath(imageRef: string): string {
    return join(this.pulledDir, recordFileName(imageRef));
  }

  async writeIntent(image: string): Promise<void> {
    await writeAtomically(this.intentsDir, this.intentPath(image), encodeIntent({ image }));
  }

  async deleteIntent(image: string): Promise<void> {
    await removeIfPresent(this.intentPath(image));
  }

  /** Whether an intent file exists (its content is not read: even a corrupt one marks the image as pulled by
   * the kubelet, which is the safe side). Errors other than "absent" reject. */
  async intentExists(image: string): Promise<boolean> {
    try {
      await stat(this.intentPath(image));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw new RecordReadError(this.intentPath(image), (error as Error).message);
    }
  }

  /** The pulled record for `imageRef`, null when there is none; RecordReadError when it exists but cannot be
   * used (unreadable, not strict JSON of a known version, or a record of another ref). */
  async readPulled(imageRef: string): Promise<ImagePulledRecord | null> {
    const file = this.pulledPath(imageRef);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if (isNotFound(error)) return null;
      throw new RecordReadError(file, (error as Error).message);
    }
    const { record } = decodeOrThrow(file, () => decodePulledRecord(text));
    if (record.imageRef !== imageRef) {
      throw new RecordReadError(file, `holds the record of ${JSON.stringify(record.imageRef)}`);
    }
    return record;
  }

  async writePulled(record: ImagePulledRecord): Promise<void> {
    await writeAtomically(this.pulledDir, this.pulledPath(record.imageRef), encodePulledRecord(record));
  }

  async deletePulled(imageRef: string): Promise<void> {
    await removeIfPresent(this.pulledPath(imageRef));
  }

  async listIntents(): Promise<Listed<ImagePullIntent>[]> {
    return this.#list(this.intentsDir, (text) => {
      const { intent, apiVersion } = decodeIntent(text);
      return { value: intent, apiVersion };
    });
  }

  async listPulled(): Promise<Listed<ImagePulledRecord>[]> {
    return this.#list(this.pulledDir, (text) => {
      const { record, apiVersion } = decodePulledRecord(text);
      return { value: record, apiVersion };
    });
  }

  async #list<T>(
    dir: string,
    decode: (text: string) => { value: T; apiVersion: string },
  ): Promise<Listed<T>[]> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if (isNotFound(error)) return [];
      throw error;
    }
    const out: Listed<T>[] = [];
    for (const name of names.sort()) {
      if (!name.startsWith(FILE_PREFIX) || name.endsWith(TMP_SUFFIX)) continue;
      const file = join(dir, name);
      try {
        const text = await readFile(file, "utf8");
        out.push({ file, ok: true, ...decodeOrThrow(file, () => decode(text)) });
      } catch (error) {
        if (isNotFound(error)) continue; // removed meanwhile
        const e =
          error instanceof RecordReadError ? error : new RecordReadError(file, (error as Error).message);
        out.push({ file, ok: false, error: e });
      }
    }
    return out;
  }

  /** Rewrites every readable record that is not in the version kpull writes (recordsVersionMigration).
   * Returns the files rewritten. */
  async migrate(): Promise<string[]> {
    const rewritten: string[] = [];
    for (const l of await this.listIntents()) {
      if (l.ok && l.apiVersion !== RECORDS_API_VERSION) {
        await writeAtomically(this.intentsDir, l.file, encodeIntent(l.value));
        rewritten.push(l.file);
      }
    }
    for (const l of await this.listPulled()) {
      if (l.ok && l.apiVersion !== RECORDS_API_VERSION) {
        await writeAtomically(this.pulledDir, l.file, encodePulledRecord(l.value));
        rewritten.push(l.file);
      }
    }
    return rewritten;
  }

  /** Removes temporary files a crash left behind, older than `olderThanMs` (a younger one may belong to a
   * writer in another process). Returns the files removed. */
  async removeStaleTemporaries(now: number, olderThanMs: number): Promise<string[]> {
    const removed: string[] = [];
    for (const dir of [this.intentsDir, this.pulledDir]) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (error) {
        if (isNotFound(error)) continue;
        throw error;
      }
      for (const name of names) {
        if (!name.endsWith(TMP_SUFFIX)) continue;
        const file = join(dir, name);
        try {
          if (now - (await stat(file)).mtimeMs > olderThanMs) {
            await unlink(file);
            removed.push(file);
          }
        } catch (error) {
          if (!isNotFound(error)) throw error;
        }
      }
    }
    return removed;
  }
}

function decodeOrThrow<T>(file: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof RecordDecodeError) throw new RecordReadError(file, error.message);
    throw error;
  }
}

async function removeIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** temp file (0600, exclusive) + write + fsync + rename + fsync of the directory. */
async function writeAtomically(dir: string, file: string, content: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}-${randomBytes(6).toString("hex")}${TMP_SUFFIX}`;
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    try {
      await handle.writeFile(content, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (error) {
    await removeIfPresent(tmp).catch(() => {});
    throw error;
  }
  await fsyncDir(dir);
}
