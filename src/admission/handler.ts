// The webhook's logic, apart from HTTP: an AdmissionReview in, an AdmissionReview out.
//
// Validate runs the check engine on the object, exactly as `kpull check` runs it on a file, so both give the
// same findings with the same rule ids and messages. On UPDATE only what the update introduces is judged:
// a finding the old object already had (same rule, container and message) is reported as a warning, never
// a reason to deny, so that a label change, a scale or a finalizer removal on an object created before the
// policy still goes through. Mutate sets pull policies (the fix `kpull fix` would write, or Always as the
// AlwaysPullImages plugin does) and optionally pins tags to digests.

import {
  type CheckConfig,
  type CheckReport,
  checkImageUses,
  defaultConfig,
  describeContainer,
  type Finding,
  type Mode,
} from "../check/index.ts";
import type { ImageUse } from "../manifests/index.ts";
import { parseNormalizedNamed, type Reference } from "../reference/index.ts";
import { boundedWarnings, clip, denyMessage, findingWarning } from "./messages.ts";
import type { AdmissionMetrics } from "./metrics.ts";
import { imageUsesFromObject, valueAt } from "./object.ts";
import { encodePatch, fieldPath, setOperation } from "./patch.ts";
import type { PinAnswer, PinCache } from "./pin.ts";
import { decodeReview } from "./review.ts";
import {
  ADMISSION_API_VERSION,
  ADMISSION_KIND,
  type AdmissionRequest,
  type AdmissionResponse,
  type AdmissionReviewResponse,
  type Endpoint,
  type JsonObject,
  type MutationMode,
  type PatchOperation,
} from "./types.ts";

/** What happens when a tag cannot be resolved in time: admit it unpinned (open) or deny (closed). */
export type PinFailure = "open" | "closed";

export interface PinSettings {
  readonly failure: PinFailure;
  /** The longest a request waits for its lookups (the server also caps it by the API server's timeout). */
  readonly budgetMs: number;
}

/** Everything that decides a verdict. Replaced as a whole when the configuration is reloaded. */
export interface AdmissionPolicy {
  /** Mode and rule severities (`.kpull.yaml`); its path ignores do not apply to objects. */
  readonly config: CheckConfig;
  /** Overrides the configuration's mode (`--mode`). */
  readonly mode?: Mode | undefined;
  /** Honour `kpull/ignore*` and `kpull/mode` annotations. */
  readonly annotations: boolean;
  /** `deny`: error findings deny. `warn` (audit): every finding is a warning, nothing is denied. */
  readonly action: "deny" | "warn";
  /** Requests in these namespaces are admitted untouched. */
  readonly exemptNamespaces: readonly string[];
  readonly mutation: MutationMode;
  /** always-pull-images: also set image volumes' pullPolicy (KEP-4639 asks the plugin to respect them). */
  readonly imageVolumes: boolean;
  /** Pin tags to digests in /mutate; null when off. */
  readonly pin: PinSettings | null;
}

export function defaultPolicy(overrides: Partial<AdmissionPolicy> = {}): AdmissionPolicy {
  return {
    config: defaultConfig(),
    annotations: true,
    action: "deny",
    exemptNamespaces: ["kube-system"],
    mutation: "pull-policy",
    imageVolumes: false,
    pin: null,
    ...overrides,
  };
}

/** How a request was answered, for metrics and logs. */
export type Verdict =
  | "allowed" // judged, nothing to say
  | "warned" // allowed with warnings
  | "audited" // audit mode: would have been denied
  | "denied"
  | "patched" // /mutate returned a patch
  | "exempt" // an exempt namespace
  | "skipped" // nothing to judge: DELETE, another subresource, a kind without a pod spec
  | "invalid"; // malformed review

export type HandlerResult =
  | {
      readonly status: 200;
      readonly review: AdmissionReviewResponse;
      readonly verdict: Verdict;
      readonly rules: readonly string[];
    }
  | { readonly status: 400; readonly message: string; readonly verdict: "invalid" };

