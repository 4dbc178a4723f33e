import type { VerifyReport } from "../../store/index.ts";
import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import {
  formatBytes,
  openExisting,
  plural,
  storeOptions,
  storeOptionsHelp,
  writeStructured,
} from "./store-options.ts";

export const verifyHelp = `Re-hash every blob in the node's store and check every image against its content.

Examples:
  # Is the store intact?
  kpull verify

  # Remove corrupt content so the next pull fetches it again
  kpull verify --repair && kpull pull registry.example.com/team/app:v1

  # For scripts and monitoring
  kpull verify -o json | jq '{clean, corrupt: (.corrupt | length), missing: (.missing | length)}'

Usage:
  kpull verify [--repair] [-o text|json|yaml] [--root DIR]

Flags:
      --repair   remove corrupt blobs and stray files, drop dead leases, rewrite index.json from the records
  -o, --output   text (the default), json or yaml
  -h, --help     show this help

${storeOptionsHelp}
Damage is a corrupt blob (its bytes do not hash to its name, or its size differs from its descriptor),
content an image needs that is missing, or unreadable records. Orphaned blobs (nothing references them;
"kpull gc" removes them) and partial downloads (resumed by the next pull) are reported but are not damage.

Exit status: 0 clean, 1 damage found (also after --repair: removed content is missing until pulled again),
2 bad usage.
`;

export async function verifyCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("verify", argv, {
    ...outputOption,
    ...storeOptions,
    repair: { type: "boolean" },
  });
  if (values.help) {
    io.stdout.write(verifyHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("verify", values.output);
  if (positionals.length > 0) throw new UsageError("verify", `unexpected argument "${positionals[0]}"`);
  const store = await openExisting(values, io);
  const report = await store.verify({ repair: values.repair === true });
  if (format !== "text") writeStructured(io, format, report);
  else io.stdout.write(renderReport(report));
  return report.clean ? ExitCode.ok : ExitCode.findings;
}

export function renderReport(r: VerifyReport): string {
  const lines: string[] = [];
  lines.push(
    `checked ${plural(r.blobs, "blob")} (${formatBytes(r.bytes)}) and ${r.images} image${r.images === 1 ? "" : "s"} in ${r.root}`,
  );
  for (const p of r.problems) lines.push(`damaged   ${p.path}: ${p.message}`);
  for (const c of r.corrupt) {
    lines.push(`corrupt   ${c.digest ?? c.path}: ${c.reason}${c.repaired ? " (removed)" : ""}`);
  }
  for (const m of r.missing) lines.push(`missing   ${m.digest}: ${m.kind} of ${m.image}`);
  for (const o of r.orphaned) {
    lines.push(
      `orphaned  ${o.digest} (${formatBytes(o.size)}): nothing references it; "kpull gc" removes it`,
    );
  }
  for (const i of r.ingests) {
    lines.push(
      `partial   ${i.digest}: ${formatBytes(i.size)} downloaded${i.active ? ", a pull is writing it" : "; the next pull resumes it"}`,
    );
  }
  if (r.deadLeases.length > 0) {
    lines.push(`leases    ${r.deadLeases.length} dead lease(s)${r.repaired ? " removed" : ""}`);
  }
  if (r.indexOutOfDate)
    lines.push(`index     index.json lags behind the records${r.repaired ? " (rewritten)" : ""}`);
  if (r.clean) lines.push("store is clean");
  else {
    const parts = [
      r.corrupt.length > 0 ? `${r.corrupt.length} corrupt` : "",
      r.missing.length > 0 ? `${r.missing.length} missing` : "",
      r.problems.length > 0 ? `${r.problems.length} unreadable` : "",
    ].filter(Boolean);
    lines.push(
      `store is damaged: ${parts.join(", ")}${r.repaired ? "; corrupt content was removed, pull the images again" : '; run "kpull verify --repair"'}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
