//! Counting what a limit counts: how many calls (or live deployments) of a caller fell in the
//! last window. The desktop's counts are sliding windows in the broker's memory; a team's are
//! kept where every replica counts together (see [`crate::seams::RateCounter`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::primitives::lock;
use crate::seams::RateCounter;

/// The desktop's counts: for each key, the times of its last events, never more than its limit.
#[derive(Debug, Default)]
pub struct InMemoryCounts {
    stamps: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateCounter for InMemoryCounts {
    fn admit(&self, key: &str, window: Duration, most: u32) -> Result<bool, String> {
        let mut stamps = lock(&self.stamps);
        let stamps = match stamps.get_mut(key) {
            Some(stamps) => stamps,
            None => stamps.entry(key.to_string()).or_default(),
        };
        Ok(admit(stamps, Instant::now(), window, most))
    }
}

/// Whether `stamps` (oldest first) hold fewer than `most` within `window`; if so, `now` joins.
fn admit(stamps: &mut VecDeque<Instant>, now: Instant, window: Duration, most: u32) -> bool {
    while stamps.front().is_some_and(|&t| now.duration_since(t) >= window) {
        stamps.pop_front();
    }
    if stamps.len() >= most as usize {
        return false;
    }
    stamps.push_back(now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_window_admits_its_limit_and_then_frees_places_as_they_age() {
        let start = Instant::now();
        let mut stamps = VecDeque::new();
        assert!(admit(&mut stamps, start, MINUTE, 2));
        assert!(admit(&mut stamps, start + Duration::from_secs(10), MINUTE, 2));
        assert!(!admit(&mut stamps, start + Duration::from_secs(59), MINUTE, 2), "two in the minute already");
        assert!(admit(&mut stamps, start + Duration::from_secs(60), MINUTE, 2), "the first aged out");
        assert_eq!(stamps.len(), 2, "kept no more than the limit");
    }

    #[test]
    fn keys_are_counted_apart() {
        let counts = InMemoryCounts::default();
        assert_eq!(counts.admit("a", MINUTE, 1), Ok(true));
        assert_eq!(counts.admit("a", MINUTE, 1), Ok(false));
        assert_eq!(counts.admit("b", MINUTE, 1), Ok(true), "another key has a window of its own");
    }
}
