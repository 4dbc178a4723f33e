// The exposition text parses strictly (test/admission-helpers.ts parsePrometheus) and counts what happened.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePrometheus, sampleValue } from "../../test/admission-helpers.ts";
import { AdmissionMetrics, MetricsRegistry } from "./index.ts";

describe("metrics", () => {
  it("renders counters, gauges and cumulative histograms in the text format", () => {
    const m = new AdmissionMetrics();
    m.requests.inc({ endpoint: "validate", verdict: "denied" });
    m.requests.inc({ endpoint: "validate", verdict: "denied" });
    m.ruleRequests.inc({ endpoint: "validate", verdict: "denied", rule: "floating-tag" });
    m.duration.observe({ endpoint: "validate" }, 0.0007);
    m.duration.observe({ endpoint: "validate" }, 0.3);
    m.duration.observe({ endpoint: "mutate" }, 100);
    const families = parsePrometheus(m.render());
    assert.equal(families.get("kpull_admission_requests_total")?.type, "counter");
    assert.equal(
      sampleValue(families, "kpull_admission_requests_total", { endpoint: "validate", verdict: "denied" }),
      2,
    );
    assert.equal(
      sampleValue(families, "kpull_admission_rule_requests_total", {
        endpoint: "validate",
        verdict: "denied",
        rule: "floating-tag",
      }),
      1,
    );
    assert.equal(families.get("kpull_admission_request_duration_seconds")?.type, "histogram");
    assert.equal(
      sampleValue(families, "kpull_admission_request_duration_seconds_bucket", {
        endpoint: "validate",
        le: "0.001",
      }),
      1,
    );
    assert.equal(
      sampleValue(families, "kpull_admission_request_duration_seconds_bucket", {
        endpoint: "validate",
        le: "0.5",
      }),
      2,
    );
    assert.equal(
      sampleValue(families, "kpull_admission_request_duration_seconds_bucket", {
        endpoint: "mutate",
        le: "30",
      }),
      0,
    );
    assert.equal(
      sampleValue(families, "kpull_admission_request_duration_seconds_bucket", {
        endpoint: "mutate",
        le: "+Inf",
      }),
      1,
    );
    assert.equal(
      sampleValue(families, "kpull_admission_request_duration_seconds_count", { endpoint: "validate" }),
      2,
    );
    assert.ok(sampleValue(families, "process_start_time_seconds") > 1.6e9);
  });

  it("escapes label values and help text", () => {
    const r = new MetricsRegistry();
    const c = r.counter("x_total", "help with \\ and\nnewline", ["l"]);
    c.inc({ l: 'quote " backslash \\ newline \n end' });
    const text = r.render();
    assert.match(text, /^# HELP x_total help with \\\\ and\\nnewline$/m);
    const families = parsePrometheus(text);
    assert.equal(families.get("x_total")?.samples[0]?.labels.l, 'quote " backslash \\ newline \n end');
    assert.throws(() => r.counter("x_total", "again"), /duplicate/);
    assert.throws(() => r.counter("bad-name", "x"), /bad metric name/);
  });
});
