// pathMatch against the table of Go's src/path/match_test.go (TestMatch), plus a few cases for the
// "pattern errors are reported whatever the name" rule.

import assert from "node:assert/strict";
import { test } from "node:test";
import { PatternError, pathMatch } from "./index.ts";

const BAD = "bad";

// [pattern, name, matched, or BAD for path.ErrBadPattern]
const GO_MATCH_TESTS: [string, string, boolean | typeof BAD][] = [
  ["abc", "abc", true],
  ["*", "abc", true],
  ["*c", "abc", true],
  ["a*", "a", true],
  ["a*", "abc", true],
  ["a*", "ab/c", false],
  ["a*/b", "abc/b", true],
  ["a*/b", "a/c/b", false],
  ["a*b*c*d*e*/f", "axbxcxdxe/f", true],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/f", true],
  ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/fff", false],
  ["a*b?c*x", "abxbbxdbxebxczzx", true],
  ["a*b?c*x", "abxbbxdbxebxczzy", false],
  ["ab[c]", "abc", true],
  ["ab[b-d]", "abc", true],
  ["ab[e-g]", "abc", false],
  ["ab[^c]", "abc", false],
  ["ab[^b-d]", "abc", false],
  ["ab[^e-g]", "abc", true],
  ["a\\*b", "a*b", true],
  ["a\\*b", "ab", false],
  ["a?b", "a☺b", true],
  ["a[^a]b", "a☺b", true],
  ["a???b", "a☺b", false],
  ["a[^a][^a][^a]b", "a☺b", false],
  ["[a-ζ]*", "α", true],
  ["*[a-ζ]", "A", false],
  ["a?b", "a/b", false],
  ["a*b", "a/b", false],
  ["[\\]a]", "]", true],
  ["[\\-]", "-", true],
  ["[x\\-]", "x", true],
  ["[x\\-]", "-", true],
  ["[x\\-]", "z", false],
  ["[\\-x]", "x", true],
  ["[\\-x]", "-", true],
  ["[\\-x]", "a", false],
  ["[]a]", "]", BAD],
  ["[-]", "-", BAD],
  ["[x-]", "x", BAD],
  ["[x-]", "-", BAD],
  ["[x-]", "z", BAD],
  ["[-x]", "x", BAD],
  ["[-x]", "-", BAD],
  ["[-x]", "a", BAD],
  ["\\", "a", BAD],
  ["[a-b-c]", "a", BAD],
  ["[", "a", BAD],
  ["[^", "a", BAD],
  ["[^bc", "a", BAD],
  ["a[", "a", BAD],
  ["a[", "ab", BAD],
  ["a[", "x", BAD],
  ["a/b[", "x", BAD],
  ["*x", "xxx", true],
  // Not in Go's table: errors after a mismatch or after a star are still found.
  ["x*[", "abc", BAD],
  ["abc*\\", "abc", BAD],
  ["*", "", true],
  ["", "", true],
  ["", "a", false],
  ["a\\", "b", BAD],
];

for (const [pattern, name, expected] of GO_MATCH_TESTS) {
  test(`pathMatch(${JSON.stringify(pattern)}, ${JSON.stringify(name)}) → ${expected}`, () => {
    if (expected === BAD) {
      assert.throws(() => pathMatch(pattern, name), PatternError);
    } else {
      assert.equal(pathMatch(pattern, name), expected);
    }
  });
}
