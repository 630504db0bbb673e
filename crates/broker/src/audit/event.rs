//! Every event the audit log records, as one type. The broker, the host and the app append
//! through it, so a kind of event is spelled one way everywhere, and an outcome is spelled as
//! on the wire (`missing_scope`, never `missingscope`). Readers take records as JSON: a log
//! holds what earlier versions wrote, too.

use std::collections::BTreeSet;

use keybridge_broker_proto::{ClientLimits, ErrorCode, SettingsView};
use keybridge_catalog::Scope;
use serde::Serialize;
use serde_json::Value;

/// What happened, under `kind`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEvent {
    /// One tool call, written when it finished (or was refused, or went away).
    ToolCall(ToolCallEvent),
    Authentication {
        client: String,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        host: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        method: Option<AuthMethod>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    TokenMinted {
        client: String,
        session: String,
        jti: String,
        expires: u64,
    },
    /// The human allowed a tool for the rest of a session, for a while.
    Allowance {
        client: String,
        session: String,
        tool: String,
        minutes: u64,
    },
    /// A read the broker made on its own authority, to tell the human what a call would touch.
    BrokerLookup {
        tool: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        project: Option<i64>,
        account: String,
        client: String,
        for_tool: String,
        outcome: Outcome,
    },
    /// The human's answer to a question.
    Approval {
        approval: String,
        client: String,
        tool: Option<String>,
        decision: String,
        args_digest: String,
        /// Who answered, when a person of an identity provider did (team mode).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// A change an administrator made, under `action`.
    Admin(AdminEvent),
    BrokerStarted {
        version: String,
        quantconnect: String,
        settings: SettingsView,
    },
    BrokerStopped,
    AuditLogMissing {
        detail: String,
    },
    RestoredStateAccepted {
        records: u64,
        detail: String,
    },
}

/// The fields of a tool call's record, filled in as the call goes through the pipeline: a call
/// refused early has only the first few.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ToolCallEvent {
    pub tool: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_digest: Option<String>,
    /// Redacted and cut to size (`crate::redact`); the digest covers them whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<CallDecision>,
    /// How QuantConnect answered, for a call that was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Outcome>,
    pub latency_us: u64,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a call was let through, or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDecision {
    Allowed,
    AllowedForSession,
    Approved,
    ApprovedForSession,
    Denied,
    TimedOut,
}

/// How something ended: `ok`, `timed_out`, or the error's code as the wire spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Ok,
    TimedOut,
    #[serde(untagged)]
    Failed(ErrorCode),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Key,
    Host,
    /// Team mode: the host checked an identity provider's access token.
    IdentityProvider,
}

/// An administrator's change.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AdminEvent {
    AccountAdded { account: String, checked: bool },
    AccountRemoved { account: String, existed: bool },
    AccountRenamed { account: String, new_name: String, clients: Vec<String> },
    ClientAdded { client: String, scopes: BTreeSet<Scope>, mode: AuthMethod },
    ClientRevoked { client: String, approvals_denied: usize },
    ClientUpdated { client: String, scopes: BTreeSet<Scope>, limits: ClientLimits },
    SessionEnded { session: String, existed: bool },
    Paused,
    Resumed,
    SettingsChanged { settings: SettingsView },
    SigningKeyRotated { kid: String },
    AuditExported { file: String },
    AllowanceRevoked { client: String, session: String, tool: String },
}

impl AuditEvent {
    /// The event as the log stores it.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("an audit event is plain data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outcomes_are_spelled_as_on_the_wire() {
        let call = AuditEvent::ToolCall(ToolCallEvent {
            tool: "delete_project".into(),
            outcome: Outcome::Failed(ErrorCode::MissingScope),
            upstream: None,
            ..ToolCallEvent::default()
        });
        let json = call.to_json();
        assert_eq!(json["kind"], "tool_call");
        assert_eq!(json["outcome"], "missing_scope");
        assert_eq!(json!(Outcome::TimedOut), "timed_out");
        assert_eq!(json!(Outcome::Ok), "ok");
        assert!(json.get("client").is_none(), "a field not reached is left out: {json}");
    }

    #[test]
    fn an_admin_change_carries_its_kind_and_its_action() {
        let json = AuditEvent::Admin(AdminEvent::Paused).to_json();
        assert_eq!(json, json!({"kind": "admin", "action": "paused"}));
        let json = AuditEvent::Admin(AdminEvent::SigningKeyRotated { kid: "k2".into() }).to_json();
        assert_eq!(json, json!({"kind": "admin", "action": "signing_key_rotated", "kid": "k2"}));
        assert_eq!(AuditEvent::BrokerStopped.to_json(), json!({"kind": "broker_stopped"}));
    }
}
