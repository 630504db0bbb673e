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
    /// At most one JWKS fetch for a key it does not know, per this long.
    pub unknown_key_refresh: Duration,
    /// The keys are fetched again this often, so a key the provider withdrew is noticed.
    pub keys_refresh_every: Duration,
    /// How long a key the provider no longer publishes is still accepted: the longest an access
    /// token lives, plus the clock leeway.
    pub withdrawn_key_grace: Duration,
    /// The claim that lists the groups a person belongs to (`groups` at Keycloak and Okta with
    /// a groups mapper; `roles` for Entra ID's app roles). The team service uses `groups`: its
    /// configuration cannot change it yet.
    pub groups_claim: String,
}

impl ResourceConfig {
    pub fn new(issuer: &str, resource: &str) -> ResourceConfig {
        ResourceConfig {
            issuer: issuer.to_string(),
            resource: resource.to_string(),
            algorithms: vec![Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256],
            unknown_key_refresh: Duration::from_secs(30),
            keys_refresh_every: Duration::from_secs(600),
            withdrawn_key_grace: Duration::from_secs(3600 + 30),
            groups_claim: "groups".into(),
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
    #[error(
        "`{0}` is not a URL this endpoint can be reached at: https (http only on loopback), a host, and a path of plain segments"
    )]
    Resource(String),
    #[error("the identity provider's {what} `{url}` is not https; only a provider on loopback may use http")]
    Insecure { what: &'static str, url: String },
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
    /// The groups the token says its subject belongs to (the configured claim; none if absent).
    pub groups: BTreeSet<String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token.
    NoToken,
    /// A token that is not one this endpoint accepts; says why, in words of this code's own
    /// (nothing of the token is repeated).
    InvalidToken(&'static str),
    /// A request that is not JSON-RPC this endpoint can check: refused rather than passed on.
    BadRequest(String),
    /// A valid token without the scope the call needs.
    InsufficientScope(Scope),
    /// A `Host` or `Origin` that is not this endpoint's.
    WrongOrigin(String),
    /// A valid token of someone outside the group this route is for.
    NotInGroup(String),
}

struct Key {
    decoding: DecodingKey,
    algorithm: Algorithm,
    /// When a fetch last found it published.
    seen: Instant,
}

struct Keys {
    by_kid: HashMap<String, Key>,
    /// When the last fetch ended, whether it succeeded or not.
    fetched: Option<Instant>,
}

/// The resource server: its configuration, the provider's keys, and the metadata it serves.
pub struct ResourceServer {
    config: ResourceConfig,
    jwks_uri: String,
    http: reqwest::Client,
    keys: Mutex<Keys>,
    /// One fetch of the keys at a time.
    fetching: tokio::sync::Mutex<()>,
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
        // The metadata is routed under the path: a segment axum would read as a pattern cannot be.
        let plain = path
            .split('/')
            .all(|segment| !segment.starts_with(':') && !segment.starts_with('*') && !segment.contains('{'));
        if !plain || !secure_or_loopback(&url) {
            return Err(ResourceError::Resource(config.resource.clone()));
        }
        let issuer_url: reqwest::Url = config
            .issuer
            .parse()
            .map_err(|_| ResourceError::Insecure { what: "issuer", url: config.issuer.clone() })?;
        if !secure_or_loopback(&issuer_url) {
            return Err(ResourceError::Insecure { what: "issuer", url: config.issuer.clone() });
        }
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
        if !jwks_uri.parse::<reqwest::Url>().is_ok_and(|url| secure_or_loopback(&url)) {
            return Err(ResourceError::Insecure { what: "keys (jwks_uri)", url: jwks_uri });
        }
        let server = ResourceServer {
            config,
            jwks_uri,
            http,
            keys: Mutex::new(Keys { by_kid: HashMap::new(), fetched: None }),
            fetching: tokio::sync::Mutex::new(()),
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
    pub async fn authenticate(self: &Arc<Self>, authorization: Option<&str>) -> Result<Principal, Refusal> {
        let token = match authorization.and_then(|value| value.split_once(' ')) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
            _ => return Err(Refusal::NoToken),
        };
        let invalid = Refusal::InvalidToken;
        let head = jsonwebtoken::decode_header(token).map_err(|_| invalid("it is not a signed JWT"))?;
        if !self.config.algorithms.contains(&head.alg) {
            return Err(invalid("it is signed with an algorithm this endpoint does not accept"));
        }
        let typ = head.typ.as_deref().unwrap_or_default().to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err(invalid("it is not an access token (typ at+jwt)"));
        }
        let kid = head.kid.ok_or(invalid("it names no signing key (kid)"))?;
        let (key, algorithm) =
            self.key(&kid).await.ok_or(invalid("it is signed with a key the identity provider does not publish"))?;
        if algorithm != head.alg {
            return Err(invalid("its algorithm is not its key's"));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.resource]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
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
        // RFC 9068: an access token names when it was issued, itself, and its client.
        if !(claims["iat"].is_u64() && claims["jti"].is_string() && claims["client_id"].is_string()) {
            return Err(invalid("it lacks the claims of an access token (iat, jti, client_id)"));
        }
        let scopes = claims["scope"].as_str().unwrap_or_default().split(' ').filter_map(|s| s.parse().ok()).collect();
        Ok(Principal {
            subject: claims["sub"].as_str().unwrap_or_default().to_string(),
            client_id: claims["client_id"].as_str().map(str::to_string),
            scopes,
            token_id: claims["jti"].as_str().map(str::to_string),
            expires_at: claims["exp"].as_u64().unwrap_or(0),
            groups: match &claims[self.config.groups_claim.as_str()] {
                Value::Array(groups) => groups.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                _ => BTreeSet::new(),
            },
        })
    }

    /// The key `kid`. An unknown one has the keys fetched again, at most once per
    /// `unknown_key_refresh`; keys older than `keys_refresh_every` are fetched again meanwhile.
    async fn key(self: &Arc<Self>, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let (found, fetched) = {
            let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            (keys.by_kid.get(kid).map(|k| (k.decoding.clone(), k.algorithm)), keys.fetched)
        };
        let since = fetched.map(|at| at.elapsed());
        if found.is_some() {
            if since.is_none_or(|since| since >= self.config.keys_refresh_every) {
                // In the background: the call in hand has its key.
                let server = self.clone();
                tokio::spawn(async move { server.refresh_once(server.config.keys_refresh_every).await });
            }
            return found;
        }
        if since.is_none_or(|since| since >= self.config.unknown_key_refresh) {
            // A task of its own, so a request that goes away cannot cancel the fetch (and leave
            // the window shut on a fetch that never happened).
            let server = self.clone();
            let fetch = tokio::spawn(async move { server.refresh_once(server.config.unknown_key_refresh).await });
            let _ = fetch.await;
        }
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).by_kid.get(kid).map(|k| (k.decoding.clone(), k.algorithm))
    }

