// unpinned-image: in mode `pinned`, every image must carry a digest. A tag, even a version tag, can be
// pushed again; only a digest names exactly one image.

import type { Rule } from "../types.ts";

export const unpinnedImage: Rule = {
  id: "unpinned-image",
  name: "UnpinnedImage",
  description: "In mode pinned, the image has no digest",
  help:
    "A tag can be moved to another image by anyone who can push; a digest names exactly one image. In mode " +
    "pinned every image must carry one. `kpull pin` resolves each tag to the digest it points to now and " +
    "writes name:tag@sha256:… (the tag stays for readers), recording digests in a lock file.",
  defaultSeverity: "error",
  tags: ["security", "kubernetes", "supply-chain"],
  securitySeverity: "4.0",
  modes: ["pinned"],
  check(subject) {
    if (subject.mode !== "pinned" || subject.parsed === null || subject.pinned) return null;
    return {
      message:
        `image ${JSON.stringify(subject.use.image)} is not pinned by digest, which mode pinned requires: ` +
        "a tag can be pushed again. Run kpull pin to add the digest the tag points to now.",
      fix: null,
    };
  },
};
