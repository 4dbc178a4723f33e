import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { credentialHash } from "../../registry/index.ts";
import {
  decodeIntent,
  decodePulledRecord,
  encodeIntent,
  encodePulledRecord,
  formatRecordTime,
  type ImagePullCredentials,
  type ImagePulledRecord,
  mergePulledRecord,
  newPulledRecord,
  parseRecordTime,
  RecordDecodeError,
  recordFileName,
} from "./index.ts";

describe("record file names (kubelet.md A.7)", () => {
  const vectors: [string, string][] = [
    ["docker.io/testing/test:latest", "aef2af226629a35d5f3ef0fdbb29fdbebf038d0acd8850590e8c48e1e283aa56"],
    ["docker.io/hello-world:latest", "9f023ac6b143be2e542ca832efa4f162392e3f88c6e9e77b149398d19e2ad1e2"],
    ["nginx:1.25", "251ad31786bae2bdf8f9435a21b808b3ddba91ac4bf8d995c416368ed5881c7a"],
    ["testimageref", "b3c0cc4278800b03a308ceb2611161430df571ca733122f0a40ac8b9792a9064"],
    [
      "sha256:d2c94e258dcb3c5ac2798d32e1249e42ef01cba4841c2234249495f87264ac5a",
      "8a24326ac510759b13cce8f02faf7d4f3b2653d5945e75a75be71d878f56a84e",
    ],
  ];
  for (const [input, hex] of vectors) {
    it(`${input} → sha256-${hex.slice(0, 8)}…`, () => {
      assert.equal(recordFileName(input), `sha256-${hex}`);
    });
  }

  it('credential {"username":"user","password":"password"} → a55436fc…', () => {
    assert.equal(
      credentialHash({ username: "user", password: "password" }),
      "a55436fc140d516560d072c5fe8700385ce9f41629abf65c1edcbcb39fac691d",
    );
  });
});

