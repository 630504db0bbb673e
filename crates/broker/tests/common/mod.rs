//! A broker on a real Unix socket in a temporary folder, against an in-process simulator.

#![allow(dead_code, reason = "each test file uses a different part of this module")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keybridge_broker::{Broker, BrokerConfig, server};
use keybridge_broker_proto::{
    AdminCommand, ClientSpec, Credential, ErrorInfo, Hello, PROTOCOL_VERSION, Request, RequestBody, Response,
    SessionInfo, read_frame, write_frame,
};
use keybridge_qc_sim::{SimAccount, SimConfig, SimHandle};
use keybridge_vault::{MemoryStore, SecretStore};
use serde_json::{Value, json};
use tokio::net::UnixStream;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub sim: SimHandle,
    pub store: Arc<dyn SecretStore>,
    pub broker: Arc<Broker>,
    pub socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

impl Env {
    pub async fn start(approval_timeout: Duration) -> Env {
        Self::start_with(approval_timeout, SimAccount::demo().api_token).await
    }

    /// A broker whose `main` account has `token` (the simulator knows the same token).
    pub async fn start_with(approval_timeout: Duration, token: String) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let account = SimAccount { api_token: token.clone(), ..SimAccount::demo() };
        let sim = keybridge_qc_sim::start(
            SimConfig { accounts: vec![account.clone()], ..SimConfig::default() },
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let socket = dir.path().join("run").join("broker.sock");
        let (broker, stop, task) = boot(dir.path(), &sim, &store, &socket, approval_timeout);
        let env = Env { dir, sim, store, broker, socket, stop: Some(stop), task: Some(task) };
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

    /// Stop the broker, as the host does: its last record written and the chain anchored.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        self.broker.audit_log().append(&keybridge_broker::audit::AuditEvent::BrokerStopped).unwrap();
        self.broker.audit_log().anchor_now();
    }

    /// Open a broker on the same data and keychain (without serving), or say why not.
    pub fn open_again(&self, accept_restored_state: bool) -> Result<Broker, keybridge_broker::OpenError> {
        let mut config = BrokerConfig::new(data_dir(self.dir.path()), self.sim.base_url());
        config.accept_restored_state = accept_restored_state;
        keybridge_host::open_desktop_broker(config, self.store.clone())
    }

    /// Stop the broker and start a new one on the same data, as after a restart.
    pub async fn restart(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        let timeout = self.broker.config().approval_timeout;
        let (broker, stop, task) = boot(self.dir.path(), &self.sim, &self.store, &self.socket, timeout);
        self.broker = broker;
        self.stop = Some(stop);
        self.task = Some(task);
    }

    pub async fn admin(&self, command: AdminCommand) -> Result<Value, ErrorInfo> {
        admin_at(&self.socket, command).await
    }

    pub async fn add_client(&self, preset: &str, key: bool) -> (String, Option<String>) {
        let spec = ClientSpec {
            name: format!("{preset} client"),
            account: "main".into(),
            preset: Some(preset.into()),
            scopes: vec![],
            policy: Default::default(),
            token_ttl_secs: None,
            with_key: key,
        };
        let added = self.admin(AdminCommand::ClientAdd { spec }).await.unwrap();
        (added["client_id"].as_str().unwrap().to_string(), added["client_key"].as_str().map(str::to_string))
    }

    /// Wait until an approval is pending and return it.
    pub async fn pending_approval(&self) -> Value {
        pending_at(&self.socket).await
    }
}

/// One admin command over the socket at `socket` (usable from a task that owns no `Env`).
pub async fn admin_at(socket: &Path, command: AdminCommand) -> Result<Value, ErrorInfo> {
    let mut stream = UnixStream::connect(socket).await.unwrap();
    write_frame(&mut stream, &Hello::Admin { version: PROTOCOL_VERSION }).await.unwrap();
    let _welcome: Response = read_frame(&mut stream).await.unwrap();
    write_frame(&mut stream, &Request { id: 1, body: RequestBody::Admin(command) }).await.unwrap();
    match read_frame(&mut stream).await.unwrap() {
        Response::Admin { result, .. } => Ok(result),
        Response::Error { error, .. } => Err(error),
        other => panic!("unexpected {other:?}"),
    }
}

/// Wait until an approval is pending at `socket` and return it.
pub async fn pending_at(socket: &Path) -> Value {
    for _ in 0..300 {
        let list = admin_at(socket, AdminCommand::ApprovalsList).await.unwrap();
        if let Some(first) = list.as_array().and_then(|l| l.first()) {
            return first.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no approval appeared");
}

type Booted = (Arc<Broker>, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>);

fn boot(
    dir: &Path,
    sim: &SimHandle,
    store: &Arc<dyn SecretStore>,
    socket: &Path,
    approval_timeout: Duration,
) -> Booted {
    let mut config = BrokerConfig::new(data_dir(dir), sim.base_url());
    config.approval_timeout = approval_timeout;
    config.bridge_executables = vec![std::env::current_exe().unwrap()];
    let broker = Arc::new(keybridge_host::open_desktop_broker(config, store.clone()).unwrap());
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

/// A bridge connection, as `keybridge-mcp` makes it.
pub struct Bridge {
    pub stream: UnixStream,
    pub session: SessionInfo,
    next_id: u64,
    /// Approval summaries the broker sent while calls waited.
    pub waited: Vec<String>,
}

impl Bridge {
    pub async fn connect(socket: &Path, client_id: &str, key: Option<&str>) -> Result<Bridge, ErrorInfo> {
        let mut stream = UnixStream::connect(socket).await.unwrap();
        let hello = Hello::Bridge {
            version: PROTOCOL_VERSION,
            client_id: client_id.into(),
            client_key: key.map(|k| Credential::new(k.into())),
        };
        // A broker that refuses the peer answers and closes before reading: the write may fail,
        // the answer is still there to read.
        let _ = write_frame(&mut stream, &hello).await;
        match read_frame(&mut stream).await.unwrap() {
            Response::Welcome { session } => Ok(Bridge { stream, session, next_id: 1, waited: vec![] }),
            Response::Error { error, .. } => Err(error),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn token(&self) -> Credential {
        self.session.token.clone()
    }

    pub async fn request(&mut self, body: RequestBody) -> Result<Response, ErrorInfo> {
        let id = self.next_id;
        self.next_id += 1;
        write_frame(&mut self.stream, &Request { id, body }).await.unwrap();
        loop {
            match read_frame(&mut self.stream).await.unwrap() {
                Response::Waiting { summary, .. } => self.waited.push(summary),
                Response::Error { error, .. } => return Err(error),
                other => return Ok(other),
            }
        }
    }

    pub async fn call_with(&mut self, token: Credential, tool: &str, arguments: Value) -> Result<Value, ErrorInfo> {
        match self.request(RequestBody::Call { token, tool: tool.into(), arguments }).await? {
            Response::Result { result, .. } => Ok(result),
            other => panic!("unexpected {other:?}"),
        }
    }

    pub async fn call(&mut self, tool: &str, arguments: Value) -> Result<Value, ErrorInfo> {
        self.call_with(self.token(), tool, arguments).await
    }

    pub async fn tools(&mut self) -> Result<Vec<String>, ErrorInfo> {
        match self.request(RequestBody::ListTools { token: self.token() }).await? {
            Response::Tools { tools, .. } => Ok(tools.into_iter().map(|t| t.name).collect()),
            other => panic!("unexpected {other:?}"),
        }
    }
}

pub fn project_args(id: i64) -> Value {
    json!({"projectId": id})
}
