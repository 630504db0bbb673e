//! The admin commands the CLI and the app send, one module per family. Every change is audited
//! and, where a window shows it, announced on the event channel.

use keybridge_broker_proto::{AdminCommand, AdminReply};

use super::Broker;
use crate::BrokerError;

mod accounts;
mod clients;
mod control;
mod oversight;

impl Broker {
    /// Run an admin command (every command but a following `audit tail`).
    pub async fn admin(&self, command: AdminCommand) -> Result<AdminReply, BrokerError> {
        self.catch_up()?;
        match command {
            AdminCommand::Status => Ok(self.status().into()),
            AdminCommand::AccountAdd { name, user_id, organization_id, api_token, skip_check } => {
                self.add_account(&name, &user_id, organization_id, api_token, skip_check).await
            }
            AdminCommand::AccountList => self.list_accounts(),
            AdminCommand::AccountRemove { name } => self.remove_account(&name),
            AdminCommand::AccountTest { name } => self.test_account(&name).await,
            AdminCommand::AccountRename { name, new_name } => self.rename_account(&name, &new_name),
            AdminCommand::ClientAdd { spec } => self.add_client(spec),
            AdminCommand::ClientList => Ok(self.list_clients()),
            AdminCommand::ClientShow { client_id } => self.show_client(&client_id),
            AdminCommand::ClientRevoke { client_id } => self.revoke_client(&client_id),
            AdminCommand::ClientUpdate { client_id, preset, scopes, policy, limits } => {
                self.update_client(&client_id, preset.as_deref(), &scopes, policy.as_ref(), &limits)
            }
            AdminCommand::SessionEnd { session_id } => Ok(self.end_session(&session_id)),
            AdminCommand::TokenMint { client_id, ttl_secs } => self.mint_for_cli(&client_id, ttl_secs),
            AdminCommand::Pause => self.set_paused(true),
            AdminCommand::Resume => self.set_paused(false),
            AdminCommand::SettingsGet => Ok(self.settings().view().into()),
            AdminCommand::SettingsUpdate { settings } => self.update_settings(&settings),
            AdminCommand::KeysRotate => self.rotate_signing_key(),
            AdminCommand::ApprovalsList => Ok(self.open_questions()?.into()),
            AdminCommand::AllowancesList => Ok(self.allowances().into()),
            AdminCommand::AllowanceRevoke { session_id, tool } => self.revoke_allowance(&session_id, &tool),
            AdminCommand::ApprovalDecide { approval_id, decision } => {
                self.answer_question(&approval_id, decision, None)
            }
            AdminCommand::AuditTail { last, .. } => self.audit_tail(last),
            AdminCommand::AuditVerify => self.audit_verify(),
            AdminCommand::AuditExport => self.audit_export(),
        }
    }
}
