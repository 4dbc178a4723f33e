// Real CNCF Distribution registries (Debian `docker-registry`, 2.8) for integration tests: each on a free
// loopback port with its own config, storage and logs in a temp dir, in one of four modes (no auth,
// htpasswd basic, token with our own token server, and TLS with a CA made for the run). Processes are
// stopped by stop(), by useRegistry()'s after(), on process exit, and (through setpriv --pdeathsig) by the
// kernel if the test process dies without running any of those.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { makeSigningMaterial, makeTlsMaterial, type TlsMaterial } from "./certs.ts";
import { HARNESS_USER_AGENT, rawRequest } from "./http.ts";
import { type AccessPolicy, defaultAccess, startTokenServer, type TokenServer } from "./token-server.ts";
import { findTool, requireTool } from "./tools.ts";

export interface RegistryOptions {
  auth?: "none" | "basic" | "token";
  /** serve HTTPS with a CA generated for this registry (the token server, if any, then serves HTTPS too) */
  tls?: boolean;
  /** for basic and token; default { kpull: "secret" } */
  users?: Record<string, string>;
  /** token mode: which users may do what; default: every known user may pull and push every repository,
   * anonymous may pull repositories under "public/" */
  access?: AccessPolicy;
  /** token mode: how the registry finds the signing key; default "x5c" */
  tokenKeyHint?: "x5c" | "kid";
  /** token mode: expires_in of issued tokens, seconds; default 300 */
  tokenExpiresIn?: number;
  /** readiness timeout, ms; default 15000 */
  startTimeoutMs?: number;
}

export interface AccessLogEntry {
  readonly remoteAddr: string;
  readonly user: string;
  readonly time: string;
  readonly method: string;
  /** request URI as sent: path and query */
  readonly path: string;
  readonly protocol: string;
  readonly status: number;
  /** response body bytes the registry's handler wrote; for HEAD of a manifest that is the manifest size,
   * although no body goes over the wire */
  readonly bytes: number;
  readonly userAgent: string;
}

export interface RunningRegistry {
  /** "127.0.0.1:PORT" */
  readonly host: string;
  readonly port: number;
  /** "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT" */
  readonly url: string;
  readonly auth: "none" | "basic" | "token";
  /** path of the CA PEM when tls */
  readonly caFile: string | null;
  readonly caPem: string | null;
  readonly users: Record<string, string>;
  readonly tokenServer: TokenServer | null;
  /** temp dir with config.yml, storage/, registry.stdout.log (access log), registry.stderr.log */
  readonly root: string;
  /** the filesystem driver's rootdirectory */
  readonly storageDir: string;
  readonly pid: number;
  /**
   * Access log entries so far, in order. The registry writes each line before the response completes, so
   * a request whose response was read is in it. Requests made by the harness itself (readiness probe,
   * seedImage) are left out unless `includeHarness`.
   */
  accessLog(options?: { includeHarness?: boolean }): Promise<AccessLogEntry[]>;
  /** Last lines of the registry's own (logrus) log, for failure messages. */
  stderrTail(lines?: number): string;
  stop(): Promise<void>;
}

const live = new Map<number, { root: string; keep: boolean }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const [pid, { root, keep }] of live) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
      if (!keep) rmSync(root, { recursive: true, force: true });
    }
    live.clear();
  });
}

