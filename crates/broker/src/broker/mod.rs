//! The broker core: authentication, authorization, approvals, execution and audit, with no
//! transport. The socket server and the desktop app both drive this type.
//!
//! [`Broker`] is a façade over the pipeline, one module per stage:
//! - [`auth`]: a bridge's authentication (client key or host-bound pairing), sessions and tokens;
//! - [`calls`]: a tool call, cleared (token, pause, scope, arguments, policy), asked (the human's
//!   approval), executed (QuantConnect, within the concurrency limits) and recorded;
//! - [`admin`]: the admin commands, one module per family.
//!
//! Lock order: no code path holds two of the broker's locks at once. Each lock guards one map
//! and is released before the next is taken (a guard is never held across an `.await`), so no
//! order between them can deadlock.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keybridge_broker_proto::BrokerEvent;
use keybridge_catalog::Scope;
use keybridge_quantconnect::{ClientConfig, Credentials, QcClient};
use keybridge_vault::{Accounts, SecretStore};

use tokio::sync::{Semaphore, broadcast};

use crate::approvals::Approvals;
use crate::audit::AuditEvent;
use crate::clients::{Client, Clients};
use crate::policy::{Decision, decide};
use crate::primitives::lock;
use crate::seams::{ApprovalRelay, AuditSink, Backends, StateStore, TokenAuthority};
use crate::settings::Settings;
use crate::tokens::random_id;
use crate::{BrokerError, OpenError};

/// Whom the broker's own look-ups (a project's name for a question) count against.
const BROKER_LOOKUPS: &str = "keybridge";

/// Calls of one session that may wait for approval at once.
pub const MAX_WAITING_PER_SESSION: usize = 5;

/// How a broker is set up.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    pub qc_base_url: String,
    pub approval_timeout: Duration,
    /// Executables accepted as the bridge for host-bound clients.
    pub bridge_executables: Vec<PathBuf>,
    /// QuantConnect calls in flight per account.
    pub account_concurrency: usize,
    /// The version the broker reports (the host's, which carries the commit in development).
    pub version: String,
    /// A bridge this very process started (the app's connection test) needs no pairing
    /// question: there is no other program to approve.
    pub trust_own_bridges: bool,
    /// Start on state that is behind its keychain anchors (a backup put back on purpose), and
    /// anchor it as the newest; recorded in the audit log.
    pub accept_restored_state: bool,
}

