// From command-line inputs to manifest sources: expand directories, drop ignored paths, read every file,
// and collect the ones that cannot be read instead of stopping at the first.

import { resolve } from "node:path";
import {
  expandInputs,
  type ImageUse,
  ManifestError,
  type ManifestSource,
  type ReadOptions,
  readManifestSource,
} from "../manifests/index.ts";
import { type CheckConfig, isPathIgnored } from "./config.ts";

export interface LoadedSources {
  readonly sources: readonly ManifestSource[];
  /** Files that could not be read (or parsed, when parsing is asked for): one ManifestError each. */
  readonly errors: readonly ManifestError[];
  /** Files skipped by the configuration's ignore globs. */
  readonly ignored: readonly string[];
}

export interface LoadOptions extends ReadOptions {
  readonly config: CheckConfig;
  readonly cwd?: string;
}

/**
 * Reads every input. A path that does not exist is an error for that path only; so is a file that is
 * binary, too large or undecodable. Paths given explicitly are checked against the ignore globs too.
 */
export async function loadSources(inputs: readonly string[], options: LoadOptions): Promise<LoadedSources> {
  const files: string[] = [];
  const seen = new Set<string>();
  const errors: ManifestError[] = [];
  for (const input of inputs) {
    try {
      for (const f of await expandInputs([input])) {
        const key = f === "-" ? f : resolve(f);
        if (seen.has(key)) continue;
        seen.add(key);
        files.push(f);
      }
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      errors.push(error);
    }
  }
  const sources: ManifestSource[] = [];
  const ignored: string[] = [];
  const cwd = options.cwd ?? process.cwd();
  for (const file of files) {
    if (isPathIgnored(options.config, file, { cwd })) {
      ignored.push(file);
      continue;
    }
    try {
      sources.push(await readManifestSource(file, options));
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      errors.push(error);
    }
  }
  return { sources, errors, ignored };
}

/** Drops uses from stdin whose Helm `# Source:` path is ignored by the configuration. */
export function withoutIgnoredSources(uses: readonly ImageUse[], config: CheckConfig): ImageUse[] {
  if (config.ignore.length === 0) return [...uses];
  return uses.filter(
    (u) =>
      u.file !== "-" ||
      u.renderedFrom === null ||
      !isPathIgnored(config, "-", { renderedFrom: u.renderedFrom }),
  );
}
