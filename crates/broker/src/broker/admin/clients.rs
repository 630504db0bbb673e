//! MCP clients and their sessions: added (host-bound, or with a key shown once), listed, updated,
//! revoked; sessions ended; a token minted by hand for a client outside MCP.

use std::collections::{BTreeMap, BTreeSet};

use keybridge_broker_proto::{
    AdminReply, BrokerEvent, ClientAdded, ClientLimitsUpdate, ClientMode, ClientRevoked, ClientSpec, ClientUpdated,
    ClientView, Credential, SessionEnded, SessionView, TokenMinted,
};
use keybridge_vault::AccountId;

use crate::BrokerError;
use crate::audit::{AdminEvent, AuditEvent, AuthMethod};
use crate::broker::{Broker, Session};
use crate::clients::{Client, ClientAuth, key_hash, new_client_id, resolve_scopes};
use crate::policy::parse_overrides;
use crate::primitives::{lock, now};
use crate::tokens::{check_lifetime, random_id};

impl Broker {
    pub(super) fn add_client(&self, spec: ClientSpec) -> Result<AdminReply, BrokerError> {
        let account: AccountId = spec.account.parse()?;
        if self.accounts.get(&account)?.is_none() {
            return Err(BrokerError::NotFound(format!(
                "account `{account}` is not set up; add it first with `keybridge account add {account}`"
            )));
        }
        if spec.name.trim().is_empty() {
            return Err(BrokerError::Invalid("the client needs a name, e.g. \"Claude Desktop\"".into()));
        }
        let (preset, scopes) = resolve_scopes(spec.preset.as_deref(), &spec.scopes)?;
        let policy = parse_overrides(&spec.policy)?;
        let ttl = spec.token_ttl_secs.unwrap_or_else(|| lock(&self.settings).token_ttl_secs);
        check_lifetime(ttl).map_err(|e| BrokerError::Invalid(e.to_string()))?;
        let key = spec.with_key.then(|| random_id(32));
        let auth = match &key {
            Some(key) => ClientAuth::Key { key_sha256: key_hash(key) },
            None => ClientAuth::HostBound { approved_hosts: BTreeSet::new() },
        };
        let client = Client {
            id: new_client_id(&spec.name),
            name: spec.name.trim().to_string(),
            account,
            scopes,
            preset,
            policy,
            token_ttl_secs: ttl,
            auth,
            revoked: false,
            created: now(),
            last_seen: None,
            limits: Default::default(),
        };
        lock(&self.clients).insert(client.clone())?;
        self.record(AuditEvent::Admin(AdminEvent::ClientAdded {
            client: client.id.clone(),
            scopes: client.scopes.clone(),
            mode: if key.is_some() { AuthMethod::Key } else { AuthMethod::Host },
        }));
        Ok(ClientAdded { client_id: client.id, client_key: key }.into())
    }

    pub(super) fn list_clients(&self) -> AdminReply {
        let clients: Vec<Client> = lock(&self.clients).list().cloned().collect();
        clients.iter().map(|c| self.client_view(c)).collect::<Vec<_>>().into()
    }

    pub(super) fn show_client(&self, client_id: &str) -> Result<AdminReply, BrokerError> {
        let client = lock(&self.clients).get(client_id).cloned();
        let client = client.ok_or_else(|| BrokerError::NotFound(format!("no client `{client_id}`")))?;
        Ok(self.client_view(&client).into())
    }

    pub(super) fn revoke_client(&self, client_id: &str) -> Result<AdminReply, BrokerError> {
        let existed = lock(&self.clients).update(client_id, |c| c.revoked = true)?;
        if !existed {
            return Err(BrokerError::NotFound(format!("no client `{client_id}`")));
        }
        let denied = self.approvals.deny_where(|p| p.client_id == client_id);
        self.record(AuditEvent::Admin(AdminEvent::ClientRevoked {
            client: client_id.to_string(),
            approvals_denied: denied,
        }));
        Ok(ClientRevoked { revoked: client_id.to_string() }.into())
    }

