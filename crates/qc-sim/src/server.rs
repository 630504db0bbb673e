//! The HTTP side: a hand-written accept loop (so a fault can close one connection
//! without answering), the API entry point that records, injects faults, authenticates
//! and dispatches, and the `/__sim/*` control routes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::api::{self, Reply};
use crate::auth::{self, AuthOutcome};
use crate::config::SimConfig;
use crate::fault::{Fault, FaultRule, normalize_endpoint};
use crate::state::SimState;

const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// One API request as the simulator received it, recorded before faults and
/// authentication are applied (the `/__sim/*` control routes are not recorded).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RecordedRequest {
    /// The endpoint without `/api/v2`, e.g. `/projects/create`.
    pub endpoint: String,
    /// The Basic-auth user name, when the header could be read.
    pub user_id: Option<String>,
    /// Whether the signature was valid.
    pub authenticated: bool,
    /// The JSON body (`{}` when empty); for multipart, an object of the text fields and
    /// the file part as a (lossy UTF-8) string; a body that is not JSON as a string.
    pub body: Value,
}

pub(crate) struct Shared {
    pub accounts: Vec<crate::config::SimAccount>,
    pub window_secs: u64,
    pub reads_until_complete: u32,
    pub clock_offset: AtomicI64,
    pub faults: Mutex<Vec<FaultRule>>,
    pub requests: Mutex<Vec<RecordedRequest>>,
    pub state: Mutex<SimState>,
    pub addr: SocketAddr,
}

/// A poisoned lock only means a handler panicked mid-request; the data is still usable
/// for a test double, and refusing every later request would hide the first failure.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn now(&self) -> i64 {
        let real = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        real + self.clock_offset.load(Ordering::Relaxed)
    }

    fn sim_system_time(&self) -> SystemTime {
        let offset = self.clock_offset.load(Ordering::Relaxed);
        let now = SystemTime::now();
        if offset >= 0 {
            now + Duration::from_secs(offset as u64)
        } else {
            now.checked_sub(Duration::from_secs(offset.unsigned_abs())).unwrap_or(UNIX_EPOCH)
        }
    }

    /// Consumes the rules that match: every matching latency rule adds up, and the first
    /// matching other fault is the one that answers.
    fn take_faults(&self, endpoint: &str) -> (Duration, Option<Fault>) {
        let mut rules = lock(&self.faults);
        let mut latency = Duration::ZERO;
        let mut terminal = None;
        for rule in rules.iter_mut() {
            if !rule.matches(endpoint) || rule.times == Some(0) {
                continue;
            }
            match &rule.fault {
                Fault::Latency(d) => latency += *d,
                other if terminal.is_none() => terminal = Some(other.clone()),
                _ => continue,
            }
            if let Some(n) = rule.times.as_mut() {
                *n -= 1;
            }
        }
        rules.retain(|r| r.times != Some(0));
        (latency, terminal)
    }
}

/// Lets a handler close its own TCP connection without an answer.
#[derive(Clone)]
struct ConnControl {
    kill: Arc<Notify>,
}

