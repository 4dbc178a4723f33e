// Loading the TLS material a host entry names, with the checks containerd makes when it builds the host's
// tls.Config (core/remotes/docker/config/hosts.go `tlsConfigFromHost`): a CA file must hold at least one
// certificate (Go's AppendCertsFromPEM), a client pair must hold a certificate and a private key that match
// (Go's tls.X509KeyPair). The material is returned as PEM text for Node's tls options.

import { createPrivateKey, X509Certificate } from "node:crypto";
import { HostsConfigError } from "./errors.ts";
import { MAX_PEM_BYTES, readConfigured } from "./files.ts";

interface PemBlock {
  type: string;
  text: string;
}

function pemBlocks(data: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of data.matchAll(/-----BEGIN ([^-\r\n]+)-----[\s\S]*?-----END \1-----/g)) {
    out.push({ type: m[1] as string, text: m[0] });
  }
  return out;
}

function parseCert(text: string): X509Certificate | null {
  try {
    return new X509Certificate(text);
  } catch {
    return null;
  }
}

/** The certificates of a CA file, one PEM string each; blocks that do not parse are skipped, as Go does. */
export async function loadCA(path: string): Promise<string[]> {
  const data = (await readConfigured(path, MAX_PEM_BYTES, "CA cert")).toString("latin1");
  const certs: string[] = [];
  for (const block of pemBlocks(data)) {
    if (block.type !== "CERTIFICATE") continue;
    const cert = parseCert(block.text);
    if (cert) certs.push(cert.toString());
  }
  if (certs.length === 0)
    throw new HostsConfigError(path, "unable to load CA cert: no PEM certificate found");
  return certs;
}

export interface ClientPair {
  /** The certificate chain, PEM. */
  readonly cert: string;
  /** The private key, PEM. */
  readonly key: string;
}

/** A client certificate and its key; `keyPath` "" means the key is in the certificate file. */
export async function loadClientPair(certPath: string, keyPath: string): Promise<ClientPair> {
  const certData = (await readConfigured(certPath, MAX_PEM_BYTES, "client certificate")).toString("latin1");
  const keyFile = keyPath === "" ? certPath : keyPath;
  const keyData =
    keyPath === ""
      ? certData
      : (await readConfigured(keyPath, MAX_PEM_BYTES, "client key")).toString("latin1");

  const certBlocks = pemBlocks(certData).filter((b) => b.type === "CERTIFICATE");
  const leaf = certBlocks[0] ? parseCert(certBlocks[0].text) : null;
  if (!leaf) {
    throw new HostsConfigError(certPath, "failed to load X509 key pair: no PEM certificate found");
  }
  const keyBlock = pemBlocks(keyData).find(
    (b) => b.type === "PRIVATE KEY" || b.type.endsWith(" PRIVATE KEY"),
  );
  if (!keyBlock)
    throw new HostsConfigError(keyFile, "failed to load X509 key pair: no PEM private key found");
  let matches: boolean;
  try {
    matches = leaf.checkPrivateKey(createPrivateKey(keyBlock.text));
  } catch (err) {
    throw new HostsConfigError(keyFile, "failed to load X509 key pair: cannot parse the private key", {
      cause: err,
    });
  }
  if (!matches) {
    throw new HostsConfigError(
      keyFile,
      `failed to load X509 key pair: private key does not match ${certPath}`,
    );
  }
  return { cert: certBlocks.map((b) => b.text).join("\n"), key: keyBlock.text };
}
