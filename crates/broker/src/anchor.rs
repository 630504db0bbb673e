//! What must only move forward, anchored in the keychain. The seals on `clients.json` and
//! `settings.json` and the keyed audit chain stop forgery; they do not stop someone who can
//! write the data folder from putting back an older, validly sealed copy (reviving a revoked
//! client or a wider scope) or deleting a file (dropping a stricter policy). Each such state
//! carries a generation, and the last one written is kept in the keychain too: a file behind
//! its anchor, or missing while an anchor exists, stops the broker from starting, with what
//! happened and how to recover.

use std::path::Path;
use std::sync::Arc;

use keybridge_vault::{SecretStore, SecretString};

use crate::{BrokerError, OpenError};

/// How to start on purpose from state that is behind its anchors.
pub const ACCEPT_HINT: &str = "if you restored it on purpose, start Keybridge once with `keybridge serve --accept-restored-state` (or KEYBRIDGE_ACCEPT_RESTORED_STATE=1 for the app) and it will continue from what is there";

/// One anchored value in the keychain.
#[derive(Clone)]
pub struct Anchor {
    store: Arc<dyn SecretStore>,
    name: String,
}

impl std::fmt::Debug for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchor").field("name", &self.name).finish()
    }
}

impl Anchor {
    pub fn new(store: Arc<dyn SecretStore>, what: &str, install_id: &str) -> Self {
        Self { store, name: format!("anchor:{what}:{install_id}") }
    }

    pub fn get(&self) -> Result<Option<String>, BrokerError> {
        Ok(self.store.get(&self.name)?.map(|value| value.expose().to_string()))
    }

    pub fn set(&self, value: &str) -> Result<(), BrokerError> {
        self.store.set(&self.name, &SecretString::from(value.to_string()))?;
        Ok(())
    }

    pub fn generation(&self) -> Result<Option<u64>, BrokerError> {
        Ok(self.get()?.and_then(|value| value.parse().ok()))
    }

    /// Refuse a state file whose generation (`None`: the file is missing) is behind the anchor,
    /// unless the human accepted restored state.
    pub fn check(&self, file: &Path, what: &str, found: Option<u64>, accept: bool) -> Result<(), OpenError> {
        let Some(anchored) = self.generation()? else { return Ok(()) };
        match found {
            Some(found) if found >= anchored => Ok(()),
            _ if accept => Ok(()),
            None => Err(OpenError::RolledBack(format!(
                "{} is missing, but Keybridge wrote it before (generation {anchored}): without it {what} would be lost silently. Put it back from a backup; {ACCEPT_HINT}",
                file.display()
            ))),
            Some(found) => Err(OpenError::RolledBack(format!(
                "{} is older than the last copy Keybridge wrote (generation {found}, expected {anchored}): an older copy was put back, which could revive {what}. Put the newest copy back; {ACCEPT_HINT}",
                file.display()
            ))),
        }
    }
}
