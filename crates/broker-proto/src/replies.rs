//! What each admin command answers, as one typed enum.
//!
//! Inside a process (the broker, the host, the desktop app) an answer is an [`AdminReply`] and
//! its views; JSON exists only on the socket, where the reply is its inner value alone. The
//! command that was sent says which variant came back: [`AdminReply::from_wire`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[cfg(feature = "typescript")]
use ts_rs::TS;

use crate::{
    AccountView, AdminCommand, AllowanceView, ApprovalView, AuditExported, AuditRecordView, AuditVerified, ClientAdded,
    ClientLimits, ClientView, Credential, SettingsView, StatusView,
};

/// `AdminCommand::AccountRemove`: whether there was such an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct AccountRemoved {
    pub removed: bool,
}

/// `AdminCommand::AccountTest`: the account's token works (a failure is an error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct AccountTested {
    pub account: String,
    pub ok: bool,
}

/// `AdminCommand::ClientRevoke`: the client revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct ClientRevoked {
    pub revoked: String,
}

/// `AdminCommand::ClientUpdate`: what the client may now do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct ClientUpdated {
    pub updated: String,
    pub scopes: Vec<String>,
    pub limits: ClientLimits,
}

/// `AdminCommand::SessionEnd`: whether the session was live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct SessionEnded {
    pub ended: bool,
}

/// `AdminCommand::TokenMint`: an access token for a client, for scripts (`keybridge token mint`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenMinted {
    pub token: Credential,
    pub session_id: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `AdminCommand::Pause` and `Resume`: what is now in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct PauseState {
    pub paused: bool,
}

/// `AdminCommand::KeysRotate`: the new signing key's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct KeysRotated {
    pub kid: String,
}

/// `AdminCommand::ApprovalDecide`: the answer given, in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct ApprovalDecided {
    pub approval: String,
    pub decision: String,
}

/// `AdminCommand::AllowanceRevoke`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(TS))]
pub struct AllowanceRevoked {
    pub revoked: bool,
}

/// The answer to an [`AdminCommand`]. It serializes as its inner value alone.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AdminReply {
    Status(StatusView),
    Accounts(Vec<AccountView>),
    Account(AccountView),
    AccountRemoved(AccountRemoved),
    AccountTested(AccountTested),
    ClientAdded(ClientAdded),
    Clients(Vec<ClientView>),
    Client(ClientView),
    ClientRevoked(ClientRevoked),
    ClientUpdated(ClientUpdated),
    SessionEnded(SessionEnded),
    TokenMinted(TokenMinted),
    Pause(PauseState),
    Settings(SettingsView),
    KeysRotated(KeysRotated),
    Approvals(Vec<ApprovalView>),
    ApprovalDecided(ApprovalDecided),
    Allowances(Vec<AllowanceView>),
    AllowanceRevoked(AllowanceRevoked),
    AuditRecords(Vec<AuditRecordView>),
    AuditVerified(AuditVerified),
    AuditExported(AuditExported),
}

impl AdminReply {
    /// Read the broker's answer to `command` off the wire.
    pub fn from_wire(command: &AdminCommand, result: Value) -> Result<AdminReply, serde_json::Error> {
        use AdminCommand as C;
        use serde_json::from_value as read;
        Ok(match command {
            C::Status => AdminReply::Status(read(result)?),
            C::AccountList => AdminReply::Accounts(read(result)?),
            C::AccountAdd { .. } | C::AccountRename { .. } => AdminReply::Account(read(result)?),
            C::AccountRemove { .. } => AdminReply::AccountRemoved(read(result)?),
            C::AccountTest { .. } => AdminReply::AccountTested(read(result)?),
            C::ClientAdd { .. } => AdminReply::ClientAdded(read(result)?),
            C::ClientList => AdminReply::Clients(read(result)?),
            C::ClientShow { .. } => AdminReply::Client(read(result)?),
            C::ClientRevoke { .. } => AdminReply::ClientRevoked(read(result)?),
            C::ClientUpdate { .. } => AdminReply::ClientUpdated(read(result)?),
            C::SessionEnd { .. } => AdminReply::SessionEnded(read(result)?),
            C::TokenMint { .. } => AdminReply::TokenMinted(read(result)?),
            C::Pause | C::Resume => AdminReply::Pause(read(result)?),
            C::SettingsGet | C::SettingsUpdate { .. } => AdminReply::Settings(read(result)?),
            C::KeysRotate => AdminReply::KeysRotated(read(result)?),
            C::ApprovalsList => AdminReply::Approvals(read(result)?),
            C::ApprovalDecide { .. } => AdminReply::ApprovalDecided(read(result)?),
            C::AllowancesList => AdminReply::Allowances(read(result)?),
            C::AllowanceRevoke { .. } => AdminReply::AllowanceRevoked(read(result)?),
            C::AuditTail { .. } => AdminReply::AuditRecords(read(result)?),
            C::AuditVerify => AdminReply::AuditVerified(read(result)?),
            C::AuditExport => AdminReply::AuditExported(read(result)?),
        })
    }

    /// The reply as it goes on the wire.
    pub fn to_wire(&self) -> Value {
        // Every view serializes to JSON: nothing in them is a map with non-string keys.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Each view an admin command can answer with comes out of an [`AdminReply`] by `try_into`;
/// a reply of another kind comes back as the error.
macro_rules! replies {
    ($($variant:ident => $view:ty),* $(,)?) => {$(
        impl From<$view> for AdminReply {
            fn from(view: $view) -> Self {
                AdminReply::$variant(view)
            }
        }

        impl TryFrom<AdminReply> for $view {
            type Error = AdminReply;

            fn try_from(reply: AdminReply) -> Result<Self, AdminReply> {
                match reply {
                    AdminReply::$variant(view) => Ok(view),
                    other => Err(other),
                }
            }
        }
    )*};
}

replies! {
    Status => StatusView,
    Accounts => Vec<AccountView>,
    Account => AccountView,
    AccountRemoved => AccountRemoved,
    AccountTested => AccountTested,
    ClientAdded => ClientAdded,
    Clients => Vec<ClientView>,
    Client => ClientView,
    ClientRevoked => ClientRevoked,
    ClientUpdated => ClientUpdated,
    SessionEnded => SessionEnded,
    TokenMinted => TokenMinted,
    Pause => PauseState,
    Settings => SettingsView,
    KeysRotated => KeysRotated,
    Approvals => Vec<ApprovalView>,
    ApprovalDecided => ApprovalDecided,
    Allowances => Vec<AllowanceView>,
    AllowanceRevoked => AllowanceRevoked,
    AuditRecords => Vec<AuditRecordView>,
    AuditVerified => AuditVerified,
    AuditExported => AuditExported,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_goes_on_the_wire_as_its_view_and_comes_back_as_the_same_kind() {
        let reply = AdminReply::from(PauseState { paused: true });
        assert_eq!(reply.to_wire(), serde_json::json!({"paused": true}));
        let back = AdminReply::from_wire(&AdminCommand::Pause, reply.to_wire()).unwrap();
        assert_eq!(PauseState::try_from(back).unwrap(), PauseState { paused: true });
    }

    #[test]
    fn a_reply_of_another_kind_is_refused_not_guessed() {
        let settings = serde_json::json!({"paused": true});
        assert!(AdminReply::from_wire(&AdminCommand::SettingsGet, settings).is_err());
        let reply = AdminReply::from(KeysRotated { kid: "k2".into() });
        assert!(PauseState::try_from(reply).is_err());
    }
}
