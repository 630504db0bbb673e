//! Starts a broker the way Keybridge runs it: the OS keychain, the data folder, the socket, and
//! in demo mode the built-in QuantConnect simulator with a demo account.
//!
//! `keybridge serve` and the desktop app both host the broker through [`Host`], so the two can
//! never differ in how they open the keychain, which bridge executables they accept or where
//! they listen. This crate decides nothing about calls: that is the broker's job. It must never
//! fall back to a store that forgets, except in demo mode, whose only token is public.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keybridge_broker::anchor::Anchor;
use keybridge_broker::audit::{AuditEvent, AuditLog};
use keybridge_broker::rates::InMemoryCounts;
use keybridge_broker::seams::{Backends, ThisBrokerOnly};
use keybridge_broker::state::SealedFiles;
use keybridge_broker::tokens::TokenIssuer;
use keybridge_broker::{BrokerConfig, OpenError, server};

// The desktop app and the CLI reach the broker through this crate alone: these are what they use.
pub use keybridge_broker::{Broker, BrokerError, default_data_dir, policy};
use keybridge_broker_proto::{AccountView, AdminCommand, AdminReply, ClientAdded, ClientSpec, ClientView, Credential};
pub use keybridge_catalog as catalog;
pub use keybridge_endpoint::default_address;
use keybridge_qc_sim::{SimAccount, SimConfig, SimHandle};
use keybridge_vault::{KeyringStore, MemoryStore, SecretStore, VaultError};

/// Why a broker could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    #[error("cannot open the OS keychain: {0}")]
    Keychain(#[source] VaultError),
    /// Another broker of this user runs already (the app or `keybridge serve`).
    #[error("{0}")]
    AlreadyRunning(String),
    #[error("cannot start the broker: {0}")]
    Open(#[source] OpenError),
    /// The broker started but refused what the host asked of it (the demo's account, a record).
    #[error("{0}")]
    Broker(#[source] BrokerError),
    #[error("cannot start the QuantConnect simulator for the demo: {0}")]
    Simulator(#[source] std::io::Error),
}

impl From<OpenError> for HostError {
    fn from(e: OpenError) -> Self {
        match e {
            e @ OpenError::AlreadyRunning(_) => HostError::AlreadyRunning(e.to_string()),
            other => HostError::Open(other),
        }
    }
}

impl From<BrokerError> for HostError {
    fn from(e: BrokerError) -> Self {
        HostError::Broker(e)
    }
}

/// The desktop's four seams (see `keybridge_broker::seams`), in `config.data_dir` with secrets
/// in `secrets`: the keychain, sealed and anchored files, the hash-chained log, the local EdDSA
/// token authority. Every host of a desktop broker (the app, `keybridge serve`, the tests and
/// benchmarks) opens it through this one function.
pub fn desktop_backends(config: &BrokerConfig, secrets: Arc<dyn SecretStore>) -> Result<Backends, OpenError> {
    let dir = &config.data_dir;
    let install_id = keybridge_broker::install_id(dir)?;
    let accept = config.accept_restored_state;
    let tokens = TokenIssuer::open(&install_id, dir, secrets.clone())?;
    let audit = AuditLog::open_anchored(
        &dir.join("audit"),
        secrets.as_ref(),
        &format!("audit-chain-key:{install_id}"),
        Some(Anchor::new(secrets.clone(), "audit", &install_id)),
        accept,
    )
    .map_err(|e| match e {
        keybridge_broker::audit::AuditError::RolledBack(message) => OpenError::RolledBack(message),
        other => OpenError::AuditUnusable(other),
    })?;
    let state = SealedFiles::open(dir, secrets.clone(), &install_id, accept)?;
    Ok(Backends {
        secrets,
        state: Arc::new(state),
        audit: Arc::new(audit),
        tokens: Arc::new(tokens),
        approvals: Arc::new(ThisBrokerOnly),
        rates: Arc::new(InMemoryCounts::default()),
    })
}

/// A broker on the desktop's seams.
pub fn open_desktop_broker(config: BrokerConfig, secrets: Arc<dyn SecretStore>) -> Result<Broker, OpenError> {
    let backends = desktop_backends(&config, secrets)?;
    Broker::open(config, backends)
}

/// How to host the broker.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// The built-in simulator in place of QuantConnect, with a `demo` account.
    pub demo: bool,
    /// In demo mode, also make a fresh key client (a terminal-launched bridge cannot be
    /// host-bound); earlier ones are revoked.
    pub demo_key_client: bool,
    /// Bridges this process starts itself authenticate without a pairing question: the app's
    /// connection test.
    pub connection_tests: bool,
    /// Start on state behind its keychain anchors (a backup put back on purpose); also set by
    /// `KEYBRIDGE_ACCEPT_RESTORED_STATE=1`.
    pub accept_restored_state: bool,
}

/// A key client made for the demo: the key is shown once, here.
#[derive(Debug, Clone)]
pub struct DemoClient {
    pub client_id: String,
    pub client_key: Credential,
}

/// The keychain namespace: `KEYBRIDGE_KEYCHAIN`, else none for release builds and `dev` for
/// development builds, so a build from source never touches the installed app's credentials.
pub fn keychain_namespace(demo: bool) -> Option<String> {
    if demo {
        return Some("demo".into());
    }
    match std::env::var("KEYBRIDGE_KEYCHAIN") {
        Ok(ns) if !ns.is_empty() => Some(ns),
        _ => cfg!(debug_assertions).then(|| "dev".to_string()),
    }
}

/// The OS keychain, and whether it persists. Only the demo may run on memory instead.
pub fn open_keychain(demo: bool) -> Result<(Arc<dyn SecretStore>, bool), HostError> {
    match KeyringStore::open(keychain_namespace(demo).as_deref()) {
        Ok(store) => Ok((Arc::new(store), true)),
        Err(e) if demo => {
            tracing::warn!("{e}; the demo keeps its keys in memory, nothing real is stored");
            Ok((Arc::new(MemoryStore::default()), false))
        }
        Err(e) => Err(HostError::Keychain(e)),
    }
}

/// Executables accepted as the bridge: `keybridge-mcp` beside the running program (where the
/// installers put the sidecar), and any listed in `KEYBRIDGE_BRIDGE_PATH` (separated like PATH).
pub fn bridge_executables() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(path) = shipped_bridge() {
        found.push(path);
    }
    if let Some(extra) = std::env::var_os("KEYBRIDGE_BRIDGE_PATH") {
        found.extend(std::env::split_paths(&extra));
    }
    found
}

/// `keybridge-mcp` beside the running program: what MCP client configs should launch.
pub fn shipped_bridge() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(format!("keybridge-mcp{}", std::env::consts::EXE_SUFFIX)))
}

