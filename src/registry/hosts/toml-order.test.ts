import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "smol-toml";
import { hostsInFileOrder, tableHeaders } from "./toml-order.ts";

/** The scanner only ever sees documents smol-toml accepted; keep the inputs honest. */
function assertToml(src: string): void {
  assert.doesNotThrow(() => parse(src));
}

describe("hostsInFileOrder (containerd getSortedHosts)", () => {
  it("keeps file order, even for keys JavaScript objects would put first", () => {
    const src = ['[host."https://z.example"]', '[host."10"]', '[host."https://a.example"]', ""].join("\n");
    assertToml(src);
    assert.deepEqual(hostsInFileOrder(src), ["https://z.example", "10", "https://a.example"]);
  });

  it("ignores hosts written as inline tables or dotted keys, as containerd does", () => {
    const src = [
      'host."https://inline.example" = { capabilities = ["pull"] }',
      'host."https://dotted.example".capabilities = ["pull"]',
      '[host."https://table.example"]',
      "",
    ].join("\n");
    assertToml(src);
    assert.deepEqual(hostsInFileOrder(src), ["https://table.example"]);
  });

  it("is not fooled by strings, comments and multi-line arrays that look like headers", () => {
    const src = [
      'server = "https://s.example"  # [host."https://comment.example"]',
      'note = """',
      '[host."https://in-multiline-string.example"]',
      '"""',
      "lit = '''",
      "[host.'https://in-literal.example']",
      "'''",
      '[host."https://a.example"]',
      "  client = [",
      '    ["x.cert", "x.key"],',
      '    ["y.cert", "]"],',
      "  ]",
      "[ host . 'https://b.example' ]  # spaces around dots, literal key",
      '[host."https://c.example\\u0021"]',
      '[[host."https://array-table.example"]]',
      "",
    ].join("\n");
    assertToml(src);
    assert.deepEqual(hostsInFileOrder(src), ["https://a.example", "https://b.example", "https://c.example!"]);
  });

  it("lists a host again when its sub-table follows another host, like containerd", () => {
    const src = ["[host.a]", "[host.a.header]", "[host.b]", "[host.a.more]", ""].join("\n");
    assert.deepEqual(tableHeaders(src), [
      ["host", "a"],
      ["host", "a", "header"],
      ["host", "b"],
      ["host", "a", "more"],
    ]);
    assertToml(src);
    assert.deepEqual(hostsInFileOrder(src), ["a", "b", "a"]);
  });
});
