//! What the human oversees: the questions waiting for an answer, and the audit log.

use keybridge_broker_proto::{ApprovalDecision, AuditVerified};
use serde_json::{Value, json};

use crate::BrokerError;
use crate::broker::Broker;

impl Broker {
    pub(super) fn decide_approval(&self, approval_id: &str, decision: ApprovalDecision) -> Result<Value, BrokerError> {
        let decided = self.approvals.decide(approval_id, decision).ok_or_else(|| {
            BrokerError::NotFound(format!("no pending approval `{approval_id}` (answered or timed out already)"))
        })?;
        self.record(json!({"kind": "approval", "approval": approval_id, "client": decided.client_id,
            "tool": decided.tool, "decision": decision_text(decision), "args_digest": decided.arguments_digest}));
        Ok(json!({"approval": approval_id, "decision": decision_text(decision)}))
    }

    pub(super) fn audit_tail(&self, last: usize) -> Result<Value, BrokerError> {
        let records = self.audit.read_all()?;
        let skip = records.len().saturating_sub(last);
        Ok(json!(records[skip..]))
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
