//! Sign-ins kept in the OS keychain, one per team service, and the access tokens handed out from
//! them: refreshed when near their end, one process at a time.

use std::path::PathBuf;
use std::sync::Arc;

use keybridge_vault::SecretStore;

use crate::TeamClientError;
use crate::sign_in::{SignIn, refresh};

/// An access token with less life than this is refreshed before it is handed out: a call that
/// starts with it must still be inside it when the service checks it.
const FRESH_ENOUGH_SECS: u64 = 60;

/// This user's sign-ins to team services, in `store` (the OS keychain); `lock_dir` holds the
/// lock that keeps two processes from refreshing one sign-in at once.
#[derive(Debug, Clone)]
pub struct KeptSignIns {
    store: Arc<dyn SecretStore>,
    lock_dir: PathBuf,
}

/// The keychain entry of the sign-in to `server`, whichever way its address is spelt.
fn entry(server: &str) -> Result<String, TeamClientError> {
    Ok(format!("team-sign-in:{}", crate::service_address(server)?.as_str().trim_end_matches('/')))
}

impl KeptSignIns {
    pub fn new(store: Arc<dyn SecretStore>, lock_dir: PathBuf) -> KeptSignIns {
        KeptSignIns { store, lock_dir }
    }

    /// Keep `signed_in`, in place of any earlier sign-in to its service.
    pub async fn keep(&self, signed_in: &SignIn) -> Result<(), TeamClientError> {
        let _lock = self.lock().await?;
        Ok(self.store.set(&entry(&signed_in.resource)?, &signed_in.to_stored())?)
    }

    /// Forget the sign-in to `server`; forgetting none succeeds. A refresh under way finishes
    /// first, so it cannot write the sign-in back.
    pub async fn forget(&self, server: &str) -> Result<(), TeamClientError> {
        let _lock = self.lock().await?;
        Ok(self.store.delete(&entry(server)?)?)
    }

    fn read(&self, server: &str) -> Result<SignIn, TeamClientError> {
        let stored = self.store.get(&entry(server)?)?.ok_or_else(|| TeamClientError::NotSignedIn(server.into()))?;
        SignIn::from_stored(&stored)
    }

    /// The lock every change to the kept sign-ins is made under, across processes; held until
    /// the file it returns is dropped.
    async fn lock(&self) -> Result<std::fs::File, TeamClientError> {
        let lock_path = self.lock_dir.join("team-sign-in.lock");
        let locked = |e: &dyn std::fmt::Display| TeamClientError::Lock(format!("{}: {e}", lock_path.display()));
        keybridge_vault::create_private_dir(&self.lock_dir).map_err(|e| locked(&e))?;
        let lock = keybridge_vault::open_private_rw(&lock_path).map_err(|e| locked(&e))?;
        tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
            .await
            .map_err(|e| locked(&e))?
            .map_err(|e| locked(&e))
    }

    /// The sign-in to `server` with an access token fresh enough to call with: refreshed (and
    /// the rotated refresh token kept) when the sign-in has a refresh token, since its access
    /// token is not kept; else the kept access token while it lasts, unless the service
    /// `refused` it.
    /// One process refreshes at a time: a provider that rotates refresh tokens takes a second use
    /// of the old one as theft and ends the whole sign-in.
    pub async fn fresh(&self, server: &str, refused: bool) -> Result<SignIn, TeamClientError> {
        let signed_in = self.read(server)?;
        if signed_in.seconds_left() > FRESH_ENOUGH_SECS && !refused {
            return Ok(signed_in);
        }
        let lock = self.lock().await?;
        // Another process may have refreshed while this one waited.
        let latest = self.read(server)?;
        let refreshed_meanwhile = latest.access.expose() != signed_in.access.expose();
        if latest.seconds_left() > FRESH_ENOUGH_SECS && (refreshed_meanwhile || !refused) {
            return Ok(latest);
        }
        let signed_in = latest;
        let refreshed = refresh(&signed_in).await?;
        self.store.set(&entry(&refreshed.resource)?, &refreshed.to_stored())?;
        drop(lock);
        Ok(refreshed)
    }
}
