// `--runtime-endpoint` (or KPULL_RUNTIME_ENDPOINT): the node commands (pull, start, prepull, images, rmi,
// gc) drive a CRI runtime's ImageService instead of kpull's store. The images then live in the runtime;
// kpull's own state for that runtime (back-off, KEP-2535 records, leases of started pods, pins, GC
// bookkeeping) lives under the root, in a directory per endpoint (src/node/runtime-state.ts).

import type { CriImageService } from "../cri/index.ts";
import { openRuntimeState } from "../node/core.ts";
import { Store } from "../store/core.ts";
import { rootFrom } from "./commands/store-options.ts";
import type { CliIo } from "./io.ts";
import type { RegistryFlagValues } from "./registry-options.ts";

export const runtimeOptions = {
  "runtime-endpoint": { type: "string" },
} as const;

export const runtimeOptionsHelp = `Runtime flags:
  --runtime-endpoint URL   a CRI runtime (unix:///run/containerd/containerd.sock) holds the images instead of kpull's
                           store (default: $KPULL_RUNTIME_ENDPOINT); kpull's own state for it stays under --root
`;

export interface RuntimeFlagValues {
  "runtime-endpoint"?: string | undefined;
  root?: string | undefined;
}

/** The endpoint from the flag, else the environment; null for kpull's store. */
export function runtimeEndpointFrom(values: RuntimeFlagValues, io: CliIo): string | null {
  const value = values["runtime-endpoint"] ?? io.env.KPULL_RUNTIME_ENDPOINT;
  return value === undefined || value.trim() === "" ? null : value;
}

/** Where images live for a node command: the store, or a runtime with kpull's state for it. */
export interface NodeBackend {
  /** The store (no runtime), or the runtime's state directory (holds no images). */
  readonly store: Store;
  /** The runtime, validated as the kubelet does at start-up; null on kpull's store. */
  readonly runtime: CriImageService | null;
  close(): void;
}

/**
 * Opens the backend the flags name. On a runtime: connect and validate (ImageFsInfo), then the state
 * directory under the root (created unless `create: false`, when a missing one gives `store: null`).
 */
export async function openBackend(
  values: RuntimeFlagValues,
  io: CliIo,
  options: { create?: boolean } = {},
): Promise<{ store: Store | null; runtime: CriImageService | null; close(): void }> {
  const endpoint = runtimeEndpointFrom(values, io);
  if (endpoint === null) {
    try {
      const store = await Store.open(rootFrom(values, io), { create: options.create !== false });
      return { store, runtime: null, close: () => {} };
    } catch (error) {
      if (options.create === false && (error as { code?: string }).code === "NOT_FOUND")
        return { store: null, runtime: null, close: () => {} };
      throw error;
    }
  }
  // gRPC and protobuf (about 120 modules) load only when a runtime is used.
  const { CriImageService } = await import("../cri/index.ts");
  const runtime = await CriImageService.connect(endpoint);
  try {
    const store = await openRuntimeState(rootFrom(values, io), runtime.url, {
      create: options.create !== false,
    });
    return { store, runtime, close: () => runtime.close() };
  } catch (error) {
    runtime.close();
    throw error;
  }
}

/** openBackend for the commands that pull: the state is always created. */
export async function openNodeBackend(values: RuntimeFlagValues, io: CliIo): Promise<NodeBackend> {
  const backend = await openBackend(values, io);
  if (backend.store === null) throw new Error("unreachable: state not created");
  return backend as NodeBackend;
}

/** Registry flags the runtime does not take from kpull: it pulls with its own registry configuration. */
export function warnRuntimeIgnores(values: RegistryFlagValues, io: CliIo): void {
  const ignored = [
    values["hosts-dir"] !== undefined ? "--hosts-dir" : null,
    (values["insecure-registry"] ?? []).length > 0 ? "--insecure-registry" : null,
    values.platform !== undefined ? "--platform" : null,
  ].filter((f) => f !== null);
  if (ignored.length > 0)
    io.stderr.write(
      `warning: ${ignored.join(", ")} ${ignored.length === 1 ? "is" : "are"} ignored with --runtime-endpoint: the runtime pulls with its own registry configuration (for containerd: registry.config_path, e.g. /etc/containerd/certs.d) and for its own platform\n`,
    );
}