describe("record shapes (kubelet.md A.7, upstream testdata)", () => {
  const v1alpha1 = "kubelet.config.k8s.io/v1alpha1";

  it("intent: exactly the kubelet's JSON, kind first, v1beta1", () => {
    assert.equal(
      encodeIntent({ image: "docker.io/testing/test:latest" }),
      '{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1beta1","image":"docker.io/testing/test:latest"}\n',
    );
    const { intent, apiVersion } = decodeIntent(
      '{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1beta1","image":"docker.io/testing/test:latest"}',
    );
    assert.deepEqual(intent, { image: "docker.io/testing/test:latest" });
    assert.equal(apiVersion, "kubelet.config.k8s.io/v1beta1");
  });

  const secretRecord =
    '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1alpha1","lastUpdatedTime":"2024-10-21T12:26:40Z","imageRef":"test-brokenhash","credentialMapping":{"docker.io/testing/test":{"kubernetesSecrets":[{"uid":"testsecretuid","namespace":"default","name":"pull-secret","credentialHash":""}]}}}';
  const trackedRecord =
    '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1alpha1","lastUpdatedTime":"2024-10-21T12:26:40Z","imageRef":"testemptycredmapping"}';

  it("pulled with a secret (empty hash): decodes, and re-encodes byte for byte", () => {
    const { record, apiVersion } = decodePulledRecord(secretRecord);
    assert.equal(apiVersion, v1alpha1);
    assert.equal(record.imageRef, "test-brokenhash");
    assert.equal(record.lastUpdatedTime, "2024-10-21T12:26:40Z");
    assert.deepEqual(Object.fromEntries(record.credentialMapping), {
      "docker.io/testing/test": {
        kubernetesSecrets: [
          { uid: "testsecretuid", namespace: "default", name: "pull-secret", credentialHash: "" },
        ],
      },
    });
    assert.equal(encodePulledRecord(record, v1alpha1), `${secretRecord}\n`);
    assert.equal(
      encodePulledRecord(record),
      `${secretRecord.replace("v1alpha1", "v1beta1")}\n`,
      "kpull writes v1beta1 with the same fields",
    );
  });

  it("tracked without credentials: no credentialMapping key at all", () => {
    const { record } = decodePulledRecord(trackedRecord);
    assert.equal(record.credentialMapping.size, 0);
    assert.equal(encodePulledRecord(record, v1alpha1), `${trackedRecord}\n`);
    assert.equal(
      encodePulledRecord(
        newPulledRecord("testemptycredmapping", "docker.io/x", null, "2024-10-21T12:26:40Z"),
      ),
      `${trackedRecord.replace("v1alpha1", "v1beta1")}\n`,
    );
  });

  it("node-accessible (KEP example): nodePodsAccessible true, nothing else", () => {
    const record = newPulledRecord(
      "sha256:d2c94e258dcb3c5ac2798d32e1249e42ef01cba4841c2234249495f87264ac5a",
      "docker.io/hello-world",
      { nodePodsAccessible: true },
      "2024-10-21T12:26:40Z",
    );
    assert.equal(
      encodePulledRecord(record),
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","lastUpdatedTime":"2024-10-21T12:26:40Z","imageRef":"sha256:d2c94e258dcb3c5ac2798d32e1249e42ef01cba4841c2234249495f87264ac5a","credentialMapping":{"docker.io/hello-world":{"nodePodsAccessible":true}}}\n',
    );
  });

  it("service accounts, secrets, mapping keys sorted; Go's HTML-safe escaping", () => {
    const record: ImagePulledRecord = {
      lastUpdatedTime: "2025-01-02T03:04:05Z",
      imageRef: "sha256:abc",
      credentialMapping: new Map<string, ImagePullCredentials>([
        ["registry.example/z", { kubernetesServiceAccounts: [{ uid: "u", namespace: "ns", name: "sa" }] }],
        [
          "registry.example/a",
          { kubernetesSecrets: [{ uid: "u1", namespace: "a", name: "s<&>", credentialHash: "h" }] },
        ],
      ]),
    };
    assert.equal(
      encodePulledRecord(record),
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","lastUpdatedTime":"2025-01-02T03:04:05Z","imageRef":"sha256:abc","credentialMapping":{"registry.example/a":{"kubernetesSecrets":[{"uid":"u1","namespace":"a","name":"s\\u003c\\u0026\\u003e","credentialHash":"h"}]},"registry.example/z":{"kubernetesServiceAccounts":[{"uid":"u","namespace":"ns","name":"sa"}]}}}\n',
    );
    const back = decodePulledRecord(encodePulledRecord(record)).record;
    assert.deepEqual(
      Object.fromEntries(back.credentialMapping),
      Object.fromEntries(record.credentialMapping),
    );
  });

  it("v1.33 records with `kubernetesSecrets: null` (no omitempty) decode", () => {
    const { record } = decodePulledRecord(
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1alpha1","lastUpdatedTime":"2025-04-01T00:00:00Z","imageRef":"r","credentialMapping":{"docker.io/library/nginx":{"kubernetesSecrets":null,"nodePodsAccessible":true}}}',
    );
    assert.deepEqual(record.credentialMapping.get("docker.io/library/nginx"), { nodePodsAccessible: true });
  });

  it("decoding is strict: unknown fields, other kinds, versions and types fail", () => {
    const bad = [
      "not json",
      "[]",
      '{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1beta1","image":"x","extra":1}',
      '{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1","image":"x"}',
      // The KEP text's group and field names were never released.
      '{"kind":"ImagePullIntent","apiVersion":"imagemanager.kubelet.config.k8s.io/v1alpha1","image":"x"}',
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","image":"x"}',
      '{"kind":"ImagePullIntent","apiVersion":"kubelet.config.k8s.io/v1beta1","image":5}',
      '{"apiVersion":"kubelet.config.k8s.io/v1beta1","image":"x"}',
    ];
    for (const text of bad) assert.throws(() => decodeIntent(text), RecordDecodeError, text);
    const badRecords = [
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1alpha1","imageRef":"r","credentialMapping":{"x":{"kubernetesSecretCoordinates":[]}}}',
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","imageRef":"r","lastUpdatedTime":"yesterday"}',
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","imageRef":"r","credentialMapping":{"x":{"nodePodsAccessible":"true"}}}',
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","imageRef":"r","credentialMapping":{"x":{"kubernetesSecrets":[{"uid":"u","namespace":"n","name":"s","credentialHash":"h","password":"p"}]}}}',
      '{"kind":"ImagePulledRecord","apiVersion":"kubelet.config.k8s.io/v1beta1","imageRef":"r","credentialMapping":[]}',
    ];
    for (const text of badRecords) assert.throws(() => decodePulledRecord(text), RecordDecodeError, text);
  });

  it("times: RFC 3339 in whole seconds, UTC", () => {
    assert.equal(formatRecordTime(Date.UTC(2024, 9, 21, 12, 26, 40, 999)), "2024-10-21T12:26:40Z");
    assert.equal(parseRecordTime("2024-10-21T12:26:40Z"), Date.UTC(2024, 9, 21, 12, 26, 40));
    assert.equal(parseRecordTime("2024-10-21T14:26:40.5+02:00"), Date.UTC(2024, 9, 21, 12, 26, 40, 500));
    assert.ok(Number.isNaN(parseRecordTime("2024-10-21")));
  });
});

