// Timing a command: wall time measured here (spawn to exit), CPU time and peak resident set size from GNU
// time (`/usr/bin/time`, which waits for the command and reports its rusage, children included).

import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Measured {
  readonly wallMs: number;
  readonly userMs: number;
  readonly sysMs: number;
  /** Peak RSS of the command (the largest of its processes), KiB. */
  readonly rssKiB: number;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly timeoutMs?: number;
}

let counter = 0;

export function timed(argv: readonly string[], options: RunOptions = {}): Promise<Measured> {
  const statsFile = join(tmpdir(), `kpull-bench-time-${process.pid}-${counter++}`);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn("/usr/bin/time", ["-f", "%U %S %M", "-o", statsFile, "--", ...argv], {
      stdio: ["ignore", "pipe", "pipe"],
      env: options.env ?? process.env,
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 600_000);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("close", (code) => {
      const wallMs = performance.now() - started;
      clearTimeout(timer);
      let userMs = 0;
      let sysMs = 0;
      let rssKiB = 0;
      try {
        const lines = readFileSync(statsFile, "utf8").trim().split("\n");
        const [u, s, m] = (lines.at(-1) ?? "").split(" ").map(Number);
        userMs = (u ?? 0) * 1000;
        sysMs = (s ?? 0) * 1000;
        rssKiB = m ?? 0;
      } catch {
        // time could not write its file: the command did not start
      }
      rmSync(statsFile, { force: true });
      resolve({
        wallMs,
        userMs,
        sysMs,
        rssKiB,
        code,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
  });
}

/** Runs a shell pipeline under `timed`. */
export function timedShell(script: string, options: RunOptions = {}): Promise<Measured> {
  return timed(["bash", "-o", "pipefail", "-ec", script], options);
}

/** CPU time (user + system, ms) and peak RSS (VmHWM, KiB) of a live process, from /proc. */
export function procUsage(pid: number): { cpuMs: number; hwmKiB: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { cpuMs: ticks * 10, hwmKiB: hwm };
  } catch {
    return { cpuMs: 0, hwmKiB: 0 };
  }
}

export interface Summary {
  readonly min: number;
  readonly median: number;
  readonly max: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return { min: Number.NaN, median: Number.NaN, max: Number.NaN };
  const mid = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { min: sorted[0] as number, median, max: sorted.at(-1) as number };
}
