// Shared by the reliability suite (docs/reliability.md): the scale switch, the figures each test records,
// and small helpers to run kpull against a store root.
//
// `npm test` runs every file here with small counts (a fast subset). `KPULL_RELIABILITY=full` (what
// `npm run test:reliability` sets) runs the long version: every crash point, ≥ 1,000,000 fuzz inputs, the
// 8-process run and the load test at full length. With KPULL_RELIABILITY_RESULTS=DIR every test appends its
// figures as JSON lines to DIR/<section>.jsonl, which test/reliability/report.ts turns into the tables of
// docs/reliability.md.

import { createHash } from "node:crypto";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chainIds } from "../../src/store/unpack/index.ts";
import { type KpullRun, runKpull, sha256, tarOf } from "../harness/index.ts";

export const FULL = process.env.KPULL_RELIABILITY === "full";

/** `fast` in `npm test`, `full` in the long run. */
export function scale<T>(fast: T, full: T): T {
  return FULL ? full : fast;
}

const RESULTS = process.env.KPULL_RELIABILITY_RESULTS ? resolve(process.env.KPULL_RELIABILITY_RESULTS) : null;

/** Appends one row of figures for docs/reliability.md (no-op unless KPULL_RELIABILITY_RESULTS is set). */
export function record(section: string, row: Record<string, unknown>): void {
  if (RESULTS === null) return;
  mkdirSync(RESULTS, { recursive: true });
  appendFileSync(
    join(RESULTS, `${section}.jsonl`),
    `${JSON.stringify({ ...row, mode: FULL ? "full" : "fast", at: new Date().toISOString() })}\n`,
  );
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `kpull-rel-${prefix}-`));
}

/** Deterministic incompressible bytes. */
export function noise(size: number, seed: string): Buffer {
  const parts: Buffer[] = [];
  let have = 0;
  for (let i = 0; have < size; i++) {
    const block = createHash("sha512").update(`${seed}-${i}`).digest();
    parts.push(block);
    have += block.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}

export const emptyHostsDir = tempDir("hosts");

/** Runs the kpull CLI on a store root, with an empty hosts dir and the registry host allowed over HTTP. */
export function kpull(
  args: readonly string[],
  options: { root?: string; insecure?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<KpullRun> {
  const full = [
    ...args,
    ...(options.root ? ["--root", options.root] : []),
    ...(options.insecure ? ["--insecure-registry", options.insecure, "--hosts-dir", emptyHostsDir] : []),
  ];
  return runKpull(full, {
    env: { KPULL_TEST_CRASH: "", ...options.env },
    ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
  });
}

/** Blob digests committed in a store, and partial ingests with their sizes. */
export function storeFiles(root: string): { blobs: Map<string, number>; partial: Map<string, number> } {
  const blobs = new Map<string, number>();
  const partial = new Map<string, number>();
  const list = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  for (const hex of list(join(root, "blobs", "sha256"))) {
    blobs.set(`sha256:${hex}`, statSync(join(root, "blobs", "sha256", hex)).size);
  }
  for (const name of list(join(root, "kpull", "ingest"))) {
    const m = /^sha256-([a-f0-9]{64})$/.exec(name);
    if (m) partial.set(`sha256:${m[1]}`, statSync(join(root, "kpull", "ingest", name)).size);
  }
  return { blobs, partial };
}

/**
 * "No unverified bytes kept": every committed blob hashes to its name, and every partial ingest is a true
 * prefix of the blob it is named after (`known` maps digests to their real bytes). Returns the problems.
 */
export function unverifiedBytes(root: string, known: ReadonlyMap<string, Buffer>): string[] {
  const problems: string[] = [];
  const { blobs, partial } = storeFiles(root);
  for (const digest of blobs.keys()) {
    const bytes = readFileSync(join(root, "blobs", "sha256", digest.slice(7)));
    const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (actual !== digest) problems.push(`blob ${digest} hashes to ${actual}`);
  }
  for (const [digest, size] of partial) {
    const real = known.get(digest);
    const bytes = readFileSync(join(root, "kpull", "ingest", `sha256-${digest.slice(7)}`));
    if (real === undefined) problems.push(`partial ${digest} (${size} bytes) of an unknown blob`);
    else if (size > real.length || !bytes.equals(real.subarray(0, size)))
      problems.push(`partial ${digest} (${size} bytes) is not a prefix of the blob`);
  }
  return problems;
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** The largest value (0 for none), without spreading a large array onto the stack. */
export function maxOf(values: readonly number[]): number {
  let max = 0;
  for (const v of values) if (v > max) max = v;
  return max;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** A layer's files, as tinyImage takes them. */
export type Files = Record<string, string | Buffer>;

/** ChainID → the files (path → sha256 of content) its snapshot must hold, for images given as their
 * layers' files (tinyImage's tars: regular files only, no deletions). */
export function expectedSnapshots(images: readonly (readonly Files[])[]): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const layers of images) {
    const chain = chainIds(layers.map((f) => sha256(tarOf(f))));
    const acc = new Map<string, string>();
    layers.forEach((layer, i) => {
      for (const [path, body] of Object.entries(layer)) acc.set(path, sha256(Buffer.from(body)));
      out.set(chain[i] as string, new Map(acc));
    });
  }
  return out;
}

/** The files of a snapshot directory: path → sha256 of content. */
function snapshotFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.set(p, sha256(readFileSync(join(dir, p))));
      else out.set(p, `<${e.isSymbolicLink() ? "symlink" : "other"}>`);
    }
  };
  walk("");
  return out;
}

/** Visible snapshots (named by a ChainID) that do not hold exactly their chain's files. */
export function partialSnapshots(
  root: string,
  expected: ReadonlyMap<string, ReadonlyMap<string, string>>,
): string[] {
  const dir = join(root, "kpull", "snapshots");
  if (!existsSync(dir)) return [];
  const bad: string[] = [];
  for (const name of readdirSync(dir)) {
    if (!/^sha256:[a-f0-9]{64}$/.test(name)) continue; // temporary directories are nobody's snapshot
    const want = expected.get(name);
    if (want === undefined) {
      bad.push(`${name}: not a chain of the test images`);
      continue;
    }
    const actual = snapshotFiles(join(dir, name));
    const same = actual.size === want.size && [...want].every(([p, h]) => actual.get(p) === h);
    if (!same) bad.push(`${name}: ${actual.size} of ${want.size} files`);
  }
  return bad;
}