describe("merging credentials into a record (kubelet.md §3.5)", () => {
  const T0 = "2024-01-01T00:00:00Z";
  const T1 = "2024-01-02T00:00:00Z";
  const key = "docker.io/testing/test";
  const s = (uid: string, namespace: string, name: string, credentialHash: string) => ({
    uid,
    namespace,
    name,
    credentialHash,
  });
  const base = newPulledRecord("ref", key, { kubernetesSecrets: [s("u1", "b", "s", "H")] }, T0);

  it("null or empty credentials change nothing", () => {
    assert.equal(mergePulledRecord(base, key, null, T1).changed, false);
    assert.equal(mergePulledRecord(base, key, {}, T1).changed, false);
  });

  it("secrets: merged by coordinates, newer hash wins, sorted by namespace, name, uid; time moves", () => {
    const a = mergePulledRecord(base, key, { kubernetesSecrets: [s("u2", "a", "t", "H")] }, T1);
    assert.equal(a.changed, true);
    assert.equal(a.record.lastUpdatedTime, T1);
    assert.deepEqual(a.record.credentialMapping.get(key)?.kubernetesSecrets, [
      s("u2", "a", "t", "H"),
      s("u1", "b", "s", "H"),
    ]);
    const b = mergePulledRecord(a.record, key, { kubernetesSecrets: [s("u1", "b", "s", "H2")] }, T1);
    assert.deepEqual(b.record.credentialMapping.get(key)?.kubernetesSecrets, [
      s("u2", "a", "t", "H"),
      s("u1", "b", "s", "H2"),
    ]);
    const same = mergePulledRecord(
      b.record,
      key,
      { kubernetesSecrets: [s("u1", "b", "s", "H2")] },
      "2030-01-01T00:00:00Z",
    );
    assert.equal(same.changed, false);
    assert.equal(same.record.lastUpdatedTime, T1, "unchanged record keeps its time");
  });

  it("nodePodsAccessible absorbs everything, and replaces the lists", () => {
    const open = mergePulledRecord(base, key, { nodePodsAccessible: true }, T1);
    assert.deepEqual(open.record.credentialMapping.get(key), { nodePodsAccessible: true });
    assert.equal(
      mergePulledRecord(open.record, key, { kubernetesSecrets: [s("x", "y", "z", "H")] }, T1).changed,
      false,
    );
  });

  it("service accounts are a set; a new repository gets its own entry", () => {
    const sa = { uid: "sau", namespace: "ns", name: "builder" };
    const a = mergePulledRecord(base, key, { kubernetesServiceAccounts: [sa] }, T1);
    assert.deepEqual(a.record.credentialMapping.get(key)?.kubernetesServiceAccounts, [sa]);
    assert.equal(mergePulledRecord(a.record, key, { kubernetesServiceAccounts: [sa] }, T1).changed, false);
    const other = mergePulledRecord(base, "mirror.example/testing/test", { nodePodsAccessible: true }, T1);
    assert.equal(other.record.credentialMapping.size, 2);
    assert.equal(base.credentialMapping.size, 1, "the original is not mutated");
  });
});
