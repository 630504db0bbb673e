//! Where Keybridge keeps credentials.
//!
//! [`SecretStore`] is the keychain seen as a map from names to [`SecretString`]s. The real one,
//! [`KeyringStore`], is the OS keychain (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows) under a namespaced service name, so tests and development builds never
//! touch a user's real credentials. [`MemoryStore`] is for unit tests.
//! [`Accounts`] is the registry of QuantConnect accounts: their names and ids in a JSON file,
//! their API tokens only in the store.
//!
//! This is the only crate that may touch `keyring`. It must never write a secret to a file, a
//! log or an error message, and must never run on a store that forgets (keyring's mock) outside
//! tests: an app that silently loses a trader's token is an app that gets the token pasted
//! somewhere worse.

mod accounts;
mod keychain;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::HashMap;
use std::sync::Mutex;

pub use accounts::{Account, AccountId, Accounts};
pub use accounts::{create_private_dir, open_private_append, open_private_rw, write_private};
pub use keybridge_secret::SecretString;
pub use keychain::KeyringStore;
/// Keyring backends, for [`KeyringStore::with_backend`].
pub use keyring::{credential::CredentialBuilder, mock as mock_backend};

/// A place that keeps secrets by name.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The secret stored under `name`, or `None` when there is none.
    fn get(&self, name: &str) -> Result<Option<SecretString>, VaultError>;
    fn set(&self, name: &str, value: &SecretString) -> Result<(), VaultError>;
    /// Remove `name`; removing what is not there succeeds.
    fn delete(&self, name: &str) -> Result<(), VaultError>;
}

/// Why the vault could not do what was asked. Never carries a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    #[error(
        "the keychain is locked or refused access ({detail}); unlock it (on Linux: your login keyring, e.g. with Seahorse) and try again"
    )]
    Locked { detail: String },
    #[error(
        "no keychain is available ({detail}); on Linux install and start gnome-keyring or another Secret Service provider, inside a desktop session"
    )]
    Unavailable { detail: String },
    #[error(
        "the keychain backend `{backend}` does not keep secrets after this process ends; refusing to store credentials in it"
    )]
    NotPersistent { backend: String },
    #[error(
        "the keychain entry `{name}` is not valid text; remove it with `keybridge account remove` and add it again"
    )]
    Corrupt { name: String },
    #[error("cannot read or write {path}: {detail}")]
    Io { path: String, detail: String },
    #[error("{0}")]
    Invalid(String),
}

/// Secrets in process memory, for tests. Forgets everything when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    secrets: Mutex<HashMap<String, SecretString>>,
}

impl SecretStore for MemoryStore {
    fn get(&self, name: &str) -> Result<Option<SecretString>, VaultError> {
        Ok(self.secrets.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned())
    }

    fn set(&self, name: &str, value: &SecretString) -> Result<(), VaultError> {
        self.secrets.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), value.clone());
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), VaultError> {
        self.secrets.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        Ok(())
    }
}
