import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { imageUsesFromText } from "./index.ts";
import { plainIsString } from "./scalars.ts";

describe("plain scalars as go-yaml v2 resolves them", () => {
  it("reads booleans, nulls and special floats of YAML 1.1 as non-strings", () => {
    for (const s of [
      "y",
      "Y",
      "yes",
      "Yes",
      "YES",
      "on",
      "ON",
      "n",
      "no",
      "NO",
      "off",
      "Off",
      "true",
      "False",
    ]) {
      assert.equal(plainIsString(s), false, s);
    }
    for (const s of ["", "~", "null", "Null", "NULL", ".inf", "-.Inf", "+.INF", ".nan", ".NaN"]) {
      assert.equal(plainIsString(s), false, s);
    }
  });

  it("reads Go integers and YAML-style floats as numbers", () => {
    for (const s of [
      "0",
      "1",
      "-1",
      "+7",
      "0777",
      "089",
      "0x1F",
      "0o17",
      "0b101",
      "-0b101",
      "1_000",
      "1.5",
      "1.",
      "-2.5e3",
      ".5",
      "1e3",
      "12345678901234567890123",
    ]) {
      assert.equal(plainIsString(s), false, s);
    }
  });

  it("keeps everything else a string, timestamps and base-60 looking values too", () => {
    for (const s of [
      "nginx",
      "nginx:1.25",
      "1.2.3",
      "1:30",
      "2001-12-14",
      "2001-12-14T21:59:43.10-05:00",
      "e1",
      "E5",
      "-",
      "+",
      ".",
      "0x",
      "Yes!",
      "nO",
      "yes please",
      "1e999",
      "._5",
      "12abc",
      "<<x",
    ]) {
      assert.equal(plainIsString(s), true, s);
    }
  });

  it("applies only to plain scalars: quotes, block scalars and !!str make strings, other core tags do not", () => {
    const text = `kind: Pod
spec:
  containers:
    - {name: a, image: "1.0"}
    - {name: b, image: '2'}
    - {name: c, image: !!str 3}
    - {name: d, image: !!int "4"}
    - {name: e, image: !Custom nginx}
    - {name: f, image: !Custom 5}
    - name: g
      image: |-
        6
    - {name: h, image: ! 7}
`;
    assert.deepEqual(
      imageUsesFromText(text, "f.yaml").map((u) => [u.container, u.image]),
      [
        ["a", "1.0"],
        ["b", "2"],
        ["c", "3"],
        ["d", null],
        ["e", "nginx"],
        ["f", null],
        ["g", "6"],
        ["h", "7"],
      ],
    );
  });
});
