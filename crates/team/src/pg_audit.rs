//! The audit chain in PostgreSQL, shared by every replica.
//!
//! `keybridge_audit` holds one row per record: its sequence number, when and by which replica
//! it was written, and its line exactly as the desktop writes it (chain fields included).
//! `keybridge_audit_head` holds one row: the last record's number and MAC and the sealed head.
//! An append reads the head `FOR UPDATE`, seals the record after it, inserts it and moves the
//! head, in one transaction: appends from any number of replicas queue on that row and form one
//! chain, and a record is kept once its append returns.

use std::path::Path;
use std::sync::Arc;

use keybridge_broker::audit::chain::{self, ChainKey, HEAD_FILE};
use keybridge_broker::audit::{AuditError, AuditEvent, AuditRecord, Verified};
use keybridge_broker::seams::AuditSink;
use tokio::sync::broadcast;

use crate::pg::{Database, PgConfig};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keybridge_audit (
    seq bigint PRIMARY KEY,
    ts bigint NOT NULL,
    replica text NOT NULL,
    line text NOT NULL
);
CREATE TABLE IF NOT EXISTS keybridge_audit_head (
    id smallint PRIMARY KEY CHECK (id = 1),
    seq bigint NOT NULL,
    mac text NOT NULL,
    head text
);
";

/// What the export's one log file is called: a name the desktop's verifier reads.
const EXPORT_FILE: &str = "audit.0000-00-00.jsonl";

/// The database connection, on a thread of its own; made again after the database restarts.
struct Connection(Database);

impl Connection {
    fn open(config: &PgConfig) -> Result<Connection, AuditError> {
        Database::connect(config, "keybridge-audit-db", SCHEMA).map(Connection).map_err(|e| database("connect to", &e))
    }

    /// Run `work` on the connection and wait for it.
    fn run<T: Send + 'static>(
        &self,
        action: &'static str,
        work: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, AuditError> {
        self.0.run(work).map_err(|e| database(action, &e))
    }
}

fn database(action: &str, detail: &str) -> AuditError {
    // The error's text names what failed, never the connection string.
    AuditError::Io { path: "the audit database".into(), detail: format!("cannot {action} it: {detail}") }
}

/// The audit chain of every replica, in PostgreSQL.
pub struct PgAudit {
    db: Connection,
    key: Arc<ChainKey>,
    /// Which replica this is, on every row it writes.
    replica: String,
    live: broadcast::Sender<Arc<AuditRecord>>,
}

impl std::fmt::Debug for PgAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAudit").field("replica", &self.replica).finish_non_exhaustive()
    }
}

impl PgAudit {
    /// Connect to the database `config` names (a libpq connection string or URL), make the
    /// tables if they are missing, and seal records with `key` as `replica`.
    pub fn connect(config: &PgConfig, key: ChainKey, replica: &str) -> Result<PgAudit, AuditError> {
        let db = Connection::open(config)?;
        db.run("set up the audit tables in", |client| {
            client.execute(
                "INSERT INTO keybridge_audit_head (id, seq, mac) VALUES (1, 0, $1) ON CONFLICT (id) DO NOTHING",
                &[&chain::GENESIS],
            )?;
            Ok(())
        })?;
        let (live, _) = broadcast::channel(4096);
        Ok(PgAudit { db, key: Arc::new(key), replica: replica.to_string(), live })
    }

    /// Every line and the head, as kept.
    fn lines_and_head(&self) -> Result<(String, Option<String>), AuditError> {
        self.db.run("read the audit log from", |client| {
            let mut tx = client
                .build_transaction()
                .read_only(true)
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .start()?;
            let mut lines = String::new();
            for row in tx.query("SELECT line FROM keybridge_audit ORDER BY seq", &[])? {
                lines.push_str(row.get::<_, &str>(0));
            }
            let head: Option<String> = tx.query_one("SELECT head FROM keybridge_audit_head WHERE id = 1", &[])?.get(0);
            tx.commit()?;
            Ok((lines, head))
        })
    }

