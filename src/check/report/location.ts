// Paths and fingerprints shared by the machine-readable reporters.

import { createHash } from "node:crypto";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import type { Finding } from "../types.ts";

/**
 * Where a finding lives for a code host: a `/`-separated path relative to `root` (the repository root,
 * default the working directory), or null for stdin without a Helm `# Source:` comment. For stdin with one,
 * the template's path and `rendered: true` (the line numbers are those of the rendered stream).
 */
export function findingPath(
  f: Finding,
  root: string = process.cwd(),
): { path: string; absolute: boolean; rendered: boolean } | null {
  if (f.file === "-") {
    return f.renderedFrom === null ? null : { path: f.renderedFrom, absolute: false, rendered: true };
  }
  const abs = isAbsolute(f.file) ? f.file : resolve(root, f.file);
  const rel = relative(root, abs);
  if (rel === "" || rel.startsWith(`..${sep}`) || rel === ".." || isAbsolute(rel))
    return { path: abs, absolute: true, rendered: false };
  return { path: rel.split(sep).join("/"), absolute: false, rendered: false };
}

/** A URI reference for SARIF's artifactLocation: relative paths percent-encoded per segment. */
export function artifactUri(f: Finding, root?: string): string {
  const p = findingPath(f, root);
  if (p === null) return "stdin";
  if (p.absolute) return pathToFileURL(p.path).href;
  return p.path
    .split("/")
    .map((s) => encodeURIComponent(s))
    .join("/");
}

/**
 * A fingerprint that survives edits above the line: rule, file, object identity and the field path, not
 * the line number or the image.
 */
export function fingerprint(f: Finding, root?: string): string {
  const p = findingPath(f, root)?.path ?? "stdin";
  const identity = [f.rule, p, f.apiVersion ?? "", f.kind, f.namespace ?? "", f.name ?? "", f.path.join("/")];
  return createHash("sha256").update(identity.join("\u0000")).digest("hex").slice(0, 32);
}
