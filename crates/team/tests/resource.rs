//! The resource server against a real OpenID provider (oidc-provider): metadata, 401 and 403,
//! audience and algorithm pinning, key rotation, a provider that goes down, Host and Origin.
//!
//! Behind the resource server sits a probe that answers with the principal it was handed: what
//! the MCP endpoint will receive.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::{Extension, Json, Router};
use keybridge_catalog::Scope;
use keybridge_team::resource::{Principal, ResourceConfig, ResourceServer, protect};
use keybridge_testkit::{IdentityClient, IdentityProvider};
use serde_json::{Value, json};

const READER: IdentityClient = IdentityClient { id: "reader", secret: "reader-secret", scope: "qc:account:read" };

struct World {
    provider: IdentityProvider,
    resource: String,
    runtime: tokio::runtime::Runtime,
    http: reqwest::blocking::Client,
}

fn world() -> World {
    world_at("/mcp", |_| {})
}

/// A resource server for the endpoint at `path` on a free port, configured by `configure`.
fn world_at(path: &str, configure: impl FnOnce(&mut ResourceConfig) + Send + 'static) -> World {
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    let provider = IdentityProvider::start(&scopes, &[READER]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let issuer = provider.issuer();
    let resource = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let resource = format!("http://{}{path}", listener.local_addr().unwrap());
        let mut config = ResourceConfig::new(&issuer, &resource);
        config.unknown_key_refresh = Duration::from_millis(300);
        configure(&mut config);
        let server = Arc::new(ResourceServer::discover(config).await.unwrap());
        let route = if path.is_empty() { "/" } else { path };
        let probe = Router::new().route(
            route,
            post(|Extension(principal): Extension<Principal>| async move {
                let scopes: Vec<&str> = principal.scopes.iter().map(|s| s.as_str()).collect();
                Json(json!({"subject": principal.subject, "client": principal.client_id, "scopes": scopes}))
            }),
        );
        tokio::spawn(async move { axum::serve(listener, protect(probe, server)).await.unwrap() });
        resource
    });
    World { provider, resource, runtime, http: reqwest::blocking::Client::new() }
}

fn call(tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

impl World {
    fn post(&self, token: Option<&str>, body: &Value) -> (u16, String, Value) {
        let mut request = self.http.post(&self.resource).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let reply = request.send().unwrap();
        let status = reply.status().as_u16();
        let challenge =
            reply.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (status, challenge, reply.json().unwrap_or(Value::Null))
    }

    fn token(&self, scope: &str) -> String {
        self.provider.token(&READER, scope, &self.resource)
    }
}

#[test]
fn a_call_without_a_token_is_told_where_to_find_the_metadata() {
    let world = world();
    let (status, challenge, _) = world.post(None, &call("read_account"));
    assert_eq!(status, 401);
    let metadata_url = world.resource.replace("/mcp", "/.well-known/oauth-protected-resource/mcp");
    assert!(challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")), "{challenge}");
    let metadata: Value = world.http.get(&metadata_url).send().unwrap().json().unwrap();
    assert_eq!(metadata["resource"], world.resource);
    assert_eq!(metadata["authorization_servers"], json!([world.provider.issuer()]));
    assert_eq!(metadata["scopes_supported"].as_array().unwrap().len(), Scope::ALL.len());
    let root = world.resource.replace("/mcp", "/.well-known/oauth-protected-resource");
    assert_eq!(world.http.get(root).send().unwrap().json::<Value>().unwrap(), metadata);
    drop(world.runtime);
}

#[test]
fn a_token_for_another_resource_or_of_another_kind_is_refused() {
    let world = world();
    let elsewhere = world.provider.token(&READER, "qc:account:read", "http://127.0.0.1:1/mcp");
    let (status, challenge, body) = world.post(Some(&elsewhere), &call("read_account"));
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token") && challenge.contains("another resource"), "{challenge} {body}");

    let (status, _, body) = world.post(Some("not-a-token"), &call("read_account"));
    assert_eq!(status, 401, "{body}");

    // The same claims, re-signed with HMAC over the provider's public key: algorithm confusion.
    let good = world.token("qc:account:read");
    let claims = good.split('.').nth(1).unwrap();
    let header = base64url(br#"{"alg":"HS256","typ":"at+jwt","kid":"key-1"}"#);
    let forged = format!("{header}.{claims}.c2lnbmF0dXJl");
    let (status, challenge, _) = world.post(Some(&forged), &call("read_account"));
    assert_eq!(status, 401);
    assert!(challenge.contains("an algorithm this endpoint does not accept"), "{challenge}");

    // A key id made to break out of the challenge is not repeated in it.
    for kid in ["x\", scope=\"qc:projects:delete", "x\r\nSet-Cookie: a=b"] {
        let header = base64url(json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}).to_string().as_bytes());
        let (status, challenge, _) = world.post(Some(&format!("{header}.{claims}.c2ln")), &call("read_account"));
        assert_eq!(status, 401);
        assert!(challenge.contains("a key the identity provider does not publish"), "{challenge}");
        assert!(!challenge.contains("qc:projects:delete") && !challenge.contains("Set-Cookie"), "{challenge}");
    }
    drop(world.runtime);
}

#[test]
fn a_call_the_scopes_do_not_cover_gets_403_naming_the_scope() {
    let world = world();
    let token = world.token("qc:account:read");
    let (status, _, body) = world.post(Some(&token), &call("read_account"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"subject": "reader", "client": "reader", "scopes": ["qc:account:read"]}));

    let needed = keybridge_catalog::find("delete_project").unwrap().scope;
    let (status, challenge, body) = world.post(Some(&token), &call("delete_project"));
    assert_eq!(status, 403);
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains(&format!("scope=\"{needed}\"")),
        "{challenge}"
    );
    assert!(body["error"].as_str().unwrap().contains(needed.as_str()), "{body}");
    // Not a call: the scopes are the MCP endpoint's business.
    let (status, _, _) = world.post(Some(&token), &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    assert_eq!(status, 200);
    // A batch is checked call by call; what cannot be checked is refused, not passed on.
    let (status, challenge, _) = world.post(Some(&token), &json!([call("read_account"), call("delete_project")]));
    assert_eq!(status, 403);
    assert!(challenge.contains(&format!("scope=\"{needed}\"")), "{challenge}");
    assert_eq!(world.post(Some(&token), &json!([call("read_account")])).0, 200);
    for unclear in [call("no_such_tool"), json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {}})] {
        assert_eq!(world.post(Some(&token), &unclear).0, 400, "{unclear}");
    }
    let not_json = world.http.post(&world.resource).bearer_auth(&token).body("{not json").send().unwrap();
    assert_eq!(not_json.status().as_u16(), 400);
    drop(world.runtime);
}

