import { isAbsolute } from "node:path";
import {
  ConfigError,
  emptyLock,
  encodeText,
  LockError,
  type LockFile,
  loadSources,
  pinTexts,
  readLock,
  registryResolver,
  serializeLock,
  unifiedDiff,
  verifyPins,
  writeFileAtomic,
} from "../../check/index.ts";
import { formatPlatform, type RegistryClient } from "../../registry/index.ts";
import { parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import {
  platformFrom,
  registryClientFrom,
  registryOptions,
  registryOptionsHelp,
} from "../registry-options.ts";
import { parseSources, policyOptions, reportInputErrors, requirePaths, resolvePolicy } from "./check.ts";

export const pinHelp = `Pin images to digests: resolve each tag with one HEAD request and rewrite image: app:1.2 to
image: app:1.2@sha256:... (the tag stays for readers; the digest decides what runs). Only the image text
changes. Prints a unified diff; --write applies it and updates the lock file.

Examples:
  # What would be pinned?
  kpull pin deploy/

  # Pin, and record every digest in a lock file
  kpull pin --write --lock kpull-lock.json deploy/

  # In CI without registry access: pin from the lock only
  kpull pin --write --offline --lock kpull-lock.json deploy/

  # Has any pinned tag moved since? (exit 1 if so)
  kpull pin --verify deploy/

Usage:
  kpull pin PATH... [--write] [--lock FILE] [--offline] [--verify] [--platform OS/ARCH] [registry flags]

Flags:
  -w, --write            write the pins (files only, not stdin) and the lock file
      --lock FILE        lock file to read and, with --write, update (e.g. kpull-lock.json)
      --offline          take digests only from the lock file; never contact a registry
      --verify           report images written as name:tag@digest whose tag now points elsewhere
                         (offline: elsewhere than the lock says); changes nothing
  -c, --config FILE      configuration file, for its ignore globs (default: the nearest .kpull.yaml)
      --no-config        do not look for .kpull.yaml
  -h, --help             show this help

${registryOptionsHelp}
The digest is the index digest for multi-platform images (what the tag points to), unless --platform asks
for one platform's manifest. Images that already carry a digest and images that do not parse are left as
they are. A floating tag (none, or latest) is pinned to what it points to today, with a warning.

Exit status: 0 success (without --write: nothing to pin); 1 when some image could not be resolved, a pinned
tag moved (--verify), or, without --write, the diff is not empty; 2 on bad usage or unreadable input.
`;

function label(file: string, side: "a" | "b"): string {
  if (file === "-") return "-";
  return isAbsolute(file) ? file : `${side}/${file.replace(/^\.\//, "")}`;
}

export async function pinCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("pin", argv, {
    config: policyOptions.config,
    "no-config": policyOptions["no-config"],
    help: policyOptions.help,
    write: { type: "boolean", short: "w" },
    lock: { type: "string" },
    offline: { type: "boolean" },
    verify: { type: "boolean" },
    ...registryOptions,
  });
  if (values.help) {
    io.stdout.write(pinHelp);
    return ExitCode.ok;
  }
  requirePaths("pin", positionals);
  if (values.write && positionals.includes("-"))
    throw new UsageError("pin", "--write cannot write to stdin; give files or directories");
  if (values.offline && values.lock === undefined)
    throw new UsageError("pin", "--offline needs --lock FILE (the digests come from it)");
  if (values.verify && values.write) throw new UsageError("pin", "--verify changes nothing; drop --write");
  const platform = platformFrom("pin", values.platform);

  let policy: Awaited<ReturnType<typeof resolvePolicy>>;
  let lock: LockFile | null = null;
  try {
    policy = await resolvePolicy("pin", values);
    if (values.lock !== undefined) lock = await readLock(values.lock);
  } catch (error) {
    if (!(error instanceof ConfigError || error instanceof LockError)) throw error;
    io.stderr.write(`error: ${error.message}\n`);
    return ExitCode.usage;
  }
  const loaded = await loadSources(positionals, { config: policy.config, stdin: io.stdin });
  // Every input must read before anything is resolved or written.
  if (reportInputErrors(parseSources(loaded, policy.config).errors, io)) return ExitCode.usage;

  const client: RegistryClient | null = values.offline ? null : registryClientFrom("pin", values, io);
  const options = {
    resolver: client === null ? null : registryResolver(client, platform),
    lock,
    offline: values.offline ?? false,
    platform: platform === undefined ? undefined : formatPlatform(platform),
  };
  try {
    if (values.verify) {
      const results = await verifyPins(loaded.sources, options);
      let bad = 0;
      for (const v of results) {
        if (v.status === "ok") continue;
        bad++;
        const key = v.use.imageKeyPosition ?? v.use.position;
        io.stdout.write(
          `${v.use.file}:${key.line}:${key.column}  ${v.status}  ${v.use.image}: ${v.message}\n`,
        );
      }
      const ok = results.length - bad;
      io.stderr.write(
        `${results.length} pinned image${results.length === 1 ? "" : "s"} checked: ${ok} still match${bad > 0 ? `, ${bad} do not` : ""}.\n`,
      );
      return bad > 0 ? ExitCode.findings : ExitCode.ok;
    }

    const result = await pinTexts(loaded.sources, options);
    let pinned = 0;
    let failed = 0;
    let changedFiles = 0;
    for (const file of result.files) {
      for (const item of file.items) {
        const key = item.use.imageKeyPosition ?? item.use.position;
        const at = `${item.use.file}:${key.line}:${key.column}`;
        if (item.status === "pinned") {
          pinned++;
          if (item.message !== null) io.stderr.write(`warning: ${at}: ${item.message}\n`);
        } else if (item.status === "failed") {
          failed++;
          io.stderr.write(`error: ${at}: cannot pin ${item.use.image}: ${item.message}\n`);
        }
      }
      if (file.after === file.before) continue;
      changedFiles++;
      const source = loaded.sources.find((s) => s.file === file.file);
      if (values.write && source !== undefined)
        await writeFileAtomic(file.file, encodeText(file.after, source));
      else
        io.stdout.write(unifiedDiff(file.before, file.after, label(file.file, "a"), label(file.file, "b")));
    }
    if (values.write && values.lock !== undefined && !values.offline) {
      const next = serializeLock(result.lock);
      if (next !== serializeLock(lock ?? emptyLock()))
        await writeFileAtomic(values.lock, Buffer.from(next, "utf8"));
    }
    const what = `${pinned} image${pinned === 1 ? "" : "s"} in ${changedFiles} file${changedFiles === 1 ? "" : "s"}`;
    if (pinned === 0 && failed === 0) io.stderr.write("Nothing to pin.\n");
    else if (values.write) io.stderr.write(`Pinned ${what}${failed > 0 ? `; ${failed} failed` : ""}.\n`);
    else
      io.stderr.write(
        `Would pin ${what}${failed > 0 ? `; ${failed} failed` : ""}; run with --write to apply.\n`,
      );
    if (failed > 0) return ExitCode.findings;
    return !values.write && pinned > 0 ? ExitCode.findings : ExitCode.ok;
  } finally {
    await client?.close();
  }
}
