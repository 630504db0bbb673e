//! Broker-wide settings the user changes in the app: the default token lifetime of new
//! clients, how long a question waits for the human, and the policy per scope for every client.
//!
//! Kept in `settings.json` in the data folder, sealed with a key from the keychain like
//! `clients.json`: a policy turned to `allow` by editing the file (a program with file access,
//! an AI agent's file tools) is refused at start, never obeyed. A setting outside its bounds is
//! refused with the bounds, never clamped: the user must know what is in force.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keybridge_broker_proto::SettingsView;
use keybridge_catalog::Scope;

use crate::clients::SealKey;
use crate::policy::Decision;
use crate::sealed::SealedFileError;
use crate::tokens::{DEFAULT_TTL_SECS, check_lifetime};
use crate::{BrokerError, OpenError};

/// The shortest and longest time a question may wait for the human.
pub const APPROVAL_TIMEOUT_BOUNDS: (u64, u64) = (10, 600);

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub token_ttl_secs: u64,
    pub approval_timeout: Duration,
    /// Over the built-in defaults, under each client's own overrides.
    pub policy: BTreeMap<Scope, Decision>,
}

impl Settings {
    pub fn defaults(approval_timeout: Duration) -> Self {
        Self { token_ttl_secs: DEFAULT_TTL_SECS, approval_timeout, policy: BTreeMap::new() }
    }

    pub fn view(&self) -> SettingsView {
        SettingsView {
            token_ttl_secs: self.token_ttl_secs,
            approval_timeout_secs: self.approval_timeout.as_secs(),
            policy: self.policy.iter().map(|(scope, d)| (scope.to_string(), d.as_str().to_string())).collect(),
        }
    }

    /// Check a view from the user; every problem is named with the accepted values.
    pub fn from_view(view: &SettingsView) -> Result<Self, BrokerError> {
        check_lifetime(view.token_ttl_secs).map_err(|e| BrokerError::Invalid(e.to_string()))?;
        let (low, high) = APPROVAL_TIMEOUT_BOUNDS;
        if !(low..=high).contains(&view.approval_timeout_secs) {
            return Err(BrokerError::Invalid(format!(
                "approval timeout {}s is outside {low}..={high}s",
                view.approval_timeout_secs
            )));
        }
        Ok(Self {
            token_ttl_secs: view.token_ttl_secs,
            approval_timeout: Duration::from_secs(view.approval_timeout_secs),
            policy: crate::policy::parse_overrides(&view.policy)?,
        })
    }
}

/// Where settings live in a data folder.
pub fn settings_file(data_dir: &Path) -> PathBuf {
    data_dir.join("settings.json")
}

/// The seal's purpose, and the file's field that holds the settings.
const PURPOSE: &str = "settings";
const FIELD: &str = "settings";

/// The saved settings, or the defaults when none were saved.
pub fn load(data_dir: &Path, approval_timeout: Duration, seal: &SealKey) -> Result<Settings, OpenError> {
    load_anchored(data_dir, approval_timeout, seal, None, false).map(|(settings, _)| settings)
}

/// Like [`load`], with the file's generation, refusing a file behind `anchor` (an older copy
/// put back, or the file deleted, which would drop a stricter policy) unless `accept_restored`.
pub fn load_anchored(
    data_dir: &Path,
    approval_timeout: Duration,
    seal: &SealKey,
    anchor: Option<&crate::anchor::Anchor>,
    accept_restored: bool,
) -> Result<(Settings, u64), OpenError> {
    let path = settings_file(data_dir);
    const LOST: &str = "a stricter broker-wide policy";
    let unsealed = crate::sealed::read::<SettingsView>(&path, FIELD, PURPOSE, seal).map_err(|e| match e {
        SealedFileError::Unreadable(e) => {
            OpenError::Storage { action: "read", path: path.to_path_buf(), source: e.into() }
        }
        SealedFileError::Tampered => OpenError::StateRefused(format!(
            "{} was changed outside Keybridge (its seal does not match), so it is not obeyed; remove it to go back to the defaults, then set your settings again in Keybridge",
            path.display()
        )),
        SealedFileError::Damaged(e) => OpenError::StateRefused(format!(
            "{} is not valid ({e}); remove it to go back to the defaults, then set your settings again in Keybridge",
            path.display()
        )),
    })?;
    if let Some(anchor) = anchor {
        anchor.check(&path, LOST, unsealed.as_ref().map(|u| u.generation), accept_restored)?;
    }
    let Some(unsealed) = unsealed else { return Ok((Settings::defaults(approval_timeout), 0)) };
    let settings = Settings::from_view(&unsealed.value).map_err(|e| {
        OpenError::StateRefused(format!("{}: {e}; remove it to go back to the defaults", path.display()))
    })?;
    Ok((settings, unsealed.generation))
}

