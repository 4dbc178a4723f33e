// A real containerd (Debian `containerd`, 1.6) for CRI tests: an ordinary child process with its own
// version-2 config, root, state, temp dir and socket under one temp dir, the CRI plugin on, the `native`
// snapshotter (plain directory copies: no overlay mounts to leak when a test dies, and the same behaviour
// whatever the sandbox allows), no CNI config (CRI logs "failed to load cni during init" and serves images
// all the same), and `registry.config_path` pointing at a hosts dir the test fills with `hosts.toml` files
// for its loopback registries. Stopped by stop(), by useContainerd()'s after(), on process exit, and by the
// kernel (setpriv --pdeathsig) if the test process dies; stop() kills the whole process group, unmounts
// anything left mounted under the temp dir and removes it.

import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CriError, CriImageService } from "../../src/cri/index.ts";
import type { RunningRegistry } from "./registry.ts";
import { findTool, requireTool } from "./tools.ts";

export interface ContainerdOptions {
  /** Snapshotter for the CRI plugin; default "native" (works wherever containerd runs as root). */
  snapshotter?: "native" | "overlayfs";
  /** Registries to write hosts.toml for at start (more with addRegistry()). */
  registries?: readonly RunningRegistry[];
  /** false starts containerd with the CRI plugin disabled: a gRPC server that does not serve runtime.v1. */
  cri?: boolean;
  /** CRI `stats_collect_period` in seconds (how stale ImageFsInfo may be); default 1 (containerd: 10). */
  statsCollectPeriodSeconds?: number;
  /** TOML appended to the CRI plugin's table `[plugins."io.containerd.grpc.v1.cri"]`. */
  criConfig?: string;
  /** readiness timeout, ms; default 20000 */
  startTimeoutMs?: number;
}

