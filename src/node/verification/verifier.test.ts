import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { AuthConfig, Image, ImageService, ImageSpec, NodeEvent, PullCredential } from "../index.ts";
import { Backoff, ImageManager, SerialPuller } from "../index.ts";
import {
  type CheckResult,
  CredentialVerifier,
  type CredentialVerifierOptions,
  encodeIntent,
  recordFileName,
} from "./index.ts";

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});
function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "kpull-verify-"));
  roots.push(root);
  return root;
}

const T0 = Date.UTC(2024, 9, 21, 12, 26, 40);
const REF = `sha256:${"c".repeat(64)}`;
const H = "a55436fc140d516560d072c5fe8700385ce9f41629abf65c1edcbcb39fac691d";

const intentFile = (root: string, image: string) =>
  join(root, "image_manager", "pulling", recordFileName(image));
const pulledFile = (root: string, ref: string) => join(root, "image_manager", "pulled", recordFileName(ref));
const readJson = (file: string) => JSON.parse(readFileSync(file, "utf8"));
const exists = (file: string) => {
  try {
    statSync(file);
    return true;
  } catch {
    return false;
  }
};

function verifier(root: string, extra: Partial<CredentialVerifierOptions> = {}) {
  const warnings: string[] = [];
  const checks: CheckResult[] = [];
  const clock = { t: T0 };
  const v = new CredentialVerifier({
    root,
    now: () => clock.t,
    onWarning: (m) => warnings.push(m),
    onCheck: (c) => checks.push(c.result),
    ...extra,
  });
  return { v, warnings, checks, clock };
}

const secretCredential = (
  uid: string,
  namespace: string,
  name: string,
  password = "password",
): PullCredential => ({
  auth: { username: "user", password },
  source: `pull secret ${namespace}/${name}`,
  origin: {
    kind: "secret",
    uid,
    namespace,
    name,
    credentialHash: password === "password" ? H : `h-${password}`,
  },
});

/** A registry that wants user/password, behind a CRI-shaped service; images keyed by the spec's string. */
class AuthService implements ImageService {
  readonly images = new Map<string, Image>();
  readonly pulls: (string | null)[] = [];
  onPull: (() => void | Promise<void>) | null = null;
  async pullImage(spec: ImageSpec, auth: AuthConfig | null) {
    this.pulls.push(auth?.username ?? null);
    await this.onPull?.();
    if (auth?.username !== "user" || auth.password !== "password") {
      throw new Error(`failed to resolve reference "${spec.image}": unexpected status 401 Unauthorized`);
    }
    const image: Image = { id: REF, repoTags: [spec.image], repoDigests: [], size: 1, pinned: false };
    this.images.set(spec.image, image);
    return { imageRef: REF };
  }
  async imageStatus(spec: ImageSpec) {
    return { image: this.images.get(spec.image) ?? null };
  }
  async listImages() {
    return [...this.images.values()];
  }
  async removeImage(spec: ImageSpec) {
    this.images.delete(spec.image);
  }
  async imageFsInfo() {
    return [];
  }
}

function manager(service: ImageService, v: CredentialVerifier) {
  const events: NodeEvent[] = [];
  const m = new ImageManager({
    service,
    puller: new SerialPuller(null),
    backoff: new Backoff(),
    verifier: v,
    onEvent: (e) => events.push(e),
  });
  const pod = (name: string) => ({ kind: "Pod", namespace: "default", name, uid: `uid-${name}` });
  const ensure = (
    name: string,
    image: string,
    policy: "Always" | "IfNotPresent" | "Never",
    creds: PullCredential[],
  ) => m.ensureImageExists({ pod: pod(name), image, policy, credentials: async () => creds });
  return { events, ensure };
}

