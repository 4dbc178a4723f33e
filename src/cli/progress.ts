// Pull progress like `docker pull`: on a terminal one line per blob (bytes, speed, ETA, "Already exists",
// "Verifying"), redrawn in place at most ten times a second; elsewhere one plain line per phase change.

import type { PullProgress } from "../store/core.ts";
import { formatBytes } from "./commands/store-options.ts";

interface Line {
  digest: string;
  text: string;
  phase: PullProgress["phase"];
  started: number;
}

const PHASE_TEXT: Record<PullProgress["phase"], string> = {
  waiting: "Waiting",
  resuming: "Resuming",
  downloading: "Downloading",
  verifying: "Verifying Checksum",
  committed: "Download complete",
  exists: "Already exists",
};

export interface ProgressSink {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export class PullProgressView {
  readonly #out: ProgressSink;
  readonly #tty: boolean;
  readonly #lines: Line[] = [];
  readonly #byDigest = new Map<string, Line>();
  #drawn = 0;
  #lastDraw = 0;
  readonly #now: () => number;

  constructor(out: ProgressSink, now: () => number = Date.now) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    this.#now = now;
  }

  update(p: PullProgress): void {
    const short = p.digest.slice(p.digest.indexOf(":") + 1, p.digest.indexOf(":") + 13);
    let line = this.#byDigest.get(p.digest);
    const changed = line === undefined || line.phase !== p.phase;
    if (line === undefined) {
      line = { digest: short, text: "", phase: p.phase, started: this.#now() };
      this.#byDigest.set(p.digest, line);
      this.#lines.push(line);
    }
    line.phase = p.phase;
    line.text = this.#describe(p, line);
    if (!this.#tty) {
      if (changed)
        this.#out.write(
          `${short}: ${PHASE_TEXT[p.phase]}${p.phase === "exists" ? "" : ` (${p.kind}, ${formatBytes(p.total)})`}\n`,
        );
      return;
    }
    const final = p.phase === "committed" || p.phase === "exists";
    if (final || changed || this.#now() - this.#lastDraw >= 100) this.#draw();
  }

  #describe(p: PullProgress, line: Line): string {
    if (p.phase !== "downloading" && p.phase !== "resuming") return PHASE_TEXT[p.phase];
    const width = 40;
    const ratio = p.total > 0 ? Math.min(1, p.completed / p.total) : 0;
    const filled = Math.round(ratio * width);
    const bar = `[${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? ">" : ""}${" ".repeat(width - filled)}]`;
    const seconds = Math.max(0.001, (this.#now() - line.started) / 1000);
    const speed = p.completed / seconds;
    const eta = speed > 0 ? Math.ceil((p.total - p.completed) / speed) : 0;
    return `${PHASE_TEXT[p.phase]} ${bar} ${formatBytes(p.completed)}/${formatBytes(p.total)} ${formatBytes(Math.round(speed))}/s ${eta}s`;
  }

  #draw(): void {
    this.#lastDraw = this.#now();
    // Move up over what was drawn before and rewrite each line in place: no flicker, no scrolling.
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : "";
    for (const line of this.#lines) text += `\x1b[2K${line.digest}: ${line.text}\n`;
    this.#drawn = this.#lines.length;
    this.#out.write(text);
  }

  finish(): void {
    if (this.#tty && this.#lines.length > 0) this.#draw();
  }
}
