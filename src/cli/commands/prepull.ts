import { expandInputs, imageUsesFromText, readManifestSource } from "../../manifests/index.ts";
import { Node, type PullOutcome } from "../../node/index.ts";
import { outputFormat, outputOption, parseCommandArgs, UsageError } from "../args.ts";
import { type CliIo, ExitCode } from "../io.ts";
import {
  credentialsFrom,
  nodeOptions,
  nodeOptionsHelp,
  nodeSettingsFrom,
  platformFrom,
  registryClientOptionsFrom,
  registryOptions,
  registryOptionsHelp,
} from "../registry-options.ts";
import {
  openNodeBackend,
  runtimeOptions,
  runtimeOptionsHelp,
  warnRuntimeIgnores,
} from "../runtime-options.ts";
import { renderTable } from "../table.ts";
import { storeOptions, storeOptionsHelp, writeStructured } from "./store-options.ts";

export const prepullHelp = `Pre-pull every image that manifests (or a plain list) reference and pin them against image GC, so pods
with imagePullPolicy: Never can start on this node without a registry.

Examples:
  # Every image in a directory of manifests
  kpull prepull -f deploy/

  # A plain list, one image per line ('#' starts a comment)
  printf 'nginx:1.27\\nregistry.k8s.io/pause:3.10\\n' | kpull prepull -f -

  # Refresh images already present (Always: one HEAD each, new content only when a tag moved)
  kpull prepull --refresh -f deploy/ -o json

  # Into the node's containerd; the pins are kpull's (kpull gc --runtime-endpoint keeps them)
  kpull prepull -f deploy/ --runtime-endpoint unix:///run/containerd/containerd.sock

Usage:
  kpull prepull -f FILE|DIR|- [-f ...] [--refresh] [-o text|json|yaml] [--root DIR] [--runtime-endpoint URL] [registry flags]

Flags:
  -f, --filename   manifests (every container, init, ephemeral container and image volume) or a list
      --refresh    pull with Always instead of IfNotPresent
  -o, --output     text (the default), json or yaml
  -h, --help       show this help

${storeOptionsHelp}
${runtimeOptionsHelp}
${nodeOptionsHelp}
${registryOptionsHelp}
Exit status: 0 every image is ready for Never, 1 some could not be pulled, 2 bad usage or unreadable input.
`;

/** Images named in manifests, or lines of a plain list when a file holds no manifest. */
async function imagesFrom(inputs: readonly string[], stdin: NodeJS.ReadableStream): Promise<string[]> {
  const images: string[] = [];
  for (const file of await expandInputs(inputs)) {
    const source = await readManifestSource(file, { stdin });
    let uses: ReturnType<typeof imageUsesFromText> = [];
    try {
      uses = imageUsesFromText(source.text, file);
    } catch {
      uses = []; // not YAML: maybe a list
    }
    if (uses.length > 0) {
      for (const u of uses) if (u.image) images.push(u.image);
      continue;
    }
    for (const line of source.text.split(/\r?\n/)) {
      const image = line.replace(/#.*/, "").trim();
      if (image !== "" && !image.includes(" ") && !image.includes(":\t")) images.push(image);
    }
  }
  return [...new Set(images)];
}

export async function prepullCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs("prepull", argv, {
    ...outputOption,
    ...storeOptions,
    ...registryOptions,
    ...nodeOptions,
    ...runtimeOptions,
    filename: { type: "string", short: "f", multiple: true },
    refresh: { type: "boolean" },
  });
  if (values.help) {
    io.stdout.write(prepullHelp);
    return ExitCode.ok;
  }
  const format = outputFormat("prepull", values.output);
  const files = values.filename ?? [];
  if (files.length === 0) throw new UsageError("prepull", "at least one -f FILE|DIR|- is required");
  const images = await imagesFrom(files, io.stdin);
  if (images.length === 0) throw new UsageError("prepull", "no image found in the input");
  const platform = platformFrom("prepull", values.platform);
  const backend = await openNodeBackend(values, io);
  if (backend.runtime) warnRuntimeIgnores(values, io);
  const node = await Node.open({
    store: backend.store,
    ...(backend.runtime ? { service: backend.runtime } : {}),
    registry: registryClientOptionsFrom(values),
    ...nodeSettingsFrom("prepull", values),
    credentials: credentialsFrom("prepull", values, io),
    ...(platform ? { platform } : {}),
  });
  const results: (PullOutcome & { pinned: boolean })[] = [];
  try {
    for (const image of images) {
      const outcome = await node.pull(image, values.refresh ? "Always" : "IfNotPresent");
      let pinned = false;
      if (outcome.action !== "failed") {
        await node.pin(image);
        pinned = true;
      }
      results.push({ ...outcome, pinned });
    }
    await node.save();
  } finally {
    backend.close();
  }
  const ready = results.filter((r) => r.action !== "failed");
  if (format !== "text") {
    writeStructured(io, format, {
      images: results.map((r) => ({
        image: r.image,
        digest: r.digest,
        action: r.action,
        pinned: r.pinned,
        code: r.code,
        message: r.message,
      })),
      readyForNever: ready.map((r) => r.image),
    });
  } else {
    io.stdout.write(
      renderTable(
        ["IMAGE", "ACTION", "PINNED", "DIGEST / ERROR"],
        results.map((r) => [
          r.image,
          r.action,
          r.pinned ? "yes" : "no",
          r.digest ?? `${r.code}: ${r.message}`,
        ]),
      ),
    );
    io.stdout.write(`\n${ready.length} of ${results.length} images ready for imagePullPolicy: Never.\n`);
  }
  return ready.length === results.length ? ExitCode.ok : ExitCode.findings;
}
