// The admission webhook (`kpull serve`, a real process) under sustained load while its certificate rotates.
// First its capacity is measured: closed-loop clients at 2, 4, 8 and 16 requests in flight, half over
// HTTP/2, half over HTTP/1.1 keep-alive, each sending a validate review of a 3-container Deployment; the
// best throughput is the capacity (with the load generator on the same 2-core machine). Then the same
// clients run at the concurrency that reached it for 60 s (4 s in npm test) while the serving certificate
// is replaced every 10 s (2 s) the way the kubelet updates a Secret volume (the `..data` symlink swapped);
// clients reconnect after each swap and trust every CA involved. Passes when no request failed (every
// answer a 200 review with the uid echoed and the verdict expected), new connections saw every new
// certificate, and (in the long run) the server's memory stayed flat: the median RSS of the last quarter of
// the run is within 10 % (or 16 MiB) of the median of the first quarter after warm-up.

import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { TLSSocket } from "node:tls";
import { admissionReview } from "../admission-helpers.ts";
import { makeTlsMaterial, type TlsMaterial } from "../harness/certs.ts";
import { startServe } from "../harness/index.ts";
import { FULL, maxOf, percentile, record, scale, tempDir } from "./common.ts";

const SUSTAIN_S = scale(4, 60);
const ROTATE_EVERY_S = scale(2, 10);
const PROBE_S = scale(0.5, 3);
const LEVELS = scale([8], [2, 4, 8, 16]);

/** A Secret volume as the kubelet writes it: tls.crt/tls.key symlinks into `..data`, swapped atomically. */
function secretVolume(dir: string, material: TlsMaterial, version: number): void {
  const versioned = join(dir, `..v${version}`);
  mkdirSync(versioned);
  writeFileSync(join(versioned, "tls.crt"), material.certPem);
  writeFileSync(join(versioned, "tls.key"), material.keyPem);
  symlinkSync(`..v${version}`, join(dir, "..data_tmp"));
  renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
  for (const f of ["tls.crt", "tls.key"]) {
    try {
      symlinkSync(join("..data", f), join(dir, f));
    } catch {
      // already linked
    }
  }
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

const body = (): { uid: string; text: string } => {
  const { uid, body } = admissionReview({
    object: {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: "shop" },
      spec: {
        replicas: 3,
        template: {
          metadata: { labels: { app: "web" } },
          spec: {
            containers: [
              { name: "web", image: "registry.example.com/shop/web:1.4.2", imagePullPolicy: "Always" },
              {
                name: "sidecar",
                image: "registry.example.com/shop/proxy:2.0",
                imagePullPolicy: "Always",
              },
              { name: "metrics", image: `registry.example.com/shop/metrics@sha256:${"a".repeat(64)}` },
            ],
          },
        },
      },
    },
  });
  return { uid, text: JSON.stringify(body) };
};

interface Tally {
  ok: number;
  failed: number;
  errors: string[];
  latencies: number[];
  fingerprints: Set<string>;
}

