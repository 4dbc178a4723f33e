// Where the store lives: `--root`, else `KPULL_ROOT`, else `/var/lib/kpull` for root and the XDG data
// directory (`$XDG_DATA_HOME/kpull`, `~/.local/share/kpull`) for everyone else.

import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

export interface RootOptions {
  /** `--root` as given. */
  readonly root?: string | undefined;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Effective uid; default process.getuid() (0 on platforms without uids is never assumed). */
  readonly uid?: number | undefined;
  readonly home?: string | undefined;
}

export const SYSTEM_ROOT = "/var/lib/kpull";

/** The store root for these options, as an absolute path. */
export function storeRoot(options: RootOptions = {}): string {
  const env = options.env ?? process.env;
  if (options.root !== undefined && options.root !== "") return resolve(options.root);
  const fromEnv = env.KPULL_ROOT;
  if (fromEnv !== undefined && fromEnv !== "") return resolve(fromEnv);
  const uid = options.uid ?? (typeof process.getuid === "function" ? process.getuid() : -1);
  if (uid === 0) return SYSTEM_ROOT;
  // XDG Base Directory: a relative XDG_DATA_HOME is invalid and must be ignored.
  const xdg = env.XDG_DATA_HOME;
  if (xdg !== undefined && xdg !== "" && isAbsolute(xdg)) return join(xdg, "kpull");
  return join(options.home ?? env.HOME ?? homedir(), ".local", "share", "kpull");
}
