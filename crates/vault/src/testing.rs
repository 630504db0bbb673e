//! A real Secret Service for tests, isolated from the user's own keyring.

use std::process::Command;

const INSIDE: &str = "KEYBRIDGE_TEST_IN_KEYRING_SESSION";

/// Run the test named `test` inside a private D-Bus session with a fresh, unlocked
/// gnome-keyring under a temporary HOME. Returns `true` when the caller is already inside
/// and should do its work; `false` after the inner run passed (it panics if it failed).
///
/// ```no_run
/// #[test]
/// fn uses_the_keychain() {
///     if !keybridge_vault::testing::in_keyring_session("uses_the_keychain") {
///         return;
///     }
///     // ... talk to the real keychain ...
/// }
/// ```
///
/// Off Linux the OS keychain (Credential Manager, Keychain) needs no session: the test runs at
/// once, and keeps to a namespace of its own.
pub fn in_keyring_session(test: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() || !cfg!(target_os = "linux") {
        return true;
    }
    let home = tempfile::tempdir().expect("a temporary HOME");
    let script = r#"eval "$(printf 'keybridge-test' | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null
exec "$0" --exact "$1" --nocapture --test-threads=1"#;
    let status = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", script])
        .arg(std::env::current_exe().expect("the test binary"))
        .arg(test)
        .env(INSIDE, "1")
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .status()
        .expect("dbus-run-session and gnome-keyring-daemon must be installed (scripts/dev.sh deps)");
    assert!(status.success(), "{test} failed inside the keyring session");
    false
}
