// The configuration file `.kpull.yaml`: mode, per-rule severity or off, and paths to ignore.
//
//   mode: always-unless-pinned      # always | always-unless-pinned | pinned | never
//   rules:
//     floating-tag: error           # error | warning | note | off
//     pull-policy: warning
//   ignore:                         # globs, relative to the directory of this file
//     - vendor/**
//     - "**/templates/tests/*.yaml"
//
// Found upward from the working directory (the first `.kpull.yaml` wins), or named with --config. Unknown
// keys, modes, rules and severities are errors, so a typo never silently turns a check off.

import { readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { isMap, isScalar, isSeq, parseDocument } from "yaml";
import { isRuleId } from "./rules/index.ts";
import { isMode, MODES, type Mode, type RuleId, SEVERITIES, type SeverityOrOff } from "./types.ts";

export const CONFIG_FILE = ".kpull.yaml";

export interface CheckConfig {
  /** The file it was read from; null for the built-in defaults. */
  readonly file: string | null;
  /** The directory `ignore` globs are relative to. */
  readonly baseDir: string;
  readonly mode: Mode | null;
  readonly rules: Readonly<Partial<Record<RuleId, SeverityOrOff>>>;
  readonly ignore: readonly string[];
}

/** A configuration file that cannot be used. Exit 2, like unreadable input. */
export class ConfigError extends Error {
  readonly code = "ConfigError" as const;
  readonly file: string;
  constructor(file: string, reason: string, line: number | null = null) {
    super(line === null ? `${file}: ${reason}` : `${file}:${line}: ${reason}`);
    this.name = "ConfigError";
    this.file = file;
  }
}

export function defaultConfig(baseDir: string = process.cwd()): CheckConfig {
  return { file: null, baseDir, mode: null, rules: {}, ignore: [] };
}

/** The nearest `.kpull.yaml` in `dir` or above it, or null. */
export async function findConfigFile(dir: string = process.cwd()): Promise<string | null> {
  let current = resolve(dir);
  for (;;) {
    const candidate = join(current, CONFIG_FILE);
    const info = await stat(candidate).catch(() => null);
    if (info?.isFile()) return candidate;
    const parent = dirname(current);
    if (parent === current) return null;
    current = parent;
  }
}

export async function loadConfig(file: string): Promise<CheckConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(file, code === "ENOENT" ? "no such file" : (error as Error).message);
  }
  return parseConfig(text, file, dirname(resolve(file)));
}

const KEYS = new Set(["mode", "rules", "ignore"]);

/** Parses the text of a configuration file; `baseDir` anchors its ignore globs. */
export function parseConfig(text: string, file: string, baseDir: string): CheckConfig {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number | undefined) =>
    offset === undefined ? null : text.slice(0, offset).split("\n").length;
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new ConfigError(file, `invalid YAML: ${e?.message.split("\n")[0]}`, lineOf(e?.pos[0]));
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return { ...defaultConfig(baseDir), file };
  if (!isMap(root)) throw new ConfigError(file, "expected a map with mode, rules and ignore");
  let mode: Mode | null = null;
  const rules: Partial<Record<RuleId, SeverityOrOff>> = {};
  const ignore: string[] = [];
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : "";
    const at = lineOf(isScalar(pair.key) ? pair.key.range?.[0] : undefined);
    const value = pair.value;
    if (!KEYS.has(key)) throw new ConfigError(file, `unknown key ${JSON.stringify(key)}`, at);
    if (key === "mode") {
      const m = isScalar(value) ? value.value : null;
      if (!isMode(m))
        throw new ConfigError(file, `mode ${JSON.stringify(m)} is not one of ${MODES.join(", ")}`, at);
      mode = m;
    } else if (key === "rules") {
      if (value === null || (isScalar(value) && value.value === null)) continue;
      if (!isMap(value)) throw new ConfigError(file, "rules must map rule ids to a severity or off", at);
      for (const rule of value.items) {
        const id = isScalar(rule.key) ? rule.key.value : null;
        const ruleAt = lineOf(isScalar(rule.key) ? rule.key.range?.[0] : undefined);
        if (!isRuleId(id)) throw new ConfigError(file, `unknown rule ${JSON.stringify(id)}`, ruleAt);
        // `off` may also be written as the YAML boolean false.
        const raw = isScalar(rule.value) ? rule.value.value : null;
        const severity = raw === false ? "off" : raw;
        if (severity !== "off" && !(SEVERITIES as readonly unknown[]).includes(severity)) {
          throw new ConfigError(
            file,
            `rule ${id}: ${JSON.stringify(raw)} is not one of ${[...SEVERITIES, "off"].join(", ")}`,
            ruleAt,
          );
        }
        rules[id] = severity as SeverityOrOff;
      }
    } else {
      if (value === null || (isScalar(value) && value.value === null)) continue;
      if (!isSeq(value)) throw new ConfigError(file, "ignore must be a list of path globs", at);
      for (const item of value.items) {
        const glob = isScalar(item) ? item.value : null;
        if (typeof glob !== "string" || glob === "")
          throw new ConfigError(file, "ignore must be a list of path globs", at);
        ignore.push(glob);
      }
    }
  }
  return { file, baseDir, mode, rules, ignore };
}

