// Go's time.Duration.String() after the kubelet's truncation to milliseconds, as in the `Pulled` event.

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
