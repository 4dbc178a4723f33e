// A small Docker token server (distribution docs/spec/auth/token.md) living in the test process: GET
// <realm>?service=&scope=&scope=, optional Basic credentials (none = anonymous), answers a JWT signed with a
// key whose certificate the registry trusts (`auth.token.rootcertbundle`).

import { randomUUID, sign } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { SigningMaterial } from "./certs.ts";

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/** Which actions `user` (null = anonymous) may do on `scope`; "*" means all requested. */
export type AccessPolicy = (user: string | null, scope: AccessEntry) => string[];

export interface TokenRequestLog {
  readonly time: Date;
  readonly method: string;
  readonly user: string | null;
  readonly service: string | null;
  /** the raw `scope` query parameters, in order */
  readonly scopes: string[];
  readonly requested: AccessEntry[];
  readonly granted: AccessEntry[];
  readonly status: number;
  readonly offlineToken: boolean;
  readonly hadAuthorization: boolean;
}

export interface TokenServer {
  readonly url: string;
  /** the realm the registry advertises (url + "/token") */
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly requests: TokenRequestLog[];
  /** Mint a token directly (e.g. an expired one: expiresIn negative). */
  issue(user: string | null, access: AccessEntry[], options?: { expiresIn?: number }): string;
  close(): Promise<void>;
}

export interface TokenServerOptions {
  users: Record<string, string>;
  access: AccessPolicy;
  service: string;
  issuer: string;
  signing: SigningMaterial;
  /** How the registry finds the key: `x5c` chain (default) or libtrust `kid`. */
  keyHint: "x5c" | "kid";
  expiresIn: number;
  tls?: { cert: string; key: string } | null;
}

/** every known user may pull and push every repository; anonymous may pull repositories under public/ */
export const defaultAccess: AccessPolicy = (user, scope) => {
  if (scope.type === "repository") {
    if (user !== null) return ["pull", "push"];
    return scope.name.startsWith("public/") ? ["pull"] : [];
  }
  if (scope.type === "registry" && scope.name === "catalog" && user !== null) return ["*"];
  return [];
};

/** Parse one resource scope: type before the first ':', actions after the last ':' (names may hold a port). */
export function parseScope(scope: string): AccessEntry | null {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first) return null;
  const type = scope.slice(0, first).replace(/\(.*\)$/, ""); // "repository(plugin)" → "repository"
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(",")
    .filter((a) => a !== "");
  return { type, name, actions };
}

const b64url = (data: string | Buffer) => Buffer.from(data).toString("base64url");

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const requests: TokenRequestLog[] = [];

  const issue = (user: string | null, access: AccessEntry[], o: { expiresIn?: number } = {}): string => {
    const now = Math.floor(Date.now() / 1000);
    const header: Record<string, unknown> = { typ: "JWT", alg: "ES256" };
    if (options.keyHint === "kid") header.kid = options.signing.kid;
    else header.x5c = [options.signing.certDerBase64];
    const claims = {
      iss: options.issuer,
      sub: user ?? "",
      aud: options.service,
      exp: now + (o.expiresIn ?? options.expiresIn),
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign("sha256", Buffer.from(input), {
      key: options.signing.privateKey,
      dsaEncoding: "ieee-p1363",
    });
    return `${input}.${b64url(signature)}`;
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://token.invalid");
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(text),
        ...headers,
      });
      res.end(text);
    };
    if (url.pathname !== "/token")
      return send(404, { errors: [{ code: "NOT_FOUND", message: "no such endpoint" }] });

    const scopes = url.searchParams.getAll("scope");
    const requested = scopes
      .flatMap((s) => s.split(" "))
      .filter((s) => s !== "")
      .map(parseScope)
      .filter((s): s is AccessEntry => s !== null);
    const authz = req.headers.authorization;
    const log = (status: number, user: string | null, granted: AccessEntry[]) =>
      requests.push({
        time: new Date(),
        method: req.method ?? "GET",
        user,
        service: url.searchParams.get("service"),
        scopes,
        requested,
        granted,
        status,
        offlineToken: url.searchParams.get("offline_token") === "true",
        hadAuthorization: authz !== undefined,
      });

    if (req.method !== "GET") {
      // The OAuth2 POST flow is not implemented; 404 is the answer on which clients fall back to GET.
      log(404, null, []);
      return send(404, { errors: [{ code: "UNSUPPORTED", message: "use GET" }] });
    }

    let user: string | null = null;
    if (authz !== undefined) {
      const m = /^Basic\s+(\S+)$/i.exec(authz);
      const decoded = m?.[1] ? Buffer.from(m[1], "base64").toString("utf8") : "";
      const colon = decoded.indexOf(":");
      const name = colon >= 0 ? decoded.slice(0, colon) : "";
      const password = colon >= 0 ? decoded.slice(colon + 1) : "";
      if (!m || colon < 0 || !Object.hasOwn(options.users, name) || options.users[name] !== password) {
        log(401, name || null, []);
        return send(
          401,
          { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
          {
            "www-authenticate": 'Basic realm="kpull-test-token-server"',
          },
        );
      }
      user = name;
    }

    const granted: AccessEntry[] = [];
    for (const scope of requested) {
      const allowed = options.access(user, { ...scope, actions: [...scope.actions] });
      const actions = allowed.includes("*")
        ? scope.actions
        : scope.actions.filter((a) => allowed.includes(a));
      if (actions.length > 0) granted.push({ type: scope.type, name: scope.name, actions });
    }
    log(200, user, granted);
    const token = issue(user, granted);
    send(200, {
      token,
      access_token: token,
      expires_in: options.expiresIn,
      issued_at: new Date().toISOString(),
    });
  };

  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
  return {
    url,
    realm: `${url}/token`,
    service: options.service,
    issuer: options.issuer,
    requests,
    issue,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
