// A streaming tar reader: ustar, GNU and PAX, the subset layers use, read the way Go's archive/tar (and so
// containerd) reads it. Pull-based: the caller asks for the next header, then reads or skips the body, so
// backpressure is exact and nothing is buffered beyond one header block or one metadata entry (≤ 1 MiB).
//
// Strings are "byte strings": one char per byte (latin1), so names that are not UTF-8 survive unchanged.

import { UnpackError } from "./errors.ts";

export const BLOCK = 512;
/** Largest PAX or GNU long-name entry accepted, as Go's archive/tar (`maxSpecialFileSize`). */
export const MAX_META_BYTES = 1 << 20;

export type EntryType = "file" | "hardlink" | "symlink" | "chardev" | "blockdev" | "dir" | "fifo";

export interface TarEntry {
  readonly type: EntryType;
  /** The raw typeflag character (for messages). */
  readonly typeflag: string;
  /** Byte string (latin1): after PAX `path` and GNU `L` overrides, uncleaned. */
  readonly name: string;
  /** Byte string (latin1): after PAX `linkpath` and GNU `K`. */
  readonly linkname: string;
  /** Bytes of body data (0 for header-only types, whatever the header says, as Go does). */
  readonly size: number;
  /** Permission bits including setuid, setgid and sticky (mode & 0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch, fractional when PAX gives a fraction. */
  readonly mtime: number;
  readonly devmajor: number;
  readonly devminor: number;
  /** `SCHILY.xattr.<name>` PAX records: name (byte string) → raw value. */
  readonly xattrs: ReadonlyMap<string, Buffer>;
}

/** A byte source over an async iterator of chunks, handing out subarrays without copying. */
export class ByteSource {
  private readonly it: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;
  private ended = false;
  /** Bytes handed out so far. */
  position = 0;

  constructor(it: AsyncIterator<Buffer>) {
    this.it = it;
  }

  private async fill(): Promise<boolean> {
    while (this.off >= this.buf.length) {
      if (this.ended) return false;
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        return false;
      }
      this.buf = r.value;
      this.off = 0;
    }
    return true;
  }

  /** Up to `max` bytes (at least 1), or null at the end of the stream. */
  async read(max: number): Promise<Buffer | null> {
    if (!(await this.fill())) return null;
    const n = Math.min(max, this.buf.length - this.off);
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    this.position += n;
    return out;
  }

  /** Exactly `n` bytes; null if the stream ends before the first byte; "short" if it ends after some. */
  async readExact(n: number): Promise<Buffer | null | "short"> {
    const first = await this.read(n);
    if (first === null) return null;
    if (first.length === n) return first;
    const parts: Buffer[] = [first];
    let got = first.length;
    while (got < n) {
      const more = await this.read(n - got);
      if (more === null) return "short";
      parts.push(more);
      got += more.length;
    }
    return Buffer.concat(parts, n);
  }

  /** Skips `n` bytes; false if the stream ends first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      const c = await this.read(Math.min(left, 1 << 20));
      if (c === null) return false;
      left -= c.length;
    }
    return true;
  }

  /** Reads and discards everything left. */
  async drain(): Promise<void> {
    while ((await this.read(Number.MAX_SAFE_INTEGER)) !== null) {}
  }
}

const HEADER_ONLY = new Set(["1", "2", "3", "4", "5", "6"]);

function bad(message: string, entry?: string): UnpackError {
  return new UnpackError(
    "bad-archive",
    `invalid tar archive: ${message}`,
    entry === undefined ? {} : { entry },
  );
}

export class TarReader {
  private readonly src: ByteSource;
  /** Body bytes of the current entry not yet read, and the padding after them. */
  private bodyLeft = 0;
  private padLeft = 0;
  private done = false;
  private seenHeader = false;

  constructor(src: ByteSource) {
    this.src = src;
  }

