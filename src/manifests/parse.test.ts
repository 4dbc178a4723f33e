import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ImageUse, imageUsesFromText, podSpecPaths, WORKLOAD_KINDS } from "./index.ts";
import { at, byImage, fixture } from "./oracle.test.ts";

const F = "f.yaml";

function summary(u: ImageUse): string {
  return `${u.kind}/${u.name} ${u.containerType} ${u.container} ${u.image}`;
}

// The oracle itself, on hand-counted text, so that the other tests stand on something checked.
describe("position oracle", () => {
  it("counts lines at LF and columns in UTF-16 units from 1", () => {
    assert.deepEqual(at("a: 1\nbb: x\n", "x", "f"), { file: "f", line: 2, column: 5 });
    assert.deepEqual(at("a: 1\r\nbb: x\r\n", "x", "f"), { file: "f", line: 2, column: 5 });
    assert.deepEqual(at("é😀: x", "x", "f"), { file: "f", line: 1, column: 6 });
    assert.deepEqual(at("x\nx\n", "x", "f", "\n"), { file: "f", line: 2, column: 1 });
  });
  it("refuses a needle that is not unique", () => {
    assert.throws(() => at("x x", "x", "f"), /not unique/);
  });
});

describe("workload kinds", () => {
  it("lists the nine kinds that carry a pod spec, with their paths", () => {
    assert.deepEqual(WORKLOAD_KINDS, [
      "Pod",
      "PodTemplate",
      "ReplicationController",
      "ReplicaSet",
      "Deployment",
      "StatefulSet",
      "DaemonSet",
      "Job",
      "CronJob",
    ]);
    assert.deepEqual(podSpecPaths("Pod"), [["spec"]]);
    assert.deepEqual(podSpecPaths("PodTemplate"), [["template", "spec"]]);
    assert.deepEqual(podSpecPaths("StatefulSet"), [["spec", "template", "spec"]]);
    assert.deepEqual(podSpecPaths("CronJob"), [["spec", "jobTemplate", "spec", "template", "spec"]]);
    assert.deepEqual(podSpecPaths("ConfigMap"), []);
    assert.deepEqual(podSpecPaths("deployment"), [], "kinds are case-sensitive");
    assert.deepEqual(podSpecPaths("toString"), [], "no prototype keys");
  });
});

