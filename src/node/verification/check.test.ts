import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PullCredential } from "../image-manager.ts";
import {
  type CheckInput,
  type CheckResult,
  type ImagePullCredentials,
  type ImagePulledRecord,
  type ImagePullSecret,
  makeVerificationEnforcer,
  mergePulledRecord,
  mustAttemptImagePull,
  NO_POD_CREDENTIALS,
  newPulledRecord,
  type PodCredentials,
  podCredentials,
} from "./index.ts";

// kubelet.md A.7 check vectors: image present, pod image docker.io/testing/test:v2.
const IMAGE = "docker.io/testing/test:v2";
const KEY = "docker.io/testing/test";
const REF = "sha256:d2c94e258dcb3c5ac2798d32e1249e42ef01cba4841c2234249495f87264ac5a";
const T = "2024-10-21T12:26:40Z";
const H = "a55436fc140d516560d072c5fe8700385ce9f41629abf65c1edcbcb39fac691d";
const H2 = "b".repeat(64);

const secret = (uid: string, namespace: string, name: string, credentialHash: string): ImagePullSecret => ({
  uid,
  namespace,
  name,
  credentialHash,
});
const record = (entry: ImagePullCredentials | null, key = KEY) => newPulledRecord(REF, key, entry, T);
const SA = { uid: "sa-uid", namespace: "ci", name: "builder" };

const pullCredential = (origin: PullCredential["origin"]): PullCredential => ({
  auth: { username: "user", password: "password" },
  source: "test",
  origin,
});
const nodeOnly = podCredentials([pullCredential({ kind: "node" })]);
const podSecret = (s: ImagePullSecret): PodCredentials =>
  podCredentials([pullCredential({ kind: "secret", ...s })]);
const hundred = Array.from({ length: 100 }, (_, i) => secret(`u${i + 100}`, "bulk", `s${i}`, `h${i}`));

type Expect = "local" | "pull";
interface Row {
  readonly name: string;
  readonly record: ImagePulledRecord | null;
  readonly intent?: boolean;
  readonly readError?: string;
  /** Several pod credential sets for "any". */
  readonly pods: readonly PodCredentials[];
  readonly preloaded: Expect;
  readonly reason: CheckResult["reason"];
  /** The record after applying the check's update, for the rows that write. */
  readonly after?: ImagePullCredentials;
}

const anyPods = [NO_POD_CREDENTIALS, nodeOnly, podSecret(secret("u1", "a", "s", H))];

const rows: Row[] = [
  { name: "none, no intent", record: null, pods: anyPods, preloaded: "local", reason: "policy-exempt" },
  {
    name: "none, intent file exists",
    record: null,
    intent: true,
    pods: anyPods,
    preloaded: "pull",
    reason: "no-record",
  },
  {
    name: "mapping lacks docker.io/testing/test",
    record: record({ nodePodsAccessible: true }, "docker.io/testing/other"),
    pods: anyPods,
    preloaded: "pull",
    reason: "repository-not-recorded",
  },
  {
    name: "nodePodsAccessible, pod has none",
    record: record({ nodePodsAccessible: true }),
    pods: [NO_POD_CREDENTIALS],
    preloaded: "local",
    reason: "node-accessible",
  },
  {
    name: "secret (u1,a,s,H) vs pod secret (u2,b,t,H): coordinates added",
    record: record({ kubernetesSecrets: [secret("u1", "a", "s", H)] }),
    pods: [podSecret(secret("u2", "b", "t", H))],
    preloaded: "local",
    reason: "secret-hash-match",
    after: { kubernetesSecrets: [secret("u1", "a", "s", H), secret("u2", "b", "t", H)] },
  },
  {
    name: "secret (u1,a,s,H) vs pod secret (u1,a,s,H2): hash becomes H2",
    record: record({ kubernetesSecrets: [secret("u1", "a", "s", H)] }),
    pods: [podSecret(secret("u1", "a", "s", H2))],
    preloaded: "local",
    reason: "secret-coordinates-match",
    after: { kubernetesSecrets: [secret("u1", "a", "s", H2)] },
  },
  {
    name: "secret (u1,a,s,H) with ≥ 100 secrets vs (u1,a,s,H2)",
    record: record({ kubernetesSecrets: [secret("u1", "a", "s", H), ...hundred] }),
    pods: [podSecret(secret("u1", "a", "s", H2))],
    preloaded: "pull",
    reason: "no-credential-match",
  },
  {
    name: "secret (u1,a,s,H) vs none / node config only",
    record: record({ kubernetesSecrets: [secret("u1", "a", "s", H)] }),
    pods: [NO_POD_CREDENTIALS, nodeOnly],
    preloaded: "pull",
    reason: "no-credential-match",
  },
  {
    name: "service account vs the same service account via plugin",
    record: record({ kubernetesServiceAccounts: [SA] }),
    pods: [podCredentials([pullCredential({ kind: "service-account", ...SA })])],
    preloaded: "local",
    reason: "service-account-match",
  },
  {
    name: "unreadable record file",
    record: null,
    readError: "EACCES",
    pods: anyPods,
    preloaded: "pull",
    reason: "records-unreadable",
  },
];

