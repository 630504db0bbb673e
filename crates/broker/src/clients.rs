//! Paired MCP clients: who they are, what they may do, how they prove it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use keybridge_broker_proto::ClientLimits;
use keybridge_catalog::{Preset, Scope};
use keybridge_vault::AccountId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::Decision;
use crate::state::StateStore;
use crate::{BrokerError, OpenError};

/// How a client's bridge proves it is that client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ClientAuth {
    /// No secret: the OS says who the peer is. Each host executable the human approved.
    HostBound { approved_hosts: BTreeSet<String> },
    /// A 256-bit key shown once; only its SHA-256 is kept.
    Key { key_sha256: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub account: AccountId,
    pub scopes: BTreeSet<Scope>,
    pub preset: Option<Preset>,
    #[serde(default)]
    pub policy: BTreeMap<Scope, Decision>,
    pub token_ttl_secs: u64,
    pub auth: ClientAuth,
    #[serde(default)]
    pub revoked: bool,
    pub created: u64,
    #[serde(default)]
    pub last_seen: Option<u64>,
    #[serde(default)]
    pub limits: ClientLimits,
}

/// The registry: the clients in memory, each change saved to the [`StateStore`] before it counts.
pub struct Clients {
    clients: BTreeMap<String, Client>,
    store: Arc<dyn StateStore>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").field("clients", &self.clients.len()).finish_non_exhaustive()
    }
}

pub(crate) fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A readable, unique id: the name as a slug plus a random suffix (`claude-desktop-3fa2`).
pub(crate) fn new_client_id(name: &str) -> String {
    let slug: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug: String = slug.chars().take(24).collect();
    let slug = if slug.is_empty() { "client".to_string() } else { slug };
    format!("{slug}-{}", crate::tokens::random_id(2))
}

/// A key from the keychain that seals `clients.json`, so the file cannot be edited (a key
/// hash swapped, a host or an `allow` added) without the keychain.
#[derive(Clone)]
pub struct SealKey(keybridge_secret::Secret<Vec<u8>>);

impl SealKey {
    pub fn load_or_create(store: &dyn keybridge_vault::SecretStore, name: &str) -> Result<Self, BrokerError> {
        let (key, _) = crate::primitives::keychain_key(store, name)?;
        Ok(Self(key))
    }

    /// A MAC over `body` for one purpose (`clients`, `settings`), so one seal never fits another file.
    pub(crate) fn mac_for(&self, purpose: &str, body: &str) -> String {
        crate::audit::hmac_sha256(self.0.expose(), purpose, body)
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

impl Clients {
    /// The clients `store` saved last.
    pub fn load(store: Arc<dyn StateStore>) -> Result<Self, OpenError> {
        let clients = store.load_clients()?.into_iter().map(|c| (c.id.clone(), c)).collect();
        Ok(Self { clients, store })
    }

    pub fn get(&self, id: &str) -> Option<&Client> {
        self.clients.get(id)
    }

    pub fn list(&self) -> impl Iterator<Item = &Client> {
        self.clients.values()
    }

    /// Take up the clients as the store has them now (another broker changed them).
    pub fn reload(&mut self) -> Result<(), OpenError> {
        self.clients = self.store.load_clients()?.into_iter().map(|c| (c.id.clone(), c)).collect();
        Ok(())
    }

    pub fn insert(&mut self, client: Client) -> Result<(), BrokerError> {
        let id = client.id.clone();
        self.clients.insert(id.clone(), client);
        self.save(&id, true)
    }

    /// Change a client and save, as a new generation; returns whether it existed.
    pub fn update(&mut self, id: &str, change: impl FnOnce(&mut Client)) -> Result<bool, BrokerError> {
        let Some(current) = self.clients.get(id) else { return Ok(false) };
        let mut changed = current.clone();
        change(&mut changed);
        // In force only once saved: a change the store refused is not obeyed either.
        let previous = self.clients.insert(id.to_string(), changed);
        if let Err(e) = self.save(id, true) {
            if let Some(previous) = previous {
                self.clients.insert(id.to_string(), previous);
            }
            return Err(e);
        }
        Ok(true)
    }

    /// Note when a client was last seen: saved, but not a new generation (an older copy that
    /// differs only in this grants nothing), so authenticating writes nothing to the keychain.
    pub fn touch(&mut self, id: &str, seen: u64) -> Result<(), BrokerError> {
        if let Some(client) = self.clients.get_mut(id) {
            client.last_seen = Some(seen);
            self.save(id, false)?;
        }
        Ok(())
    }

    fn save(&mut self, changed: &str, access_changed: bool) -> Result<(), BrokerError> {
        let clients: Vec<Client> = self.clients.values().cloned().collect();
        let Some(changed) = self.clients.get(changed) else { return Ok(()) };
        self.store.save_clients(&clients, changed, access_changed)
    }
}

/// Resolve a preset name or an explicit list into scopes.
pub fn resolve_scopes(
    preset: Option<&str>,
    scopes: &[String],
) -> Result<(Option<Preset>, BTreeSet<Scope>), BrokerError> {
    match (preset, scopes.is_empty()) {
        (Some(_), false) => Err(BrokerError::Invalid("give a preset or a list of scopes, not both".into())),
        (Some(name), true) => {
            let preset: Preset = name.parse().map_err(BrokerError::Invalid)?;
            Ok((Some(preset), preset.scopes().into_iter().collect()))
        }
        (None, false) => {
            let set = scopes
                .iter()
                .map(|s| s.parse::<Scope>().map_err(|e| BrokerError::Invalid(e.to_string())))
                .collect::<Result<BTreeSet<_>, _>>()?;
            Ok((None, set))
        }
        (None, true) => Err(BrokerError::Invalid(
            "choose what the client may do: --preset read-only|research|trader|admin, or --scope qc:...".into(),
        )),
    }
}