export interface ReviewOptions {
  /** Absolute time (ms since the epoch) by which the answer must be sent; bounds pin lookups. */
  readonly deadline?: number;
}

export interface AdmissionHandlerOptions {
  readonly policy?: AdmissionPolicy;
  /** Required when the policy pins. */
  readonly pinCache?: PinCache | null;
  readonly metrics?: AdmissionMetrics | null;
  readonly now?: () => Date;
}

/** The file name findings carry in the webhook: there is none, the object came in a review. */
export const REVIEW_FILE = "AdmissionReview";

const SUPPORTED_SUBRESOURCES = new Set(["", "ephemeralcontainers"]);

interface Subject {
  readonly request: AdmissionRequest;
  readonly object: JsonObject;
  readonly oldObject: JsonObject | null;
  /** The namespace the object lives in (the request's, else the object's). */
  readonly namespace: string;
  /** pods, main resource (not a subresource). */
  readonly isPod: boolean;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function metadataString(object: JsonObject | null, key: string): string | null {
  const metadata = object?.metadata;
  if (!isObject(metadata)) return null;
  const v = metadata[key];
  return typeof v === "string" && v !== "" ? v : null;
}

/** The key that says a finding is "the same" in the old and the new object. */
function findingKey(f: Finding): string {
  return `${f.rule}\u0000${f.containerType}\u0000${f.container}\u0000${f.message}`;
}

function slotKey(use: Pick<ImageUse, "containerType" | "container">): string {
  return `${use.containerType}\u0000${use.container}`;
}

/** The path of the policy field of a use: imagePullPolicy, or an image volume's image.pullPolicy. */
function policyPath(use: Pick<ImageUse, "containerType" | "path">): (string | number)[] {
  return use.containerType === "imageVolume"
    ? [...use.path, "image", "pullPolicy"]
    : [...use.path, "imagePullPolicy"];
}

function imagePath(use: Pick<ImageUse, "containerType" | "path">): (string | number)[] {
  return use.containerType === "imageVolume" ? [...use.path, "image", "reference"] : [...use.path, "image"];
}

export class AdmissionHandler {
  #policy: AdmissionPolicy;
  readonly #pinCache: PinCache | null;
  readonly #metrics: AdmissionMetrics | null;
  readonly #now: () => Date;

  constructor(options: AdmissionHandlerOptions = {}) {
    this.#policy = options.policy ?? defaultPolicy();
    this.#pinCache = options.pinCache ?? null;
    this.#metrics = options.metrics ?? null;
    this.#now = options.now ?? (() => new Date());
    this.#checkPolicy(this.#policy);
  }

  get policy(): AdmissionPolicy {
    return this.#policy;
  }

  /** Replaces the policy; requests already running finish with the one they started with. */
  set policy(policy: AdmissionPolicy) {
    this.#checkPolicy(policy);
    this.#policy = policy;
  }

  #checkPolicy(policy: AdmissionPolicy): void {
    if (policy.pin !== null && this.#pinCache === null)
      throw new Error("pinning needs a pin cache (a registry client)");
  }

  /** Answers one review body (text as received). Never throws on input. */
  async review(endpoint: Endpoint, text: string, options: ReviewOptions = {}): Promise<HandlerResult> {
    const decoded = decodeReview(text);
    if (!decoded.ok) {
      if (decoded.uid === null) return { status: 400, message: decoded.message, verdict: "invalid" };
      return this.#answer(
        {
          uid: decoded.uid,
          allowed: false,
          status: { code: 400, reason: "BadRequest", message: `kpull: ${decoded.message}` },
        },
        "invalid",
      );
    }
    return this.reviewRequest(endpoint, decoded.request, options);
  }

