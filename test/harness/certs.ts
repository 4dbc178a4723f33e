// Key and certificate material for one test registry, made with the openssl CLI (node:crypto makes keys but
// not X.509 certificates). EC P-256 everywhere: fast to generate, accepted by Go's TLS and by libtrust.

import { execFileSync } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireTool } from "./tools.ts";

export interface TlsMaterial {
  readonly caFile: string;
  readonly caPem: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface SigningMaterial {
  readonly certFile: string;
  readonly certPem: string;
  readonly privateKey: KeyObject;
  /** base64 (standard, not URL) DER of the certificate, for the JWT header `x5c`. */
  readonly certDerBase64: string;
  /** libtrust key ID of the public key, for the JWT header `kid`. */
  readonly kid: string;
}

function openssl(args: string[], cwd: string): void {
  const bin = requireTool("openssl", "openssl");
  execFileSync(bin, args, { cwd, stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** A CA and a server certificate for 127.0.0.1, ::1 and localhost, valid for two days. */
export function makeTlsMaterial(dir: string): TlsMaterial {
  openssl(
    [
      "req",
      "-x509",
      ...EC,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=kpull test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  openssl(["req", ...EC, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"], dir);
  writeFileSync(
    join(dir, "server.ext"),
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
      "",
    ].join("\n"),
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-set_serial",
      "2",
      "-days",
      "2",
      "-extfile",
      "server.ext",
      "-out",
      "server.pem",
    ],
    dir,
  );
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return {
    caFile: join(dir, "ca.pem"),
    caPem: read("ca.pem"),
    certFile: join(dir, "server.pem"),
    keyFile: join(dir, "server.key"),
    certPem: read("server.pem"),
    keyPem: read("server.key"),
  };
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * libtrust's key ID (docker/libtrust util.go keyIDFromCryptoKey): sha256 of the DER SubjectPublicKeyInfo,
 * first 240 bits, base32 without padding, in groups of 4 joined by ':'.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  const id = base32(createHash("sha256").update(der).digest().subarray(0, 30));
  return id.match(/.{1,4}/g)?.join(":") ?? id;
}

/** Token-signing key with a self-signed certificate; the certificate goes in `auth.token.rootcertbundle`. */
export function makeSigningMaterial(dir: string): SigningMaterial {
  openssl(
    [
      "req",
      "-x509",
      ...EC,
      "-keyout",
      "token-signer.key",
      "-out",
      "token-signer.pem",
      "-days",
      "2",
      "-subj",
      "/CN=kpull test token signer",
    ],
    dir,
  );
  const certPem = readFileSync(join(dir, "token-signer.pem"), "utf8");
  const cert = new X509Certificate(certPem);
  return {
    certFile: join(dir, "token-signer.pem"),
    certPem,
    privateKey: createPrivateKey(readFileSync(join(dir, "token-signer.key"))),
    certDerBase64: cert.raw.toString("base64"),
    kid: libtrustKeyId(createPublicKey(certPem)),
  };
}
