// runtime.proto, loaded once at run time with @grpc/proto-loader (the library @grpc/grpc-js itself depends
// on): the .proto file stays the one readable source of the wire contract, with no generated code to keep in
// step. The build copies it beside the compiled module (package.json "build").
//
// Loader options: keepCase (the CRI field names as written), longs as decimal strings (64-bit values reach
// wire.ts unrounded), defaults (absent scalars are their zero value, absent messages null: "no image").

import { fileURLToPath } from "node:url";
import { loadSync, type MethodDefinition, type PackageDefinition } from "@grpc/proto-loader";

export const PROTO_FILE = fileURLToPath(new URL("./runtime.proto", import.meta.url));

export const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: false,
} as const;

export type ImageMethod = "ListImages" | "ImageStatus" | "PullImage" | "RemoveImage" | "ImageFsInfo";
export type RuntimeMethod = "Version";

// biome-ignore lint/suspicious/noExplicitAny: messages are typed at the call sites (wire.ts)
export type AnyMethod = MethodDefinition<any, any>;

let definition: PackageDefinition | null = null;

export function criPackage(): PackageDefinition {
  definition ??= loadSync(PROTO_FILE, LOADER_OPTIONS);
  return definition;
}

export function criMethod(service: "ImageService", name: ImageMethod): AnyMethod;
export function criMethod(service: "RuntimeService", name: RuntimeMethod): AnyMethod;
export function criMethod(service: "ImageService" | "RuntimeService", name: string): AnyMethod {
  const svc = criPackage()[`runtime.v1.${service}`] as Record<string, AnyMethod> | undefined;
  const method = svc?.[name];
  if (!method) throw new Error(`${PROTO_FILE}: runtime.v1.${service}/${name} is not defined`);
  return method;
}
