// The CRI client without a runtime: its types against node's ImageService, endpoints, AuthConfig forms, the
// .proto's field numbers against cri.md §2, and — against in-process gRPC servers on Unix sockets — 64-bit
// decoding, deadlines per call, error mapping, contract checks and the socket failure modes.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  loadPackageDefinition,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
  status,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import {
  CriError,
  CriImageService,
  LOADER_OPTIONS,
  PROTO_FILE,
  parseCriEndpoint,
  redactAuth,
  toWireAuth,
} from "../src/cri/index.ts";
import { classifyPullError, type ImageService } from "../src/node/index.ts";

// ---- types: the CRI client stands where node's ImageService is expected --------------------------------

type Assignable<A, B> = A extends B ? true : false;
const criIsImageService: Assignable<CriImageService, ImageService> = true;

describe("CriImageService as node's ImageService", () => {
  it("is assignable by structure (checked by tsc; constructing does not connect)", () => {
    const service: ImageService = new CriImageService("/tmp/kpull-never-dialled.sock");
    assert.equal(criIsImageService, true);
    assert.equal(typeof service.pullImage, "function");
    (service as CriImageService).close();
  });
});

// ---- endpoints, auth, proto ------------------------------------------------------------------------------

describe("parseCriEndpoint", () => {
  it("accepts unix:///abs, unix:path and plain paths; refuses other protocols and host parts", () => {
    assert.deepEqual(parseCriEndpoint("unix:///run/containerd/containerd.sock"), {
      url: "unix:///run/containerd/containerd.sock",
      socketPath: "/run/containerd/containerd.sock",
    });
    assert.equal(parseCriEndpoint("/run/x.sock").url, "unix:///run/x.sock");
    assert.equal(parseCriEndpoint("unix:/run/x.sock").socketPath, "/run/x.sock");
    assert.equal(parseCriEndpoint("rel/x.sock").socketPath, join(process.cwd(), "rel/x.sock"));
    for (const bad of [
      "",
      "tcp://127.0.0.1:1234",
      "npipe:////./pipe/x",
      "unix://run/x.sock",
      `/${"a".repeat(120)}`,
    ]) {
      assert.throws(
        () => parseCriEndpoint(bad),
        (e: unknown) => e instanceof CriError && e.code === "INVALID_ENDPOINT",
        bad,
      );
    }
  });
});

describe("toWireAuth: the form containerd accepts", () => {
  const empty = {
    username: "",
    password: "",
    auth: "",
    server_address: "",
    identity_token: "",
    registry_token: "",
  };
  it("sends username/password, decodes auth, keeps identity_token, never sends server_address", () => {
    assert.equal(toWireAuth(null), null);
    assert.equal(toWireAuth({}), null, "all empty is anonymous: send none");
    assert.deepEqual(toWireAuth({ username: "u", password: "p", serverAddress: "127.0.0.1:5001" }), {
      ...empty,
      username: "u",
      password: "p",
    });
    assert.deepEqual(toWireAuth({ auth: Buffer.from("u:p:with:colons\0\0").toString("base64") }), {
      ...empty,
      username: "u",
      password: "p:with:colons",
    });
    assert.deepEqual(toWireAuth({ auth: Buffer.from("nocolon").toString("base64") }), {
      ...empty,
      auth: Buffer.from("nocolon").toString("base64"),
    });
    assert.deepEqual(toWireAuth({ identityToken: "refresh" }), { ...empty, identity_token: "refresh" });
    assert.deepEqual(toWireAuth({ registryToken: "bearer" }), { ...empty, registry_token: "bearer" });
    assert.deepEqual(redactAuth({ username: "u", password: "p", serverAddress: "https://r" }), {
      username: "u",
      password: "[redacted]",
      serverAddress: "https://r",
    });
  });
});

