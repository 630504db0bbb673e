//! Client for the QuantConnect API v2, and the only code in Keybridge that talks to it.
//!
//! [`QcClient`] signs every request as QuantConnect requires (HTTP Basic with the user id and
//! `sha256_hex(token + ":" + timestamp)`, plus a `Timestamp` header), computed fresh per
//! attempt. It corrects its timestamps when QuantConnect's clock differs from ours, retries
//! idempotent reads on transient failures with jittered backoff (honouring `Retry-After`), and
//! never retries a write. QuantConnect's `{"success": false, "errors": [...]}` replies become
//! [`QcError::Api`] even when the HTTP status is 200.
//!
//! This crate must never log, format or return the API token: it lives in a
//! [`keybridge_secret::SecretString`] and is only read to compute a signature.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keybridge_quantconnect::QcError> {
//! use keybridge_quantconnect::{ClientConfig, Credentials, QcClient};
//! let client = QcClient::new(ClientConfig::new("http://127.0.0.1:8080/api/v2"))?;
//! let creds = Credentials::new("1000001", "token".to_string());
//! let tool = keybridge_catalog::find("read_account").unwrap();
//! let account = client.call(&creds, tool, serde_json::Value::Null).await?;
//! # Ok(()) }
//! ```

mod error;
mod signing;

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keybridge_catalog::{Call, Tool};
use keybridge_secret::SecretString;
use reqwest::header::{AUTHORIZATION, DATE, HeaderValue, LOCATION, RETRY_AFTER};
use serde_json::{Map, Value, json};

pub use error::{AuthFailure, QcError};

/// QuantConnect's production API.
pub const DEFAULT_BASE_URL: &str = "https://www.quantconnect.com/api/v2";

/// Keybridge's version, answered by the version tools without a network call.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A QuantConnect user id and API token.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user_id: String,
    pub api_token: SecretString,
}

impl Credentials {
    pub fn new(user_id: impl Into<String>, api_token: String) -> Self {
        Self { user_id: user_id.into(), api_token: SecretString::from(api_token) }
    }
}

/// How the client reaches QuantConnect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// API base, e.g. [`DEFAULT_BASE_URL`] or a simulator's `http://127.0.0.1:PORT/api/v2`.
    pub base_url: String,
    pub connect_timeout: Duration,
    /// Whole-request limit, headers and body.
    pub request_timeout: Duration,
    /// Attempts for a read, the first included. Writes always get one.
    pub max_read_attempts: u32,
    /// First backoff; it doubles per attempt, with jitter.
    pub backoff_base: Duration,
    /// The longest `Retry-After` we wait out; a longer one is returned as [`QcError::RateLimited`].
    pub max_retry_after: Duration,
    /// Follow QuantConnect's clock when it differs from ours.
    pub correct_clock_skew: bool,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_read_attempts: 3,
            backoff_base: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(30),
            correct_clock_skew: true,
        }
    }
}

/// One pooled connection to the QuantConnect API, shared by every account.
#[derive(Debug)]
pub struct QcClient {
    http: reqwest::Client,
    config: ClientConfig,
    /// Seconds to add to our clock to get QuantConnect's, learnt from its `Date` header.
    clock_offset: AtomicI64,
}

/// The body of one request.
enum Body {
    Json(Map<String, Value>),
    Multipart(Map<String, Value>),
}

/// Whether a failed attempt may be repeated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    Reads,
    Never,
}

