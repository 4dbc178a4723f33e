// KEP-2535 end to end against a real registry with Basic auth (kubelet.md §3; issue 6 "Credential verification
// for cached images"): the ImageManager with a CredentialVerifier on disk, pods with and without pull secrets.
//
// The image service here is test-only: a RegistryClient resolves and fetches the manifest (and config) with
// the AuthConfig the image manager hands it as the only credential, and keeps images in memory. No
// store-backed node ImageService exists yet; when one lands this test should use it.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  type AuthConfig,
  Backoff,
  CredentialVerifier,
  type Image,
  ImageManager,
  type ImageService,
  type ImageSpec,
  type NodeEvent,
  type PullCredential,
  recordFileName,
  SerialPuller,
  toPullCredentials,
} from "../src/node/index.ts";
import { CredentialStore, type ImageManifest, RegistryClient } from "../src/registry/index.ts";
import { type RunningRegistry, seedImage, tinyImage, useRegistry } from "./harness/index.ts";

const dirs: string[] = [];
const clients: RegistryClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** A CRI-shaped image service over RegistryClient: PullImage with exactly the AuthConfig given (none:
 * anonymous), images in memory by the spec's string, image ref = config digest as on containerd. */
class RegistryImageService implements ImageService {
  readonly images = new Map<string, Image>();
  readonly pulls: { image: string; username: string | null; ok: boolean }[] = [];
  readonly #hostsDir = tempDir("kpull-hosts-");

  async pullImage(spec: ImageSpec, auth: AuthConfig | null, options: { signal?: AbortSignal } = {}) {
    const credential = auth
      ? {
          username: auth.username ?? "",
          password: auth.password ?? "",
          ...(auth.identityToken ? { identityToken: auth.identityToken } : {}),
          ...(auth.registryToken ? { registryToken: auth.registryToken } : {}),
          source: { kind: "docker-config", file: "(CRI AuthConfig)" } as const,
        }
      : null;
    const client = new RegistryClient({
      hostsDir: this.#hostsDir,
      retryBaseMs: 5,
      retryMaxMs: 50,
      credentials: { lookup: async () => (credential ? [credential] : []) },
    });
    clients.push(client);
    try {
      const repo = client.repository(spec.image);
      const { descriptor, manifest } = await repo.resolveImage(
        options.signal ? { signal: options.signal } : {},
      );
      const config = (manifest.json as ImageManifest).config;
      const image: Image = {
        id: config.digest,
        repoTags: [spec.image],
        repoDigests: [`${spec.image.replace(/:[^:/]+$/, "")}@${descriptor.digest}`],
        size: manifest.bytes.length + config.size,
        pinned: false,
      };
      this.images.set(spec.image, image);
      this.pulls.push({ image: spec.image, username: auth?.username ?? null, ok: true });
      return { imageRef: image.id };
    } catch (error) {
      this.pulls.push({ image: spec.image, username: auth?.username ?? null, ok: false });
      throw error;
    }
  }
  async imageStatus(spec: ImageSpec) {
    return { image: this.images.get(spec.image) ?? null };
  }
  async listImages() {
    return [...this.images.values()];
  }
  async removeImage(spec: ImageSpec) {
    this.images.delete(spec.image);
  }
  async imageFsInfo() {
    return [];
  }
}

/** A `kubernetes.io/dockerconfigjson` Secret for the registry's host. */
function pullSecret(
  r: RunningRegistry,
  meta: { uid: string; namespace: string; name: string },
  user: string,
  password: string,
) {
  const auth = Buffer.from(`${user}:${password}`).toString("base64");
  const config = JSON.stringify({ auths: { [r.host]: { auth } } });
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: meta,
    type: "kubernetes.io/dockerconfigjson",
    data: { ".dockerconfigjson": Buffer.from(config).toString("base64") },
  };
}

/** The kubelet's lookup for one pod: its pull secrets, no node config (kubelet.md §2.11). */
function podCredentials(secrets: readonly unknown[], repository: string): () => Promise<PullCredential[]> {
  const store = new CredentialStore({ pullSecrets: secrets, dockerConfigDir: null, env: {} });
  return async () => toPullCredentials(await store.lookup(repository));
}

