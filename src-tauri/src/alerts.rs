//! When refused connections come in a burst, the trader is told once, not once per refusal: a
//! program knocking with a wrong key, or many, is worth a notification; a single mistyped key is
//! not.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// This many refusals within [`WINDOW`] make a burst.
pub const BURST: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct RefusalBurst {
    recent: VecDeque<Instant>,
    told: Option<Instant>,
}

impl RefusalBurst {
    /// Note a refusal at `now`; how many came within the window when that is a burst the trader
    /// has not been told of in the last window.
    pub fn refused(&mut self, now: Instant) -> Option<usize> {
        while self.recent.front().is_some_and(|&t| now.duration_since(t) >= WINDOW) {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        let quiet = self.told.is_none_or(|told| now.duration_since(told) >= WINDOW);
        (self.recent.len() >= BURST && quiet).then(|| {
            self.told = Some(now);
            self.recent.len()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_told_once_a_window_and_a_trickle_never() {
        let start = Instant::now();
        let mut burst = RefusalBurst::default();
        for i in 0..4 {
            assert_eq!(burst.refused(start + Duration::from_secs(i * 20)), None, "one every 20 s is a trickle");
        }
        let later = start + Duration::from_secs(600);
        let told: Vec<Option<usize>> = (0..8).map(|i| burst.refused(later + Duration::from_secs(i))).collect();
        assert_eq!(told.iter().flatten().collect::<Vec<_>>(), [&5], "told once, at the fifth: {told:?}");
        let next = later + 2 * WINDOW;
        let again: Vec<Option<usize>> = (0..5).map(|i| burst.refused(next + Duration::from_secs(i))).collect();
        assert_eq!(again.last(), Some(&Some(5)), "a new burst a window later is told again: {again:?}");
    }
}