describe("runtime.proto", () => {
  const def = loadSync(PROTO_FILE, LOADER_OPTIONS);
  const fields = (message: string) =>
    Object.fromEntries(
      (
        (def[`runtime.v1.${message}`] as { type: { field: { name: string; number: number }[] } }).type
          .field ?? []
      ).map((f) => [f.name, f.number]),
    );
  it("has cri-api's field numbers (cri.md §2)", () => {
    assert.deepEqual(fields("ImageSpec"), {
      image: 1,
      annotations: 2,
      user_specified_image: 18,
      runtime_handler: 19,
      image_ref: 20,
    });
    assert.deepEqual(fields("AuthConfig"), {
      username: 1,
      password: 2,
      auth: 3,
      server_address: 4,
      identity_token: 5,
      registry_token: 6,
    });
    assert.deepEqual(fields("Image"), {
      id: 1,
      repo_tags: 2,
      repo_digests: 3,
      size: 4,
      uid: 5,
      username: 6,
      spec: 7,
      pinned: 8,
    });
    assert.deepEqual(fields("PullImageRequest"), { image: 1, auth: 2, sandbox_config: 3 });
    assert.deepEqual(fields("PodSandboxConfig"), {
      metadata: 1,
      hostname: 2,
      log_directory: 3,
      labels: 6,
      annotations: 7,
    });
    assert.deepEqual(fields("FilesystemUsage"), { timestamp: 1, fs_id: 2, used_bytes: 3, inodes_used: 4 });
    assert.deepEqual(fields("ImageFsInfoResponse"), { image_filesystems: 1, container_filesystems: 2 });
    assert.deepEqual(fields("ImageStatusResponse"), { image: 1, info: 2 });
    assert.deepEqual(fields("VersionResponse"), {
      version: 1,
      runtime_name: 2,
      runtime_version: 3,
      runtime_api_version: 4,
    });
    const paths = Object.values(def["runtime.v1.ImageService"] as Record<string, { path: string }>).map(
      (m) => m.path,
    );
    assert.deepEqual(paths.sort(), [
      "/runtime.v1.ImageService/ImageFsInfo",
      "/runtime.v1.ImageService/ImageStatus",
      "/runtime.v1.ImageService/ListImages",
      "/runtime.v1.ImageService/PullImage",
      "/runtime.v1.ImageService/RemoveImage",
    ]);
  });
});

// ---- against in-process gRPC servers ---------------------------------------------------------------------

// biome-ignore lint/suspicious/noExplicitAny: a test double answers with whatever the case needs
type Handler = (call: ServerUnaryCall<any, any>, callback: sendUnaryData<any>) => void;

interface FakeRuntime {
  readonly socket: string;
  readonly handlers: Record<string, Handler>;
  /** deadline the server saw per method, ms from now at arrival (Infinity = none) */
  readonly deadlines: Record<string, number>;
  /** last request per method */
  readonly requests: Record<string, unknown>;
  close(): Promise<void>;
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "kpull-cri-"));
  dirs.push(d);
  return d;
}

