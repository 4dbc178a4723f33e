import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { acquireLock, currentProcess, lockStatus, processAlive, tryAcquireLock, withLock } from "./lock.ts";

function dir(): string {
  return mkdtempSync(join(tmpdir(), "kpull-lock-"));
}

/** The pid of a process that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.on("exit", resolve));
  return child.pid as number;
}

function fakeOwner(overrides: Record<string, unknown>): string {
  return JSON.stringify({
    ...currentProcess(),
    token: "someone-else",
    acquiredAt: new Date().toISOString(),
    purpose: "test",
    ...overrides,
  });
}

describe("file locks", () => {
  it("are exclusive, and free again after release", async () => {
    const path = join(dir(), "a.lock");
    const first = await tryAcquireLock(path);
    assert.ok(first);
    assert.equal(await tryAcquireLock(path), null, "a live holder (this process) keeps it");
    const owner = JSON.parse(readFileSync(path, "utf8"));
    assert.equal(owner.pid, process.pid);
    assert.equal(owner.startTime, currentProcess().startTime);
    await first.release();
    const second = await tryAcquireLock(path);
    assert.ok(second);
    await second.release();
    assert.equal(await lockStatus(path), null);
  });

  it("serialize async holders in one process", async () => {
    const path = join(dir(), "b.lock");
    const order: string[] = [];
    await Promise.all(
      ["x", "y", "z"].map((name) =>
        withLock(path, {}, async () => {
          order.push(`${name}+`);
          await new Promise((r) => setTimeout(r, 15));
          order.push(`${name}-`);
        }),
      ),
    );
    for (let i = 0; i < order.length; i += 2) assert.equal(order[i]?.[0], order[i + 1]?.[0], order.join(" "));
  });

  it("break a lock whose holder is dead", async () => {
    const path = join(dir(), "c.lock");
    writeFileSync(path, fakeOwner({ pid: await deadPid(), startTime: "1" }));
    assert.equal((await lockStatus(path))?.stale, true);
    const lock = await acquireLock(path, { timeoutMs: 2000 });
    assert.equal(JSON.parse(readFileSync(path, "utf8")).pid, process.pid);
    await lock.release();
  });

  it("break a lock whose pid was recycled (start time differs)", async () => {
    const path = join(dir(), "d.lock");
    writeFileSync(path, fakeOwner({ startTime: "12345" }));
    assert.equal(processAlive({ ...currentProcess(), startTime: "12345" }), false);
    const lock = await tryAcquireLock(path);
    assert.ok(lock);
    await lock.release();
  });

  it("a holder on another host is trusted until its heartbeat is older than staleMs", async () => {
    const path = join(dir(), "e.lock");
    writeFileSync(path, fakeOwner({ host: "elsewhere", pid: 1 }));
    assert.equal(await tryAcquireLock(path, { staleMs: 1000 }), null);
    const old = new Date(Date.now() - 5000);
    utimesSync(path, old, old);
    const lock = await tryAcquireLock(path, { staleMs: 1000 });
    assert.ok(lock, "a silent unverifiable holder is stale");
    await lock.release();
  });

  it("a live holder refreshes its heartbeat, so it is never stale by age", async () => {
    const path = join(dir(), "f.lock");
    const lock = await acquireLock(path, { staleMs: 200 });
    const old = new Date(Date.now() - 10_000);
    utimesSync(path, old, old);
    await new Promise((r) => setTimeout(r, 120));
    const { mtimeMs } = await import("node:fs").then((fs) => fs.statSync(path));
    assert.ok(Date.now() - mtimeMs < 1000, "heartbeat touched the file");
    await lock.release();
  });

  it("an empty lock file (crash between create and write) is stale after a grace period", async () => {
    const path = join(dir(), "g.lock");
    writeFileSync(path, "");
    assert.equal(await tryAcquireLock(path), null);
    const old = new Date(Date.now() - 10_000);
    utimesSync(path, old, old);
    const lock = await tryAcquireLock(path);
    assert.ok(lock);
    await lock.release();
  });

  it("waiting times out with LOCKED naming the holder, and honours abort", async () => {
    const path = join(dir(), "h.lock");
    const held = await acquireLock(path, { purpose: "pull busybox" });
    let waited = false;
    await assert.rejects(
      acquireLock(path, {
        timeoutMs: 50,
        onWait: () => {
          waited = true;
        },
      }),
      (e: Error & { code?: string }) => e.code === "LOCKED" && /pull busybox/.test(e.message),
    );
    assert.ok(waited);
    await assert.rejects(acquireLock(path, { signal: AbortSignal.timeout(30) }), { code: "ABORTED" });
    await held.release();
  });

  it("release never removes a lock someone else took over", async () => {
    const path = join(dir(), "i.lock");
    const lock = await acquireLock(path);
    writeFileSync(path, fakeOwner({ token: "new-holder" }));
    await lock.release();
    assert.equal(JSON.parse(readFileSync(path, "utf8")).token, "new-holder");
  });

  it("many racing breakers of one stale lock leave exactly one holder", async () => {
    const path = join(dir(), "j.lock");
    writeFileSync(path, fakeOwner({ pid: await deadPid(), startTime: "1" }));
    const results = await Promise.all(Array.from({ length: 8 }, () => tryAcquireLock(path)));
    const winners = results.filter((l) => l !== null);
    assert.equal(winners.length, 1);
    await winners[0]?.release();
  });
});
