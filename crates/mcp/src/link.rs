//! The bridge's connection to the broker: one socket, many concurrent calls, and a new
//! connection (with a new session) whenever the broker goes away and comes back.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keybridge_broker_proto::{
    Credential, ErrorCode, ErrorInfo, Hello, PROTOCOL_VERSION, Request, RequestBody, Response, SessionInfo, ToolInfo,
    read_frame, write_frame,
};
use keybridge_endpoint::{EndpointError, Stream};

use crate::launch::AppLauncher;
use serde_json::Value;
use tokio::io::WriteHalf;
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Who the bridge is, and where the broker listens.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub socket: PathBuf,
    pub client_id: String,
    pub client_key: Option<Credential>,
    /// What to start when no broker answers.
    pub app: AppLauncher,
}

/// Why a request did not get an answer from the broker.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error(
        "Keybridge is not running (nothing listens at {socket}): {why}. Start the Keybridge app, or run `keybridge serve` in a terminal"
    )]
    NotRunning { socket: String, why: String },
    #[error("{}", .0.message)]
    Refused(ErrorInfo),
    #[error(
        "the connection to Keybridge was lost during the call; it may or may not have run, check Keybridge's activity log"
    )]
    LostDuringCall,
    /// The MCP client cancelled the call; the broker was told to stop waiting for it.
    #[error("the call was cancelled by the MCP client")]
    Cancelled,
    /// An answer this bridge does not expect where it came: not a refusal, a mismatch.
    #[error(
        "Keybridge answered in a way this keybridge-mcp does not expect ({0}); update Keybridge so the app and keybridge-mcp are of one version"
    )]
    Protocol(String),
}

impl LinkError {
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            LinkError::Refused(info) => Some(info.code),
            LinkError::Cancelled => Some(ErrorCode::Cancelled),
            _ => None,
        }
    }
}

/// Something the broker said while a call waited.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub summary: String,
    pub seconds_left: u64,
}

type Pending = Arc<std::sync::Mutex<HashMap<u64, (oneshot::Sender<Response>, Option<mpsc::UnboundedSender<Waiting>>)>>>;

struct Connection {
    writer: Mutex<WriteHalf<Stream>>,
    pending: Pending,
    session: std::sync::Mutex<SessionInfo>,
    alive: watch::Receiver<bool>,
}

/// The link to the broker. Cheap to share.
pub struct Link {
    config: LinkConfig,
    next_id: AtomicU64,
    current: Mutex<Option<Arc<Connection>>>,
    /// Scopes of the last session, to notice when they change.
    scopes: std::sync::Mutex<Vec<String>>,
    changes: watch::Sender<u64>,
    /// The broker's last refusal to authenticate, and when: repeated at once for a while, so a
    /// denied pairing does not ask the human again on every request.
    refused: std::sync::Mutex<Option<(std::time::Instant, ErrorInfo)>>,
    /// Whether a broker was ever reached: then one that is gone is most likely restarting.
    reached: std::sync::atomic::AtomicBool,
    /// Events the broker pushes (the client was changed).
    notices: mpsc::UnboundedSender<Value>,
    notices_rx: std::sync::Mutex<Option<mpsc::UnboundedReceiver<Value>>>,
    /// Whether a real MCP conversation began: until then (a `server/discover` probe) the bridge
    /// reaches neither the broker nor the app.
    begun: std::sync::atomic::AtomicBool,
}

/// How long a refusal to authenticate is remembered.
pub const REFUSAL_MEMORY: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("socket", &self.config.socket).field("client", &self.config.client_id).finish()
    }
}

