//! The OAuth 2.1 resource server in front of team mode's MCP endpoint: whoever calls must bring
//! an access token the team's identity provider issued for this very endpoint.
//!
//! - Protected-resource metadata (RFC 9728) at `/.well-known/oauth-protected-resource` and
//!   under the endpoint's path; a `401` names it in `WWW-Authenticate`.
//! - The issuer is pinned (discovery must say the same), the algorithms are pinned, the
//!   audience must be this endpoint (RFC 8707), the token must be an `at+jwt` (RFC 9068).
//! - Keys come from the provider's JWKS, cached with bounds: at most 1 MiB and 100 keys, a
//!   refresh for an unknown key at most once per [`ResourceConfig::unknown_key_refresh`], and
//!   the keys in hand kept while the provider cannot be reached.
//! - `Host` and `Origin` must be this endpoint's.
//! - A `tools/call` the token's scopes do not cover gets `403 insufficient_scope` naming the
//!   scope it needs.
//!
//! A token is never logged, and goes into no error.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keybridge_catalog::Scope;
use serde_json::{Value, json};

/// The largest JWKS read, and the most keys taken from it.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
const MAX_KEYS: usize = 100;
/// The largest request body looked into for the tool it calls.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// What the resource server accepts.
#[derive(Debug, Clone)]
pub struct ResourceConfig {
    /// The identity provider, exactly as its tokens name it.
    pub issuer: String,
    /// This endpoint's URL (`https://keybridge.team.example/mcp`): the only audience accepted.
    pub resource: String,
    /// The signing algorithms accepted; any other is refused whatever the key.
    pub algorithms: Vec<Algorithm>,
    /// At most one JWKS refresh for a key it does not know, per this long.
    pub unknown_key_refresh: Duration,
}

impl ResourceConfig {
    pub fn new(issuer: &str, resource: &str) -> ResourceConfig {
        ResourceConfig {
            issuer: issuer.to_string(),
            resource: resource.to_string(),
            algorithms: vec![Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256],
            unknown_key_refresh: Duration::from_secs(30),
        }
    }
}

/// Why the resource server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    #[error("cannot read the identity provider's {what} at {url}: {detail}")]
    Provider { what: &'static str, url: String, detail: String },
    #[error(
        "the identity provider at {url} calls itself `{found}`, not the pinned issuer `{pinned}`; set the issuer to what its tokens name"
    )]
    IssuerMismatch { url: String, found: String, pinned: String },
    #[error("`{0}` is not a URL this endpoint can be reached at (http or https, with a host)")]
    Resource(String),
}

/// Who called, as the token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject: a person, or a client acting for itself.
    pub subject: String,
    pub client_id: Option<String>,
    /// The `qc:` scopes the token carries; others are ignored.
    pub scopes: BTreeSet<Scope>,
    /// The token's id, for revocation.
    pub token_id: Option<String>,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token.
    NoToken,
    /// A token that is not one this endpoint accepts; says why.
    InvalidToken(String),
    /// A valid token without the scope the call needs.
    InsufficientScope(Scope),
    /// A `Host` or `Origin` that is not this endpoint's.
    WrongOrigin(String),
}

struct Keys {
    by_kid: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
}

/// The resource server: its configuration, the provider's keys, and the metadata it serves.
pub struct ResourceServer {
    config: ResourceConfig,
    jwks_uri: String,
    http: reqwest::Client,
    keys: Mutex<Keys>,
    /// `scheme://host[:port]` and the path of the resource, for the `Host`/`Origin` checks and
    /// the metadata's address.
    origin: String,
    authority: String,
    path: String,
}

impl std::fmt::Debug for ResourceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceServer")
            .field("issuer", &self.config.issuer)
            .field("resource", &self.config.resource)
            .finish()
    }
}

