// Platform normalization and selection as containerd does it (spec oci.md §6.4): normalize both sides, rank
// acceptable platforms in containerd's `Only` preference order, stable-sort the index entries, take the first.

import { arch as hostArch } from "node:os";

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string | undefined;
  readonly "os.version"?: string | undefined;
  readonly "os.features"?: readonly string[] | undefined;
}

export class PlatformError extends Error {
  readonly code = "PlatformError";
  constructor(message: string) {
    super(message);
    this.name = "PlatformError";
  }
}

const GOARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
};

/** Normalized as containerd does before comparing (lowercased; arch aliases; default variants dropped). */
export function normalizePlatform(p: Platform): Platform {
  let os = (p.os || process.platform).toLowerCase();
  if (os === "macos") os = "darwin";
  let arch = p.architecture.toLowerCase();
  let variant = (p.variant ?? "").toLowerCase();
  switch (arch) {
    case "i386":
      arch = "386";
      variant = "";
      break;
    case "x86_64":
    case "x86-64":
    case "amd64":
      arch = "amd64";
      if (variant === "v1") variant = "";
      break;
    case "aarch64":
    case "arm64":
      arch = "arm64";
      if (variant === "8" || variant === "v8" || variant === "v8.0") variant = "";
      else if (variant === "9" || variant === "9.0" || variant === "v9.0") variant = "v9";
      break;
    case "armhf":
      arch = "arm";
      variant = "v7";
      break;
    case "armel":
      arch = "arm";
      variant = "v6";
      break;
    case "arm":
      if (variant === "" || variant === "7") variant = "v7";
      else if (variant === "5" || variant === "6" || variant === "8") variant = `v${variant}`;
      break;
  }
  const out: Platform = { os, architecture: arch, ...(variant ? { variant } : {}) };
  return out;
}

/** `os/arch[/variant]`, as in `--platform linux/arm64/v8`. */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === "" || !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw new PlatformError(`invalid platform "${text}": expected os/arch[/variant]`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalizePlatform({ os, architecture, variant });
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** The host's platform: Node's arch mapped to GOARCH; on ARM the variant is not probed (v8 for arm64). */
export function hostPlatform(): Platform {
  return normalizePlatform({ os: process.platform, architecture: GOARCH[hostArch()] ?? hostArch() });
}

function variantsBelow(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let v = from; v >= to; v--) out.push(`${prefix}${v}`);
  return out;
}

/** Acceptable platforms for `wanted`, best first (containerd `platforms.Only`). */
export function acceptablePlatforms(wanted: Platform): Platform[] {
  const w = normalizePlatform(wanted);
  const os = w.os;
  const list: Platform[] = [];
  const add = (architecture: string, variant = "") =>
    list.push({ os, architecture, ...(variant ? { variant } : {}) });
  const armDown = (from: number) => {
    for (const v of variantsBelow("v", from, 5)) add("arm", v);
  };
  switch (w.architecture) {
    case "amd64": {
      const level = Number(/^v(\d)$/.exec(w.variant ?? "")?.[1] ?? 1);
      for (let v = level; v >= 2; v--) add("amd64", `v${v}`);
      add("amd64");
      add("386");
      break;
    }
    case "arm64": {
      const variant = w.variant ?? "";
      if (variant.startsWith("v9")) {
        add("arm64", variant);
        for (let minor = 5; minor >= 1; minor--) add("arm64", `v8.${minor}`);
      } else if (/^v8\.\d+$/.test(variant)) {
        const minor = Number(variant.slice(3));
        for (let m = minor; m >= 1; m--) add("arm64", `v8.${m}`);
      } else if (variant !== "") {
        add("arm64", variant);
      }
      add("arm64");
      armDown(8);
      break;
    }
    case "arm": {
      const n = Number(/^v(\d)$/.exec(w.variant ?? "v7")?.[1] ?? 7);
      armDown(n);
      break;
    }
    default:
      add(w.architecture, w.variant ?? "");
  }
  return list;
}

function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? "") === (b.variant ?? "");
}

/** Preference rank of a candidate for `wanted` (lower is better), or -1 when it does not match. */
export function platformRank(wanted: Platform, candidate: Platform): number {
  const c = normalizePlatform(candidate);
  const w = normalizePlatform(wanted);
  if (w.os === "windows" && (w["os.version"] ?? "") !== "" && c["os.version"] !== w["os.version"]) return -1;
  const wantedFeatures = new Set(w["os.features"] ?? []);
  if ((candidate["os.features"] ?? []).some((f) => !wantedFeatures.has(f))) return -1;
  return acceptablePlatforms(w).findIndex((p) => samePlatform(p, c));
}

/** Index of the entry to use: matching entries by preference (entries without a platform last; ties keep
 * index order, more os.features wins), or -1 when none matches. */
export function choosePlatformEntry(
  wanted: Platform,
  entries: readonly { readonly platform?: Platform | undefined }[],
): number {
  let best = -1;
  let bestKey: [number, number] = [Number.POSITIVE_INFINITY, 0];
  entries.forEach((entry, index) => {
    let key: [number, number];
    if (entry.platform === undefined) key = [Number.MAX_SAFE_INTEGER, 0];
    else {
      const rank = platformRank(wanted, entry.platform);
      if (rank < 0) return;
      key = [rank, -(entry.platform["os.features"]?.length ?? 0)];
    }
    if (key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1])) {
      best = index;
      bestKey = key;
    }
  });
  return best;
}
