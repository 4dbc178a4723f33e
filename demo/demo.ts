// kpull's demo: a real registry on loopback, a sample image pushed with kpull, and the pull policies walked
// through with real requests, counted at the registry. Run with `npm run demo`; exits non-zero if kpull
// does not behave as narrated.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RegistryClient } from "../src/registry/index.ts";
import { buildImage, pushFixture, type RunningRegistry, startRegistry } from "../test/harness/index.ts";

const BIN = resolve(import.meta.dirname, "..", "bin", "kpull.js");
const color = process.stdout.isTTY
  ? (code: number, s: string) => `\x1b[${code}m${s}\x1b[0m`
  : (_: number, s: string) => s;
const bold = (s: string) => color(1, s);
const dim = (s: string) => color(2, s);

let failures = 0;

function expect(ok: boolean, what: string): void {
  if (ok) return;
  failures++;
  console.log(color(31, `  ✗ expected: ${what}`));
}

interface Run {
  code: number | null;
  json: Record<string, unknown> | null;
  stderr: string;
}

function kpull(args: string[], stdin = ""): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, DOCKER_CONFIG: dockerConfig },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c;
    });
    child.stderr.on("data", (c: Buffer) => {
      err += c;
    });
    child.on("error", fail);
    child.on("close", (code) => {
      let json: Record<string, unknown> | null = null;
      try {
        json = JSON.parse(out);
      } catch {
        json = null;
      }
      done({ code, json, stderr: err });
    });
    child.stdin.end(stdin);
  });
}

const work = mkdtempSync(join(tmpdir(), "kpull-demo-"));
const root = join(work, "store");
const hostsDir = join(work, "certs.d");
const dockerConfig = join(work, "docker");
let registry: RunningRegistry | null = null;

async function requestsSince(r: RunningRegistry, mark: number): Promise<{ text: string; methods: string[] }> {
  const log = (await r.accessLog()).slice(mark);
  const methods = log.map((e) => e.method);
  const counts = new Map<string, number>();
  for (const m of methods) counts.set(m, (counts.get(m) ?? 0) + 1);
  const text = counts.size === 0 ? "no request" : [...counts].map(([m, n]) => `${n} ${m}`).join(", ");
  return { text, methods };
}

async function step(
  r: RunningRegistry,
  title: string,
  image: string,
  policy: string,
  check: (run: Run, methods: string[]) => void,
): Promise<Run> {
  const mark = (await r.accessLog()).length;
  const args = ["pull", "-o", "json", "--root", root, "--hosts-dir", hostsDir, "--policy", policy, image];
  const run = await kpull(args);
  const seen = await requestsSince(r, mark);
  const j = run.json ?? {};
  const result =
    j.action === "failed"
      ? color(33, `${j.code}: ${j.message}`)
      : `${j.action}, digest ${String(j.digest).slice(0, 19)}…`;
  console.log(`\n${bold(title)}`);
  console.log(dim(`  $ kpull pull --policy ${policy} ${image}`));
  console.log(`  kpull: ${result}`);
  console.log(`  registry saw: ${seen.text}${j.bytesFetched ? `; ${j.bytesFetched} bytes fetched` : ""}`);
  check(run, seen.methods);
  return run;
}

