// One process of the concurrency run (concurrency.test.ts): it works on a shared store root for a bounded
// time in one role and prints one JSON line per operation (what, how long, how it ended, and any violation
// of the store's promises it saw). Run as: node worker.ts ROLE ROOT HOST SECONDS IMAGES(comma-separated).
//
// Roles: pull (pull a random image, sometimes unpack it), remove (rmi a random image), gc (the kubelet's
// image GC with a 1 ms max age, then the sweep), container (lease an image, pull it, hold it like a running
// container and check it stays whole), check (under the metadata lock, every blob a record references is
// present with its size).

import { formatReference, parseDockerRef } from "../../src/reference/index.ts";
import { RegistryClient } from "../../src/registry/index.ts";
import { recordDigests, Store } from "../../src/store/index.ts";

const [role, root, host, seconds, images] = process.argv.slice(2) as [string, string, string, string, string];
const refs = images.split(",").map((name) => `${host}/${name}:v1`);
const until = Date.now() + Number(seconds) * 1000;
const store = await Store.open(root);
const client = new RegistryClient({
  insecureRegistries: [host],
  credentials: { lookup: async () => [] },
  retryBaseMs: 20,
  retryMaxMs: 100,
});

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ role, pid: process.pid, ...line })}\n`);
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;
const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function op(name: string, fn: () => Promise<Record<string, unknown> | undefined>): Promise<void> {
  const started = performance.now();
  try {
    const extra = await fn();
    emit({ op: name, ok: true, ms: Math.round(performance.now() - started), ...extra });
  } catch (error) {
    const e = error as { code?: string; message?: string };
    emit({
      op: name,
      ok: false,
      ms: Math.round(performance.now() - started),
      code: e.code ?? "?",
      error: e.message,
    });
  }
}

while (Date.now() < until) {
  switch (role) {
    case "pull": {
      const ref = pick(refs);
      await op("pull", async () => {
        const result = await store.pullImage(client, ref);
        return { ref, fetched: result.fetched.bytes };
      });
      if (Math.random() < 0.5)
        await op("unpack", async () => ({ layers: (await store.unpack(ref)).layers.length }));
      break;
    }
    case "remove": {
      const ref = pick(refs);
      await op("rmi", async () => {
        const r = await store.remove([ref]);
        return { removed: r.removed.length, inUse: r.inUse.length, notFound: r.notFound.length };
      });
      await pause(Math.random() * 150);
      break;
    }
    case "gc": {
      await op("gc", async () => {
        const report = await store.garbageCollect({
          policy: { maxAgeMs: 1, minAgeMs: 0, highThresholdPercent: 100 },
        });
        return { removed: report.removed.length, blobsFreed: report.content.blobsRemoved.length };
      });
      await pause(Math.random() * 200);
      break;
    }
    case "container": {
      const ref = pick(refs);
      const name = formatReference(parseDockerRef(ref));
      const lease = await store.lease({ purpose: `container ${name}`, images: [name] });
      try {
        let pulled = false;
        await op("container-pull", async () => {
          await store.pullImage(client, ref);
          pulled = true;
          return { ref };
        });
        if (pulled) {
          const holdUntil = Date.now() + 200 + Math.random() * 600;
          let checks = 0;
          while (Date.now() < holdUntil) {
            const status = await store.status(name);
            checks++;
            if (status === null) emit({ op: "lease-check", violation: `leased image ${name} was removed` });
            else if (!status.complete)
              emit({
                op: "lease-check",
                violation: `leased image ${name} misses ${status.missing.map((m) => m.digest).join(", ")}`,
              });
            else if (!status.inUse) emit({ op: "lease-check", violation: `leased image ${name} not in use` });
            await pause(20);
          }
          emit({ op: "lease-held", ok: true, checks });
        }
      } finally {
        await lease.release();
      }
      break;
    }
    case "check": {
      await op("check", async () => {
        let records = 0;
        let blobs = 0;
        await store.withMetaLock(async () => {
          for (const record of await store.images()) {
            records++;
            for (const d of recordDigests(record)) {
              blobs++;
              if (!(await store.content.has(d)))
                emit({
                  op: "check",
                  violation: `${record.name} references ${d.digest}, which is not stored`,
                });
            }
          }
        });
        return { records, blobs };
      });
      await pause(50);
      break;
    }
    default:
      throw new Error(`unknown role ${role}`);
  }
}
await client.close();
emit({ op: "done", ok: true });
