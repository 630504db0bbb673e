//! `keybridge approvals --server URL`: a team service's questions, answered as the person who
//! signs in at the identity provider.

use anyhow::{Context, Result};
use keybridge_broker_proto::{AdminReply, ApprovalDecision};
use keybridge_team_client::ApproverClient;

use crate::args::ApprovalCommand;

/// `--minutes` turns an approval into an allowance for that long.
pub(crate) fn decision(minutes: Option<u32>) -> ApprovalDecision {
    minutes.map_or(ApprovalDecision::Approve, |minutes| ApprovalDecision::AllowFor { minutes })
}

pub(crate) async fn at_team_service(server: &str, client_id: &str, command: ApprovalCommand) -> Result<AdminReply> {
    let approver = ApproverClient::sign_in(server, client_id, |prompt| {
        eprintln!("To sign in, open {} and confirm the code {}", prompt.page, prompt.code);
    })
    .await
    .with_context(|| format!("cannot sign in to the team service at {server}"))?;
    let context = || format!("the team service at {server}");
    Ok(match command {
        ApprovalCommand::List => approver.list().await.with_context(context)?.into(),
        ApprovalCommand::Approve { id, minutes } => {
            approver.answer(&id, decision(minutes)).await.with_context(context)?.into()
        }
        ApprovalCommand::Deny { id } => {
            approver.answer(&id, ApprovalDecision::Deny).await.with_context(context)?.into()
        }
    })
}