struct Inner {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// A running simulator. Clones share the server; it stops when [`SimHandle::shutdown`]
/// is called on any clone, or when the last clone is dropped.
#[derive(Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle").field("addr", &self.inner.shared.addr).finish_non_exhaustive()
    }
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.inner.shared.addr
    }

    /// `http://127.0.0.1:PORT/api/v2`
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v2", self.addr())
    }

    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.inner.shared.faults).push(rule);
    }

    pub fn clear_faults(&self) {
        lock(&self.inner.shared.faults).clear();
    }

    /// The simulator's clock becomes the real clock plus `secs`.
    pub fn set_clock_offset(&self, secs: i64) {
        self.inner.shared.clock_offset.store(secs, Ordering::Relaxed);
    }

    /// Every API request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.shared.requests).clone()
    }

    /// How many recorded requests went to `endpoint` (with or without `/api/v2`).
    pub fn request_count(&self, endpoint: &str) -> usize {
        let endpoint = normalize_endpoint(endpoint);
        lock(&self.inner.shared.requests).iter().filter(|r| r.endpoint == endpoint).count()
    }

    pub fn clear_requests(&self) {
        lock(&self.inner.shared.requests).clear();
    }

    /// Stops accepting, closes every open connection (requests held by a `Timeout` fault
    /// included) and waits for the server task to end.
    pub async fn shutdown(self) {
        let _ = self.inner.shutdown.send(true);
        let task = lock(&self.inner.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves the simulator on a spawned task.
/// Only loopback addresses are accepted: the simulator must never listen beyond this machine.
pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<SimHandle> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("the QuantConnect simulator only listens on loopback, not on {addr}"),
        ));
    }
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        state: Mutex::new(SimState::new(&config.accounts)),
        accounts: config.accounts,
        window_secs: config.timestamp_window_secs,
        reads_until_complete: config.backtest_reads_until_complete,
        clock_offset: AtomicI64::new(config.clock_offset_secs),
        faults: Mutex::new(config.faults),
        requests: Mutex::new(Vec::new()),
        addr,
    });
    let (tx, rx) = watch::channel(false);
    let router = router(shared.clone());
    let task = tokio::spawn(accept_loop(listener, router, rx));
    Ok(SimHandle { inner: Arc::new(Inner { shared, shutdown: tx, task: Mutex::new(Some(task)) }) })
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    // An error means every handle is gone, which is a stop as well.
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn accept_loop(listener: TcpListener, router: Router, mut rx: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stopped(&mut rx) => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "simulator accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let kill = Arc::new(Notify::new());
        let service = TowerToHyperService::new(router.clone().layer(Extension(ConnControl { kill: kill.clone() })));
        let mut rx = rx.clone();
        connections.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            // Dropping the connection future drops the socket: the peer sees the
            // connection close with no HTTP response at all.
            tokio::select! {
                _ = conn => {}
                _ = kill.notified() => {}
                _ = stopped(&mut rx) => {}
            }
        });
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/__sim/health", get(health))
        .route("/__sim/faults", post(add_fault).delete(clear_faults))
        .route("/__sim/auth0/{brokerage}", get(auth0_page))
        .route("/__sim/objects/{token}", get(download))
        .route("/api/v2/{*endpoint}", any(api_entry))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response_with_state(shared.clone(), add_date))
        .with_state(shared)
}

/// Every answer carries the simulator's own time, so a client can measure its clock skew.
async fn add_date(State(shared): State<Arc<Shared>>, mut res: Response) -> Response {
    let date = httpdate::fmt_http_date(shared.sim_system_time());
    if let Ok(v) = HeaderValue::from_str(&date) {
        res.headers_mut().insert(header::DATE, v);
    }
    res
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn failure(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({"success": false, "errors": [message]}))
}

async fn health() -> Response {
    json_response(StatusCode::OK, &json!({"success": true, "status": "ok"}))
}

