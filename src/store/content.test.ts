import assert from "node:assert/strict";
import { createHash, type Hash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { type BlobSource, ContentStore } from "./content.ts";
import { ingestPath, initLayout } from "./layout.ts";

async function store(): Promise<ContentStore> {
  return new ContentStore(await initLayout(mkdtempSync(join(tmpdir(), "kpull-content-"))));
}

function blob(size: number, seed = "x") {
  const parts: Buffer[] = [];
  for (let i = 0; parts.length * 32 < size; i++)
    parts.push(createHash("sha256").update(`${seed}${i}`).digest());
  const bytes = Buffer.concat(parts).subarray(0, size);
  return { bytes, desc: { digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, size } };
}

/** A source serving `bytes` in 1000-byte chunks from the requested offset, recording each call. */
function sourceOf(
  bytes: Buffer,
  calls: { offset: number; hashed: string }[] = [],
  options: { stopAt?: number } = {},
) {
  const fn: BlobSource = async function* (offset: number, hash: Hash) {
    calls.push({ offset, hashed: hash.copy().digest("hex") });
    for (let i = offset; i < bytes.length; i += 1000) {
      if (options.stopAt !== undefined && i >= options.stopAt)
        throw Object.assign(new Error("connection reset"), { code: "NETWORK" });
      yield bytes.subarray(i, Math.min(bytes.length, i + 1000));
    }
  };
  return fn;
}

describe("content ingest", () => {
  it("commits verified content and reuses it afterwards", async () => {
    const cs = await store();
    const { bytes, desc } = blob(5000);
    const first = await cs.ingest(desc, sourceOf(bytes));
    assert.deepEqual(first, {
      digest: desc.digest,
      size: 5000,
      status: "fetched",
      fetchedBytes: 5000,
      resumedFrom: 0,
    });
    assert.deepEqual(readFileSync(cs.blobPath(desc.digest)), bytes);
    assert.equal(existsSync(ingestPath(cs.paths, desc.digest)), false, "the ingest file became the blob");
    const calls: { offset: number; hashed: string }[] = [];
    const again = await cs.ingest(desc, sourceOf(bytes, calls));
    assert.equal(again.status, "present");
    assert.equal(calls.length, 0);
  });

  it("keeps a partial download when the source fails, and resumes it from its offset", async () => {
    const cs = await store();
    const { bytes, desc } = blob(10_000);
    await assert.rejects(cs.ingest(desc, sourceOf(bytes, [], { stopAt: 4000 })), { code: "NETWORK" });
    assert.equal(await cs.has(desc), false, "nothing partial is visible");
    assert.equal(readFileSync(ingestPath(cs.paths, desc.digest)).length, 4000);
    const calls: { offset: number; hashed: string }[] = [];
    const result = await cs.ingest(desc, sourceOf(bytes, calls));
    assert.equal(result.resumedFrom, 4000);
    assert.equal(result.fetchedBytes, 6000);
    assert.equal(calls[0]?.offset, 4000);
    assert.equal(
      calls[0]?.hashed,
      createHash("sha256").update(bytes.subarray(0, 4000)).digest("hex"),
      "the source gets a hash already fed with the partial bytes",
    );
    assert.deepEqual(readFileSync(cs.blobPath(desc.digest)), bytes);
  });

  it("throws a partial ingest away and starts over when it does not continue into the right content", async () => {
    const cs = await store();
    const { bytes, desc } = blob(3000);
    writeFileSync(ingestPath(cs.paths, desc.digest), Buffer.alloc(1500, 0xee));
    const calls: { offset: number; hashed: string }[] = [];
    const result = await cs.ingest(desc, sourceOf(bytes, calls));
    assert.deepEqual(
      calls.map((c) => c.offset),
      [1500, 0],
    );
    assert.equal(result.resumedFrom, 0);
    assert.deepEqual(readFileSync(cs.blobPath(desc.digest)), bytes);
  });

  it("refuses wrong content and too much content; nothing becomes visible", async () => {
    const cs = await store();
    const { desc } = blob(2000);
    const other = blob(2000, "other").bytes;
    await assert.rejects(cs.ingest(desc, sourceOf(other)), {
      code: "MISMATCH",
      message: /content has digest/,
    });
    assert.equal(await cs.has(desc), false);
    await assert.rejects(cs.ingest(desc, sourceOf(Buffer.concat([other, other]))), {
      code: "MISMATCH",
      message: /more than the 2000 bytes/,
    });
    assert.equal(await cs.size(desc.digest), null);
  });

  it("a short source is a size error, and the partial is kept", async () => {
    const cs = await store();
    const { bytes, desc } = blob(2500);
    await assert.rejects(cs.ingest(desc, sourceOf(bytes.subarray(0, 2000))), {
      code: "MISMATCH",
      message: /2000 of 2500 bytes arrived/,
    });
    assert.equal(readFileSync(ingestPath(cs.paths, desc.digest)).length, 2000);
  });

  it("single-flight: concurrent ingests of one digest fetch it once", async () => {
    const cs = await store();
    const { bytes, desc } = blob(50_000);
    const calls: { offset: number; hashed: string }[] = [];
    const slow: BlobSource = async function* (offset, hash) {
      for await (const chunk of sourceOf(bytes, calls)(offset, hash)) {
        await new Promise((r) => setTimeout(r, 1));
        yield chunk;
      }
    };
    const results = await Promise.all([1, 2, 3, 4].map(() => cs.ingest(desc, slow)));
    assert.equal(calls.length, 1);
    assert.deepEqual(results.map((r) => r.status).sort(), ["fetched", "waited", "waited", "waited"]);
  });

  it("a stored blob of the wrong size is not present and is replaced", async () => {
    const cs = await store();
    const { bytes, desc } = blob(1200);
    writeFileSync(cs.blobPath(desc.digest), bytes.subarray(0, 100));
    assert.equal(await cs.has(desc), false);
    const result = await cs.ingest(desc, sourceOf(bytes));
    assert.equal(result.status, "fetched");
    assert.deepEqual(readFileSync(cs.blobPath(desc.digest)), bytes);
  });

  it("read verifies the digest; put stores bytes in memory", async () => {
    const cs = await store();
    const { bytes, desc } = blob(700);
    await cs.put(desc, bytes);
    assert.deepEqual(await cs.read(desc.digest, 700), bytes);
    writeFileSync(cs.blobPath(desc.digest), Buffer.alloc(700));
    await assert.rejects(cs.read(desc.digest), { code: "CORRUPT" });
    await assert.rejects(cs.read(blob(1, "none").desc.digest), { code: "NOT_FOUND" });
  });

  it("rejects digests it cannot verify", async () => {
    const cs = await store();
    await assert.rejects(cs.ingest({ digest: "sha512:abcd", size: 1 }, sourceOf(Buffer.alloc(1))), {
      code: "INVALID",
    });
  });
});
