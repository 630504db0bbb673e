// An OpenID provider for team mode's tests: panva's oidc-provider (certified by the OpenID
// Foundation), issuing RFC 9068 access tokens (EdDSA, `at+jwt`) for the resource a client
// names (RFC 8707), by the client-credentials grant, and to people by the device authorization
// grant (RFC 8628), signing in on its development pages with any password.
//
// Environment:
//   PORT       where to listen on 127.0.0.1
//   SCOPES     the scopes it knows, separated by spaces
//   CLIENTS    JSON: [{"id": "...", "secret": "...", "scope": "..."}]
//   KEYS_FILE  its signing keys, kept between starts; ROTATE=1 (or no file) makes a new key,
//              which signs from then on while the older ones stay published, unless
//              WITHDRAW=1, which publishes the new key alone
//   TTL        access token lifetime in seconds (default 300)
//   PEOPLE     JSON: {"login": ["group", ...]}: the groups each person's tokens list (`groups`)
//   DEVICE_CLIENTS  public clients for device sign-in (and its refresh tokens, asked for with
//              `offline_access`), separated by spaces
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import Provider from "oidc-provider";
import * as jose from "jose";

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const scopes = process.env.SCOPES.split(" ");
const clients = JSON.parse(process.env.CLIENTS);
const ttl = Number(process.env.TTL ?? 300);
const people = JSON.parse(process.env.PEOPLE ?? "{}");
const deviceClients = (process.env.DEVICE_CLIENTS ?? "").split(" ").filter(Boolean);

let keys = existsSync(process.env.KEYS_FILE) ? JSON.parse(readFileSync(process.env.KEYS_FILE, "utf8")) : [];
if (keys.length === 0 || process.env.ROTATE === "1") {
  const { privateKey } = await jose.generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const kid = `key-${keys.length + 1}`;
  keys.unshift({ ...(await jose.exportJWK(privateKey)), kid, alg: "EdDSA", use: "sig" });
  if (process.env.WITHDRAW === "1") keys = keys.slice(0, 1);
  writeFileSync(process.env.KEYS_FILE, JSON.stringify(keys));
}

const provider = new Provider(issuer, {
  clients: [
    ...clients.map((c) => ({
      client_id: c.id,
      client_secret: c.secret,
      grant_types: ["client_credentials"],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: "EdDSA",
      scope: c.scope,
    })),
    ...deviceClients.map((id) => ({
      client_id: id,
      token_endpoint_auth_method: "none",
      grant_types: ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: "EdDSA",
    })),
  ],
  scopes: ["openid", "offline_access", ...scopes],
  extraTokenClaims: async (ctx, token) => (token.accountId ? { groups: people[token.accountId] ?? [] } : undefined),
  features: {
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: deviceClients.length > 0 },
    devInteractions: { enabled: deviceClients.length > 0 },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      getResourceServerInfo: (ctx, resource) => ({
        scope: scopes.join(" "),
        audience: resource,
        accessTokenTTL: ttl,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "EdDSA" } },
      }),
      useGrantedResource: () => true,
    },
  },
  jwks: { keys },
});
provider.listen(port, "127.0.0.1", () => console.log(`ready ${issuer} signing with ${keys[0].kid}`));
