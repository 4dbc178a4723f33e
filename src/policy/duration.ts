// Go durations: time.Duration.String() after the kubelet's truncation to milliseconds, as in the `Pulled`
// event, and time.ParseDuration for every duration kpull reads (GC flags, hosts.toml dial_timeout,
// credential provider cache durations).

/** Formats a duration given in milliseconds (fractions are truncated) the way Go prints a Duration. */
export function formatGoDuration(ms: number): string {
  const total = Math.trunc(ms);
  if (total === 0) return "0s";
  const sign = total < 0 ? "-" : "";
  let rest = Math.abs(total);
  if (rest < 1000) return `${sign}${rest}ms`;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  const fraction = millis === 0 ? "" : `.${String(millis).padStart(3, "0").replace(/0+$/, "")}`;
  const secondsText = `${seconds}${fraction}s`;
  if (hours > 0) return `${sign}${hours}h${minutes}m${secondsText}`;
  if (minutes > 0) return `${sign}${minutes}m${secondsText}`;
  return `${sign}${secondsText}`;
}

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

/**
 * Go's time.ParseDuration: milliseconds (fractional) for `12h`, `1h30m`, `1.5s`, `-1m`, `0`; null where Go
 * returns an error (no unit, an unknown unit, over int64 nanoseconds).
 */
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