    pub(super) fn update_client(
        &self,
        client_id: &str,
        preset: Option<&str>,
        scopes: &[String],
        policy: Option<&BTreeMap<String, String>>,
        limits: &ClientLimitsUpdate,
    ) -> Result<AdminReply, BrokerError> {
        let current = lock(&self.clients).get(client_id).cloned();
        let current = current.ok_or_else(|| BrokerError::NotFound(format!("no client `{client_id}`")))?;
        // Limits alone leave what the client may do as it is.
        let (preset, scopes) = if preset.is_none() && scopes.is_empty() && !limits.is_empty() {
            (current.preset, current.scopes.clone())
        } else {
            resolve_scopes(preset, scopes)?
        };
        let policy = policy.map(parse_overrides).transpose()?;
        let limits = super::super::limits::updated(current.limits, limits)?;
        let existed = lock(&self.clients).update(client_id, |c| {
            c.preset = preset;
            c.scopes = scopes.clone();
            c.limits = limits;
            // Without new overrides, the client keeps its own.
            if let Some(policy) = policy {
                c.policy = policy;
            }
        })?;
        if !existed {
            return Err(BrokerError::NotFound(format!("no client `{client_id}`")));
        }
        self.record(AuditEvent::Admin(AdminEvent::ClientUpdated {
            client: client_id.to_string(),
            scopes: scopes.clone(),
            limits,
        }));
        let _ = self.events.send(BrokerEvent::ClientChanged { client: client_id.to_string() });
        let scopes = scopes.iter().map(ToString::to_string).collect();
        Ok(ClientUpdated { updated: client_id.to_string(), scopes, limits }.into())
    }

    pub(super) fn end_session(&self, session_id: &str) -> AdminReply {
        let ended = lock(&self.sessions).get_mut(session_id).map(|s| s.revoked = true).is_some();
        self.approvals.end_session(session_id);
        self.approvals.deny_where(|p| p.session_id.as_deref() == Some(session_id));
        self.record(AuditEvent::Admin(AdminEvent::SessionEnded { session: session_id.to_string(), existed: ended }));
        SessionEnded { ended }.into()
    }

    /// A token for a program that is no MCP client (a script of the trader's), in a session of
    /// its own that `session end` ends like any other.
    pub(super) fn mint_for_cli(&self, client_id: &str, ttl_secs: Option<u64>) -> Result<AdminReply, BrokerError> {
        let mut client = lock(&self.clients)
            .get(client_id)
            .cloned()
            .ok_or_else(|| BrokerError::NotFound(format!("no client `{client_id}`")))?;
        if client.revoked {
            return Err(BrokerError::Revoked(format!("client `{client_id}` was revoked")));
        }
        if let Some(ttl) = ttl_secs {
            check_lifetime(ttl).map_err(|e| BrokerError::Invalid(e.to_string()))?;
            client.token_ttl_secs = ttl;
        }
        let session_id = format!("s-{}", random_id(8));
        lock(&self.sessions).insert(
            session_id.clone(),
            Session {
                client_id: client.id.clone(),
                host: Some("keybridge token mint".into()),
                host_program: None,
                started: now(),
                revoked: false,
                limit: None,
            },
        );
        let session = self.mint(&client, &session_id)?;
        let token = Credential::new(session.token.expose().to_string());
        Ok(TokenMinted { token, session_id: session.session_id, expires_at: session.expires_at }.into())
    }

    fn client_view(&self, client: &Client) -> ClientView {
        let sessions = lock(&self.sessions)
            .iter()
            .filter(|(_, s)| s.client_id == client.id && !s.revoked)
            .map(|(id, s)| SessionView { session_id: id.clone(), host: s.host.clone(), started: s.started })
            .collect();
        ClientView {
            client_id: client.id.clone(),
            name: client.name.clone(),
            account: client.account.to_string(),
            preset: client.preset.map(|p| p.name().to_string()),
            scopes: client.scopes.iter().map(|s| s.to_string()).collect(),
            policy: client.policy.iter().map(|(s, d)| (s.to_string(), (*d).into())).collect(),
            token_ttl_secs: client.token_ttl_secs,
            mode: match client.auth {
                ClientAuth::HostBound { .. } => ClientMode::Host,
                ClientAuth::Key { .. } => ClientMode::Key,
            },
            approved_hosts: match &client.auth {
                // As the trader knows them: "Claude Code (node …/claude-code/cli.js)".
                ClientAuth::HostBound { approved_hosts } => {
                    approved_hosts.iter().map(|key| crate::peer::describe_host(key)).collect()
                }
                ClientAuth::Key { .. } => Vec::new(),
            },
            revoked: client.revoked,
            created: client.created,
            last_seen: client.last_seen,
            sessions,
            limits: client.limits,
        }
    }
}