/**
 * Whether `path` (a file as given on the command line, relative to `cwd`) is ignored. Globs are matched
 * against the path relative to the configuration's directory, with `/` separators, gitignore-style: `*` and
 * `?` stay within a path segment, `**` crosses segments, a glob without `/` matches a file or directory name
 * at any depth, and a glob that matches a directory ignores everything below it. Stdin (`-`) is matched by
 * `renderedFrom`, the path of a Helm `# Source:` comment, when given.
 */
export function isPathIgnored(
  config: CheckConfig,
  path: string,
  options: { cwd?: string; renderedFrom?: string | null } = {},
): boolean {
  if (config.ignore.length === 0) return false;
  const candidates: string[] = [];
  if (path !== "-") {
    const absolute = isAbsolute(path) ? path : resolve(options.cwd ?? process.cwd(), path);
    const rel = relative(config.baseDir, absolute);
    if (rel !== "" && !rel.startsWith(`..${sep}`) && rel !== ".." && !isAbsolute(rel))
      candidates.push(rel.split(sep).join("/"));
  }
  if (options.renderedFrom) candidates.push(options.renderedFrom.replace(/^\.\//, ""));
  if (candidates.length === 0) return false;
  const patterns = config.ignore.map(globToRegExp);
  return candidates.some((candidate) => {
    const parts = candidate.split("/");
    for (let n = parts.length; n >= 1; n--) {
      const prefix = parts.slice(0, n).join("/");
      if (patterns.some((re) => re.test(prefix))) return true;
    }
    return false;
  });
}

const globCache = new Map<string, RegExp>();

/** A gitignore-style glob as an anchored regular expression over `/`-separated relative paths. */
export function globToRegExp(glob: string): RegExp {
  const cached = globCache.get(glob);
  if (cached !== undefined) return cached;
  let g = glob.replace(/^\.\//, "");
  const anchored = g.replace(/\/$/, "").includes("/");
  g = g.replace(/^\//, "").replace(/\/$/, "");
  let re = "";
  for (let i = 0; i < g.length; i++) {
    const c = g[i] as string;
    if (c === "*") {
      if (g[i + 1] === "*") {
        const slashAfter = g[i + 2] === "/";
        re += slashAfter ? "(?:.*/)?" : ".*";
        i += slashAfter ? 2 : 1;
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = g.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        const body = g
          .slice(i + 1, end)
          .replace(/^!/, "^")
          .replace(/\\/g, "\\\\");
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  const out = new RegExp(`^${anchored ? "" : "(?:.*/)?"}${re}$`);
  globCache.set(glob, out);
  return out;
}