#[test]
fn the_provider_rotates_its_key_and_calls_keep_working() {
    let mut world = world();
    let before = world.token("qc:account:read");
    assert_eq!(world.post(Some(&before), &call("read_account")).0, 200);
    world.provider.rotate_key();
    let after = world.token("qc:account:read");
    assert_ne!(kid(&before), kid(&after), "the new key signs");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(world.post(Some(&after), &call("read_account")).0, 200, "the new key is fetched");
    assert_eq!(world.post(Some(&before), &call("read_account")).0, 200, "tokens of the old key still verify");
    world.provider.stop();
    assert_eq!(
        world.post(Some(&after), &call("read_account")).0,
        200,
        "the provider down, the keys in hand still serve"
    );
    drop(world.runtime);
}

#[test]
fn a_key_the_provider_withdrew_is_refused_once_its_grace_is_over() {
    let mut world = world_at("/mcp", |config| {
        config.keys_refresh_every = Duration::from_millis(200);
        config.withdrawn_key_grace = Duration::from_millis(200);
    });
    let before = world.token("qc:account:read");
    assert_eq!(world.post(Some(&before), &call("read_account")).0, 200);
    world.provider.replace_key();
    let after = world.token("qc:account:read");
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(world.post(Some(&after), &call("read_account")).0, 200, "the new key is fetched");
    // That fetch found the old key gone; once its grace is over, its tokens are refused.
    std::thread::sleep(Duration::from_millis(400));
    let (status, challenge, _) = world.post(Some(&before), &call("read_account"));
    assert_eq!(status, 401, "{challenge}");
    drop(world.runtime);
}

#[test]
fn an_endpoint_at_the_root_serves_its_metadata_once() {
    let world = world_at("", |_| {});
    let token = world.token("qc:account:read");
    assert_eq!(world.post(Some(&token), &call("read_account")).0, 200);
    let metadata = format!("{}/.well-known/oauth-protected-resource", world.resource.trim_end_matches('/'));
    let metadata: Value = world.http.get(metadata).send().unwrap().json().unwrap();
    assert_eq!(metadata["resource"], world.resource);
    drop(world.runtime);
}

#[test]
fn a_foreign_host_or_origin_is_refused() {
    let world = world();
    let token = world.token("qc:account:read");
    let foreign = world
        .http
        .post(&world.resource)
        .bearer_auth(&token)
        .header("Origin", "http://evil.example")
        .json(&call("read_account"));
    assert_eq!(foreign.send().unwrap().status().as_u16(), 403);
    let rebound =
        world.http.post(&world.resource).bearer_auth(&token).header("Host", "evil.example").json(&call("read_account"));
    assert_eq!(rebound.send().unwrap().status().as_u16(), 403);
    let own = world.resource.replace("/mcp", "");
    let same = world.http.post(&world.resource).bearer_auth(&token).header("Origin", own).json(&call("read_account"));
    assert_eq!(same.send().unwrap().status().as_u16(), 200);
    drop(world.runtime);
}

fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&base64url_decode(header)).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn base64url_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).unwrap()
}
