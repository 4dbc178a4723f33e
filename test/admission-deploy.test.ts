// The deploy manifests: every overlay builds (with a small Kustomize of our own, checked against
// `kubectl kustomize` where kubectl is installed), the objects reference each other consistently (Service,
// Deployment, PDB, webhooks, Secret, Certificate, ConfigMap, the flags of kpull serve), the webhook
// configurations say what docs/admission.md says, the manifests pass `kpull check` themselves, and
// self-signed/gen-certs.sh makes certificates the server can serve and the API server would accept, and
// installs or rotates them in the right order.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import tls from "node:tls";
import { parseAllDocuments, stringify } from "yaml";
import {
  AdmissionHandler,
  AdmissionMetrics,
  AdmissionServer,
  defaultPolicy,
} from "../src/admission/index.ts";
import { parseConfig } from "../src/check/index.ts";
import { serveHelp } from "../src/cli/commands/serve.ts";
import { run } from "../src/cli/index.ts";
import { WORKLOAD_KINDS } from "../src/manifests/index.ts";
import { applyPatch, type Json, type PatchOp } from "./admission-helpers.ts";
import { findTool } from "./harness/index.ts";

const DEPLOY = join(import.meta.dirname, "..", "deploy");
const OVERLAYS = ["base", "cert-manager", "self-signed", "audit"] as const;

// biome-ignore lint/suspicious/noExplicitAny: manifests are walked freely; each value is asserted on
type K8s = any;

