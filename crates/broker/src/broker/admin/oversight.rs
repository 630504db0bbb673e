//! What the human oversees: the questions waiting for an answer, and the audit log.

use keybridge_broker_proto::{
    AdminReply, AllowanceRevoked, AllowanceView, ApprovalDecided, ApprovalDecision, AuditExported, AuditRecordView,
    AuditVerified,
};
use keybridge_catalog::Scope;

use crate::BrokerError;
use crate::audit::{AdminEvent, AuditEvent};
use crate::broker::Broker;
use crate::primitives::lock;

impl Broker {
    pub(super) fn decide_approval(
        &self,
        approval_id: &str,
        decision: ApprovalDecision,
    ) -> Result<AdminReply, BrokerError> {
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
        Ok(ApprovalDecided { approval: approval_id.to_string(), decision: decision_text(decision) }.into())
    }

    pub(super) fn audit_tail(&self, last: usize) -> Result<AdminReply, BrokerError> {
        let records = self.audit.read_all()?;
        let skip = records.len().saturating_sub(last);
        let tail = records.into_iter().skip(skip).map(|r| AuditRecordView { seq: r.seq, ts: r.ts, event: r.event });
        Ok(tail.collect::<Vec<_>>().into())
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

    pub(super) fn revoke_allowance(&self, session_id: &str, tool: &str) -> Result<AdminReply, BrokerError> {
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
        Ok(AllowanceRevoked { revoked: true }.into())
    }

    pub(super) fn audit_export(&self) -> Result<AdminReply, BrokerError> {
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
        Ok(AuditExported { file }.into())
    }

    pub(super) fn audit_verify(&self) -> Result<AdminReply, BrokerError> {
        let verified = self.audit.verify()?;
        Ok(AuditVerified { intact: true, records: verified.records, files: verified.files }.into())
    }
}

fn decision_text(decision: ApprovalDecision) -> String {
    match decision {
        ApprovalDecision::Approve => "approved".into(),
        ApprovalDecision::Deny => "denied".into(),
        ApprovalDecision::AllowFor { minutes } => format!("approved, and allowed for {minutes} minutes"),
    }
}