impl BrokerConfig {
    pub fn new(data_dir: impl Into<PathBuf>, qc_base_url: impl Into<String>) -> Self {
        Self {
            data_dir: data_dir.into(),
            qc_base_url: qc_base_url.into(),
            approval_timeout: Duration::from_secs(60),
            bridge_executables: Vec::new(),
            account_concurrency: 8,
            version: env!("CARGO_PKG_VERSION").into(),
            trust_own_bridges: false,
            accept_restored_state: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    client_id: String,
    host: Option<String>,
    /// The host's program path, when the broker could tell it.
    host_program: Option<String>,
    started: u64,
    revoked: bool,
    /// The most this session may do whatever its client may (what an identity provider
    /// granted the caller); its tokens, refreshed ones too, carry no more.
    limit: Option<BTreeSet<Scope>>,
}

/// Resolves to whether a pending pairing was approved.
type PairingAnswer = tokio::sync::watch::Receiver<Option<bool>>;

/// The broker. Cheap to share: wrap it in an `Arc`.
pub struct Broker {
    config: BrokerConfig,
    accounts: Accounts,
    clients: Mutex<Clients>,
    sessions: Mutex<HashMap<String, Session>>,
    tokens: Arc<dyn TokenAuthority>,
    audit: Arc<dyn AuditSink>,
    /// Shared with the relay, which hands it answers given through other brokers.
    approvals: Arc<Approvals>,
    relay: Arc<dyn ApprovalRelay>,
    qc: QcClient,
    paused: AtomicBool,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// What each client did lately, against its own limits.
    meter: limits::Meter,
    /// Refused connections and tokens, per client and reason.
    auth_failures: failures::FailureCounts,
    credentials: Mutex<HashMap<String, Arc<Credentials>>>,
    events: broadcast::Sender<BrokerEvent>,
    /// Pairings waiting for the human, by (client, host): MCP hosts often start the same
    /// server twice at once, and the human should be asked once.
    pairings: Mutex<HashMap<(String, String), PairingAnswer>>,
    /// Set when an audit record could not be written.
    audit_failure: Mutex<Option<String>>,
    store: Arc<dyn SecretStore>,
    /// The keychain entry that holds the pause.
    pause_name: String,
    settings: Mutex<Settings>,
    /// Where clients and settings are kept.
    state: Arc<dyn StateStore>,
    /// The store's version the clients in memory were loaded at.
    state_version: std::sync::atomic::AtomicU64,
    /// The accepted bridge executables' SHA-256, read at the first host-bound pairing that
    /// needs them.
    bridge_digests: std::sync::OnceLock<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("data_dir", &self.config.data_dir).finish_non_exhaustive()
    }
}

mod admin;
mod auth;
mod calls;
mod failures;
mod limits;
mod preview;

impl Broker {
    /// Open the broker on `backends` (the host chooses them), with its settings and clients as
    /// they were saved. The install id must be the one the backends were opened for.
    pub fn open(config: BrokerConfig, backends: Backends) -> Result<Self, OpenError> {
        let Backends { secrets, state, audit, tokens, approvals: relay, rates } = backends;
        let install_id = install_id(&config.data_dir)?;
        let qc = QcClient::new(ClientConfig::new(config.qc_base_url.clone())).map_err(OpenError::QuantConnect)?;
        // The pause lives in the keychain: deleting a file must not lift it.
        let pause_name = format!("paused:{install_id}");
        let paused = secrets.get(&pause_name)?.is_some();
        let (events, _) = broadcast::channel(256);
        let settings = state.load_settings(config.approval_timeout)?;
        let state_version = std::sync::atomic::AtomicU64::new(state.version());
        let clients = Clients::load(state.clone())?;
        let approvals = Arc::new(Approvals::default());
        let answered = approvals.clone();
        relay.deliver_to(Box::new(move |id, decision| {
            answered.decide(id, decision);
        }));
        Ok(Self {
            settings: Mutex::new(settings),
            state,
            state_version,
            accounts: Accounts::new(&config.data_dir, secrets.clone()),
            clients: Mutex::new(clients),
            store: secrets,
            pause_name,
            sessions: Mutex::new(HashMap::new()),
            tokens,
            audit,
            approvals,
            relay,
            qc,
            paused: AtomicBool::new(paused),
            limits: Mutex::new(HashMap::new()),
            meter: limits::Meter::new(rates),
            auth_failures: failures::FailureCounts::default(),
            credentials: Mutex::new(HashMap::new()),
            events,
            pairings: Mutex::new(HashMap::new()),
            audit_failure: Mutex::new(None),
            bridge_digests: std::sync::OnceLock::new(),
            config,
        })
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn audit_log(&self) -> &dyn AuditSink {
        self.audit.as_ref()
    }

    /// Approval changes (`{"type": "approval_opened" | "approval_closed", ...}`).
    pub fn subscribe_events(&self) -> broadcast::Receiver<BrokerEvent> {
        self.events.subscribe()
    }

    /// The settings in force.
    pub fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    fn approval_timeout(&self) -> Duration {
        lock(&self.settings).approval_timeout
    }

    fn decide(&self, scope: Scope, client: &Client) -> Decision {
        decide(scope, &lock(&self.settings).policy, &client.policy)
    }

    /// The identity provider's caller a session was opened for, if it was (team mode): limits
    /// count each such caller apart.
    fn caller_of(&self, session_id: &str) -> Option<String> {
        lock(&self.sessions).get(session_id).filter(|s| s.limit.is_some()).and_then(|s| s.host.clone())
    }

    /// A bridge's connection closed: its session ends with it (the bridge starts a new one when
    /// it reconnects), so reconnections cannot pile sessions up. Its allowances go too.
    pub fn connection_closed(&self, session_id: &str) {
        lock(&self.sessions).remove(session_id);
        self.approvals.end_session(session_id);
    }

    /// The version this broker reports to the CLI, the app and `keybridge status`.
    pub fn version(&self) -> &str {
        &self.config.version
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Another broker changed the clients, the settings or the pause it shares with this one:
    /// take them up before deciding anything. The version is read first, so a change that lands
    /// during the reload is taken up at the next check.
    fn catch_up(&self) -> Result<(), BrokerError> {
        let now = self.state.version();
        if now == self.state_version.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.reload_state(now)
    }

    /// The client `client_id` as the shared state holds it. One this broker does not know is
    /// looked for again in the store itself: another replica may have added it a moment ago,
    /// its announcement still on its way.
    fn known_client(&self, client_id: &str) -> Result<Option<Client>, BrokerError> {
        self.catch_up()?;
        if let Some(client) = lock(&self.clients).get(client_id).cloned() {
            return Ok(Some(client));
        }
        self.reload_state(self.state.version())?;
        Ok(lock(&self.clients).get(client_id).cloned())
    }

    fn reload_state(&self, now: u64) -> Result<(), BrokerError> {
        let unreadable = |e: OpenError| BrokerError::StateUnreadable(Box::new(e));
        lock(&self.clients).reload().map_err(unreadable)?;
        *lock(&self.settings) = self.state.load_settings(self.config.approval_timeout).map_err(unreadable)?;
        let paused = self.store.get(&self.pause_name)?.is_some();
        if paused && !self.paused.swap(true, Ordering::SeqCst) {
            // Paused through another broker: no question here stays answerable either.
            self.approvals.deny_where(|_| true);
        }
        self.paused.store(paused, Ordering::SeqCst);
        self.state_version.store(now, Ordering::SeqCst);
        Ok(())
    }

    fn record(&self, event: AuditEvent) {
        if let Err(e) = self.audit.append(&event) {
            tracing::error!(error = %e, "cannot write the audit log");
            // Fail closed: no call runs unrecorded.
            *lock(&self.audit_failure) = Some(e.to_string());
        }
    }

    fn audit_healthy(&self) -> Result<(), BrokerError> {
        match lock(&self.audit_failure).as_ref() {
            None => Ok(()),
            Some(e) => Err(BrokerError::AuditFailed(e.to_string())),
        }
    }
}

/// A random id for this install, made once in the data folder `dir` (created private if need
/// be); it goes into every token's issuer and names this install's keychain entries.
pub fn install_id(dir: &Path) -> Result<String, OpenError> {
    // The data folder is the user's alone, whatever the umask: it holds the audit log.
    keybridge_vault::create_private_dir(dir).map_err(|source| OpenError::Storage {
        action: "create the data folder",
        path: dir.to_path_buf(),
        source: source.into(),
    })?;
    let path = dir.join("install-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = random_id(8);
            keybridge_vault::write_private(&path, id.as_bytes()).map_err(|source| OpenError::Storage {
                action: "write",
                path: path.clone(),
                source: source.into(),
            })?;
            Ok(id)
        }
    }
}

/// Where Keybridge keeps its data: `KEYBRIDGE_HOME`, else the platform's per-user data folder.
pub fn default_data_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("KEYBRIDGE_HOME").filter(|h| !h.is_empty()) {
        return home.into();
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    if cfg!(target_os = "macos") {
        return home.join("Library/Application Support/Keybridge");
    }
    if cfg!(windows)
        && let Some(appdata) = std::env::var_os("APPDATA")
    {
        return PathBuf::from(appdata).join("Keybridge");
    }
    match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(data) => PathBuf::from(data).join("keybridge"),
        None => home.join(".local/share/keybridge"),
    }
}
