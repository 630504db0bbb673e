//! What admin commands answer and what the broker pushes to its followers, as typed views.
//!
//! The broker builds these; the CLI prints them; the desktop app hands them to its window,
//! whose TypeScript types are generated from these definitions (feature `typescript`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "typescript")]
use ts_rs::TS;

/// `AdminCommand::Status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct StatusView {
    pub version: String,
    pub paused: bool,
    pub data_dir: String,
    /// QuantConnect's API base URL, or the simulator's.
    pub quantconnect: String,
    pub sessions: usize,
    pub pending_approvals: usize,
    pub signing_key: String,
    /// Refused connections and tokens since the broker started, per client and reason.
    #[serde(default)]
    pub auth_failures: Vec<AuthFailureCount>,
}

/// Why a bridge or a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
#[serde(rename_all = "snake_case")]
pub enum AuthFailure {
    /// A wrong client key, a key missing, or a key given to a host-bound client.
    BadKey,
    Expired,
    Revoked,
    UnknownClient,
    /// The peer runs as another OS user.
    OtherUser,
    /// A first connection denied or unanswered, or a bridge or host Keybridge would not name.
    PairingRefused,
    /// A token that is forged, damaged, or of another session.
    InvalidToken,
}

/// How often one client was refused for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct AuthFailureCount {
    pub client: String,
    pub reason: AuthFailure,
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub count: u64,
    /// Unix seconds of the latest.
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub last: u64,
}

/// A QuantConnect account: never its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct AccountView {
    pub id: String,
    pub user_id: String,
    pub organization_id: Option<String>,
    /// Unix seconds.
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub created: u64,
}

/// A live bridge session of a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct SessionView {
    pub session_id: String,
    /// The program that started the bridge, when known.
    pub host: Option<String>,
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub started: u64,
}

/// A paired MCP client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub account: String,
    pub preset: Option<String>,
    pub scopes: Vec<String>,
    /// Scope → what the client's own policy says of it, over the defaults.
    pub policy: BTreeMap<String, PolicyDecision>,
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub token_ttl_secs: u64,
    /// `host` (host-bound pairing) or `key` (client key).
    pub mode: ClientMode,
    pub approved_hosts: Vec<String>,
    pub revoked: bool,
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub created: u64,
    #[cfg_attr(feature = "typescript", ts(type = "number | null"))]
    pub last_seen: Option<u64>,
    #[serde(default)]
    pub sessions: Vec<SessionView>,
    #[serde(default)]
    pub limits: ClientLimits,
}

/// What a policy says of a scope: run it, ask the human first, or refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
#[serde(rename_all = "snake_case")]
pub enum PolicyDecision {
    Allow,
    Ask,
    Deny,
}

/// How a client's bridge proves it is that client: the OS vouches for the program that started
/// it (host-bound pairing), or it holds a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
#[serde(rename_all = "snake_case")]
pub enum ClientMode {
    Host,
    Key,
}

/// How much one client may do, whatever its scopes allow: each limit, when hit, refuses the
/// call with an error that names it and says how to change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct ClientLimits {
    /// Tool calls started in any 60 seconds.
    pub calls_per_minute: u32,
    /// Live deployments (`create_live_algorithm`) sent in any 24 hours.
    pub live_deployments_per_day: u32,
    /// Calls at once, from the first check to the answer (waiting for approval included).
    pub calls_in_flight: u32,
}

impl Default for ClientLimits {
    /// Well above what a person working with an assistant does, well below a runaway loop.
    fn default() -> Self {
        ClientLimits { calls_per_minute: 120, live_deployments_per_day: 10, calls_in_flight: 100 }
    }
}

/// A tool the human allowed for the rest of a session, for a while: no question until it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct AllowanceView {
    pub session_id: String,
    pub client_id: String,
    pub client_name: String,
    pub tool: String,
    /// Seconds until it ends.
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub seconds_left: u64,
}

