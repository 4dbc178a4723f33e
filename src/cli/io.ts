// The CLI's view of the outside world, so acceptance tests can run commands in-process as well as spawned.

export interface CliIo {
  readonly stdout: { write(chunk: string | Uint8Array): unknown; isTTY?: boolean };
  readonly stderr: { write(chunk: string): unknown; isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}

/** Exit codes scripts can rely on. */
export const ExitCode = {
  ok: 0,
  /** The command ran and found something wrong (an invalid image, a failed check). */
  findings: 1,
  /** Bad usage or unreadable input: nothing was judged. */
  usage: 2,
} as const;