impl ResourceServer {
    /// Read the provider's discovery document (its issuer must be the pinned one) and its keys.
    pub async fn discover(config: ResourceConfig) -> Result<ResourceServer, ResourceError> {
        let url: reqwest::Url =
            config.resource.parse().map_err(|_| ResourceError::Resource(config.resource.clone()))?;
        let host = url.host_str().filter(|_| matches!(url.scheme(), "http" | "https"));
        let host = host.ok_or_else(|| ResourceError::Resource(config.resource.clone()))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let origin = format!("{}://{authority}", url.scheme());
        let path = url.path().trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| provider("discovery document", &config.issuer, &e.to_string()))?;
        let discovery_url = format!("{}/.well-known/openid-configuration", config.issuer.trim_end_matches('/'));
        let document = fetch_json(&http, &discovery_url, "discovery document").await?;
        let found = document["issuer"].as_str().unwrap_or_default();
        if found != config.issuer {
            return Err(ResourceError::IssuerMismatch {
                url: discovery_url,
                found: found.to_string(),
                pinned: config.issuer.clone(),
            });
        }
        let jwks_uri = document["jwks_uri"]
            .as_str()
            .ok_or_else(|| provider("discovery document", &discovery_url, "it names no jwks_uri"))?
            .to_string();
        let server = ResourceServer {
            config,
            jwks_uri,
            http,
            keys: Mutex::new(Keys { by_kid: HashMap::new(), fetched: None }),
            origin,
            authority,
            path,
        };
        server.refresh().await?;
        Ok(server)
    }

    /// The protected-resource metadata (RFC 9728).
    pub fn metadata(&self) -> Value {
        json!({
            "resource": self.config.resource,
            "authorization_servers": [self.config.issuer],
            "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "bearer_methods_supported": ["header"],
            "resource_name": "Keybridge",
        })
    }

    /// Where the metadata is served.
    pub fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource{}", self.origin, self.path)
    }

    /// Check a request's `Authorization` header; the caller, or why not.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Refusal> {
        let token = match authorization.and_then(|value| value.strip_prefix("Bearer ")) {
            Some(token) if !token.trim().is_empty() => token.trim(),
            _ => return Err(Refusal::NoToken),
        };
        let invalid = |why: &str| Refusal::InvalidToken(why.to_string());
        let head = jsonwebtoken::decode_header(token).map_err(|_| invalid("it is not a signed JWT"))?;
        if !self.config.algorithms.contains(&head.alg) {
            return Err(invalid(&format!("it is signed with {:?}, which this endpoint does not accept", head.alg)));
        }
        let typ = head.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err(invalid("it is not an access token (typ at+jwt)"));
        }
        let kid = head.kid.ok_or_else(|| invalid("it names no signing key (kid)"))?;
        let (key, algorithm) = self.key(&kid).await.ok_or_else(|| {
            invalid(&format!("it is signed with key `{kid}`, which the identity provider does not publish"))
        })?;
        if algorithm != head.alg {
            return Err(invalid("its algorithm is not its key's"));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.resource]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            invalid(match e.kind() {
                ErrorKind::ExpiredSignature => "it expired",
                ErrorKind::InvalidAudience => "it was issued for another resource (audience), not this endpoint",
                ErrorKind::InvalidIssuer => "another issuer issued it",
                ErrorKind::InvalidSignature => "its signature does not verify",
                ErrorKind::ImmatureSignature => "it is not valid yet",
                _ => "its claims are not those of an access token for this endpoint",
            })
        })?;
        let claims = claims.claims;
        let scopes = claims["scope"].as_str().unwrap_or_default().split(' ').filter_map(|s| s.parse().ok()).collect();
        Ok(Principal {
            subject: claims["sub"].as_str().unwrap_or_default().to_string(),
            client_id: claims["client_id"].as_str().map(str::to_string),
            scopes,
            token_id: claims["jti"].as_str().map(str::to_string),
            expires_at: claims["exp"].as_u64().unwrap_or(0),
        })
    }

    /// The key `kid`, fetching the provider's keys again if it is new and the last fetch is
    /// old enough.
    async fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let may_refresh = {
            let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(found) = keys.by_kid.get(kid) {
                return Some(found.clone());
            }
            keys.fetched.is_none_or(|at| at.elapsed() >= self.config.unknown_key_refresh)
        };
        if may_refresh && let Err(e) = self.refresh().await {
            // The keys in hand stay: a provider that is down does not stop calls with them.
            tracing::warn!("cannot refresh the identity provider's keys: {e}");
        }
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).by_kid.get(kid).cloned()
    }

    async fn refresh(&self) -> Result<(), ResourceError> {
        // A failed fetch counts too: an unknown key cannot make the provider be asked in a loop.
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).fetched = Some(Instant::now());
        let set = fetch_json(&self.http, &self.jwks_uri, "keys (JWKS)").await?;
        let set: JwkSet =
            serde_json::from_value(set).map_err(|e| provider("keys (JWKS)", &self.jwks_uri, &e.to_string()))?;
        if set.keys.len() > MAX_KEYS {
            let detail = format!("it publishes {} keys, more than the {MAX_KEYS} accepted", set.keys.len());
            return Err(provider("keys (JWKS)", &self.jwks_uri, &detail));
        }
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) else { continue };
            let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                (Some(alg), _) => alg.to_string().parse::<Algorithm>().ok(),
                (None, jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_)) => Some(Algorithm::EdDSA),
                (None, jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)) => Some(Algorithm::ES256),
                (None, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
                _ => None,
            };
            if let Some(algorithm) = algorithm.filter(|a| self.config.algorithms.contains(a)) {
                by_kid.insert(kid, (key, algorithm));
            }
        }
        // Keys that left the set since the last fetch stay until their tokens could have expired:
        // a token signed a moment before a rotation still verifies.
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.by_kid.extend(by_kid);
        Ok(())
    }

    /// The answer to a refused request.
    pub fn refuse(&self, refusal: &Refusal) -> Response {
        let metadata = self.metadata_url();
        let (status, challenge, message) = match refusal {
            Refusal::NoToken => (
                StatusCode::UNAUTHORIZED,
                format!("Bearer resource_metadata=\"{metadata}\""),
                "this endpoint needs an access token from the team's identity provider".to_string(),
            ),
            Refusal::InvalidToken(why) => (
                StatusCode::UNAUTHORIZED,
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{why}\", resource_metadata=\"{metadata}\""
                ),
                format!("the access token was refused: {why}"),
            ),
            Refusal::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{metadata}\""),
                format!("this call needs the scope {scope}, which the access token does not carry"),
            ),
            Refusal::WrongOrigin(what) => {
                return (StatusCode::FORBIDDEN, Json(json!({"error": "forbidden", "error_description": what})))
                    .into_response();
            }
        };
        let mut response = (status, Json(json!({"error": message}))).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }

    /// `Host` and `Origin` (when sent) must be this endpoint's: a page elsewhere cannot make a
    /// browser call it (DNS rebinding).
    fn check_origin(&self, request: &Request) -> Result<(), Refusal> {
        let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        if !host.eq_ignore_ascii_case(&self.authority) {
            return Err(Refusal::WrongOrigin(format!("Host `{host}` is not this endpoint's ({})", self.authority)));
        }
        if let Some(origin) = request.headers().get(header::ORIGIN).and_then(|h| h.to_str().ok())
            && !origin.eq_ignore_ascii_case(&self.origin)
        {
            return Err(Refusal::WrongOrigin(format!("Origin `{origin}` may not call this endpoint")));
        }
        Ok(())
    }
}

