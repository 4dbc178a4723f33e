import { readFileSync } from "node:fs";
import {
  AdmissionHandler,
  AdmissionMetrics,
  type AdmissionPolicy,
  AdmissionServer,
  DEFAULT_MAX_BODY_BYTES,
  isMutationMode,
  MUTATION_MODES,
  type MutationMode,
  PinCache,
  type PinFailure,
  registryDigestLookup,
} from "../../admission/index.ts";
import { ConfigError, defaultConfig, isMode, loadConfig, MODES, type Mode } from "../../check/index.ts";
import { RegistryClient } from "../../registry/index.ts";
import { parseDuration } from "../../store/index.ts";
import { parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import { credentialsFrom, type RegistryFlagValues, registryClientOptionsFrom } from "../registry-options.ts";

export const serveHelp = `Serve the admission webhook: the cluster enforces the policy kpull check enforces in CI.

Examples:
  # Validate and mutate with the mode and rules of .kpull.yaml (reloaded when the file changes)
  kpull serve --tls-cert /tls/tls.crt --tls-key /tls/tls.key --config /etc/kpull/.kpull.yaml

  # Audit first: findings come back as warnings, nothing is denied, nothing is changed
  kpull serve --tls-cert tls.crt --tls-key tls.key --audit --mutate none

  # Behave like the AlwaysPullImages admission plugin, and pin tags to digests (fail open)
  kpull serve --tls-cert tls.crt --tls-key tls.key --mutate always-pull-images --pin

Usage:
  kpull serve --tls-cert FILE --tls-key FILE [--config .kpull.yaml] [--mode MODE] [--port 8443] [flags]

Endpoints (HTTPS, HTTP/2 and HTTP/1.1 on one port):
  POST /validate   AdmissionReview admission.k8s.io/v1: deny on findings of severity error (warnings for
                   the rest); on UPDATE only what the update introduces is judged
  POST /mutate     JSONPatch: imagePullPolicy where the mode needs it (--mutate), digests (--pin)
  GET  /healthz    liveness;  GET /readyz  readiness (503 while shutting down);  GET /metrics  Prometheus

Policy flags:
  -c, --config FILE            .kpull.yaml (mode, rules); re-read when it changes (default: built-in rules)
  -m, --mode MODE              always | always-unless-pinned (default) | pinned | never; overrides the config
      --no-annotations         ignore kpull/ignore and kpull/mode annotations
      --audit                  never deny: findings of every severity become warnings
      --exempt-namespace NS    admit requests in NS untouched; repeatable (default: the server's own
                               namespace and kube-system)
      --namespace NS           the server's own namespace (default: $POD_NAMESPACE)
      --mutate MODE            pull-policy (default): set imagePullPolicy as kpull fix would;
                               always-pull-images: as the AlwaysPullImages admission plugin; none
      --image-volumes          always-pull-images: set image volumes' pullPolicy: Always too
      --pin                    /mutate resolves image tags to digests (name:tag@sha256:...)
      --pin-failure open|closed  a tag that cannot be resolved is admitted unpinned (open, default) or denied
      --pin-timeout DURATION   time budget for a request's lookups (default 2s)
      --pin-cache-ttl DURATION how long a resolved digest is reused (default 5m)

Registry flags (for --pin):
  --pull-secret FILE, --docker-config DIR, --hosts-dir DIR, --insecure-registry HOST   as in kpull pull

Server flags:
      --port PORT              default 8443
      --address ADDR           default :: (all addresses)
      --tls-cert FILE          PEM certificate chain; re-read when it changes
      --tls-key FILE           PEM private key; re-read when it changes
      --max-body BYTES         largest request body (default ${DEFAULT_MAX_BODY_BYTES}; suffixes Ki, Mi)
      --request-timeout DUR    a request must arrive in full within this (default 10s)
      --shutdown-delay DUR     on SIGTERM, keep serving this long with /readyz at 503 (default 0s)
      --shutdown-timeout DUR   then cut off requests still running after this (default 20s)
      --reload-interval DUR    how often the certificate and config files are read (default 2s)
  -h, --help                   show this help

Exit status: 0 after a graceful shutdown (SIGTERM or SIGINT), 1 the server failed, 2 bad usage, a bad
config file, or an unreadable certificate. See docs/admission.md for the deploy manifests.
`;

const options = {
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  config: { type: "string", short: "c" },
  mode: { type: "string", short: "m" },
  "no-annotations": { type: "boolean" },
  audit: { type: "boolean" },
  "exempt-namespace": { type: "string", multiple: true },
  namespace: { type: "string" },
  mutate: { type: "string" },
  "image-volumes": { type: "boolean" },
  pin: { type: "boolean" },
  "pin-failure": { type: "string" },
  "pin-timeout": { type: "string" },
  "pin-cache-ttl": { type: "string" },
  "pull-secret": { type: "string", multiple: true },
  "docker-config": { type: "string" },
  "hosts-dir": { type: "string" },
  "insecure-registry": { type: "string", multiple: true },
  port: { type: "string" },
  address: { type: "string" },
  "max-body": { type: "string" },
  "request-timeout": { type: "string" },
  "shutdown-delay": { type: "string" },
  "shutdown-timeout": { type: "string" },
  "reload-interval": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function duration(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch {
    throw new UsageError("serve", `invalid --${flag} "${value}": use a duration such as 500ms, 2s or 5m`);
  }
  if (ms < 0) throw new UsageError("serve", `invalid --${flag} "${value}": must not be negative`);
  return ms;
}

function bytes(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(value);
  if (m === null || Number(m[1]) <= 0)
    throw new UsageError(
      "serve",
      `invalid --${flag} "${value}": use a number of bytes such as 6291456 or 6Mi`,
    );
  const unit = m[2] === "Ki" ? 1024 : m[2] === "Mi" ? 1024 ** 2 : m[2] === "Gi" ? 1024 ** 3 : 1;
  return Number(m[1]) * unit;
}

/** The server's own namespace: the flag, else $POD_NAMESPACE (the downward API), else none. */
function ownNamespace(flag: string | undefined, io: CliIo): string | null {
  if (flag !== undefined && flag !== "") return flag;
  const env = io.env.POD_NAMESPACE;
  if (env !== undefined && env !== "") return env;
  try {
    const text = readFileSync("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "utf8").trim();
    return text === "" ? null : text;
  } catch {
    return null;
  }
}

export async function serveCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs("serve", argv, options);
  if (values.help) {
    io.stdout.write(serveHelp);
    return ExitCode.ok;
  }
  if (positionals.length > 0) throw new UsageError("serve", `unexpected argument "${positionals[0]}"`);
  const certFile = values["tls-cert"];
  const keyFile = values["tls-key"];
  if (certFile === undefined || keyFile === undefined)
    throw new UsageError(
      "serve",
      "--tls-cert and --tls-key are required (the API server calls webhooks over HTTPS)",
    );
  let mode: Mode | undefined;
  if (values.mode !== undefined) {
    if (!isMode(values.mode))
      throw new UsageError("serve", `unknown mode "${values.mode}": modes are ${MODES.join(", ")}`);
    mode = values.mode;
  }
  const mutation: MutationMode = (values.mutate ?? "pull-policy") as MutationMode;
  if (!isMutationMode(mutation))
    throw new UsageError("serve", `unknown --mutate "${values.mutate}": choose ${MUTATION_MODES.join(", ")}`);
  const pinFailure = (values["pin-failure"] ?? "open") as PinFailure;
  if (pinFailure !== "open" && pinFailure !== "closed")
    throw new UsageError("serve", `invalid --pin-failure "${values["pin-failure"]}": choose open or closed`);
  const pinTimeout = duration("pin-timeout", values["pin-timeout"], 2000);
  const pinTtl = duration("pin-cache-ttl", values["pin-cache-ttl"], 5 * 60_000);
  if (
    !values.pin &&
    (values["pin-failure"] ?? values["pin-timeout"] ?? values["pin-cache-ttl"]) !== undefined
  )
    throw new UsageError("serve", "--pin-failure, --pin-timeout and --pin-cache-ttl need --pin");
  if (values["image-volumes"] && mutation !== "always-pull-images")
    throw new UsageError("serve", "--image-volumes applies to --mutate always-pull-images");
  const portText = values.port ?? "8443";
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535)
    throw new UsageError("serve", `invalid --port "${portText}": a number from 0 to 65535`);
  const requestTimeout = duration("request-timeout", values["request-timeout"], 10_000);
  if (requestTimeout === 0) throw new UsageError("serve", "--request-timeout must be positive");
  if (values.pin && pinTimeout >= requestTimeout)
    throw new UsageError("serve", "--pin-timeout must be shorter than --request-timeout");

  const own = ownNamespace(values.namespace, io);
  const exemptNamespaces = values["exempt-namespace"] ?? [...(own === null ? [] : [own]), "kube-system"];
  const configFile = values.config;
  const log = (message: string) => io.stderr.write(`${new Date().toISOString()} kpull serve: ${message}\n`);

  const loadPolicy = async (): Promise<AdmissionPolicy> => {
    const config = configFile === undefined ? defaultConfig() : await loadConfig(configFile);
    const effective = mode ?? config.mode;
    if (mutation === "always-pull-images" && effective === "never")
      throw new ConfigError(configFile ?? "--mode", "mode never contradicts --mutate always-pull-images");
    return {
      config,
      mode,
      annotations: !values["no-annotations"],
      action: values.audit ? "warn" : "deny",
      exemptNamespaces,
      mutation,
      imageVolumes: values["image-volumes"] ?? false,
      pin: values.pin ? { failure: pinFailure, budgetMs: pinTimeout } : null,
    };
  };
  let policy: AdmissionPolicy;
  try {
    policy = await loadPolicy();
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr.write(`error: ${error.message}\n`);
      return ExitCode.usage;
    }
    throw error;
  }

  const metrics = new AdmissionMetrics();
  let client: RegistryClient | null = null;
  let pinCache: PinCache | null = null;
  if (values.pin) {
    const registry: RegistryFlagValues = values;
    client = new RegistryClient({
      credentials: credentialsFrom("serve", registry, io),
      ...registryClientOptionsFrom(registry),
      attempts: 2,
      headersTimeoutMs: pinTimeout,
      stallTimeoutMs: pinTimeout,
    });
    pinCache = new PinCache({ lookup: registryDigestLookup(client), ttlMs: pinTtl, timeoutMs: pinTimeout });
  }
  const handler = new AdmissionHandler({ policy, pinCache, metrics });
  const describe = (p: AdmissionPolicy) => ({
    mode: p.mode ?? p.config.mode ?? "always-unless-pinned",
    mutation: p.mutation,
    action: p.action,
    pin: p.pin === null ? "off" : `fail-${p.pin.failure}`,
  });
  metrics.configInfo.set(describe(policy), 1);

  const d = describe(policy);
  log(
    `mode ${d.mode}, ${d.action === "warn" ? "audit (never denies)" : "enforcing"}, mutate ${d.mutation}, pin ${d.pin}; exempt namespaces: ${exemptNamespaces.join(", ") || "none"}`,
  );

  let server: AdmissionServer;
  try {
    server = await AdmissionServer.start({
      handler,
      metrics,
      certFile,
      keyFile,
      port,
      host: values.address ?? "::",
      maxBodyBytes: bytes("max-body", values["max-body"], DEFAULT_MAX_BODY_BYTES),
      requestTimeoutMs: requestTimeout,
      shutdownDelayMs: duration("shutdown-delay", values["shutdown-delay"], 0),
      shutdownTimeoutMs: duration("shutdown-timeout", values["shutdown-timeout"], 20_000),
      reloadIntervalMs: Math.max(50, duration("reload-interval", values["reload-interval"], 2000)),
      ...(configFile !== undefined
        ? {
            policySource: {
              files: [configFile],
              load: async () => {
                const next = await loadPolicy();
                metrics.configInfo.set(describe(handler.policy), 0);
                metrics.configInfo.set(describe(next), 1);
                return next;
              },
            },
          }
        : {}),
      log,
    });
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    await client?.close();
    if (e.code === "ENOENT" || e.code === "EACCES" || /key|certificate|PEM/i.test(e.message)) {
      io.stderr.write(`error: cannot use the serving certificate: ${e.message}\n`);
      return ExitCode.usage;
    }
    io.stderr.write(`error: cannot serve: ${e.message}\n`);
    return ExitCode.findings;
  }

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log(`${signal} received`);
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      resolve();
    };
    const onTerm = () => stop("SIGTERM");
    const onInt = () => stop("SIGINT");
    process.on("SIGTERM", onTerm);
    process.on("SIGINT", onInt);
  });
  await server.shutdown();
  await client?.close();
  return ExitCode.ok;
}