    /// Fetch the keys unless another fetch ended within `window`; one fetch at a time.
    async fn refresh_once(&self, window: Duration) {
        let _one = self.fetching.lock().await;
        let recent =
            self.keys.lock().unwrap_or_else(|e| e.into_inner()).fetched.is_some_and(|at| at.elapsed() < window);
        if recent {
            return;
        }
        if let Err(e) = self.refresh().await {
            // The keys in hand stay: a provider that is down does not stop calls with them.
            tracing::warn!("cannot refresh the identity provider's keys: {e}");
        }
    }

    async fn refresh(&self) -> Result<(), ResourceError> {
        let fetched = fetch_json(&self.http, &self.jwks_uri, "keys (JWKS)").await;
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        // The window starts when a fetch ends, succeeded or not.
        keys.fetched = Some(Instant::now());
        let set: JwkSet =
            serde_json::from_value(fetched?).map_err(|e| provider("keys (JWKS)", &self.jwks_uri, &e.to_string()))?;
        if set.keys.len() > MAX_KEYS {
            let detail = format!("it publishes {} keys, more than the {MAX_KEYS} accepted", set.keys.len());
            return Err(provider("keys (JWKS)", &self.jwks_uri, &detail));
        }
        let now = Instant::now();
        for jwk in &set.keys {
            use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, PublicKeyUse};
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption) | Some(PublicKeyUse::Other(_))) {
                continue;
            }
            let (Some(kid), Ok(decoding)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) else { continue };
            let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                (Some(alg), _) => alg.to_string().parse::<Algorithm>().ok(),
                (None, AlgorithmParameters::OctetKeyPair(_)) => Some(Algorithm::EdDSA),
                (None, AlgorithmParameters::EllipticCurve(ec)) => match ec.curve {
                    EllipticCurve::P256 => Some(Algorithm::ES256),
                    EllipticCurve::P384 => Some(Algorithm::ES384),
                    _ => None,
                },
                (None, AlgorithmParameters::RSA(_)) => Some(Algorithm::RS256),
                _ => None,
            };
            if let Some(algorithm) = algorithm.filter(|a| self.config.algorithms.contains(a)) {
                keys.by_kid.insert(kid, Key { decoding, algorithm, seen: now });
            }
        }
        // A key the provider withdrew is still accepted while tokens it signed could be valid,
        // then no more; and never more keys than a set may hold.
        let grace = self.config.withdrawn_key_grace;
        keys.by_kid.retain(|_, key| key.seen == now || key.seen.elapsed() < grace);
        while keys.by_kid.len() > MAX_KEYS {
            let oldest = keys.by_kid.iter().min_by_key(|(_, key)| key.seen).map(|(kid, _)| kid.clone());
            if let Some(oldest) = oldest {
                keys.by_kid.remove(&oldest);
            }
        }
        Ok(())
    }

    /// The answer to a refused request. Nothing of the request is repeated in a header.
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
            Refusal::NotInGroup(group) => {
                let what = format!("only a person in the identity provider's group `{group}` may do this");
                return (StatusCode::FORBIDDEN, Json(json!({"error": "forbidden", "error_description": what})))
                    .into_response();
            }
            Refusal::BadRequest(what) => {
                return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_request", "error_description": what})))
                    .into_response();
            }
        };
        let mut response = (status, Json(json!({"error": message}))).into_response();
        // Built from this code's own words, the metadata's address and a scope's name: always a
        // valid header.
        let challenge = HeaderValue::from_str(&challenge).expect("a challenge of plain text");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        response
    }

    /// `Host` (or the request's authority) and `Origin` (when sent) must be this endpoint's: a
    /// page elsewhere cannot make a browser call it (DNS rebinding).
    fn check_origin(&self, request: &Request) -> Result<(), Refusal> {
        let host = match request.headers().get(header::HOST) {
            Some(host) => host.to_str().unwrap_or_default().to_string(),
            None => request.uri().authority().map(|a| a.to_string()).unwrap_or_default(),
        };
        if !host.eq_ignore_ascii_case(&self.authority) {
            return Err(Refusal::WrongOrigin(format!("Host `{host}` is not this endpoint's ({})", self.authority)));
        }
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let origin = origin.to_str().map_err(|_| Refusal::WrongOrigin("an Origin that is not text".into()))?;
            if !origin.eq_ignore_ascii_case(&self.origin) {
                return Err(Refusal::WrongOrigin(format!("Origin `{origin}` may not call this endpoint")));
            }
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
    let under_path = !server.path.is_empty();
    let router = router
        .layer(axum::middleware::from_fn_with_state(server, guard))
        .route("/.well-known/oauth-protected-resource", serve_metadata.clone());
    if under_path { router.route(&at_path, serve_metadata) } else { router }
}

