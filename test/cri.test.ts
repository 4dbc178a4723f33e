// The CRI client against a real containerd 1.6 (test/harness/containerd.ts) and real loopback registries:
// start-up validation, pulls (anonymous and basic auth through AuthConfig), status, list, remove, fs info,
// the error texts the kubelet's prefix rule depends on, cancellation and deadlines, a missing socket and a
// server without runtime.v1; `ctr -n k8s.io images ls` cross-checks what the client reports (cri.md §4–§5).

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CriError, CriImageService } from "../src/cri/index.ts";
import { classifyPullError } from "../src/node/index.ts";
import {
  type RunningRegistry,
  seedImage,
  type TestImage,
  tinyImage,
  useContainerd,
  useRegistry,
} from "./harness/index.ts";

const size = (image: TestImage) =>
  image.manifest.bytes.byteLength +
  image.config.bytes.byteLength +
  image.layers.reduce((n, l) => n + l.bytes.byteLength, 0);

async function rejectsWith(p: Promise<unknown>, check: (e: CriError) => void): Promise<CriError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CriError, `not a CriError: ${(e as Error)?.stack ?? e}`);
    check(e);
    return e;
  }
  assert.fail("expected a rejection");
}

/** A loopback TCP server that accepts and never answers: a registry that stalls. */
async function stallingServer(): Promise<{ host: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("CRI ImageService on containerd", () => {
  const open = useRegistry();
  const basic = useRegistry({ auth: "basic" });
  const containerd = useContainerd(() => ({ registries: [open(), basic()] }));
  const app = tinyImage({ layers: [{ "app.txt": "kpull cri test app\n" }] });
  const other = tinyImage({ layers: [{ "other.txt": "kpull cri test other\n" }] });
  const secret = tinyImage({ layers: [{ "secret.txt": "kpull cri test behind basic auth\n" }] });
  let cri: CriImageService;
  let reg: RunningRegistry;
  let protectedReg: RunningRegistry;

  before(async () => {
    reg = open();
    protectedReg = basic();
    await Promise.all([
      seedImage(reg, "team/app", "1", app),
      seedImage(reg, "team/app", "2", app),
      seedImage(reg, "team/other", "1", other),
      seedImage(protectedReg, "private/app", "1", secret),
    ]);
    cri = await CriImageService.connect(containerd().endpoint);
  });
  after(() => cri?.close());

  it("validates at start-up like the kubelet: ImageFsInfo on runtime.v1, and Version", async () => {
    const fs = await cri.validate();
    assert.equal(fs.imageFilesystems.length, 1);
    const [imageFs] = fs.imageFilesystems;
    assert.ok(imageFs);
    assert.equal(imageFs.mountpoint, `${containerd().dir}/root/io.containerd.snapshotter.v1.native`);
    assert.match(imageFs.timestampNanos, /^\d{19}$/);
    assert.equal(imageFs.timestamp, Number(BigInt(imageFs.timestampNanos) / 1_000_000n));
    assert.ok(Math.abs(imageFs.timestamp - Date.now()) < 60_000, "timestamp is ms since the epoch");
    assert.ok((imageFs.capacityBytes ?? 0) > 0 && (imageFs.availableBytes ?? 0) > 0, "statfs filled in");
    assert.deepEqual(fs.containerFilesystems, []);
    const version = await cri.version();
    assert.equal(version.runtimeName, "containerd");
    assert.equal(version.runtimeApiVersion, "v1");
    assert.match(version.runtimeVersion, /^1\.6\./);
    const info = await cri.runtimeInfo();
    assert.equal(info.endpoint, containerd().endpoint);
    assert.equal(info.runtimeName, "containerd");
  });

  it("ImageStatus of an absent image is image: null, not an error", async () => {
    assert.deepEqual(await cri.imageStatus({ image: `${reg.host}/team/app:1` }), { image: null, info: {} });
  });

  it("PullImage anonymously: image_ref is the config digest; ImageStatus, ListImages and ctr agree", async () => {
    const ref = `${reg.host}/team/app:1`;
    const pulled = await cri.pullImage({ image: ref, annotations: { "kpull.test/pod": "web" } }, null);
    assert.equal(pulled.imageRef, app.config.digest);

    const { image } = await cri.imageStatus({ image: ref });
    assert.ok(image);
    assert.equal(image.id, pulled.imageRef);
    assert.deepEqual(image.repoTags, [ref]);
    assert.deepEqual(image.repoDigests, [`${reg.host}/team/app@${app.manifest.digest}`]);
    assert.equal(image.size, size(app), "compressed bytes: manifest + config + layers");
    assert.equal(image.uid, null);
    assert.equal(image.username, "");
    assert.equal(image.spec, null);
    assert.equal(image.pinned, false);

    // By ID too; verbose adds containerd's info JSON.
    const verbose = await cri.imageStatus({ image: pulled.imageRef }, { verbose: true });
    assert.equal(verbose.image?.id, pulled.imageRef);
    const detail = JSON.parse(verbose.info.info ?? "{}") as {
      imageSpec?: { rootfs?: { diff_ids?: string[] } };
    };
    assert.equal(detail.imageSpec?.rootfs?.diff_ids?.length, 1);

    const listed = await cri.listImages();
    assert.deepEqual(
      listed.map((i) => i.id),
      [pulled.imageRef],
    );
    const ctr = await containerd().ctrImages();
    assert.deepEqual(
      ctr.map((i) => i.ref).sort(),
      [...image.repoTags, ...image.repoDigests, image.id].sort(),
    );
    for (const row of ctr) {
      assert.equal(row.digest, app.manifest.digest);
      assert.equal(row.labels["io.cri-containerd.image"], "managed");
    }
    const log = await reg.accessLog();
    assert.deepEqual(
      log.map((e) => `${e.method} ${e.status}`),
      ["HEAD 200", "GET 200", "GET 200", "GET 200"],
      "HEAD the tag, then manifest, config, layer",
    );
  });

  it("PullImage again costs one HEAD; a second tag of the same image joins the same record set", async () => {
    const before = (await reg.accessLog()).length;
    assert.equal(
      (await cri.pullImage({ image: `${reg.host}/team/app:1` }, null)).imageRef,
      app.config.digest,
    );
    assert.equal(
      (await cri.pullImage({ image: `${reg.host}/team/app:2` }, null)).imageRef,
      app.config.digest,
    );
    const log = (await reg.accessLog()).slice(before);
    assert.deepEqual(
      log.map((e) => e.method),
      ["HEAD", "HEAD"],
    );
    const { image } = await cri.imageStatus({ image: `${reg.host}/team/app:2` });
    assert.deepEqual([...(image?.repoTags ?? [])].sort(), [
      `${reg.host}/team/app:1`,
      `${reg.host}/team/app:2`,
    ]);
  });

  it("PullImage by digest records a repo digest and no tag", async () => {
    const ref = `${reg.host}/team/other@${other.manifest.digest}`;
    const pulled = await cri.pullImage({ image: ref }, null);
    assert.equal(pulled.imageRef, other.config.digest);
    const { image } = await cri.imageStatus({ image: ref });
    assert.deepEqual(image?.repoTags, []);
    assert.deepEqual(image?.repoDigests, [ref]);
  });

  it("ImageFsInfo catches up with the pulls (stats_collect_period 1 s here; 10 s by default)", async () => {
    let used = 0;
    for (let i = 0; i < 40 && used === 0; i++) {
      used = (await cri.imageFsInfo())[0]?.usedBytes ?? 0;
      if (used === 0) await sleep(100);
    }
    assert.ok(used > 0, "image filesystem usage reported");
  });

  it("PullImage with basic auth in every form containerd accepts, and the failures it produces", async () => {
    const ref = `${protectedReg.host}/private/app:1`;
    const [user, password] = Object.entries(protectedReg.users)[0] ?? ["", ""];

    // No credentials: Unknown code, so the message arrives bare (no "rpc error:"), as the kubelet sees it.
    const anonymous = await rejectsWith(cri.pullImage({ image: ref }, null), (e) => {
      assert.equal(e.code, "RPC");
      assert.equal(e.grpcCodeName, "Unknown");
      assert.match(
        e.message,
        /^failed to pull and unpack image ".*": failed to resolve reference ".*": .*401 Unauthorized$/,
      );
    });
    assert.equal(classifyPullError(ref, anonymous.message).reason, "ErrImagePull");

    // registry_token alone is ignored by containerd 1.6: anonymous again.
    await rejectsWith(cri.pullImage({ image: ref }, { registryToken: "some-bearer-token" }), (e) =>
      assert.match(e.message, /401 Unauthorized$/),
    );

    // username/password; `auth` (decoded into them); a scheme-less server_address, which containerd would
    // reject ("first path segment in URL cannot contain colon") and the client leaves out like the kubelet.
    for (const auth of [
      { username: user, password },
      { auth: Buffer.from(`${user}:${password}`).toString("base64") },
      { username: user, password, serverAddress: protectedReg.host },
    ]) {
      assert.equal((await cri.pullImage({ image: ref }, auth)).imageRef, secret.config.digest);
    }

    // The image is present now, yet PullImage still asks the registry: without credentials it fails.
    await rejectsWith(cri.pullImage({ image: ref }, null), (e) =>
      assert.match(e.message, /401 Unauthorized$/),
    );
    const log = await protectedReg.accessLog();
    assert.ok(log.some((e) => e.method === "HEAD" && e.status === 200));
    assert.deepEqual(
      log.slice(-2).map((e) => `${e.method} ${e.status}`),
      ["HEAD 401", "HEAD 401"],
      "without credentials: two HEADs, both 401 (cri.md §5)",
    );
  });

  it("a missing tag is NotFound and keeps the rpc error form; a bad reference is Unknown and bare", async () => {
    const ref = `${reg.host}/team/app:missing`;
    await rejectsWith(cri.pullImage({ image: ref }, null), (e) => {
      assert.equal(e.code, "RPC");
      assert.equal(e.grpcCodeName, "NotFound");
      assert.equal(
        e.message,
        `rpc error: code = NotFound desc = failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": ${ref}: not found`,
      );
    });
    const bad = `${reg.host}/Team/UPPER:1`;
    await rejectsWith(cri.pullImage({ image: bad }, null), (e) => {
      assert.equal(e.grpcCodeName, "Unknown");
      assert.match(
        e.message,
        /^failed to parse image reference ".*": invalid reference format: repository name must be lowercase$/,
      );
    });
  });

  it("the kubelet's prefix rule sees a runtime's RegistryUnavailable text on a bare Unknown error", () => {
    // containerd 1.6 never sends the prefix itself; the mapping is what matters (cri-client remote_image.go).
    const e = new CriError("RPC", "RegistryUnavailable: registry down", { grpcCode: 2 });
    assert.equal(classifyPullError("app:1", e.message).reason, "RegistryUnavailable");
  });

  it("a pull cancelled by its AbortSignal ends with Canceled; a per-call deadline with DeadlineExceeded", async () => {
    const stall = await stallingServer();
    try {
      const controller = new AbortController();
      const started = Date.now();
      setTimeout(() => controller.abort(), 200);
      await rejectsWith(
        cri.pullImage({ image: `${stall.host}/slow/app:1` }, null, { signal: controller.signal }),
        (e) => {
          assert.equal(e.code, "CANCELLED");
          assert.equal(e.message, "rpc error: code = Canceled desc = context canceled");
        },
      );
      assert.ok(Date.now() - started < 5000);
      await rejectsWith(
        cri.pullImage({ image: `${stall.host}/slow/app:2` }, null, { timeoutMs: 300 }),
        (e) => {
          assert.equal(e.code, "DEADLINE_EXCEEDED");
          assert.equal(e.message, "rpc error: code = DeadlineExceeded desc = context deadline exceeded");
        },
      );
    } finally {
      await stall.close();
    }
    // The channel is still fine afterwards.
    assert.ok((await cri.imageFsInfo()).length > 0);
  });

  it("RemoveImage by one tag removes every name of that image; removing again is still success", async () => {
    const tag2 = `${reg.host}/team/app:2`;
    await cri.removeImage({ image: tag2 });
    assert.equal((await cri.imageStatus({ image: `${reg.host}/team/app:1` })).image, null);
    assert.equal((await cri.imageStatus({ image: app.config.digest })).image, null);
    await cri.removeImage({ image: tag2 });
    // GC removes the rest by ID, as the kubelet does.
    for (const image of await cri.listImages()) await cri.removeImage({ image: image.id });
    assert.deepEqual(await cri.listImages(), []);
    assert.deepEqual(await containerd().ctrImages(), []);
  });
});

describe("CRI endpoint failures", () => {
  const noCri = useContainerd({ cri: false });

  it("a missing socket is SOCKET_MISSING with the kubelet's validation wording", async () => {
    const endpoint = "unix:///tmp/kpull-no-such-dir/containerd.sock";
    await rejectsWith(CriImageService.connect(endpoint), (e) => {
      assert.equal(e.code, "SOCKET_MISSING");
      assert.equal(
        e.message,
        `validate service connection: validate CRI v1 image API for endpoint "${endpoint}": rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial unix /tmp/kpull-no-such-dir/containerd.sock: connect: no such file or directory"`,
      );
    });
  });

  it("a containerd without the CRI plugin does not speak runtime.v1: UNSUPPORTED_API", async () => {
    await rejectsWith(CriImageService.connect(noCri().socketPath), (e) => {
      assert.equal(e.code, "UNSUPPORTED_API");
      assert.equal(e.grpcCodeName, "Unimplemented");
      assert.match(
        e.message,
        /^validate service connection: .*: rpc error: code = Unimplemented desc = unknown service runtime\.v1\.ImageService$/,
      );
    });
    // containerd itself is up: ctr talks to it.
    assert.match(await noCri().ctr(["version"]), /Server:/);
  });
});

describe("containerd through hosts.toml: a TLS registry with its own CA, token auth", () => {
  const tls = useRegistry({ auth: "token", tls: true });
  const containerd = useContainerd();
  const image = tinyImage({ layers: [{ "tls.txt": "kpull cri test over TLS with tokens\n" }] });
  let cri: CriImageService;
  before(async () => {
    await seedImage(tls(), "private/app", "1", image);
    containerd().addRegistry(tls()); // hosts.toml with `ca`, written after start: read at each pull
    cri = await CriImageService.connect(containerd().socketPath);
  });
  after(() => cri?.close());

  it("pulls with username/password: the token server sees containerd's OAuth2 POST", async () => {
    const ref = `${tls().host}/private/app:1`;
    // Anonymous: the token server grants no pull on private/*; Unknown, so the text arrives bare.
    await rejectsWith(cri.pullImage({ image: ref }, null), (e) => {
      assert.equal(e.grpcCodeName, "Unknown");
      assert.match(
        e.message,
        /^failed to pull and unpack image ".*": failed to resolve reference ".*": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed$/,
      );
    });
    const [user, password] = Object.entries(tls().users)[0] ?? ["", ""];
    assert.equal(
      (await cri.pullImage({ image: ref }, { username: user, password })).imageRef,
      image.config.digest,
    );
    assert.ok(
      tls().tokenServer?.requests.some((r) => r.method === "POST"),
      "OAuth2 password grant",
    );
  });
});
