// Deterministic fixture images of every shape the client must read (OCI and Docker schema 2, gzip and zstd,
// multi-layer, multi-platform indexes), pushed with kpull's own push path.

import { Buffer } from "node:buffer";
import { gzipSync, constants as zlibConstants, zstdCompressSync } from "node:zlib";
import { MediaType, type RegistryClient } from "../../src/registry/index.ts";
import { sha256, tarOf } from "./fixtures.ts";
import type { RunningRegistry } from "./registry.ts";

export interface FixtureBlob {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly bytes: Buffer;
}

export interface FixtureImage {
  readonly kind: "image";
  readonly manifest: FixtureBlob;
  readonly config: FixtureBlob;
  readonly layers: readonly FixtureBlob[];
  /** DiffIDs: digests of the uncompressed layer tars. */
  readonly diffIds: readonly string[];
}

export interface FixtureIndex {
  readonly kind: "index";
  readonly manifest: FixtureBlob;
  readonly images: readonly FixtureImage[];
}

export interface ImageSpec {
  readonly format?: "oci" | "docker";
  readonly compression?: "gzip" | "zstd";
  readonly layers: readonly Record<string, string | Uint8Array>[];
  readonly os?: string;
  readonly architecture?: string;
  readonly variant?: string;
}

function blob(mediaType: string, bytes: Buffer): FixtureBlob {
  return { mediaType, digest: sha256(bytes), size: bytes.length, bytes };
}

const descriptor = (b: FixtureBlob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });

export function buildImage(spec: ImageSpec): FixtureImage {
  const format = spec.format ?? "oci";
  const compression = spec.compression ?? "gzip";
  if (format === "docker" && compression === "zstd")
    throw new Error("buildImage: Docker schema 2 has no zstd type");
  const tars = spec.layers.map(tarOf);
  const layerType =
    format === "docker"
      ? MediaType.dockerLayerGzip
      : compression === "zstd"
        ? MediaType.ociLayerZstd
        : MediaType.ociLayerGzip;
  // Fixed levels and no timestamps: the same spec always yields the same digests.
  const compress = (t: Buffer) =>
    compression === "zstd"
      ? zstdCompressSync(t, { params: { [zlibConstants.ZSTD_c_compressionLevel]: 3 } })
      : gzipSync(t, { level: 6 });
  const layers = tars.map((t) => blob(layerType, compress(t)));
  const config = blob(
    format === "docker" ? MediaType.dockerConfig : MediaType.ociConfig,
    Buffer.from(
      JSON.stringify({
        architecture: spec.architecture ?? "amd64",
        os: spec.os ?? "linux",
        ...(spec.variant ? { variant: spec.variant } : {}),
        config: { Cmd: ["/bin/true"] },
        rootfs: { type: "layers", diff_ids: tars.map(sha256) },
        history: tars.map((_, i) => ({ created_by: `kpull fixture layer ${i}` })),
      }),
    ),
  );
  const manifestType = format === "docker" ? MediaType.dockerManifest : MediaType.ociManifest;
  const manifest = blob(
    manifestType,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: manifestType,
        config: descriptor(config),
        layers: layers.map(descriptor),
      }),
    ),
  );
  return { kind: "image", manifest, config, layers, diffIds: tars.map(sha256) };
}

export function buildIndex(images: readonly FixtureImage[], format: "oci" | "docker" = "oci"): FixtureIndex {
  const type = format === "docker" ? MediaType.dockerManifestList : MediaType.ociIndex;
  const platformOf = (image: FixtureImage) => {
    const c = JSON.parse(image.config.bytes.toString()) as {
      os: string;
      architecture: string;
      variant?: string;
    };
    return { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) };
  };
  const manifest = blob(
    type,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: type,
        manifests: images.map((i) => ({ ...descriptor(i.manifest), platform: platformOf(i) })),
      }),
    ),
  );
  return { kind: "index", manifest, images };
}

/** Pushes with kpull's RegistryClient: blobs, then manifests, then the index under `tag`. */
export async function pushFixture(
  registry: RunningRegistry,
  repository: string,
  tag: string,
  fixture: FixtureImage | FixtureIndex,
  client: RegistryClient,
): Promise<void> {
  const repo = client.repository(`${registry.host}/${repository}`);
  const images = fixture.kind === "index" ? fixture.images : [fixture];
  for (const image of images) {
    for (const b of [image.config, ...image.layers]) await repo.pushBlob(descriptor(b), b.bytes);
    await repo.pushManifest(
      image.manifest.bytes,
      image.manifest.mediaType,
      fixture.kind === "image" ? tag : undefined,
    );
  }
  if (fixture.kind === "index")
    await repo.pushManifest(fixture.manifest.bytes, fixture.manifest.mediaType, tag);
}

/** The standard set: small and multi-layer, gzip and zstd, Docker and OCI, and a two-platform index. */
export function standardFixtures(): Record<string, FixtureImage | FixtureIndex> {
  const base = { "etc/os-release": "ID=kpull\n", "bin/true": "#!/bin/sh\n" };
  return {
    small: buildImage({ layers: [base] }),
    multi: buildImage({
      layers: [base, { "app/main.js": "console.log(1)\n" }, { "app/data.bin": Buffer.alloc(4096, 7) }],
    }),
    zstd: buildImage({ compression: "zstd", layers: [base, { "app/z.txt": "zstd layer\n" }] }),
    docker: buildImage({ format: "docker", layers: [base, { "app/d.txt": "docker schema 2\n" }] }),
    platforms: buildIndex([
      buildImage({ layers: [base, { "arch.txt": "amd64\n" }], architecture: "amd64" }),
      buildImage({ layers: [base, { "arch.txt": "arm64\n" }], architecture: "arm64", variant: "v8" }),
    ]),
  };
}
