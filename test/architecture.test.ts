// Enforces the module map of DESIGN.md: src/<module>/index.ts is each module's surface (with core.ts, where a
// module has one: the subset of index.ts a pull loads, which index.ts re-exports whole), and a module imports
// only modules listed before it (lower in the stack). A new import that breaks either rule fails here.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, it } from "node:test";

/** Lowest first, as in DESIGN.md. */
export const MODULE_ORDER = [
  "reference",
  "policy",
  "registry",
  "store",
  "cri",
  "node",
  "manifests",
  "check",
  "admission",
  "cli",
] as const;

const SRC = resolve(import.meta.dirname, "..", "src");
const IMPORT_RE =
  /(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));
}

/** Relative imports of a file, resolved to absolute paths. */
export function relativeImports(file: string, text = readFileSync(file, "utf8")): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2];
    if (spec?.startsWith(".")) out.push(resolve(dirname(file), spec));
  }
  return out;
}

function moduleOf(path: string): string | null {
  const rel = relative(SRC, path);
  if (rel.startsWith("..")) return null;
  const parts = rel.split(sep);
  return parts.length > 1 ? (parts[0] ?? null) : null; // files directly in src/ (index.ts) belong to no module
}

export function violations(files: readonly { file: string; text: string }[]): string[] {
  const found: string[] = [];
  for (const { file, text } of files) {
    const from = moduleOf(file);
    for (const target of relativeImports(file, text)) {
      const to = moduleOf(target);
      const where = `${relative(SRC, file)} imports ${relative(SRC, target)}`;
      if (to === null) {
        if (relative(SRC, target).startsWith("..") && !file.endsWith(".test.ts"))
          found.push(`${where}: outside src`);
        continue;
      }
      if (from === to) continue;
      if (target !== join(SRC, to, "index.ts") && target !== join(SRC, to, "core.ts"))
        found.push(`${where}: only ${to}/index.ts (or ${to}/core.ts) may be imported`);
      if (from === null) continue; // src/index.ts re-exports the public API of every module
      const fromRank = MODULE_ORDER.indexOf(from as (typeof MODULE_ORDER)[number]);
      const toRank = MODULE_ORDER.indexOf(to as (typeof MODULE_ORDER)[number]);
      if (fromRank < 0) found.push(`${where}: module ${from} is not in DESIGN.md's map`);
      else if (toRank < 0) found.push(`${where}: module ${to} is not in DESIGN.md's map`);
      else if (toRank >= fromRank) found.push(`${where}: ${from} may only import modules below it`);
    }
  }
  return found;
}

describe("module map", () => {
  it("every module folder is in the map and has an index.ts", () => {
    const dirs = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory());
    for (const dir of dirs) {
      assert.ok(
        MODULE_ORDER.includes(dir.name as (typeof MODULE_ORDER)[number]),
        `src/${dir.name} not in map`,
      );
      assert.ok(readdirSync(join(SRC, dir.name)).includes("index.ts"), `src/${dir.name}/index.ts is missing`);
    }
  });

  it("a module's core.ts is part of its index.ts, never a surface of its own", () => {
    for (const dir of readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory())) {
      if (!readdirSync(join(SRC, dir.name)).includes("core.ts")) continue;
      const index = readFileSync(join(SRC, dir.name, "index.ts"), "utf8");
      assert.match(
        index,
        /^export \* from "\.\/core\.ts";$/m,
        `src/${dir.name}/index.ts must re-export core.ts`,
      );
    }
  });

  it("no module imports a module above it or another module's inner file", () => {
    const files = sourceFiles(SRC).map((file) => ({ file, text: readFileSync(file, "utf8") }));
    assert.ok(files.length > 0);
    assert.deepEqual(violations(files), []);
  });

  it("the checker itself catches both kinds of violation", () => {
    const found = violations([
      { file: join(SRC, "reference", "x.ts"), text: 'import { a } from "../policy/index.ts";' },
      { file: join(SRC, "cli", "y.ts"), text: 'const m = await import("../reference/grammar.ts");' },
      {
        file: join(SRC, "check", "z.ts"),
        text: 'export { b } from "../manifests/index.ts";\nimport "./local.ts";',
      },
    ]);
    assert.deepEqual(found, [
      "reference/x.ts imports policy/index.ts: reference may only import modules below it",
      "cli/y.ts imports reference/grammar.ts: only reference/index.ts (or reference/core.ts) may be imported",
    ]);
  });
});