describe("every kind, every container type, with positions", () => {
  const { text } = fixture("good", "all-kinds.yaml");
  const uses = imageUsesFromText(text, "all-kinds.yaml");

  it("finds exactly the images of the nine workload kinds and ignores other kinds", () => {
    assert.deepEqual(uses.map(summary), [
      "Pod/pod-a imageVolume data img/pod-volume:1",
      "Pod/pod-a initContainer init img/pod-init",
      "Pod/pod-a container app img/pod-app:1",
      "Pod/pod-a ephemeralContainer debugger img/pod-ephemeral:1",
      "PodTemplate/podtemplate-a container app img/podtemplate-app:1",
      "ReplicationController/rc-a initContainer init img/rc-init:1",
      "ReplicationController/rc-a container app img/rc-app:1",
      "ReplicaSet/rs-a container app img/rs-app:1",
      "Deployment/deploy-a imageVolume models img/deploy-volume:1",
      "Deployment/deploy-a initContainer migrate img/deploy-init:1",
      "Deployment/deploy-a container app img/deploy-app:1",
      "Deployment/deploy-a container sidecar img/deploy-sidecar:1",
      "StatefulSet/sts-a container db img/sts-app:1",
      "DaemonSet/ds-a container agent img/ds-app:1",
      "Job/job-a container task img/job-app:1",
      "CronJob/cron-a initContainer wait img/cron-init:1",
      "CronJob/cron-a container task img/cron-app:1",
    ]);
  });

  it("points at each image value, also quoted and in flow style", () => {
    for (const u of uses) {
      assert.ok(u.image !== null);
      // Quoted values are found with their quote: the position is where the value is written.
      const needle = text.includes(`"${u.image}"`)
        ? `"${u.image}"`
        : text.includes(`'${u.image}'`)
          ? `'${u.image}'`
          : u.image;
      assert.deepEqual(u.position, at(text, needle, "all-kinds.yaml"), summary(u));
      assert.deepEqual(u.imageEndPosition, {
        ...u.position,
        column: u.position.column + needle.length,
      });
      assert.equal(u.imageStatus, "string");
    }
    // Two hand-counted ones, independent of the oracle.
    assert.deepEqual(byImage(uses, "img/pod-app:1").position, {
      file: "all-kinds.yaml",
      line: 15,
      column: 14,
    });
    assert.deepEqual(byImage(uses, "img/rs-app:1").position, {
      file: "all-kinds.yaml",
      line: 64,
      column: 30,
    });
  });

  it("points at the image: key (reference: key for volumes)", () => {
    const app = byImage(uses, "img/pod-app:1");
    assert.deepEqual(app.imageKeyPosition, { file: "all-kinds.yaml", line: 15, column: 7 });
    const volume = byImage(uses, "img/pod-volume:1");
    assert.deepEqual(volume.imageKeyPosition, at(text, "reference: img/pod-volume:1", "all-kinds.yaml"));
  });

  it("reads pull policies as written, with their positions", () => {
    const policies = uses.map((u) => [u.image, u.pullPolicy]);
    assert.deepEqual(
      policies.filter(([, p]) => p !== null),
      [
        ["img/pod-volume:1", "Always"],
        ["img/pod-app:1", "IfNotPresent"],
        ["img/rc-app:1", "Never"],
        ["img/rs-app:1", "Always"],
        ["img/deploy-init:1", "IfNotPresent"],
      ],
    );
    const rs = byImage(uses, "img/rs-app:1");
    assert.deepEqual(rs.policyPosition, at(text, "Always}", "all-kinds.yaml"));
    const volume = byImage(uses, "img/pod-volume:1");
    assert.deepEqual(volume.policyPosition, at(text, "Always", "all-kinds.yaml", "img/pod-volume:1"));
    assert.equal(byImage(uses, "img/deploy-volume:1").policyPosition, null);
    assert.equal(byImage(uses, "img/pod-init").policyPosition, null);
  });

  it("gives the path from the document root to each container or volume", () => {
    assert.deepEqual(byImage(uses, "img/pod-volume:1").path, ["spec", "volumes", 1]);
    assert.deepEqual(byImage(uses, "img/pod-ephemeral:1").path, ["spec", "ephemeralContainers", 0]);
    assert.deepEqual(byImage(uses, "img/podtemplate-app:1").path, ["template", "spec", "containers", 0]);
    assert.deepEqual(byImage(uses, "img/deploy-sidecar:1").path, [
      "spec",
      "template",
      "spec",
      "containers",
      1,
    ]);
    assert.deepEqual(byImage(uses, "img/cron-init:1").path, [
      "spec",
      "jobTemplate",
      "spec",
      "template",
      "spec",
      "initContainers",
      0,
    ]);
  });

  it("carries the object's identity, document index and annotations", () => {
    const d = byImage(uses, "img/deploy-app:1");
    assert.equal(d.document, 4);
    assert.equal(d.apiVersion, "apps/v1");
    assert.equal(d.namespace, "ns-d");
    assert.deepEqual({ ...d.annotations }, { "kpull/ignore": "floating-tag" });
    assert.deepEqual({ ...d.templateAnnotations }, { team: "web" });
    assert.deepEqual({ ...byImage(uses, "img/cron-app:1").templateAnnotations }, { inner: "yes" });
    assert.deepEqual(
      { ...byImage(uses, "img/podtemplate-app:1").templateAnnotations },
      { where: "template" },
    );
    assert.equal(byImage(uses, "img/sts-app:1").namespace, null);
    assert.equal(byImage(uses, "img/cron-app:1").document, 8);
    assert.ok(uses.every((u) => !u.shared && u.renderedFrom === null));
  });
});

