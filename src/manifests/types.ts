// The shapes the manifests module hands to check, admission and the CLI.

/**
 * Where an image comes from in a pod spec. Image volumes (KEP-4639) are `spec.volumes[].image`; their
 * `reference` is the image and `pullPolicy` its own policy.
 */
export type ContainerType = "container" | "initContainer" | "ephemeralContainer" | "imageVolume";

/**
 * A place in a source file. `line` and `column` are 1-based; `column` counts UTF-16 code units from the start
 * of the line (SARIF's default `columnKind`), after a byte order mark has been dropped. `file` is the path as
 * the user gave it (files found in a directory: the directory as given, a separator, the relative path), or
 * `-` for stdin.
 */
export interface SourcePosition {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

/**
 * How the image field was written:
 * - `string`: a string (possibly empty; `image` holds it);
 * - `missing`: the key is absent, or its value is null (`image:`, `image: ~`);
 * - `invalid-type`: a number, boolean, list or map (`image: 1.0`); `image` is null and `position` points at
 *   the value. For an image volume, also a volume whose `image` is not a map (`image: nginx`).
 */
export type ImageStatus = "string" | "missing" | "invalid-type";

/** One image a pod spec asks for: a container, init container, ephemeral container or image volume. */
export interface ImageUse {
  readonly file: string;
  /** 0-based index of the YAML document in the file (every document counts, empty ones too); items of a List share it. */
  readonly document: number;
  /** The workload kind, e.g. `Deployment`. For List items without `kind` and `apiVersion`, inferred as kubectl does. */
  readonly kind: string;
  readonly apiVersion: string | null;
  /** `metadata.namespace` as written (null when absent or not a string). */
  readonly namespace: string | null;
  /** `metadata.name` of the workload object (null when absent or not a string). */
  readonly name: string | null;
  readonly containerType: ContainerType;
  /** The container's name, or the volume's name for an image volume. */
  readonly container: string | null;
  /** The image string exactly as written (after YAML unquoting); null if absent or not a string (see `imageStatus`). */
  readonly image: string | null;
  readonly imageStatus: ImageStatus;
  /** `imagePullPolicy` (or an image volume's `image.pullPolicy`) as written; null if absent or not a string. */
  readonly pullPolicy: string | null;
  /**
   * Where the image value is written (through an alias or a merge key: where the aliased value itself is
   * written). When the value is missing: the `image:` key (image volume: `reference:` key) if present,
   * else the container node (image volume: the volume's `image:` key).
   */
  readonly position: SourcePosition;
  /** Where the image value ends (exclusive); null when the value is missing. For SARIF `endColumn`. */
  readonly imageEndPosition: SourcePosition | null;
  /** Where the `image:` key (image volume: `reference:` key) is written; null when absent. */
  readonly imageKeyPosition: SourcePosition | null;
  /** Where the pull policy value is written, when the key is present with a non-null value. */
  readonly policyPosition: SourcePosition | null;
  /**
   * The path from the document root to the container or volume object, e.g.
   * `["spec", "template", "spec", "containers", 0]`; for List items it starts with `["items", i, ...]`.
   * It is the logical path: when `shared` is true, some step may be written elsewhere (an anchor, a merge key).
   */
  readonly path: readonly (string | number)[];
  /**
   * True when the container or volume, its image or policy value, or an object on the path to them is used
   * more than once through anchors: reached through an alias or a `<<` merge key, or itself named by an
   * alias. Editing such a node in place changes every use.
   */
  readonly shared: boolean;
  /** The workload object's `metadata.annotations` (string values only). */
  readonly annotations: Readonly<Record<string, string>>;
  /** The pod template's `metadata.annotations` (string values only); empty for a Pod. */
  readonly templateAnnotations: Readonly<Record<string, string>>;
  /** The path of a Helm `# Source: <path>` comment heading the document, else null. */
  readonly renderedFrom: string | null;
}

/**
 * Input that cannot be read as manifests: a missing path, a binary or oversized file, invalid YAML, an alias
 * bomb. `message` reads `file:line:column: reason` (or `file: reason` without a position), one line.
 */
export class ManifestError extends Error {
  readonly code = "ManifestError" as const;
  readonly file: string;
  readonly line: number | null;
  readonly column: number | null;
  /** The message without the `file:line:column: ` prefix. */
  readonly reason: string;

  constructor(file: string, reason: string, line: number | null = null, column: number | null = null) {
    super(line === null ? `${file}: ${reason}` : `${file}:${line}:${column ?? 1}: ${reason}`);
    this.name = "ManifestError";
    this.file = file;
    this.line = line;
    this.column = line === null ? null : (column ?? 1);
    this.reason = reason;
  }
}

export interface ReadOptions {
  /** Read for the input `-`; defaults to `process.stdin`. */
  readonly stdin?: NodeJS.ReadableStream;
  /** Larger files (and stdin) are refused with a ManifestError; default 16 MiB. */
  readonly maxFileBytes?: number;
}
