//! Where the broker keeps what it must remember between starts: the paired clients (their
//! revocations included) and the broker-wide settings. The broker talks to a [`StateStore`];
//! the desktop's is [`SealedFiles`], chosen by `keybridge-host`.
//!
//! A store must never obey state it cannot vouch for: changed outside Keybridge, or older than
//! what it wrote last (a revoked client revived by a backup put back).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keybridge_vault::SecretStore;

use crate::anchor::Anchor;
use crate::clients::{Client, SealKey};
use crate::primitives::lock;
use crate::sealed::SealedFileError;
use crate::settings::Settings;
use crate::{BrokerError, OpenError};

/// Clients and settings, kept for the broker: loaded at start (the clients again when another
/// broker changed them, see [`StateStore::version`]), saved as they change.
pub trait StateStore: Send + Sync {
    /// The clients as last saved, revoked ones included; none at first.
    fn load_clients(&self) -> Result<Vec<Client>, OpenError>;
    /// Save `changed`, one of `clients` (every client as this broker holds them). A store that
    /// several brokers share writes `changed` alone, so one broker's change never undoes
    /// another's. `access_changed`: a client was added, changed or revoked, so a copy from
    /// before must never be obeyed again; false for bookkeeping (when a client was seen).
    fn save_clients(&self, clients: &[Client], changed: &Client, access_changed: bool) -> Result<(), BrokerError>;
    /// The broker-wide settings as last saved; never saved, the defaults with this approval
    /// timeout.
    fn load_settings(&self, approval_timeout: Duration) -> Result<Settings, OpenError>;
    fn save_settings(&self, settings: &Settings) -> Result<(), BrokerError>;
    /// A number that moves when another broker changed the clients, the settings or the pause;
    /// the broker reads it before it decides anything and takes them up again when it moved. A
    /// store no other broker writes never moves it.
    fn version(&self) -> u64 {
        0
    }
    /// Move every other broker's version: something they read elsewhere changed (the pause,
    /// which is kept with the secrets). A store no other broker reads does nothing.
    fn announce(&self) -> Result<(), BrokerError> {
        Ok(())
    }
}

/// The desktop's store: `clients.json` and `settings.json` in the data folder, each sealed with
/// a key from the keychain, with a generation anchored in the keychain so an older copy put
/// back is refused at start.
pub struct SealedFiles {
    dir: PathBuf,
    seal: SealKey,
    clients_anchor: Anchor,
    settings_anchor: Anchor,
    clients_generation: AtomicU64,
    settings_generation: AtomicU64,
    /// Start on files behind their anchors (a backup put back on purpose), and anchor them as
    /// the newest.
    accept_restored: bool,
    /// One save at a time, so generations and anchors move in the order the files were written.
    saving: std::sync::Mutex<()>,
}

impl std::fmt::Debug for SealedFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedFiles").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// The seal's purposes, and the files' fields that hold the values.
const CLIENTS: &str = "clients";

impl SealedFiles {
    /// The store in `dir`, sealed with this install's key from `secrets`.
    pub fn open(
        dir: &Path,
        secrets: Arc<dyn SecretStore>,
        install_id: &str,
        accept_restored: bool,
    ) -> Result<Self, OpenError> {
        let seal = SealKey::load_or_create(secrets.as_ref(), &format!("state-key:{install_id}"))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            seal,
            clients_anchor: Anchor::new(secrets.clone(), "clients", install_id),
            settings_anchor: Anchor::new(secrets, "settings", install_id),
            clients_generation: AtomicU64::new(0),
            settings_generation: AtomicU64::new(0),
            accept_restored,
            saving: std::sync::Mutex::new(()),
        })
    }

    fn clients_file(&self) -> PathBuf {
        self.dir.join("clients.json")
    }

    fn write_clients(&self, clients: &[Client], generation: u64) -> Result<(), BrokerError> {
        crate::sealed::write(&self.clients_file(), CLIENTS, CLIENTS, &self.seal, &clients, generation)
    }
}

impl StateStore for SealedFiles {
    fn load_clients(&self) -> Result<Vec<Client>, OpenError> {
        let file = self.clients_file();
        let unsealed = crate::sealed::read::<Vec<Client>>(&file, CLIENTS, CLIENTS, &self.seal).map_err(|e| match e {
            SealedFileError::Unreadable(e) => OpenError::Storage { action: "read", path: file.clone(), source: e.into() },
            SealedFileError::Tampered => OpenError::StateRefused(format!(
                "{} was changed outside Keybridge (its seal does not match); restore it from a backup, or remove it and pair your clients again",
                file.display()
            )),
            SealedFileError::Damaged(e) => {
                OpenError::StateRefused(format!("{} is damaged ({e}); restore it or remove it", file.display()))
            }
        })?;
        let lost = match unsealed {
            Some(_) => "a revoked client, or scopes taken away",
            None => "every paired client and every revocation",
        };
        self.clients_anchor.check(&file, lost, unsealed.as_ref().map(|u| u.generation), self.accept_restored)?;
        let (clients, generation) = unsealed.map_or((Vec::new(), 0), |u| (u.value, u.generation));
        self.clients_generation.store(generation, Ordering::SeqCst);
        if self.accept_restored {
            // From now on, what is there is the newest state.
            if let Some(first) = clients.first() {
                self.save_clients(&clients, first, true)?;
            }
        }
        Ok(clients)
    }

    fn save_clients(&self, clients: &[Client], _changed: &Client, access_changed: bool) -> Result<(), BrokerError> {
        let _one_at_a_time = lock(&self.saving);
        let current = self.clients_generation.load(Ordering::SeqCst);
        let generation = if access_changed { current + 1 } else { current };
        self.write_clients(clients, generation)?;
        // The file first, then the anchor: a crash between leaves the file ahead, which loads.
        if access_changed {
            self.clients_anchor.set(&generation.to_string())?;
        }
        self.clients_generation.store(generation, Ordering::SeqCst);
        Ok(())
    }

    fn load_settings(&self, approval_timeout: Duration) -> Result<Settings, OpenError> {
        let (settings, generation) = crate::settings::load_anchored(
            &self.dir,
            approval_timeout,
            &self.seal,
            Some(&self.settings_anchor),
            self.accept_restored,
        )?;
        self.settings_generation.store(generation, Ordering::SeqCst);
        if self.accept_restored {
            self.save_settings(&settings)?;
        }
        Ok(settings)
    }

    fn save_settings(&self, settings: &Settings) -> Result<(), BrokerError> {
        let _one_at_a_time = lock(&self.saving);
        let generation = self.settings_generation.load(Ordering::SeqCst) + 1;
        crate::settings::save_generation(&self.dir, settings, &self.seal, generation)?;
        self.settings_anchor.set(&generation.to_string())?;
        self.settings_generation.store(generation, Ordering::SeqCst);
        Ok(())
    }
}