describe("write order around a pull (kubelet.md §3.6)", () => {
  it("the intent exists during the pull and is gone after success; the record names the secret", async () => {
    const root = tempRoot();
    const { v } = verifier(root);
    const service = new AuthService();
    const image = "registry.example/team/app:v1";
    let seenDuringPull = false;
    service.onPull = () => {
      seenDuringPull = exists(intentFile(root, image));
    };
    const { ensure } = manager(service, v);
    const res = await ensure("a", image, "IfNotPresent", [secretCredential("u1", "team", "regcred")]);
    assert.equal(res.ok, true);
    assert.equal(seenDuringPull, true, "intent written before the pull");
    assert.equal(exists(intentFile(root, image)), false, "intent removed after success");
    assert.equal(
      readFileSync(pulledFile(root, REF), "utf8"),
      `{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","lastUpdatedTime":"2024-10-21T12:26:40Z","imageRef":"${REF}","credentialMapping":{"registry.example/team/app":{"kubernetesSecrets":[{"uid":"u1","namespace":"team","name":"regcred","credentialHash":"${H}"}]}}}\n`,
    );
    assert.equal(statSync(pulledFile(root, REF)).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, "image_manager", "pulled")).mode & 0o777, 0o700);
    assert.equal(statSync(join(root, "image_manager", "pulling")).mode & 0o777, 0o700);
  });

  it("anonymous and node credentials record nodePodsAccessible", async () => {
    const root = tempRoot();
    const { v } = verifier(root);
    await v.recordPullIntent("public/app:1");
    await v.recordImagePulled("public/app:1", "ref-anon", null);
    await v.recordPullIntent("private/app:1");
    await v.recordImagePulled("private/app:1", "ref-node", {
      auth: { username: "u", password: "p" },
      source: "docker config",
      origin: { kind: "node" },
    });
    for (const [ref, key] of [
      ["ref-anon", "docker.io/public/app"],
      ["ref-node", "docker.io/private/app"],
    ] as const) {
      assert.deepEqual(readJson(pulledFile(root, ref)).credentialMapping, {
        [key]: { nodePodsAccessible: true },
      });
    }
  });

  it("a failed pull removes the intent and writes no record", async () => {
    const root = tempRoot();
    const { v } = verifier(root);
    const { ensure } = manager(new AuthService(), v);
    const res = await ensure("a", "registry.example/team/app:v1", "IfNotPresent", []);
    assert.equal(res.ok, false);
    assert.equal(exists(intentFile(root, "registry.example/team/app:v1")), false);
    assert.equal(exists(pulledFile(root, REF)), false);
  });

  it("concurrent pulls of one image share the intent file; it goes when the last one ends", async () => {
    const root = tempRoot();
    const { v } = verifier(root);
    const image = "registry.example/team/app:v1";
    await v.recordPullIntent(image);
    await v.recordPullIntent(image);
    assert.equal(v.inFlight(image), 2);
    await v.recordImagePullFailed(image);
    assert.equal(exists(intentFile(root, image)), true, "one pull still in flight");
    await v.recordImagePulled(image, REF, secretCredential("u1", "team", "regcred"));
    assert.equal(exists(intentFile(root, image)), false);
    assert.equal(v.inFlight(image), 0);
  });

  it("if the record cannot be written, the intent stays (the image still counts as kubelet-pulled)", async () => {
    const root = tempRoot();
    const { v, warnings } = verifier(root);
    mkdirSync(join(root, "image_manager"), { recursive: true });
    writeFileSync(join(root, "image_manager", "pulled"), "not a directory");
    await v.recordPullIntent("app:1");
    await v.recordImagePulled("app:1", REF, null);
    assert.equal(exists(intentFile(root, "app:1")), true);
    assert.equal(v.inFlight("app:1"), 1);
    assert.match(warnings.join("\n"), /failed to write image pulled record/);
  });

  it("if the intent cannot be written, nothing is pulled and the kubelet's message is returned", async () => {
    const root = tempRoot();
    const { v } = verifier(root);
    mkdirSync(join(root, "image_manager"), { recursive: true });
    writeFileSync(join(root, "image_manager", "pulling"), "not a directory");
    const service = new AuthService();
    const { ensure } = manager(service, v);
    const res = await ensure("a", "app:1", "IfNotPresent", []);
    assert.equal(res.ok, false);
    assert.ok(!res.ok);
    assert.equal(res.reason, "ErrImagePull");
    assert.match(
      res.message,
      /^Failed to record image pull intent for container image "app:1": failed to record image pull intent: /,
    );
    assert.deepEqual(service.pulls, []);
  });
});