describe("KEP-2535 with a basic-auth registry (issue 6)", () => {
  const registry = useRegistry({ auth: "basic", users: { puller: "Xq7-not-in-any-record" } });

  it("A pulls with a secret; B without credentials must pull and fails; C's copy of the secret is let through", async () => {
    const r = registry();
    const [user, password] = Object.entries(r.users)[0] ?? ["", ""];
    await seedImage(r, "team/app", "v1", tinyImage());
    const image = `${r.host}/team/app:v1`;
    const repository = `${r.host}/team/app`;

    const root = tempDir("kpull-kubelet-");
    const warnings: string[] = [];
    const verifier = await CredentialVerifier.open({ root, onWarning: (m) => warnings.push(m) });
    const service = new RegistryImageService();
    const events: NodeEvent[] = [];
    const manager = new ImageManager({
      service,
      puller: new SerialPuller(null),
      backoff: new Backoff(),
      verifier,
      onEvent: (e) => events.push(e),
    });
    const pod = (name: string, namespace: string) => ({ kind: "Pod", namespace, name, uid: `uid-${name}` });

    // Pod A: a pull secret with the right password. The image is absent: pulled, and recorded.
    const secretA = pullSecret(
      r,
      { uid: "uid-secret-a", namespace: "team-a", name: "regcred" },
      user,
      password,
    );
    const a = await manager.ensureImageExists({
      pod: pod("a", "team-a"),
      image,
      policy: "IfNotPresent",
      credentials: podCredentials([secretA], repository),
    });
    assert.equal(a.ok, true, JSON.stringify(a));
    assert.ok(a.ok);
    const imageRef = a.imageRef;
    assert.match(imageRef, /^sha256:[0-9a-f]{64}$/);
    const recordPath = join(root, "image_manager", "pulled", recordFileName(imageRef));
    const record = JSON.parse(readFileSync(recordPath, "utf8"));
    const origin = (await podCredentials([secretA], repository)())[0]?.origin;
    assert.ok(origin?.kind === "secret" && /^[0-9a-f]{64}$/.test(origin.credentialHash));
    assert.deepEqual(record, {
      kind: "ImagePulledRecord",
      apiVersion: "kubelet.config.k8s.io/v1beta1",
      lastUpdatedTime: record.lastUpdatedTime,
      imageRef,
      credentialMapping: {
        [repository]: {
          kubernetesSecrets: [
            {
              uid: "uid-secret-a",
              namespace: "team-a",
              name: "regcred",
              credentialHash: origin.credentialHash,
            },
          ],
        },
      },
    });
    assert.deepEqual(await verifier.records.listIntents(), [], "no intent is left after a successful pull");

    // Pod B: no credentials, IfNotPresent, image cached. It must go to the registry, which refuses anonymous.
    events.length = 0;
    const b = await manager.ensureImageExists({
      pod: pod("b", "team-b"),
      image,
      policy: "IfNotPresent",
      credentials: podCredentials([], repository),
    });
    assert.equal(b.ok, false);
    assert.ok(!b.ok);
    assert.equal(b.reason, "ErrImagePull");
    assert.match(b.message, /401|unauthorized|UNAUTHORIZED/i);
    assert.deepEqual(
      events.map((e) => e.reason),
      ["Pulling", "Failed"],
    );
    assert.deepEqual(service.pulls.at(-1), { image, username: null, ok: false });
    assert.deepEqual(await verifier.records.listIntents(), [], "the failed pull released its intent");

    // Pod B with Never: the same answer as for an absent image.
    const bNever = await manager.ensureImageExists({
      pod: pod("b-never", "team-b"),
      image,
      policy: "Never",
      credentials: podCredentials([], repository),
    });
    assert.ok(!bNever.ok);
    assert.equal(bNever.reason, "ErrImageNeverPull");

    // Pod C: another namespace's secret holding the same valid credentials (same hash): allowed locally.
    const pullsBefore = service.pulls.length;
    const logBefore = (await r.accessLog()).length;
    events.length = 0;
    const secretC = pullSecret(
      r,
      { uid: "uid-secret-c", namespace: "team-c", name: "copied" },
      user,
      password,
    );
    const c = await manager.ensureImageExists({
      pod: pod("c", "team-c"),
      image,
      policy: "IfNotPresent",
      credentials: podCredentials([secretC], repository),
    });
    assert.equal(c.ok, true);
    assert.ok(c.ok);
    assert.equal(c.pulled, false);
    assert.equal(c.imageRef, imageRef);
    assert.deepEqual(
      events.map((e) => [e.reason, e.message]),
      [["Pulled", `Container image "${image}" already present on machine and can be accessed by the pod`]],
    );
    assert.equal(service.pulls.length, pullsBefore, "no pull");
    assert.equal((await r.accessLog()).length, logBefore, "no request reached the registry");
    const after = JSON.parse(readFileSync(recordPath, "utf8"));
    assert.deepEqual(
      after.credentialMapping[repository].kubernetesSecrets.map(
        (s: { uid: string; namespace: string; name: string }) => `${s.namespace}/${s.name}/${s.uid}`,
      ),
      ["team-a/regcred/uid-secret-a", "team-c/copied/uid-secret-c"],
      "C's coordinates were added to the record",
    );

    // Pod D: a secret with a wrong password: verification against the registry fails.
    const secretD = pullSecret(
      r,
      { uid: "uid-secret-d", namespace: "team-d", name: "wrong" },
      user,
      "not-the-password",
    );
    const d = await manager.ensureImageExists({
      pod: pod("d", "team-d"),
      image,
      policy: "IfNotPresent",
      credentials: podCredentials([secretD], repository),
    });
    assert.ok(!d.ok);
    assert.equal(d.reason, "ErrImagePull");
    assert.deepEqual(service.pulls.at(-1), { image, username: user, ok: false });

    // A restarted kubelet (a new verifier on the same root) still knows: B is refused, C is let through.
    const restarted = await CredentialVerifier.open({ root, images: service });
    assert.equal(await restarted.mustAttemptImagePull(image, imageRef, podCredentials([], repository)), true);
    assert.equal(
      await restarted.mustAttemptImagePull(image, imageRef, podCredentials([secretC], repository)),
      false,
    );
    assert.deepEqual(warnings, []);
    const json = readFileSync(recordPath, "utf8");
    assert.ok(!json.includes(password), "the password is never written");
    assert.ok(!json.includes(Buffer.from(`${user}:${password}`).toString("base64")));
  });
});