pub fn save(data_dir: &Path, settings: &Settings, seal: &SealKey) -> Result<(), BrokerError> {
    save_generation(data_dir, settings, seal, 0)
}

/// Save as `generation` (the caller anchors it after).
pub fn save_generation(
    data_dir: &Path,
    settings: &Settings,
    seal: &SealKey,
    generation: u64,
) -> Result<(), BrokerError> {
    crate::sealed::write(&settings_file(data_dir), FIELD, PURPOSE, seal, &settings.view(), generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(ttl: u64, timeout: u64, policy: &[(&str, &str)]) -> SettingsView {
        SettingsView {
            token_ttl_secs: ttl,
            approval_timeout_secs: timeout,
            policy: policy.iter().map(|(s, d)| (s.to_string(), d.to_string())).collect(),
        }
    }

    fn seal() -> SealKey {
        SealKey::load_or_create(&keybridge_vault::MemoryStore::default(), "seal").unwrap()
    }

    #[test]
    fn saved_settings_come_back_and_defaults_fill_in() {
        let dir = tempfile::tempdir().unwrap();
        let seal = seal();
        let defaults = load(dir.path(), Duration::from_secs(60), &seal).unwrap();
        assert_eq!(defaults, Settings::defaults(Duration::from_secs(60)));
        let chosen = Settings::from_view(&view(300, 120, &[("qc:live:read", "ask")])).unwrap();
        save(dir.path(), &chosen, &seal).unwrap();
        assert_eq!(load(dir.path(), Duration::from_secs(60), &seal).unwrap(), chosen);
    }

    #[test]
    fn a_policy_edited_outside_keybridge_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let seal = seal();
        save(dir.path(), &Settings::defaults(Duration::from_secs(60)), &seal).unwrap();
        let path = settings_file(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replace("\"policy\": {}", "\"policy\": {\"qc:live:execute\": \"allow\"}");
        assert_ne!(edited, text);
        std::fs::write(&path, &edited).unwrap();
        let err = load(dir.path(), Duration::from_secs(60), &seal).unwrap_err().to_string();
        assert!(err.contains("changed outside Keybridge"), "{err}");
        let other = SealKey::load_or_create(&keybridge_vault::MemoryStore::default(), "seal").unwrap();
        save(dir.path(), &Settings::defaults(Duration::from_secs(60)), &other).unwrap();
        assert!(load(dir.path(), Duration::from_secs(60), &seal).is_err(), "another install's seal does not fit");
    }

    #[test]
    fn out_of_bounds_and_unknown_values_are_named() {
        let cases = [
            (view(30, 60, &[]), "token lifetime 30s"),
            (view(7200, 60, &[]), "token lifetime 7200s"),
            (view(600, 5, &[]), "approval timeout 5s"),
            (view(600, 60, &[("qc:moon:write", "allow")]), "qc:moon:write"),
            (view(600, 60, &[("qc:live:read", "maybe")]), "`maybe`"),
        ];
        for (bad, named) in cases {
            let err = Settings::from_view(&bad).unwrap_err().to_string();
            assert!(err.contains(named), "{err} should name {named}");
        }
    }

    #[test]
    fn a_broken_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(settings_file(dir.path()), "{not json").unwrap();
        let err = load(dir.path(), Duration::from_secs(60), &seal()).unwrap_err().to_string();
        assert!(err.contains("settings.json is not valid"), "{err}");
        assert_eq!(std::fs::read_to_string(settings_file(dir.path())).unwrap(), "{not json");
    }
}
