// The layer stream up to the tar reader: sniff (when asked), decompress on libuv's threadpool, hash and
// count the uncompressed bytes, and enforce the bomb limits while the bytes flow. Nothing is buffered beyond
// the streams' high-water marks.

import { createHash, type Hash } from "node:crypto";
import { pipeline, Readable } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import { UnpackError } from "./errors.ts";
import { type Compression, sniffCompression } from "./mediatype.ts";

/** The ratio limit applies only after this many uncompressed bytes (a small layer may compress very well). */
export const RATIO_GRACE_BYTES = 64 * 1024 * 1024;
/** Decompressed chunk size, and how far the decompressor may run ahead of the applier. */
const CHUNK = 256 * 1024;
const READ_AHEAD = 4 * 1024 * 1024;

export interface StreamLimits {
  maxUncompressedBytes: number;
  maxRatio: number;
  /** Free bytes on the root's filesystem when the apply started (Infinity if unknown). */
  freeBytes: number;
}

export interface StreamStats {
  compression: Compression;
  compressed: number;
  uncompressed: number;
  readonly hash: Hash;
}

/**
 * The uncompressed bytes of `layer`, hashed with `algorithm` and counted into `stats` as they are yielded.
 * Errors of the source or the decompressor surface from the iteration; stopping early destroys both.
 */
export async function* uncompressed(
  layer: NodeJS.ReadableStream,
  compression: Compression | "unknown",
  algorithm: string,
  limits: StreamLimits,
  stats: { value?: StreamStats },
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  const source = layer[Symbol.asyncIterator]() as AsyncIterator<string | Buffer>;
  const st: StreamStats = {
    compression: "none",
    compressed: 0,
    uncompressed: 0,
    hash: createHash(algorithm),
  };
  stats.value = st;

  // Sniff the magic when the media type left the compression unknown.
  let head = Buffer.alloc(0);
  let kind: Compression | undefined = compression === "unknown" ? undefined : compression;
  let sourceEnded = false;
  while (kind === undefined) {
    const r = await source.next();
    if (r.done) sourceEnded = true;
    else head = Buffer.concat([head, asBuffer(r.value)]);
    kind = sniffCompression(head, sourceEnded);
  }
  st.compression = kind;

  async function* compressed(): AsyncGenerator<Buffer> {
    try {
      if (head.length > 0) {
        st.compressed += head.length;
        yield head;
      }
      while (!sourceEnded) {
        const r = await source.next();
        if (r.done) return;
        const chunk = asBuffer(r.value);
        st.compressed += chunk.length;
        yield chunk;
      }
    } finally {
      await source.return?.();
    }
  }

  const account = (chunk: Buffer): void => {
    st.uncompressed += chunk.length;
    st.hash.update(chunk);
    if (st.uncompressed > limits.maxUncompressedBytes) {
      throw new UnpackError(
        "bomb",
        `layer expands beyond ${limits.maxUncompressedBytes} uncompressed bytes (maxUncompressedBytes)`,
      );
    }
    if (st.uncompressed > limits.freeBytes) {
      throw new UnpackError(
        "no-space",
        `layer expands beyond the ${limits.freeBytes} bytes free on the store's filesystem`,
      );
    }
    if (
      kind !== "none" &&
      st.uncompressed > RATIO_GRACE_BYTES &&
      st.uncompressed > limits.maxRatio * Math.max(st.compressed, 1)
    ) {
      throw new UnpackError(
        "bomb",
        `layer expands more than ${limits.maxRatio} times its compressed size ` +
          `(${st.uncompressed} bytes from ${st.compressed}; maxRatio)`,
      );
    }
  };

  if (kind === "none") {
    for await (const chunk of compressed()) {
      signal?.throwIfAborted();
      account(chunk);
      yield chunk;
    }
    return;
  }

  const input = Readable.from(compressed(), { objectMode: false, highWaterMark: CHUNK });
  const options = { chunkSize: CHUNK, highWaterMark: READ_AHEAD };
  const decompressor = kind === "gzip" ? createGunzip(options) : createZstdDecompress(options);
  pipeline(input, decompressor, () => {
    // errors surface through the iteration of `decompressor` below
  });
  try {
    for await (const chunk of decompressor) {
      signal?.throwIfAborted();
      account(chunk as Buffer);
      yield chunk as Buffer;
    }
  } catch (e) {
    throw asStreamError(e, kind);
  } finally {
    decompressor.destroy();
    input.destroy();
  }
}

function asBuffer(chunk: string | Buffer): Buffer {
  if (typeof chunk === "string") throw new TypeError("layer stream must yield bytes, not strings");
  return chunk;
}

/** zlib's errors (corrupt data, truncated stream) become bad-archive; others pass through. */
function asStreamError(e: unknown, kind: Compression): unknown {
  if (e instanceof UnpackError) return e;
  const raw: unknown = (e as { code?: unknown } | null)?.code;
  const code = typeof raw === "string" ? raw : ""; // a DOMException's code is a number (an abort's: 20)
  if (code.startsWith("Z_") || code.startsWith("ZSTD_") || code === "ERR_ZLIB_INITIALIZATION_FAILED") {
    return new UnpackError("bad-archive", `invalid ${kind} stream: ${(e as Error).message}`, { cause: e });
  }
  return e;
}