/** One line of `ctr images ls`. */
export interface CtrImage {
  readonly ref: string;
  readonly mediaType: string;
  /** the digest the name points at (manifest or index), not the config digest CRI calls the image ID */
  readonly digest: string;
  readonly size: string;
  readonly platforms: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface RunningContainerd {
  /** temp dir holding config.toml, root/, state/, tmp/, hosts/, containerd.log and the socket */
  readonly dir: string;
  readonly socketPath: string;
  /** `unix:///…/containerd.sock` */
  readonly endpoint: string;
  readonly configFile: string;
  /** registry.config_path */
  readonly hostsDir: string;
  readonly snapshotter: string;
  readonly pid: number;
  /** Writes `<hostsDir>/<host>/hosts.toml` making `registry` reachable (plain HTTP, or HTTPS with its CA). */
  addRegistry(registry: RunningRegistry): void;
  /** Writes a hosts.toml of the caller's own for `host` (`127.0.0.1:5000`). */
  writeHosts(host: string, toml: string): void;
  /** Runs `ctr --address <socket> …`; rejects with stderr when ctr fails. */
  ctr(args: readonly string[]): Promise<string>;
  /** `ctr -n <namespace> images ls`, parsed (namespace default `k8s.io`, where CRI keeps its images). */
  ctrImages(namespace?: string): Promise<CtrImage[]>;
  /** Last lines of containerd's log, for failure messages. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

const live = new Map<number, { dir: string; keep: boolean }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const [pid, { dir, keep }] of live) {
      killGroup(pid, "SIGKILL");
      if (!keep) removeDir(dir);
    }
    live.clear();
  });
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal); // the process group spawn({detached}) created: containerd and any shim
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Mountpoints at or below `dir`, deepest first (octal escapes of /proc/self/mountinfo decoded). */
function mountsUnder(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  const decodeOctal = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  return text
    .split("\n")
    .map((line) => decodeOctal(line.split(" ")[4] ?? ""))
    .filter((mp) => mp === dir || mp.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmount what a killed containerd may have left mounted (temp mounts while unpacking), then remove. */
function removeDir(dir: string): void {
  for (const mp of mountsUnder(dir)) {
    try {
      execFileSync("umount", ["-l", mp], { stdio: "ignore" });
    } catch {
      // not ours to unmount, or already gone: rmSync below then fails loudly rather than recursing into it
    }
  }
  if (mountsUnder(dir).length > 0) return; // never rm -r across a mount
  rmSync(dir, { recursive: true, force: true });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

const toml = (s: string) => JSON.stringify(s); // JSON strings are valid TOML basic strings

function containerdConfig(c: {
  dir: string;
  socket: string;
  hostsDir: string;
  snapshotter: string;
  cri: boolean;
  statsPeriod: number;
  criConfig: string;
}): string {
  const d = (name: string) => toml(join(c.dir, name));
  const disabled = [
    // snapshotters that probe the host and cannot work here; leaving them out keeps the log readable
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
    "io.containerd.internal.v1.tracing",
    ...(c.cri ? [] : ["io.containerd.grpc.v1.cri"]),
  ];
  return [
    "version = 2",
    `root = ${d("root")}`,
    `state = ${d("state")}`,
    `temp = ${d("tmp")}`,
    `disabled_plugins = [${disabled.map(toml).join(", ")}]`,
    "",
    "[grpc]",
    `  address = ${toml(c.socket)}`,
    "[ttrpc]",
    `  address = ${toml(`${c.socket}.ttrpc`)}`,
    "[debug]",
    '  address = ""',
    '  level = "info"',
    "[metrics]",
    '  address = ""',
    "",
    "[plugins]",
    '  [plugins."io.containerd.internal.v1.opt"]',
    `    path = ${d("opt")}`,
    '  [plugins."io.containerd.grpc.v1.cri"]',
    "    disable_tcp_service = true",
    '    stream_server_address = "127.0.0.1"',
    '    stream_server_port = "0"',
    `    stats_collect_period = ${c.statsPeriod}`,
    c.criConfig,
    '    [plugins."io.containerd.grpc.v1.cri".containerd]',
    `      snapshotter = ${toml(c.snapshotter)}`,
    '    [plugins."io.containerd.grpc.v1.cri".cni]',
    `      bin_dir = ${d("cni/bin")}`,
    `      conf_dir = ${d("cni/net.d")}`,
    '    [plugins."io.containerd.grpc.v1.cri".registry]',
    `      config_path = ${toml(c.hostsDir)}`,
    "",
  ].join("\n");
}

/** hosts.toml that sends pulls for the registry's host:port to it (with its CA when it serves TLS). */
export function hostsTomlFor(registry: RunningRegistry): string {
  const lines = [`server = ${toml(registry.url)}`, "", `[host.${toml(registry.url)}]`];
  lines.push('  capabilities = ["pull", "resolve"]');
  if (registry.caFile) lines.push(`  ca = ${toml(registry.caFile)}`);
  return `${lines.join("\n")}\n`;
}

export function parseCtrImages(text: string): CtrImage[] {
  const out: CtrImage[] = [];
  for (const line of text.split("\n").slice(1)) {
    // REF TYPE DIGEST SIZE PLATFORMS LABELS, where SIZE is two words ("1.2 KiB")
    const f = line.trim().split(/\s+/);
    if (f.length < 7) continue;
    const [ref, mediaType, digest, sizeValue, sizeUnit, platforms, labelText] = f as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const labels: Record<string, string> = {};
    if (labelText !== "-")
      for (const kv of labelText.split(",")) {
        const eq = kv.indexOf("=");
        if (eq > 0) labels[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
    out.push({ ref, mediaType, digest, size: `${sizeValue} ${sizeUnit}`, platforms, labels });
  }
  return out;
}

async function waitReady(
  endpoint: string,
  cri: boolean,
  socket: string,
  child: ChildProcess,
  timeoutMs: number,
): Promise<{ ok: true } | { ok: false; why: string }> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | null = null;
  const onExit = (code: number | null, signal: string | null) => {
    exited = `exited with ${signal ?? `code ${code}`}`;
  };
  child.once("exit", onExit);
  const client = new CriImageService(endpoint, { timeoutMs: 2000, statfs: false });
  try {
    let last = "no socket";
    while (Date.now() < deadline) {
      if (exited) return { ok: false, why: exited };
      if (existsSync(socket)) {
        try {
          // CRI answers "server is not initialized yet" until its own start-up is done; without CRI the
          // server is ready when it answers at all (Unimplemented).
          await client.imageFsInfo();
          return { ok: true };
        } catch (e) {
          if (!cri && e instanceof CriError && e.code === "UNSUPPORTED_API") return { ok: true };
          last = (e as Error).message;
        }
      }
      await sleep(50);
    }
    return { ok: false, why: exited ?? `not ready after ${timeoutMs} ms (${last})` };
  } finally {
    client.close();
    child.off("exit", onExit);
  }
}

function stopChild(child: ChildProcess, pid: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      killGroup(pid, "SIGKILL"); // stragglers of the group, if any
      resolve();
      return;
    }
    const timer = setTimeout(() => killGroup(pid, "SIGKILL"), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      killGroup(pid, "SIGKILL");
      resolve();
    });
    killGroup(pid, "SIGTERM");
  });
}

export async function startContainerd(options: ContainerdOptions = {}): Promise<RunningContainerd> {
  if (process.getuid?.() !== 0) throw new Error("containerd needs root: run the CRI tests as root");
  const binary = requireTool("containerd", "containerd");
  const ctrBinary = requireTool("ctr", "containerd");
  const keep = Boolean(process.env.KPULL_KEEP_CONTAINERD);
  const dir = mkdtempSync(join(tmpdir(), "kpull-containerd-"));
  const socketPath = join(dir, "containerd.sock");
  const endpoint = `unix://${socketPath}`;
  const hostsDir = join(dir, "hosts");
  const configFile = join(dir, "config.toml");
  const logFile = join(dir, "containerd.log");
  const snapshotter = options.snapshotter ?? "native";
  const cri = options.cri ?? true;
  for (const sub of ["root", "state", "tmp", "opt", "cni/bin", "cni/net.d", "hosts"])
    mkdirSync(join(dir, sub), { recursive: true });
  installExitHook();

  const writeHosts = (host: string, text: string) => {
    mkdirSync(join(hostsDir, host), { recursive: true });
    writeFileSync(join(hostsDir, host, "hosts.toml"), text);
  };
  const addRegistry = (registry: RunningRegistry) => writeHosts(registry.host, hostsTomlFor(registry));

  try {
    for (const registry of options.registries ?? []) addRegistry(registry);
    writeFileSync(
      configFile,
      containerdConfig({
        dir,
        socket: socketPath,
        hostsDir,
        snapshotter,
        cri,
        statsPeriod: options.statsCollectPeriodSeconds ?? 1,
        criConfig: options.criConfig ?? "",
      }),
    );
    const log = openSync(logFile, "w");
    const setpriv = findTool("setpriv");
    // setpriv --pdeathsig: the kernel kills containerd if the test process dies without cleaning up.
    const [cmd, args] = setpriv
      ? [setpriv, ["--pdeathsig", "KILL", "--", binary, "--config", configFile]]
      : [binary, ["--config", configFile]];
    const child = spawn(cmd, args, { cwd: dir, stdio: ["ignore", log, log], detached: true });
    closeSync(log);
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not spawn ${binary}`);
    live.set(pid, { dir, keep });
    child.once("exit", () => live.delete(pid));

    const ready = await waitReady(endpoint, cri, socketPath, child, options.startTimeoutMs ?? 20_000);
    if (!ready.ok) {
      await stopChild(child, pid, 2000);
      live.delete(pid);
      const why = `containerd did not start (${ready.why}); config ${configFile}; log:\n${tail(logFile)}`;
      if (!keep) removeDir(dir);
      throw new Error(why);
    }

    let stopping: Promise<void> | null = null;
    const ctr = (args: readonly string[]) =>
      new Promise<string>((resolve, reject) => {
        execFile(
          ctrBinary,
          ["--address", socketPath, ...args],
          { timeout: 30_000 },
          (error, stdout, stderr) => {
            if (error) reject(new Error(`ctr ${args.join(" ")}: ${stderr || error.message}`));
            else resolve(stdout);
          },
        );
      });
    return {
      dir,
      socketPath,
      endpoint,
      configFile,
      hostsDir,
      snapshotter,
      pid,
      addRegistry,
      writeHosts,
      ctr,
      ctrImages: async (namespace = "k8s.io") => parseCtrImages(await ctr(["-n", namespace, "images", "ls"])),
      logTail: (lines = 30) => tail(logFile, lines),
      stop: () => {
        stopping ??= (async () => {
          await stopChild(child, pid, 5000);
          live.delete(pid);
          if (!keep) removeDir(dir);
        })();
        return stopping;
      },
    };
  } catch (e) {
    if (!keep && !Array.from(live.values()).some((v) => v.dir === dir)) removeDir(dir);
    throw e;
  }
}

/**
 * node:test helper: starts containerd in before() and stops it in after() of the enclosing suite (or file).
 * `options` may be a function, called in before(), so it can read registries started by earlier hooks —
 * inside a describe() only: at a file's top level node:test runs before() hooks concurrently. containerd
 * reads hosts.toml at each pull, so addRegistry() in a later hook or test works as well.
 */
export function useContainerd(
  options: ContainerdOptions | (() => ContainerdOptions) = {},
): () => RunningContainerd {
  let containerd: RunningContainerd | undefined;
  before(async () => {
    containerd = await startContainerd(typeof options === "function" ? options() : options);
  });
  after(async () => {
    await containerd?.stop();
  });
  return () => {
    if (!containerd) throw new Error("containerd not started: call the getter inside a test or a later hook");
    return containerd;
  };
}
