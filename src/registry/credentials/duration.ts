/** Go's time.ParseDuration, for `defaultCacheDuration` and `cacheDuration` (metav1.Duration). */

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5
  μs: 1e3, // U+03BC
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go durations are int64 nanoseconds (about 292 years). */
const MAX_NS = 2 ** 63 - 1;

/** Milliseconds (fractional) for a Go duration string such as `12h`, `1h30m`, `1.5s`, `0`; null when invalid. */
export function parseGoDuration(text: string): number | null {
  let s = text;
  let neg = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") return null;
  let total = 0;
  const re = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]+)/u;
  while (s !== "") {
    const m = re.exec(s);
    if (m === null) return null;
    const [whole, intPart = "", fracPart, unit = ""] = m;
    if (intPart === "" && (fracPart === undefined || fracPart === "")) return null;
    const scale = UNIT_NS[unit];
    if (scale === undefined) return null;
    const value = Number(intPart || "0") + (fracPart ? Number(`0.${fracPart}`) : 0);
    total += value * scale;
    if (total > MAX_NS) return null;
    s = s.slice(whole.length);
  }
  return (neg ? -total : total) / 1e6;
}
