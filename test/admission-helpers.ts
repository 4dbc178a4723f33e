// Shared by the admission tests: AdmissionReview documents, HTTP/1.1 and HTTP/2 clients that trust a test
// CA, a strict parser of the Prometheus text format, and an RFC 6902 applier (as the API server applies the
// webhook's patch).

import assert from "node:assert/strict";
import http2 from "node:http2";
import https from "node:https";
import type { TLSSocket } from "node:tls";

export type Json = Record<string, unknown>;

// --- AdmissionReview documents ---

const RESOURCES: Record<string, [group: string, version: string, resource: string]> = {
  Pod: ["", "v1", "pods"],
  PodTemplate: ["", "v1", "podtemplates"],
  ReplicationController: ["", "v1", "replicationcontrollers"],
  ReplicaSet: ["apps", "v1", "replicasets"],
  Deployment: ["apps", "v1", "deployments"],
  StatefulSet: ["apps", "v1", "statefulsets"],
  DaemonSet: ["apps", "v1", "daemonsets"],
  Job: ["batch", "v1", "jobs"],
  CronJob: ["batch", "v1", "cronjobs"],
};

export interface ReviewInput {
  readonly operation?: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly subResource?: string;
  readonly namespace?: string;
  readonly dryRun?: boolean;
  readonly uid?: string;
}

let counter = 0;

/** An admission.k8s.io/v1 AdmissionReview as the API server sends it. */
export function admissionReview(input: ReviewInput): { uid: string; body: Json } {
  const object = (input.object ?? input.oldObject ?? {}) as Json;
  const kind = typeof object.kind === "string" ? object.kind : "Pod";
  const [group, version, resource] = RESOURCES[kind] ?? ["", "v1", "pods"];
  const metadata = (object.metadata ?? {}) as Json;
  const uid = input.uid ?? `00000000-0000-4000-8000-${String(++counter).padStart(12, "0")}`;
  const namespace =
    input.namespace ?? (typeof metadata.namespace === "string" ? metadata.namespace : "default");
  return {
    uid,
    body: {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: {
        uid,
        kind: { group, version, kind },
        resource: { group, version, resource },
        requestKind: { group, version, kind },
        requestResource: { group, version, resource },
        ...(input.subResource
          ? { subResource: input.subResource, requestSubResource: input.subResource }
          : {}),
        name: typeof metadata.name === "string" ? metadata.name : "",
        namespace,
        operation: input.operation ?? "CREATE",
        userInfo: { username: "system:admin", groups: ["system:masters", "system:authenticated"] },
        ...(input.object !== undefined ? { object: input.object } : {}),
        ...(input.oldObject !== undefined ? { oldObject: input.oldObject } : {}),
        dryRun: input.dryRun ?? false,
        options: {
          apiVersion: "meta.k8s.io/v1",
          kind: input.operation === "UPDATE" ? "UpdateOptions" : "CreateOptions",
        },
      },
    },
  };
}

// --- clients ---

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** "1.1" or "2.0". */
  readonly httpVersion: string;
  /** SHA-256 fingerprint of the certificate the server presented. */
  readonly fingerprint: string | null;
}

export interface ClientOptions {
  readonly ca: string | readonly string[];
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly agent?: https.Agent | false;
  readonly timeoutMs?: number;
}

/** One HTTP/1.1 request over TLS (ALPN offers only http/1.1). */
export function h1Request(
  url: string,
  body: string | Buffer | null,
  options: ClientOptions,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: options.method ?? (body === null ? "GET" : "POST"),
        ca: options.ca as string | string[],
        // ALPN offers only HTTP/1.1 (the option reaches tls.connect; the type does not list it).
        agent: options.agent ?? false,
        ALPNProtocols: ["http/1.1"],
        headers: {
          ...(body === null ? {} : { "content-type": "application/json" }),
          ...options.headers,
        },
        timeout: options.timeoutMs ?? 10_000,
      } as https.RequestOptions,
      (res) => {
        const chunks: Buffer[] = [];
        const socket = res.socket as TLSSocket;
        const fingerprint = socket.getPeerCertificate?.()?.fingerprint256 ?? null;
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString("utf8"),
            httpVersion: res.httpVersion,
            fingerprint,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("client timeout")));
    req.on("error", reject);
    req.end(body ?? undefined);
  });
}

