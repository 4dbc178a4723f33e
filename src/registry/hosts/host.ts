// Host names: the Docker Hub mapping and containerd's localhost rule (core/remotes/docker/resolver.go
// `DefaultHost`, `IsLocalhost`), with Go's net.SplitHostPort and net.ParseIP semantics ported exactly.

import { BlockList, isIPv4, isIPv6 } from "node:net";

export type HostCapability = "pull" | "resolve" | "push";

export const ALL_CAPABILITIES: readonly HostCapability[] = ["pull", "resolve", "push"];

/** The host that serves a reference domain: `docker.io` is served by `registry-1.docker.io`, all others by themselves. */
export function defaultHost(domain: string): string {
  return domain === "docker.io" ? "registry-1.docker.io" : domain;
}

/**
 * Go's `net.SplitHostPort`: `host:port` or `[v6]:port`; null where Go returns an error (no port, too many
 * colons, stray brackets). The port may be empty (`host:`), as in Go.
 */
export function splitHostPort(hostport: string): { host: string; port: string } | null {
  const i = hostport.lastIndexOf(":");
  if (i < 0) return null;
  let host: string;
  let j = 0;
  let k = 0;
  if (hostport.startsWith("[")) {
    const end = hostport.indexOf("]");
    if (end < 0 || end + 1 !== i) return null;
    host = hostport.slice(1, end);
    j = 1;
    k = end + 1;
  } else {
    host = hostport.slice(0, i);
    if (host.includes(":")) return null;
  }
  if (hostport.slice(j).includes("[") || hostport.slice(k).includes("]")) return null;
  return { host, port: hostport.slice(i + 1) };
}

/** The port of `host[:port]`, or "" when there is none (containerd ignores SplitHostPort's error the same way). */
export function portOf(hostport: string): string {
  return splitHostPort(hostport)?.port ?? "";
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * containerd's `IsLocalhost`: strip a port if there is one, then exactly `localhost` or a loopback IP
 * (127.0.0.0/8, `::1`, IPv4-mapped `::ffff:127.x.x.x`). A bracketed IPv6 literal without a port
 * (`[::1]`) is not loopback, because Go's SplitHostPort rejects it and ParseIP rejects the brackets.
 */
export function isLoopback(host: string): boolean {
  const name = splitHostPort(host)?.host ?? host;
  if (name === "localhost") return true;
  if (isIPv4(name)) return LOOPBACK.check(name, "ipv4");
  // Node accepts zone ids (fe80::1%eth0); Go's ParseIP does not.
  if (isIPv6(name) && !name.includes("%")) return LOOPBACK.check(name, "ipv6");
  return false;
}
