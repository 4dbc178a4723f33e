// CRI endpoints as the kubelet accepts them on Linux (`--container-runtime-endpoint`, `imageServiceEndpoint`):
// `unix:///run/containerd/containerd.sock`, or a bare path (deprecated in the kubelet, which then assumes
// `unix://`). `tcp://` and `npipe://` are Windows forms and refused here.

import { Buffer } from "node:buffer";
import { resolve } from "node:path";
import { CriError } from "./errors.ts";

/** The default containerd socket (the kubelet has no default; this is containerd's). */
export const DEFAULT_CONTAINERD_ENDPOINT = "unix:///run/containerd/containerd.sock";

/** sockaddr_un.sun_path is 108 bytes on Linux, one of them the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

export interface CriEndpoint {
  /** `unix:///abs/path.sock` — the form kpull prints and gRPC dials. */
  readonly url: string;
  /** Absolute socket path. */
  readonly socketPath: string;
}

export function parseCriEndpoint(endpoint: string): CriEndpoint {
  const bad = (why: string) =>
    new CriError("INVALID_ENDPOINT", `invalid CRI endpoint ${JSON.stringify(endpoint)}: ${why}`, {
      endpoint,
    });
  const trimmed = endpoint.trim();
  if (trimmed === "") throw bad("empty");
  let path: string;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(trimmed)?.[1];
  if (scheme === undefined) {
    path = trimmed;
  } else if (scheme.toLowerCase() === "unix") {
    const rest = trimmed.slice(scheme.length + 1);
    if (rest.startsWith("//")) {
      // unix://<authority>/<path>: only an empty authority names a local path (unix:///run/x.sock).
      const afterSlashes = rest.slice(2);
      if (!afterSlashes.startsWith("/"))
        throw bad("write unix:///absolute/path (three slashes): unix://host/… has a host part");
      path = afterSlashes;
    } else {
      path = rest;
    }
  } else {
    throw bad(`protocol ${JSON.stringify(scheme)} not supported (only unix sockets on Linux)`);
  }
  if (path === "") throw bad("no socket path");
  if (path.includes("\0")) throw bad("NUL in the path");
  const socketPath = resolve(path);
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES)
    throw bad(`socket path longer than ${MAX_SOCKET_PATH_BYTES} bytes`);
  return { url: `unix://${socketPath}`, socketPath };
}