/** A pool of clients: `h2` HTTP/2 sessions and an HTTP/1.1 keep-alive agent, both renewable. */
class Clients {
  #cas: string[];
  #origin: string;
  #h2: http2.ClientHttp2Session | null = null;
  #agent: https.Agent;
  constructor(origin: string, cas: string[]) {
    this.#origin = origin;
    this.#cas = cas;
    this.#agent = new https.Agent({ keepAlive: true, ca: cas, maxSockets: 32 });
  }
  /** New connections from now on (after a certificate swap). */
  renew(cas: string[]): void {
    this.#cas = cas;
    const old = this.#h2;
    this.#h2 = null;
    old?.close();
    const oldAgent = this.#agent;
    this.#agent = new https.Agent({ keepAlive: true, ca: cas, maxSockets: 32 });
    setTimeout(() => oldAgent.destroy(), 2000).unref();
  }
  #session(): http2.ClientHttp2Session {
    if (this.#h2 === null || this.#h2.closed || this.#h2.destroyed) {
      this.#h2 = http2.connect(this.#origin, { ca: this.#cas });
      this.#h2.on("error", () => {});
    }
    return this.#h2;
  }
  async send(protocol: "h1" | "h2", tally: Tally): Promise<void> {
    const { uid, text } = body();
    const started = performance.now();
    try {
      const answer =
        protocol === "h2"
          ? await new Promise<{ status: number; text: string; fingerprint: string | null }>(
              (resolve, reject) => {
                const session = this.#session();
                const stream = session.request({
                  ":method": "POST",
                  ":path": "/validate?timeout=10s",
                  "content-type": "application/json",
                });
                let status = 0;
                const chunks: Buffer[] = [];
                stream.setTimeout(10_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
                stream.on("response", (h) => {
                  status = Number(h[":status"]);
                });
                stream.on("data", (c: Buffer) => chunks.push(c));
                stream.on("end", () =>
                  resolve({
                    status,
                    text: Buffer.concat(chunks).toString("utf8"),
                    fingerprint:
                      (session.socket as TLSSocket | undefined)?.getPeerCertificate?.()?.fingerprint256 ??
                      null,
                  }),
                );
                stream.on("error", reject);
                stream.end(text);
              },
            )
          : await new Promise<{ status: number; text: string; fingerprint: string | null }>(
              (resolve, reject) => {
                const req = https.request(
                  `${this.#origin}/validate?timeout=10s`,
                  {
                    method: "POST",
                    agent: this.#agent,
                    headers: { "content-type": "application/json" },
                    timeout: 10_000,
                  },
                  (res) => {
                    const socket = res.socket as TLSSocket | null;
                    const fingerprint = socket?.getPeerCertificate?.()?.fingerprint256 ?? null;
                    const chunks: Buffer[] = [];
                    res.on("data", (c: Buffer) => chunks.push(c));
                    res.on("end", () =>
                      resolve({
                        status: res.statusCode ?? 0,
                        text: Buffer.concat(chunks).toString("utf8"),
                        fingerprint,
                      }),
                    );
                    res.on("error", reject);
                  },
                );
                req.on("timeout", () => req.destroy(new Error("timeout")));
                req.on("error", reject);
                req.end(text);
              },
            );
      const review = JSON.parse(answer.text) as { response?: { uid?: string; allowed?: boolean } };
      if (answer.status !== 200 || review.response?.uid !== uid || review.response?.allowed !== true) {
        throw new Error(`HTTP ${answer.status}: ${answer.text.slice(0, 160)}`);
      }
      if (answer.fingerprint) tally.fingerprints.add(answer.fingerprint);
      tally.ok++;
      tally.latencies.push(performance.now() - started);
    } catch (error) {
      tally.failed++;
      if (tally.errors.length < 5) tally.errors.push(`${protocol}: ${(error as Error).message}`);
    }
  }
  close(): void {
    this.#h2?.close();
    this.#agent.destroy();
  }
}

/** `concurrency` closed-loop workers (half HTTP/2, half HTTP/1.1) until `stop()` says so. */
async function drive(
  clients: Clients,
  concurrency: number,
  stop: () => boolean,
  tally: Tally,
): Promise<void> {
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      while (!stop()) await clients.send(i % 2 === 0 ? "h2" : "h1", tally);
    }),
  );
}

const newTally = (): Tally => ({ ok: 0, failed: 0, errors: [], latencies: [], fingerprints: new Set() });

