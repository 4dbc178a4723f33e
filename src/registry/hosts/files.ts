// Reading configuration files with bounds: a hosts directory is operator input, and a CA path that points
// at /dev/zero or a 5 GB file must give an error, not hang or fill memory.

import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { HostsConfigError } from "./errors.ts";

/** Largest hosts.toml read (containerd has no cap; real files are a few hundred bytes). */
export const MAX_HOSTS_TOML_BYTES = 1024 * 1024;
/** Largest CA bundle or client certificate/key file read (a full system CA bundle is about 200 KiB). */
export const MAX_PEM_BYTES = 8 * 1024 * 1024;

/** Node's errno code of an error, if any. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

/** Reads a regular file of at most `max` bytes; errors (including ENOENT) are returned to the caller to judge. */
export async function readBounded(path: string, max: number): Promise<Buffer> {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the type check below then refuses it.
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new HostsConfigError(path, "not a regular file");
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024);
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, total);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > max) throw new HostsConfigError(path, `larger than ${max} bytes`);
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks, total);
  } finally {
    await fh.close();
  }
}

/** Reads a file the configuration names; any failure becomes a HostsConfigError naming it. */
export async function readConfigured(path: string, max: number, what: string): Promise<Buffer> {
  try {
    return await readBounded(path, max);
  } catch (err) {
    if (err instanceof HostsConfigError) throw err;
    const code = errnoCode(err);
    throw new HostsConfigError(path, `unable to read ${what}${code ? ` (${code})` : ""}`, { cause: err });
  }
}