  /** Answers a decoded request. */
  async reviewRequest(
    endpoint: Endpoint,
    request: AdmissionRequest,
    options: ReviewOptions = {},
  ): Promise<HandlerResult> {
    const policy = this.#policy;
    const uid = request.uid;
    if (request.operation !== "CREATE" && request.operation !== "UPDATE")
      return this.#answer({ uid, allowed: true }, "skipped");
    if (!SUPPORTED_SUBRESOURCES.has(request.subResource))
      return this.#answer({ uid, allowed: true }, "skipped");
    const object = request.object as JsonObject; // CREATE and UPDATE carry one (review.ts)
    const namespace = request.namespace || metadataString(object, "namespace") || "";
    if (namespace !== "" && policy.exemptNamespaces.includes(namespace))
      return this.#answer({ uid, allowed: true }, "exempt");
    const oldObject = request.operation === "UPDATE" ? request.oldObject : null;
    const kind = typeof object.kind === "string" ? object.kind : (request.kind?.kind ?? "");
    const isPod =
      request.subResource === "" &&
      (request.resource !== null
        ? request.resource.resource === "pods" && request.resource.group === ""
        : kind === "Pod");
    const subject: Subject = { request, object, oldObject, namespace, isPod };
    try {
      return endpoint === "validate"
        ? this.#validate(subject, policy)
        : await this.#mutate(subject, policy, options.deadline ?? Number.POSITIVE_INFINITY);
    } catch (error) {
      // A bug must not take the server down, and must not pass silently: deny with the reason.
      return this.#answer(
        {
          uid,
          allowed: false,
          status: {
            code: 500,
            reason: "InternalError",
            message: `kpull: internal error: ${(error as Error).message}`,
          },
        },
        "invalid",
      );
    }
  }

  /** The image uses of an object as the check engine sees them, with the request's namespace and name. */
  #uses(object: JsonObject | null, subject: Subject): ImageUse[] {
    if (object === null) return [];
    const uses = imageUsesFromObject(object, REVIEW_FILE);
    const name =
      metadataString(object, "name") ??
      (subject.request.name ||
        (metadataString(object, "generateName") !== null
          ? `${metadataString(object, "generateName")}*`
          : null));
    return uses.map((u) => ({
      ...u,
      namespace: u.namespace ?? (subject.namespace || null),
      name: u.name ?? name,
    }));
  }

  #check(uses: readonly ImageUse[], policy: AdmissionPolicy): CheckReport {
    return checkImageUses(uses, {
      config: policy.config,
      mode: policy.mode,
      annotations: policy.annotations,
      now: this.#now,
    });
  }

  /** Findings of the new object, split into those the update introduces and those the old object had. */
  #judge(subject: Subject, policy: AdmissionPolicy) {
    const report = this.#check(this.#uses(subject.object, subject), policy);
    let fresh: readonly Finding[] = report.findings;
    let existing: readonly Finding[] = [];
    if (subject.oldObject !== null) {
      const old = this.#check(this.#uses(subject.oldObject, subject), policy);
      const before = new Set(old.findings.map(findingKey));
      fresh = report.findings.filter((f) => !before.has(findingKey(f)));
      existing = report.findings.filter((f) => before.has(findingKey(f)));
    }
    return { report, fresh, existing };
  }

  #validate(subject: Subject, policy: AdmissionPolicy): HandlerResult {
    const { request } = subject;
    const endpoint: Endpoint = "validate";
    const { report, fresh, existing } = this.#judge(subject, policy);
    const audit = policy.action === "warn";
    const warnings: string[] = report.warnings.map((w) => `kpull: ${w}`);
    const denying: Finding[] = [];
    for (const f of fresh) {
      if (f.severity === "error" && !audit) denying.push(f);
      else warnings.push(findingWarning(f, f.severity === "error" ? " (audit: would deny)" : ""));
    }
    if (existing.length > 0) {
      const rules = [...new Set(existing.map((f) => f.rule))].join(", ");
      warnings.push(
        `kpull: ${existing.length} ${existing.length === 1 ? "finding" : "findings"} (${rules}) already present before this update; not judged on update`,
      );
    }

    // always-pull-images: the plugin's Validate, for the containers its Admit sets.
    const plugin = policy.mutation === "always-pull-images" ? this.#alwaysPullTargets(subject, policy) : [];
    const unsupported = plugin
      .filter((u) => u.pullPolicy !== "Always")
      .map(
        (u) =>
          `${fieldPath(policyPath(u))}: Unsupported value: ${JSON.stringify(u.pullPolicy ?? "")}: supported values: "Always"`,
      );

    const rules = [
      ...new Set([...fresh.map((f) => f.rule), ...(unsupported.length > 0 ? ["always-pull-images"] : [])]),
    ];
    for (const f of fresh)
      this.#metrics?.findings.inc({
        endpoint,
        rule: f.rule,
        severity: f.severity,
        action: f.severity === "error" && !audit ? "denied" : "warned",
      });
    for (const f of existing)
      this.#metrics?.findings.inc({ endpoint, rule: f.rule, severity: f.severity, action: "existing" });
    for (const f of report.suppressed)
      this.#metrics?.findings.inc({ endpoint, rule: f.rule, severity: f.severity, action: "suppressed" });

    const uid = request.uid;
    if ((denying.length > 0 || unsupported.length > 0) && !audit) {
      const hints: string[] = [];
      if (subject.isPod && request.operation === "UPDATE" && denying.some((f) => f.rule === "pull-policy"))
        hints.push(
          "imagePullPolicy cannot change on an existing Pod: use an image the current policy allows, or recreate the Pod.",
        );
      const parts: string[] = [];
      if (denying.length > 0) parts.push(denyMessage(denying, hints));
      if (unsupported.length > 0) {
        const name = metadataString(subject.object, "name") ?? request.name;
        parts.push(
          `kpull (always-pull-images): pods ${JSON.stringify(name)} is forbidden:\n${unsupported.map((l) => `  ${l}`).join("\n")}`,
        );
      }
      return this.#answer(
        {
          uid,
          allowed: false,
          status: { code: 403, reason: "Forbidden", message: parts.join("\n") },
          ...(warnings.length > 0 ? { warnings: boundedWarnings(warnings) } : {}),
          auditAnnotations: { findings: clip(rules.join(","), 1024) },
        },
        "denied",
        rules,
      );
    }
    if (audit && unsupported.length > 0)
      for (const l of unsupported) warnings.push(`kpull always-pull-images (audit: would deny): ${l}`);
    const wouldDeny = audit && (fresh.some((f) => f.severity === "error") || unsupported.length > 0);
    return this.#answer(
      {
        uid,
        allowed: true,
        ...(warnings.length > 0 ? { warnings: boundedWarnings(warnings) } : {}),
        ...(rules.length > 0 ? { auditAnnotations: { findings: clip(rules.join(","), 1024) } } : {}),
      },
      wouldDeny ? "audited" : warnings.length > 0 ? "warned" : "allowed",
      rules,
    );
  }

  /**
   * The containers (and, with `imageVolumes`, image volumes) the AlwaysPullImages plugin sets to Always
   * for this request: none for a subresource or a resource other than pods, none for an UPDATE that
   * introduces no image the old pod did not already use (the plugin's own test, images compared as strings
   * across all container kinds); otherwise on CREATE all of them, on UPDATE those whose image differs from
   * the old container (or volume) of the same name.
   */
  #alwaysPullTargets(
    subject: Subject,
    policy: AdmissionPolicy,
    object: JsonObject = subject.object,
  ): ImageUse[] {
    if (!subject.isPod) return [];
    const uses = this.#uses(object, subject).filter(
      (u) => u.containerType !== "imageVolume" || policy.imageVolumes,
    );
    if (subject.oldObject === null) return uses;
    const old = this.#uses(subject.oldObject, subject);
    const oldImages = new Set(old.filter((u) => u.containerType !== "imageVolume").map((u) => u.image));
    const anyNew = uses.some((u) => u.containerType !== "imageVolume" && !oldImages.has(u.image));
    if (!anyNew) return [];
    const before = new Map(old.map((u) => [slotKey(u), u.image]));
    return uses.filter((u) => before.get(slotKey(u)) !== u.image || !before.has(slotKey(u)));
  }

  async #mutate(subject: Subject, policy: AdmissionPolicy, deadline: number): Promise<HandlerResult> {
    const { request } = subject;
    const endpoint: Endpoint = "mutate";
    const uid = request.uid;
    const ops: PatchOperation[] = [];
    const warnings: string[] = [];
    const audit: Record<string, string> = {};
    let object = subject.object;

    // 1. Pin: images the request introduces, written with a tag (or none) and no digest.
    if (policy.pin !== null && this.#pinCache !== null) {
      const pinned = await this.#pin(subject, policy.pin, deadline);
      if (pinned.denied !== null) {
        return this.#answer(
          {
            uid,
            allowed: false,
            status: { code: 503, reason: "ServiceUnavailable", message: pinned.denied },
          },
          "denied",
          ["pin"],
        );
      }
      warnings.push(...pinned.warnings);
      if (pinned.ops.length > 0) {
        object = structuredClone(object) as JsonObject;
        for (const { path, value } of pinned.edits) setAt(object, path, value);
        ops.push(...pinned.ops);
        audit.pinned = clip(pinned.notes.join("; "), 1024);
      }
    }

    // 2. Pull policies.
    const changes: string[] = [];
    if (policy.mutation === "pull-policy" && !(subject.isPod && request.operation === "UPDATE")) {
      // A Pod's imagePullPolicy cannot change after creation; the validating webhook explains instead.
      const pinnedSubject = { ...subject, object };
      const { fresh } = this.#judge(pinnedSubject, policy);
      const seen = new Set<string>();
      for (const f of fresh) {
        if (f.rule !== "pull-policy" || f.fix === null) continue;
        const path = policyPath({ containerType: f.containerType, path: f.path });
        const pointer = path.join("\u0000");
        if (seen.has(pointer)) continue;
        seen.add(pointer);
        if (valueAt(object, path) === f.fix.value) continue;
        ops.push(setOperation(object, path, f.fix.value));
        changes.push(`${fieldPath(path)}=${f.fix.value}`);
        this.#metrics?.findings.inc({ endpoint, rule: f.rule, severity: f.severity, action: "patched" });
      }
    } else if (policy.mutation === "always-pull-images") {
      for (const u of this.#alwaysPullTargets(subject, policy, object)) {
        if (u.pullPolicy === "Always") continue;
        const path = policyPath(u);
        ops.push(setOperation(object, path, "Always"));
        changes.push(`${fieldPath(path)}=Always`);
      }
    }
    if (changes.length > 0) audit.patched = clip(changes.join("; "), 1024);

    const response: AdmissionResponse = {
      uid,
      allowed: true,
      ...(ops.length > 0 ? { patchType: "JSONPatch" as const, patch: encodePatch(ops) } : {}),
      ...(warnings.length > 0 ? { warnings: boundedWarnings(warnings) } : {}),
      ...(Object.keys(audit).length > 0 ? { auditAnnotations: audit } : {}),
    };
    const rules = [
      ...(changes.length > 0 ? [policy.mutation] : []),
      ...(audit.pinned !== undefined ? ["pin"] : []),
    ];
    return this.#answer(
      response,
      ops.length > 0 ? "patched" : warnings.length > 0 ? "warned" : "allowed",
      rules,
    );
  }

  async #pin(
    subject: Subject,
    settings: PinSettings,
    deadline: number,
  ): Promise<{
    ops: PatchOperation[];
    edits: { path: (string | number)[]; value: string }[];
    notes: string[];
    warnings: string[];
    denied: string | null;
  }> {
    const cache = this.#pinCache as PinCache;
    const uses = this.#uses(subject.object, subject);
    const before =
      subject.oldObject === null
        ? null
        : new Map(this.#uses(subject.oldObject, subject).map((u) => [slotKey(u), u.image]));
    const targets: { use: ImageUse; image: string; ref: Reference }[] = [];
    for (const use of uses) {
      if (use.imageStatus !== "string" || use.image === null) continue;
      if (before !== null && before.get(slotKey(use)) === use.image) continue; // unchanged by this update
      let ref: Reference;
      try {
        ref = parseNormalizedNamed(use.image);
      } catch {
        continue; // invalid-image reports it
      }
      if (ref.digest !== null) continue;
      targets.push({ use, image: use.image, ref });
    }
    const out = {
      ops: [] as PatchOperation[],
      edits: [] as { path: (string | number)[]; value: string }[],
      notes: [] as string[],
      warnings: [] as string[],
      denied: null as string | null,
    };
    if (targets.length === 0) return out;
    const budgetEnd = Math.min(deadline, Date.now() + settings.budgetMs);
    const answers = await withDeadline(
      targets.map((t) => cache.resolve(t.ref)),
      budgetEnd,
    );
    const failures: string[] = [];
    for (const [i, t] of targets.entries()) {
      const answer = answers[i] ?? null;
      this.#metrics?.pinLookups.inc({ outcome: answer === null ? "timeout" : answer.outcome });
      const where = describeContainer(t.use);
      if (answer === null || !answer.ok) {
        const why =
          answer === null ? `no answer within the ${settings.budgetMs} ms pin budget` : answer.error;
        failures.push(`${where}: cannot resolve ${JSON.stringify(t.image)} to a digest: ${why}`);
        continue;
      }
      const value = `${t.image}@${answer.digest}`;
      const path = imagePath(t.use);
      out.ops.push(setOperation(subject.object, path, value));
      out.edits.push({ path, value });
      out.notes.push(`${fieldPath(path)}: ${t.image} -> ${value}`);
    }
    if (failures.length > 0) {
      if (settings.failure === "closed") {
        out.denied = `kpull: pinning failed and the webhook fails closed (--pin-failure closed):\n${failures.map((f) => `  ${f}`).join("\n")}`;
      } else {
        for (const f of failures) out.warnings.push(`kpull pin: ${f}; admitted unpinned`);
      }
    }
    return out;
  }

  #answer(response: AdmissionResponse, verdict: Verdict, rules: readonly string[] = []): HandlerResult {
    return {
      status: 200,
      review: { apiVersion: ADMISSION_API_VERSION, kind: ADMISSION_KIND, response },
      verdict,
      rules,
    };
  }
}

/** Each promise's answer, or null for those not settled by `deadline`. */
async function withDeadline(
  promises: readonly Promise<PinAnswer>[],
  deadline: number,
): Promise<(PinAnswer | null)[]> {
  const results: (PinAnswer | null)[] = promises.map(() => null);
  const settled = Promise.all(
    promises.map(async (p, i) => {
      results[i] = await p;
    }),
  );
  const wait = deadline - Date.now();
  if (!Number.isFinite(wait)) {
    await settled;
    return results;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, wait));
  });
  try {
    await Promise.race([settled, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return [...results];
}

/** Sets `value` at `path` in a decoded object (the path exists up to its parent). */
function setAt(object: JsonObject, path: readonly (string | number)[], value: unknown): void {
  const parent = valueAt(object, path.slice(0, -1)) as Record<string | number, unknown> | undefined;
  const last = path[path.length - 1];
  if (parent !== undefined && parent !== null && last !== undefined) parent[last] = value;
}
