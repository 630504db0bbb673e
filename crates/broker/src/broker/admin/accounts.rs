//! QuantConnect accounts: added (checked with QuantConnect first unless asked not to), listed,
//! tested, renamed (with the clients bound to them) and removed. The token goes to the keychain
//! and never into a reply or a record.

use keybridge_broker_proto::{AccountView, BrokerEvent, Credential};
use keybridge_quantconnect::Credentials;
use keybridge_vault::{Account, AccountId, SecretString};
use serde_json::{Value, json};

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
    ) -> Result<Value, BrokerError> {
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
        Ok(json!(account))
    }

    pub(super) fn list_accounts(&self) -> Result<Value, BrokerError> {
        Ok(json!(self.accounts.list()?.into_iter().map(account_view).collect::<Vec<_>>()))
    }

    pub(super) fn remove_account(&self, name: &str) -> Result<Value, BrokerError> {
        let id: AccountId = name.parse()?;
        let removed = self.accounts.remove(&id)?;
        lock(&self.credentials).remove(id.as_str());
        self.record(AuditEvent::Admin(AdminEvent::AccountRemoved { account: id.to_string(), existed: removed }));
        Ok(json!({"removed": removed}))
    }

    pub(super) async fn test_account(&self, name: &str) -> Result<Value, BrokerError> {
        let id: AccountId = name.parse()?;
        let creds = self.credentials_for(&id)?;
        self.qc.authenticate(&creds).await?;
        Ok(json!({"account": id, "ok": true}))
    }

    pub(super) fn rename_account(&self, name: &str, new_name: &str) -> Result<Value, BrokerError> {
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
        Ok(json!(account_view(renamed)))
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
