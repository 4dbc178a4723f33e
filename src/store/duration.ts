// Go's time.ParseDuration for the GC flags (`--min-age 2m`, `--max-age 1h30m`), in milliseconds, as a
// StoreError with Go's message when invalid.

import { parseGoDuration } from "../policy/index.ts";
import { StoreError } from "./errors.ts";

/** Parses a Go duration (`300ms`, `-1.5h`, `2h45m`, `0`) into milliseconds; throws StoreError INVALID. */
export function parseDuration(text: string): number {
  const ms = parseGoDuration(text);
  if (ms === null) throw new StoreError("INVALID", `time: invalid duration ${JSON.stringify(text)}`);
  return ms;
}
