// invalid-image: the image does not parse as a reference, with the grammar Kubernetes uses. The API server
// admits such an object (it does not validate references and defaults the policy to IfNotPresent); the
// kubelet then fails the container with InvalidImageName. No other rule runs on such an image.

import type { Rule } from "../types.ts";

export const invalidImage: Rule = {
  id: "invalid-image",
  name: "InvalidImage",
  description: "The image is not a valid reference: the kubelet fails the container with InvalidImageName",
  help:
    "Kubernetes parses images with the distribution/reference grammar: lowercase repository, a tag of at most " +
    "128 characters from [A-Za-z0-9_.-], a digest of a supported algorithm (sha256, sha384, sha512) with " +
    "lowercase hex of the right length. The API server admits an invalid reference, and every pod then fails " +
    "on the node with InvalidImageName. Write a valid reference, e.g. nginx:1.27 or nginx@sha256:<64 hex>.",
  defaultSeverity: "error",
  tags: ["kubernetes", "reliability"],
  securitySeverity: null,
  modes: null,
  check(subject) {
    const { use } = subject;
    if (use.imageStatus === "invalid-type") {
      return {
        message:
          `${use.containerType === "imageVolume" ? "reference" : "image"} is not a string ` +
          "(a number, boolean, list or map); the API server rejects the object. Quote the image reference.",
        fix: null,
      };
    }
    if (use.imageStatus !== "string" || subject.parseError === null) return null;
    return {
      message:
        `${subject.parseError}. The API server admits it (defaulting the policy to IfNotPresent) and the ` +
        "kubelet fails the container with InvalidImageName. Write a valid reference, e.g. nginx:1.27.",
      fix: null,
    };
  },
};
