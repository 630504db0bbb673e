//! The broker as a whole: its status, the pause (kept in the keychain, so deleting a file cannot
//! lift it), the settings (sealed and anchored), and the token signing key's rotation.

use std::sync::atomic::Ordering;

use keybridge_broker_proto::{AdminReply, BrokerEvent, KeysRotated, PauseState, SettingsView, StatusView};
use keybridge_vault::SecretString;

use crate::BrokerError;
use crate::audit::{AdminEvent, AuditEvent};
use crate::broker::Broker;
use crate::primitives::lock;
use crate::settings::Settings;

impl Broker {
    pub(super) fn status(&self) -> StatusView {
        StatusView {
            version: self.config.version.clone(),
            paused: self.is_paused(),
            data_dir: self.config.data_dir.display().to_string(),
            quantconnect: self.config.qc_base_url.clone(),
            sessions: lock(&self.sessions).values().filter(|s| !s.revoked).count(),
            pending_approvals: self.approvals.list().len(),
            signing_key: self.tokens.active_kid(),
            auth_failures: self.auth_failures.snapshot(),
        }
    }

    pub(super) fn set_paused(&self, paused: bool) -> Result<AdminReply, BrokerError> {
        self.paused.store(paused, Ordering::SeqCst);
        if paused {
            self.approvals.deny_where(|_| true);
            self.store.set(&self.pause_name, &SecretString::from("paused".to_string()))?;
        } else {
            self.store.delete(&self.pause_name)?;
        }
        self.state.announce()?;
        self.record(AuditEvent::Admin(if paused { AdminEvent::Paused } else { AdminEvent::Resumed }));
        let _ = self.events.send(BrokerEvent::Paused { paused });
        Ok(PauseState { paused }.into())
    }

    pub(super) fn update_settings(&self, view: &SettingsView) -> Result<AdminReply, BrokerError> {
        let settings = Settings::from_view(view)?;
        self.state.save_settings(&settings)?;
        let view = settings.view();
        *lock(&self.settings) = settings;
        self.record(AuditEvent::Admin(AdminEvent::SettingsChanged { settings: view.clone() }));
        let _ = self.events.send(BrokerEvent::SettingsChanged { settings: view.clone() });
        Ok(view.into())
    }

    pub(super) fn rotate_signing_key(&self) -> Result<AdminReply, BrokerError> {
        let kid = self.tokens.rotate()?;
        self.record(AuditEvent::Admin(AdminEvent::SigningKeyRotated { kid: kid.clone() }));
        Ok(KeysRotated { kid }.into())
    }
}