describe("order within a pod spec", () => {
  it("is the kubelet's: image volumes, init containers, containers, ephemeral containers; source order within", () => {
    const text = `kind: Pod
spec:
  ephemeralContainers: [{name: e1, image: e1}]
  containers: [{name: c1, image: c1}, {name: c2, image: c2}]
  volumes: [{name: v1, image: {reference: v1}}, {name: plain, emptyDir: {}}, {name: v2, image: {reference: v2}}]
  initContainers: [{name: i2, image: i2}, {name: i1, image: i1}]
`;
    assert.deepEqual(
      imageUsesFromText(text, F).map((u) => `${u.containerType}:${u.container}`),
      [
        "imageVolume:v1",
        "imageVolume:v2",
        "initContainer:i2",
        "initContainer:i1",
        "container:c1",
        "container:c2",
        "ephemeralContainer:e1",
      ],
    );
  });
});

describe("Lists", () => {
  const { text } = fixture("good", "list.yaml");
  const uses = imageUsesFromText(text, "list.yaml");

  it("reads the items of a v1 List, skipping items without a pod spec", () => {
    const [deploy, pod] = uses;
    assert.equal(deploy?.kind, "Deployment");
    assert.equal(deploy?.name, "listed-deploy");
    assert.deepEqual(deploy?.path, ["items", 0, "spec", "template", "spec", "containers", 0]);
    assert.equal(pod?.kind, "Pod");
    assert.deepEqual(pod?.path, ["items", 2, "spec", "containers", 0]);
    assert.equal(deploy?.document, 0);
    assert.equal(pod?.document, 0);
    assert.deepEqual(pod?.position, at(text, "img/list-pod:1", "list.yaml"));
  });

  it("infers kind and apiVersion of typed-list items from the list, as kubectl does", () => {
    const item = byImage(uses, "img/typed-list:1");
    assert.equal(item.kind, "Deployment");
    assert.equal(item.apiVersion, "apps/v1");
    assert.equal(item.name, "typed-item");
    assert.equal(item.document, 1);
  });

  it("flattens a List inside a List", () => {
    const job = byImage(uses, "img/nested-list:1");
    assert.equal(job.kind, "Job");
    assert.deepEqual(job.path, ["items", 1, "items", 0, "spec", "template", "spec", "containers", 0]);
    assert.deepEqual(job.position, at(text, "img/nested-list:1", "list.yaml"));
    assert.equal(uses.length, 4);
  });

  it("treats any object with an items list as a List, and an items map as no List", () => {
    const listish = imageUsesFromText("kind: Pod\nitems: []\nspec: {containers: [{image: a}]}\n", F);
    assert.deepEqual(listish, [], "kubectl applies such an object as an empty list");
    const notList = imageUsesFromText("kind: Pod\nitems: {}\nspec: {containers: [{image: a}]}\n", F);
    assert.equal(notList.length, 1);
  });

  it("does not infer a kind for items of a plain List, nor when the item has an apiVersion", () => {
    const text = `apiVersion: apps/v1
kind: DeploymentList
items:
  - apiVersion: apps/v1
    spec: {template: {spec: {containers: [{image: a}]}}}
---
kind: List
items:
  - spec: {containers: [{image: b}]}
`;
    assert.deepEqual(imageUsesFromText(text, F), []);
  });
});

