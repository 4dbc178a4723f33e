#!/usr/bin/env node
// A checkout runs the TypeScript sources directly (Node 24 strips the types); the published package has
// no src/ and runs the compiled dist/ (Node does not strip types inside node_modules).
//
// Start-up is most of a short kpull run, so this launcher does as little as it can:
// - `kpull --version` is answered here from package.json (what the CLI's `version()` reads), loading no
//   module of the CLI at all;
// - builtins come from process.getBuiltinModule: an ES import of node:fs or node:module builds a module
//   namespace over every export, a few milliseconds of a 30 ms start;
// - Node's compile cache (in the OS temp dir, or $NODE_COMPILE_CACHE) keeps compiled code, and the
//   type-stripped source of .ts files, between runs, so a second start skips the TypeScript stripper and
//   most compiling. Entries are checked against the source: edits are picked up.
// The CLI itself imports a command's modules only when that command runs (src/cli/index.ts).
const { existsSync, readFileSync } = process.getBuiltinModule("node:fs");

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "version")) {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  process.stdout.write(`kpull ${pkg.version}\n`);
} else {
  process.getBuiltinModule("node:module").enableCompileCache?.();
  const source = new URL("../src/cli/main.ts", import.meta.url);
  await import(existsSync(source) ? source.href : new URL("../dist/cli/main.js", import.meta.url).href);
}