/// `router` behind the resource server, with the metadata routes beside it. A request that
/// passes carries its [`Principal`] as an extension.
pub fn protect(router: Router, server: Arc<ResourceServer>) -> Router {
    let metadata = server.metadata();
    let serve_metadata = get(move || {
        let metadata = metadata.clone();
        async move { Json(metadata) }
    });
    let at_path = format!("/.well-known/oauth-protected-resource{}", server.path);
    router
        .layer(axum::middleware::from_fn_with_state(server, guard))
        .route("/.well-known/oauth-protected-resource", serve_metadata.clone())
        .route(&at_path, serve_metadata)
}

async fn guard(State(server): State<Arc<ResourceServer>>, request: Request, next: Next) -> Response {
    if let Err(refusal) = server.check_origin(&request) {
        return server.refuse(&refusal);
    }
    let authorization = request.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).map(str::to_string);
    let principal = match server.authenticate(authorization.as_deref()).await {
        Ok(principal) => principal,
        Err(refusal) => return server.refuse(&refusal),
    };
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the request is larger than this endpoint reads").into_response();
    };
    if let Some(scope) = scope_needed(&bytes)
        && !principal.scopes.contains(&scope)
    {
        return server.refuse(&Refusal::InsufficientScope(scope));
    }
    parts.extensions.insert(principal);
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The scope a JSON-RPC `tools/call` of a known tool needs.
fn scope_needed(body: &[u8]) -> Option<Scope> {
    let message: Value = serde_json::from_slice(body).ok()?;
    if message["method"] != "tools/call" {
        return None;
    }
    let tool = message["params"]["name"].as_str()?;
    Some(keybridge_catalog::find(tool)?.scope)
}

async fn fetch_json(http: &reqwest::Client, url: &str, what: &'static str) -> Result<Value, ResourceError> {
    let mut response = http.get(url).send().await.map_err(|e| provider(what, url, &e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(provider(what, url, &format!("it answered {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| provider(what, url, &e.without_url().to_string()))? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(provider(what, url, &format!("it is larger than {MAX_JWKS_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| provider(what, url, &format!("it is not JSON: {e}")))
}

fn provider(what: &'static str, url: &str, detail: &str) -> ResourceError {
    ResourceError::Provider { what, url: url.to_string(), detail: detail.to_string() }
}
