// kpull's library API: what other tools import.

export * from "./manifests/index.ts";
export * from "./policy/index.ts";
export * from "./reference/index.ts";
