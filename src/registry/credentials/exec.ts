/**
 * Running a credential helper or provider plugin: no shell, stdin written and closed, a deadline, and bounded
 * stdout/stderr. The child gets its own process group so a timeout kills whatever it started too (a shell
 * script's `sleep` would otherwise keep the pipes open). Output is returned, never logged.
 */

import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, isAbsolute, join } from "node:path";

export interface RunOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly input: string;
  readonly env: Record<string, string | undefined>;
  readonly timeoutMs: number;
  readonly maxStdoutBytes: number;
  readonly maxStderrBytes: number;
}

export type RunResult =
  | {
      readonly kind: "exited";
      readonly code: number | null;
      readonly signal: string | null;
      readonly stdout: Buffer;
      readonly stderr: Buffer;
    }
  | { readonly kind: "timeout" }
  | { readonly kind: "too-much-output"; readonly stream: "stdout" | "stderr" }
  | { readonly kind: "spawn-failed"; readonly errno: string };

/** The first executable `name` on `PATH` (as given in `env`); null when there is none. */
export async function findOnPath(
  name: string,
  env: Record<string, string | undefined>,
): Promise<string | null> {
  const path = env.PATH ?? "";
  for (const dir of path.split(delimiter)) {
    // An empty or relative PATH entry would mean "the current directory": never run a helper from there.
    if (dir === "" || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function cleanEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

export function run(opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    let settled = false;
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    const child = spawn(opts.command, [...opts.args], {
      env: cleanEnv(opts.env),
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
      windowsHide: true,
      shell: false,
    });
    const kill = () => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          child.kill("SIGKILL");
        }
      }
    };
    const finish = (result: RunResult, killIt: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (killIt) kill();
      // Don't wait for pipes that a killed child's descendants might still hold.
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.stdin?.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: "timeout" }, true), opts.timeoutMs);
    child.on("error", (err: NodeJS.ErrnoException) =>
      finish({ kind: "spawn-failed", errno: err.code ?? "error" }, false),
    );
    child.stdout?.on("data", (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > opts.maxStdoutBytes) finish({ kind: "too-much-output", stream: "stdout" }, true);
      else stdout.push(chunk);
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      errBytes += chunk.length;
      if (errBytes > opts.maxStderrBytes) finish({ kind: "too-much-output", stream: "stderr" }, true);
      else stderr.push(chunk);
    });
    child.on("close", (code, signal) =>
      finish(
        { kind: "exited", code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) },
        false,
      ),
    );
    // A child that exits without reading stdin makes the write fail with EPIPE; its exit status tells the story.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input);
  });
}
