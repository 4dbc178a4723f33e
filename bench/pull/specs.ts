// The bench images (issue 9): small, medium, medium:2 (six of medium's eight layers), big, the big layer in
// zstd, many small layers and a two-platform index. `--quick` divides every size by 100 for a smoke run.

import type { ImageSpecB } from "./gen.ts";

export interface BenchSpecs {
  readonly images: readonly ImageSpecB[];
  readonly indexes: readonly { name: string; images: readonly ImageSpecB[] }[];
}

const MB = 1_000_000;

export function benchSpecs(quick: boolean): BenchSpecs {
  const scale = (n: number) => (quick ? Math.max(16_384, Math.round(n / 100)) : n);
  const medium = [44, 36, 30, 26, 22, 18, 14, 10].map((mb, i) => ({
    seed: `medium-${i}`,
    bytes: scale(mb * MB),
  }));
  const medium2 = [
    ...medium.slice(0, 6),
    { seed: "medium2-6", bytes: scale(14 * MB) },
    { seed: "medium2-7", bytes: scale(10 * MB) },
  ];
  const big = { seed: "big", bytes: scale(700 * MB), maxFile: quick ? 1 << 20 : 64 << 20 };
  return {
    images: [
      { name: "small", layers: [{ seed: "small", bytes: scale(6 * MB) }] },
      { name: "medium", layers: medium },
      { name: "medium2", layers: medium2 },
      { name: "big", layers: [big] },
      { name: "zstd", layers: [{ ...big, compression: "zstd" }] },
      {
        name: "many",
        layers: Array.from({ length: 40 }, (_, i) => ({
          seed: `many-${i}`,
          bytes: quick ? 4096 : 40_000 + ((i * 7919) % 200_000),
        })),
      },
    ],
    indexes: [
      {
        name: "multi",
        images: [
          {
            name: "multi-amd64",
            layers: [
              { seed: "multi-amd64-0", bytes: scale(12 * MB) },
              { seed: "multi-amd64-1", bytes: scale(8 * MB) },
            ],
          },
          {
            name: "multi-arm64",
            architecture: "arm64",
            variant: "v8",
            layers: [
              { seed: "multi-arm64-0", bytes: scale(12 * MB) },
              { seed: "multi-arm64-1", bytes: scale(8 * MB) },
            ],
          },
        ],
      },
    ],
  };
}
