// JUnit XML as GitLab, Jenkins and Buildkite read it: one testsuite per file, one testcase per rule and
// image use. classname is the object, name the rule and the container (GitLab deduplicates on both);
// errors are failures, warnings and notes pass with the text in system-out, exempted findings are skipped.
// The location is in the failure body too, since GitLab shows neither `file` nor `line`.

import { describeContainer } from "../engine.ts";
import type { CheckReport, Evaluation } from "../types.ts";

/** Characters XML 1.0 cannot carry: C0 controls other than tab, LF and CR; lone surrogates; U+FFFE, U+FFFF. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters to replace
const NOT_XML = /[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Escapes text for XML 1.0 content and attributes; characters XML cannot carry become U+FFFD. */
export function xmlEscape(s: string): string {
  return s
    .replace(NOT_XML, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    .replace(/\r/g, "&#13;")
    .replace(/\n/g, "&#10;")
    .replace(/\t/g, "&#9;");
}

/** Escapes element text (newlines kept). */
function textEscape(s: string): string {
  return xmlEscape(s).replace(/&#10;/g, "\n").replace(/&#9;/g, "\t");
}

function classname(e: Evaluation): string {
  const u = e.use;
  const api = u.apiVersion === null ? "" : `${u.apiVersion} `;
  return `${api}${u.kind} ${u.namespace === null ? "" : `${u.namespace}/`}${u.name ?? "(unnamed)"}`;
}

export function renderJunit(report: CheckReport): string {
  const byFile = new Map<string, Evaluation[]>();
  for (const e of report.evaluations) {
    const list = byFile.get(e.use.file);
    if (list === undefined) byFile.set(e.use.file, [e]);
    else list.push(e);
  }
  let tests = 0;
  let failures = 0;
  let skipped = 0;
  const suites: string[] = [];
  for (const [file, evaluations] of byFile) {
    const cases: string[] = [];
    let suiteFailures = 0;
    let suiteSkipped = 0;
    for (const e of evaluations) {
      const attrs = `classname="${xmlEscape(classname(e))}" name="${xmlEscape(`${e.rule} ${describeContainer(e.use)}`)}" file="${xmlEscape(file)}" time="0"`;
      const f = e.finding;
      if (f === null) {
        cases.push(`    <testcase ${attrs}/>`);
      } else {
        const body = `${f.file}:${f.line}:${f.column}  ${f.rule}  ${f.message}`;
        if (e.outcome === "suppressed") {
          suiteSkipped++;
          const reason = f.exemption?.reason ? `: ${f.exemption.reason}` : "";
          cases.push(
            `    <testcase ${attrs}>\n      <skipped message="${xmlEscape(`exempted by kpull/ignore${reason}`)}"/>\n    </testcase>`,
          );
        } else if (f.severity === "error") {
          suiteFailures++;
          cases.push(
            `    <testcase ${attrs}>\n      <failure message="${xmlEscape(f.message)}" type="${f.severity}">${textEscape(body)}</failure>\n    </testcase>`,
          );
        } else {
          cases.push(
            `    <testcase ${attrs}>\n      <system-out>${textEscape(`${f.severity}: ${body}`)}</system-out>\n    </testcase>`,
          );
        }
      }
    }
    tests += evaluations.length;
    failures += suiteFailures;
    skipped += suiteSkipped;
    suites.push(
      `  <testsuite name="${xmlEscape(file)}" tests="${evaluations.length}" failures="${suiteFailures}" errors="0" skipped="${suiteSkipped}" time="0">\n${cases.join("\n")}\n  </testsuite>`,
    );
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="kpull" tests="${tests}" failures="${failures}" errors="0" skipped="${skipped}" time="0">\n${suites.join("\n")}${suites.length > 0 ? "\n" : ""}</testsuites>\n`;
}