describe("the check against records on disk", () => {
  it("pod A's secret pulls; pod B without credentials must pull (and fails); pod C's copy of the secret passes", async () => {
    const root = tempRoot();
    const { v, checks } = verifier(root);
    const service = new AuthService();
    const { ensure, events } = manager(service, v);
    const image = "registry.example/team/app:v1";
    assert.equal(
      (await ensure("a", image, "IfNotPresent", [secretCredential("u1", "team-a", "regcred")])).ok,
      true,
    );

    const b = await ensure("b", image, "IfNotPresent", []);
    assert.ok(!b.ok);
    assert.equal(b.reason, "ErrImagePull");
    assert.equal(checks.at(-1)?.reason, "no-credential-match");
    assert.deepEqual(service.pulls, ["user", null], "pod B's attempt went to the registry, anonymously");
    const never = await ensure("b2", image, "Never", []);
    assert.ok(!never.ok);
    assert.equal(never.reason, "ErrImageNeverPull");
    assert.equal(never.message, `Container image "${image}" is not present with pull policy of Never`);

    events.length = 0;
    const c = await ensure("c", image, "IfNotPresent", [secretCredential("u2", "team-c", "copy")]);
    assert.equal(c.ok, true);
    assert.deepEqual(service.pulls, ["user", null], "pod C did not contact the registry");
    assert.deepEqual(
      events.map((e) => [e.reason, e.message]),
      [["Pulled", `Container image "${image}" already present on machine and can be accessed by the pod`]],
    );
    assert.deepEqual(
      readJson(pulledFile(root, REF)).credentialMapping["registry.example/team/app"].kubernetesSecrets.map(
        (s: { namespace: string; name: string }) => `${s.namespace}/${s.name}`,
      ),
      ["team-a/regcred", "team-c/copy"],
      "pod C's coordinates were added",
    );
  });

  it("a rotated secret (same coordinates, new hash) passes and the record takes the new hash", async () => {
    const root = tempRoot();
    const { v } = verifier(root);
    await v.recordPullIntent("app:1");
    await v.recordImagePulled("app:1", REF, secretCredential("u1", "a", "s"));
    const rotated = secretCredential("u1", "a", "s", "new-password");
    assert.equal(await v.mustAttemptImagePull("app:1", REF, async () => [rotated]), false);
    const secrets = readJson(pulledFile(root, REF)).credentialMapping["docker.io/library/app"]
      .kubernetesSecrets;
    assert.deepEqual(secrets, [{ uid: "u1", namespace: "a", name: "s", credentialHash: "h-new-password" }]);
  });

  it("the pod's credentials are looked up only when the record needs them", async () => {
    const root = tempRoot();
    const { v } = verifier(root);
    let lookups = 0;
    const lookup = async () => {
      lookups++;
      return [];
    };
    assert.equal(
      await v.mustAttemptImagePull("app:1", REF, lookup),
      false,
      "no record, no intent: preloaded",
    );
    await v.recordPullIntent("app:1");
    await v.recordImagePulled("app:1", REF, null);
    assert.equal(await v.mustAttemptImagePull("app:1", REF, lookup), false, "node-accessible");
    assert.equal(lookups, 0);
    await v.recordPullIntent("other:1");
    await v.recordImagePulled("other:1", "ref-2", secretCredential("u1", "a", "s"));
    assert.equal(await v.mustAttemptImagePull("other:1", "ref-2", lookup), true);
    assert.equal(lookups, 1);
  });

  it("an in-flight pull in this process marks the image as kubelet-pulled", async () => {
    const root = tempRoot();
    const { v } = verifier(root);
    await v.recordPullIntent("app:1");
    rmSync(intentFile(root, "app:1"));
    assert.equal(await v.mustAttemptImagePull("app:1", REF, async () => []), true);
  });

  it("with 100 secrets recorded, a match adds nothing", async () => {
    const root = tempRoot();
    const { v } = verifier(root);
    for (let i = 0; i < 100; i++) {
      await v.recordPullIntent("app:1");
      await v.recordImagePulled("app:1", REF, secretCredential(`u${i}`, "bulk", `s${i}`));
    }
    const before = readFileSync(pulledFile(root, REF), "utf8");
    assert.equal(
      await v.mustAttemptImagePull("app:1", REF, async () => [secretCredential("new", "x", "y")]),
      false,
    );
    assert.equal(readFileSync(pulledFile(root, REF), "utf8"), before);
    const rotated = secretCredential("u7", "bulk", "s7", "rotated");
    assert.equal(await v.mustAttemptImagePull("app:1", REF, async () => [rotated]), true);
  });
});

