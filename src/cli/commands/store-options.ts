// Flags and formatting shared by the store commands (images, rmi, verify, gc, pull).

import { createRequire } from "node:module";
import type * as Yaml from "yaml";
import { Store, storeRoot } from "../../store/core.ts";
import type { OutputFormat } from "../args.ts";
import type { CliIo } from "../io.ts";

export const storeOptions = {
  root: { type: "string" },
} as const;

export const storeOptionsHelp = `Store flags:
  --root DIR     the store (default: $KPULL_ROOT, else /var/lib/kpull as root, else $XDG_DATA_HOME/kpull or ~/.local/share/kpull)
`;

export function rootFrom(values: { root?: string | undefined }, io: CliIo): string {
  return storeRoot({ root: values.root, env: io.env });
}

/** Opens an existing store; read-only commands never create one. */
export function openExisting(values: { root?: string | undefined }, io: CliIo): Promise<Store> {
  return Store.open(rootFrom(values, io), { create: false });
}

export function writeStructured(io: CliIo, format: OutputFormat, value: unknown): void {
  // yaml is loaded only for -o yaml (it is 72 modules; JSON and text need none of it).
  if (format === "yaml")
    io.stdout.write((createRequire(import.meta.url)("yaml") as typeof Yaml).stringify(value));
  else io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Decimal units as docker and crictl print sizes: 512B, 7.4kB, 13.2MB, 1.05GB. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n}B`;
  const units = ["kB", "MB", "GB", "TB", "PB"];
  let value = n;
  let unit = "B";
  for (const u of units) {
    if (value < 1000) break;
    value /= 1000;
    unit = u;
  }
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)}${unit}`;
}

/** kubectl-style age: 45s, 12m, 5h, 3d. */
export function formatAge(fromMs: number, nowMs: number): string {
  const s = Math.max(0, Math.floor((nowMs - fromMs) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

/** `sha256:0123456789ab…` → `0123456789ab`. */
export function shortDigest(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1, digest.indexOf(":") + 13);
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