async fn add_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let rule = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("rule").and_then(Value::as_str).map(str::to_owned));
    let Some(rule) = rule else {
        return failure(StatusCode::BAD_REQUEST, "expected a JSON body {\"rule\": \"<fault rule>\"}");
    };
    match rule.parse::<FaultRule>() {
        Ok(parsed) => {
            let text = parsed.to_string();
            lock(&shared.faults).push(parsed);
            json_response(StatusCode::OK, &json!({"success": true, "rule": text}))
        }
        Err(e) => failure(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    lock(&shared.faults).clear();
    json_response(StatusCode::OK, &json!({"success": true}))
}

async fn auth0_page(Path(brokerage): Path<String>) -> Response {
    let brokerage: String = brokerage.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let html = format!(
        "<!doctype html><title>Simulated authorization</title>\
         <p>The QuantConnect simulator authorized the {brokerage} connection. \
         You can close this window.</p>"
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

async fn download(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Response {
    let data = lock(&shared.state).downloads.get(&token).cloned();
    match data {
        Some(bytes) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/zip")], bytes).into_response(),
        None => failure(StatusCode::NOT_FOUND, "No such download."),
    }
}

async fn not_found() -> Response {
    failure(StatusCode::NOT_FOUND, "Not found.")
}

/// A parsed request body: JSON, or multipart with its file parts kept as bytes.
struct ParsedBody {
    value: Value,
    uploads: std::collections::HashMap<String, Vec<u8>>,
    error: Option<String>,
}

async fn parse_body(headers: &HeaderMap, req: Request) -> ParsedBody {
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("multipart/form-data"));
    let mut parsed = ParsedBody { value: Value::Object(Map::new()), uploads: Default::default(), error: None };
    if is_multipart {
        let mut multipart = match Multipart::from_request(req, &()).await {
            Ok(m) => m,
            Err(e) => {
                parsed.error = Some(format!("The multipart body could not be read: {e}"));
                parsed.value = Value::Null;
                return parsed;
            }
        };
        let mut fields = Map::new();
        loop {
            match multipart.next_field().await {
                Ok(Some(field)) => {
                    let name = field.name().unwrap_or_default().to_owned();
                    match field.bytes().await {
                        Ok(bytes) => {
                            let text = String::from_utf8_lossy(&bytes).into_owned();
                            fields.insert(name.clone(), Value::String(text));
                            parsed.uploads.insert(name, bytes.to_vec());
                        }
                        Err(e) => {
                            parsed.error = Some(format!("The multipart body could not be read: {e}"));
                            break;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    parsed.error = Some(format!("The multipart body could not be read: {e}"));
                    break;
                }
            }
        }
        parsed.value = Value::Object(fields);
        return parsed;
    }

    let bytes = match axum::body::to_bytes(req.into_body(), BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            parsed.error = Some(format!("The request body could not be read: {e}"));
            parsed.value = Value::Null;
            return parsed;
        }
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return parsed;
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => parsed.value = v,
        Err(_) => {
            parsed.value = Value::String(String::from_utf8_lossy(&bytes).into_owned());
            parsed.error = Some("The request body is not valid JSON.".to_owned());
        }
    }
    parsed
}

async fn api_entry(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnControl>,
    req: Request,
) -> Response {
    let endpoint = normalize_endpoint(req.uri().path());
    let method = req.method().clone();
    let headers = req.headers().clone();
    let outcome = auth::check(&headers, &shared.accounts, shared.now(), shared.window_secs);
    let body = parse_body(&headers, req).await;

    lock(&shared.requests).push(RecordedRequest {
        endpoint: endpoint.clone(),
        user_id: outcome.user_id().map(str::to_owned),
        authenticated: matches!(outcome, AuthOutcome::Accepted { .. }),
        body: body.value.clone(),
    });

    let (latency, fault) = shared.take_faults(&endpoint);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        None | Some(Fault::Latency(_)) => {}
        Some(Fault::ServerError(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("Simulated server error {code}"),
            )
                .into_response();
        }
        Some(Fault::RateLimited { retry_after_secs }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    (header::RETRY_AFTER, retry_after_secs.to_string()),
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                ],
                "Too many requests",
            )
                .into_response();
        }
        Some(Fault::MalformedJson) => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"success\": true, \"errors\": [], \"projects\": [{\"projectId\": 1",
            )
                .into_response();
        }
        Some(Fault::DropConnection) => {
            conn.kill.notify_one();
            return std::future::pending::<Response>().await;
        }
        Some(Fault::Timeout) => return std::future::pending::<Response>().await,
    }

    let user_id = match outcome {
        AuthOutcome::Accepted { user_id } => user_id,
        AuthOutcome::Refused { message, .. } => {
            let mut res = failure(StatusCode::UNAUTHORIZED, &message);
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"QuantConnect\""));
            return res;
        }
    };

    if method != Method::POST {
        return failure(StatusCode::METHOD_NOT_ALLOWED, "The QuantConnect API only accepts POST requests.");
    }
    if let Some(error) = body.error {
        return json_response(StatusCode::OK, &json!({"success": false, "errors": [error]}));
    }

    let reply = {
        let mut state = lock(&shared.state);
        let SimState { accounts, downloads } = &mut *state;
        let Some(account) = accounts.get_mut(&user_id) else {
            return failure(StatusCode::UNAUTHORIZED, auth::MSG_UNKNOWN_USER);
        };
        let mut ctx = api::Ctx {
            acct: account,
            now: shared.now(),
            reads_until_complete: shared.reads_until_complete,
            origin: format!("http://{}", shared.addr),
            uploads: &body.uploads,
            downloads,
        };
        api::dispatch(&endpoint, &mut ctx, &body.value)
    };

    match reply {
        None => failure(StatusCode::NOT_FOUND, &format!("Endpoint {endpoint} does not exist.")),
        Some(Err(e)) => json_response(StatusCode::OK, &json!({"success": false, "errors": e.0})),
        Some(Ok(Reply::Json(mut v))) => {
            if let Value::Object(map) = &mut v {
                map.entry("success").or_insert(Value::Bool(true));
            }
            json_response(StatusCode::OK, &v)
        }
        Some(Ok(Reply::Redirect(location))) => {
            let mut res = Response::new(Body::empty());
            *res.status_mut() = StatusCode::FOUND;
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            res
        }
    }
}