describe("multiple documents", () => {
  it("counts every document, empty ones too, and skips those that are not maps", () => {
    const text = `# leading comment only
---
---
just a scalar
---
- a
- list
---
kind: Pod
spec: {containers: [{name: a, image: first}]}
---
# comment-only document
---
kind: Pod
spec: {containers: [{name: b, image: second}]}
...
`;
    const uses = imageUsesFromText(text, F);
    assert.deepEqual(
      uses.map((u) => [u.image, u.document]),
      [
        ["first", 3],
        ["second", 5],
      ],
    );
    assert.deepEqual(uses[1]?.position, at(text, "second", F));
  });

  it("reads the path of a Helm `# Source:` comment heading a document", () => {
    const text = `---
# Source: shop/templates/web.yaml
kind: Pod
spec: {containers: [{image: a}]}
---
# Source: shop/templates/worker.yaml
# another comment
kind: Pod
spec: {containers: [{image: b}]}
---
kind: Pod
# Source: not/a/heading.yaml
spec: {containers: [{image: c}]}
`;
    assert.deepEqual(
      imageUsesFromText(text, F).map((u) => u.renderedFrom),
      ["shop/templates/web.yaml", "shop/templates/worker.yaml", null],
    );
    assert.equal(
      imageUsesFromText(`# Source: first/doc.yaml\nkind: Pod\nspec: {containers: [{image: a}]}\n`, F)[0]
        ?.renderedFrom,
      "first/doc.yaml",
    );
  });
});

describe("anchors, aliases and merge keys", () => {
  const { text } = fixture("good", "anchors.yaml");
  const uses = imageUsesFromText(text, "anchors.yaml");
  const byName = (name: string): ImageUse => {
    const u = uses.find((x) => x.container === name);
    assert.ok(u, name);
    return u;
  };

  it("reads merged values with the position where they are written", () => {
    const base = byName("base");
    const merged = byName("merged");
    assert.equal(merged.image, "img/anchor-base:1");
    assert.equal(merged.pullPolicy, "IfNotPresent");
    assert.deepEqual(merged.position, at(text, "img/anchor-base:1", "anchors.yaml"));
    assert.deepEqual(merged.position, base.position);
    assert.deepEqual(merged.policyPosition, at(text, "IfNotPresent", "anchors.yaml"));
    assert.deepEqual(merged.path, ["spec", "template", "spec", "containers", 1]);
  });

  it("lets a key written after the merge override it, keeping the merged policy", () => {
    const o = byName("overridden");
    assert.equal(o.image, "img/anchor-override:1");
    assert.deepEqual(o.position, at(text, "img/anchor-override:1", "anchors.yaml"));
    assert.equal(o.pullPolicy, "IfNotPresent");
  });

  it("follows an alias to a scalar to where the anchored value is written", () => {
    const a = byName("aliased-value");
    assert.equal(a.image, "img/anchor-base:1");
    assert.deepEqual(a.position, { file: "anchors.yaml", line: 12, column: 29 });
  });

  it("gives the earlier map precedence in a merge list", () => {
    const m = byName("merge-list");
    assert.equal(m.image, "img/first:1");
    assert.equal(m.pullPolicy, "Always");
    assert.deepEqual(m.position, at(text, "img/first:1", "anchors.yaml"));
  });

  it("applies a merge after an explicit key as go-yaml v2 (kubectl) does: the merge wins", () => {
    assert.equal(byName("before-merge").image, "img/merged-later:1");
  });

  it('treats a quoted "<<" as an ordinary key', () => {
    assert.equal(byName("quoted-key").image, "img/quoted-key:1");
    assert.equal(byName("quoted-key").shared, false);
  });

  it("marks uses that share nodes through anchors", () => {
    assert.deepEqual(
      uses.map((u) => [u.container, u.shared]),
      [
        ["base", true],
        ["merged", true],
        ["overridden", true],
        ["aliased-value", true],
        ["merge-list", true],
        ["before-merge", true],
        ["quoted-key", false],
        ["app", true],
        ["app", true],
      ],
    );
  });

  it("reads a pod spec shared by two List items for both, with one position", () => {
    const [first, second] = uses.filter((u) => u.image === "img/shared-spec:1");
    assert.equal(first?.name, "first");
    assert.equal(second?.name, "second");
    assert.deepEqual(second?.path, ["items", 1, "spec", "containers", 0]);
    assert.deepEqual(second?.position, first?.position);
    assert.deepEqual(first?.position, at(text, "img/shared-spec:1", "anchors.yaml"));
  });

  it("honours merge keys on the way to the pod spec and in annotations", () => {
    const text2 = `base: &tmpl
  metadata:
    annotations: &ann {a: "1", b: "2"}
  spec:
    containers: [{name: c, image: via-merge}]
kind: Deployment
metadata:
  annotations:
    <<: *ann
    b: "3"
spec:
  template:
    <<: *tmpl
`;
    const [u] = imageUsesFromText(text2, F);
    assert.equal(u?.image, "via-merge");
    assert.deepEqual(u?.path, ["spec", "template", "spec", "containers", 0]);
    assert.deepEqual({ ...u?.annotations }, { a: "1", b: "3" });
    assert.deepEqual({ ...u?.templateAnnotations }, { a: "1", b: "2" });
    assert.equal(u?.shared, true);
  });

  it("uses the last of duplicate keys, as kubectl does", () => {
    const [u] = imageUsesFromText("kind: Pod\nspec: {containers: [{image: a, image: b}]}\n", F);
    assert.equal(u?.image, "b");
  });
});

