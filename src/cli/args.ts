// util.parseArgs with kubectl-like, one-line errors: a usage error exits 2 and names the offending flag.

import { type ParseArgsConfig, parseArgs } from "node:util";

export class UsageError extends Error {
  readonly code = "UsageError";
  readonly command: string;
  constructor(command: string, message: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parseCommandArgs<O extends Options>(command: string, argv: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(command, describeParseError(error));
  }
}

function describeParseError(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const flag = /'(-[^',]*)/.exec(e.message ?? "")?.[1] ?? "";
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown flag: ${flag}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /argument missing/.test(e.message ?? "")
        ? `flag needs an argument: ${flag}`
        : `flag does not take an argument: ${flag}`;
    default:
      return (e.message ?? String(error)).split("\n")[0] ?? "bad arguments";
  }
}

export const OUTPUT_FORMATS = ["text", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function outputFormat(command: string, value: string | undefined): OutputFormat {
  const format = value ?? "text";
  if ((OUTPUT_FORMATS as readonly string[]).includes(format)) return format as OutputFormat;
  throw new UsageError(
    command,
    `unknown output format "${format}": allowed formats are ${OUTPUT_FORMATS.join(", ")}`,
  );
}

export const outputOption = {
  output: { type: "string", short: "o" },
  help: { type: "boolean", short: "h" },
} as const;