  /** The next entry (after any metadata entries), or null at the end of the archive. */
  async next(): Promise<TarEntry | null> {
    if (this.done) return null;
    await this.skipRest();
    let pax: Map<string, string> | undefined;
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const block = await this.src.readExact(BLOCK);
      if (block === "short") throw bad("unexpected end of data in a header");
      if (block === null) {
        // Go's reader accepts an archive that ends at a header boundary without the two zero blocks; but
        // metadata must be followed by the entry it describes.
        if (pax || longName !== undefined || longLink !== undefined)
          throw bad("unexpected end of data after a metadata entry");
        this.done = true;
        return null;
      }
      if (isZero(block)) {
        const second = await this.src.readExact(BLOCK);
        if (second === "short") throw bad("unexpected end of data in the end-of-archive marker");
        if (second !== null && !isZero(second)) throw bad("a lone zero block inside the archive");
        if (pax || longName !== undefined || longLink !== undefined)
          throw bad("end of archive after a metadata entry");
        this.done = true;
        return null;
      }
      const h = parseHeader(block, !this.seenHeader);
      this.seenHeader = true;
      const flag = h.typeflag;
      if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
        if (h.size > MAX_META_BYTES) {
          throw bad(
            `${describeMeta(flag)} of ${h.size} bytes exceeds the ${MAX_META_BYTES}-byte limit`,
            h.name,
          );
        }
        const body = await this.src.readExact(h.size);
        if (body === "short" || (body === null && h.size > 0))
          throw bad("unexpected end of data in a metadata entry");
        if (!(await this.src.skip(pad(h.size)))) throw bad("unexpected end of data in padding");
        const data = body ?? Buffer.alloc(0);
        if (flag === "x") pax = parsePax(data, pax);
        else if (flag === "L") longName = cString(data);
        else if (flag === "K") longLink = cString(data);
        // "g": global headers are ignored (spec oci.md §7.1)
        continue;
      }
      const entry = finish(h, pax, longName, longLink);
      this.bodyLeft = entry.size;
      this.padLeft = pad(entry.size);
      return entry;
    }
  }

  /** The current entry's body, chunk by chunk (subarrays valid until the next read). */
  async *body(): AsyncGenerator<Buffer> {
    while (this.bodyLeft > 0) {
      const c = await this.src.read(this.bodyLeft);
      if (c === null) throw bad("unexpected end of data in a file body");
      this.bodyLeft -= c.length;
      yield c;
    }
  }

  private async skipRest(): Promise<void> {
    const n = this.bodyLeft + this.padLeft;
    this.bodyLeft = 0;
    this.padLeft = 0;
    if (n > 0 && !(await this.src.skip(n))) throw bad("unexpected end of data in a file body");
  }
}

function describeMeta(flag: string): string {
  return flag === "x" ? "a PAX header" : flag === "g" ? "a PAX global header" : "a GNU long name";
}

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Bytes up to the first NUL, as a byte string. */
function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.toString("latin1", 0, nul < 0 ? b.length : nul);
}

interface RawHeader {
  typeflag: string;
  name: string;
  linkname: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  devmajor: number;
  devminor: number;
}