    /// Write the whole chain into `dir` as the desktop keeps a log (one JSON-lines file and its
    /// head), for the desktop's verifier.
    pub fn export_to(&self, dir: &Path) -> Result<(), AuditError> {
        let (lines, head) = self.lines_and_head()?;
        let io =
            |path: &Path, e: std::io::Error| AuditError::Io { path: path.display().to_string(), detail: e.to_string() };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let file = dir.join(EXPORT_FILE);
        std::fs::write(&file, lines).map_err(|e| io(&file, e))?;
        if let Some(head) = head {
            let file = dir.join(HEAD_FILE);
            std::fs::write(&file, head).map_err(|e| io(&file, e))?;
        }
        Ok(())
    }

    fn read_records(&self) -> Result<Vec<AuditRecord>, AuditError> {
        let rows = self.db.run("read the audit log from", |client| {
            let rows = client.query("SELECT line FROM keybridge_audit ORDER BY seq", &[])?;
            Ok(rows.iter().map(|row| row.get::<_, String>(0)).collect::<Vec<_>>())
        })?;
        Ok(rows.iter().filter_map(|line| serde_json::from_str::<AuditRecord>(line).ok()).collect())
    }
}

impl AuditSink for PgAudit {
    fn append(&self, event: &AuditEvent) -> Result<Arc<AuditRecord>, AuditError> {
        let (key, replica, event) = (self.key.clone(), self.replica.clone(), event.to_json());
        let (seq, ts, event) = self.db.run("append to", move |client| {
            let mut tx = client.transaction()?;
            let head = tx.query_one("SELECT seq, mac FROM keybridge_audit_head WHERE id = 1 FOR UPDATE", &[])?;
            let (last, prev): (i64, String) = (head.get(0), head.get(1));
            let seq = last as u64 + 1;
            let ts = now_ms();
            let (sealed, event) = chain::seal(&key, &prev, seq, ts, event);
            let head = chain::head_text(&key, seq, &sealed.mac);
            tx.execute(
                "INSERT INTO keybridge_audit (seq, ts, replica, line) VALUES ($1, $2, $3, $4)",
                &[&(seq as i64), &(ts as i64), &replica, &sealed.line],
            )?;
            tx.execute(
                "UPDATE keybridge_audit_head SET seq = $1, mac = $2, head = $3 WHERE id = 1",
                &[&(seq as i64), &sealed.mac, &head],
            )?;
            tx.commit()?;
            Ok((seq, ts, event))
        })?;
        let record = Arc::new(AuditRecord { seq, ts, event });
        // No subscriber is fine; a slow one loses the oldest records, never blocks the broker.
        let _ = self.live.send(record.clone());
        Ok(record)
    }

    fn keyed_digest(&self, text: &str) -> String {
        self.key.keyed_digest(text)
    }

    /// This replica's records as it writes them; another replica's come through that replica.
    fn subscribe(&self) -> broadcast::Receiver<Arc<AuditRecord>> {
        self.live.subscribe()
    }

    fn records(&self) -> Result<Box<dyn Iterator<Item = AuditRecord> + Send>, AuditError> {
        Ok(Box::new(self.read_records()?.into_iter()))
    }

    fn read_all(&self) -> Result<Vec<AuditRecord>, AuditError> {
        self.read_records()
    }

    fn verify(&self) -> Result<Verified, AuditError> {
        let (lines, head) = self.lines_and_head()?;
        chain::verify_texts(&[("keybridge_audit".into(), lines)], head.as_deref(), &self.key)
    }

    fn export_lines(&self) -> Result<String, AuditError> {
        Ok(self.lines_and_head()?.0)
    }

    /// The head row moves in the same transaction as each record: there is nothing to anchor.
    fn anchor_now(&self) {}
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