/// A running broker with its socket bound, not yet serving.
pub struct Host {
    broker: Arc<Broker>,
    listener: server::Listener,
    base_url: String,
    persistent: bool,
    demo_client: Option<DemoClient>,
    /// Kept alive for the broker's lifetime: dropping it stops the simulator.
    _sim: Option<SimHandle>,
    scratch: Option<PathBuf>,
    _data_lock: std::fs::File,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("socket", &self.listener.address()).field("base_url", &self.base_url).finish()
    }
}

impl Host {
    /// Open the keychain and the data folder, bind the socket (refusing if another broker of
    /// this user runs), and in demo mode start the simulator with its account.
    pub async fn start(options: HostOptions) -> Result<Host, HostError> {
        let demo = options.demo;
        let socket = keybridge_endpoint::default_address();
        let (store, persistent) = open_keychain(demo)?;
        // The demo keeps its state apart from real accounts, and in a throwaway folder when its
        // keys cannot outlive the process.
        let scratch =
            (demo && !persistent).then(|| std::env::temp_dir().join(format!("keybridge-demo-{}", std::process::id())));
        let data_dir = match (&scratch, demo) {
            (Some(dir), _) => dir.clone(),
            (None, true) => default_data_dir().join("demo"),
            (None, false) => default_data_dir(),
        };
        // Bind first: a second broker must not touch the first one's files.
        let listener = server::bind(&socket)?;
        // `KEYBRIDGE_DEMO_QC_URL`: the demo on a simulator already running elsewhere, so the
        // broker's own memory and time can be measured apart from the simulator's.
        let demo_elsewhere = std::env::var("KEYBRIDGE_DEMO_QC_URL").ok().filter(|url| demo && !url.is_empty());
        let sim = if demo && demo_elsewhere.is_none() {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            Some(keybridge_qc_sim::start(SimConfig::default(), addr).await.map_err(HostError::Simulator)?)
        } else {
            None
        };
        let base_url = match (&sim, demo_elsewhere) {
            (Some(sim), _) => sim.base_url(),
            (None, Some(url)) => url,
            (None, None) => std::env::var("KEYBRIDGE_QC_BASE_URL")
                .ok()
                .filter(|url| !url.is_empty())
                .unwrap_or_else(|| keybridge_quantconnect::DEFAULT_BASE_URL.into()),
        };
        // The socket's lock keeps out a second broker on the same socket; this one keeps out a
        // broker on another socket (another XDG_RUNTIME_DIR, say) from the same data folder,
        // whose interleaved writes would break the audit chain.
        let data_lock = lock_data_dir(&data_dir)?;
        let mut config = BrokerConfig::new(&data_dir, base_url.clone());
        config.bridge_executables = bridge_executables();
        config.version = keybridge_version::VERSION.into();
        config.trust_own_bridges = options.connection_tests;
        config.accept_restored_state =
            options.accept_restored_state || std::env::var("KEYBRIDGE_ACCEPT_RESTORED_STATE").is_ok_and(|v| v == "1");
        if let Some(secs) = std::env::var("KEYBRIDGE_APPROVAL_TIMEOUT").ok().and_then(|s| s.parse().ok()) {
            config.approval_timeout = Duration::from_secs(secs);
        }
        let broker = Arc::new(open_desktop_broker(config, store)?);
        let demo_client = if demo { set_up_demo(&broker, options.demo_key_client).await? } else { None };
        // What is in force goes on record at every start.
        let settings = broker.settings().view();
        broker
            .audit_log()
            .append(&AuditEvent::BrokerStarted {
                version: keybridge_version::VERSION.into(),
                quantconnect: base_url.clone(),
                settings,
            })
            .map_err(|e| HostError::Broker(e.into()))?;
        Ok(Host { broker, listener, base_url, persistent, demo_client, _sim: sim, scratch, _data_lock: data_lock })
    }

    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    pub fn socket_path(&self) -> &Path {
        self.listener.address()
    }

