// Runs the kpull CLI as a user would (bin/kpull.js with the test's Node 24), for acceptance tests.

import { spawn } from "node:child_process";
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
