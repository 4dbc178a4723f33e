// The kubelet's image manager, on any CRI-shaped image service.

export * from "./core.ts";
export type { RuntimeGcOptions, RuntimeGcReport } from "./runtime-gc.ts";
export { garbageCollectRuntime, RuntimeGcError } from "./runtime-gc.ts";
// KEP-2535 credential verification (verification/index.ts).
export * from "./verification/index.ts";
