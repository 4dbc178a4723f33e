// Prometheus metrics in the text exposition format 0.0.4: counters, gauges and histograms with labels.
// Small on purpose: the webhook needs a dozen series, and prom-client would be the only dependency for it.

type Labels = Readonly<Record<string, string>>;

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function escapeHelp(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  if (Number.isNaN(value)) return "NaN";
  return String(value);
}

function labelText(names: readonly string[], values: readonly string[], extra = ""): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? "")}"`);
  if (extra !== "") parts.push(extra);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

abstract class Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: "counter" | "gauge" | "histogram";

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`bad metric name ${name}`);
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  protected key(labels: Labels): string {
    return JSON.stringify(this.labelNames.map((n) => labels[n] ?? ""));
  }

  protected values(key: string): string[] {
    return JSON.parse(key) as string[];
  }

  header(): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
  }

  abstract samples(): string;
}

export class Counter extends Metric {
  readonly type = "counter" as const;
  readonly #values = new Map<string, number>();

  inc(labels: Labels = {}, by = 1): void {
    const key = this.key(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.#values.get(this.key(labels)) ?? 0;
  }

  samples(): string {
    let out = "";
    for (const [key, value] of this.#values)
      out += `${this.name}${labelText(this.labelNames, this.values(key))} ${formatValue(value)}\n`;
    return out;
  }
}

export class Gauge extends Metric {
  readonly type = "gauge" as const;
  readonly #values = new Map<string, number | (() => number)>();

  set(labels: Labels, value: number | (() => number)): void {
    this.#values.set(this.key(labels), value);
  }

  add(labels: Labels, by: number): void {
    const key = this.key(labels);
    const current = this.#values.get(key);
    this.#values.set(key, (typeof current === "function" ? current() : (current ?? 0)) + by);
  }

  get(labels: Labels = {}): number {
    const v = this.#values.get(this.key(labels));
    return typeof v === "function" ? v() : (v ?? 0);
  }

  samples(): string {
    let out = "";
    for (const [key, v] of this.#values) {
      const value = typeof v === "function" ? v() : v;
      out += `${this.name}${labelText(this.labelNames, this.values(key))} ${formatValue(value)}\n`;
    }
    return out;
  }
}

interface HistogramSeries {
  readonly counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric {
  readonly type = "histogram" as const;
  readonly buckets: readonly number[];
  readonly #series = new Map<string, HistogramSeries>();

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(labels: Labels, value: number): void {
    const key = this.key(labels);
    let series = this.#series.get(key);
    if (series === undefined) {
      series = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, series);
    }
    for (let i = 0; i < this.buckets.length; i++)
      if (value <= (this.buckets[i] as number)) series.counts[i] = (series.counts[i] ?? 0) + 1;
    series.sum += value;
    series.count++;
  }

  count(labels: Labels = {}): number {
    return this.#series.get(this.key(labels))?.count ?? 0;
  }

  samples(): string {
    let out = "";
    for (const [key, series] of this.#series) {
      const values = this.values(key);
      for (const [i, le] of this.buckets.entries())
        out += `${this.name}_bucket${labelText(this.labelNames, values, `le="${formatValue(le)}"`)} ${series.counts[i]}\n`;
      out += `${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${series.count}\n`;
      out += `${this.name}_sum${labelText(this.labelNames, values)} ${formatValue(series.sum)}\n`;
      out += `${this.name}_count${labelText(this.labelNames, values)} ${series.count}\n`;
    }
    return out;
  }
}

export class MetricsRegistry {
  readonly #metrics: Metric[] = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }

  histogram(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ): Histogram {
    return this.#add(new Histogram(name, help, labelNames, buckets));
  }

  #add<M extends Metric>(metric: M): M {
    if (this.#metrics.some((m) => m.name === metric.name)) throw new Error(`duplicate metric ${metric.name}`);
    this.#metrics.push(metric);
    return metric;
  }

  /** The exposition text: every metric with HELP and TYPE, also those without samples yet. */
  render(): string {
    return this.#metrics.map((m) => m.header() + m.samples()).join("");
  }
}

/** Latency buckets in seconds: fine below 10 ms, where the webhook should live, up to the 30 s timeout cap. */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]);

/** The webhook's metrics. */
export class AdmissionMetrics {
  readonly registry = new MetricsRegistry();
  readonly requests = this.registry.counter(
    "kpull_admission_requests_total",
    "AdmissionReview requests by endpoint and verdict (allowed, denied, patched, exempt, invalid).",
    ["endpoint", "verdict"],
  );
  readonly ruleRequests = this.registry.counter(
    "kpull_admission_rule_requests_total",
    "AdmissionReview requests in which a rule had at least one finding, by endpoint, verdict and rule.",
    ["endpoint", "verdict", "rule"],
  );
  readonly findings = this.registry.counter(
    "kpull_admission_findings_total",
    "Findings by rule, severity and what was done with them (denied, warned, existing, suppressed, patched).",
    ["endpoint", "rule", "severity", "action"],
  );
  readonly duration = this.registry.histogram(
    "kpull_admission_request_duration_seconds",
    "Time from the request's arrival to the end of the response, by endpoint.",
    ["endpoint"],
    LATENCY_BUCKETS,
  );
  readonly inflight = this.registry.gauge(
    "kpull_admission_requests_in_flight",
    "Requests being read or answered.",
  );
  readonly rejected = this.registry.counter(
    "kpull_http_rejected_total",
    "HTTP requests refused before any AdmissionReview was judged, by reason.",
    ["reason"],
  );
  readonly pinLookups = this.registry.counter(
    "kpull_admission_pin_lookups_total",
    "Tag-to-digest lookups for the pin mutation by outcome (hit, miss, error, cached-error, timeout).",
    ["outcome"],
  );
  readonly reloads = this.registry.counter(
    "kpull_reloads_total",
    "Reloads of the serving certificate and the configuration, by what and result.",
    ["what", "result"],
  );
  readonly certificateExpiry = this.registry.gauge(
    "kpull_tls_certificate_expiry_timestamp_seconds",
    "When the serving certificate in use expires (Unix time).",
  );
  readonly configInfo = this.registry.gauge(
    "kpull_config_info",
    "The policy in force: the mode, the mutation and whether findings deny (value 1).",
    ["mode", "mutation", "action", "pin"],
  );
  readonly ready = this.registry.gauge("kpull_ready", "1 while /readyz answers 200.");
  readonly startTime = this.registry.gauge(
    "process_start_time_seconds",
    "Start time of the process since the Unix epoch in seconds.",
  );

  constructor() {
    this.startTime.set({}, Math.floor(Date.now() / 1000 - process.uptime()));
  }

  render(): string {
    return this.registry.render();
  }
}