function run(policy: string, row: Row, pod: PodCredentials, allowlist: string[] = []): CheckResult {
  const input: CheckInput = {
    image: IMAGE,
    imageRef: REF,
    enforcer: makeVerificationEnforcer(policy, allowlist),
    record: row.record,
    intent: row.intent ?? false,
    readError: row.readError ?? null,
    credentials: pod,
  };
  return mustAttemptImagePull(input);
}

const expect = (r: CheckResult) => (r.pull ? "pull" : "local");

describe("MustAttemptImagePull check vectors (kubelet.md A.7)", () => {
  describe("NeverVerifyPreloadedImages", () => {
    for (const row of rows) {
      it(`${row.name} → ${row.preloaded}`, () => {
        for (const pod of row.pods) {
          const r = run("NeverVerifyPreloadedImages", row, pod);
          assert.equal(expect(r), row.preloaded);
          assert.equal(r.reason, row.reason);
          if (row.after) {
            assert.ok(r.update, "the match writes the record");
            assert.equal(r.update.key, KEY);
            const merged = mergePulledRecord(
              row.record as ImagePulledRecord,
              r.update.key,
              r.update.credentials,
              T,
            );
            assert.deepEqual(merged.record.credentialMapping.get(KEY), row.after);
          } else {
            assert.equal(r.update, null, "no write");
          }
        }
      });
    }
  });

  describe("NeverVerify: every row local except the unreadable record", () => {
    for (const row of rows) {
      const want: Expect = row.readError ? "pull" : "local";
      it(`${row.name} → ${want}`, () => {
        for (const pod of row.pods) {
          const r = run("NeverVerify", row, pod);
          assert.equal(expect(r), want);
          assert.equal(r.reason, row.readError ? "records-unreadable" : "policy-exempt");
        }
      });
    }
  });

  describe("AlwaysVerify: the first row becomes pull, the others unchanged", () => {
    for (const [i, row] of rows.entries()) {
      const want: Expect = i === 0 ? "pull" : row.preloaded;
      it(`${row.name} → ${want}`, () => {
        for (const pod of row.pods) {
          const r = run("AlwaysVerify", row, pod);
          assert.equal(expect(r), want);
          assert.equal(r.reason, i === 0 ? "no-record" : row.reason);
        }
      });
    }
  });

  describe("NeverVerifyAllowlistedImages", () => {
    for (const [i, row] of rows.entries()) {
      it(`${row.name}: not allowlisted → as AlwaysVerify; allowlisted → local unless unreadable`, () => {
        for (const pod of row.pods) {
          const other = run("NeverVerifyAllowlistedImages", row, pod, ["docker.io/testing/other"]);
          assert.equal(expect(other), i === 0 ? "pull" : row.preloaded);
          for (const allowlist of [["docker.io/testing/test"], ["docker.io/testing/*"], ["docker.io/*"]]) {
            const listed = run("NeverVerifyAllowlistedImages", row, pod, allowlist);
            assert.equal(expect(listed), row.readError ? "pull" : "local", allowlist[0]);
          }
        }
      });
    }
  });
});