describe("crash safety", () => {
  it("a half-written temporary file next to a record does not break reading or listing", async () => {
    const root = tempRoot();
    const { v } = verifier(root);
    await v.recordPullIntent("app:1");
    await v.recordImagePulled("app:1", REF, null);
    const file = pulledFile(root, REF);
    const good = readFileSync(file, "utf8");
    writeFileSync(`${file}.4242-deadbeef.tmp`, good.slice(0, 40));
    writeFileSync(`${file}.tmp`, good.slice(0, 10));
    writeFileSync(join(root, "image_manager", "pulled", "README"), "not a record");
    assert.equal(await v.mustAttemptImagePull("app:1", REF, async () => []), false);
    const listed = await v.records.listPulled();
    assert.deepEqual(
      listed.map((l) => l.ok && l.value.imageRef),
      [REF],
    );
  });

  it("a corrupt or unreadable record forces a pull, and the next successful pull replaces it", async () => {
    const root = tempRoot();
    const { v, checks, warnings } = verifier(root, { policy: "NeverVerify" });
    mkdirSync(join(root, "image_manager", "pulled"), { recursive: true });
    writeFileSync(
      pulledFile(root, REF),
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","imageRef":"sha2',
    );
    assert.equal(await v.mustAttemptImagePull("app:1", REF, async () => []), true, "even under NeverVerify");
    assert.equal(checks.at(-1)?.reason, "records-unreadable");
    assert.match(warnings.join("\n"), /unable to access cache records/);
    await v.recordPullIntent("app:1");
    await v.recordImagePulled("app:1", REF, null);
    assert.equal(readJson(pulledFile(root, REF)).imageRef, REF);
    assert.equal(await v.mustAttemptImagePull("app:1", REF, async () => []), false);
  });

  it("a record stored under another ref's name is not trusted", async () => {
    const root = tempRoot();
    const { v, checks } = verifier(root);
    await v.recordPullIntent("app:1");
    await v.recordImagePulled("app:1", "other-ref", null);
    mkdirSync(join(root, "image_manager", "pulled"), { recursive: true });
    writeFileSync(pulledFile(root, REF), readFileSync(pulledFile(root, "other-ref")));
    assert.equal(await v.mustAttemptImagePull("app:1", REF, async () => []), true);
    assert.equal(checks.at(-1)?.reason, "records-unreadable");
  });

  it("start-up removes stale temporary files and leaves young ones (another process may be writing)", async () => {
    const root = tempRoot();
    const dir = join(root, "image_manager", "pulled");
    mkdirSync(dir, { recursive: true });
    const stale = join(dir, `${recordFileName(REF)}.1-aa.tmp`);
    const young = join(dir, `${recordFileName(REF)}.2-bb.tmp`);
    writeFileSync(stale, "{");
    writeFileSync(young, "{");
    const old = new Date(Date.now() - 3600_000);
    utimesSync(stale, old, old);
    const { v } = verifier(root, { now: Date.now });
    const report = await v.initialize(null);
    assert.deepEqual(report.removedTemporaries, [stale]);
    assert.deepEqual(readdirSync(dir), [`${recordFileName(REF)}.2-bb.tmp`]);
  });
});

