// Test helpers (not a test file): a small deterministic tar writer that can also write the malformed and
// hostile archives the tests need, compression wrappers, a tree lister, and a sandbox with a sentinel
// directory beside the root so that any escape is seen.

import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync, zstdCompressSync } from "node:zlib";

export type Kind = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";
const FLAGS: Record<Kind, string> = {
  file: "0",
  hardlink: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
};

export interface Entry {
  name: string;
  /** An entry kind, or a raw typeflag character. */
  type?: Kind | string;
  body?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  /** PAX records written in an `x` header before the entry. */
  pax?: Record<string, string>;
  /** Write the name (and linkname) as GNU `L`/`K` entries instead of PAX when too long. */
  gnu?: boolean;
  /** The size field, when it should differ from the body's length. */
  size?: number;
}

/** One 512-byte ustar header block. */
export function header(f: {
  name: string;
  flag: string;
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  gnuMagic?: boolean;
}): Buffer {
  const b = Buffer.alloc(512);
  const name = Buffer.from(f.name);
  name.copy(b, 0, 0, Math.min(100, name.length));
  octal(b, 100, 8, f.mode ?? 0o644);
  octal(b, 108, 8, f.uid ?? 0);
  octal(b, 116, 8, f.gid ?? 0);
  octal(b, 124, 12, f.size ?? 0);
  octal(b, 136, 12, f.mtime ?? 1_600_000_000);
  b.write(f.flag, 156, "latin1");
  const link = Buffer.from(f.linkname ?? "");
  link.copy(b, 157, 0, Math.min(100, link.length));
  if (f.gnuMagic) b.write("ustar  \0", 257, "latin1");
  else b.write("ustar\u000000", 257, "latin1");
  octal(b, 329, 8, f.devmajor ?? 0);
  octal(b, 337, 8, f.devminor ?? 0);
  return checksum(b);
}

/** Recomputes the checksum field of a header block (after a test tampered with it). */
export function checksum(b: Buffer): Buffer {
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return b;
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  b.write(`${v.toString(8).padStart(len - 1, "0")}\0`, off, "latin1");
}

export function paxBody(records: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(records)) {
    const kv = Buffer.from(` ${k}=${v}\n`);
    let len = kv.length + 1;
    while (String(len).length + kv.length !== len) len = String(len).length + kv.length;
    parts.push(Buffer.from(String(len)), kv);
  }
  return Buffer.concat(parts);
}

function padded(body: Buffer): Buffer[] {
  const pad = (512 - (body.length % 512)) % 512;
  return pad === 0 ? [body] : [body, Buffer.alloc(pad)];
}

/** The blocks of one entry (metadata entries included), without the end-of-archive marker. */
export function entryBlocks(e: Entry): Buffer[] {
  const out: Buffer[] = [];
  const flag = e.type === undefined ? "0" : (FLAGS[e.type as Kind] ?? e.type);
  const body = typeof e.body === "string" ? Buffer.from(e.body) : (e.body ?? Buffer.alloc(0));
  const pax: Record<string, string> = { ...e.pax };
  let name = e.name;
  let linkname = e.linkname ?? "";
  if (Buffer.byteLength(name) > 100) {
    if (e.gnu) {
      const long = Buffer.from(`${name}\0`);
      out.push(
        header({ name: "././@LongLink", flag: "L", size: long.length, gnuMagic: true }),
        ...padded(long),
      );
    } else pax.path = name;
    name = name.slice(0, 99);
  }
  if (Buffer.byteLength(linkname) > 100) {
    if (e.gnu) {
      const long = Buffer.from(`${linkname}\0`);
      out.push(
        header({ name: "././@LongLink", flag: "K", size: long.length, gnuMagic: true }),
        ...padded(long),
      );
    } else pax.linkpath = linkname;
    linkname = linkname.slice(0, 99);
  }
  if (Object.keys(pax).length > 0) {
    const p = paxBody(pax);
    out.push(header({ name: `PaxHeaders/${name.slice(0, 80)}`, flag: "x", size: p.length }), ...padded(p));
  }
  out.push(
    header({
      name,
      flag,
      size: e.size ?? body.length,
      mode: e.mode ?? (flag === "5" ? 0o755 : flag === "2" ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? 1_600_000_000,
      linkname,
      devmajor: e.devmajor ?? 0,
      devminor: e.devminor ?? 0,
      gnuMagic: e.gnu ?? false,
    }),
  );
  if (body.length > 0) out.push(...padded(body));
  return out;
}

/** A whole archive, with the two zero blocks at the end unless `end: false`. */
export function tar(entries: readonly Entry[], opts: { end?: boolean } = {}): Buffer {
  const blocks = entries.flatMap(entryBlocks);
  if (opts.end ?? true) blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export function sha256(b: Buffer): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

export const gzip = (b: Buffer): Buffer => gzipSync(b);
export const zstd = (b: Buffer): Buffer => zstdCompressSync(b);

/** A readable stream of `b`, in chunks of `chunk` bytes (to exercise boundaries). */
export function streamOf(b: Buffer, chunk = 7919): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < b.length; i += chunk) yield b.subarray(i, i + chunk);
    })(),
    { objectMode: false },
  );
}

