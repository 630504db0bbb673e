//! The broker core: authentication, authorization, approvals, execution and audit, with no
//! transport. The socket server and the desktop app both drive this type.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keybridge_broker_proto::{
    AccountView, AdminCommand, ApprovalDecision, AuditVerified, ClientAdded, ClientSpec, ClientView, Credential,
    SessionInfo, SessionView, StatusView, ToolInfo,
};
use keybridge_catalog::{Preset, Scope, Tool};
use keybridge_quantconnect::{ClientConfig, Credentials, QcClient};
use keybridge_vault::{Account, AccountId, Accounts, SecretStore, SecretString};
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, broadcast};

use crate::approvals::{ApprovalKind, Approvals, Outcome, Pending};
use crate::audit::AuditLog;
use crate::clients::{Client, ClientAuth, Clients, key_hash, new_client_id, resolve_scopes};
use crate::peer::Peer;
use crate::policy::{Decision, decide, parse_overrides};
use crate::settings::Settings;
use crate::tokens::{Claims, Grant, MAX_TTL_SECS, TokenError, TokenIssuer, random_id};
use crate::{BrokerError, own_uid};

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
    started: u64,
    revoked: bool,
}

/// Resolves to whether a pending pairing was approved.
type PairingAnswer = tokio::sync::watch::Receiver<Option<bool>>;

/// The broker. Cheap to share: wrap it in an `Arc`.
pub struct Broker {
    config: BrokerConfig,
    accounts: Accounts,
    clients: Mutex<Clients>,
    sessions: Mutex<HashMap<String, Session>>,
    tokens: TokenIssuer,
    audit: AuditLog,
    approvals: Approvals,
    qc: QcClient,
    paused: AtomicBool,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    credentials: Mutex<HashMap<String, Arc<Credentials>>>,
    events: broadcast::Sender<Value>,
    /// Pairings waiting for the human, by (client, host): MCP hosts often start the same
    /// server twice at once, and the human should be asked once.
    pairings: Mutex<HashMap<(String, String), PairingAnswer>>,
    /// Set when an audit record could not be written.
    audit_failure: Mutex<Option<String>>,
    store: Arc<dyn SecretStore>,
    /// The keychain entry that holds the pause.
    pause_name: String,
    settings: Mutex<Settings>,
    settings_seal: crate::clients::SealKey,
    settings_anchor: crate::anchor::Anchor,
    settings_generation: std::sync::atomic::AtomicU64,
    /// The accepted bridge executables' SHA-256, read at the first host-bound pairing that
    /// needs them.
    bridge_digests: std::sync::OnceLock<Vec<[u8; 32]>>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("data_dir", &self.config.data_dir).finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A JSON value as text with object keys sorted, so equal arguments digest equally.
pub fn canonical(value: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let by_key: BTreeMap<&String, Value> = map.iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(by_key.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Most bytes an audit record keeps of a call's arguments; the keyed digest covers them whole.
pub const MAX_RECORDED_ARGS_BYTES: usize = 2048;
/// Most characters an audit record keeps of an error.
pub const MAX_RECORDED_ERROR_CHARS: usize = 1000;

/// Arguments as they may be audited: brokerage credentials removed, long text cut, and no
/// more than [`MAX_RECORDED_ARGS_BYTES`] in all (a large value is replaced by its size).
pub fn redact(args: &Map<String, Value>) -> Value {
    let shown = redact_cut(args, true);
    let size = |v: &Value| v.to_string().len();
    if size(&shown) <= MAX_RECORDED_ARGS_BYTES {
        return shown;
    }
    let Value::Object(fields) = shown else { return shown };
    let small: Map<String, Value> = fields
        .into_iter()
        .map(|(key, value)| {
            let bytes = size(&value);
            (key, if bytes <= 256 { value } else { json!(format!("<{bytes} bytes, in the digest>")) })
        })
        .collect();
    let small = Value::Object(small);
    if size(&small) <= MAX_RECORDED_ARGS_BYTES {
        small
    } else {
        json!({"cut": format!("{} bytes of arguments; args_digest covers them whole", size(&Value::Object(args.clone())))})
    }
}

/// Arguments as the human approves them: every value whole, only brokerage credentials masked.
pub fn masked(args: &Map<String, Value>) -> Value {
    redact_cut(args, false)
}

/// Text a program chose (a project name, an argument), made safe to show in a sentence: no
/// line breaks or control characters, no bidirectional overrides that would reorder what the
/// human reads, and not longer than `max` characters.
pub fn plain_text(text: &str, max: usize) -> String {
    let is_bidi = |c: char| matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).filter(|c| !is_bidi(*c)).collect();
    if cleaned.chars().count() > max {
        format!("{}…", cleaned.chars().take(max).collect::<String>())
    } else {
        cleaned
    }
}

fn redact_cut(args: &Map<String, Value>, cut: bool) -> Value {
    let mut out = Map::new();
    for (key, value) in args {
        let shown = match (key.as_str(), value) {
            ("brokerage" | "dataProviders", Value::Object(settings)) => redact_settings(settings),
            (_, Value::String(text)) if cut && text.chars().count() > 200 => {
                json!(format!("{}… ({} bytes)", text.chars().take(120).collect::<String>(), text.len()))
            }
            (_, other) => other.clone(),
        };
        out.insert(key.clone(), shown);
    }
    Value::Object(out)
}

/// Brokerage settings with only the fields known to be safe shown (which brokerage, live or
/// paper, which account, when it restarts), so the human sees live versus paper; every other
/// field, at any depth and inside arrays, is hidden. An allow-list: a credential under a name
/// nobody thought of stays hidden.
fn redact_settings(settings: &Map<String, Value>) -> Value {
    fn safe(name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        const EXACT: &[&str] = &["id", "environment", "live", "account", "account-id", "region", "market", "currency"];
        const ENDINGS: &[&str] =
            &["trading-mode", "-environment", "-account", "-account-id", "-restart-utc-time", "-region", "-market"];
        EXACT.contains(&name.as_str()) || ENDINGS.iter().any(|end| name.ends_with(end))
    }
    fn hide(value: &Value) -> Value {
        match value {
            Value::Object(inner) => redact_settings(inner),
            Value::Array(items) => Value::Array(items.iter().map(hide).collect()),
            Value::Null => Value::Null,
            _ => json!("<redacted>"),
        }
    }
    let mut shown = Map::new();
    for (name, value) in settings {
        let value = match value {
            Value::Object(inner) => redact_settings(inner),
            Value::Array(items) => Value::Array(items.iter().map(hide).collect()),
            Value::String(text) if safe(name) => json!(truncate(text, 80)),
            Value::Bool(_) | Value::Number(_) if safe(name) => value.clone(),
            _ => json!("<redacted>"),
        };
        shown.insert(name.clone(), value);
    }
    Value::Object(shown)
}

/// Text a program chose, as quoted data: cleaned like [`plain_text`], inside straight quotes,
/// with any quote mark in it escaped, so it cannot close the quote and go on as the sentence.
fn quoted(text: &str, max: usize) -> String {
    let cleaned = plain_text(text, max);
    let mut out = String::with_capacity(cleaned.len() + 2);
    out.push('"');
    for c in cleaned.chars() {
        if matches!(c, '"' | '\\' | '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{00AB}' | '\u{00BB}') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Whether brokerage settings trade real money, read from the fields that say so wherever they
/// stand; when none says, the human is told to assume they do.
fn trading_mode(brokerage: &Map<String, Value>) -> &'static str {
    if brokerage.get("id").and_then(Value::as_str) == Some("QuantConnectBrokerage") {
        return "PAPER (QuantConnect paper trading)";
    }
    let says = brokerage.iter().find_map(|(key, value)| {
        let key = key.to_ascii_lowercase();
        let names_mode =
            key.contains("trading-mode") || key.contains("environment") || key == "live" || key.ends_with("-live");
        let value = match value {
            Value::String(text) => text.to_ascii_lowercase(),
            Value::Bool(live) if key.contains("live") => (if *live { "live" } else { "paper" }).to_string(),
            _ => return None,
        };
        names_mode.then_some(value)
    });
    match says.as_deref() {
        Some("live" | "real" | "production" | "prod") => "LIVE MONEY",
        Some("paper" | "demo" | "sandbox" | "practice" | "test" | "testnet") => "PAPER",
        _ => "trading mode not stated: treat it as LIVE MONEY",
    }
}

/// At most `max` characters of `text`.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

fn token_error(e: TokenError) -> BrokerError {
    match e {
        TokenError::Expired => BrokerError::TokenExpired,
        other => BrokerError::TokenInvalid(format!("{other}; reconnect the bridge")),
    }
}

/// The smallest preset that includes `scope`, for error messages.
fn preset_with(scope: Scope) -> &'static str {
    Preset::ALL.iter().find(|p| p.scopes().contains(&scope)).map(|p| p.name()).unwrap_or("admin")
}

/// A call that passed every check and may be sent.
struct Cleared {
    account: AccountId,
    client: String,
    tool: &'static Tool,
    args: Map<String, Value>,
}

/// The audit record of one call. Written when finished; if the call is dropped before (the
/// caller cancelled while it waited), it is written as cancelled.
struct CallRecord {
    broker: Arc<Broker>,
    started: Instant,
    record: Option<Value>,
}

impl CallRecord {
    fn fields(&mut self) -> &mut Value {
        self.record.get_or_insert_with(|| json!({}))
    }

    fn finish(&mut self, result: Result<(), &BrokerError>) {
        let Some(mut record) = self.record.take() else { return };
        record["latency_us"] = json!(self.started.elapsed().as_micros() as u64);
        match result {
            Ok(()) => record["outcome"] = json!("ok"),
            Err(e) => {
                record["outcome"] = json!(format!("{:?}", e.code()).to_ascii_lowercase());
                record["error"] = json!(truncate(&e.to_string(), MAX_RECORDED_ERROR_CHARS));
            }
        }
        self.broker.record(record);
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        if self.record.is_some() {
            self.finish(Err(&BrokerError::Cancelled));
        }
    }
}

/// Withdraws a pending approval if the waiting call is dropped (cancelled).
struct Withdraw<'a> {
    approvals: &'a Approvals,
    id: String,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.approvals.withdraw(&self.id);
    }
}