describe("MustAttemptImagePull, beyond the table", () => {
  const enforcer = makeVerificationEnforcer("AlwaysVerify");
  const base = { image: IMAGE, imageRef: REF, enforcer, intent: false, credentials: NO_POD_CREDENTIALS };

  it("an empty image ref always pulls, whatever the policy", () => {
    const r = mustAttemptImagePull({
      ...base,
      imageRef: "",
      enforcer: makeVerificationEnforcer("NeverVerify"),
      record: null,
    });
    assert.deepEqual([r.pull, r.reason], [true, "no-image-ref"]);
  });

  it("a record tracked without credentials (after a restart) always pulls", () => {
    for (const rec of [record(null), record({})]) {
      const r = mustAttemptImagePull({
        ...base,
        record: rec,
        credentials: podSecret(secret("u1", "a", "s", H)),
      });
      assert.equal(r.pull, true);
    }
    assert.equal(mustAttemptImagePull({ ...base, record: record(null) }).reason, "repository-not-recorded");
    assert.equal(mustAttemptImagePull({ ...base, record: record({}) }).reason, "credentials-unknown");
  });

  it("an empty cached hash never matches by hash, only by coordinates (upstream test-brokenhash)", () => {
    const rec = record({ kubernetesSecrets: [secret("testsecretuid", "default", "pull-secret", "")] });
    const other = mustAttemptImagePull({
      ...base,
      record: rec,
      credentials: podSecret(secret("x", "y", "z", "")),
    });
    assert.equal(other.pull, true);
    const same = mustAttemptImagePull({
      ...base,
      record: rec,
      credentials: podSecret(secret("testsecretuid", "default", "pull-secret", H)),
    });
    assert.deepEqual([same.pull, same.reason], [false, "secret-coordinates-match"]);
  });

  it("≥ 100 secrets: a hash match still passes, without writing", () => {
    const rec = record({ kubernetesSecrets: [secret("u1", "a", "s", H), ...hundred] });
    const r = mustAttemptImagePull({
      ...base,
      record: rec,
      credentials: podSecret(secret("u2", "b", "t", H)),
    });
    assert.deepEqual([r.pull, r.reason, r.update], [false, "secret-hash-match", null]);
    const under = record({ kubernetesSecrets: [secret("u1", "a", "s", H), ...hundred.slice(2)] }); // 99
    assert.ok(
      mustAttemptImagePull({ ...base, record: under, credentials: podSecret(secret("u2", "b", "t", H)) })
        .update,
    );
  });

  it("the same hash with the same coordinates passes without a write", () => {
    const rec = record({ kubernetesSecrets: [secret("u1", "a", "s", H)] });
    const r = mustAttemptImagePull({
      ...base,
      record: rec,
      credentials: podSecret(secret("u1", "a", "s", H)),
    });
    assert.deepEqual([r.pull, r.update], [false, null]);
  });

  it("[kpull] pull secrets without a UID (raw config files) match by hash only", () => {
    const rec = record({ kubernetesSecrets: [secret("", "", "/etc/a.json", H)] });
    const rotated = mustAttemptImagePull({
      ...base,
      record: rec,
      credentials: podSecret(secret("", "", "/etc/a.json", H2)),
    });
    assert.equal(rotated.pull, true);
    const same = mustAttemptImagePull({
      ...base,
      record: rec,
      credentials: podSecret(secret("", "", "/etc/b.json", H)),
    });
    assert.equal(same.pull, false);
  });

  it("a different service account, or one only in a later credential, does not pass", () => {
    const rec = record({ kubernetesServiceAccounts: [SA] });
    const other = podCredentials([pullCredential({ kind: "service-account", ...SA, uid: "other" })]);
    assert.equal(mustAttemptImagePull({ ...base, record: rec, credentials: other }).pull, true);
    const second = podCredentials([
      pullCredential({ kind: "service-account", ...SA, name: "first" }),
      pullCredential({ kind: "service-account", ...SA }),
    ]);
    assert.equal(mustAttemptImagePull({ ...base, record: rec, credentials: second }).pull, true);
  });

  it("the decision is per repository: a mirror's entry does not grant the Docker Hub name", () => {
    const rec = record({ nodePodsAccessible: true }, "mirror.example/testing/test");
    assert.equal(mustAttemptImagePull({ ...base, record: rec }).pull, true);
    const familiar = record({ nodePodsAccessible: true }, "docker.io/library/nginx");
    assert.equal(mustAttemptImagePull({ ...base, image: "nginx:1.25", record: familiar }).pull, false);
  });

  it("an image string that does not parse pulls", () => {
    const r = mustAttemptImagePull({
      ...base,
      image: "NOT VALID",
      record: record({ nodePodsAccessible: true }),
    });
    assert.deepEqual([r.pull, r.reason], [true, "unparsable-image"]);
  });
});
