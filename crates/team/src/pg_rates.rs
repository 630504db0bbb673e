//! The counts behind the clients' limits in PostgreSQL, so a limit holds across replicas: a
//! caller making calls through two replicas is counted once, together.
//!
//! A sliding window is estimated from two fixed ones (the current and the one before, weighed by
//! how much of it the sliding window still covers), each one row, so a count costs one row lock
//! whatever the limit: an exact log of every call would cost a row per call. Time is the
//! database's, so replicas with different clocks count into the same windows. A call over the
//! limit is not counted. Counts are committed without waiting for the disk: a database crash may
//! forget the last few, never more.

use std::time::Duration;

use keybridge_broker::seams::RateCounter;

use crate::pg::{Database, PgConfig};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS keybridge_rates (
    key text NOT NULL,
    slot bigint NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (key, slot)
);
";

/// Limits' counts of every replica, in PostgreSQL.
pub struct PgRates {
    db: Database,
}

impl std::fmt::Debug for PgRates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgRates").finish_non_exhaustive()
    }
}

impl PgRates {
    /// Connect to the database `config` names and make the table if it is missing.
    pub fn connect(config: &PgConfig) -> Result<PgRates, String> {
        Database::connect(config, "keybridge-rates-db", SCHEMA)
            .map(|db| PgRates { db })
            .map_err(|e| format!("cannot count limits in PostgreSQL: {e}"))
    }
}

impl RateCounter for PgRates {
    fn admit(&self, key: &str, window: Duration, most: u32) -> Result<bool, String> {
        let key = format!("{key}\u{1f}{}", window.as_secs());
        let window_ms = window.as_millis().max(1) as i64;
        self.db.run(move |client| {
            let mut tx = client.transaction()?;
            // A count is not worth a flush to disk: a crash of the database loses a few counts
            // at most, and a call waits on one flush less.
            tx.batch_execute("SET LOCAL synchronous_commit = off")?;
            let now_ms: i64 =
                tx.query_one("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint", &[])?.get(0);
            let (slot, into) = (now_ms / window_ms, (now_ms % window_ms) as f64 / window_ms as f64);
            // The row is locked until this transaction ends: counts of one key happen one at a time.
            let current: i64 = tx
                .query_one(
                    "INSERT INTO keybridge_rates (key, slot, count) VALUES ($1, $2, 1) \
                     ON CONFLICT (key, slot) DO UPDATE SET count = keybridge_rates.count + 1 RETURNING count",
                    &[&key, &slot],
                )?
                .get(0);
            let before: i64 = tx
                .query_opt("SELECT count FROM keybridge_rates WHERE key = $1 AND slot = $2", &[&key, &(slot - 1)])?
                .map_or(0, |row| row.get(0));
            if before as f64 * (1.0 - into) + current as f64 > f64::from(most) {
                tx.rollback()?;
                return Ok(false);
            }
            if current == 1 {
                // A new window: the ones no count reads any more go.
                tx.execute("DELETE FROM keybridge_rates WHERE key = $1 AND slot < $2", &[&key, &(slot - 1)])?;
            }
            tx.commit()?;
            Ok(true)
        })
    }
}
