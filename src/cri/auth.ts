// AuthConfig in the form a kubelet sends and containerd accepts (cri.md §3, §4 step 2).
//
// containerd's ParseAuth picks, per registry host: `username`/`password` if username is set, else
// `identity_token` (an OAuth2 refresh token), else the decoded `auth`; it ignores `registry_token`; and when
// `server_address` is set it compares that URL's host with the registry host, silently going anonymous on a
// mismatch (`registry.example`, `https://index.docker.io/v1/` for docker.io) and failing the pull when Go
// cannot parse it (`127.0.0.1:5001`). The kubelet's keyring fills only username and password and leaves
// `server_address` empty, so that is the form sent here: the image manager already chose the credential for
// this image, and an empty `server_address` can neither drop it nor break the pull.

import { Buffer } from "node:buffer";
import type { CriAuthConfig } from "./types.ts";

/** The AuthConfig message as proto-loader encodes it (keepCase). */
export interface WireAuthConfig {
  username: string;
  password: string;
  auth: string;
  server_address: string;
  identity_token: string;
  registry_token: string;
}

function decodeAuth(auth: string): { username: string; password: string } | null {
  const text = Buffer.from(auth.trim(), "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon <= 0) return null;
  // containerd trims trailing NUL bytes from the decoded password (some credential stores pad with them).
  return { username: text.slice(0, colon), password: text.slice(colon + 1).replace(/\0+$/, "") };
}

/**
 * The wire AuthConfig for one pull attempt, or null for an anonymous pull (an all-empty AuthConfig is also
 * anonymous on containerd; sending none is what the kubelet does when no credential matched).
 * - username/password are sent as they are;
 * - otherwise identity_token;
 * - otherwise `auth` is decoded into username/password like the kubelet's keyring does; a value that does
 *   not decode to `user:password` is passed on unchanged so the runtime reports it (`invalid decoded auth`);
 * - otherwise registry_token is passed on (containerd ignores it: the pull is anonymous there);
 * - server_address is never sent (see above).
 */
export function toWireAuth(auth: CriAuthConfig | null | undefined): WireAuthConfig | null {
  if (!auth) return null;
  const wire: WireAuthConfig = {
    username: "",
    password: "",
    auth: "",
    server_address: "",
    identity_token: "",
    registry_token: "",
  };
  if (auth.username) {
    wire.username = auth.username;
    wire.password = auth.password ?? "";
  } else if (auth.identityToken) {
    wire.identity_token = auth.identityToken;
  } else if (auth.auth) {
    const decoded = decodeAuth(auth.auth);
    if (decoded) {
      wire.username = decoded.username;
      wire.password = decoded.password;
    } else {
      wire.auth = auth.auth;
    }
  } else if (auth.registryToken) {
    wire.registry_token = auth.registryToken;
  } else {
    return null;
  }
  return wire;
}

/** AuthConfig with its secrets replaced (cri-api marks password, auth, identity_token, registry_token
 * `debug_redact`): for logs and error reports. */
export function redactAuth(auth: CriAuthConfig | null | undefined): Record<string, string> | null {
  if (!auth) return null;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(auth)) {
    if (typeof value !== "string" || value === "") continue;
    out[key] = key === "username" || key === "serverAddress" ? value : "[redacted]";
  }
  return out;
}
