// kpull's integration-test harness: real registries (CNCF Distribution) in every auth mode, TLS, a token
// server, a fault-injecting proxy with a redirect host, and small fixtures to seed them. See README.md here.

export type { KpullRun, KpullRunOptions, ServeRun } from "./cli.ts";
export { KPULL_BIN, runKpull, startServe } from "./cli.ts";
export type { ContainerdOptions, CtrImage, RunningContainerd } from "./containerd.ts";
export { hostsTomlFor, parseCtrImages, startContainerd, useContainerd } from "./containerd.ts";
export type { TestBlob, TestImage } from "./fixtures.ts";
export {
  authorizationFor,
  MEDIA,
  pushBlob,
  pushManifest,
  seedImage,
  seedIndex,
  sha256,
  tarOf,
  tinyImage,
} from "./fixtures.ts";
export type { RawRequestOptions, RawResponse } from "./http.ts";
export { HARNESS_USER_AGENT, rawRequest } from "./http.ts";
export type { FixtureBlob, FixtureImage, FixtureIndex, ImageSpec } from "./images.ts";
export { buildImage, buildIndex, pushFixture, standardFixtures } from "./images.ts";
export type {
  BlobHost,
  BlobHostLogEntry,
  ProxiedRequest,
  ProxyAction,
  ProxyLogEntry,
  ProxyRule,
  ProxyScript,
  RunningProxy,
} from "./proxy.ts";
export { startBlobHost, startProxy } from "./proxy.ts";
export type { AccessLogEntry, RegistryOptions, RunningRegistry } from "./registry.ts";
export { freePort, parseAccessLog, startRegistry, useRegistry } from "./registry.ts";
export type { AccessEntry, AccessPolicy, TokenRequestLog, TokenServer } from "./token-server.ts";
export { defaultAccess, parseScope } from "./token-server.ts";
export { findTool, requireTool } from "./tools.ts";
