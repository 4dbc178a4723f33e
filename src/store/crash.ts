// Crash points for the crash tests: when KPULL_TEST_CRASH names a point (optionally `point:N` for its Nth
// visit), the process SIGKILLs itself there, exactly as an OOM kill or power loss would stop it. Unset in
// normal use; reading one environment variable is the whole cost. KPULL_TEST_CRASH_TRACE=FILE appends the
// name of every point visited to FILE, one a line, so a test can learn how often each point is reached
// before it picks where to kill (test/reliability/crash.test.ts).

import { appendFileSync } from "node:fs";

const counts = new Map<string, number>();

export function crashPoint(name: string): void {
  const trace = process.env.KPULL_TEST_CRASH_TRACE;
  if (trace !== undefined && trace !== "") appendFileSync(trace, `${name}\n`);
  const wanted = process.env.KPULL_TEST_CRASH;
  if (wanted === undefined || wanted === "") return;
  const [point, nth] = wanted.split(":");
  if (point !== name) return;
  const seen = (counts.get(name) ?? 0) + 1;
  counts.set(name, seen);
  if (seen >= Number(nth ?? "1")) process.kill(process.pid, "SIGKILL");
}
