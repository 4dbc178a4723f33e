#!/usr/bin/env node
// Entry point: run the CLI and exit with its code. Unexpected errors print one line, not a stack trace,
// unless KPULL_DEBUG is set.

import { run } from "./index.ts";

try {
  process.exitCode = await run(process.argv.slice(2));
} catch (error) {
  if (process.env.KPULL_DEBUG) throw error;
  process.stderr.write(`error: internal: ${(error as Error)?.message ?? String(error)}\n`);
  process.exitCode = 70;
}
