//! The small primitives every part of the broker shares, each written once: the clock, locks
//! that outlive a panic, the comparison of secrets, and a random key kept in the keychain.
//!
//! A panic while a lock is held poisons it. The broker's state behind each lock is valid after
//! every single statement (no lock guards a half-made change), so a poisoned lock is taken as is:
//! refusing every later call would turn one bug into an outage of all access.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch: the unit of every time the broker stores or signs.
pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether two secrets (key digests, MACs) are equal, in time that does not depend on where they
/// differ.
pub(crate) fn same_secret(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_ref().ct_eq(b.as_ref()))
}

/// Why a key could not be had from the keychain.
#[derive(Debug, thiserror::Error)]
pub enum KeychainKeyError {
    #[error("the keychain refused: {0}")]
    Keychain(#[from] keybridge_vault::VaultError),
    #[error("the keychain entry `{0}` is not a hex-encoded key; it was not written by Keybridge")]
    NotHex(String),
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}

/// The 32-byte key stored in the keychain under `name`, made there if there is none; also says
/// whether it existed.
pub(crate) fn keychain_key(
    store: &dyn keybridge_vault::SecretStore,
    name: &str,
) -> Result<(keybridge_secret::Secret<Vec<u8>>, bool), KeychainKeyError> {
    if let Some(hex_key) = store.get(name)? {
        let bytes = hex::decode(hex_key.expose()).map_err(|_| KeychainKeyError::NotHex(name.to_string()))?;
        return Ok((keybridge_secret::Secret::new(bytes), true));
    }
    let mut bytes = vec![0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| KeychainKeyError::Random(e.to_string()))?;
    store.set(name, &keybridge_vault::SecretString::from(hex::encode(&bytes)))?;
    Ok((keybridge_secret::Secret::new(bytes), false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panic_still_opens_with_its_value() {
        let shared = std::sync::Arc::new(Mutex::new(7));
        let poisoner = shared.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(shared.is_poisoned());
        assert_eq!(*lock(&shared), 7);
        let rw = RwLock::new(1);
        *write(&rw) += 1;
        assert_eq!(*read(&rw), 2);
    }

    #[test]
    fn secrets_compare_by_value_and_length() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(same_secret("", ""));
    }

    #[test]
    fn a_keychain_key_is_made_once_and_then_read_back() {
        use keybridge_vault::SecretStore;
        let store = keybridge_vault::MemoryStore::default();
        let (made, existed) = keychain_key(&store, "k").unwrap();
        assert!(!existed);
        assert_eq!(made.expose().len(), 32);
        let (read, existed) = keychain_key(&store, "k").unwrap();
        assert!(existed);
        assert_eq!(read.expose(), made.expose());
        store.set("bad", &keybridge_vault::SecretString::from("not hex".to_string())).unwrap();
        let error = keychain_key(&store, "bad").unwrap_err().to_string();
        assert!(error.contains("`bad` is not a hex-encoded key"), "{error}");
    }

    #[test]
    fn now_is_in_seconds() {
        let seconds = now();
        assert!((1_700_000_000..4_000_000_000).contains(&seconds), "{seconds}");
    }
}
