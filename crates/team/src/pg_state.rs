//! The clients (their scopes, limits and revocations) and the broker-wide settings in
//! PostgreSQL, shared by every replica; a change of the pause (kept with the secrets) is
//! announced here too.
//!
//! `keybridge_clients` holds one row per client, written one client at a time, so replicas
//! changing different clients never undo each other, and a revocation is one-way in the database
//! itself: a replica writing an older copy of a client cannot bring a revoked client back. When
//! a client was last seen stays in each replica's memory: an older copy is never written for it. Each change is announced on the
//! `keybridge_state` channel in the same transaction (`NOTIFY` is delivered at commit); every
//! replica listens on a connection of its own and moves its version, and the broker takes the
//! clients up again before it decides anything. A revocation made through one replica is in
//! force on the others as soon as the notification arrives.
//!
//! A row holds what `clients.json` holds on the desktop (a key client's key only as its
//! SHA-256); who may write these tables is the database's access control.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keybridge_broker::clients::Client;
use keybridge_broker::seams::StateStore;
use keybridge_broker::settings::Settings;
use keybridge_broker::{BrokerError, OpenError};
use keybridge_broker_proto::SettingsView;

use crate::pg::{Database, PgConfig, listen};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keybridge_clients (
    id text PRIMARY KEY,
    client text NOT NULL,
    revoked boolean NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS keybridge_settings (
    id smallint PRIMARY KEY CHECK (id = 1),
    settings text NOT NULL
);
";

/// The channel changes are announced on.
const CHANNEL: &str = "keybridge_state";

/// Clients and settings of every replica, in PostgreSQL.
pub struct PgState {
    db: Database,
    /// Moved by every change any replica announces.
    version: Arc<AtomicU64>,
}

impl std::fmt::Debug for PgState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgState").field("version", &self.version.load(Ordering::SeqCst)).finish_non_exhaustive()
    }
}

fn unreachable_database(action: &str, detail: &str) -> String {
    // The connection string is never repeated: it may carry a password.
    format!("cannot {action} the shared state in PostgreSQL: {detail}")
}

impl PgState {
    /// Connect to the database `config` names, make the tables if they are missing, and listen
    /// for other replicas' changes.
    pub fn connect(config: &PgConfig) -> Result<PgState, OpenError> {
        let refused = |action: &str, e: &dyn std::fmt::Display| {
            OpenError::StateRefused(unreachable_database(action, &e.to_string()))
        };
        let db = Database::connect(config, "keybridge-state-db", SCHEMA).map_err(|e| refused("connect to", &e))?;
        let version = Arc::new(AtomicU64::new(0));
        let moved = version.clone();
        // Any change, or a reconnection (a change may have been missed), moves the version.
        listen(config, CHANNEL, move |_, _| {
            moved.fetch_add(1, Ordering::SeqCst);
        })
        .map_err(|e| refused("listen for changes to", &e))?;
        Ok(PgState { db, version })
    }
}

impl StateStore for PgState {
    fn load_clients(&self) -> Result<Vec<Client>, OpenError> {
        let rows = self
            .db
            .run(|client| {
                let rows = client.query("SELECT client, revoked FROM keybridge_clients ORDER BY id", &[])?;
                Ok(rows.iter().map(|row| (row.get::<_, String>(0), row.get::<_, bool>(1))).collect::<Vec<_>>())
            })
            .map_err(|e| OpenError::StateRefused(unreachable_database("read", &e)))?;
        rows.iter()
            .map(|(row, revoked)| {
                let mut client: Client = serde_json::from_str(row).map_err(|e| {
                    OpenError::StateRefused(format!(
                        "a row of keybridge_clients is not a client ({e}); restore the table"
                    ))
                })?;
                client.revoked |= revoked;
                Ok(client)
            })
            .collect()
    }

    fn save_clients(&self, _clients: &[Client], changed: &Client, access_changed: bool) -> Result<(), BrokerError> {
        // When a client was last seen decides nothing: writing this replica's copy for it could
        // only put an older copy of the rest back.
        if !access_changed {
            return Ok(());
        }
        let (id, revoked) = (changed.id.clone(), changed.revoked);
        let row = serde_json::to_string(changed).map_err(|e| BrokerError::Invalid(e.to_string()))?;
        self.db
            .run(move |client| {
                let mut tx = client.transaction()?;
                tx.execute(
                "INSERT INTO keybridge_clients (id, client, revoked) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE \
                 SET client = EXCLUDED.client, revoked = keybridge_clients.revoked OR EXCLUDED.revoked",
                &[&id, &row, &revoked],
            )?;
                tx.batch_execute(&format!("NOTIFY {CHANNEL}"))?;
                tx.commit()
            })
            .map_err(|e| BrokerError::Invalid(unreachable_database("write", &e)))
    }

    fn load_settings(&self, approval_timeout: Duration) -> Result<Settings, OpenError> {
        let row = self
            .db
            .run(|client| {
                Ok(client
                    .query_opt("SELECT settings FROM keybridge_settings WHERE id = 1", &[])?
                    .map(|row| row.get::<_, String>(0)))
            })
            .map_err(|e| OpenError::StateRefused(unreachable_database("read", &e)))?;
        let Some(row) = row else { return Ok(Settings::defaults(approval_timeout)) };
        let refused = |e: &dyn std::fmt::Display| {
            OpenError::StateRefused(format!(
                "the row of keybridge_settings cannot be obeyed ({e}); set the settings again in Keybridge"
            ))
        };
        let view: SettingsView = serde_json::from_str(&row).map_err(|e| refused(&e))?;
        Settings::from_view(&view).map_err(|e| refused(&e))
    }

    fn save_settings(&self, settings: &Settings) -> Result<(), BrokerError> {
        let row = serde_json::to_string(&settings.view()).map_err(|e| BrokerError::Invalid(e.to_string()))?;
        self.db.run(move |client| {
            let mut tx = client.transaction()?;
            tx.execute(
                "INSERT INTO keybridge_settings (id, settings) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET settings = EXCLUDED.settings",
                &[&row],
            )?;
            tx.batch_execute(&format!("NOTIFY {CHANNEL}"))?;
            tx.commit()
        })
        .map_err(|e| BrokerError::Invalid(unreachable_database("write", &e)))
    }

    fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    fn announce(&self) -> Result<(), BrokerError> {
        self.db
            .run(|client| client.batch_execute(&format!("NOTIFY {CHANNEL}")))
            .map_err(|e| BrokerError::Invalid(unreachable_database("announce a change in", &e)))
    }
}
