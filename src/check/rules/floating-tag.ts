// floating-tag: no digest, and the tag is absent or exactly `latest` (the comparison the API server makes).
// Such an image changes whenever someone pushes; nodes that pulled at different times run different images.
// Fires in every mode. `nginx:latest@sha256:…` is pinned, so it passes; `nginx:LATEST` is just a tag.

import type { Rule } from "../types.ts";

export const floatingTag: Rule = {
  id: "floating-tag",
  name: "FloatingTag",
  description:
    "The image has no digest and its tag is absent or latest, so it changes whenever someone pushes",
  help:
    "An image without a tag means :latest. A latest image is replaced by every push, so pods started at " +
    "different times run different code, and a rollback cannot bring the old image back. Write a version tag " +
    "(nginx:1.27), or pin a digest with `kpull pin` (nginx:1.27@sha256:…, the tag stays for readers).",
  defaultSeverity: "error",
  tags: ["security", "kubernetes", "supply-chain"],
  securitySeverity: "5.0",
  modes: null,
  check(subject) {
    const parsed = subject.parsed;
    if (parsed === null || parsed.digest !== "") return null;
    const written = parsed.reference.tag;
    if (written !== null && written !== "latest") return null;
    const image = JSON.stringify(subject.use.image);
    const what =
      written === null
        ? `image ${image} has no tag, so it means :latest`
        : `image ${image} uses the tag latest`;
    return {
      message:
        `${what}, which moves with every push: pods started at different times may run different images. ` +
        "Write a version tag, or pin a digest (kpull pin).",
      fix: null,
    };
  },
};
