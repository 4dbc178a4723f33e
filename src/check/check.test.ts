// The engine and its rules: every kind, container type, mode and exemption, on the spec's tricky vectors.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type ImageUse, imageUsesFromText } from "../manifests/index.ts";
import {
  allowedPolicies,
  type CheckReport,
  checkImageUses,
  defaultConfig,
  fixPolicy,
  MODES,
  type Mode,
  RULES,
  reportExitCode,
} from "./index.ts";

const FIXTURES = join(import.meta.dirname, "..", "..", "test", "fixtures", "check");
const fixture = (name: string) => imageUsesFromText(readFileSync(join(FIXTURES, name), "utf8"), name);
const CLOCK = () => new Date("2025-06-15T23:59:59Z");
const D = `sha256:${"a".repeat(64)}`;

function pod(image: string, policy?: string, type = "containers"): string {
  return `apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  ${type}:\n  - name: c\n    image: ${JSON.stringify(image)}\n${policy === undefined ? "" : `    imagePullPolicy: ${policy}\n`}`;
}

function rulesFor(image: string, mode: Mode, policy?: string): string[] {
  const report = checkImageUses(imageUsesFromText(pod(image, policy), "t.yaml"), { mode, now: CLOCK });
  return report.findings.map((f) => f.rule).sort();
}