async function fakeRuntime(services: { image?: boolean; runtime?: boolean } = {}): Promise<FakeRuntime> {
  const pkg = loadPackageDefinition(loadSync(PROTO_FILE, LOADER_OPTIONS)) as unknown as {
    runtime: { v1: Record<string, { service: Parameters<Server["addService"]>[0] }> };
  };
  const socket = join(tempDir(), "fake.sock");
  const handlers: Record<string, Handler> = {};
  const deadlines: Record<string, number> = {};
  const requests: Record<string, unknown> = {};
  const dispatch =
    (name: string): Handler =>
    (call, callback) => {
      const deadline = call.getDeadline();
      deadlines[name] =
        deadline === Number.POSITIVE_INFINITY || deadline === undefined
          ? Number.POSITIVE_INFINITY
          : (deadline instanceof Date ? deadline.getTime() : Number(deadline)) - Date.now();
      requests[name] = call.request;
      const h = handlers[name];
      if (h) h(call, callback);
      else callback({ code: status.UNIMPLEMENTED, details: `fake: ${name} not scripted` });
    };
  const server = new Server();
  if (services.image ?? true) {
    const names = ["ListImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo"];
    const svc = pkg.runtime.v1.ImageService;
    assert.ok(svc);
    server.addService(svc.service, Object.fromEntries(names.map((n) => [n, dispatch(n)])));
  }
  if (services.runtime ?? true) {
    const svc = pkg.runtime.v1.RuntimeService;
    assert.ok(svc);
    server.addService(svc.service, { Version: dispatch("Version") });
  }
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
  return {
    socket,
    handlers,
    deadlines,
    requests,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

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

const image = (over: Record<string, unknown> = {}) => ({
  id: "sha256:c0ffee",
  repo_tags: ["r/app:1"],
  repo_digests: ["r/app@sha256:beef"],
  size: "1292513",
  uid: null,
  username: "",
  spec: null,
  pinned: false,
  ...over,
});

describe("CRI client against a fake runtime", () => {
  let fake: FakeRuntime;
  let cri: CriImageService;
  before(async () => {
    fake = await fakeRuntime();
    cri = new CriImageService(`unix://${fake.socket}`, { timeoutMs: 5000, statfs: false });
  });
  after(async () => {
    cri.close();
    await fake.close();
  });

  it("decodes 64-bit fields exactly, and refuses counts a JavaScript number cannot hold", async () => {
    fake.handlers.ImageStatus = (_c, cb) =>
      cb(null, { image: image({ size: "9007199254740991", uid: { value: "1000" } }), info: {} });
    const { image: got } = await cri.imageStatus({ image: "r/app:1" });
    assert.equal(got?.size, Number.MAX_SAFE_INTEGER);
    assert.equal(got?.uid, 1000);

    fake.handlers.ImageFsInfo = (_c, cb) =>
      cb(null, {
        image_filesystems: [
          {
            timestamp: "1795946082827689292",
            fs_id: { mountpoint: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs" },
            used_bytes: { value: "3325952" },
            inodes_used: null,
          },
        ],
        container_filesystems: [],
      });
    assert.deepEqual(await cri.imageFsInfo(), [
      {
        timestamp: 1795946082827,
        timestampNanos: "1795946082827689292",
        mountpoint: "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs",
        usedBytes: 3325952,
        inodesUsed: null,
      },
    ]);

    fake.handlers.ListImages = (_c, cb) => cb(null, { images: [image({ size: "18446744073709551615" })] });
    await rejectsWith(cri.listImages(), (e) => {
      assert.equal(e.code, "INVALID_RESPONSE");
      assert.match(e.message, /Image\.size = 18446744073709551615 does not fit/);
    });
  });

  it("puts runtimeRequestTimeout on every call but PullImage, which has none unless asked", async () => {
    fake.handlers.ImageStatus = (_c, cb) => cb(null, { image: null, info: {} });
    fake.handlers.PullImage = (_c, cb) => cb(null, { image_ref: "sha256:c0ffee" });
    fake.handlers.Version = (_c, cb) =>
      cb(null, { version: "0.1.0", runtime_name: "fake", runtime_version: "1", runtime_api_version: "v1" });
    const kubeletLike = new CriImageService(fake.socket, { statfs: false });
    try {
      await kubeletLike.imageStatus({ image: "r/app:1" });
      await kubeletLike.pullImage({ image: "r/app:1" }, null);
      await kubeletLike.version();
      const near = (ms: number | undefined) => ms !== undefined && ms > 119_000 && ms <= 120_000;
      assert.ok(near(fake.deadlines.ImageStatus), `ImageStatus deadline ${fake.deadlines.ImageStatus}`);
      assert.ok(near(fake.deadlines.Version));
      assert.equal(fake.deadlines.PullImage, Number.POSITIVE_INFINITY);
      assert.deepEqual(fake.requests.Version, { version: "0.1.0" });
      await kubeletLike.pullImage({ image: "r/app:1" }, null, { timeoutMs: 30_000 });
      assert.ok((fake.deadlines.PullImage ?? 0) <= 30_000);
    } finally {
      kubeletLike.close();
    }
  });

  it("a call the runtime does not answer in time is DEADLINE_EXCEEDED in Go's words", async () => {
    fake.handlers.ImageStatus = () => {}; // never answers
    const hasty = new CriImageService(fake.socket, { timeoutMs: 150, statfs: false });
    try {
      await rejectsWith(hasty.imageStatus({ image: "r/app:1" }), (e) => {
        assert.equal(e.code, "DEADLINE_EXCEEDED");
        assert.equal(e.message, "rpc error: code = DeadlineExceeded desc = context deadline exceeded");
      });
    } finally {
      hasty.close();
    }
  });

  it("sends the request fields as CRI names them", async () => {
    fake.handlers.PullImage = (_c, cb) => cb(null, { image_ref: "sha256:c0ffee" });
    await cri.pullImage(
      { image: "r/app:1", annotations: { a: "b" }, runtimeHandler: "kata" },
      { username: "u", password: "p", serverAddress: "r" },
      { sandboxConfig: { metadata: { name: "web", uid: "uid-1", namespace: "default" } } },
    );
    const req = fake.requests.PullImage as Record<string, Record<string, unknown>>;
    assert.deepEqual(req.image, {
      image: "r/app:1",
      annotations: { a: "b" },
      user_specified_image: "",
      runtime_handler: "kata",
      image_ref: "",
    });
    assert.equal(req.auth?.username, "u");
    assert.equal(req.auth?.server_address, "");
    assert.deepEqual(req.sandbox_config?.metadata, {
      name: "web",
      uid: "uid-1",
      namespace: "default",
      attempt: 0,
    });

    fake.handlers.ListImages = (_c, cb) => cb(null, { images: [] });
    await cri.listImages();
    assert.deepEqual(fake.requests.ListImages, { filter: null }, "the kubelet sends no filter");
  });

  it("maps gRPC errors like cri-client: PullImage's Unknown bare, everything else in rpc error form", async () => {
    fake.handlers.PullImage = (_c, cb) =>
      cb({ code: status.UNKNOWN, details: "RegistryUnavailable: dial tcp: connection refused" });
    const pull = await rejectsWith(cri.pullImage({ image: "r/app:1" }, null), (e) => {
      assert.equal(e.code, "RPC");
      assert.equal(e.grpcCode, status.UNKNOWN);
      assert.equal(e.message, "RegistryUnavailable: dial tcp: connection refused");
    });
    assert.deepEqual(classifyPullError("r/app:1", pull.message), {
      reason: "RegistryUnavailable",
      message:
        "image pull failed for r/app:1 because the registry is unavailable: dial tcp: connection refused",
    });

    fake.handlers.ImageStatus = (_c, cb) => cb({ code: status.UNKNOWN, details: "boom" });
    await rejectsWith(cri.imageStatus({ image: "r/app:1" }), (e) =>
      assert.equal(e.message, "rpc error: code = Unknown desc = boom"),
    );
    fake.handlers.RemoveImage = (_c, cb) => cb({ code: status.CANCELLED, details: "server gave up" });
    await rejectsWith(cri.removeImage({ image: "r/app:1" }), (e) => {
      assert.equal(e.code, "RPC");
      assert.equal(e.message, "rpc error: code = Canceled desc = server gave up");
    });
    fake.handlers.PullImage = (_c, cb) => cb({ code: status.RESOURCE_EXHAUSTED, details: "disk full" });
    await rejectsWith(cri.pullImage({ image: "r/app:1" }, null), (e) =>
      assert.equal(e.message, "rpc error: code = ResourceExhausted desc = disk full"),
    );
  });

  it("rejects answers that break the contract, with the kubelet's messages", async () => {
    fake.handlers.ImageStatus = (_c, cb) => cb(null, { image: image({ size: "0" }), info: {} });
    await rejectsWith(cri.imageStatus({ image: "r/app:1" }), (e) => {
      assert.equal(e.code, "INVALID_RESPONSE");
      assert.equal(e.message, 'Id or size of image "r/app:1" is not set');
    });
    fake.handlers.ImageStatus = (_c, cb) => cb(null, { image: image({ id: "" }), info: {} });
    await rejectsWith(cri.imageStatus({ image: "r/app:1" }), (e) => assert.equal(e.code, "INVALID_RESPONSE"));
    fake.handlers.PullImage = (_c, cb) => cb(null, { image_ref: "" });
    await rejectsWith(cri.pullImage({ image: "r/app:1" }, null), (e) =>
      assert.equal(e.message, 'imageRef of image "r/app:1" is not set'),
    );
  });

  it("an aborted signal cancels before or during the call", async () => {
    fake.handlers.PullImage = () => {};
    const controller = new AbortController();
    const p = cri.pullImage({ image: "r/app:1" }, null, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await rejectsWith(p, (e) => assert.equal(e.code, "CANCELLED"));
    await rejectsWith(cri.imageFsInfo({ signal: AbortSignal.abort() }), (e) =>
      assert.equal(e.code, "CANCELLED"),
    );
  });
});

describe("CRI endpoint failure modes", () => {
  it("a server without runtime.v1 is UNSUPPORTED_API", async () => {
    const fake = await fakeRuntime({ image: false, runtime: false });
    try {
      await rejectsWith(CriImageService.connect(fake.socket), (e) => {
        assert.equal(e.code, "UNSUPPORTED_API");
        assert.equal(e.grpcCodeName, "Unimplemented");
        assert.match(
          e.message,
          /^validate service connection: validate CRI v1 image API for endpoint ".*fake\.sock": /,
        );
      });
    } finally {
      await fake.close();
    }
  });

  it("tells a missing socket, a stale socket and a file that is no socket apart", async () => {
    const dir = tempDir();
    await rejectsWith(CriImageService.connect(join(dir, "missing.sock")), (e) =>
      assert.equal(e.code, "SOCKET_MISSING"),
    );

    const file = join(dir, "file.sock");
    writeFileSync(file, "not a socket");
    await rejectsWith(CriImageService.connect(file), (e) => {
      assert.equal(e.code, "NOT_A_SOCKET");
      assert.match(e.message, /connect: connection refused"$/);
    });

    // A socket whose server died (SIGKILL leaves the file behind): nobody accepts.
    const stale = join(dir, "stale.sock");
    try {
      execFileSync(process.execPath, [
        "-e",
        `require("node:net").createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, "SIGKILL"))`,
      ]);
    } catch {
      // killed, as intended
    }
    await rejectsWith(CriImageService.connect(stale), (e) => {
      assert.equal(e.code, "CONNECTION_REFUSED");
      assert.equal(
        e.message,
        `validate service connection: validate CRI v1 image API for endpoint "${stale}": rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial unix ${stale}: connect: connection refused"`,
      );
    });
  });

  it("a closed client refuses further calls", async () => {
    const cri = new CriImageService("/tmp/kpull-never-dialled.sock");
    cri.close();
    await rejectsWith(cri.imageFsInfo(), (e) => assert.equal(e.code, "CLOSED"));
  });
});