impl QcClient {
    pub fn new(config: ClientConfig) -> Result<Self, QcError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // The API never redirects except on the brokerage OAuth start, whose Location we
            // hand to the user instead of following.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keybridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| QcError::Unreachable { base_url: config.base_url.clone(), reason: e.to_string() })?;
        Ok(Self { http, config, clock_offset: AtomicI64::new(0) })
    }

    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// Seconds QuantConnect's clock is ahead of ours, as last observed.
    pub fn clock_offset_secs(&self) -> i64 {
        self.clock_offset.load(Ordering::Relaxed)
    }

    /// Check credentials against `/authenticate`.
    pub async fn authenticate(&self, creds: &Credentials) -> Result<(), QcError> {
        self.send("/authenticate", Body::Json(Map::new()), creds, Retry::Reads).await.map(|_| ())
    }

    /// Run one catalog tool: check its arguments, then call QuantConnect. Invalid arguments
    /// fail with [`QcError::InvalidArguments`] before any request is made.
    pub async fn call(&self, creds: &Credentials, tool: &Tool, args: Value) -> Result<Value, QcError> {
        let args = tool.prepare(args)?;
        let retry = if tool.hints().read_only { Retry::Reads } else { Retry::Never };
        match tool.call {
            Call::Json(path) => self.send(path, Body::Json(args), creds, retry).await,
            Call::Multipart(path) => self.send(path, Body::Multipart(args), creds, retry).await,
            // The official server's shape: its output schema is `{"result": string}`.
            Call::ServerVersion => Ok(json!({ "result": VERSION })),
            Call::BrokerageAuthorization => self.authorize_brokerage(creds, args).await,
        }
    }

    /// Start a brokerage OAuth flow: QuantConnect answers the authorize call with a redirect
    /// to the brokerage's consent page, which only the user can open and accept.
    async fn authorize_brokerage(&self, creds: &Credentials, args: Map<String, Value>) -> Result<Value, QcError> {
        let start = self.send("/live/auth0/authorize", Body::Json(args.clone()), creds, Retry::Never).await?;
        let url = start.get("authorizationUrl").or_else(|| start.get("url")).cloned().unwrap_or(Value::Null);
        let status = self.send("/live/auth0/read", Body::Json(args), creds, Retry::Reads).await?;
        Ok(json!({
            "success": true,
            "authorizationUrl": url,
            "instructions": "Open authorizationUrl in a browser and accept; then deploy with create_live_algorithm.",
            "authorization": status,
        }))
    }

    async fn send(&self, path: &str, body: Body, creds: &Credentials, retry: Retry) -> Result<Value, QcError> {
        let max_attempts = if retry == Retry::Reads { self.config.max_read_attempts.max(1) } else { 1 };
        let mut attempt = 0;
        let mut skew_retried = false;
        loop {
            attempt += 1;
            let offset_before = self.clock_offset_secs();
            let started = Instant::now();
            let result = self.attempt(path, &body, creds).await;
            tracing::debug!(
                endpoint = path,
                attempt,
                elapsed_ms = started.elapsed().as_millis() as u64,
                ok = result.is_ok(),
                "quantconnect request"
            );
            let err = match result {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            // A signature rejected for its timestamp did nothing upstream, so even a write
            // may be signed again once, with QuantConnect's clock.
            if let QcError::Authentication { kind, .. } = &err {
                let clock_moved = self.clock_offset_secs() != offset_before;
                if self.config.correct_clock_skew
                    && !skew_retried
                    && (*kind == AuthFailure::StaleTimestamp || clock_moved)
                {
                    skew_retried = true;
                    tracing::info!(offset_secs = self.clock_offset_secs(), "retrying with QuantConnect's clock");
                    continue;
                }
                return Err(err);
            }
            if attempt >= max_attempts || !err.is_transient() {
                return Err(err);
            }
            let wait = match &err {
                QcError::RateLimited { retry_after: Some(after), .. } if *after > self.config.max_retry_after => {
                    return Err(err);
                }
                QcError::RateLimited { retry_after: Some(after), .. } => *after,
                _ => self.backoff(attempt),
            };
            tracing::info!(endpoint = path, attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying read");
            tokio::time::sleep(wait).await;
        }
    }

    /// Exponential backoff with full jitter: spreads retries of many clients apart.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.config.backoff_base.saturating_mul(1 << attempt.min(6));
        ceiling.mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    fn now_for_qc(&self) -> i64 {
        unix_now() + self.clock_offset_secs()
    }

    async fn attempt(&self, path: &str, body: &Body, creds: &Credentials) -> Result<Value, QcError> {
        let url = format!("{}{path}", self.config.base_url);
        let timestamp = self.now_for_qc();
        let mut authorization = HeaderValue::from_str(&signing::authorization(creds, timestamp)).map_err(|_| {
            QcError::InvalidCredentials { reason: "the user id contains characters not allowed in a header".into() }
        })?;
        authorization.set_sensitive(true);
        let request =
            self.http.post(&url).header(AUTHORIZATION, authorization).header("Timestamp", timestamp.to_string());
        let request = match body {
            Body::Json(map) => request.json(map),
            Body::Multipart(map) => request.multipart(multipart_form(map)),
        };
        let response = request.send().await.map_err(|e| self.transport_error(path, e))?;
        self.learn_clock(response.headers().get(DATE));
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = response.bytes().await.map_err(|e| self.transport_error(path, e))?;

        if status.as_u16() == 429 {
            return Err(QcError::RateLimited { endpoint: path.to_string(), retry_after });
        }
        if status.is_server_error() {
            return Err(QcError::Server { endpoint: path.to_string(), status: status.as_u16() });
        }
        if status.is_redirection() {
            return Ok(json!({"success": true, "authorizationUrl": location}));
        }
        let parsed: Result<Value, _> = serde_json::from_slice(&bytes);
        if status.as_u16() == 401 || status.as_u16() == 403 {
            let messages = parsed.as_ref().map(error_messages).unwrap_or_default();
            return Err(QcError::authentication(messages));
        }
        if !status.is_success() {
            return Err(QcError::Http { endpoint: path.to_string(), status: status.as_u16() });
        }
        let value =
            parsed.map_err(|e| QcError::MalformedResponse { endpoint: path.to_string(), reason: e.to_string() })?;
        if value.get("success") == Some(&Value::Bool(false)) {
            let messages = error_messages(&value);
            // QuantConnect reports some authentication failures with HTTP 200.
            if let Some(auth) = QcError::authentication_from_200(&messages) {
                return Err(auth);
            }
            return Err(QcError::Api { endpoint: path.to_string(), messages });
        }
        Ok(value)
    }

    fn learn_clock(&self, date: Option<&HeaderValue>) {
        let Some(server) = date.and_then(|d| d.to_str().ok()).and_then(|d| httpdate::parse_http_date(d).ok()) else {
            return;
        };
        let Ok(server) = server.duration_since(UNIX_EPOCH) else { return };
        let skew = server.as_secs() as i64 - unix_now();
        // `Date` has one-second resolution and the reply took time to arrive: differences
        // this small are noise, not skew.
        let offset = if skew.abs() <= 2 { 0 } else { skew };
        if self.config.correct_clock_skew {
            self.clock_offset.store(offset, Ordering::Relaxed);
        }
    }

    fn transport_error(&self, path: &str, e: reqwest::Error) -> QcError {
        if e.is_timeout() {
            QcError::Timeout { endpoint: path.to_string(), after: self.config.request_timeout }
        } else if e.is_decode() || e.is_body() {
            QcError::MalformedResponse { endpoint: path.to_string(), reason: e.to_string() }
        } else {
            QcError::Unreachable { base_url: self.config.base_url.clone(), reason: error_chain(&e) }
        }
    }
}

fn multipart_form(fields: &Map<String, Value>) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in fields {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        form = if name == "objectData" {
            form.part(name.clone(), reqwest::multipart::Part::bytes(text.into_bytes()).file_name("objectData"))
        } else {
            form.text(name.clone(), text)
        };
    }
    form
}

fn error_messages(value: &Value) -> Vec<String> {
    let mut messages: Vec<String> = value
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| errors.iter().map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string())).collect())
        .unwrap_or_default();
    if let Some(message) = value.get("message").and_then(Value::as_str) {
        messages.push(message.to_string());
    }
    messages
}

/// The whole cause chain: reqwest's top-level message alone ("error sending request") does
/// not say what went wrong.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
