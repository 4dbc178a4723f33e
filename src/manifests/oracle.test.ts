// Shared by the module's tests (imported by them): an independent oracle for positions, and the fixture paths.
// A .test.ts file so that the build leaves it out; parse.test.ts checks the oracle itself.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ImageUse, SourcePosition } from "./index.ts";

export const FIXTURES = join(import.meta.dirname, "..", "..", "test", "fixtures", "manifests");

export function fixture(...parts: string[]): { path: string; text: string } {
  const path = join(FIXTURES, ...parts);
  return { path, text: readFileSync(path, "utf8") };
}

/**
 * The position of `needle` in `text` (which must contain it exactly once; or its first occurrence after the
 * marker `after`), counted
 * the simple way: lines split at LF, columns in UTF-16 units from the last LF. A CR before the LF belongs to
 * the line it ends, so CRLF text gives the same positions as LF text.
 */
export function at(text: string, needle: string, file: string, after = ""): SourcePosition {
  const from = after === "" ? 0 : text.indexOf(after);
  assert.ok(from >= 0, `marker ${JSON.stringify(after)} not in text`);
  const offset = text.indexOf(needle, from);
  assert.ok(offset >= 0, `${JSON.stringify(needle)} not in text`);
  if (after === "")
    assert.equal(text.indexOf(needle, offset + 1), -1, `${JSON.stringify(needle)} is not unique`);
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - (before.lastIndexOf("\n") + 1) + 1;
  return { file, line, column };
}

/** One use by its image string (unique in the fixtures). */
export function byImage(uses: readonly ImageUse[], image: string): ImageUse {
  const found = uses.filter((u) => u.image === image);
  assert.equal(found.length, 1, `expected exactly one use of ${image}, got ${found.length}`);
  return found[0] as ImageUse;
}
