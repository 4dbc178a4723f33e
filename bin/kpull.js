#!/usr/bin/env node
// A checkout runs the TypeScript sources directly (Node 24 strips the types); the published package has
// no src/ and runs the compiled dist/ (Node does not strip types inside node_modules).
import { existsSync } from "node:fs";

const source = new URL("../src/cli/main.ts", import.meta.url);
await import(existsSync(source) ? source.href : new URL("../dist/cli/main.js", import.meta.url).href);