describe("rules", () => {
  it("are data plus a pure function, with stable ids and default severities", () => {
    assert.deepEqual(
      RULES.map((r) => [r.id, r.defaultSeverity]),
      [
        ["invalid-image", "error"],
        ["floating-tag", "error"],
        ["pull-policy", "error"],
        ["unpinned-image", "error"],
      ],
    );
    for (const r of RULES) {
      assert.ok(r.description.length > 10 && r.help.length > 40, r.id);
      assert.match(r.name, /^[A-Z][A-Za-z]+$/);
    }
  });

  it("the tricky vectors give the expected findings in the default mode (names say which)", () => {
    const report = checkImageUses(fixture("tricky.yaml"), { now: CLOCK });
    const byContainer = new Map<string, string[]>();
    for (const f of report.findings)
      byContainer.set(f.container ?? "", [...(byContainer.get(f.container ?? "") ?? []), f.rule]);
    const uses = fixture("tricky.yaml");
    assert.equal(uses.length, 29);
    for (const use of uses) {
      const name = use.container ?? "";
      const prefix = name.split("-")[0];
      const expected =
        prefix === "i"
          ? ["invalid-image"]
          : prefix === "f"
            ? ["floating-tag"]
            : prefix === "p"
              ? ["pull-policy"]
              : [];
      assert.deepEqual(byContainer.get(name) ?? [], expected, name);
    }
  });

  it("floating-tag: no digest and no tag or exactly latest, in every mode", () => {
    for (const mode of MODES) {
      assert.ok(rulesFor("nginx", mode).includes("floating-tag"), mode);
      assert.ok(rulesFor("nginx:latest", mode).includes("floating-tag"), mode);
      assert.ok(rulesFor("localhost:5000/app", mode).includes("floating-tag"), mode);
      assert.ok(!rulesFor("nginx:LATEST", mode).includes("floating-tag"), mode);
      assert.ok(!rulesFor(`nginx:latest@${D}`, mode).includes("floating-tag"), mode);
      assert.ok(!rulesFor("localhost:5000", mode).includes("floating-tag"), mode);
    }
  });

  it("invalid-image silences every other rule for that image", () => {
    for (const mode of MODES) {
      assert.deepEqual(rulesFor("NGINX", mode), ["invalid-image"], mode);
      assert.deepEqual(rulesFor("nginx@sha256:abc", mode, "Never"), ["invalid-image"], mode);
    }
  });

  it("pull-policy: the effective policy against each mode, pinned or not", () => {
    const cases: [string, string | undefined, Record<Mode, boolean>][] = [
      // image, written policy, flagged per mode
      ["nginx:1.25", undefined, { always: true, "always-unless-pinned": true, pinned: false, never: true }],
      ["nginx:1.25", "Always", { always: false, "always-unless-pinned": false, pinned: false, never: true }],
      ["nginx:1.25", "Never", { always: true, "always-unless-pinned": true, pinned: true, never: false }],
      [`nginx@${D}`, undefined, { always: true, "always-unless-pinned": false, pinned: false, never: true }],
      [`nginx@${D}`, "Always", { always: false, "always-unless-pinned": false, pinned: false, never: true }],
      [
        `nginx:latest@${D}`,
        undefined,
        { always: false, "always-unless-pinned": false, pinned: false, never: true },
      ],
      ["nginx", undefined, { always: false, "always-unless-pinned": false, pinned: false, never: true }],
      ["nginx:1.25", "always", { always: true, "always-unless-pinned": true, pinned: true, never: true }],
    ];
    for (const [image, policy, expected] of cases) {
      for (const mode of MODES) {
        assert.equal(
          rulesFor(image, mode, policy).includes("pull-policy"),
          expected[mode],
          `${image} ${policy ?? "(unset)"} in ${mode}`,
        );
      }
    }
  });

  it("unpinned-image fires only in mode pinned, for images without a digest", () => {
    assert.deepEqual(rulesFor("nginx:1.25", "pinned"), ["unpinned-image"]);
    assert.deepEqual(rulesFor("nginx:1.25", "pinned", "IfNotPresent"), ["unpinned-image"]);
    assert.deepEqual(rulesFor(`nginx:1.25@${D}`, "pinned"), []);
    for (const mode of ["always", "always-unless-pinned", "never"] as const)
      assert.ok(!rulesFor("nginx:1.25", mode).includes("unpinned-image"), mode);
  });

  it("messages say what is written, what is effective and why, and how to fix it", () => {
    const [defaulted] = checkImageUses(imageUsesFromText(pod("nginx:1.25"), "t.yaml")).findings;
    assert.match(defaulted?.message ?? "", /imagePullPolicy is not written/);
    assert.match(
      defaulted?.message ?? "",
      /defaults it to IfNotPresent because the tag "1\.25" is not latest/,
    );
    assert.match(defaulted?.message ?? "", /set imagePullPolicy: Always/);
    assert.deepEqual(defaulted?.fix, { field: "imagePullPolicy", value: "Always" });
    const [written] = checkImageUses(imageUsesFromText(pod("nginx:1.25", "Never"), "t.yaml"), {
      mode: "pinned",
    }).findings.filter((f) => f.rule === "pull-policy");
    assert.match(written?.message ?? "", /imagePullPolicy is Never \(written\)/);
    assert.match(written?.message ?? "", /ErrImageNeverPull/);
    const [invalid] = checkImageUses(imageUsesFromText(pod("nginx:1.25", "always"), "t.yaml")).findings;
    assert.match(invalid?.message ?? "", /"always" is not a pull policy: the API server rejects the object/);
    const [never] = checkImageUses(imageUsesFromText(pod("nginx", undefined), "t.yaml"), {
      mode: "never",
    }).findings.filter((f) => f.rule === "pull-policy");
    assert.match(
      never?.message ?? "",
      /defaults it to Always because the image has no tag, which means latest/,
    );
    assert.deepEqual(never?.fix, { field: "imagePullPolicy", value: "Never" });
  });

  it("modes: what each allows and what fix writes", () => {
    assert.deepEqual(allowedPolicies("always-unless-pinned", false), ["Always"]);
    assert.deepEqual(allowedPolicies("always-unless-pinned", true), ["Always", "IfNotPresent"]);
    assert.equal(fixPolicy("always-unless-pinned", true), "IfNotPresent");
    assert.equal(fixPolicy("pinned", false), "Always");
    assert.equal(fixPolicy("never", true), "Never");
    assert.equal(fixPolicy("always", true), "Always");
  });
});