/** An HTTP/2 session to `origin`; `request` sends one request on it. */
export function h2Session(origin: string, ca: string | readonly string[]) {
  const session = http2.connect(origin, { ca: ca as string | string[] });
  session.on("error", () => {});
  const request = (
    path: string,
    body: string | Buffer | null,
    options: { method?: string; headers?: Record<string, string> } = {},
  ): Promise<HttpAnswer> =>
    new Promise((resolve, reject) => {
      const stream = session.request({
        ":method": options.method ?? (body === null ? "GET" : "POST"),
        ":path": path,
        ...(body === null ? {} : { "content-type": "application/json" }),
        ...options.headers,
      });
      let status = 0;
      let headers: Record<string, string | string[] | undefined> = {};
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        status = Number(h[":status"]);
        headers = h as Record<string, string | string[] | undefined>;
      });
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () =>
        resolve({
          status,
          headers,
          text: Buffer.concat(chunks).toString("utf8"),
          httpVersion: "2.0",
          fingerprint:
            (session.socket as TLSSocket | undefined)?.getPeerCertificate?.()?.fingerprint256 ?? null,
        }),
      );
      stream.on("error", reject);
      stream.end(body ?? undefined);
    });
  return { session, request, close: () => new Promise<void>((r) => session.close(() => r())) };
}

export interface ReviewAnswer {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: { code: number; reason?: string; message: string };
  readonly patch?: string;
  readonly patchType?: string;
  readonly warnings?: string[];
  readonly auditAnnotations?: Record<string, string>;
}

/** The response of an AdmissionReview answer, after checking its envelope. */
export function reviewResponse(answer: HttpAnswer, uid: string): ReviewAnswer {
  assert.equal(answer.status, 200, answer.text);
  assert.match(String(answer.headers["content-type"]), /^application\/json/);
  const review = JSON.parse(answer.text) as { apiVersion: string; kind: string; response: ReviewAnswer };
  assert.equal(review.apiVersion, "admission.k8s.io/v1");
  assert.equal(review.kind, "AdmissionReview");
  assert.equal(review.response.uid, uid, "the uid is echoed");
  return review.response;
}

export function decodePatch(response: ReviewAnswer): PatchOp[] {
  if (response.patch === undefined) return [];
  assert.equal(response.patchType, "JSONPatch");
  return JSON.parse(Buffer.from(response.patch, "base64").toString("utf8")) as PatchOp[];
}

// --- RFC 6902 ---

export interface PatchOp {
  readonly op: string;
  readonly path: string;
  readonly value?: unknown;
  readonly from?: string;
}

function pointer(path: string): string[] {
  if (path === "") return [];
  assert.ok(path.startsWith("/"), `not a JSON pointer: ${path}`);
  return path
    .slice(1)
    .split("/")
    .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"));
}

/** Applies an RFC 6902 patch (add, replace, remove, test) to a copy of `document`, strictly. */
export function applyPatch<T>(document: T, patch: readonly PatchOp[]): T {
  const doc = structuredClone(document) as unknown;
  for (const op of patch) {
    const parts = pointer(op.path);
    const last = parts.pop();
    assert.ok(last !== undefined, "a patch of the whole document");
    let parent: unknown = doc;
    for (const p of parts) {
      assert.ok(typeof parent === "object" && parent !== null, `no parent for ${op.path}`);
      parent = (parent as Record<string, unknown>)[p];
    }
    assert.ok(typeof parent === "object" && parent !== null, `no parent for ${op.path}`);
    const target = parent as Record<string, unknown>;
    const exists = Object.hasOwn(target, last);
    switch (op.op) {
      case "add":
        if (Array.isArray(target)) target.splice(last === "-" ? target.length : Number(last), 0, op.value);
        else target[last] = op.value;
        break;
      case "replace":
        assert.ok(exists, `replace of a missing ${op.path}`);
        target[last] = op.value;
        break;
      case "remove":
        assert.ok(exists, `remove of a missing ${op.path}`);
        if (Array.isArray(target)) target.splice(Number(last), 1);
        else delete target[last];
        break;
      case "test":
        assert.deepEqual(target[last], op.value);
        break;
      default:
        assert.fail(`unsupported patch op ${op.op}`);
    }
  }
  return doc as T;
}

