//! `keybridge audit tail`: the log's last records, and with `--follow` every new one, as lines
//! or as JSON.

use anyhow::Result;

use crate::{admin, emit};

pub(crate) async fn audit_tail(mut admin: admin::Admin, last: usize, follow: bool, json: bool) -> Result<()> {
    use keybridge_broker_proto::{AdminCommand, Response};
    let show = |record: &serde_json::Value| -> Result<()> {
        if json {
            emit(&format!("{record}\n"))
        } else {
            let event = &record["event"];
            let kind = event["kind"].as_str().unwrap_or("?");
            let detail: Vec<String> = event
                .as_object()
                .map(|m| m.iter().filter(|(k, _)| k.as_str() != "kind").map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            emit(&format!("#{} {} {kind} {}\n", record["seq"], record["ts"], detail.join(" ")))
        }
    };
    admin.send(AdminCommand::AuditTail { last, follow }).await?;
    loop {
        match admin.next().await? {
            Response::Admin { result, .. } => {
                for record in result.as_array().into_iter().flatten() {
                    show(record)?;
                }
                if !follow {
                    return Ok(());
                }
            }
            Response::Event { event } if event["type"] == "audit" => show(&event["record"])?,
            Response::Event { .. } => {}
            Response::Error { error, .. } => anyhow::bail!("{}", error.message),
            _ => {}
        }
    }
}
