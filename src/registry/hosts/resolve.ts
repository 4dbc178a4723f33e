// containerd's ConfigureHosts (core/remotes/docker/config/hosts.go, config_unix.go) for one reference
// domain: find the host directory, read hosts.toml (or Docker-style certificate files), default the
// upstream entry, load TLS material, and apply the HTTPS-first rule; then kpull's --insecure-registry.

import type { Dirent } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { delimiter, join } from "node:path";
// config.ts (the TOML parser, smol-toml: 9 modules) is loaded when a hosts.toml is found, not at start-up.
import type { HostConfig } from "./config.ts";
import { HostsConfigError } from "./errors.ts";
import { errnoCode, MAX_HOSTS_TOML_BYTES, readBounded } from "./files.ts";
import { ALL_CAPABILITIES, type HostCapability, isLoopback, portOf } from "./host.ts";
import { type ClientPair, loadCA, loadClientPair } from "./tls.ts";

/** containerd's and the CRI plugin's usual `config_path`. */
export const DEFAULT_HOSTS_DIR = "/etc/containerd/certs.d";

export interface RegistryHost {
  /** Where to connect: "registry-1.docker.io", "127.0.0.1:5000", "[::1]:5000" (port kept as written). */
  readonly host: string;
  readonly scheme: "https" | "http";
  /** API root path: "/v2" unless override_path; never ends with "/" ("" = the host's root). */
  readonly path: string;
  /** In canonical order pull, resolve, push. Resolve (tag → digest) only on hosts with "resolve". */
  readonly capabilities: readonly HostCapability[];
  readonly tls: {
    /**
     * Extra CA certificates (PEM, one per certificate) to trust *in addition to* the system roots, as
     * containerd appends to the system pool. Node's `ca` option replaces the defaults, so pass
     * `[...tls.getCACertificates("default"), ...ca]` when this is not empty.
     */
    readonly ca: readonly string[];
    /** First client certificate chain (PEM), if any. */
    readonly cert?: string;
    /** Its private key (PEM). */
    readonly key?: string;
    /** Every configured client pair, in order (`cert`/`key` are the first). */
    readonly clientPairs: readonly ClientPair[];
    readonly skipVerify: boolean;
  };
  /** Extra request headers from hosts.toml, names as written. Empty when none. */
  readonly headers: Readonly<Record<string, string[]>>;
  /** false for the upstream (the `server` entry, or the reference's own host), true for `[host]` entries. */
  readonly isMirror: boolean;
  /**
   * Try HTTPS first and retry as plain HTTP when the TLS handshake fails (containerd's HTTPFallback):
   * a loopback host on a port other than 80/443 without a `server`, an `http://` entry that has TLS
   * settings (ca, client, skip_verify) and a port other than 80, or an --insecure-registry host.
   */
  readonly httpFallback: boolean;
  /** `dial_timeout` in milliseconds, when configured (containerd's default is 30 s). */
  readonly dialTimeoutMs?: number;
}

export interface HostsOptions {
  /**
   * Root of the per-host directories (default /etc/containerd/certs.d). Like the CRI plugin's
   * `config_path`, several roots may be joined with ":" and are searched in order. A missing root
   * means no configuration.
   */
  hostsDir?: string;
  /**
   * Hosts (`host[:port]`, matched case-insensitively against each entry's host, and against the
   * reference domain for the upstream) that may be reached without verified TLS: their entries skip
   * certificate verification and fall back to plain HTTP, like Docker's --insecure-registry.
   */
  insecureRegistries?: readonly string[];
}

/** A reference domain as the reference grammar allows it; anything else could escape the hosts directory. */
const DOMAIN_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;

/**
 * The hosts to try for a reference domain (`docker.io`, `localhost:5000`, `[::1]:5000`, ...), in order:
 * the hosts.toml `[host]` mirrors in file order, then the upstream. Callers pick by capability: resolve
 * only on hosts with "resolve", fetch by digest on hosts with "pull", push on the first with "push"; an
 * error from one host moves on to the next. Files are read on every call, so edits need no restart.
 */
export async function resolveHosts(domain: string, options: HostsOptions = {}): Promise<RegistryHost[]> {
  if (!DOMAIN_RE.test(domain)) throw new TypeError(`invalid registry domain ${JSON.stringify(domain)}`);
  const roots = (options.hostsDir ?? DEFAULT_HOSTS_DIR).split(delimiter).filter((r) => r !== "");

  const dir = await findHostDir(roots, domain);
  const hosts: HostConfig[] = dir === undefined ? [emptyHost()] : await loadHostDir(dir);

  // No `server` in the file (or no file): the last entry is the reference's own host.
  const upstream = hosts[hosts.length - 1] as HostConfig;
  if (upstream.host === "") defaultUpstream(upstream, domain);

  const insecure = new Set((options.insecureRegistries ?? []).map(normalizeInsecure));
  const out: RegistryHost[] = [];
  for (const [i, h] of hosts.entries()) {
    const isMirror = i < hosts.length - 1;
    const ca: string[] = [];
    for (const file of h.caCerts ?? []) ca.push(...(await loadCA(file)));
    const clientPairs: ClientPair[] = [];
    for (const [cert, key] of h.clientPairs ?? []) clientPairs.push(await loadClientPair(cert, key));

    let scheme = h.scheme as "https" | "http";
    let skipVerify = h.skipVerify ?? false;
    let httpFallback = false;
    const explicitTLS = h.caCerts !== undefined || h.clientPairs !== undefined || h.skipVerify !== undefined;
    if (scheme === "http" && explicitTLS && portOf(h.host) !== "80") {
      scheme = "https";
      httpFallback = true;
    }
    const hostKey = h.host.toLowerCase();
    if (insecure.has(hostKey) || (!isMirror && insecure.has(domain.toLowerCase()))) {
      skipVerify = true;
      if (scheme === "https") httpFallback = true;
    }

    const first = clientPairs[0];
    out.push({
      host: h.host,
      scheme,
      path: h.path,
      capabilities: h.capabilities,
      tls: {
        ca,
        ...(first ? { cert: first.cert, key: first.key } : {}),
        clientPairs,
        skipVerify,
      },
      headers: h.header ?? {},
      isMirror,
      httpFallback,
      ...(h.dialTimeoutMs !== undefined ? { dialTimeoutMs: h.dialTimeoutMs } : {}),
    });
  }
  return out;
}