describe("the webhook under sustained load while its certificate rotates", {
  timeout: (SUSTAIN_S + 120) * 1000,
}, () => {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  });

  it(`${SUSTAIN_S} s at measured capacity, a new certificate every ${ROTATE_EVERY_S} s: no failed request, flat memory`, async () => {
    const dir = tempDir("load");
    const rotations = Math.floor((SUSTAIN_S - 1) / ROTATE_EVERY_S);
    const materials = Array.from({ length: rotations + 1 }, (_, i) =>
      makeTlsMaterial(tempDir(`load-ca${i}`)),
    );
    const tlsDir = join(dir, "tls");
    mkdirSync(tlsDir);
    secretVolume(tlsDir, materials[0] as TlsMaterial, 0);
    const served = await startServe([
      "--tls-cert",
      join(tlsDir, "tls.crt"),
      "--tls-key",
      join(tlsDir, "tls.key"),
      "--port",
      "0",
      "--address",
      "127.0.0.1",
      "--reload-interval",
      "500ms",
      "--mutate",
      "none",
    ]);
    const { child, port } = served;
    children.push(child);
    const origin = `https://127.0.0.1:${port}`;
    const allCas = materials.map((m) => m.caPem);
    const clients = new Clients(origin, allCas);

    // Warm-up (JIT, pools), then capacity: the best closed-loop throughput over the concurrency levels.
    const warmup = newTally();
    const warmUntil = Date.now() + PROBE_S * 1000;
    await drive(clients, 4, () => Date.now() > warmUntil, warmup);
    assert.equal(warmup.failed, 0, warmup.errors.join("\n"));
    const levels: { concurrency: number; rps: number; p99: number; failed: number }[] = [];
    for (const concurrency of LEVELS) {
      const tally = newTally();
      const until = Date.now() + PROBE_S * 1000;
      await drive(clients, concurrency, () => Date.now() > until, tally);
      levels.push({
        concurrency,
        rps: Math.round(tally.ok / PROBE_S),
        p99: Math.round(percentile(tally.latencies, 99)),
        failed: tally.failed,
      });
      assert.equal(tally.failed, 0, tally.errors.join("\n"));
    }
    const best = levels.reduce((a, b) => (b.rps > a.rps ? b : a));

    // Sustained: that concurrency for SUSTAIN_S, rotating the certificate, sampling the server's RSS.
    const tally = newTally();
    const rss: { t: number; bytes: number }[] = [];
    const started = Date.now();
    const until = started + SUSTAIN_S * 1000;
    const sampler = setInterval(
      () => rss.push({ t: Date.now() - started, bytes: rssOf(child.pid as number) }),
      250,
    );
    let version = 0;
    const rotator = setInterval(() => {
      version++;
      if (version > rotations) return;
      secretVolume(tlsDir, materials[version] as TlsMaterial, version);
      // Clients reconnect shortly after, once the server has had its reload interval to notice.
      setTimeout(() => clients.renew(allCas), 1200).unref();
    }, ROTATE_EVERY_S * 1000);
    await drive(clients, best.concurrency, () => Date.now() > until, tally);
    clearInterval(rotator);
    clearInterval(sampler);
    clients.close();
    child.kill("SIGTERM");
    const exit = (await served.exit).code;

    const warm = rss.filter((s) => s.t >= SUSTAIN_S * 1000 * 0.1);
    const q = Math.max(1, Math.floor(warm.length / 4));
    const first = percentile(
      warm.slice(0, q).map((s) => s.bytes),
      50,
    );
    const last = percentile(
      warm.slice(-q).map((s) => s.bytes),
      50,
    );
    const growth = last - first;
    const row = {
      seconds: SUSTAIN_S,
      capacity: { concurrency: best.concurrency, rps: best.rps },
      levels,
      requests: tally.ok + tally.failed,
      failed: tally.failed,
      achievedRps: Math.round(tally.ok / SUSTAIN_S),
      p50ms: Math.round(percentile(tally.latencies, 50) * 10) / 10,
      p99ms: Math.round(percentile(tally.latencies, 99) * 10) / 10,
      maxMs: Math.round(maxOf(tally.latencies)),
      rotations,
      certificatesSeen: tally.fingerprints.size,
      reloadsLogged: (served.output().match(/serving certificate reloaded/g) ?? []).length,
      rssFirstQuarterMB: Math.round(first / 1048576),
      rssLastQuarterMB: Math.round(last / 1048576),
      rssMaxMB: Math.round(maxOf(rss.map((s) => s.bytes)) / 1048576),
      exit,
    };
    record("load", row);
    if (FULL) console.log(JSON.stringify(row, null, 2));

    assert.equal(tally.failed, 0, tally.errors.join("\n"));
    assert.ok(tally.ok > 0);
    assert.equal(row.reloadsLogged, rotations, served.output());
    assert.equal(tally.fingerprints.size, rotations + 1, "new connections got every certificate");
    // Flatness needs a run long enough to be past the heap's growth to its working size: the long run.
    if (FULL) {
      assert.ok(
        growth < Math.max(16 * 1048576, first * 0.1),
        `RSS grew from ${row.rssFirstQuarterMB} to ${row.rssLastQuarterMB} MiB`,
      );
    }
    assert.equal(exit, 0, served.output());
  });
});
