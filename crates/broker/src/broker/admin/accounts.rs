//! QuantConnect accounts: added (checked with QuantConnect first unless asked not to), listed,
//! tested, renamed (with the clients bound to them) and removed. The token goes to the keychain
//! and never into a reply or a record.

use keybridge_broker_proto::{AccountRemoved, AccountTested, AccountView, AdminReply, BrokerEvent, Credential};
use keybridge_quantconnect::Credentials;
use keybridge_vault::{Account, AccountId, SecretString};

use crate::BrokerError;
use crate::audit::{AdminEvent, AuditEvent};
use crate::broker::Broker;
use crate::primitives::{lock, now};

impl Broker {
    pub(super) async fn add_account(
        &self,
        name: &str,
        user_id: &str,
        organization_id: Option<String>,
        api_token: Credential,
        skip_check: bool,
    ) -> Result<AdminReply, BrokerError> {
        let id: AccountId = name.parse()?;
        if user_id.trim().is_empty() || !user_id.chars().all(|c| c.is_ascii_digit()) {
            return Err(BrokerError::Invalid(format!(
                "user id `{user_id}` should be the number shown on quantconnect.com/settings"
            )));
        }
        let token = SecretString::from(api_token.expose().trim().to_string());
        if !skip_check {
            let creds = Credentials { user_id: user_id.to_string(), api_token: token.clone() };
            self.qc.authenticate(&creds).await.map_err(|e| {
                BrokerError::Invalid(format!("QuantConnect did not accept these credentials, nothing was saved: {e}"))
            })?;
        }
        let account = Account { id: id.clone(), user_id: user_id.to_string(), organization_id, created: now() };
        self.accounts.add(account.clone(), &token)?;
        self.record(AuditEvent::Admin(AdminEvent::AccountAdded { account: id.to_string(), checked: !skip_check }));
        Ok(account_view(account).into())
    }

    pub(super) fn list_accounts(&self) -> Result<AdminReply, BrokerError> {
        Ok(self.accounts.list()?.into_iter().map(account_view).collect::<Vec<_>>().into())
    }

    pub(super) fn remove_account(&self, name: &str) -> Result<AdminReply, BrokerError> {
        let id: AccountId = name.parse()?;
        let removed = self.accounts.remove(&id)?;
        lock(&self.credentials).remove(id.as_str());
        self.record(AuditEvent::Admin(AdminEvent::AccountRemoved { account: id.to_string(), existed: removed }));
        Ok(AccountRemoved { removed }.into())
    }

    pub(super) async fn test_account(&self, name: &str) -> Result<AdminReply, BrokerError> {
        let id: AccountId = name.parse()?;
        let creds = self.credentials_for(&id)?;
        self.qc.authenticate(&creds).await?;
        Ok(AccountTested { account: id.to_string(), ok: true }.into())
    }

    pub(super) fn rename_account(&self, name: &str, new_name: &str) -> Result<AdminReply, BrokerError> {
        let from: AccountId = name.parse()?;
        let to: AccountId = new_name.parse()?;
        let renamed = self.accounts.rename(&from, &to)?;
        lock(&self.credentials).remove(from.as_str());
        let moved: Vec<String> = {
            let mut clients = lock(&self.clients);
            let bound: Vec<String> = clients.list().filter(|c| c.account == from).map(|c| c.id.clone()).collect();
            for id in &bound {
                clients.update(id, |c| c.account = to.clone())?;
            }
            bound
        };
        self.record(AuditEvent::Admin(AdminEvent::AccountRenamed {
            account: from.to_string(),
            new_name: to.to_string(),
            clients: moved.clone(),
        }));
        for client in moved {
            let _ = self.events.send(BrokerEvent::ClientChanged { client });
        }
        Ok(account_view(renamed).into())
    }
}

fn account_view(account: Account) -> AccountView {
    AccountView {
        id: account.id.to_string(),
        user_id: account.user_id,
        organization_id: account.organization_id,
        created: account.created,
    }
}