describe("kinds and container types", () => {
  it("every kind with a pod spec, every container list and image volumes; other kinds ignored", () => {
    const report = checkImageUses(fixture("kinds.yaml"));
    const seen = report.findings.map((f) => `${f.kind}/${f.containerType}/${f.container}`);
    assert.deepEqual(seen, [
      "Pod/imageVolume/pod-volume",
      "Pod/initContainer/pod-init",
      "Pod/container/pod-container",
      "Pod/ephemeralContainer/pod-ephemeral",
      "PodTemplate/container/podtemplate-container",
      "ReplicationController/container/replicationcontroller-container",
      "ReplicaSet/container/replicaset-container",
      "Deployment/imageVolume/deployment-volume",
      "Deployment/initContainer/deployment-init",
      "Deployment/container/deployment-container",
      "StatefulSet/container/statefulset-container",
      "DaemonSet/container/daemonset-container",
      "Job/container/job-container",
      "CronJob/initContainer/cronjob-init",
      "CronJob/container/cronjob-container",
      "Pod/container/list-pod-container",
    ]);
    assert.ok(report.findings.every((f) => f.rule === "floating-tag"));
    assert.equal(report.summary.objects, 10);
  });

  it("line and column are those of the image key (image volume: the reference key)", () => {
    const text =
      "kind: Pod\nmetadata: {name: p}\nspec:\n  volumes:\n  - name: v\n    image:\n      reference: data\n  containers:\n  - name: c\n    image:\n      nginx\n";
    const report = checkImageUses(imageUsesFromText(text, "p.yaml"));
    assert.deepEqual(
      report.findings.map((f) => [f.container, f.line, f.column, f.endLine, f.endColumn]),
      [
        ["v", 7, 7, 7, 22],
        ["c", 10, 5, 11, 12],
      ],
    );
  });

  it("an image volume's own pullPolicy is judged, with its own field name", () => {
    const text =
      "kind: Pod\nmetadata: {name: p}\nspec:\n  volumes:\n  - name: v\n    image: {reference: 'data:1.0', pullPolicy: IfNotPresent}\n";
    const [f] = checkImageUses(imageUsesFromText(text, "p.yaml")).findings;
    assert.equal(f?.rule, "pull-policy");
    assert.match(f?.message ?? "", /^image volume "v": pullPolicy is IfNotPresent \(written\)/);
    assert.deepEqual(f?.fix, { field: "pullPolicy", value: "Always" });
  });
});

describe("configuration in the engine", () => {
  it("per-rule severity and off; exit 1 only for error severity", () => {
    const uses = imageUsesFromText(pod("nginx:1.25"), "t.yaml");
    const warn = checkImageUses(uses, {
      config: { ...defaultConfig(), rules: { "pull-policy": "warning" } },
    });
    assert.equal(warn.findings[0]?.severity, "warning");
    assert.equal(warn.summary.warnings, 1);
    assert.equal(reportExitCode(warn), 0);
    const off = checkImageUses(uses, { config: { ...defaultConfig(), rules: { "pull-policy": "off" } } });
    assert.equal(off.findings.length, 0);
    assert.ok(off.evaluations.every((e) => e.rule !== "pull-policy"));
    assert.equal(reportExitCode(checkImageUses(uses)), 1);
  });

  it("the flag's mode beats the config's; a kpull/mode annotation beats both", () => {
    const uses = fixture("exemptions.yaml").filter((u) => u.name === "airgapped");
    const config = { ...defaultConfig(), mode: "pinned" as const };
    const report = checkImageUses(uses, { config, mode: "always", now: CLOCK });
    assert.deepEqual(
      report.findings.map((f) => [f.container, f.rule, f.mode]),
      [["always", "pull-policy", "never"]],
    );
    assert.equal(report.summary.mode, "always");
  });
});