async function main(): Promise<void> {
  console.log(bold("kpull demo: Kubernetes image pull policies against a real registry\n"));
  registry = await startRegistry();
  const r = registry;
  console.log(`Started CNCF Distribution (docker-registry) on ${r.host}; store at ${root}`);
  const client = new RegistryClient({ hostsDir });
  const base = { "etc/os-release": "ID=kpull-demo\n", "bin/app": "#!/bin/sh\necho v1\n" };
  const v1 = buildImage({ layers: [base, { "srv/index.html": "<h1>version 1</h1>\n" }] });
  const v2 = buildImage({ layers: [base, { "srv/index.html": "<h1>version 2</h1>\n" }] });
  const tools = buildImage({ layers: [{ "bin/debug": "#!/bin/sh\n" }] });
  await pushFixture(r, "demo/web", "stable", v1, client);
  await pushFixture(r, "demo/tools", "1.0", tools, client);
  console.log(
    `Pushed ${r.host}/demo/web:stable (${v1.layers.length} layers) and demo/tools:1.0 with kpull's own push path.`,
  );

  const web = `${r.host}/demo/web:stable`;
  const explain = await kpull(["explain", "-o", "json", web, `${r.host}/demo/web`]);
  const [tagged, untagged] = (explain.json?.containers ?? []) as {
    effectivePullPolicy: string;
    reason: string;
  }[];
  console.log(`\n${bold("What the API server would set")}`);
  console.log(`  ${web}: ${tagged?.effectivePullPolicy} (${tagged?.reason})`);
  console.log(`  ${r.host}/demo/web: ${untagged?.effectivePullPolicy} (${untagged?.reason})`);

  await step(
    r,
    "1. First start (IfNotPresent, the default for a versioned tag): the image is pulled",
    web,
    "IfNotPresent",
    (run, m) => {
      expect(run.json?.action === "pulled", "the first start pulls");
      expect(m.filter((x) => x === "HEAD").length === 1, "one HEAD to resolve the tag");
    },
  );
  await step(r, "2. Next start under Always: one HEAD, every layer reused", web, "Always", (run, m) => {
    expect(run.json?.action === "verified", "Always verifies the tag");
    expect(m.length === 1 && m[0] === "HEAD", "exactly one HEAD at the registry");
  });
  await step(
    r,
    "3. Next start under IfNotPresent: the registry is not contacted",
    web,
    "IfNotPresent",
    (run, m) => {
      expect(run.json?.action === "present", "IfNotPresent uses the cached image");
      expect(m.length === 0, "no request");
    },
  );

  const toolsImage = `${r.host}/demo/tools:1.0`;
  await step(
    r,
    "4. Never on an image the node does not have: ErrImageNeverPull",
    toolsImage,
    "Never",
    (run, m) => {
      expect(run.json?.code === "ErrImageNeverPull", "ErrImageNeverPull");
      expect(m.length === 0, "no request");
    },
  );
  const mark = (await r.accessLog()).length;
  const prepull = await kpull(
    ["prepull", "-o", "json", "-f", "-", "--root", root, "--hosts-dir", hostsDir],
    `${toolsImage}\n`,
  );
  console.log(dim(`  $ echo ${toolsImage} | kpull prepull -f -`));
  console.log(`  kpull: pre-pulled and pinned; registry saw: ${(await requestsSince(r, mark)).text}`);
  expect(prepull.code === 0, "prepull succeeds");
  await step(
    r,
    "   ...and after prepull, Never starts it without the registry",
    toolsImage,
    "Never",
    (run, m) => {
      expect(run.json?.action === "present", "Never uses the pre-pulled image");
      expect(m.length === 0, "no request");
    },
  );

  await pushFixture(r, "demo/web", "stable", v2, client);
  console.log(
    `\n${bold("The tag moves:")} ${web} now points at version 2 (${v2.manifest.digest.slice(0, 19)}…).`,
  );
  await step(
    r,
    "5. IfNotPresent keeps the stale image (the node never asks)",
    web,
    "IfNotPresent",
    (run, m) => {
      expect(run.json?.digest === v1.manifest.digest, "IfNotPresent keeps version 1");
      expect(m.length === 0, "no request");
    },
  );
  await step(
    r,
    "6. Always picks up the new digest and fetches only the changed layer",
    web,
    "Always",
    (run, m) => {
      expect(run.json?.action === "updated", "Always updates");
      expect(run.json?.digest === v2.manifest.digest, "Always has version 2");
      const layers = run.json?.layers as { fetched: number; reused: number } | undefined;
      expect(layers?.fetched === 1 && layers.reused === 1, "one layer fetched, one reused");
      expect(m.filter((x) => x === "GET").length > 0, "GETs for the new content");
    },
  );

  const pinned = `${r.host}/demo/web@${v2.manifest.digest}`;
  await step(
    r,
    "7. A digest-pinned image under IfNotPresent: the digest is the identity, no request",
    pinned,
    "IfNotPresent",
    (run, m) => {
      expect(run.json?.action === "present", "pinned image found locally");
      expect(m.length === 0, "no request");
    },
  );

  await client.close();
  console.log(
    failures === 0
      ? color(32, "\nEvery step behaved as the kubelet does. Try `kpull explain -f examples/` next.")
      : color(31, `\n${failures} expectation(s) failed.`),
  );
}

try {
  await main();
} catch (error) {
  failures++;
  console.error(`demo failed: ${(error as Error).message}`);
} finally {
  await (registry as RunningRegistry | null)?.stop();
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = failures === 0 ? 0 : 1;
