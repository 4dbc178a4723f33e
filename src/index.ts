// kpull's library API: what other tools import. The grammar, defaulting and manifest reading are at the top
// level; the larger modules come as namespaces so their names never collide.

export * as admission from "./admission/index.ts";
export * as check from "./check/index.ts";
export * as cri from "./cri/index.ts";
export * from "./manifests/index.ts";
export * as node from "./node/index.ts";
export * from "./policy/index.ts";
export * from "./reference/index.ts";
export * as registry from "./registry/index.ts";
export * as store from "./store/index.ts";