describe("line endings, byte order mark, JSON", () => {
  const lf =
    "kind: Pod\nspec:\n  containers:\n    - name: app\n      image: nginx:1.25\n      imagePullPolicy: Always\n";

  it("gives the same positions for CRLF as for LF", () => {
    const crlf = lf.replaceAll("\n", "\r\n");
    const [a] = imageUsesFromText(lf, F);
    const [b] = imageUsesFromText(crlf, F);
    assert.deepEqual(b?.position, { file: F, line: 5, column: 14 });
    assert.deepEqual(b?.position, a?.position);
    assert.deepEqual(b?.policyPosition, { file: F, line: 6, column: 24 });
    assert.equal(b?.image, "nginx:1.25", "no CR in the value");
    assert.equal(b?.pullPolicy, "Always");
  });

  it("reads a lone CR as a line break", () => {
    const [u] = imageUsesFromText(lf.replaceAll("\n", "\r"), F);
    assert.deepEqual(u?.position, { file: F, line: 5, column: 14 });
  });

  it("does not count a byte order mark as a column", () => {
    const [u] = imageUsesFromText(`\uFEFF${lf}`, F);
    assert.deepEqual(u?.position, { file: F, line: 5, column: 14 });
    const [first] = imageUsesFromText("\uFEFFkind: Pod\nspec: {containers: [{image: x}]}\n", F);
    assert.equal(first?.kind, "Pod");
  });

  it("reads JSON with positions", () => {
    const { text } = fixture("good", "deployment.json");
    const uses = imageUsesFromText(text, "d.json");
    assert.deepEqual(uses.map(summary), [
      "Deployment/from-json initContainer init img/json-init:1",
      "Deployment/from-json container app img/json-app:1",
    ]);
    assert.deepEqual(uses[0]?.position, at(text, '"img/json-init:1"', "d.json"));
    assert.deepEqual(uses[0]?.policyPosition, at(text, '"Always"', "d.json"));
    assert.deepEqual(uses[1]?.position, { file: "d.json", line: 12, column: 22 });
    assert.equal(uses[1]?.namespace, "json");
  });

  it("reads a stream of JSON values one after another, one document each", () => {
    const text = `{"kind": "Pod", "spec": {"containers": [{"image": "a:1"}]}}
{"kind": "Pod", "spec": {"containers": [{"image": "b:1"}]}}
  [1, 2]{"kind": "Pod", "spec": {"containers": [{"image": "c:1"}]}}
`;
    const uses = imageUsesFromText(text, F);
    assert.deepEqual(
      uses.map((u) => [u.image, u.document]),
      [
        ["a:1", 0],
        ["b:1", 1],
        ["c:1", 3],
      ],
    );
    assert.deepEqual(uses[1]?.position, at(text, '"b:1"', F));
    assert.deepEqual(uses[2]?.position, at(text, '"c:1"', F));
  });
});