impl Broker {
    /// Open the broker's state in `config.data_dir`, with secrets in `store`.
    pub fn open(config: BrokerConfig, store: Arc<dyn SecretStore>) -> Result<Self, BrokerError> {
        let dir = &config.data_dir;
        // The data folder is the user's alone, whatever the umask: it holds the audit log.
        keybridge_vault::create_private_dir(dir)
            .map_err(|e| BrokerError::Internal(format!("cannot create the data folder: {e}")))?;
        let install_id = install_id(dir)?;
        let tokens =
            TokenIssuer::open(&install_id, dir, store.clone()).map_err(|e| BrokerError::Internal(e.to_string()))?;
        let accept = config.accept_restored_state;
        let anchor = |what: &str| crate::anchor::Anchor::new(store.clone(), what, &install_id);
        let audit = AuditLog::open_anchored(
            &dir.join("audit"),
            store.as_ref(),
            &format!("audit-chain-key:{install_id}"),
            Some(anchor("audit")),
            accept,
        )
        .map_err(|e| match e {
            crate::audit::AuditError::RolledBack(message) => BrokerError::RolledBack(message),
            other => BrokerError::Internal(format!(
                "{other}; inspect it with `keybridge audit verify`, then move the audit folder aside to start a new log"
            )),
        })?;
        let qc = QcClient::new(ClientConfig::new(config.qc_base_url.clone()))?;
        // The pause lives in the keychain: deleting a file must not lift it.
        let pause_name = format!("paused:{install_id}");
        let paused = store.get(&pause_name)?.is_some();
        let seal = crate::clients::SealKey::load_or_create(store.as_ref(), &format!("state-key:{install_id}"))?;
        let (events, _) = broadcast::channel(256);
        let settings_seal = seal.clone();
        let settings_anchor = anchor("settings");
        let (settings, mut settings_generation) = crate::settings::load_anchored(
            dir,
            config.approval_timeout,
            &settings_seal,
            Some(&settings_anchor),
            accept,
        )?;
        if accept {
            settings_generation += 1;
            crate::settings::save_generation(dir, &settings, &settings_seal, settings_generation)?;
            settings_anchor.set(&settings_generation.to_string())?;
        }
        let clients = Clients::load_anchored(dir, seal, Some(anchor("clients")), accept)?;
        Ok(Self {
            settings: Mutex::new(settings),
            settings_seal,
            settings_anchor,
            settings_generation: std::sync::atomic::AtomicU64::new(settings_generation),
            accounts: Accounts::new(dir, store.clone()),
            clients: Mutex::new(clients),
            store,
            pause_name,
            sessions: Mutex::new(HashMap::new()),
            tokens,
            audit,
            approvals: Approvals::default(),
            qc,
            paused: AtomicBool::new(paused),
            limits: Mutex::new(HashMap::new()),
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

    pub fn audit_log(&self) -> &AuditLog {
        &self.audit
    }

    /// Approval changes (`{"type": "approval_opened" | "approval_closed", ...}`).
    pub fn subscribe_events(&self) -> broadcast::Receiver<Value> {
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

    fn record(&self, event: Value) {
        if let Err(e) = self.audit.append(event) {
            tracing::error!(error = %e, "cannot write the audit log");
            // Fail closed: no call runs unrecorded.
            *lock(&self.audit_failure) = Some(e.to_string());
        }
    }

    fn audit_healthy(&self) -> Result<(), BrokerError> {
        match lock(&self.audit_failure).as_ref() {
            None => Ok(()),
            Some(e) => Err(BrokerError::Internal(format!(
                "the audit log cannot be written ({e}); every call is refused until it can: fix the cause, then restart Keybridge"
            ))),
        }
    }

    // ---- sessions -------------------------------------------------------------------------

    /// Authenticate a bridge for `client_id`: by its key, or by what the OS says about the peer
    /// (asking the human the first time a host executable is seen).
    pub async fn authenticate(
        &self,
        client_id: &str,
        key: Option<&Credential>,
        peer: &Peer,
    ) -> Result<SessionInfo, BrokerError> {
        let result = self.authenticate_inner(client_id, key, peer).await;
        let host = peer.host.as_ref().map(crate::peer::Host::key);
        match &result {
            Ok(session) => self.record(json!({"kind": "authentication", "client": truncate(client_id, 64), "ok": true,
                "session": session.session_id, "host": host, "method": if key.is_some() { "key" } else { "host" }})),
            Err(e) => self.record(json!({"kind": "authentication", "client": truncate(client_id, 64), "ok": false,
                "host": host, "reason": e.to_string()})),
        }
        result
    }

    async fn authenticate_inner(
        &self,
        client_id: &str,
        key: Option<&Credential>,
        peer: &Peer,
    ) -> Result<SessionInfo, BrokerError> {
        if client_id.len() > 64 {
            return Err(BrokerError::NotFound("a client id is at most 64 characters".into()));
        }
        if peer.uid != own_uid() {
            return Err(BrokerError::PairingDenied(format!("the peer runs as uid {}, not as this user", peer.uid)));
        }
        let client = lock(&self.clients).get(client_id).cloned().ok_or_else(|| {
            BrokerError::NotFound(format!("no client `{client_id}`; `keybridge client list` shows the paired clients"))
        })?;
        if client.revoked {
            return Err(BrokerError::Revoked(format!("client `{client_id}` was revoked; pair it again in Keybridge")));
        }
        match (&client.auth, key) {
            (ClientAuth::Key { key_sha256 }, Some(key)) => {
                if !constant_time_eq(key_hash(key.expose()).as_bytes(), key_sha256.as_bytes()) {
                    return Err(BrokerError::PairingDenied(format!("wrong client key for `{client_id}`")));
                }
            }
            (ClientAuth::Key { .. }, None) => {
                return Err(BrokerError::PairingDenied(format!(
                    "client `{client_id}` uses a client key; set KEYBRIDGE_CLIENT_KEY for the bridge"
                )));
            }
            (ClientAuth::HostBound { .. }, Some(_)) => {
                return Err(BrokerError::PairingDenied(format!(
                    "client `{client_id}` is host-bound and takes no key; remove KEYBRIDGE_CLIENT_KEY"
                )));
            }
            // The app's connection test: the broker started this bridge itself, so there is no
            // other program to approve, and none is remembered.
            (ClientAuth::HostBound { .. }, None) if self.own_bridge(peer) => self.check_bridge_executable(peer)?,
            (ClientAuth::HostBound { approved_hosts }, None) => {
                self.check_bridge_executable(peer)?;
                let host = peer.host.as_ref().ok_or_else(|| {
                    BrokerError::PairingDenied(format!(
                        "cannot tell which program started the bridge (it was started from a terminal, a shell session or a service); pair a client with a key for it: `keybridge client add NAME --account {} --key`",
                        client.account
                    ))
                })?;
                if !approved_hosts.contains(&host.key()) {
                    self.approve_pairing(&client, host).await?;
                }
            }
        }
        let host = match &peer.host {
            _ if self.own_bridge(peer) => "Keybridge (connection test)".into(),
            Some(host) => host.describe(),
            None => "a program Keybridge cannot name".into(),
        };
        let session_id = format!("s-{}", random_id(8));
        lock(&self.sessions).insert(
            session_id.clone(),
            Session { client_id: client.id.clone(), host: Some(host), started: now(), revoked: false },
        );
        lock(&self.clients).touch(&client.id, now())?;
        self.mint(&client, &session_id)
    }

    /// The SHA-256 of each accepted bridge executable, read once.
    fn shipped_bridge_digests(&self) -> &[[u8; 32]] {
        self.bridge_digests.get_or_init(|| {
            use sha2::Digest;
            self.config
                .bridge_executables
                .iter()
                .filter_map(|path| std::fs::read(path).ok())
                .map(|bytes| sha2::Sha256::digest(&bytes).into())
                .collect()
        })
    }

    fn own_bridge(&self, peer: &Peer) -> bool {
        self.config.trust_own_bridges && peer.launched_by_broker
    }

    fn check_bridge_executable(&self, peer: &Peer) -> Result<(), BrokerError> {
        let Some(exe) = &peer.exe else {
            return Err(BrokerError::PairingDenied(
                "the OS did not say which program connected; use a client key on this platform".into(),
            ));
        };
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if self.config.bridge_executables.iter().any(|b| canonical(b) == canonical(exe)) {
            return Ok(());
        }
        // A copy of the shipped bridge elsewhere (Claude Desktop unpacks the MCP Bundle's into
        // its extensions folder) is the same program: the same bytes.
        let shipped = self.shipped_bridge_digests();
        if !shipped.is_empty() && peer.program_digest().is_some_and(|running| shipped.contains(&running)) {
            Ok(())
        } else {
            Err(BrokerError::PairingDenied(format!(
                "{} is not the keybridge-mcp bridge that ships with Keybridge",
                exe.display()
            )))
        }
    }

    async fn approve_pairing(&self, client: &Client, host: &crate::peer::Host) -> Result<(), BrokerError> {
        let key = (client.id.clone(), host.key());
        let (asked_already, tell) = {
            let mut pairings = lock(&self.pairings);
            match pairings.get(&key) {
                Some(answer) => (Some(answer.clone()), None),
                None => {
                    let (tell, answer) = tokio::sync::watch::channel(None);
                    pairings.insert(key.clone(), answer);
                    (None, Some(tell))
                }
            }
        };
        if let Some(mut answer) = asked_already {
            let approved = loop {
                if let Some(approved) = *answer.borrow() {
                    break approved;
                }
                if answer.changed().await.is_err() {
                    break false;
                }
            };
            return if approved {
                Ok(())
            } else {
                Err(BrokerError::PairingDenied("the connection was not approved in Keybridge".into()))
            };
        }
        let result = self.ask_pairing(client, host).await;
        if let Some(tell) = tell {
            let _ = tell.send(Some(result.is_ok()));
        }
        lock(&self.pairings).remove(&key);
        result
    }

    async fn ask_pairing(&self, client: &Client, host: &crate::peer::Host) -> Result<(), BrokerError> {
        let (key, described) = (host.key(), host.describe());
        let pending = Pending {
            id: format!("a-{}", random_id(6)),
            kind: ApprovalKind::Pairing,
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            session_id: None,
            account: client.account.to_string(),
            tool: None,
            scope: None,
            summary: format!(
                "{} wants to connect to account {} for the first time from {described:?}. Approve only if you just started that program.",
                client.name, client.account
            ),
            arguments: json!({"host": key, "program": host.program, "script": host.script}),
            arguments_digest: self.audit.keyed_digest(&canonical(&json!({"host": key}))),
            created: 0,
            expires: 0,
        };
        match self.ask(pending, |_| {}).await? {
            Outcome::Approved | Outcome::ApprovedFor(_) => {
                lock(&self.clients).update(&client.id, |c| {
                    if let ClientAuth::HostBound { approved_hosts } = &mut c.auth {
                        approved_hosts.insert(key.clone());
                    }
                })?;
                Ok(())
            }
            Outcome::Denied => Err(BrokerError::PairingDenied("you denied the connection in Keybridge".into())),
            Outcome::TimedOut => Err(BrokerError::PairingDenied(format!(
                "nobody approved the connection in Keybridge within {}s",
                self.approval_timeout().as_secs()
            ))),
        }
    }

    fn mint(&self, client: &Client, session_id: &str) -> Result<SessionInfo, BrokerError> {
        let grant = Grant {
            client_id: client.id.clone(),
            session_id: session_id.to_string(),
            account: client.account.to_string(),
            scopes: client.scopes.clone(),
            ttl_secs: client.token_ttl_secs,
        };
        let (token, claims) = self.tokens.mint(&grant).map_err(|e| BrokerError::Internal(e.to_string()))?;
        self.record(json!({"kind": "token_minted", "client": client.id, "session": session_id,
            "jti": claims.jti, "expires": claims.exp}));
        Ok(SessionInfo {
            session_id: session_id.to_string(),
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            account: client.account.to_string(),
            scopes: client.scopes.iter().map(|s| s.to_string()).collect(),
            token: Credential::new(token),
            expires_at: claims.exp,
            paused: self.is_paused(),
        })
    }

    /// A fresh token for a live session; the client's current scopes apply.
    pub fn refresh(&self, session_id: &str) -> Result<SessionInfo, BrokerError> {
        let client = self.live_client(session_id)?;
        self.mint(&client, session_id)
    }

    /// The session's client, if neither is revoked.
    fn live_client(&self, session_id: &str) -> Result<Client, BrokerError> {
        let session = lock(&self.sessions).get(session_id).cloned().ok_or_else(|| {
            BrokerError::Revoked("this session is unknown to the broker (ended, or the broker restarted)".into())
        })?;
        if session.revoked {
            return Err(BrokerError::Revoked("this session was ended in Keybridge".into()));
        }
        let client = lock(&self.clients)
            .get(&session.client_id)
            .cloned()
            .ok_or_else(|| BrokerError::Revoked(format!("client `{}` no longer exists", session.client_id)))?;
        if client.revoked {
            return Err(BrokerError::Revoked(format!("client `{}` was revoked in Keybridge", client.id)));
        }
        Ok(client)
    }

    /// Verify a token and the state behind it, on every call. A connection that authenticated
    /// as a session accepts only that session's tokens.
    fn authorize_for(&self, session: Option<&str>, token: &Credential) -> Result<(Claims, Client), BrokerError> {
        let claims = self.tokens.verify(token.expose()).map_err(token_error)?;
        if session.is_some_and(|s| s != claims.sid) {
            return Err(BrokerError::TokenInvalid(
                "this token belongs to another session; reconnect the bridge".into(),
            ));
        }
        let client = self.live_client(&claims.sid)?;
        if client.id != claims.sub {
            return Err(BrokerError::TokenInvalid("the token's client does not match its session".into()));
        }
        Ok((claims, client))
    }

    /// The scopes that apply: granted in the token and still granted to the client.
    fn effective_scopes(claims: &Claims, client: &Client) -> BTreeSet<Scope> {
        claims.scopes().intersection(&client.scopes).copied().collect()
    }

    pub fn list_tools(&self, session: Option<&str>, token: &Credential) -> Result<Vec<ToolInfo>, BrokerError> {
        let (claims, client) = self.authorize_for(session, token)?;
        let scopes = Self::effective_scopes(&claims, &client);
        Ok(keybridge_catalog::tools()
            .iter()
            .filter(|t| scopes.contains(&t.scope))
            .filter(|t| self.decide(t.scope, &client) != Decision::Deny)
            .map(|t| ToolInfo {
                name: t.name.to_string(),
                scope: t.scope.to_string(),
                policy: self.decide(t.scope, &client).as_str().to_string(),
            })
            .collect())
    }

    // ---- calls ----------------------------------------------------------------------------

    /// Run one tool for a bridge whose connection authenticated as `session` (`None` for
    /// in-process callers). `on_wait` is told when the call waits for the human.
    ///
    /// Once a call is cleared and sent to QuantConnect it runs to completion and is recorded,
    /// even if the caller cancels or goes away: a write that happened is never missing from the
    /// audit log. Cancelling before that point only stops the wait.
    pub async fn call(
        self: &Arc<Self>,
        session: Option<&str>,
        token: &Credential,
        tool_name: &str,
        arguments: Value,
        on_wait: impl FnOnce(&Pending),
    ) -> Result<Value, BrokerError> {
        let mut audit = CallRecord {
            broker: self.clone(),
            started: Instant::now(),
            record: Some(json!({"kind": "tool_call", "tool": truncate(tool_name, 64)})),
        };
        let cleared = match self.clear_call(session, token, tool_name, arguments, on_wait, audit.fields()).await {
            Ok(cleared) => cleared,
            Err(e) => {
                audit.finish(Err(&e));
                return Err(e);
            }
        };
        let broker = self.clone();
        let execution = tokio::spawn(async move {
            let result =
                broker.execute(&cleared.account, &cleared.client, cleared.tool, Value::Object(cleared.args)).await;
            audit.fields()["upstream"] = json!(match &result {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("{:?}", e.code()).to_ascii_lowercase(),
            });
            audit.finish(result.as_ref().map(|_| ()));
            result
        });
        execution.await.unwrap_or_else(|e| Err(BrokerError::Internal(format!("the call failed: {e}"))))
    }

    /// Every check before a call may be sent: token and session, pause, scope, arguments,
    /// policy and, when the policy asks, the human's approval — after which the state is checked
    /// again, since a pause or revocation may have come while the human was deciding.
    async fn clear_call(
        &self,
        session: Option<&str>,
        token: &Credential,
        tool_name: &str,
        arguments: Value,
        on_wait: impl FnOnce(&Pending),
        audit: &mut Value,
    ) -> Result<Cleared, BrokerError> {
        self.audit_healthy()?;
        let (claims, client) = self.authorize_for(session, token)?;
        audit["client"] = json!(client.id);
        audit["session"] = json!(claims.sid);
        audit["account"] = json!(client.account);
        if self.is_paused() {
            return Err(BrokerError::Paused);
        }
        let tool =
            keybridge_catalog::find(tool_name).ok_or_else(|| BrokerError::UnknownTool(truncate(tool_name, 64)))?;
        audit["scope"] = json!(tool.scope);
        self.check_scope(&claims, &client, tool)?;
        let args = tool.prepare(arguments).map_err(|e| BrokerError::InvalidArguments(e.to_string()))?;
        let args_digest = self.audit.keyed_digest(&canonical(&Value::Object(args.clone())));
        audit["args_digest"] = json!(args_digest);
        audit["args"] = redact(&args);
        let decision = self.decide(tool.scope, &client);
        audit["policy"] = json!(decision.as_str());
        match decision {
            Decision::Deny => return Err(BrokerError::PolicyDenied { scope: tool.scope.to_string() }),
            Decision::Allow => audit["decision"] = json!("allowed"),
            Decision::Ask if self.approvals.allowed(&claims.sid, tool.name) => {
                audit["decision"] = json!("allowed_for_session");
            }
            Decision::Ask => {
                // A model looping on a dangerous call must not bury the human in questions. The
                // place is taken before the look-ups that build the question, which take time.
                let Some(_place) = self.approvals.reserve(&claims.sid, MAX_WAITING_PER_SESSION) else {
                    return Err(BrokerError::Invalid(format!(
                        "{MAX_WAITING_PER_SESSION} calls of this session already wait for approval; answer those first"
                    )));
                };
                let (pending, client_note) = self.pending_call(&client, &claims, tool, &args, args_digest).await;
                // The bridge hears the client-safe note, never what the broker looked up.
                let outcome =
                    self.ask(pending, |pending| on_wait(&Pending { summary: client_note, ..pending.clone() })).await?;
                audit["decision"] = json!(match outcome {
                    Outcome::Approved => "approved",
                    Outcome::ApprovedFor(_) => "approved_for_session",
                    Outcome::Denied => "denied",
                    Outcome::TimedOut => "timed_out",
                });
                match outcome {
                    Outcome::Approved | Outcome::ApprovedFor(_) => {}
                    Outcome::Denied => return Err(BrokerError::ApprovalDenied),
                    Outcome::TimedOut => {
                        return Err(BrokerError::ApprovalTimedOut(self.approval_timeout().as_secs()));
                    }
                }
                let (claims, client) = self.authorize_for(session, token)?;
                if self.is_paused() {
                    return Err(BrokerError::Paused);
                }
                self.check_scope(&claims, &client, tool)?;
                if let Outcome::ApprovedFor(duration) = outcome {
                    self.approvals.allow_for(&claims.sid, tool.name, duration);
                    self.record(json!({"kind": "allowance", "client": client.id, "session": claims.sid,
                        "tool": tool.name, "minutes": duration.as_secs() / 60}));
                }
            }
        }
        Ok(Cleared { account: client.account, client: client.id, tool, args })
    }

    fn check_scope(&self, claims: &Claims, client: &Client, tool: &Tool) -> Result<(), BrokerError> {
        if Self::effective_scopes(claims, client).contains(&tool.scope) {
            return Ok(());
        }
        Err(BrokerError::MissingScope {
            tool: tool.name.into(),
            scope: tool.scope.to_string(),
            client: client.id.clone(),
            preset: preset_with(tool.scope).into(),
        })
    }

    /// Open an approval, tell the caller, wait; the approval is withdrawn if the caller goes away.
    async fn ask(&self, pending: Pending, on_wait: impl FnOnce(&Pending)) -> Result<Outcome, BrokerError> {
        let ticket = self.approvals.open(pending, self.approval_timeout());
        let _withdraw = Withdraw { approvals: &self.approvals, id: ticket.pending.id.clone() };
        let _ = self.events.send(json!({"type": "approval_opened", "approval": ticket.pending}));
        on_wait(&ticket.pending);
        let id = ticket.pending.id.clone();
        let outcome = self.approvals.wait(ticket).await;
        let _ = self.events.send(json!({"type": "approval_closed", "id": id}));
        Ok(outcome)
    }

    /// The question for the human, and the note the waiting client may read: the human's
    /// version leads with what the arguments cannot shift (live or paper, the account, the
    /// project's id) and shows untrusted text as quoted data; the client's holds only what it
    /// sent itself, plus a looked-up name only if it may read projects.
    async fn pending_call(
        &self,
        client: &Client,
        claims: &Claims,
        tool: &Tool,
        args: &Map<String, Value>,
        args_digest: String,
    ) -> (Pending, String) {
        let opening = format!("{} wants to run {} on account {}", client.name, tool.name, client.account);
        let mut summary = format!("{opening}: {}", tool.description);
        let mut client_note = format!("{opening}.");
        if let Some(Value::Object(brokerage)) = args.get("brokerage") {
            let id = brokerage.get("id").and_then(Value::as_str).unwrap_or("brokerage not named");
            let facts = format!(" Brokerage: {}, {}.", quoted(id, 60), trading_mode(brokerage));
            summary.push_str(&facts);
            client_note.push_str(&facts);
        }
        if let Some(project_id) = args.get("projectId").and_then(Value::as_i64) {
            // The name is the client's to choose (it may have renamed the project): it comes
            // after the id, quoted, so it cannot pass for the id or the rest of the sentence.
            let name = self.project_name(client, tool, project_id).await;
            let named = name.as_deref().map_or_else(|| "name unavailable".to_string(), |n| quoted(n, 80));
            summary.push_str(&format!(" Project {project_id}, named {named}."));
            let may_read = Self::effective_scopes(claims, client).contains(&Scope::ProjectsRead);
            client_note.push_str(&match (may_read, name) {
                (true, Some(_)) => format!(" Project {project_id}, named {named}."),
                _ => format!(" Project {project_id}."),
            });
        }
        let shown: Vec<String> = redact(args)
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.as_str() != "projectId").map(|(k, v)| format!("{k}={v}")).collect())
            .unwrap_or_default();
        if !shown.is_empty() {
            summary.push_str(&format!(" Arguments: {}.", plain_text(&shown.join(", "), 600)));
        }
        let pending = Pending {
            id: format!("a-{}", random_id(6)),
            kind: ApprovalKind::ToolCall,
            client_id: client.id.clone(),
            client_name: client.name.clone(),
            session_id: Some(claims.sid.clone()),
            account: client.account.to_string(),
            tool: Some(tool.name.to_string()),
            scope: Some(tool.scope.to_string()),
            summary,
            arguments: masked(args),
            arguments_digest: args_digest,
            created: 0,
            expires: 0,
        };
        (pending, client_note)
    }

    /// The project's name for an approval summary; best effort, never blocks long. The broker
    /// reads it on its own authority, so the look-up is audited as the broker's.
    async fn project_name(&self, client: &Client, asked_for: &Tool, project_id: i64) -> Option<String> {
        let tool = keybridge_catalog::find("read_project")?;
        let read = self.execute(&client.account, BROKER_LOOKUPS, tool, json!({"projectId": project_id}));
        let reply = tokio::time::timeout(Duration::from_secs(3), read).await;
        let outcome = match &reply {
            Ok(Ok(_)) => "ok".to_string(),
            Ok(Err(e)) => format!("{:?}", e.code()).to_ascii_lowercase(),
            Err(_) => "timed_out".to_string(),
        };
        self.record(
            json!({"kind": "broker_lookup", "tool": tool.name, "project": project_id, "account": client.account,
            "client": client.id, "for_tool": asked_for.name, "outcome": outcome}),
        );
        reply.ok()?.ok()?.pointer("/projects/0/name").and_then(Value::as_str).map(str::to_string)
    }

    /// Run a cleared call at QuantConnect. An account has `account_concurrency` calls in flight
    /// at most, and one client at most half of them: a client's slow calls queue behind its
    /// own share, never in front of another client's.
    async fn execute(&self, account: &AccountId, client: &str, tool: &Tool, args: Value) -> Result<Value, BrokerError> {
        let creds = self.credentials_for(account)?;
        let share = (self.config.account_concurrency / 2).max(1);
        let semaphore = |key: String, permits: usize| {
            lock(&self.limits).entry(key).or_insert_with(|| Arc::new(Semaphore::new(permits))).clone()
        };
        let closed = |e: tokio::sync::AcquireError| BrokerError::Internal(e.to_string());
        let client_permit =
            semaphore(format!("{account}\u{0}{client}"), share).acquire_owned().await.map_err(closed)?;
        let account_permit =
            semaphore(account.to_string(), self.config.account_concurrency).acquire_owned().await.map_err(closed)?;
        let result = self.qc.call(&creds, tool, args).await;
        drop((account_permit, client_permit));
        Ok(result?)
    }

    fn credentials_for(&self, account: &AccountId) -> Result<Arc<Credentials>, BrokerError> {
        if let Some(creds) = lock(&self.credentials).get(account.as_str()) {
            return Ok(creds.clone());
        }
        let meta = self.accounts.get(account)?.ok_or_else(|| {
            BrokerError::NotFound(format!(
                "account `{account}` is not set up; add it with `keybridge account add {account}`"
            ))
        })?;
        let token = self.accounts.token(account)?;
        let creds = Arc::new(Credentials { user_id: meta.user_id, api_token: token });
        lock(&self.credentials).insert(account.to_string(), creds.clone());
        Ok(creds)
    }

    // ---- administration ------------------------------------------------------------------

    /// Run an admin command (every command but a following `audit tail`).
    pub async fn admin(&self, command: AdminCommand) -> Result<Value, BrokerError> {
        match command {
            AdminCommand::Status => Ok(json!(StatusView {
                version: self.config.version.clone(),
                paused: self.is_paused(),
                data_dir: self.config.data_dir.display().to_string(),
                quantconnect: self.config.qc_base_url.clone(),
                sessions: lock(&self.sessions).values().filter(|s| !s.revoked).count(),
                pending_approvals: self.approvals.list().len(),
                signing_key: self.tokens.active_kid(),
            })),
            AdminCommand::AccountAdd { name, user_id, organization_id, api_token, skip_check } => {
                self.add_account(&name, &user_id, organization_id, api_token, skip_check).await
            }
            AdminCommand::AccountList => {
                Ok(json!(self.accounts.list()?.into_iter().map(account_view).collect::<Vec<_>>()))
            }
            AdminCommand::AccountRemove { name } => {
                let id: AccountId = name.parse()?;
                let removed = self.accounts.remove(&id)?;
                lock(&self.credentials).remove(id.as_str());
                self.record(json!({"kind": "admin", "action": "account_removed", "account": id, "existed": removed}));
                Ok(json!({"removed": removed}))
            }
            AdminCommand::AccountTest { name } => {
                let id: AccountId = name.parse()?;
                let creds = self.credentials_for(&id)?;
                self.qc.authenticate(&creds).await?;
                Ok(json!({"account": id, "ok": true}))
            }
            AdminCommand::AccountRename { name, new_name } => self.rename_account(&name, &new_name),
            AdminCommand::ClientAdd { spec } => self.add_client(spec),
            AdminCommand::ClientList => {
                let clients: Vec<Client> = lock(&self.clients).list().cloned().collect();
                Ok(json!(clients.iter().map(|c| self.client_view(c)).collect::<Vec<_>>()))
            }
            AdminCommand::ClientShow { client_id } => {
                let client = lock(&self.clients).get(&client_id).cloned();
                let client = client.ok_or_else(|| BrokerError::NotFound(format!("no client `{client_id}`")))?;
                Ok(json!(self.client_view(&client)))
            }
            AdminCommand::ClientRevoke { client_id } => {
                let existed = lock(&self.clients).update(&client_id, |c| c.revoked = true)?;
                if !existed {
                    return Err(BrokerError::NotFound(format!("no client `{client_id}`")));
                }
                let denied = self.approvals.deny_where(|p| p.client_id == client_id);
                self.record(json!({"kind": "admin", "action": "client_revoked", "client": client_id, "approvals_denied": denied}));
                Ok(json!({"revoked": client_id}))
            }
            AdminCommand::ClientUpdate { client_id, preset, scopes, policy } => {
                let (preset, scopes) = resolve_scopes(preset.as_deref(), &scopes)?;
                let policy = policy.as_ref().map(parse_overrides).transpose()?;
                let existed = lock(&self.clients).update(&client_id, |c| {
                    c.preset = preset;
                    c.scopes = scopes.clone();
                    // Without new overrides, the client keeps its own.
                    if let Some(policy) = policy {
                        c.policy = policy;
                    }
                })?;
                if !existed {
                    return Err(BrokerError::NotFound(format!("no client `{client_id}`")));
                }
                self.record(
                    json!({"kind": "admin", "action": "client_updated", "client": client_id, "scopes": scopes}),
                );
                let _ = self.events.send(json!({"type": "client_changed", "client": client_id}));
                Ok(json!({"updated": client_id, "scopes": scopes}))
            }
            AdminCommand::SessionEnd { session_id } => {
                let ended = lock(&self.sessions).get_mut(&session_id).map(|s| s.revoked = true).is_some();
                self.approvals.end_session(&session_id);
                self.approvals.deny_where(|p| p.session_id.as_deref() == Some(session_id.as_str()));
                self.record(
                    json!({"kind": "admin", "action": "session_ended", "session": session_id, "existed": ended}),
                );
                Ok(json!({"ended": ended}))
            }
            AdminCommand::Pause => self.set_paused(true),
            AdminCommand::Resume => self.set_paused(false),
            AdminCommand::ApprovalsList => Ok(json!(self.approvals.list())),
            AdminCommand::ApprovalDecide { approval_id, decision } => {
                let decided = self.approvals.decide(&approval_id, decision).ok_or_else(|| {
                    BrokerError::NotFound(format!(
                        "no pending approval `{approval_id}` (answered or timed out already)"
                    ))
                })?;
                self.record(json!({"kind": "approval", "approval": approval_id, "client": decided.client_id,
                    "tool": decided.tool, "decision": decision_text(decision), "args_digest": decided.arguments_digest}));
                Ok(json!({"approval": approval_id, "decision": decision_text(decision)}))
            }
            AdminCommand::AuditTail { last, .. } => {
                let records = self.audit.read_all()?;
                let skip = records.len().saturating_sub(last);
                Ok(json!(records[skip..]))
            }
            AdminCommand::AuditVerify => {
                let verified = self.audit.verify()?;
                Ok(json!(AuditVerified { intact: true, records: verified.records, files: verified.files }))
            }
            AdminCommand::SettingsGet => Ok(json!(self.settings().view())),
            AdminCommand::SettingsUpdate { settings } => {
                let settings = Settings::from_view(&settings)?;
                let generation = self.settings_generation.fetch_add(1, Ordering::SeqCst) + 1;
                crate::settings::save_generation(&self.config.data_dir, &settings, &self.settings_seal, generation)?;
                self.settings_anchor.set(&generation.to_string())?;
                let view = settings.view();
                *lock(&self.settings) = settings;
                self.record(json!({"kind": "admin", "action": "settings_changed", "settings": view}));
                let _ = self.events.send(json!({"type": "settings_changed", "settings": view}));
                Ok(json!(view))
            }
            AdminCommand::KeysRotate => {
                let kid = self.tokens.rotate().map_err(|e| BrokerError::Internal(e.to_string()))?;
                self.record(json!({"kind": "admin", "action": "signing_key_rotated", "kid": kid}));
                Ok(json!({"kid": kid}))
            }
            AdminCommand::TokenMint { client_id, ttl_secs } => {
                let mut client = lock(&self.clients)
                    .get(&client_id)
                    .cloned()
                    .ok_or_else(|| BrokerError::NotFound(format!("no client `{client_id}`")))?;
                if client.revoked {
                    return Err(BrokerError::Revoked(format!("client `{client_id}` was revoked")));
                }
                if let Some(ttl) = ttl_secs {
                    client.token_ttl_secs = ttl;
                }
                let session_id = format!("s-{}", random_id(8));
                lock(&self.sessions).insert(
                    session_id.clone(),
                    Session {
                        client_id: client.id.clone(),
                        host: Some("keybridge token mint".into()),
                        started: now(),
                        revoked: false,
                    },
                );
                let session = self.mint(&client, &session_id)?;
                Ok(
                    json!({"token": session.token.expose(), "session_id": session.session_id, "expires_at": session.expires_at}),
                )
            }
        }
    }

    fn set_paused(&self, paused: bool) -> Result<Value, BrokerError> {
        self.paused.store(paused, Ordering::SeqCst);
        if paused {
            self.approvals.deny_where(|_| true);
        }
        if paused {
            self.store.set(&self.pause_name, &SecretString::from("paused".to_string()))?;
        } else {
            self.store.delete(&self.pause_name)?;
        }
        self.record(json!({"kind": "admin", "action": if paused { "paused" } else { "resumed" }}));
        let _ = self.events.send(json!({"type": "paused", "paused": paused}));
        Ok(json!({"paused": paused}))
    }

    async fn add_account(
        &self,
        name: &str,
        user_id: &str,
        organization_id: Option<String>,
        api_token: Credential,
        skip_check: bool,
    ) -> Result<Value, BrokerError> {
        let id: AccountId = name.parse()?;
        if user_id.trim().is_empty() || !user_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(BrokerError::Invalid(format!(
                "user id `{user_id}` should be the number shown on quantconnect.com/settings"
            )));
        }
        let token = SecretString::from(api_token.expose().trim().to_string());
        if !skip_check {
            let creds = Credentials { user_id: user_id.to_string(), api_token: token.clone() };
            self.qc.authenticate(&creds).await.map_err(|e| {
                BrokerError::Invalid(format!("QuantConnect did not accept these credentials, nothing was saved: {e}"))
            })?;
        }
        let account = Account { id: id.clone(), user_id: user_id.to_string(), organization_id, created: now() };
        self.accounts.add(account.clone(), &token)?;
        self.record(json!({"kind": "admin", "action": "account_added", "account": id, "checked": !skip_check}));
        Ok(json!(account))
    }

    fn client_view(&self, client: &Client) -> ClientView {
        let sessions = lock(&self.sessions)
            .iter()
            .filter(|(_, s)| s.client_id == client.id && !s.revoked)
            .map(|(id, s)| SessionView { session_id: id.clone(), host: s.host.clone(), started: s.started })
            .collect();
        ClientView {
            client_id: client.id.clone(),
            name: client.name.clone(),
            account: client.account.to_string(),
            preset: client.preset.map(|p| p.name().to_string()),
            scopes: client.scopes.iter().map(|s| s.to_string()).collect(),
            policy: client.policy.iter().map(|(s, d)| (s.to_string(), d.as_str().to_string())).collect(),
            token_ttl_secs: client.token_ttl_secs,
            mode: match client.auth {
                ClientAuth::HostBound { .. } => "host",
                ClientAuth::Key { .. } => "key",
            }
            .into(),
            approved_hosts: match &client.auth {
                // As the trader knows them: "Claude Code (node …/claude-code/cli.js)".
                ClientAuth::HostBound { approved_hosts } => {
                    approved_hosts.iter().map(|key| crate::peer::describe_host(key)).collect()
                }
                ClientAuth::Key { .. } => Vec::new(),
            },
            revoked: client.revoked,
            created: client.created,
            last_seen: client.last_seen,
            sessions,
        }
    }

    fn rename_account(&self, name: &str, new_name: &str) -> Result<Value, BrokerError> {
        let from: AccountId = name.parse()?;
        let to: AccountId = new_name.parse()?;
        let renamed = self.accounts.rename(&from, &to)?;
        lock(&self.credentials).remove(from.as_str());
        let moved: Vec<String> = {
            let mut clients = lock(&self.clients);
            let bound: Vec<String> = clients.list().filter(|c| c.account == from).map(|c| c.id.clone()).collect();
            for id in &bound {
                clients.update(id, |c| c.account = to.clone())?;
            }
            bound
        };
        self.record(
            json!({"kind": "admin", "action": "account_renamed", "account": from, "new_name": to, "clients": moved}),
        );
        for client in moved {
            let _ = self.events.send(json!({"type": "client_changed", "client": client}));
        }
        Ok(json!(account_view(renamed)))
    }

    fn add_client(&self, spec: ClientSpec) -> Result<Value, BrokerError> {
        let account: AccountId = spec.account.parse()?;
        if self.accounts.get(&account)?.is_none() {
            return Err(BrokerError::NotFound(format!(
                "account `{account}` is not set up; add it first with `keybridge account add {account}`"
            )));
        }
        if spec.name.trim().is_empty() {
            return Err(BrokerError::Invalid("the client needs a name, e.g. \"Claude Desktop\"".into()));
        }
        let (preset, scopes) = resolve_scopes(spec.preset.as_deref(), &spec.scopes)?;
        let policy = parse_overrides(&spec.policy)?;
        let ttl = spec.token_ttl_secs.unwrap_or_else(|| lock(&self.settings).token_ttl_secs);
        if !(60..=MAX_TTL_SECS).contains(&ttl) {
            return Err(BrokerError::Invalid(format!("token lifetime {ttl}s is outside 60..{MAX_TTL_SECS}s")));
        }
        let key = spec.with_key.then(|| random_id(32));
        let auth = match &key {
            Some(key) => ClientAuth::Key { key_sha256: key_hash(key) },
            None => ClientAuth::HostBound { approved_hosts: BTreeSet::new() },
        };
        let client = Client {
            id: new_client_id(&spec.name),
            name: spec.name.trim().to_string(),
            account,
            scopes,
            preset,
            policy,
            token_ttl_secs: ttl,
            auth,
            revoked: false,
            created: now(),
            last_seen: None,
        };
        lock(&self.clients).insert(client.clone())?;
        self.record(json!({"kind": "admin", "action": "client_added", "client": client.id,
            "scopes": client.scopes, "mode": if key.is_some() { "key" } else { "host" }}));
        Ok(json!(ClientAdded { client_id: client.id, client_key: key }))
    }
}

fn decision_text(decision: ApprovalDecision) -> String {
    match decision {
        ApprovalDecision::Approve => "approved".into(),
        ApprovalDecision::Deny => "denied".into(),
        ApprovalDecision::AllowFor { minutes } => format!("approved, and allowed for {minutes} minutes"),
    }
}

fn account_view(account: Account) -> AccountView {
    AccountView {
        id: account.id.to_string(),
        user_id: account.user_id,
        organization_id: account.organization_id,
        created: account.created,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A random id for this install, made once; it goes into every token's issuer.
fn install_id(dir: &Path) -> Result<String, BrokerError> {
    let path = dir.join("install-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = random_id(8);
            keybridge_vault::write_private(&path, id.as_bytes()).map_err(|e| BrokerError::Internal(e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_a_client_chose_cannot_reorder_or_break_the_sentence() {
        let spoof = "Sandbox\u{202E}dleif\u{202C} (id 1).\nArguments: brokerage={\"id\":\"Paper\"}";
        let shown = plain_text(spoof, 200);
        assert!(!shown.contains('\n') && !shown.contains('\u{202E}') && !shown.contains('\u{202C}'), "{shown:?}");
        assert!(shown.starts_with("Sandboxdleif (id 1). Arguments"), "{shown:?}");
        assert_eq!(plain_text(&"x".repeat(100), 80).chars().count(), 81, "cut, with an ellipsis");
    }

    #[test]
    fn the_human_sees_whole_arguments_with_only_credentials_masked() {
        let long = "x".repeat(500);
        let args = json!({"code": long, "brokerage": {"id": "InteractiveBrokersBrokerage", "ib-password": "hunter2"}});
        let args = args.as_object().unwrap();
        let shown = masked(args);
        assert_eq!(shown["code"].as_str().unwrap().len(), 500, "nothing cut from what is approved");
        assert_eq!(shown["brokerage"]["ib-password"], "<redacted>");
        assert!(redact(args)["code"].as_str().unwrap().len() < 200, "the audit log keeps a cut copy");
    }

    #[test]
    fn brokerage_fields_are_shown_only_when_known_to_be_safe() {
        let args = json!({"brokerage": {
            "id": "InteractiveBrokersBrokerage", "ib-trading-mode": "live", "ib-account": "U123",
            "ib-weekly-restart-utc-time": "22:00:00", "ib-authorization-code": "sentinel-1",
            "tokens": ["sentinel-2", {"refresh": "sentinel-3"}], "nested": {"otp-seed": "sentinel-4", "environment": "live"}
        }});
        let args = args.as_object().unwrap();
        for shown in [masked(args), redact(args)] {
            let text = shown.to_string();
            for sentinel in ["sentinel-1", "sentinel-2", "sentinel-3", "sentinel-4"] {
                assert!(!text.contains(sentinel), "{sentinel} shown: {text}");
            }
            let b = &shown["brokerage"];
            assert_eq!(b["id"], "InteractiveBrokersBrokerage");
            assert_eq!(b["ib-trading-mode"], "live");
            assert_eq!(b["ib-account"], "U123");
            assert_eq!(b["nested"]["environment"], "live");
        }
    }
}
