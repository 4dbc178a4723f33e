// Layer media types and compression (spec oci.md §6.1; containerd core/images/mediatypes.go DiffCompression).

export type Compression = "none" | "gzip" | "zstd";

const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar";
const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar";
const DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar";
const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_LAYER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
const DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd";

/**
 * The compression a layer media type declares, as containerd's `DiffCompression` decides it:
 * OCI `…tar` → none, `…tar+gzip` → gzip, `…tar+zstd` → zstd (the last of the sorted `+` suffixes counts);
 * Docker `…diff.tar.gzip` → gzip; Docker `…diff.tar` → "unknown" (many registries served compressed blobs
 * under it: sniff the magic); `null` when the type is not a layer at all.
 *
 * One addition to containerd: Docker's `…diff.tar.zstd` (a containerd constant that `DiffCompression` does not
 * list) maps to zstd, since it names its compression unambiguously. Parameters (`; foo=bar`) are ignored and
 * the comparison is case-insensitive (RFC 6838).
 */
export function compressionOf(mediaType: string): Compression | "unknown" | null {
  const bare = (mediaType.split(";")[0] ?? "").trim().toLowerCase();
  const plus = bare.indexOf("+");
  const base = plus < 0 ? bare : bare.slice(0, plus);
  const suffixes =
    plus < 0
      ? []
      : bare
          .slice(plus + 1)
          .split("+")
          .sort();
  switch (base) {
    case DOCKER_LAYER:
    case DOCKER_LAYER_FOREIGN:
      return suffixes.length > 0 ? "none" : "unknown";
    case DOCKER_LAYER_GZIP:
    case DOCKER_LAYER_FOREIGN_GZIP:
      return suffixes.length > 0 ? "none" : "gzip";
    case DOCKER_LAYER_ZSTD:
      return suffixes.length > 0 ? "none" : "zstd";
    case OCI_LAYER:
    case OCI_LAYER_NONDIST: {
      const last = suffixes[suffixes.length - 1];
      return last === "gzip" ? "gzip" : last === "zstd" ? "zstd" : "none";
    }
    default:
      return null;
  }
}

const GZIP_MAGIC = [0x1f, 0x8b] as const;
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd] as const;

/**
 * The compression a stream's first bytes show (gzip `1f 8b`, zstd `28 b5 2f fd`), else "none"; `undefined`
 * while fewer bytes than a magic number have been seen and more may come.
 */
export function sniffCompression(head: Uint8Array, ended: boolean): Compression | undefined {
  if (startsWith(head, GZIP_MAGIC)) return "gzip";
  if (startsWith(head, ZSTD_MAGIC)) return "zstd";
  if (!ended && head.length < ZSTD_MAGIC.length && isPrefixOfMagic(head)) return undefined;
  return "none";
}

function startsWith(head: Uint8Array, magic: readonly number[]): boolean {
  return head.length >= magic.length && magic.every((b, i) => head[i] === b);
}

function isPrefixOfMagic(head: Uint8Array): boolean {
  return [GZIP_MAGIC, ZSTD_MAGIC].some((m) => [...head].every((b, i) => i < m.length && m[i] === b));
}