export interface Node {
  path: string;
  type: "file" | "dir" | "symlink" | "fifo" | "char" | "block" | "other";
  mode: number;
  /** File contents (utf8), symlink target, or "" */
  data: string;
  mtime: number;
  uid: number;
  gid: number;
  ino: number;
  nlink: number;
}

/** Every path under `root` (sorted), without following symlinks. */
export async function tree(root: string): Promise<Node[]> {
  const out: Node[] = [];
  async function walk(rel: string): Promise<void> {
    const names = (await fs.readdir(join(root, rel))).sort();
    for (const name of names) {
      const p = rel === "" ? name : `${rel}/${name}`;
      const full = join(root, p);
      const st = await fs.lstat(full);
      const type = st.isFile()
        ? "file"
        : st.isDirectory()
          ? "dir"
          : st.isSymbolicLink()
            ? "symlink"
            : st.isFIFO()
              ? "fifo"
              : st.isCharacterDevice()
                ? "char"
                : st.isBlockDevice()
                  ? "block"
                  : "other";
      const data =
        type === "file" ? await fs.readFile(full, "utf8") : type === "symlink" ? await fs.readlink(full) : "";
      out.push({
        path: p,
        type,
        mode: st.mode & 0o7777,
        data,
        mtime: Math.round(st.mtimeMs / 1000),
        uid: st.uid,
        gid: st.gid,
        ino: st.ino,
        nlink: st.nlink,
      });
      if (type === "dir") await walk(p);
    }
  }
  await walk("");
  return out;
}

/** `path → data` for files and symlinks, `path/` for directories: a compact view for assertions. */
export async function listing(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of await tree(root)) {
    if (n.type === "dir") out[`${n.path}/`] = "";
    else if (n.type === "symlink") out[n.path] = `-> ${n.data}`;
    else if (n.type === "file") out[n.path] = n.data;
    else out[n.path] = `<${n.type}>`;
  }
  return out;
}

export interface Sandbox {
  /** The parent of everything below. */
  dir: string;
  /** An applier's root (empty directory). */
  root: string;
  /** Where prepareSnapshot keeps snapshots. */
  snapshots: string;
  /** A directory beside the root holding `secret`; nothing may ever change in it. */
  sentinel: string;
  /** Throws if anything appeared, changed or vanished outside `root` and `snapshots`. */
  assertUntouched(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function sandbox(): Promise<Sandbox> {
  const dir = await fs.mkdtemp(join(tmpdir(), "kpull-unpack-"));
  const root = join(dir, "root");
  const snapshots = join(dir, "snapshots");
  const sentinel = join(dir, "sentinel");
  await fs.mkdir(root);
  await fs.mkdir(snapshots);
  await fs.mkdir(sentinel);
  await fs.writeFile(join(sentinel, "secret"), "do not touch\n", { mode: 0o600 });
  const before = JSON.stringify(await tree(sentinel));
  return {
    dir,
    root,
    snapshots,
    sentinel,
    async assertUntouched() {
      const top = (await fs.readdir(dir)).sort();
      if (JSON.stringify(top) !== JSON.stringify(["root", "sentinel", "snapshots"])) {
        throw new Error(`something was written beside the root: ${top.join(", ")}`);
      }
      const after = JSON.stringify(await tree(sentinel));
      if (after !== before) throw new Error(`the sentinel directory changed:\n${before}\n${after}`);
    },
    async cleanup() {
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Builds a two-layer chain with read-only and unreadable entries, then removes it: what an unprivileged
 * store must manage. Run as a non-root user (the snapshot test spawns it with setpriv when it is root).
 */
export async function rootlessScenario(dir: string): Promise<{
  modes: Record<string, string>;
  warnings: string[];
  left: string[];
}> {
  const { applyLayer, chainIds, prepareSnapshot, removeSnapshot } = await import("./index.ts");
  const snapshots = join(dir, "snapshots");
  const layers = [
    tar([
      { name: "ro/", type: "dir", mode: 0o555 },
      { name: "ro/f", body: "f", mode: 0o444 },
      { name: "shadow", body: "s", mode: 0o000 },
      { name: "locked/", type: "dir", mode: 0o000 },
      { name: "locked/x", body: "x" },
    ]),
    tar([
      { name: "ro/g", body: "g", mode: 0o444 },
      { name: "locked/.wh.x", body: "" },
      { name: "shadow", body: "s2", mode: 0o000 },
    ]),
  ];
  const ids = chainIds(layers.map(sha256));
  const warnings: string[] = [];
  const paths: string[] = [];
  for (const [i, t] of layers.entries()) {
    const r = await prepareSnapshot(
      snapshots,
      i === 0 ? null : (ids[i - 1] as string),
      ids[i] as string,
      async (d) => {
        const res = await applyLayer(d, streamOf(t), "none", sha256(t));
        for (const w of res.warnings) warnings.push(`${w.kind}:${w.path}`);
        return res;
      },
      { durable: false },
    );
    paths.push(r.path);
  }
  const modes: Record<string, string> = {};
  for (const n of await tree(paths[1] as string)) modes[n.path] = `${n.type} ${n.mode.toString(8)} ${n.data}`;
  for (const p of paths) await removeSnapshot(p);
  return { modes, warnings, left: await fs.readdir(snapshots) };
}
