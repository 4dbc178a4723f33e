// Property tests:
// - the scanner against the upstream regular expressions, written out literally here as an oracle
//   (JS RegExp is leftmost-first like Go's regexp, so submatches agree);
// - parse / format / familiar round trips;
// - no exception other than InvalidReferenceError on arbitrary input, and linear time on hostile input.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { scanReference } from "./grammar.ts";
import {
  familiarMatch,
  familiarString,
  formatReference,
  PatternError,
  parse,
  parseAnyReference,
  parseDockerRef,
  parseNamed,
  parseNormalizedNamed,
  InvalidReferenceError as RefError,
  type Reference,
  type ReferenceErrorKind,
  validateDigest,
  withDigest,
  withTag,
} from "./index.ts";

// ---------------------------------------------------------------------------------------------------
// Oracle: dref regexp.go, verbatim ([[:xdigit:]] written as [0-9A-Fa-f]).

const alphanumeric = "[a-z0-9]+";
const separator = "(?:[._]|__|[-]+)";
const domainNameComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const optionalPort = "(?::[0-9]+)?";
const tagPat = "[\\w][\\w.-]{0,127}";
const digestPat = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}";
const ipv6address = "\\[(?:[a-fA-F0-9:]+)\\]";
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = host + optionalPort;
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const namePat = `(?:${domainAndPort}/)?${remoteName}`;
const referenceRe = new RegExp(`^(${namePat})(?::(${tagPat}))?(?:@(${digestPat}))?$`);
const anchoredNameRe = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`);
const identifierRe = /^[a-f0-9]{64}$/;

// go-digest v1.0.0, with sha256/sha384/sha512 registered (as in Kubernetes).
const goDigestAnchored = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const registered: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha384: /^[a-f0-9]{96}$/,
  sha512: /^[a-f0-9]{128}$/,
};
const sizes: Record<string, number> = { sha256: 32, sha384: 48, sha512: 64 };

function oracleDigest(d: string): ReferenceErrorKind | null {
  const i = d.indexOf(":");
  if (i <= 0 || i + 1 === d.length) return "digest-format";
  const alg = d.slice(0, i);
  const encoded = d.slice(i + 1);
  if (!Object.hasOwn(registered, alg)) return goDigestAnchored.test(d) ? "digest-algorithm" : "digest-format";
  if ((sizes[alg] as number) * 2 !== new TextEncoder().encode(encoded).length) return "digest-length";
  return (registered[alg] as RegExp).test(encoded) ? null : "digest-format";
}

/** Go's strings.ToLower for everything that can end up ASCII. */
function goLower(s: string): string {
  return [...s]
    .map((c) => (c === "\u0130" ? "i" : c === "\u212A" ? "k" : /[A-Z]/.test(c) ? c.toLowerCase() : c))
    .join("");
}

interface Split {
  domain: string;
  path: string;
  tag: string | null;
  digest: string | null;
}

function oracleScan(s: string): Split | null {
  const m = referenceRe.exec(s);
  if (m === null) return null;
  const n = anchoredNameRe.exec(m[1] as string);
  assert.ok(n !== null, "anchoredNamePat must match what namePat matched");
  return { domain: n[1] ?? "", path: n[2] as string, tag: m[2] ?? null, digest: m[3] ?? null };
}

/** Upstream Parse, on top of the regexes. */
function oracleParse(s: string): Split | ReferenceErrorKind {
  if (s === "") return "empty";
  const m = oracleScan(s);
  if (m === null) {
    const sl = goLower(s);
    return sl !== s && oracleScan(sl) !== null ? "lowercase" : "format";
  }
  if (m.path.length > 255) return "name-too-long";
  if (m.digest !== null) {
    const problem = oracleDigest(m.digest);
    if (problem !== null) return problem;
  }
  return m;
}

/** Upstream ParseNormalizedNamed, on top of oracleParse. */
function oracleNormalized(s: string): Split | ReferenceErrorKind {
  if (identifierRe.test(s)) return "hex-name";
  let domain: string;
  let remainder: string;
  const i = s.indexOf("/");
  if (i === -1) {
    domain = "docker.io";
    remainder = `library/${s}`;
  } else {
    const maybe = s.slice(0, i);
    if (maybe === "localhost" || /[.:]/.test(maybe) || maybe.toLowerCase() !== maybe) {
      domain = maybe;
      remainder = s.slice(i + 1);
    } else if (maybe === "index.docker.io") {
      domain = "docker.io";
      remainder = s.slice(i + 1);
    } else {
      domain = "docker.io";
      remainder = s;
    }
    if (domain === "index.docker.io") domain = "docker.io";
    if (domain === "docker.io" && !remainder.includes("/")) remainder = `library/${remainder}`;
  }
  const remote = remainder.split(":")[0] as string;
  if (remote.toLowerCase() !== remote) return "lowercase";
  return oracleParse(`${domain}/${remainder}`);
}

function outcome(fn: () => Reference): Split | ReferenceErrorKind {
  try {
    return { ...fn() };
  } catch (error) {
    if (error instanceof RefError) return error.kind;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------
// Generators.

function stringOf(chars: string, minLength: number, maxLength: number): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...chars), minLength, maxLength });
}

/** Grammar characters (lowercase alphanumerics weighted up) and a few strangers. */
const ALPHABET = "aaabbbzz00199AFZ.._--__::/@[]%+= é\u0130\u212A";
const shortStrings = stringOf(ALPHABET, 0, 40);

const alnum = stringOf("abz019", 1, 4);
const sep = fc.constantFrom(".", "_", "__", "-", "--", "---", "___", "..", "-_", "/");
const pathComp = fc
  .tuple(
    alnum,
    fc.array(fc.tuple(fc.constantFrom(".", "_", "__", "-", "--", "-", "."), alnum), { maxLength: 3 }),
  )
  .map(([first, rest]) => first + rest.map(([s, a]) => s + a).join(""));
const path = fc.oneof(
  { weight: 8, arbitrary: fc.array(pathComp, { minLength: 1, maxLength: 4 }).map((cs) => cs.join("/")) },
  {
    weight: 1,
    arbitrary: fc.array(fc.oneof(alnum, sep), { minLength: 1, maxLength: 8 }).map((cs) => cs.join("")),
  },
  { weight: 1, arbitrary: fc.integer({ min: 250, max: 260 }).map((n) => "a".repeat(n)) },
);
const port = fc.oneof(
  { weight: 6, arbitrary: fc.constant("") },
  { weight: 6, arbitrary: stringOf("0159", 1, 5).map((p) => `:${p}`) },
  { weight: 1, arbitrary: stringOf("0a:", 0, 3).map((p) => `:${p}`) },
);
const domainComp = fc
  .oneof(
    {
      weight: 6,
      arbitrary: fc.tuple(stringOf("aZ09", 1, 3), stringOf("aZ09-", 0, 3), stringOf("aZ09", 0, 2)),
    },
    { weight: 1, arbitrary: fc.tuple(stringOf("aZ09-", 0, 3), fc.constant(""), fc.constant("")) },
  )
  .map((parts) => parts.join(""));
const domain = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.array(domainComp, { minLength: 1, maxLength: 3 }), port)
      .map(([cs, p]) => cs.join(".") + p),
  },
  { weight: 2, arbitrary: fc.tuple(stringOf("0aF:", 0, 8), port).map(([h, p]) => `[${h}]${p}`) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "localhost",
      "docker.io",
      "index.docker.io",
      "Foo",
      "localhost:5000",
      "example.com",
    ),
  },
);
const tag = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(stringOf("aZ0_", 1, 1), stringOf("aZ0_.-", 0, 8)).map(([a, b]) => a + b) },
  { weight: 1, arbitrary: fc.integer({ min: 126, max: 130 }).map((n) => "t".repeat(n)) },
  { weight: 1, arbitrary: stringOf("aZ0_.-:/", 0, 6) },
);
const digest = fc
  .tuple(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom("sha256", "sha384", "sha512") },
      { weight: 1, arbitrary: fc.constantFrom("md5", "SHA256", "sha256+b64", "a.b", "1sha", "a-", "") },
    ),
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(64, 96, 128) },
      { weight: 1, arbitrary: fc.constantFrom(31, 32, 63, 65, 127) },
    ),
    fc.oneof(
      { weight: 6, arbitrary: fc.constant("0123456789abcdef") },
      { weight: 1, arbitrary: fc.constantFrom("0123456789abcdefABCDEF", "abcdefg") },
    ),
    fc.integer(),
  )
  .map(([alg, n, chars, seed]) => {
    let hex = "";
    let x = seed >>> 0;
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      hex += chars[(x >>> 16) % chars.length];
    }
    return `${alg}:${hex}`;
  });

/** `arb` with probability `p`, else null. */
function sometimes<T>(p: number, arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> {
  const w = Math.round(p * 100);
  return fc.oneof({ weight: w, arbitrary: arb }, { weight: 100 - w, arbitrary: fc.constant(null) });
}

/** Mostly valid references: [domain/]path[:tag][@digest], sometimes with one random edit. */
const structured = fc
  .tuple(
    sometimes(0.6, domain),
    path,
    sometimes(0.5, tag),
    sometimes(0.4, digest),
    sometimes(
      0.15,
      fc.tuple(fc.nat(), fc.constantFrom(...ALPHABET), fc.constantFrom("insert", "delete", "replace")),
    ),
  )
  .map(([d, p, t, g, edit]) => {
    let s = (d === null ? "" : `${d}/`) + p + (t === null ? "" : `:${t}`) + (g === null ? "" : `@${g}`);
    if (edit !== null) {
      const [at, c, op] = edit;
      const i = at % (s.length + 1);
      if (op === "insert") s = s.slice(0, i) + c + s.slice(i);
      else if (op === "delete") s = s.slice(0, i) + s.slice(i + 1);
      else s = s.slice(0, i) + c + s.slice(i + 1);
    }
    return s;
  });

const inputs = fc.oneof(shortStrings, structured);

// ---------------------------------------------------------------------------------------------------

describe("scanner = upstream regexes", () => {
  test("random and structured strings: same accept/reject, same split, same Parse outcome", () => {
    let accepted = 0;
    let withDigest = 0;
    let withDomain = 0;
    fc.assert(
      fc.property(inputs, (s) => {
        const expected = oracleScan(s);
        assert.deepEqual(scanReference(s), expected, `scan ${JSON.stringify(s)}`);
        if (expected !== null) {
          accepted++;
          if (expected.digest !== null) withDigest++;
          if (expected.domain !== "") withDomain++;
        }
        assert.deepEqual(
          outcome(() => parse(s)),
          oracleParse(s),
          `parse ${JSON.stringify(s)}`,
        );
        assert.deepEqual(
          outcome(() => parseNormalizedNamed(s)),
          oracleNormalized(s),
          `normalized ${JSON.stringify(s)}`,
        );
      }),
      { numRuns: 20000 },
    );
    // The comparison is only worth something if the generators reach the interesting cases.
    assert.ok(accepted > 4000, `only ${accepted} accepted inputs`);
    assert.ok(withDigest > 500, `only ${withDigest} inputs with a digest`);
    assert.ok(withDomain > 1000, `only ${withDomain} inputs with a domain`);
  });
});

describe("round trips", () => {
  test("raw: formatReference(parse(s)) === s, and parse is stable", () => {
    let valid = 0;
    fc.assert(
      fc.property(inputs, (s) => {
        const r = outcome(() => parse(s));
        if (typeof r === "string") return;
        valid++;
        const ref = parse(s);
        assert.equal(formatReference(ref), s);
        assert.deepEqual(parse(formatReference(ref)), ref);
      }),
      { numRuns: 5000 },
    );
    assert.ok(valid > 1000, `only ${valid} valid inputs`);
  });

  test("normalized: the formatted form is canonical and re-parses to the same reference", () => {
    let valid = 0;
    fc.assert(
      fc.property(inputs, (s) => {
        if (typeof outcome(() => parseNormalizedNamed(s)) === "string") return;
        valid++;
        const ref = parseNormalizedNamed(s);
        const canonical = formatReference(ref);
        assert.deepEqual(parseNormalizedNamed(canonical), ref);
        assert.deepEqual(parseNamed(canonical), ref);
        const docker = parseDockerRef(s);
        assert.deepEqual(parseDockerRef(formatReference(docker)), docker);
      }),
      { numRuns: 5000 },
    );
    assert.ok(valid > 1000, `only ${valid} valid inputs`);
  });

  test("familiar: familiarString re-parses to the same reference, except upstream's ambiguous cases", () => {
    let valid = 0;
    fc.assert(
      fc.property(inputs, (s) => {
        if (typeof outcome(() => parseNormalizedNamed(s)) === "string") return;
        valid++;
        const ref = parseNormalizedNamed(s);
        const familiar = familiarString(ref);
        // A Docker Hub path whose first component looks like a registry (localhost, or has a dot), or a
        // familiar name of 64 hex characters, cannot be written in familiar form (upstream behaviour).
        const name = familiar.split(/[:@]/)[0] as string;
        const slash = name.indexOf("/");
        const first = slash === -1 ? null : name.slice(0, slash);
        const ambiguous =
          ref.domain === "docker.io" &&
          ((first !== null && (first === "localhost" || first.includes("."))) ||
            /^[a-f0-9]{64}$/.test(familiar));
        const back = outcome(() => parseNormalizedNamed(familiar));
        if (ambiguous) {
          assert.notDeepEqual(back, { ...ref });
        } else {
          assert.deepEqual(back, { ...ref });
        }
        assert.ok(familiarMatch(familiar, ref) || /[*?[\\]/.test(familiar));
      }),
      { numRuns: 5000 },
    );
    assert.ok(valid > 1000, `only ${valid} valid inputs`);
  });

  test("the ambiguity rule is exact on directed inputs", () => {
    for (const s of [
      "docker.io/localhost/x",
      "docker.io/a.b/c",
      "docker.io/index.docker.io/x",
      `docker.io/${"a".repeat(64)}`,
    ]) {
      const ref = parseNormalizedNamed(s);
      assert.notDeepEqual(
        outcome(() => parseNormalizedNamed(familiarString(ref))),
        { ...ref },
        s,
      );
    }
  });
});

describe("robustness", () => {
  const anyString = fc.oneof(
    fc.string({ unit: "binary", maxLength: 60 }),
    fc.string({
      unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
      maxLength: 60,
    }),
    inputs,
  );
  const onlyRefError = (fn: () => unknown): void => {
    try {
      fn();
    } catch (error) {
      assert.ok(error instanceof RefError, `unexpected ${String(error)}`);
      assert.equal(error.code, "InvalidImageName");
    }
  };

  test("arbitrary strings never throw anything but InvalidReferenceError (PatternError for patterns)", () => {
    const ref = parseNormalizedNamed("example.com/a/b:c");
    fc.assert(
      fc.property(anyString, anyString, (s, t) => {
        onlyRefError(() => parse(s));
        onlyRefError(() => parseNormalizedNamed(s));
        onlyRefError(() => parseDockerRef(s));
        onlyRefError(() => parseAnyReference(s));
        onlyRefError(() => parseNamed(s));
        onlyRefError(() => validateDigest(s));
        onlyRefError(() => withTag(ref, s));
        onlyRefError(() => withDigest(ref, s));
        try {
          familiarMatch(t, ref);
        } catch (error) {
          assert.ok(error instanceof PatternError, `unexpected ${String(error)}`);
        }
      }),
      { numRuns: 3000 },
    );
  });

  test("100 KB hostile inputs are handled in linear time", () => {
    const n = 100_000;
    const hostile = [
      `${"a".repeat(n)}!`,
      `${"a-".repeat(n / 2)}A`,
      `${"a.".repeat(n / 2)}/`,
      `[${":".repeat(n)}`,
      `[${"a:".repeat(n / 2)}]`,
      `${"a/".repeat(n / 2)}-`,
      `sha256:${"f".repeat(n)}`,
      `a@sha256:${"f".repeat(n)}`,
      `a@sha256:${"f".repeat(n)}!`,
      `a@${"a-".repeat(n / 2)}:${"f".repeat(64)}`,
      `a:${"t".repeat(n)}`,
      `${"a".repeat(n)}:${"t".repeat(128)}`,
      `${"A".repeat(n)}`,
      `${"A/".repeat(n / 2)}a`,
      `${"a".repeat(n)}.com/${"b".repeat(n)}`,
      `${"a_".repeat(n / 2)}a`,
      `${"a__".repeat(n / 3)}_`,
      `${"0".repeat(n)}:`,
      `${"a:".repeat(n / 2)}`,
      `${"@".repeat(n)}`,
      `${"/".repeat(n)}`,
      `${"a/b:".repeat(n / 4)}`,
      `${"\u0130".repeat(n)}`,
      `${"é".repeat(n)}`,
    ];
    const entryPoints: [string, (s: string) => unknown][] = [
      ["parse", parse],
      ["parseNormalizedNamed", parseNormalizedNamed],
      ["parseDockerRef", parseDockerRef],
      ["parseAnyReference", parseAnyReference],
      ["validateDigest", validateDigest],
    ];
    for (const s of hostile) {
      for (const [name, fn] of entryPoints) {
        const start = performance.now();
        try {
          fn(s);
        } catch (error) {
          assert.ok(error instanceof RefError);
        }
        const ms = performance.now() - start;
        // Typically well under 10 ms; 500 ms only to keep slow CI machines green. Quadratic work on
        // 100 KB would take seconds.
        assert.ok(ms < 500, `${name}(${JSON.stringify(s.slice(0, 20))}…) took ${ms.toFixed(1)} ms`);
      }
    }
  });
});
