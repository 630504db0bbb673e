//! Questions for approvers in PostgreSQL: a call waiting on one replica can be answered through
//! any. The replica that asked keeps the call; the others see its question and answer it here.
//!
//! `keybridge_approvals` holds one row per open question (what the approver is shown, the
//! same as on the desktop) and, once answered, the answer. Every answer, on the replica that
//! asked too, is written here first, only to a row still unanswered and unexpired, in the
//! statement that checks it, so the first answer wins and no other is obeyed. It is announced
//! on the `keybridge_approvals` channel in the same transaction, and the replica that asked
//! hands it to the waiting call. The replica deletes the row once it stops waiting.

use std::sync::{Arc, OnceLock};

use keybridge_broker::approvals::Pending;
use keybridge_broker::seams::{ApprovalRelay, DeliverAnswer, Relayed};
use keybridge_broker_proto::ApprovalDecision;

use crate::pg::{Database, Heard, PgConfig, listen};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keybridge_approvals (
    id text PRIMARY KEY,
    replica text NOT NULL,
    question text NOT NULL,
    expires bigint NOT NULL,
    answer text
);
";

/// The channel answers are announced on, each with its question's id.
const CHANNEL: &str = "keybridge_approvals";

/// How long a question left behind by a replica that stopped is kept past its expiry.
const LEFT_BEHIND_SECS: i64 = 3600;

/// Questions and answers of every replica, in PostgreSQL.
pub struct PgApprovals {
    db: Database,
    replica: String,
    deliver: Arc<OnceLock<DeliverAnswer>>,
}

impl std::fmt::Debug for PgApprovals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgApprovals").field("replica", &self.replica).finish_non_exhaustive()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl PgApprovals {
    /// Connect to the database `config` names, make the table if it is missing, and listen for
    /// answers given through other replicas. `replica` names this one on its questions.
    pub fn connect(config: &PgConfig, replica: &str) -> Result<PgApprovals, String> {
        let db = Database::connect(config, "keybridge-approvals-db", SCHEMA)
            .map_err(|e| format!("cannot keep questions in PostgreSQL: {e}"))?;
        let deliver: Arc<OnceLock<DeliverAnswer>> = Arc::default();
        let delivering = deliver.clone();
        listen(config, CHANNEL, move |heard, client| {
            let Some(deliver) = delivering.get() else { return };
            // Answers to questions this replica does not wait on are not its business: the
            // broker ignores them.
            let answered = match heard {
                Heard::Notified(id) => client
                    .query("SELECT id, answer FROM keybridge_approvals WHERE id = $1 AND answer IS NOT NULL", &[&id]),
                Heard::Reconnected => {
                    client.query("SELECT id, answer FROM keybridge_approvals WHERE answer IS NOT NULL", &[])
                }
            };
            for row in answered.unwrap_or_default() {
                let (id, answer): (String, String) = (row.get(0), row.get(1));
                if let Ok(decision) = serde_json::from_str::<ApprovalDecision>(&answer) {
                    deliver(&id, decision);
                }
            }
        })
        .map_err(|e| format!("cannot listen for answers in PostgreSQL: {e}"))?;
        Ok(PgApprovals { db, replica: replica.to_string(), deliver })
    }
}

impl ApprovalRelay for PgApprovals {
    fn raised(&self, question: &Pending) -> Result<(), String> {
        let row = serde_json::to_string(question).map_err(|e| e.to_string())?;
        let (id, replica, expires) = (question.id.clone(), self.replica.clone(), question.expires as i64);
        self.db.run(move |client| {
            client.execute("DELETE FROM keybridge_approvals WHERE expires < $1", &[&(now() - LEFT_BEHIND_SECS)])?;
            client.execute(
                "INSERT INTO keybridge_approvals (id, replica, question, expires) VALUES ($1, $2, $3, $4)",
                &[&id, &replica, &row, &expires],
            )?;
            Ok(())
        })
    }

    fn settled(&self, id: &str) {
        let (id, replica) = (id.to_string(), self.replica.clone());
        // A row left behind expires unanswerable and is swept at the next question.
        let _ = self.db.run(move |client| {
            client.execute("DELETE FROM keybridge_approvals WHERE id = $1 AND replica = $2", &[&id, &replica])
        });
    }

    fn open_questions(&self) -> Result<Vec<Pending>, String> {
        let rows = self.db.run(|client| {
            let rows = client.query(
                "SELECT question FROM keybridge_approvals WHERE answer IS NULL AND expires > $1 ORDER BY id",
                &[&now()],
            )?;
            Ok(rows.iter().map(|row| row.get::<_, String>(0)).collect::<Vec<_>>())
        })?;
        rows.iter()
            .map(|row| {
                serde_json::from_str(row).map_err(|e| format!("a row of keybridge_approvals is not a question ({e})"))
            })
            .collect()
    }

    fn answer(&self, id: &str, decision: ApprovalDecision) -> Result<Relayed, String> {
        let (id, answer) = (id.to_string(), serde_json::to_string(&decision).map_err(|e| e.to_string())?);
        self.db.run(move |client| {
            let mut tx = client.transaction()?;
            let answered = tx.execute(
                "UPDATE keybridge_approvals SET answer = $2 WHERE id = $1 AND answer IS NULL AND expires > $3",
                &[&id, &answer, &now()],
            )?;
            let relayed = if answered == 1 {
                tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &id])?;
                Relayed::Won
            } else if tx.query_opt("SELECT 1 FROM keybridge_approvals WHERE id = $1", &[&id])?.is_some() {
                Relayed::Lost
            } else {
                Relayed::NotHeld
            };
            tx.commit()?;
            Ok(relayed)
        })
    }

    fn deliver_to(&self, deliver: DeliverAnswer) {
        let _ = self.deliver.set(deliver);
    }
}
