//! Counts of refused connections and tokens, per client and reason, since the broker started:
//! what `keybridge status` and the app show, so a trader notices a program knocking. The client
//! names are what a peer claimed, so the table is bounded: past its size, new names are counted
//! together.

use std::collections::BTreeMap;
use std::sync::Mutex;

use keybridge_broker_proto::{AuthFailure, AuthFailureCount};

use crate::primitives::{lock, now};

/// The most (client, reason) pairs kept apart.
const MOST_KEPT: usize = 1000;
/// Where refusals of clients past [`MOST_KEPT`] are counted.
const OTHERS: &str = "(other clients)";

#[derive(Debug, Default)]
pub(crate) struct FailureCounts {
    counts: Mutex<BTreeMap<(String, AuthFailure), (u64, u64)>>,
}

impl FailureCounts {
    pub(crate) fn note(&self, client: &str, reason: AuthFailure) {
        let mut counts = lock(&self.counts);
        let mut key = (client.to_string(), reason);
        if !counts.contains_key(&key) && counts.len() >= MOST_KEPT {
            key.0 = OTHERS.to_string();
        }
        let entry = counts.entry(key).or_default();
        entry.0 += 1;
        entry.1 = now();
    }

    pub(crate) fn snapshot(&self) -> Vec<AuthFailureCount> {
        lock(&self.counts)
            .iter()
            .map(|((client, reason), (count, last))| AuthFailureCount {
                client: client.clone(),
                reason: *reason,
                count: *count,
                last: *last,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_per_client_and_reason_within_a_bound() {
        let counts = FailureCounts::default();
        counts.note("a", AuthFailure::BadKey);
        counts.note("a", AuthFailure::BadKey);
        counts.note("a", AuthFailure::Expired);
        let seen = counts.snapshot();
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[0].reason, seen[0].count), (AuthFailure::BadKey, 2));
        for i in 0..MOST_KEPT + 50 {
            counts.note(&format!("made-up-{i}"), AuthFailure::UnknownClient);
        }
        let seen = counts.snapshot();
        assert_eq!(seen.len(), MOST_KEPT + 1, "bounded, with one row for the rest");
        let others = seen.iter().find(|c| c.client == OTHERS).unwrap();
        assert_eq!(others.count, 52);
    }
}