describe("exemptions", () => {
  const run = (now = CLOCK, annotations = true): CheckReport =>
    checkImageUses(fixture("exemptions.yaml"), { now, annotations });
  const active = (r: CheckReport, name: string) =>
    r.findings.filter((f) => f.name === name).map((f) => `${f.container}:${f.rule}`);
  const quiet = (r: CheckReport, name: string) =>
    r.suppressed.filter((f) => f.name === name).map((f) => `${f.container}:${f.rule}`);

  it("kpull/ignore on the object, with a reason, suppresses the listed rules", () => {
    const r = run();
    assert.deepEqual(active(r, "ignored-on-object"), []);
    assert.deepEqual(quiet(r, "ignored-on-object"), ["app:pull-policy", "floating:floating-tag"]);
    assert.equal(r.suppressed[0]?.exemption?.reason, "vendor chart, tracked in OPS-1");
  });

  it("kpull/ignore on the pod template counts too, for the rules it names only", () => {
    const r = run();
    assert.deepEqual(active(r, "ignored-on-template"), ["floating:floating-tag"]);
    assert.deepEqual(quiet(r, "ignored-on-template"), ["app:pull-policy"]);
    assert.equal(r.suppressed.find((f) => f.name === "ignored-on-template")?.exemption?.source, "template");
  });

  it("kpull/ignore-until holds through its day and expires after it, with a note", () => {
    const r = run();
    assert.deepEqual(active(r, "until-future"), []);
    assert.deepEqual(active(r, "until-past"), ["app:pull-policy"]);
    const expired = r.findings.find((f) => f.name === "until-past");
    assert.match(
      expired?.message ?? "",
      /\(the exemption by kpull\/ignore expired after 2025-06-14; reason: "migrate by June"\)$/,
    );
    assert.equal(expired?.exemption?.expired, true);
    // A day later, the future one has lapsed too; a year earlier, both hold.
    const later = run(() => new Date("2025-06-16T00:00:00Z"));
    assert.deepEqual(active(later, "until-future"), ["app:pull-policy"]);
    const earlier = run(() => new Date("2024-06-16T00:00:00Z"));
    assert.deepEqual(active(earlier, "until-past"), []);
  });

  it("malformed annotations suppress nothing and warn", () => {
    const r = run();
    assert.deepEqual(active(r, "until-not-a-date"), ["app:pull-policy"]);
    assert.deepEqual(active(r, "unknown-rule"), ["app:pull-policy"]);
    assert.deepEqual(active(r, "bad-mode"), ["app:pull-policy"]);
    assert.equal(r.findings.find((f) => f.name === "bad-mode")?.mode, "always-unless-pinned");
    const warnings = r.warnings.join("\n");
    assert.match(warnings, /kpull\/ignore-until "2025-02-30" is not a date/);
    assert.match(warnings, /kpull\/ignore names unknown rule "pull-polcy"/);
    assert.match(warnings, /kpull\/mode "Always" is not one of/);
    assert.equal(r.warnings.length, new Set(r.warnings).size, "each warning once");
  });

  it("--no-annotations makes every exemption and mode annotation inert", () => {
    const r = run(CLOCK, false);
    assert.equal(r.suppressed.length, 0);
    assert.ok(active(r, "ignored-on-object").length === 2);
    assert.deepEqual(active(r, "airgapped"), ["never:pull-policy"]);
  });

  it("exempted findings are not counted and do not fail the run", () => {
    const uses = fixture("exemptions.yaml").filter((u: ImageUse) => u.name === "ignored-on-object");
    const r = checkImageUses(uses, { now: CLOCK });
    assert.equal(r.summary.errors, 0);
    assert.equal(r.summary.suppressed, 2);
    assert.equal(reportExitCode(r), 0);
    assert.deepEqual(
      r.evaluations.map((e) => e.outcome),
      // app: floating-tag passes, pull-policy exempted; floating: the reverse. unpinned-image runs only in
      // mode pinned, so it is not evaluated at all.
      ["pass", "suppressed", "suppressed", "pass"],
    );
  });
});
