/** Reading credential files with a size bound and errors that name the file and nothing of its content. */

import { open } from "node:fs/promises";
import { CredentialError } from "./errors.ts";

/** Secrets are at most 1 MiB in Kubernetes; config files are tiny. Anything larger is not a credential file. */
export const MAX_CREDENTIAL_FILE_BYTES = 4 * 1024 * 1024;

/** The file's text; null when it does not exist and `missingOk`; CredentialError otherwise. */
export async function readCredentialFile(file: string, missingOk: boolean): Promise<string | null> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, "r");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && missingOk) return null;
    throw new CredentialError({ file }, `${file}: cannot open: ${code ?? "error"}`, { cause: err });
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new CredentialError({ file }, `${file}: not a regular file`);
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      length += bytesRead;
      if (length > MAX_CREDENTIAL_FILE_BYTES) {
        throw new CredentialError({ file }, `${file}: larger than ${MAX_CREDENTIAL_FILE_BYTES} bytes`);
      }
    }
    return Buffer.concat(chunks, length).toString("utf8");
  } catch (err) {
    if (err instanceof CredentialError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new CredentialError({ file }, `${file}: cannot read: ${code ?? "error"}`, { cause: err });
  } finally {
    await handle.close();
  }
}

/**
 * JSON.parse whose failure names `label` and the position only: V8's own message quotes the input, which
 * here holds secrets.
 */
export function parseJSONQuietly(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    const m = /position (\d+)/.exec(String((err as Error).message));
    return { ok: false, reason: m ? `invalid JSON at position ${m[1]}` : "invalid JSON" };
  }
}
