// Runs the kpull CLI as a user would (bin/kpull.js with the test's Node 24), for acceptance tests.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const KPULL_BIN = resolve(import.meta.dirname, "..", "..", "bin", "kpull.js");

export interface KpullRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stdoutBytes: Buffer;
  readonly stderr: string;
}

export interface KpullRunOptions {
  readonly stdin?: string;
  /** Added to the environment; DOCKER_CONFIG points at an empty directory unless given, so the machine's
   * own ~/.docker never takes part in a test. */
  readonly env?: Record<string, string>;
  readonly cwd?: string;
}

export function runKpull(args: readonly string[], options: KpullRunOptions = {}): Promise<KpullRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [KPULL_BIN, ...args], {
      env: {
        ...process.env,
        DOCKER_CONFIG: mkdtempSync(join(tmpdir(), "kpull-empty-docker-")),
        ...options.env,
      },
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => {
      err += c;
    });
    child.on("error", fail);
    child.on("close", (code, signal) => {
      const bytes = Buffer.concat(out);
      done({ code, signal, stdout: bytes.toString("utf8"), stdoutBytes: bytes, stderr: err });
    });
    child.stdin.end(options.stdin ?? "");
  });
}

export interface ServeRun {
  readonly child: ChildProcess;
  /** The port it announced (`listening on https://127.0.0.1:PORT`). */
  readonly port: number;
  /** Its stderr so far. */
  readonly stderr: () => string;
  /** Its stdout and stderr so far, as they arrived. */
  readonly output: () => string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `kpull serve ARGS` (pass `--port 0 --address 127.0.0.1`) and resolves once it announces its port;
 * rejects if it exits first or has not started within 15 s (then it is killed).
 */
export function startServe(
  args: readonly string[],
  options: { env?: Record<string, string> } = {},
): Promise<ServeRun> {
  const child = spawn(process.execPath, [KPULL_BIN, "serve", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
  });
  let stderr = "";
  let output = "";
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  child.stdout.on("data", (c: Buffer) => {
    output += c;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`kpull serve did not start:\n${output}`));
    }, 15_000);
    child.stderr.on("data", (c: Buffer) => {
      stderr += c;
      output += c;
      const m = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), stderr: () => stderr, output: () => output, exit });
      }
    });
    void exit.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`kpull serve exited ${code}:\n${output}`));
    });
  });
}