    pub fn data_dir(&self) -> &Path {
        &self.broker.config().data_dir
    }

    /// QuantConnect's API, or the simulator's in demo mode.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Whether secrets outlive this process (false only for a demo without a keychain).
    pub fn persistent(&self) -> bool {
        self.persistent
    }

    pub fn demo_client(&self) -> Option<&DemoClient> {
        self.demo_client.as_ref()
    }

    /// Serve bridges and admin connections until `shutdown` completes, then write the last
    /// record and remove a demo's throwaway folder.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), HostError> {
        let Host { broker, listener, scratch, _sim, _data_lock, .. } = self;
        server::serve(listener, broker.clone(), shutdown).await;
        broker.audit_log().append(&AuditEvent::BrokerStopped).map_err(|e| HostError::Broker(e.into()))?;
        // The chain's end goes into the keychain, so a log cut back while stopped is refused.
        broker.audit_log().anchor_now();
        drop(_sim);
        drop(_data_lock);
        if let Some(dir) = scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    }
}

fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, HostError> {
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| {
        HostError::Open(OpenError::Storage { action: "lock", path: data_dir.to_path_buf(), source: e })
    };
    let private = |e: keybridge_vault::VaultError| failed(e.into());
    keybridge_vault::create_private_dir(data_dir).map_err(private)?;
    let file = keybridge_vault::open_private_rw(&data_dir.join("broker.lock")).map_err(private)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(HostError::AlreadyRunning(format!(
            "another Keybridge broker is using the data folder {} (through another socket); stop it first",
            data_dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(failed(e.into())),
    }
}

async fn set_up_demo(broker: &Broker, key_client: bool) -> Result<Option<DemoClient>, HostError> {
    let demo = SimAccount::demo();
    let accounts: Vec<AccountView> = expect(broker.admin(AdminCommand::AccountList).await?)?;
    let has_demo = accounts.iter().any(|account| account.id == "demo");
    if !has_demo {
        broker
            .admin(AdminCommand::AccountAdd {
                name: "demo".into(),
                user_id: demo.user_id,
                organization_id: Some(demo.organization_id),
                api_token: Credential::new(demo.api_token),
                skip_check: false,
            })
            .await?;
    }
    if !key_client {
        return Ok(None);
    }
    // A key is only shown when it is made, so the demo makes a fresh one each start.
    let clients: Vec<ClientView> = expect(broker.admin(AdminCommand::ClientList).await?)?;
    for old in clients.into_iter().filter(|c| c.name == "Demo client" && !c.revoked) {
        broker.admin(AdminCommand::ClientRevoke { client_id: old.client_id }).await?;
    }
    let spec = ClientSpec {
        name: "Demo client".into(),
        account: "demo".into(),
        preset: Some("trader".into()),
        scopes: Vec::new(),
        policy: Default::default(),
        token_ttl_secs: None,
        with_key: true,
    };
    let added: ClientAdded = expect(broker.admin(AdminCommand::ClientAdd { spec }).await?)?;
    let client_key = Credential::new(added.client_key.unwrap_or_default());
    Ok(Some(DemoClient { client_id: added.client_id, client_key }))
}

/// The view a command answers with; another kind of reply is the broker's bug.
fn expect<T: TryFrom<AdminReply, Error = AdminReply>>(reply: AdminReply) -> Result<T, HostError> {
    // The reply is not shown: a new client's key is in one.
    T::try_from(reply)
        .map_err(|_| HostError::Broker(BrokerError::Internal("the broker answered with another kind of reply".into())))
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
