//! The OS keychain through `keyring`.

use keybridge_secret::SecretString;
use keyring::credential::CredentialPersistence;

use crate::{SecretStore, VaultError};

/// The OS keychain, under the service name `keybridge` or `keybridge-<namespace>`.
pub struct KeyringStore {
    service: String,
    builder: Box<keyring::credential::CredentialBuilder>,
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore").field("service", &self.service).finish_non_exhaustive()
    }
}

impl KeyringStore {
    /// Open the platform keychain. `namespace` separates installs that must not share
    /// credentials: `None` for the real app, `Some("dev")` for development builds, a unique
    /// name per test run.
    pub fn open(namespace: Option<&str>) -> Result<Self, VaultError> {
        let store = Self::with_backend(keyring::default::default_credential_builder(), namespace)?;
        // Ask once now, so a missing or locked keychain is reported at start with what to do,
        // not in the middle of the first call.
        store.get("keybridge-probe")?;
        Ok(store)
    }

    /// Open a given keyring backend; refuses one that forgets what it is given.
    pub fn with_backend(
        builder: Box<keyring::credential::CredentialBuilder>,
        namespace: Option<&str>,
    ) -> Result<Self, VaultError> {
        let persistence = builder.persistence();
        let forgetful = match persistence {
            CredentialPersistence::EntryOnly => Some("in-memory mock (forgets each entry)"),
            CredentialPersistence::ProcessOnly => Some("process memory (forgets at exit)"),
            _ => None,
        };
        if let Some(backend) = forgetful {
            return Err(VaultError::NotPersistent { backend: backend.to_string() });
        }
        let service = match namespace.map(str::trim).filter(|n| !n.is_empty()) {
            None => "keybridge".to_string(),
            Some(ns) if ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') => {
                format!("keybridge-{ns}")
            }
            Some(ns) => {
                return Err(VaultError::Invalid(format!(
                    "keychain namespace `{ns}` may only use letters, digits, `-` and `_`"
                )));
            }
        };
        Ok(Self { service, builder })
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, VaultError> {
        let credential = self.builder.build(None, &self.service, name).map_err(|e| map_error(e, name))?;
        Ok(keyring::Entry::new_with_credential(credential))
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, name: &str) -> Result<Option<SecretString>, VaultError> {
        match self.entry(name)?.get_password() {
            Ok(value) => Ok(Some(SecretString::from(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(e, name)),
        }
    }

    fn set(&self, name: &str, value: &SecretString) -> Result<(), VaultError> {
        self.entry(name)?.set_password(value.expose()).map_err(|e| map_error(e, name))
    }

    fn delete(&self, name: &str) -> Result<(), VaultError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_error(e, name)),
        }
    }
}

/// Map keyring's error without ever formatting `BadEncoding`, whose payload is the secret.
fn map_error(e: keyring::Error, name: &str) -> VaultError {
    match e {
        keyring::Error::NoStorageAccess(detail) => VaultError::Locked { detail: detail.to_string() },
        keyring::Error::PlatformFailure(detail) => VaultError::Unavailable { detail: detail.to_string() },
        keyring::Error::BadEncoding(_) => VaultError::Corrupt { name: name.to_string() },
        keyring::Error::TooLong(attr, limit) => {
            VaultError::Invalid(format!("keychain attribute {attr} is longer than {limit} characters"))
        }
        keyring::Error::Invalid(attr, reason) => VaultError::Invalid(format!("keychain attribute {attr}: {reason}")),
        keyring::Error::Ambiguous(found) => VaultError::Invalid(format!(
            "{} keychain entries match `{name}`; remove the duplicates with your keychain manager",
            found.len()
        )),
        keyring::Error::NoEntry => VaultError::Invalid(format!("no keychain entry `{name}`")),
        other => VaultError::Unavailable { detail: other.to_string() },
    }
}