describe("restart with stale intents (kubelet.md §3.7)", () => {
  it("an intent whose image the runtime has becomes a record without credentials; others stay", async () => {
    const root = tempRoot();
    const first = verifier(root);
    await first.v.recordPullIntent("docker.io/testing/test:latest");
    await first.v.recordPullIntent("nginx:1.25");
    // The kubelet crashes here, after the pulls but before recording them.
    const images = {
      listImages: async (): Promise<Image[]> => [
        { id: REF, repoTags: ["docker.io/testing/test:latest"], repoDigests: [], size: 1, pinned: false },
        // CRI tags are normalized, the intent holds the pod's string: not converted [derived].
        {
          id: "ref-nginx",
          repoTags: ["docker.io/library/nginx:1.25"],
          repoDigests: [],
          size: 1,
          pinned: false,
        },
      ],
    };
    const second = verifier(root);
    const report = await second.v.initialize(images);
    assert.deepEqual(report.converted, [{ image: "docker.io/testing/test:latest", imageRef: REF }]);
    assert.deepEqual(report.keptIntents, ["nginx:1.25"]);
    assert.equal(exists(intentFile(root, "docker.io/testing/test:latest")), false);
    assert.equal(exists(intentFile(root, "nginx:1.25")), true);
    assert.equal(
      readFileSync(pulledFile(root, REF), "utf8"),
      `{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","lastUpdatedTime":"2024-10-21T12:26:40Z","imageRef":"${REF}"}\n`,
    );
    // The next pod must prove access, whatever it brings.
    const secret = secretCredential("u1", "a", "s");
    assert.equal(
      await second.v.mustAttemptImagePull("docker.io/testing/test:latest", REF, async () => [secret]),
      true,
    );
    // The kept intent still marks nginx:1.25 as kubelet-pulled: verification required, not "preloaded".
    assert.equal(await second.v.mustAttemptImagePull("nginx:1.25", "ref-nginx", async () => []), true);
    assert.equal(second.checks.at(-1)?.reason, "no-record");
    // A successful pull with credentials then fills the record in.
    await second.v.recordPullIntent("docker.io/testing/test:latest");
    await second.v.recordImagePulled("docker.io/testing/test:latest", REF, secret);
    assert.equal(
      await second.v.mustAttemptImagePull("docker.io/testing/test:v2", REF, async () => [secret]),
      false,
    );
  });

  it("an intent matching a RepoDigest converts too; an existing record keeps its credentials", async () => {
    const root = tempRoot();
    const { v } = verifier(root);
    const digestRef = `registry.example/app@sha256:${"d".repeat(64)}`;
    await v.recordPullIntent("registry.example/app:1");
    await v.recordImagePulled("registry.example/app:1", REF, null);
    await v.recordPullIntent(digestRef);
    const before = readFileSync(pulledFile(root, REF), "utf8");
    const report = await verifier(root).v.initialize({
      listImages: async () => [
        { id: REF, repoTags: ["registry.example/app:1"], repoDigests: [digestRef], size: 1, pinned: false },
      ],
    });
    assert.deepEqual(report.converted, [{ image: digestRef, imageRef: REF }]);
    assert.equal(readFileSync(pulledFile(root, REF), "utf8"), before);
  });

  it("records of the alpha version are rewritten as v1beta1 at start-up; unreadable ones are reported", async () => {
    const root = tempRoot();
    mkdirSync(join(root, "image_manager", "pulled"), { recursive: true });
    mkdirSync(join(root, "image_manager", "pulling"), { recursive: true });
    const alpha =
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1alpha1","lastUpdatedTime":"2024-10-21T12:26:40Z","imageRef":"test-brokenhash","credentialMapping":{"docker.io/testing/test":{"kubernetesSecrets":[{"uid":"testsecretuid","namespace":"default","name":"pull-secret","credentialHash":""}]}}}';
    writeFileSync(pulledFile(root, "test-brokenhash"), alpha);
    writeFileSync(
      intentFile(root, "docker.io/testing/test:latest"),
      encodeIntent({ image: "docker.io/testing/test:latest" }, "kubelet.config.k8s.io/v1alpha1"),
    );
    writeFileSync(pulledFile(root, "broken"), "{");
    const { v } = verifier(root);
    const report = await v.initialize(null);
    assert.equal(report.migrated.length, 2);
    assert.deepEqual(report.unreadable, [pulledFile(root, "broken")]);
    assert.equal(
      readFileSync(pulledFile(root, "test-brokenhash"), "utf8"),
      `${alpha.replace("v1alpha1", "v1beta1")}\n`,
    );
    assert.equal(
      readJson(intentFile(root, "docker.io/testing/test:latest")).apiVersion,
      "kubelet.config.k8s.io/v1beta1",
    );
    assert.deepEqual(report.keptIntents, ["docker.io/testing/test:latest"], "no image service: intents kept");
  });
});