/// `router` behind the resource server for the people of `group` alone (approvers, say): any
/// valid token of this endpoint whose subject the provider puts in `group`. A request that
/// passes carries its [`Principal`] as an extension.
pub fn protect_for_group(router: Router, server: Arc<ResourceServer>, group: String) -> Router {
    router.layer(axum::middleware::from_fn_with_state((server, Arc::<str>::from(group)), group_guard))
}

impl ResourceServer {
    /// Who sent `request`, from its own Host and Origin and a valid token; or why not. The
    /// request is read before the future starts: a body is not shared across an await.
    fn caller(
        self: &Arc<Self>,
        request: &Request,
    ) -> impl std::future::Future<Output = Result<Principal, Refusal>> + Send + 'static {
        let origin = self.check_origin(request);
        let authorization =
            request.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).map(str::to_string);
        let server = self.clone();
        async move {
            origin?;
            server.authenticate(authorization.as_deref()).await
        }
    }
}

async fn group_guard(
    State((server, group)): State<(Arc<ResourceServer>, Arc<str>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let principal = match server.caller(&request).await {
        Ok(principal) => principal,
        Err(refusal) => return server.refuse(&refusal),
    };
    if !principal.groups.contains(group.as_ref()) {
        return server.refuse(&Refusal::NotInGroup(group.to_string()));
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

async fn guard(State(server): State<Arc<ResourceServer>>, request: Request, next: Next) -> Response {
    let principal = match server.caller(&request).await {
        Ok(principal) => principal,
        Err(refusal) => return server.refuse(&refusal),
    };
    let announced = request.headers().get(header::CONTENT_LENGTH).and_then(|h| h.to_str().ok()?.parse::<usize>().ok());
    if announced.is_some_and(|length| length > MAX_BODY_BYTES) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "the request is larger than this endpoint reads").into_response();
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => return server.refuse(&Refusal::BadRequest("the request's body could not be read whole".into())),
    };
    match scopes_needed(&bytes) {
        Ok(needed) => {
            if let Some(missing) = needed.into_iter().find(|scope| !principal.scopes.contains(scope)) {
                return server.refuse(&Refusal::InsufficientScope(missing));
            }
        }
        Err(refusal) => return server.refuse(&refusal),
    }
    parts.extensions.insert(principal);
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The scopes a request's `tools/call`s need, one message or a batch. What cannot be checked
/// is refused, never passed on: a body that is not JSON, a call without a tool's name, a tool
/// the catalog does not know.
fn scopes_needed(body: &[u8]) -> Result<Vec<Scope>, Refusal> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let bad = |what: String| Refusal::BadRequest(what);
    let message: Value = serde_json::from_slice(body).map_err(|_| bad("the request is not JSON-RPC".into()))?;
    let messages = match message {
        Value::Array(batch) => batch,
        one => vec![one],
    };
    let mut needed = Vec::new();
    for message in &messages {
        if message.get("method").and_then(Value::as_str) != Some("tools/call") {
            continue;
        }
        let tool = message.pointer("/params/name").and_then(Value::as_str);
        let tool = tool.ok_or_else(|| bad("a tools/call names no tool".into()))?;
        let known = keybridge_catalog::find(tool).ok_or_else(|| bad(format!("there is no tool `{tool}`")))?;
        needed.push(known.scope);
    }
    Ok(needed)
}

/// https, or http to this very machine.
fn secure_or_loopback(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => url.host_str().is_some_and(|host| {
            let ip = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost") || ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }),
        _ => false,
    }
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