// --- Prometheus text exposition format 0.0.4 ---

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  readonly help: string;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(text: string, line: string): number {
  if (text === "+Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (text === "NaN") return Number.NaN;
  assert.match(text, /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, `bad value in: ${line}`);
  return Number(text);
}

/** Parses the exposition text strictly (as Prometheus's own parser would accept it); throws otherwise. */
export function parsePrometheus(text: string): Map<string, Family> {
  assert.ok(text.endsWith("\n"), "the exposition ends with a newline");
  const families = new Map<string, Family>();
  let current: Family | null = null;
  const familyOf = (sample: string): Family | undefined => {
    for (const suffix of ["_bucket", "_sum", "_count", ""]) {
      if (suffix !== "" && !sample.endsWith(suffix)) continue;
      const f = families.get(sample.slice(0, sample.length - suffix.length));
      if (f !== undefined && (suffix === "" || f.type === "histogram" || f.type === "summary")) return f;
    }
    return undefined;
  };
  for (const line of text.slice(0, -1).split("\n")) {
    if (line === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      if (m === null) continue; // a comment
      const [, what, name, rest] = m as unknown as [string, string, string, string];
      assert.match(name, NAME, line);
      let f = families.get(name);
      if (f === undefined) {
        f = { name, type: "untyped", help: "", samples: [] };
        families.set(name, f);
      }
      if (what === "TYPE") {
        assert.ok(["counter", "gauge", "histogram", "summary", "untyped"].includes(rest), line);
        assert.equal(f.samples.length, 0, `TYPE after samples: ${line}`);
        (f as { type: string }).type = rest;
      } else (f as { help: string }).help = rest;
      current = f;
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    assert.ok(m !== null, `bad sample line: ${line}`);
    const [, name, , labelText, valueText] = m as unknown as [
      string,
      string,
      string | undefined,
      string | undefined,
      string,
    ];
    const labels: Record<string, string> = {};
    if (labelText !== undefined && labelText !== "") {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/gy;
      let consumed = 0;
      for (const lm of labelText.matchAll(re)) {
        const [all, key, raw] = lm as unknown as [string, string, string];
        assert.match(key, LABEL_NAME);
        assert.ok(!(key in labels), `duplicate label ${key}: ${line}`);
        labels[key] = raw.replaceAll(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c));
        consumed += all.length;
      }
      assert.equal(consumed, labelText.length, `bad labels: ${line}`);
    }
    const family = familyOf(name);
    assert.ok(family !== undefined, `sample without a TYPE: ${line}`);
    assert.equal(family, current, `samples of a family must be together: ${line}`);
    family.samples.push({ name, labels, value: parseValue(valueText, line) });
  }
  for (const f of families.values()) {
    if (f.type !== "histogram") continue;
    const series = new Map<string, Sample[]>();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, samples] of series) {
      const buckets = samples.filter((s) => s.name.endsWith("_bucket"));
      const count = samples.find((s) => s.name.endsWith("_count"));
      assert.ok(
        samples.some((s) => s.name.endsWith("_sum")),
        `${f.name}${key}: no _sum`,
      );
      assert.ok(count !== undefined, `${f.name}${key}: no _count`);
      const les = buckets.map((b) => parseValue(b.labels.le ?? "", f.name));
      assert.equal(les.at(-1), Number.POSITIVE_INFINITY, `${f.name}${key}: the last bucket is +Inf`);
      for (let i = 1; i < buckets.length; i++) {
        assert.ok((les[i] as number) > (les[i - 1] as number), `${f.name}: le increasing`);
        assert.ok(
          (buckets[i]?.value as number) >= (buckets[i - 1]?.value as number),
          `${f.name}: cumulative`,
        );
      }
      assert.equal(buckets.at(-1)?.value, count.value, `${f.name}${key}: +Inf bucket = _count`);
    }
  }
  return families;
}

/** The value of the sample of `family` with exactly these labels (0 when absent). */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const family = families.get(name.replace(/_(bucket|sum|count)$/, "")) ?? families.get(name);
  const sample = family?.samples.find(
    (s) =>
      s.name === name &&
      Object.keys(labels).length === Object.keys(s.labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return sample?.value ?? 0;
}