function emptyHost(): HostConfig {
  return { scheme: "", host: "", path: "", capabilities: [] };
}

/** containerd's defaults for an entry without a host; keeps the file's ca, client, header, dial_timeout. */
function defaultUpstream(h: HostConfig, domain: string): void {
  if (domain === "docker.io") {
    h.scheme = "https";
    h.host = "registry-1.docker.io";
  } else if (isLoopback(domain)) {
    h.host = domain;
    const port = portOf(domain);
    // No port or 443: only https. Any other port: "http" here, which the HTTPS-first rule turns into
    // https with fallback because skip_verify is set just below. Port 80: plain http, nothing to verify.
    h.scheme = port === "" || port === "443" ? "https" : "http";
    if (port !== "80") h.skipVerify = true;
  } else {
    h.host = domain;
    h.scheme = "https";
  }
  h.path = "/v2";
  h.capabilities = [...ALL_CAPABILITIES];
}

/** `host:port` → `host_port_` (last colon), as containerd names directories; otherwise unchanged. */
export function hostDirectory(host: string): string {
  const idx = host.lastIndexOf(":");
  return idx > 0 ? `${host.slice(0, idx)}_${host.slice(idx + 1)}_` : host;
}

/** The directories containerd looks at for a host, in order, under one root. */
export function hostPaths(root: string, host: string): string[] {
  const paths: string[] = [];
  const ch = hostDirectory(host);
  if (ch !== host) paths.push(join(root, ch));
  paths.push(join(root, host), join(root, "_default"));
  return paths;
}

async function findHostDir(roots: readonly string[], host: string): Promise<string | undefined> {
  for (const root of roots) {
    for (const p of hostPaths(root, host)) {
      try {
        await stat(p);
        return p;
      } catch (err) {
        if (errnoCode(err) === "ENOENT") continue;
        throw new HostsConfigError(p, `cannot read host directory (${errnoCode(err) ?? String(err)})`, {
          cause: err,
        });
      }
    }
  }
  return undefined;
}

async function loadHostDir(dir: string): Promise<HostConfig[]> {
  const file = join(dir, "hosts.toml");
  let data: Buffer | undefined;
  try {
    data = await readBounded(file, MAX_HOSTS_TOML_BYTES);
  } catch (err) {
    if (err instanceof HostsConfigError) throw err;
    if (errnoCode(err) !== "ENOENT") {
      throw new HostsConfigError(file, `cannot read (${errnoCode(err) ?? String(err)})`, { cause: err });
    }
  }
  // No hosts.toml, or an empty one: Docker's certs.d layout.
  if (data === undefined || data.length === 0) return loadCertFiles(dir);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(data);
  } catch (err) {
    throw new HostsConfigError(file, "not valid UTF-8", { cause: err });
  }
  return (await import("./config.ts")).parseHostsFile(file, dir, text);
}

/** `*.crt` = CA certificates; `*.cert` = client certificate, with `<name>.key` beside it if present. */
async function loadCertFiles(dir: string): Promise<HostConfig[]> {
  const host = emptyHost();
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return [host];
    throw new HostsConfigError(dir, `cannot list (${errnoCode(err) ?? String(err)})`, { cause: err });
  }
  const names = entries
    .filter((e) => !e.isDirectory())
    .map((e) => e.name)
    .sort();
  const caCerts: string[] = [];
  const clientPairs: [string, string][] = [];
  for (const name of names) {
    if (name.endsWith(".crt")) caCerts.push(join(dir, name));
    if (name.endsWith(".cert")) {
      const keyFile = join(dir, `${name.slice(0, -".cert".length)}.key`);
      let key = "";
      try {
        await stat(keyFile);
        key = keyFile;
      } catch (err) {
        if (errnoCode(err) !== "ENOENT") {
          throw new HostsConfigError(keyFile, `cannot read (${errnoCode(err) ?? String(err)})`, {
            cause: err,
          });
        }
      }
      clientPairs.push([join(dir, name), key]);
    }
  }
  // Only what was found counts as TLS configuration (containerd appends to nil slices).
  if (caCerts.length > 0) host.caCerts = caCerts;
  if (clientPairs.length > 0) host.clientPairs = clientPairs;
  return [host];
}

function normalizeInsecure(entry: string): string {
  return entry
    .trim()
    .replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, "")
    .replace(/\/+$/, "")
    .toLowerCase();
}
