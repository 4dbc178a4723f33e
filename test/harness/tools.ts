// Finding (and, when we can, installing) the Debian tools the integration tests run: docker-registry,
// htpasswd, openssl, skopeo. `.ci/run` installs them up front; this is the fallback for a developer who runs
// `npm test` on a machine where they are missing.

import { execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

const EXTRA_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
const attempted = new Set<string>();

/** Absolute path of an executable on PATH (or the usual system dirs), or null. */
export function findTool(name: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function canInstall(): boolean {
  if (process.env.KPULL_HARNESS_NO_INSTALL) return false; // tests of the error message, or a user who says no
  return process.getuid?.() === 0 && findTool("apt-get") !== null;
}

function tryInstall(debianPackage: string): void {
  if (attempted.has(debianPackage)) return;
  attempted.add(debianPackage);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const opts = { env, stdio: "ignore" as const, timeout: 300_000 };
  const lock = ["-o", "DPkg::Lock::Timeout=120"];
  try {
    execFileSync("apt-get", ["update", "-q", ...lock], opts);
    execFileSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...lock, debianPackage], opts);
  } catch {
    // fall through: the caller reports the exact command to run
  }
}

/**
 * Path of `name`, installing `debianPackage` once (quietly) when running as root with apt available.
 * Throws `missing NAME: run \`apt-get install -y PKG\`` when the tool is still not there.
 */
export function requireTool(name: string, debianPackage: string): string {
  let found = findTool(name);
  if (found === null && canInstall()) {
    tryInstall(debianPackage);
    found = findTool(name);
  }
  if (found === null) throw new Error(`missing ${name}: run \`apt-get install -y ${debianPackage}\``);
  return found;
}
