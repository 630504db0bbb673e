//! `keybridge audit tail`: the log's last records, and with `--follow` every new one, as lines
//! or as JSON.

use anyhow::Result;

use crate::{admin, emit};

pub(crate) async fn audit_tail(mut admin: admin::Admin, last: usize, follow: bool, json: bool) -> Result<()> {
    use keybridge_broker_proto::{AdminCommand, AdminReply, AuditRecordView, BrokerEvent, Response};
    let show = |record: &AuditRecordView| -> Result<()> {
        if json {
            emit(&format!("{}\n", serde_json::to_string(record)?))
        } else {
            let event = &record.event;
            let kind = event["kind"].as_str().unwrap_or("?");
            let detail: Vec<String> = event
                .as_object()
                .map(|m| m.iter().filter(|(k, _)| k.as_str() != "kind").map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            emit(&format!("#{} {} {kind} {}\n", record.seq, record.ts, detail.join(" ")))
        }
    };
    let command = AdminCommand::AuditTail { last, follow };
    admin.send(command.clone()).await?;
    loop {
        match admin.next().await? {
            Response::Admin { result, .. } => {
                let AdminReply::AuditRecords(records) = AdminReply::from_wire(&command, result)? else {
                    anyhow::bail!("the broker answered `audit tail` with something else; update keybridge");
                };
                for record in &records {
                    show(record)?;
                }
                if !follow {
                    return Ok(());
                }
            }
            Response::Event { event } => {
                // Approval and client changes also come on this connection: only records show.
                if let Ok(BrokerEvent::Audit { record }) = serde_json::from_value(event) {
                    show(&record)?;
                }
            }
            Response::Error { error, .. } => anyhow::bail!("{}", error.message),
            _ => {}
        }
    }
}
