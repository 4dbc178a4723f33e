// Watching files that are replaced under a running server: the serving certificate and key (cert-manager
// rewrites the Secret, the kubelet swaps the `..data` symlink of the volume) and the configuration
// (a ConfigMap volume, same mechanism).
//
// A file's identity is the hash of its content, read every `intervalMs`; fs.watch on each file's directory
// only makes the check happen sooner. Hashing a few kilobytes every couple of seconds costs nothing, and
// polling content is the one method that survives symlink swaps, editors that rename over a file,
// filesystems without inotify and mtimes that do not move. Changes are reported once per new content,
// serially: a slow reload is never overlapped by the next one.

import { createHash } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";

export interface FileWatcherOptions {
  /** How often the files are read (default 2 seconds). */
  readonly intervalMs?: number;
  /** Coalesces bursts of fs.watch events (default 100 ms). */
  readonly debounceMs?: number;
}

async function fingerprint(files: readonly string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const file of files) {
    try {
      hash.update(await readFile(file));
    } catch (error) {
      hash.update(`\u0000missing:${(error as NodeJS.ErrnoException).code ?? "error"}`);
    }
    hash.update("\u0000\u0000");
  }
  return hash.digest("hex");
}

export class FileWatcher {
  readonly files: readonly string[];
  readonly #onChange: () => Promise<void>;
  readonly #intervalMs: number;
  readonly #debounceMs: number;
  #last: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  #debounce: NodeJS.Timeout | null = null;
  #watchers: FSWatcher[] = [];
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = false;

  /** `onChange` runs after the files' content changed (not for the content present at start). */
  constructor(files: readonly string[], onChange: () => Promise<void>, options: FileWatcherOptions = {}) {
    this.files = files;
    this.#onChange = onChange;
    this.#intervalMs = options.intervalMs ?? 2000;
    this.#debounceMs = options.debounceMs ?? 100;
  }

  async start(): Promise<void> {
    this.#last = await fingerprint(this.files);
    this.#timer = setInterval(() => this.poke(), this.#intervalMs);
    this.#timer.unref();
    for (const dir of new Set(this.files.map((f) => dirname(f)))) {
      try {
        const w = watch(dir, { persistent: false }, () => this.#soon());
        w.on("error", () => {}); // a directory that goes away: polling carries on
        this.#watchers.push(w);
      } catch {
        // No inotify here: polling alone.
      }
    }
  }

  #soon(): void {
    if (this.#stopped || this.#debounce !== null) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = null;
      this.poke();
    }, this.#debounceMs);
    this.#debounce.unref();
  }

  /** Checks the files now; resolves when this check (and any reload it triggered) is done. */
  poke(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running !== null) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          const now = await fingerprint(this.files);
          if (now !== this.#last) {
            this.#last = now;
            await this.#onChange().catch(() => {});
          }
        } while (this.#again && !this.#stopped);
      } finally {
        this.#running = null;
      }
    })();
    return this.#running;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    if (this.#debounce !== null) clearTimeout(this.#debounce);
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
  }
}
