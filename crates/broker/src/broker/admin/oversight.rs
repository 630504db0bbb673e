//! What the human oversees: the questions waiting for an answer, and the audit log.

use keybridge_broker_proto::{
    AdminReply, AllowanceRevoked, AllowanceView, ApprovalDecided, ApprovalDecision, AuditExported, AuditRecordView,
    AuditVerified,
};
use keybridge_catalog::Scope;

use crate::BrokerError;
use crate::approvals::Pending;
use crate::audit::{AdminEvent, AuditEvent};
use crate::broker::Broker;
use crate::primitives::lock;
use crate::seams::Relayed;
use crate::text::truncate;

impl Broker {
    /// Every open question: this broker's, then those other brokers relayed, oldest first.
    pub(super) fn open_questions(&self) -> Result<Vec<Pending>, BrokerError> {
        let mut questions = self.approvals.list();
        let elsewhere = self.relay.open_questions().map_err(|e| {
            BrokerError::Invalid(format!("cannot read the questions other replicas wait on: {e}; try again"))
        })?;
        for question in elsewhere {
            if !questions.iter().any(|q| q.id == question.id) {
                questions.push(question);
            }
        }
        questions.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(questions)
    }

    /// Answer a question, this broker's or one another broker relayed. `approver` names who
    /// answers when a person of an identity provider does: nobody answers a question their own
    /// call raised.
    pub fn answer_question(
        &self,
        approval_id: &str,
        decision: ApprovalDecision,
        approver: Option<&str>,
    ) -> Result<AdminReply, BrokerError> {
        // A revocation or pause made through another broker is taken up first: its questions
        // are no longer answerable.
        self.catch_up()?;
        let gone =
            || BrokerError::NotFound(format!("no pending approval `{approval_id}` (answered or timed out already)"));
        let asked = self.open_questions()?.into_iter().find(|pending| pending.id == approval_id).ok_or_else(gone)?;
        if let Some(approver) = approver
            && asked.host.as_deref() == Some(truncate(approver, 200).as_str())
        {
            return Err(BrokerError::OwnRequest { approver: truncate(approver, 200) });
        }
        if let ApprovalDecision::AllowFor { minutes } = decision {
            let live = asked.scope.as_deref().and_then(|scope| scope.parse::<Scope>().ok());
            if live.is_some_and(Scope::acts_on_live_trading) {
                return Err(BrokerError::Invalid(format!(
                    "a live-trading call cannot be allowed for {minutes} minutes: approve or deny this call on its own"
                )));
            }
        }
        // Where every broker sees the question, the first answer there wins and only it is
        // obeyed, whichever broker asked; the local call takes it at once, or through the relay.
        let relayed = self.relay.answer(approval_id, decision).map_err(|e| {
            BrokerError::Invalid(format!("cannot answer the question where every replica sees it: {e}; try again"))
        })?;
        let answered = match relayed {
            Relayed::Won => {
                self.approvals.decide(approval_id, decision);
                true
            }
            Relayed::Lost => false,
            Relayed::NotHeld => self.approvals.decide(approval_id, decision).is_some(),
        };
        if !answered {
            return Err(gone());
        }
        self.record(AuditEvent::Approval {
            approval: approval_id.to_string(),
            client: asked.client_id,
            tool: asked.tool,
            decision: decision_text(decision),
            args_digest: asked.arguments_digest,
            by: approver.map(|a| truncate(a, 200)),
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
