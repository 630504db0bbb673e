//! What the human oversees: the questions waiting for an answer, and the audit log.

use keybridge_broker_proto::{AllowanceView, ApprovalDecision, AuditExported, AuditVerified};
use keybridge_catalog::Scope;
use serde_json::{Value, json};

use crate::BrokerError;
use crate::audit::{AdminEvent, AuditEvent};
use crate::broker::Broker;
use crate::primitives::lock;

impl Broker {
    pub(super) fn decide_approval(&self, approval_id: &str, decision: ApprovalDecision) -> Result<Value, BrokerError> {
        if let ApprovalDecision::AllowFor { minutes } = decision {
            let asked = self.approvals.list().into_iter().find(|pending| pending.id == approval_id);
            let live = asked.as_ref().and_then(|pending| pending.scope.as_deref()?.parse::<Scope>().ok());
            if live.is_some_and(Scope::acts_on_live_trading) {
                return Err(BrokerError::Invalid(format!(
                    "a live-trading call cannot be allowed for {minutes} minutes: approve or deny this call on its own"
                )));
            }
        }
        let decided = self.approvals.decide(approval_id, decision).ok_or_else(|| {
            BrokerError::NotFound(format!("no pending approval `{approval_id}` (answered or timed out already)"))
        })?;
        self.record(AuditEvent::Approval {
            approval: approval_id.to_string(),
            client: decided.client_id,
            tool: decided.tool,
            decision: decision_text(decision),
            args_digest: decided.arguments_digest,
        });
        Ok(json!({"approval": approval_id, "decision": decision_text(decision)}))
    }

    pub(super) fn audit_tail(&self, last: usize) -> Result<Value, BrokerError> {
        let records = self.audit.read_all()?;
        let skip = records.len().saturating_sub(last);
        Ok(json!(records[skip..]))
    }

    pub(super) fn allowances(&self) -> Vec<AllowanceView> {
        self.approvals
            .standing()
            .into_iter()
            .map(|(session_id, tool, left)| {
                let client_id = lock(&self.sessions).get(&session_id).map(|s| s.client_id.clone()).unwrap_or_default();
                let client_name = lock(&self.clients).get(&client_id).map(|c| c.name.clone()).unwrap_or_default();
                AllowanceView { session_id, client_id, client_name, tool, seconds_left: left.as_secs() }
            })
            .collect()
    }

    pub(super) fn revoke_allowance(&self, session_id: &str, tool: &str) -> Result<Value, BrokerError> {
        if !self.approvals.revoke(session_id, tool) {
            return Err(BrokerError::NotFound(format!(
                "no standing allowance of {tool} in session {session_id} (it ended already)"
            )));
        }
        let client = lock(&self.sessions).get(session_id).map(|s| s.client_id.clone()).unwrap_or_default();
        self.record(AuditEvent::Admin(AdminEvent::AllowanceRevoked {
            client,
            session: session_id.to_string(),
            tool: tool.to_string(),
        }));
        Ok(json!({"revoked": true}))
    }

    pub(super) fn audit_export(&self) -> Result<Value, BrokerError> {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let path = self.config.data_dir.join("exports").join(format!("audit-{stamp}.jsonl"));
        let failed = |reason: String| {
            BrokerError::Invalid(format!(
                "cannot write the audit export {}: {reason}; check the data folder's free space and permissions",
                path.display()
            ))
        };
        let lines = self.audit.export_lines().map_err(|e| failed(e.to_string()))?;
        keybridge_vault::write_private(&path, lines.as_bytes()).map_err(|e| failed(e.to_string()))?;
        let file = path.display().to_string();
        self.record(AuditEvent::Admin(AdminEvent::AuditExported { file: file.clone() }));
        Ok(json!(AuditExported { file }))
    }

    pub(super) fn audit_verify(&self) -> Result<Value, BrokerError> {
        let verified = self.audit.verify()?;
        Ok(json!(AuditVerified { intact: true, records: verified.records, files: verified.files }))
    }
}

fn decision_text(decision: ApprovalDecision) -> String {
    match decision {
        ApprovalDecision::Approve => "approved".into(),
        ApprovalDecision::Deny => "denied".into(),
        ApprovalDecision::AllowFor { minutes } => format!("approved, and allowed for {minutes} minutes"),
    }
}
