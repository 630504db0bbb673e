//! The real OS keychain: a round trip through Secret Service, in a throwaway login keyring.
//!
//! When no session bus is set up, the test starts one itself (`dbus-run-session`), unlocks a
//! fresh gnome-keyring under a temporary HOME, and runs itself again inside it, so it never
//! touches the keyring of whoever runs the tests.

use keybridge_vault::testing::in_keyring_session;
use keybridge_vault::{KeyringStore, SecretStore, SecretString, VaultError};

#[test]
fn real_keychain_round_trip() {
    if !in_keyring_session("real_keychain_round_trip") {
        return;
    }
    let store = KeyringStore::open(Some(&format!("test-{}", std::process::id()))).expect("Secret Service is reachable");
    let name = "qc-token:roundtrip";
    assert!(store.get(name).unwrap().is_none(), "a fresh namespace is empty");
    store.set(name, &SecretString::from("SENTINEL-keychain-value".to_string())).unwrap();
    // A second store object reads through the daemon, not a cache.
    let again = KeyringStore::open(Some(&format!("test-{}", std::process::id()))).unwrap();
    assert_eq!(again.get(name).unwrap().unwrap().expose(), "SENTINEL-keychain-value");
    let other = KeyringStore::open(Some("test-other-namespace")).unwrap();
    assert!(other.get(name).unwrap().is_none(), "namespaces do not share entries");
    store.delete(name).unwrap();
    store.delete(name).expect("delete is idempotent");
    assert!(again.get(name).unwrap().is_none());
}

#[test]
fn the_mock_store_is_refused() {
    let err =
        KeyringStore::with_backend(keybridge_vault::mock_backend::default_credential_builder(), Some("t")).unwrap_err();
    assert!(matches!(err, VaultError::NotPersistent { .. }), "{err:?}");
    assert!(err.to_string().contains("refusing"), "{err}");
}

#[test]
fn a_bad_namespace_is_explained() {
    let err = KeyringStore::with_backend(keybridge_vault::mock_backend::default_credential_builder(), Some("a b"));
    // The mock is refused before the name is looked at; a real backend checks the name.
    assert!(err.is_err());
}