function parseHeader(b: Buffer, first: boolean): RawHeader {
  let stored: number;
  try {
    stored = parseOctal(b.subarray(148, 156), "checksum");
  } catch {
    stored = -1;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : (b[i] as number);
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (stored !== unsigned && stored !== signed) {
    throw bad(first ? "not a tar archive (header checksum mismatch)" : "header checksum mismatch");
  }
  const magic = b.toString("latin1", 257, 263);
  const version = b.toString("latin1", 263, 265);
  let name = cString(b.subarray(0, 100));
  if (magic === "ustar\0" && version === "00") {
    // POSIX ustar: a prefix joins the name; star's variant keeps times in the last bytes of that field
    const star = b.toString("latin1", 508, 512) === "tar\0";
    const prefix = cString(b.subarray(345, star ? 476 : 500));
    if (prefix !== "") name = `${prefix}/${name}`;
  }
  const ustar = magic === "ustar\0" || magic === "ustar ";
  const n = (start: number, len: number, what: string) => parseNumeric(b.subarray(start, start + len), what);
  let typeflag = String.fromCharCode(b[156] as number);
  if (typeflag === "\0") typeflag = name.endsWith("/") ? "5" : "0"; // pre-POSIX regular file or directory
  return {
    typeflag,
    name,
    linkname: cString(b.subarray(157, 257)),
    size: n(124, 12, "size"),
    mode: n(100, 8, "mode"),
    uid: n(108, 8, "uid"),
    gid: n(116, 8, "gid"),
    mtime: n(136, 12, "mtime"),
    devmajor: ustar ? n(329, 8, "devmajor") : 0,
    devminor: ustar ? n(337, 8, "devminor") : 0,
  };
}

/** Octal (NUL/space padded, as Go trims it) or base-256 (high bit set). */
function parseNumeric(b: Buffer, what: string): number {
  const first = b[0] as number;
  if (first & 0x80) {
    // base-256, two's complement after the marker bit; bit 6 of the first byte is the sign (as Go reads it)
    const inv = first & 0x40 ? 0xff : 0;
    let v = 0;
    for (let i = 0; i < b.length; i++) {
      let byte = (b[i] as number) ^ inv;
      if (i === 0) byte &= 0x7f;
      v = v * 256 + byte;
      if (v > Number.MAX_SAFE_INTEGER) throw bad(`${what} field out of range`);
    }
    return inv ? -v - 1 : v;
  }
  return parseOctal(b, what);
}

function parseOctal(b: Buffer, what: string): number {
  const s = b.toString("latin1").replace(/^[ \0]+|[ \0]+$/g, "");
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw bad(`${what} field is not octal`);
  const v = Number.parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw bad(`${what} field out of range`);
  return v;
}

/** PAX records `"%d %s=%s\n"`, merged over `prev` (a later record wins). */
function parsePax(data: Buffer, prev: Map<string, string> | undefined): Map<string, string> {
  const out = new Map(prev);
  let off = 0;
  while (off < data.length) {
    if (data[off] === 0) break; // NUL padding after the records (some writers)
    const sp = data.indexOf(0x20, off);
    const lenText = sp < 0 ? "" : data.toString("latin1", off, sp);
    const len = /^[1-9][0-9]{0,9}$/.test(lenText) ? Number(lenText) : 0;
    if (len === 0 || off + len > data.length || data[off + len - 1] !== 0x0a)
      throw bad("malformed PAX record");
    const record = data.toString("latin1", sp + 1, off + len - 1);
    const eq = record.indexOf("=");
    if (eq <= 0) throw bad("malformed PAX record");
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if ((key === "path" || key === "linkpath") && value.includes("\0")) throw bad(`PAX ${key} contains NUL`);
    out.set(key, value);
    off += len;
  }
  return out;
}

function finish(
  h: RawHeader,
  pax: Map<string, string> | undefined,
  longName: string | undefined,
  longLink: string | undefined,
): TarEntry {
  let { name, linkname, size, uid, gid, mtime } = h;
  const xattrs = new Map<string, Buffer>();
  for (const [key, value] of pax ?? []) {
    if (key.startsWith("GNU.sparse.")) {
      throw new UnpackError("unsupported-entry", `unsupported tar entry ${show(name)}: GNU sparse file`, {
        entry: show(name),
      });
    }
    if (value === "") continue; // an empty value deletes the record: the header field stands
    switch (key) {
      case "path":
        name = value;
        break;
      case "linkpath":
        linkname = value;
        break;
      case "size":
        size = paxInt(value, key);
        break;
      case "uid":
        uid = paxInt(value, key);
        break;
      case "gid":
        gid = paxInt(value, key);
        break;
      case "mtime":
        if (!/^-?[0-9]+(\.[0-9]*)?$/.test(value)) throw bad("PAX mtime is not a number");
        mtime = Number(value);
        break;
      default:
        if (key.startsWith("SCHILY.xattr.")) xattrs.set(key.slice(13), Buffer.from(value, "latin1"));
    }
  }
  if (longName !== undefined) name = longName;
  if (longLink !== undefined) linkname = longLink;
  const type = entryType(h.typeflag, name);
  if (size < 0) throw bad("negative size", show(name));
  if (uid < 0 || uid > 0xffffffff || gid < 0 || gid > 0xffffffff)
    throw bad("uid or gid out of range", show(name));
  return {
    type,
    typeflag: h.typeflag,
    name,
    linkname,
    size: HEADER_ONLY.has(h.typeflag) ? 0 : size,
    mode: h.mode & 0o7777,
    uid,
    gid,
    mtime,
    devmajor: h.devmajor,
    devminor: h.devminor,
    xattrs,
  };
}

function paxInt(value: string, key: string): number {
  if (!/^[0-9]+$/.test(value)) throw bad(`PAX ${key} is not a decimal number`);
  const v = Number(value);
  if (!Number.isSafeInteger(v)) throw bad(`PAX ${key} out of range`);
  return v;
}

function entryType(flag: string, name: string): EntryType {
  switch (flag) {
    case "0":
    case "7":
      return "file";
    case "1":
      return "hardlink";
    case "2":
      return "symlink";
    case "3":
      return "chardev";
    case "4":
      return "blockdev";
    case "5":
      return "dir";
    case "6":
      return "fifo";
    default:
      throw new UnpackError(
        "unsupported-entry",
        `unhandled tar header type ${JSON.stringify(flag)} for ${JSON.stringify(show(name))}`,
        { entry: show(name) },
      );
  }
}

/** A byte string shown as UTF-8 (for messages). */
export function show(b: string): string {
  return Buffer.from(b, "latin1").toString("utf8");
}
