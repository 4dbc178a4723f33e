// DiffID and ChainID (spec oci.md §6.3; image-spec config.md).

import { createHash } from "node:crypto";

/** Digest algorithms a DiffID may use, with the hex length of their encoded part. */
const ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof ALGORITHMS;

/** Splits `sha256:<hex>` (or sha512), checking the encoded part; throws TypeError on anything else. */
export function parseDigest(digest: string): { algorithm: DigestAlgorithm; hex: string } {
  const m = /^(sha256|sha512):([a-f0-9]+)$/.exec(digest);
  const algorithm = m?.[1] as DigestAlgorithm | undefined;
  const hex = m?.[2];
  if (algorithm === undefined || hex === undefined || hex.length !== ALGORITHMS[algorithm]) {
    throw new TypeError(`invalid digest ${JSON.stringify(digest)}: want sha256:<64 hex> or sha512:<128 hex>`);
  }
  return { algorithm, hex };
}

/**
 * ChainIDs for layers applied in order: `ChainID(L0) = DiffID(L0)`, and
 * `ChainID(L0…Ln) = sha256(ChainID(L0…Ln-1) + " " + DiffID(Ln))`. Snapshots are keyed by them.
 */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  let chain: string | undefined;
  for (const diffId of diffIds) {
    parseDigest(diffId);
    chain =
      chain === undefined
        ? diffId
        : `sha256:${createHash("sha256").update(`${chain} ${diffId}`).digest("hex")}`;
    out.push(chain);
  }
  return out;
}
