/**
 * The Docker credential helper protocol (docker-credential-helpers client.Get, docker/cli native_store.go):
 * run `docker-credential-<name> get` with the server key on stdin; exit 0 prints
 * `{"ServerURL","Username","Secret"}`; a non-zero exit printing `credentials not found in native keychain`
 * means "no credentials"; Username `<token>` means Secret is an identity token.
 */

import { DecodeError, isPlainObject, stringField } from "./dockerconfig.ts";
import { CredentialError } from "./errors.ts";
import { findOnPath, run } from "./exec.ts";

export const HELPER_PREFIX = "docker-credential-";
export const CREDENTIALS_NOT_FOUND = "credentials not found in native keychain";
const TOKEN_USERNAME = "<token>";

export interface HelperCredential {
  readonly username: string;
  readonly password: string;
  readonly identityToken: string;
}

export interface HelperOptions {
  readonly env: Record<string, string | undefined>;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
}

/** `docker-credential-<suffix>`; CredentialError for a suffix that would make it a path. */
export function helperExecutable(suffix: string): string {
  const name = `${HELPER_PREFIX}${suffix}`;
  if (suffix === "" || /[/\\\0]/.test(suffix) || suffix === "." || suffix === "..") {
    throw new CredentialError({ helper: name }, `invalid credential helper name ${JSON.stringify(suffix)}`);
  }
  return name;
}

/** Runs `<helper> get` for `serverURL`; null when the helper has no credentials for it. */
export async function helperGet(
  suffix: string,
  serverURL: string,
  opts: HelperOptions,
): Promise<HelperCredential | null> {
  const helper = helperExecutable(suffix);
  const path = await findOnPath(helper, opts.env);
  if (path === null) {
    throw new CredentialError({ helper }, `credential helper ${helper} not found in PATH`);
  }
  const result = await run({
    command: path,
    args: ["get"],
    input: serverURL,
    env: opts.env,
    timeoutMs: opts.timeoutMs,
    maxStdoutBytes: opts.maxOutputBytes,
    maxStderrBytes: opts.maxOutputBytes,
  });
  const ctx = `credential helper ${helper} (get ${serverURL})`;
  switch (result.kind) {
    case "timeout":
      throw new CredentialError({ helper }, `${ctx}: no answer within ${opts.timeoutMs} ms; killed`);
    case "too-much-output":
      throw new CredentialError(
        { helper },
        `${ctx}: ${result.stream} exceeded ${opts.maxOutputBytes} bytes; killed`,
      );
    case "spawn-failed":
      throw new CredentialError({ helper }, `${ctx}: cannot run: ${result.errno}`);
    case "exited":
      break;
  }
  const out = result.stdout.toString("utf8").trim();
  if (result.code !== 0) {
    if (out === CREDENTIALS_NOT_FOUND) return null;
    const status = result.code === null ? `signal ${result.signal}` : `exit status ${result.code}`;
    // The helper's stdout is its error message, but it is still the helper's stdout: not echoed.
    throw new CredentialError({ helper }, `${ctx}: failed with ${status} (output withheld)`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(out);
  } catch {
    throw new CredentialError({ helper }, `${ctx}: malformed output: not JSON (output withheld)`);
  }
  if (!isPlainObject(doc)) {
    throw new CredentialError({ helper }, `${ctx}: malformed output: not a JSON object (output withheld)`);
  }
  let username: string;
  let secret: string;
  try {
    username = stringField(doc, "Username", "output");
    secret = stringField(doc, "Secret", "output");
    stringField(doc, "ServerURL", "output");
  } catch (err) {
    if (err instanceof DecodeError)
      throw new CredentialError({ helper }, `${ctx}: malformed output: ${err.message}`);
    throw err;
  }
  if (username === "" && secret === "") return null;
  if (username === TOKEN_USERNAME) return { username: "", password: "", identityToken: secret };
  return { username, password: secret, identityToken: "" };
}