/** A port that was free on 127.0.0.1 a moment ago (the caller retries on EADDRINUSE). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

// Apache combined format, written by gorilla/handlers on the registry's stdout.
const ACCESS_RE =
  /^(\S+) \S+ (\S+) \[([^\]]+)\] "(\S+) (\S+) ([^"]+)" (\d{3}) (\d+|-) "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)"/;

export function parseAccessLog(text: string): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  for (const line of text.split("\n")) {
    const m = ACCESS_RE.exec(line);
    if (!m) continue;
    out.push({
      remoteAddr: m[1] ?? "",
      user: m[2] ?? "-",
      time: m[3] ?? "",
      method: m[4] ?? "",
      path: m[5] ?? "",
      protocol: m[6] ?? "",
      status: Number(m[7]),
      bytes: m[8] === "-" ? 0 : Number(m[8]),
      userAgent: m[9] ?? "",
    });
  }
  return out;
}

function yamlString(s: string): string {
  return JSON.stringify(s); // JSON strings are valid YAML double-quoted scalars
}

interface ConfigInput {
  port: number;
  storageDir: string;
  tls: TlsMaterial | null;
  htpasswdFile: string | null;
  token: { realm: string; service: string; issuer: string; bundle: string } | null;
}

function registryConfig(c: ConfigInput): string {
  const lines = [
    "version: 0.1",
    "log:",
    "  level: info",
    "  accesslog:",
    "    disabled: false",
    "  fields:",
    "    service: kpull-test-registry",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${yamlString(c.storageDir)}`,
    "  delete:",
    "    enabled: true",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "http:",
    `  addr: 127.0.0.1:${c.port}`,
    "  secret: kpull-test-secret",
    "  headers:",
    "    X-Content-Type-Options: [nosniff]",
  ];
  if (c.tls) {
    lines.push(
      "  tls:",
      `    certificate: ${yamlString(c.tls.certFile)}`,
      `    key: ${yamlString(c.tls.keyFile)}`,
    );
  }
  if (c.htpasswdFile) {
    lines.push("auth:", "  htpasswd:", "    realm: kpull-test", `    path: ${yamlString(c.htpasswdFile)}`);
  }
  if (c.token) {
    lines.push(
      "auth:",
      "  token:",
      `    realm: ${yamlString(c.token.realm)}`,
      `    service: ${yamlString(c.token.service)}`,
      `    issuer: ${yamlString(c.token.issuer)}`,
      `    rootcertbundle: ${yamlString(c.token.bundle)}`,
    );
  }
  lines.push("health:", "  storagedriver:", "    enabled: false", "");
  return lines.join("\n");
}

function writeHtpasswd(file: string, users: Record<string, string>): void {
  const htpasswd = requireTool("htpasswd", "apache2-utils");
  const entries = Object.entries(users).map(([user, password]) =>
    // -B: bcrypt, the only hash registry 2.8 accepts; -C 4: lowest cost, the file is for tests
    execFileSync(htpasswd, ["-nbB", "-C", "4", user, password], { encoding: "utf8" }).trim(),
  );
  writeFileSync(file, `${entries.join("\n")}\n`, { mode: 0o600 });
}

async function waitReady(
  url: string,
  ca: string | null,
  child: ChildProcess,
  timeoutMs: number,
): Promise<{ ok: true } | { ok: false; why: string }> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | null = null;
  const onExit = (code: number | null, signal: string | null) => {
    exited = `exited with ${signal ?? `code ${code}`}`;
  };
  child.once("exit", onExit);
  try {
    let last = "no answer";
    while (Date.now() < deadline) {
      if (exited) return { ok: false, why: exited };
      try {
        const res = await rawRequest(`${url}/v2/`, { ca, timeoutMs: 1000 });
        if (res.status === 200 || res.status === 401) return { ok: true };
        last = `GET /v2/ answered ${res.status}`;
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(25);
    }
    return { ok: false, why: exited ?? `not ready after ${timeoutMs} ms (${last})` };
  } finally {
    child.off("exit", onExit);
  }
}

function killAndWait(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  const binary = requireTool("docker-registry", "docker-registry");
  const auth = options.auth ?? "none";
  const users = { ...(options.users ?? { kpull: "secret" }) };
  const keep = Boolean(process.env.KPULL_KEEP_REGISTRY);
  const root = mkdtempSync(join(tmpdir(), "kpull-registry-"));
  const storageDir = join(root, "storage");
  const certDir = join(root, "certs");
  mkdirSync(storageDir);
  mkdirSync(certDir);
  installExitHook();

  let tokenServer: TokenServer | null = null;
  try {
    const tls = options.tls ? makeTlsMaterial(certDir) : null;
    let htpasswdFile: string | null = null;
    if (auth === "basic") {
      htpasswdFile = join(root, "htpasswd");
      writeHtpasswd(htpasswdFile, users);
    }
    const signing = auth === "token" ? makeSigningMaterial(certDir) : null;
    const setpriv = findTool("setpriv");
    const stdoutFile = join(root, "registry.stdout.log");
    const stderrFile = join(root, "registry.stderr.log");
    const scheme = tls ? "https" : "http";

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const host = `127.0.0.1:${port}`;
      const url = `${scheme}://${host}`;
      if (signing) {
        await tokenServer?.close();
        tokenServer = await startTokenServer({
          users,
          access: options.access ?? defaultAccess,
          service: host,
          issuer: "kpull-test-token-issuer",
          signing,
          keyHint: options.tokenKeyHint ?? "x5c",
          expiresIn: options.tokenExpiresIn ?? 300,
          tls: tls ? { cert: tls.certPem, key: tls.keyPem } : null,
        });
      }
      const configFile = join(root, "config.yml");
      writeFileSync(
        configFile,
        registryConfig({
          port,
          storageDir,
          tls,
          htpasswdFile,
          token:
            tokenServer && signing
              ? {
                  realm: tokenServer.realm,
                  service: tokenServer.service,
                  issuer: tokenServer.issuer,
                  bundle: signing.certFile,
                }
              : null,
        }),
      );
      const out = openSync(stdoutFile, "w");
      const err = openSync(stderrFile, "w");
      // setpriv --pdeathsig: the kernel kills the registry if the test process dies without cleaning up.
      const [cmd, args] = setpriv
        ? [setpriv, ["--pdeathsig", "KILL", "--", binary, "serve", configFile]]
        : [binary, ["serve", configFile]];
      const child = spawn(cmd, args, { cwd: root, stdio: ["ignore", out, err] });
      closeSync(out);
      closeSync(err);
      const pid = child.pid;
      if (pid === undefined) throw new Error(`could not spawn ${binary}`);
      live.set(pid, { root, keep });
      child.once("exit", () => live.delete(pid));

      const ready = await waitReady(url, tls?.caPem ?? null, child, options.startTimeoutMs ?? 15_000);
      if (!ready.ok) {
        await killAndWait(child, 2000);
        const stderr = tail(stderrFile);
        if (/address already in use/.test(stderr) && attempt < 5) continue;
        throw new Error(
          `docker-registry did not start (${ready.why}); config ${configFile}; stderr:\n${stderr}`,
        );
      }

      let stopping: Promise<void> | null = null;
      const ts = tokenServer;
      const registry: RunningRegistry = {
        host,
        port,
        url,
        auth,
        caFile: tls?.caFile ?? null,
        caPem: tls?.caPem ?? null,
        users,
        tokenServer: ts,
        root,
        storageDir,
        pid,
        accessLog: async ({ includeHarness = false } = {}) =>
          parseAccessLog(readFileSync(stdoutFile, "utf8")).filter(
            (e) => includeHarness || e.userAgent !== HARNESS_USER_AGENT,
          ),
        stderrTail: (lines = 20) => tail(stderrFile, lines),
        stop: () => {
          stopping ??= (async () => {
            await killAndWait(child, 3000);
            await ts?.close();
            if (!keep) rmSync(root, { recursive: true, force: true });
          })();
          return stopping;
        },
      };
      return registry;
    }
  } catch (e) {
    await tokenServer?.close();
    if (!keep) rmSync(root, { recursive: true, force: true });
    throw e;
  }
}

/**
 * node:test helper: starts a registry in before() and stops it in after() of the enclosing suite (or file).
 * Call the returned getter inside tests or hooks.
 */
export function useRegistry(options: RegistryOptions = {}): () => RunningRegistry {
  let registry: RunningRegistry | undefined;
  before(async () => {
    registry = await startRegistry(options);
  });
  after(async () => {
    await registry?.stop();
  });
  return () => {
    if (!registry) throw new Error("registry not started: call the getter inside a test or a later hook");
    return registry;
  };
}