describe("values of unexpected types (lenient, documented)", () => {
  it("reports a non-string image as invalid-type at the value, and a missing one at the key or container", () => {
    const text = `kind: Pod
spec:
  containers:
    - name: number
      image: 1.0
    - name: absent
      imagePullPolicy: Never
    - name: empty
      image:
    - name: tilde
      image: ~
    - name: list
      image: [a]
    - name: blank
      image: ""
`;
    const uses = imageUsesFromText(text, F);
    assert.deepEqual(
      uses.map((u) => [u.container, u.image, u.imageStatus]),
      [
        ["number", null, "invalid-type"],
        ["absent", null, "missing"],
        ["empty", null, "missing"],
        ["tilde", null, "missing"],
        ["list", null, "invalid-type"],
        ["blank", "", "string"],
      ],
    );
    assert.deepEqual(uses[0]?.position, at(text, "1.0", F));
    assert.deepEqual(uses[1]?.position, at(text, "name: absent", F), "the container node");
    assert.equal(uses[1]?.imageKeyPosition, null);
    assert.equal(uses[1]?.pullPolicy, "Never");
    assert.deepEqual(uses[2]?.position, { file: F, line: 9, column: 7 }, "the image: key");
    assert.equal(uses[2]?.imageEndPosition, null);
    assert.deepEqual(uses[4]?.position, at(text, "[a]", F));
  });

  it("reads YAML 1.1 scalars as kubectl does: yes is a boolean, a date stays a string", () => {
    const text = "kind: Pod\nspec: {containers: [{name: on, image: yes, imagePullPolicy: 2024-01-01}]}\n";
    const [u] = imageUsesFromText(text, F);
    assert.equal(u?.container, null, "on is a boolean");
    assert.equal(u?.imageStatus, "invalid-type");
    assert.equal(u?.pullPolicy, "2024-01-01");
  });

  it("reports an image volume whose image is not a map, skips one whose image is null", () => {
    const text = `kind: Pod
spec:
  volumes:
    - name: wrong
      image: nginx:1
    - name: null-image
      image:
    - name: no-reference
      image: {pullPolicy: Never}
`;
    const uses = imageUsesFromText(text, F);
    assert.deepEqual(
      uses.map((u) => [u.container, u.image, u.imageStatus, u.pullPolicy]),
      [
        ["wrong", null, "invalid-type", null],
        ["no-reference", null, "missing", "Never"],
      ],
    );
    assert.deepEqual(uses[0]?.position, at(text, "nginx:1", F));
    assert.deepEqual(uses[1]?.position, at(text, "image: {pullPolicy", F), "the volume's image: key");
  });

  it("yields nothing for pod specs, lists or entries of the wrong type", () => {
    const texts = [
      "kind: Pod\nspec: [containers]\n",
      "kind: Pod\nspec: {containers: {name: a, image: b}}\n",
      "kind: Pod\nspec: {containers: [nginx, 3, [x]]}\n",
      "kind: Pod\nspec: {volumes: {name: v}}\n",
      "kind: Deployment\nspec: {template: null}\n",
      "kind: [Pod]\nspec: {containers: [{image: a}]}\n",
      "spec: {containers: [{image: a}]}\n",
      "- kind: Pod\n  spec: {containers: [{image: a}]}\n",
    ];
    for (const text of texts) assert.deepEqual(imageUsesFromText(text, F), [], text);
  });

  it("matches kinds by name whatever the apiVersion", () => {
    const text =
      "apiVersion: extensions/v1beta1\nkind: DaemonSet\nspec: {template: {spec: {containers: [{image: a}]}}}\n";
    assert.equal(imageUsesFromText(text, F)[0]?.apiVersion, "extensions/v1beta1");
  });

  it("keeps only string annotations", () => {
    const text =
      "kind: Pod\nmetadata: {annotations: {a: x, n: 1, m: {k: v}, __proto__: p}}\nspec: {containers: [{image: a}]}\n";
    const [u] = imageUsesFromText(text, F);
    assert.deepEqual(Object.entries(u?.annotations ?? {}), [
      ["a", "x"],
      ["__proto__", "p"],
    ]);
  });
});
