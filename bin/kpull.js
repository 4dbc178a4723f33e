#!/usr/bin/env node
// The published package runs the compiled dist/; a checkout without a build runs the sources directly
// (Node 24 strips the types).
import { existsSync } from "node:fs";

const built = new URL("../dist/cli/main.js", import.meta.url);
await import(existsSync(built) ? built.href : new URL("../src/cli/main.ts", import.meta.url).href);