impl Link {
    pub fn new(config: LinkConfig) -> Arc<Self> {
        let (changes, _) = watch::channel(0);
        let (notices, notices_rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            config,
            next_id: AtomicU64::new(1),
            current: Mutex::new(None),
            scopes: std::sync::Mutex::new(Vec::new()),
            changes,
            refused: std::sync::Mutex::new(None),
            reached: std::sync::atomic::AtomicBool::new(false),
            notices,
            notices_rx: std::sync::Mutex::new(Some(notices_rx)),
            begun: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A real MCP client is talking (not a probe): authenticate now, keep the token fresh and
    /// follow changes to the client, for as long as the process lives. Only the first call acts.
    pub fn begin(self: &Arc<Self>) {
        if self.begun.swap(true, Ordering::SeqCst) {
            return;
        }
        let authenticating = self.clone();
        tokio::spawn(async move {
            if let Err(e) = authenticating.session().await {
                tracing::warn!("{e}");
            }
        });
        tokio::spawn(self.clone().keep_fresh());
        tokio::spawn(self.clone().follow_changes());
    }

    /// Ticks whenever the session's scopes differ from the previous session's.
    pub fn scope_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The live session, connecting (and authenticating) first if needed.
    pub async fn session(&self) -> Result<SessionInfo, LinkError> {
        let conn = self.connection().await?;
        let session = conn.session.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(session)
    }

    async fn connection(&self) -> Result<Arc<Connection>, LinkError> {
        let mut current = self.current.lock().await;
        if let Some(conn) = current.as_ref()
            && *conn.alive.borrow()
        {
            return Ok(conn.clone());
        }
        if let Some((when, error)) = self.refused.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && when.elapsed() < REFUSAL_MEMORY
        {
            return Err(LinkError::Refused(error.clone()));
        }
        match self.connect().await {
            Ok(conn) => {
                *current = Some(conn.clone());
                Ok(conn)
            }
            Err(LinkError::Refused(error)) => {
                *self.refused.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((std::time::Instant::now(), error.clone()));
                Err(LinkError::Refused(error))
            }
            Err(other) => Err(other),
        }
    }

    async fn connect(&self) -> Result<Arc<Connection>, LinkError> {
        let socket = self.config.socket.display().to_string();
        let reached = self.reached.load(Ordering::Relaxed);
        let mut why = match &self.config.app {
            _ if reached => "it stopped and did not come back within 10 s".to_string(),
            AppLauncher::Unavailable(why) => why.clone(),
            AppLauncher::Start(_) => String::new(),
        };
        // A broker that was reached before and is gone is most likely restarting (the app
        // relaunched, a busy machine): wait for it up to 10 s. One never reached is started (the
        // app, in the tray) and given 10 s too; if it cannot be started, the MCP client hears so
        // within 2 s.
        let mut attempts = if reached { 100 } else { 20 };
        let mut launched = false;
        // Nothing is written until the endpoint has shown it is this user's.
        let mut attempt = 1;
        let hello = Hello::Bridge {
            version: PROTOCOL_VERSION,
            client_id: self.config.client_id.clone(),
            client_key: self.config.client_key.clone(),
        };
        let (reader, writer, session) = loop {
            match keybridge_endpoint::connect(&self.config.socket).await {
                Ok(stream) => {
                    let (reader, mut writer) = tokio::io::split(stream);
                    // Buffered: a frame's length and body then arrive in one read, not two.
                    let mut reader = tokio::io::BufReader::new(reader);
                    let answer = match write_frame(&mut writer, &hello).await {
                        Ok(()) => read_frame::<Response, _>(&mut reader).await.ok(),
                        Err(_) => None,
                    };
                    match answer {
                        Some(Response::Welcome { session }) => break (reader, writer, session),
                        Some(Response::Error { error, .. }) => return Err(LinkError::Refused(error)),
                        Some(other) => return Err(unexpected(other)),
                        // Closed before a word: a broker that is stopping as it accepted (its
                        // restart under way). Only one that was reached before is waited for.
                        None if reached => {
                            why = "it closed the connection at once, and again until 10 s had passed".into();
                        }
                        None => {
                            return Err(LinkError::NotRunning {
                                socket,
                                why: "it closed the connection at once".into(),
                            });
                        }
                    }
                }
                Err(EndpointError::NotRunning { .. }) => {
                    if !reached && !launched && matches!(self.config.app, AppLauncher::Start(_)) {
                        launched = true;
                        match self.config.app.start() {
                            Ok(()) => {
                                tracing::info!("no broker answered: started the Keybridge app in the tray");
                                attempts = attempt + 100;
                                why = "the Keybridge app was started but did not answer within 10 s".into();
                            }
                            Err(e) => why = e,
                        }
                    }
                }
                Err(refusal) => {
                    return Err(LinkError::Refused(ErrorInfo {
                        code: ErrorCode::NotAuthenticated,
                        message: refusal.to_string(),
                    }));
                }
            }
            if attempt >= attempts {
                return Err(LinkError::NotRunning { socket, why });
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut reader = reader;
        self.note_scopes(&session);
        self.reached.store(true, Ordering::Relaxed);
        let pending: Pending = Arc::default();
        let (alive_tx, alive) = watch::channel(true);
        let dispatch = pending.clone();
        let notices = self.notices.clone();
        tokio::spawn(async move {
            while let Ok(response) = read_frame::<Response, _>(&mut reader).await {
                let id = match &response {
                    Response::Waiting { id, summary, seconds_left, .. } => {
                        let map = dispatch.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some((_, Some(progress))) = map.get(id) {
                            let _ = progress.send(Waiting { summary: summary.clone(), seconds_left: *seconds_left });
                        }
                        continue;
                    }
                    Response::Event { event } => {
                        let _ = notices.send(event.clone());
                        None
                    }
                    other => other.id(),
                };
                if let Some(id) = id
                    && let Some((answer, _)) = dispatch.lock().unwrap_or_else(|e| e.into_inner()).remove(&id)
                {
                    let _ = answer.send(response);
                }
            }
            let _ = alive_tx.send(false);
            // Dropping the senders tells every waiting call the connection is gone.
            dispatch.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        Ok(Arc::new(Connection { writer: Mutex::new(writer), pending, session: std::sync::Mutex::new(session), alive }))
    }

    fn note_scopes(&self, session: &SessionInfo) {
        let mut scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
        if !scopes.is_empty() && *scopes != session.scopes {
            self.changes.send_modify(|n| *n += 1);
        }
        *scopes = session.scopes.clone();
    }

    /// Send one request on a connection and wait for its answer.
    async fn request(
        &self,
        conn: &Connection,
        body: impl FnOnce(&SessionInfo) -> RequestBody,
        progress: Option<mpsc::UnboundedSender<Waiting>>,
        cancel: Option<&CancellationToken>,
    ) -> Result<Response, LinkError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        conn.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id, (tx, progress));
        let body = body(&conn.session.lock().unwrap_or_else(|e| e.into_inner()));
        if write_frame(&mut *conn.writer.lock().await, &Request { id, body }).await.is_err() {
            conn.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            return Err(LinkError::NotRunning {
                socket: self.config.socket.display().to_string(),
                why: "the connection closed as the call was sent".into(),
            });
        }
        let answer = match cancel {
            Some(token) => tokio::select! {
                answer = rx => answer,
                _ = token.cancelled() => {
                    let cancel = Request { id: self.next_id.fetch_add(1, Ordering::Relaxed), body: RequestBody::Cancel { target: id } };
                    let _ = write_frame(&mut *conn.writer.lock().await, &cancel).await;
                    conn.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                    return Err(LinkError::Cancelled);
                }
            },
            None => rx.await,
        };
        match answer {
            Ok(Response::Error { error, .. }) => Err(LinkError::Refused(error)),
            Ok(response) => Ok(response),
            Err(_) => Err(LinkError::LostDuringCall),
        }
    }

    async fn refresh(&self, conn: &Connection) -> Result<(), LinkError> {
        match self.request(conn, |_| RequestBody::Refresh, None, None).await? {
            Response::Token { session, .. } => {
                self.note_scopes(&session);
                *conn.session.lock().unwrap_or_else(|e| e.into_inner()) = session;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The tools this client may use now.
    pub async fn tools(&self) -> Result<Vec<ToolInfo>, LinkError> {
        let response = self
            .with_session(|conn| async move {
                self.request(&conn, |s| RequestBody::ListTools { token: s.token.clone() }, None, None).await
            })
            .await?;
        match response {
            Response::Tools { tools, .. } => Ok(tools),
            other => Err(unexpected(other)),
        }
    }

    /// Run a tool. `safe_to_repeat` allows one retry on a new connection if the broker went
    /// away mid-call; writes are never repeated.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Value,
        safe_to_repeat: bool,
        progress: Option<mpsc::UnboundedSender<Waiting>>,
        cancel: Option<&CancellationToken>,
    ) -> Result<Value, LinkError> {
        let mut repeated = false;
        loop {
            let conn = self.connection().await?;
            let result = self.call_on(&conn, tool, arguments.clone(), progress.clone(), cancel).await;
            match result {
                Err(LinkError::LostDuringCall) if safe_to_repeat && !repeated => {
                    repeated = true;
                    continue;
                }
                other => return other,
            }
        }
    }

    async fn call_on(
        &self,
        conn: &Connection,
        tool: &str,
        arguments: Value,
        progress: Option<mpsc::UnboundedSender<Waiting>>,
        cancel: Option<&CancellationToken>,
    ) -> Result<Value, LinkError> {
        let body = |s: &SessionInfo| RequestBody::Call {
            token: s.token.clone(),
            tool: tool.to_string(),
            arguments: arguments.clone(),
        };
        let first = self.request(conn, body, progress.clone(), cancel).await;
        let response = match first {
            // Expired: refresh transparently and try once more; the call never ran.
            Err(LinkError::Refused(ErrorInfo { code: ErrorCode::TokenExpired, .. })) => {
                self.refresh(conn).await?;
                self.request(conn, body, progress, cancel).await?
            }
            other => other?,
        };
        match response {
            Response::Result { result, .. } => Ok(result),
            other => Err(unexpected(other)),
        }
    }

    /// Run `f` on a live connection; if the session was ended by a broker restart, connect
    /// again once.
    async fn with_session<F, Fut>(&self, f: F) -> Result<Response, LinkError>
    where
        F: Fn(Arc<Connection>) -> Fut,
        Fut: std::future::Future<Output = Result<Response, LinkError>>,
    {
        let conn = self.connection().await?;
        match f(conn).await {
            Err(LinkError::LostDuringCall) => f(self.connection().await?).await,
            other => other,
        }
    }

    /// When the broker says this client changed, take a new token at once: its scopes are
    /// compared with the old ones and a change is announced on [`Link::scope_changes`].
    pub async fn follow_changes(self: Arc<Self>) {
        let Some(mut notices) = self.notices_rx.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        while let Some(event) = notices.recv().await {
            tracing::info!(%event, "client changed in Keybridge");
            if let Ok(conn) = self.connection().await
                && let Err(e) = self.refresh(&conn).await
            {
                tracing::warn!("{e}");
            }
        }
    }

    /// Keep the token fresh: refresh it a minute before it expires, for as long as the
    /// process lives.
    pub async fn keep_fresh(self: Arc<Self>) {
        loop {
            let wait = match self.session().await {
                Ok(session) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    Duration::from_secs(session.expires_at.saturating_sub(now).saturating_sub(60).max(5))
                }
                Err(_) => Duration::from_secs(2),
            };
            tokio::time::sleep(wait).await;
            if let Ok(conn) = self.connection().await {
                let _ = self.refresh(&conn).await;
            }
        }
    }
}

fn unexpected(response: Response) -> LinkError {
    LinkError::Protocol(format!("{response:?}"))
}
