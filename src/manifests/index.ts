// manifests: reading Kubernetes YAML/JSON, every workload kind's pod template, source positions.
// The public surface of the module; nothing outside imports its inner files.

export { CONTAINER_FIELDS, podSpecPaths, podTemplateMetadataPath, WORKLOAD_KINDS } from "./kinds.ts";
export { type FieldNodes, type ImageUseNodes, imageUseNodesFromText, imageUsesFromText } from "./parse.ts";
export {
  DEFAULT_MAX_FILE_BYTES,
  decodeManifestBytes,
  expandInputs,
  MANIFEST_EXTENSIONS,
  type ManifestSource,
  readImageUses,
  readManifestSource,
  STDIN,
  type TextEncoding,
} from "./read.ts";
export {
  type ContainerType,
  type ImageStatus,
  type ImageUse,
  ManifestError,
  type ReadOptions,
  type SourcePosition,
} from "./types.ts";