function parseYaml(text: string, file: string): K8s[] {
  const docs = parseAllDocuments(text);
  const out: K8s[] = [];
  for (const d of docs) {
    assert.deepEqual(d.errors, [], file);
    const v = d.toJS();
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

/** `kustomize build` for what the deploy/ kustomizations use: resources (files, directories) and inline JSON 6902 patches with a target. */
function build(dir: string): K8s[] {
  const [k] = parseYaml(readFileSync(join(dir, "kustomization.yaml"), "utf8"), dir);
  assert.equal(k.kind, "Kustomization");
  const known = new Set(["apiVersion", "kind", "resources", "patches"]);
  for (const key of Object.keys(k))
    assert.ok(known.has(key), `${dir}: kustomization field ${key} is not handled by this test`);
  let objects: K8s[] = [];
  for (const r of k.resources ?? []) {
    const path = join(dir, r);
    assert.ok(existsSync(path), `${dir}: resource ${r} exists`);
    objects.push(
      ...(statSync(path).isDirectory() ? build(path) : parseYaml(readFileSync(path, "utf8"), path)),
    );
  }
  for (const p of k.patches ?? []) {
    const t = p.target;
    const ops = parseYaml(p.patch, `${dir} patch`)[0] as PatchOp[];
    let hits = 0;
    objects = objects.map((o) => {
      const group = String(o.apiVersion).includes("/") ? String(o.apiVersion).split("/")[0] : "";
      if (o.kind !== t.kind || o.metadata.name !== t.name || (t.group !== undefined && group !== t.group))
        return o;
      hits++;
      return applyPatch(o, ops);
    });
    assert.equal(hits, 1, `${dir}: the patch for ${t.kind}/${t.name} applies to one object`);
  }
  return objects;
}

const key = (o: K8s) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

function find(objects: K8s[], kind: string, name?: string): K8s {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ""}`);
  return found[0];
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

const RESOURCES: Record<string, [string, string]> = {
  Pod: ["", "pods"],
  PodTemplate: ["", "podtemplates"],
  ReplicationController: ["", "replicationcontrollers"],
  ReplicaSet: ["apps", "replicasets"],
  Deployment: ["apps", "deployments"],
  StatefulSet: ["apps", "statefulsets"],
  DaemonSet: ["apps", "daemonsets"],
  Job: ["batch", "jobs"],
  CronJob: ["batch", "cronjobs"],
};

async function kpullCheck(paths: string[]): Promise<{ code: number; out: string }> {
  let out = "";
  const stdin = new PassThrough();
  stdin.end("");
  const code = await run(["check", "--no-config", ...paths], {
    stdout: { write: (c: string | Uint8Array) => (out += c.toString()) },
    stderr: { write: (c: string) => (out += c) },
    stdin,
    env: {},
  });
  return { code, out };
}

describe("deploy/", () => {
  const built = Object.fromEntries(OVERLAYS.map((o) => [o, build(join(DEPLOY, o))])) as Record<
    (typeof OVERLAYS)[number],
    K8s[]
  >;

  it("every file parses and every overlay builds; kubectl kustomize agrees where it is installed", () => {
    const files = readdirSync(DEPLOY, { recursive: true, withFileTypes: true }).filter(
      (e) => e.isFile() && e.name.endsWith(".yaml"),
    );
    assert.ok(files.length >= 10);
    for (const f of files) parseYaml(readFileSync(join(f.parentPath, f.name), "utf8"), f.name);
    assert.equal(built.base.length, 8);
    assert.equal(built["cert-manager"].length, 12);
    const kubectl = findTool("kubectl");
    if (kubectl === null) return; // CI machines without kubectl: our build above stands alone
    for (const overlay of OVERLAYS) {
      let text: string;
      try {
        text = execFileSync(kubectl, ["kustomize", join(DEPLOY, overlay)], {
          encoding: "utf8",
          timeout: 60_000,
          stdio: ["ignore", "pipe", "pipe"],
        });
      } catch {
        return; // a kubectl without a usable kustomize
      }
      const theirs = new Map(parseYaml(text, overlay).map((o) => [key(o), o]));
      const ours = new Map(built[overlay].map((o) => [key(o), o]));
      assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort(), overlay);
      for (const [k, o] of ours) assert.deepEqual(o, theirs.get(k), `${overlay}: ${k}`);
    }
  });

  for (const overlay of OVERLAYS) {
    it(`${overlay}: the objects reference each other consistently`, () => {
      const objects = built[overlay];
      const ns = find(objects, "Namespace").metadata.name;
      for (const o of objects)
        if (!["Namespace", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"].includes(o.kind))
          assert.equal(o.metadata.namespace, ns, `${key(o)} lives in ${ns}`);
      const deploy = find(objects, "Deployment");
      const svc = find(objects, "Service");
      const pdb = find(objects, "PodDisruptionBudget");
      const sa = find(objects, "ServiceAccount");
      const cm = find(objects, "ConfigMap");
      const podLabels = deploy.spec.template.metadata.labels;
      assert.ok(matches(deploy.spec.selector.matchLabels, podLabels));
      assert.ok(matches(svc.spec.selector, podLabels), "the Service selects the pods");
      assert.ok(matches(pdb.spec.selector.matchLabels, podLabels), "the PDB covers the pods");
      assert.equal(pdb.spec.minAvailable, 1);
      const pod = deploy.spec.template.spec;
      assert.equal(pod.serviceAccountName, sa.metadata.name);
      assert.equal(sa.automountServiceAccountToken, false);
      const [c] = pod.containers;
      const port = c.ports.find((p: K8s) => p.name === svc.spec.ports[0].targetPort);
      assert.ok(port, "the Service's targetPort names a container port");
      assert.equal(svc.spec.ports[0].port, 443);

      // kpull serve's flags, and the files they name, exist.
      assert.deepEqual(c.command, ["kpull"]);
      assert.equal(c.args[0], "serve");
      const flags = new Map<string, string>();
      for (const a of c.args.slice(1)) {
        const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
        assert.ok(m, `flag ${a}`);
        assert.ok(serveHelp.includes(`--${m[1]}`), `kpull serve has --${m[1]}`);
        flags.set(m[1] as string, m[2] ?? "");
      }
      assert.equal(Number(flags.get("port")), port.containerPort);
      const mountOf = (file: string) => {
        const mount = c.volumeMounts.find((m: K8s) => file.startsWith(`${m.mountPath}/`));
        assert.ok(mount, `${file} is on a mounted volume`);
        assert.equal(mount.subPath, undefined, "no subPath: updates must reach the pod for reload");
        return {
          volume: pod.volumes.find((v: K8s) => v.name === mount.name),
          file: file.slice(mount.mountPath.length + 1),
        };
      };
      const cert = mountOf(flags.get("tls-cert") as string);
      const keyFile = mountOf(flags.get("tls-key") as string);
      assert.equal(cert.volume.secret.secretName, keyFile.volume.secret.secretName);
      assert.deepEqual([cert.file, keyFile.file], ["tls.crt", "tls.key"]);
      const config = mountOf(flags.get("config") as string);
      assert.equal(config.volume.configMap.name, cm.metadata.name);
      const configText = cm.data[config.file];
      assert.ok(typeof configText === "string", `the ConfigMap has ${config.file}`);
      const parsed = parseConfig(configText, config.file, "/");
      assert.equal(parsed.mode, "always-unless-pinned");

      // Probes hit the server's endpoints over HTTPS on the named port.
      for (const [probe, path] of [
        ["readinessProbe", "/readyz"],
        ["livenessProbe", "/healthz"],
        ["startupProbe", "/healthz"],
      ]) {
        assert.equal(c[probe as string].httpGet.path, path);
        assert.equal(c[probe as string].httpGet.port, port.name);
        assert.equal(c[probe as string].httpGet.scheme, "HTTPS");
      }
      assert.equal(deploy.spec.replicas, 2);
      assert.ok(c.resources.requests.cpu && c.resources.requests.memory);
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
      assert.equal(
        c.env.find((e: K8s) => e.name === "POD_NAMESPACE").valueFrom.fieldRef.fieldPath,
        "metadata.namespace",
      );
      const delay = Number.parseInt(flags.get("shutdown-delay") ?? "0", 10);
      const timeout = Number.parseInt(flags.get("shutdown-timeout") ?? "20", 10);
      assert.ok(pod.terminationGracePeriodSeconds > delay + timeout, "the grace period covers the drain");

      // The webhooks call this Service, exclude this namespace, and cover every kind with a pod spec.
      const vwc = find(objects, "ValidatingWebhookConfiguration");
      const mwc = find(objects, "MutatingWebhookConfiguration");
      for (const [config, path, failurePolicy] of [
        [vwc, "/validate", "Fail"],
        [mwc, "/mutate", "Ignore"],
      ] as const) {
        assert.equal(config.webhooks.length, 1);
        const w = config.webhooks[0];
        assert.match(w.name, /^[a-z0-9-]+(\.[a-z0-9-]+){2,}$/, "fully qualified name");
        assert.deepEqual(w.clientConfig.service, { name: svc.metadata.name, namespace: ns, path, port: 443 });
        assert.deepEqual(w.admissionReviewVersions, ["v1"]);
        assert.equal(w.sideEffects, "None");
        assert.equal(w.failurePolicy, failurePolicy);
        assert.equal(w.matchPolicy, "Equivalent");
        assert.ok(w.timeoutSeconds >= 1 && w.timeoutSeconds <= 10);
        const excluded = w.namespaceSelector.matchExpressions.find(
          (e: K8s) => e.key === "kubernetes.io/metadata.name",
        );
        assert.equal(excluded.operator, "NotIn");
        assert.ok(excluded.values.includes(ns) && excluded.values.includes("kube-system"));
        const covered = new Set<string>();
        for (const rule of w.rules) {
          assert.deepEqual(rule.operations, ["CREATE", "UPDATE"]);
          assert.deepEqual(rule.apiVersions, ["v1"]);
          assert.equal(rule.scope, "Namespaced");
          for (const g of rule.apiGroups) for (const r of rule.resources) covered.add(`${g}/${r}`);
        }
        for (const kind of WORKLOAD_KINDS) {
          const [g, r] = RESOURCES[kind] ?? ["?", "?"];
          assert.ok(covered.has(`${g}/${r}`), `${config.kind} covers ${kind}`);
        }
        assert.ok(covered.has("/pods/ephemeralcontainers"));
      }
      assert.equal(mwc.webhooks[0].reinvocationPolicy, "IfNeeded");

      if (overlay === "cert-manager" || overlay === "audit") {
        const certificate = find(objects, "Certificate", "kpull-webhook");
        assert.equal(certificate.spec.secretName, cert.volume.secret.secretName);
        assert.ok(
          certificate.spec.dnsNames.includes(`${svc.metadata.name}.${ns}.svc`),
          "SAN for the name the API server dials",
        );
        const issuer = find(objects, "Issuer", certificate.spec.issuerRef.name);
        const ca = find(objects, "Certificate", "kpull-ca");
        assert.equal(issuer.spec.ca.secretName, ca.spec.secretName);
        assert.equal(ca.spec.isCA, true);
        find(objects, "Issuer", ca.spec.issuerRef.name);
        for (const config of [vwc, mwc])
          assert.equal(
            config.metadata.annotations["cert-manager.io/inject-ca-from"],
            `${ns}/${certificate.metadata.name}`,
          );
      }
      if (overlay === "audit") {
        assert.ok(c.args.includes("--audit"));
        assert.ok(c.args.includes("--mutate=none"));
      } else assert.ok(!c.args.includes("--audit"));
    });
  }

  it("the manifests pass kpull check, as written and as built", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kpull-deploy-"));
    const files = OVERLAYS.map((o) => {
      const file = join(dir, `${o}.yaml`);
      writeFileSync(file, built[o].map((x) => JSON.stringify(x)).join("\n"));
      return file;
    });
    const res = await kpullCheck([DEPLOY, ...files]);
    assert.equal(res.code, 0, res.out);
    assert.match(res.out, /^No findings/m);
  });

  it("self-signed/gen-certs.sh: a CA and a serving certificate the API server would accept; --install and --apply put them in place", async () => {
    const objects = built["self-signed"];
    const svc = find(objects, "Service");
    const ns = svc.metadata.namespace;
    const dnsName = `${svc.metadata.name}.${ns}.svc`;
    const dir = mkdtempSync(join(tmpdir(), "kpull-gen-certs-"));
    const out = join(dir, "certs");
    const script = join(DEPLOY, "self-signed", "gen-certs.sh");
    const text = execFileSync("bash", [script, "--out", out], { encoding: "utf8", timeout: 60_000 });
    assert.match(text, /certificates written to/);
    const ca = new X509Certificate(readFileSync(join(out, "ca.crt")));
    const crt = new X509Certificate(readFileSync(join(out, "tls.crt")));
    assert.ok(crt.verify(ca.publicKey), "signed by the CA");
    assert.equal(crt.checkHost(dnsName), dnsName, "SAN for the Service's DNS name");
    assert.ok(ca.ca && !crt.ca);
    assert.match(text, new RegExp(`caBundle: ${readFileSync(join(out, "ca.crt")).toString("base64")}`));

    // The server serves them; a client that dials the Service name and trusts only the CA connects.
    const metrics = new AdmissionMetrics();
    const server = await AdmissionServer.start({
      handler: new AdmissionHandler({ policy: defaultPolicy(), metrics }),
      metrics,
      certFile: join(out, "tls.crt"),
      keyFile: join(out, "tls.key"),
      port: 0,
      host: "127.0.0.1",
    });
    try {
      const authorized = await new Promise<boolean>((resolve, reject) => {
        const s = tls.connect(
          {
            host: "127.0.0.1",
            port: server.port,
            servername: dnsName,
            ca: readFileSync(join(out, "ca.crt")),
            ALPNProtocols: ["h2"],
          },
          () => {
            resolve(s.authorized);
            s.end();
          },
        );
        s.on("error", reject);
      });
      assert.equal(authorized, true);
    } finally {
      await server.shutdown();
    }

    // --install and --apply with a stand-in kubectl that records what it is asked to do; its `kustomize`
    // prints our build of the overlay.
    const bin = join(dir, "bin");
    const log = join(dir, "kubectl.log");
    const rendered = join(dir, "rendered.yaml");
    writeFileSync(rendered, objects.map((o) => stringify(o)).join("---\n"));
    execFileSync("mkdir", ["-p", bin]);
    writeFileSync(
      join(bin, "kubectl"),
      `#!/bin/sh\necho "kubectl $*" >> ${log}\nif [ "$1" = kustomize ]; then cat ${rendered}; fi\nif [ "$1" = apply ] && [ "$3" = - ]; then cat > ${log}.$$.stdin; fi\n`,
    );
    chmodSync(join(bin, "kubectl"), 0o755);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    const secretName = find(objects, "Deployment").spec.template.spec.volumes.find((v: K8s) => v.secret)
      .secret.secretName;
    const vwc = find(objects, "ValidatingWebhookConfiguration").metadata.name;
    const mwc = find(objects, "MutatingWebhookConfiguration").metadata.name;

    execFileSync("bash", [script, "--out", join(dir, "installed"), "--install"], {
      encoding: "utf8",
      env,
      timeout: 60_000,
    });
    const installed = readFileSync(log, "utf8");
    const installBundle = readFileSync(join(dir, "installed", "ca.crt")).toString("base64");
    const steps = installed.split("\n").filter((l) => l.startsWith("kubectl "));
    assert.match(
      steps[0] ?? "",
      /^kubectl apply -f .*deploy\/self-signed\/\.\.\/base\/namespace\.yaml$/,
      "the namespace first",
    );
    // The commands of a pipeline start together: their order in the log is not fixed.
    const secretLine = new RegExp(
      `^kubectl -n ${ns} create secret tls ${secretName} --cert=.*tls\\.crt --key=.*tls\\.key --dry-run=client -o yaml$`,
    );
    assert.ok(
      steps.slice(1, 3).some((l) => secretLine.test(l)),
      "then the Secret",
    );
    assert.ok(
      steps.slice(3).some((l) => /^kubectl kustomize .*deploy\/self-signed$/.test(l)),
      "then the overlay",
    );
    // What the last `kubectl apply -f -` read (each stand-in run keeps its stdin in a file of its own).
    const appliedText = readdirSync(dir)
      .filter((f) => f.endsWith(".stdin"))
      .map((f) => readFileSync(join(dir, f), "utf8"))
      .find((t) => t.includes("ValidatingWebhookConfiguration"));
    assert.ok(appliedText !== undefined, "the overlay was applied");
    const applied = parseYaml(appliedText, "applied");
    assert.equal(applied.length, objects.length);
    for (const kind of ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"])
      assert.equal(
        find(applied, kind).webhooks[0].clientConfig.caBundle,
        installBundle,
        `${kind} created with its CA`,
      );

    writeFileSync(log, "");
    execFileSync("bash", [script, "--out", join(dir, "applied"), "--apply"], {
      encoding: "utf8",
      env,
      timeout: 60_000,
    });
    const calls = readFileSync(log, "utf8");
    const bundle = readFileSync(join(dir, "applied", "ca.crt")).toString("base64");
    assert.match(
      calls,
      new RegExp(
        `kubectl -n ${ns} create secret tls ${secretName} --cert=.*tls\\.crt --key=.*tls\\.key --dry-run=client -o yaml`,
      ),
    );
    assert.match(calls, /kubectl apply -f -/);
    for (const [kind, name] of [
      ["validatingwebhookconfiguration", vwc],
      ["mutatingwebhookconfiguration", mwc],
    ]) {
      const line = calls
        .split("\n")
        .find((l) => l.startsWith(`kubectl patch ${kind} ${name} --type=json -p `));
      assert.ok(line, `${kind} patched`);
      const patch = JSON.parse(line.slice(line.indexOf("-p ") + 3)) as PatchOp[];
      const patched = applyPatch(
        find(
          objects,
          kind === "validatingwebhookconfiguration"
            ? "ValidatingWebhookConfiguration"
            : "MutatingWebhookConfiguration",
        ) as Json,
        patch,
      ) as K8s;
      assert.equal(patched.webhooks[0].clientConfig.caBundle, bundle);
    }
  });
});
