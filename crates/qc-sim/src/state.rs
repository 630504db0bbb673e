//! The simulator's in-memory model of one QuantConnect account.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::config::SimAccount;
use crate::util::{hex_id, seed};

pub(crate) struct SimState {
    pub accounts: BTreeMap<String, AccountState>,
    /// Object-store downloads, by the token in their URL, shared by all accounts because
    /// the URL is fetched without authentication (like a pre-signed link).
    pub downloads: HashMap<String, Vec<u8>>,
}

impl SimState {
    pub fn new(accounts: &[SimAccount]) -> SimState {
        SimState {
            accounts: accounts.iter().map(|a| (a.user_id.clone(), AccountState::new(a.clone()))).collect(),
            downloads: HashMap::new(),
        }
    }
}

pub(crate) struct AccountState {
    pub account: SimAccount,
    pub credit_balance: f64,
    pub projects: BTreeMap<i64, Project>,
    pub next_project_id: i64,
    pub next_file_id: i64,
    /// Numbers every job id so that ids never repeat within an account.
    pub seq: u64,
    pub nodes: Vec<Node>,
    pub optimizations: Vec<Optimization>,
    pub live: Vec<LiveDeployment>,
    pub objects: BTreeMap<String, StoredObject>,
    pub object_jobs: HashMap<String, Vec<String>>,
    pub auth0: BTreeSet<String>,
}

impl AccountState {
    fn new(account: SimAccount) -> AccountState {
        let s = seed(&["credit", &account.user_id]);
        let credit_balance = 1000.0 + (s % 9000) as f64 + ((s / 9000) % 100) as f64 / 100.0;
        let nodes = default_nodes(&account.user_id);
        AccountState {
            account,
            credit_balance,
            projects: BTreeMap::new(),
            next_project_id: 24_000_001,
            next_file_id: 1,
            seq: 0,
            nodes,
            optimizations: Vec::new(),
            live: Vec::new(),
            objects: BTreeMap::new(),
            object_jobs: HashMap::new(),
            auth0: BTreeSet::new(),
        }
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The numeric user id QuantConnect shows as `ownerId`/`uid`; non-numeric ids in a
    /// custom configuration get a stable stand-in.
    pub fn owner_uid(&self) -> i64 {
        uid_of(&self.account.user_id)
    }
}

pub(crate) fn uid_of(user_id: &str) -> i64 {
    user_id.parse::<i64>().unwrap_or_else(|_| (seed(&["uid", user_id]) % 9_000_000) as i64 + 1_000_000)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Backtest,
    Research,
    Live,
}

pub(crate) struct Node {
    pub id: String,
    pub kind: NodeKind,
    pub sku: &'static str,
    pub name: String,
    pub cpu: i64,
    pub ram: f64,
    pub speed: f64,
    pub monthly: i64,
    pub yearly: i64,
    pub has_gpu: i64,
}

fn default_nodes(user_id: &str) -> Vec<Node> {
    let specs: [(NodeKind, &str, i64, f64, f64, i64); 6] = [
        (NodeKind::Backtest, "B2-8", 2, 8.0, 2.4, 14),
        (NodeKind::Backtest, "B4-12", 4, 12.0, 3.4, 20),
        (NodeKind::Research, "R1-4", 1, 4.0, 2.4, 5),
        (NodeKind::Research, "R2-8", 2, 8.0, 2.4, 14),
        (NodeKind::Live, "L1-1", 1, 1.0, 2.4, 24),
        (NodeKind::Live, "L2-4", 2, 4.0, 2.4, 40),
    ];
    specs
        .iter()
        .map(|&(kind, sku, cpu, ram, speed, monthly)| {
            let prefix = match kind {
                NodeKind::Backtest => "BT",
                NodeKind::Research => "RS",
                NodeKind::Live => "LN",
            };
            Node {
                id: format!("{prefix}-{}", hex_id(&["node", user_id, sku], 32)),
                kind,
                sku,
                name: format!("{sku} node"),
                cpu,
                ram,
                speed,
                monthly,
                yearly: monthly * 10,
                has_gpu: 0,
            }
        })
        .collect()
}

pub(crate) struct Project {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub language: String,
    pub organization_id: String,
    pub created: i64,
    pub modified: i64,
    pub files: Vec<FileEntry>,
    pub collaborators: Vec<Collaborator>,
    pub active_nodes: Vec<String>,
    pub auto_select_node: bool,
    pub compiles: Vec<Compile>,
    pub backtests: Vec<Backtest>,
    pub lean_version_id: i64,
}

#[derive(Clone)]
pub(crate) struct FileEntry {
    pub id: i64,
    pub name: String,
    pub content: String,
    pub modified: i64,
}

pub(crate) struct Collaborator {
    pub user_id: String,
    pub live_control: bool,
    pub write: bool,
    pub owner: bool,
}

pub(crate) struct Compile {
    pub id: String,
    pub reads: u32,
    /// Errors found when the compile was created; empty means the build will succeed.
    pub errors: Vec<String>,
    pub signature: String,
    pub file_names: Vec<String>,
}

pub(crate) struct Backtest {
    pub id: String,
    pub name: String,
    pub note: String,
    pub compile_id: String,
    pub created: i64,
    pub parameters: Map<String, Value>,
    pub reads: u32,
}

#[derive(Clone)]
pub(crate) struct OptParam {
    pub name: String,
    pub min: f64,
    pub max: f64,
    pub step: f64,
    pub min_step: Option<f64>,
}

pub(crate) struct Optimization {
    pub id: String,
    pub project_id: i64,
    pub name: String,
    pub target: String,
    pub target_to: String,
    pub target_value: Option<f64>,
    pub strategy: String,
    pub compile_id: String,
    pub parameters: Vec<OptParam>,
    pub constraints: Vec<Value>,
    pub node_type: String,
    pub parallel_nodes: i64,
    pub created: i64,
    pub reads: u32,
    pub aborted: bool,
}

pub(crate) struct LiveDeployment {
    pub deploy_id: String,
    pub project_id: i64,
    pub node_id: String,
    pub brokerage: String,
    pub launched: i64,
    pub stopped: Option<i64>,
    pub status: &'static str,
    pub version_id: i64,
    pub files: Vec<FileEntry>,
    pub commands: Vec<Value>,
}

pub(crate) struct StoredObject {
    pub data: Vec<u8>,
    pub created: i64,
    pub modified: i64,
}
