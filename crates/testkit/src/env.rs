//! A broker in-process on the desktop's seams, in a temporary folder, on a real socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keybridge_broker::{Broker, BrokerConfig, OpenError, server};
use keybridge_broker_proto::{AdminCommand, ClientSpec, Credential, ErrorInfo};
use keybridge_qc_sim::{SimAccount, SimHandle};
use keybridge_vault::{MemoryStore, SecretStore};
use serde_json::Value;

use crate::Simulator;
use crate::wire::{admin_at, pending_at};

/// Where a world keeps the broker's data, under its temporary folder.
pub fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// A broker on the desktop's seams over `secrets`, its data in `data_dir`, calling the
/// QuantConnect API at `base_url`; bridges are accepted from this very test binary.
pub fn open_broker(
    data_dir: &Path,
    base_url: &str,
    approval_timeout: Duration,
    secrets: Arc<dyn SecretStore>,
) -> Result<Broker, OpenError> {
    let mut config = BrokerConfig::new(data_dir, base_url);
    config.approval_timeout = approval_timeout;
    config.bridge_executables = vec![std::env::current_exe().expect("the test binary's path")];
    keybridge_host::open_desktop_broker(config, secrets)
}

/// A client of the account `main` named `name`, with `preset`'s scopes and, with `with_key`, a key.
pub fn client_spec(name: &str, preset: &str, with_key: bool) -> ClientSpec {
    ClientSpec {
        name: name.into(),
        account: "main".into(),
        preset: Some(preset.into()),
        scopes: vec![],
        policy: Default::default(),
        token_ttl_secs: None,
        with_key,
    }
}

/// Add the simulator's `account` to `broker` as `main`, with `token`, checked with QuantConnect.
pub async fn add_main_account(broker: &Broker, account: &SimAccount, token: &str) {
    let add = AdminCommand::AccountAdd {
        name: "main".into(),
        user_id: account.user_id.clone(),
        organization_id: Some(account.organization_id.clone()),
        api_token: Credential::new(token.into()),
        skip_check: false,
    };
    broker.admin(add).await.expect("the account is accepted by the simulator");
}

/// A simulator and a broker on a real Unix socket in a temporary folder, with an in-memory
/// keychain.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub sim: SimHandle,
    pub account: SimAccount,
    pub store: Arc<dyn SecretStore>,
    pub broker: Arc<Broker>,
    pub socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Env {
    /// A broker with the account `main` (the demo's).
    pub async fn start(approval_timeout: Duration) -> Env {
        Self::start_with(approval_timeout, SimAccount::demo().api_token).await
    }

    /// A broker whose `main` account has `token` (the simulator knows the same token).
    pub async fn start_with(approval_timeout: Duration, token: String) -> Env {
        let env = Self::empty(approval_timeout, &token).await;
        let account = env.account.clone();
        let added = env
            .admin(AdminCommand::AccountAdd {
                name: "main".into(),
                user_id: account.user_id,
                organization_id: Some(account.organization_id),
                api_token: Credential::new(token),
                skip_check: false,
            })
            .await;
        added.expect("the account is accepted by the simulator");
        env
    }

    /// A broker with no account yet, over a simulator whose account has `token`.
    pub async fn empty(approval_timeout: Duration, token: &str) -> Env {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let Simulator { handle: sim, account } = Simulator::start(token).await;
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let socket = dir.path().join("run").join("broker.sock");
        let (broker, stop, task) = boot(dir.path(), &sim, &store, &socket, approval_timeout);
        Env { dir, sim, account, store, broker, socket, stop: Some(stop), task: Some(task) }
    }

    /// Stop the broker, as the host does: its last record written and the chain anchored.
    pub async fn stop(&mut self) {
        self.stop_serving().await;
        self.broker.audit_log().append(&keybridge_broker::audit::AuditEvent::BrokerStopped).unwrap();
        self.broker.audit_log().anchor_now();
    }

    async fn stop_serving(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Open a broker on the same data and keychain (without serving), or say why not.
    pub fn open_again(&self, accept_restored_state: bool) -> Result<Broker, OpenError> {
        let mut config = BrokerConfig::new(data_dir(self.dir.path()), self.sim.base_url());
        config.accept_restored_state = accept_restored_state;
        keybridge_host::open_desktop_broker(config, self.store.clone())
    }

    /// Stop the broker and start a new one on the same data, as after a restart.
    pub async fn restart(&mut self) {
        self.stop_serving().await;
        let timeout = self.broker.config().approval_timeout;
        let (broker, stop, task) = boot(self.dir.path(), &self.sim, &self.store, &self.socket, timeout);
        self.broker = broker;
        self.stop = Some(stop);
        self.task = Some(task);
    }

    /// One admin command over the socket; the answer as it came on the wire.
    pub async fn admin(&self, command: AdminCommand) -> Result<Value, ErrorInfo> {
        admin_at(&self.socket, command).await
    }

    /// Pair a client of account `main` with `preset`; its id and, with `key`, its key.
    pub async fn add_client(&self, preset: &str, key: bool) -> (String, Option<String>) {
        let spec = client_spec(&format!("{preset} client"), preset, key);
        let added = self.admin(AdminCommand::ClientAdd { spec }).await.unwrap();
        (added["client_id"].as_str().unwrap().to_string(), added["client_key"].as_str().map(str::to_string))
    }

    /// Wait until an approval is pending and return it.
    pub async fn pending_approval(&self) -> Value {
        pending_at(&self.socket).await
    }
}

type Booted = (Arc<Broker>, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>);

fn boot(
    dir: &Path,
    sim: &SimHandle,
    store: &Arc<dyn SecretStore>,
    socket: &Path,
    approval_timeout: Duration,
) -> Booted {
    let broker = open_broker(&data_dir(dir), &sim.base_url(), approval_timeout, store.clone());
    let broker = Arc::new(broker.expect("the broker opens"));
    let listener = server::bind(socket).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = broker.clone();
    let task = tokio::spawn(async move {
        server::serve(listener, serving, async {
            let _ = stopped.await;
        })
        .await
    });
    (broker, stop, task)
}