/// A change to some of a client's limits; the others stay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct ClientLimitsUpdate {
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub calls_per_minute: Option<u32>,
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub live_deployments_per_day: Option<u32>,
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub calls_in_flight: Option<u32>,
}

impl ClientLimitsUpdate {
    pub fn is_empty(&self) -> bool {
        *self == ClientLimitsUpdate::default()
    }
}

/// `AdminCommand::ClientAdd`: the key only for key clients, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct ClientAdded {
    pub client_id: String,
    pub client_key: Option<String>,
}

/// What is being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalKind {
    ToolCall,
    /// The first session of a client from a host executable.
    Pairing,
}

/// A question for the human: a tool call that needs approval, or a first pairing. The broker
/// keeps its pending approvals in this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct ApprovalView {
    pub id: String,
    pub kind: ApprovalKind,
    pub client_id: String,
    pub client_name: String,
    pub session_id: Option<String>,
    pub account: String,
    pub tool: Option<String>,
    pub scope: Option<String>,
    /// What will happen, in plain words.
    pub summary: String,
    /// The exact arguments, brokerage credentials redacted.
    #[cfg_attr(feature = "typescript", ts(type = "unknown"))]
    pub arguments: Value,
    pub arguments_digest: String,
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub created: u64,
    /// Unix seconds at which silence becomes a denial.
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub expires: u64,
    /// A short code the waiting client shows too, so the human can tell which request is whose.
    #[serde(default)]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub code: Option<String>,
    /// The program the asking client runs in, as Keybridge named it when it connected.
    #[serde(default)]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub host: Option<String>,
    /// That program's path alone, for the window to show the program's icon beside its name.
    #[serde(default)]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub host_program: Option<String>,
    /// What the call will touch, as the broker looked it up on its own authority: for the human
    /// only, never sent to the client that asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub preview: Option<ConsequencePreview>,
}

/// What a call will do, read before it is asked about: the positions a liquidation closes,
/// whether a deployment trades real money, what a delete removes, what an optimization costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct ConsequencePreview {
    /// "Holdings:", "Will deploy:", "Will delete:", "Will cost:".
    pub heading: String,
    pub lines: Vec<String>,
    /// Why part of it could not be looked up; the question is asked all the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub unavailable: Option<String>,
}

/// One audit record as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct AuditRecordView {
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub seq: u64,
    /// Unix milliseconds.
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub ts: u64,
    /// `kind` says what happened; the other fields depend on it.
    #[cfg_attr(feature = "typescript", ts(type = "Record<string, unknown>"))]
    pub event: Value,
}

/// `AdminCommand::AuditVerify` when the chain is intact (a broken chain is an error naming
/// the first bad record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct AuditVerified {
    pub intact: bool,
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub records: u64,
    pub files: usize,
}

/// `AdminCommand::AuditExport`: where the copy of the log was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct AuditExported {
    pub file: String,
}

/// Broker-wide settings, over the built-in defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct SettingsView {
    /// Lifetime of the access tokens of new clients, 60..=3600.
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub token_ttl_secs: u64,
    /// How long a question waits for the human before it counts as a denial, 10..=600.
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub approval_timeout_secs: u64,
    /// Scope → `allow` / `ask` / `deny` for every client; a client's own overrides win.
    pub policy: BTreeMap<String, String>,
}

/// What the broker pushes to followers (`AuditTail { follow: true }`, and the app's window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BrokerEvent {
    Audit {
        record: AuditRecordView,
    },
    ApprovalOpened {
        approval: Box<ApprovalView>,
    },
    ApprovalClosed {
        id: String,
    },
    ClientChanged {
        client: String,
    },
    Paused {
        paused: bool,
    },
    SettingsChanged {
        settings: SettingsView,
    },
    /// A slow follower missed this many events; it should reload.
    Lagged {
        #[cfg_attr(feature = "typescript", ts(type = "number"))]
        missed: u64,
    },
}