describe("housekeeping after image GC (PruneUnknownRecords)", () => {
  it("deletes records of images the runtime no longer has, updated before the GC started", async () => {
    const root = tempRoot();
    const { v, clock } = verifier(root);
    for (const ref of ["in-use", "gone-old"]) {
      await v.recordPullIntent("app:1");
      await v.recordImagePulled("app:1", ref, null);
    }
    clock.t = T0 + 60_000;
    await v.recordPullIntent("app:1");
    await v.recordImagePulled("app:1", "gone-new", null);
    const deleted = await v.pruneUnknownRecords(["in-use"], T0 + 30_000);
    assert.deepEqual(deleted, ["gone-old"]);
    assert.equal(exists(pulledFile(root, "gone-old")), false);
    assert.equal(exists(pulledFile(root, "gone-new")), true);
    assert.equal(exists(pulledFile(root, "in-use")), true);
  });
});

describe("CredentialVerifier configuration", () => {
  it("rejects an unknown policy and an invalid allowlist with the kubelet's texts, before touching disk", () => {
    const root = tempRoot();
    assert.throws(() => new CredentialVerifier({ root, policy: "Maybe" }), {
      message: "unknown image pull credential verification policy: Maybe",
    });
    assert.throws(
      () => new CredentialVerifier({ root, policy: "NeverVerifyAllowlistedImages", allowlist: ["nginx"] }),
      {
        message: "neither tag nor digest is accepted in an image reference: nginx",
      },
    );
    assert.deepEqual(readdirSync(root), []);
  });

  it("NeverVerifyAllowlistedImages: an allowlisted image passes even when a pod brings nothing", async () => {
    const root = tempRoot();
    const { v } = verifier(root, {
      policy: "NeverVerifyAllowlistedImages",
      allowlist: ["registry.example/base/*"],
    });
    await v.recordPullIntent("registry.example/base/os:1");
    await v.recordImagePulled("registry.example/base/os:1", REF, secretCredential("u1", "a", "s"));
    await v.recordPullIntent("registry.example/team/app:1");
    await v.recordImagePulled("registry.example/team/app:1", "ref-2", secretCredential("u1", "a", "s"));
    assert.equal(await v.mustAttemptImagePull("registry.example/base/os:1", REF, async () => []), false);
    assert.equal(await v.mustAttemptImagePull("registry.example/team/app:1", "ref-2", async () => []), true);
    assert.equal(
      await v.mustAttemptImagePull("registry.example/team/preloaded:1", "ref-3", async () => []),
      true,
    );
  });
});
