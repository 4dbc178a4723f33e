// imageUsesFromObject reads a decoded object exactly as imageUsesFromText reads the same object as JSON text:
// on the check fixtures (every kind, container type, image volume, exemption) and on random objects with
// wrong types in every field.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseAllDocuments } from "yaml";
import { type ImageUse, imageUsesFromText } from "../manifests/index.ts";
import { imageUsesFromObject } from "./index.ts";

const FIXTURES = join(import.meta.dirname, "..", "..", "test", "fixtures", "check");

/** An ImageUse without source positions (a decoded object has none). */
function comparable(u: ImageUse) {
  const {
    position,
    imageEndPosition,
    imageKeyPosition,
    policyPosition,
    shared,
    document,
    renderedFrom,
    ...rest
  } = u;
  return { ...rest, annotations: { ...u.annotations }, templateAnnotations: { ...u.templateAnnotations } };
}

function same(object: unknown): void {
  const fromObject = imageUsesFromObject(object, "x.json").map(comparable);
  const fromText = imageUsesFromText(JSON.stringify(object), "x.json").map(comparable);
  assert.deepEqual(fromObject, fromText, JSON.stringify(object));
}

function fixtureObjects(name: string): unknown[] {
  const text = readFileSync(join(FIXTURES, name), "utf8");
  return parseAllDocuments(text)
    .map((d) => d.toJS({ maxAliasCount: -1 }) as unknown)
    .filter((o) => typeof o === "object" && o !== null && !("items" in o));
}

describe("imageUsesFromObject", () => {
  it("matches the text reader on every fixture object (all kinds, container types, volumes, annotations)", () => {
    let uses = 0;
    for (const name of ["kinds.yaml", "tricky.yaml", "exemptions.yaml"]) {
      for (const object of fixtureObjects(name)) {
        same(object);
        uses += imageUsesFromObject(object).length;
      }
    }
    assert.ok(uses > 40, `read ${uses} uses`);
  });

  it("orders uses as the kubelet starts them and gives paths to the container objects", () => {
    const uses = imageUsesFromObject({
      kind: "CronJob",
      metadata: { name: "c", namespace: "ns", annotations: { a: "1", n: 2 } },
      spec: {
        jobTemplate: {
          spec: {
            template: {
              metadata: { annotations: { "kpull/mode": "pinned" } },
              spec: {
                ephemeralContainers: [{ name: "e", image: "e" }],
                containers: [{ name: "c", image: "c", imagePullPolicy: "Never" }],
                initContainers: [{ name: "i", image: "i" }],
                volumes: [
                  { name: "v", image: { reference: "v", pullPolicy: "Always" } },
                  { name: "d", emptyDir: {} },
                ],
              },
            },
          },
        },
      },
    });
    assert.deepEqual(
      uses.map((u) => [u.containerType, u.container, u.image, u.pullPolicy, u.path.join("/")]),
      [
        ["imageVolume", "v", "v", "Always", "spec/jobTemplate/spec/template/spec/volumes/0"],
        ["initContainer", "i", "i", null, "spec/jobTemplate/spec/template/spec/initContainers/0"],
        ["container", "c", "c", "Never", "spec/jobTemplate/spec/template/spec/containers/0"],
        ["ephemeralContainer", "e", "e", null, "spec/jobTemplate/spec/template/spec/ephemeralContainers/0"],
      ],
    );
    assert.deepEqual({ ...uses[0]?.annotations }, { a: "1" });
    assert.deepEqual({ ...uses[0]?.templateAnnotations }, { "kpull/mode": "pinned" });
    assert.equal(uses[0]?.namespace, "ns");
  });

  it("matches the text reader on random objects with wrong types anywhere", () => {
    const scalar = fc.oneof(
      fc.constantFrom("nginx", "nginx:1.27", "", "NGINX", "Always", "IfNotPresent", "yes", "1.0"),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
    );
    const value = fc.oneof(
      { depthSize: "small" },
      scalar,
      fc.constant([]),
      fc.constant({}),
      fc.array(scalar, { maxLength: 2 }),
    );
    const container = fc.oneof(
      fc.record({ name: value, image: value, imagePullPolicy: value }, { requiredKeys: [] }),
      scalar,
    );
    const volume = fc.oneof(
      fc.record(
        {
          name: value,
          image: fc.oneof(value, fc.record({ reference: value, pullPolicy: value }, { requiredKeys: [] })),
        },
        { requiredKeys: [] },
      ),
      scalar,
    );
    const podSpec = fc.record(
      {
        containers: fc.oneof(fc.array(container, { maxLength: 3 }), value),
        initContainers: fc.array(container, { maxLength: 2 }),
        ephemeralContainers: fc.array(container, { maxLength: 2 }),
        volumes: fc.oneof(fc.array(volume, { maxLength: 3 }), value),
      },
      { requiredKeys: [] },
    );
    const metadata = fc.record(
      {
        name: value,
        namespace: value,
        annotations: fc.oneof(
          fc.dictionary(fc.constantFrom("kpull/ignore", "kpull/mode", "x"), scalar),
          value,
        ),
      },
      { requiredKeys: [] },
    );
    const object = fc.oneof(
      fc.record({ kind: fc.constantFrom("Pod", "pod", "Service"), metadata, spec: fc.oneof(podSpec, value) }),
      fc.record({
        kind: fc.constantFrom("Deployment", "StatefulSet", "Job", "ReplicationController"),
        apiVersion: fc.constantFrom("apps/v1", "v1"),
        metadata,
        spec: fc.record(
          { template: fc.record({ metadata, spec: podSpec }, { requiredKeys: [] }) },
          { requiredKeys: [] },
        ),
      }),
      fc.record({
        kind: fc.constant("CronJob"),
        metadata,
        spec: fc.record({
          jobTemplate: fc.record({ spec: fc.record({ template: fc.record({ metadata, spec: podSpec }) }) }),
        }),
      }),
      fc.record({ kind: fc.constant("PodTemplate"), template: fc.record({ metadata, spec: podSpec }) }),
    );
    fc.assert(
      fc.property(object, (o) => same(o)),
      { numRuns: 400 },
    );
  });

  it("reads nothing from values that are not objects or kinds without a pod spec", () => {
    for (const o of [
      null,
      1,
      "Pod",
      [],
      { kind: 1 },
      { kind: "Service", spec: { containers: [{ image: "x" }] } },
    ])
      assert.deepEqual(imageUsesFromObject(o), []);
  });
});
