//! The audit chain's end, anchored in the keychain by one thread: off the path of every call,
//! in order, and within [`ANCHOR_WITHIN`] of any record.

use std::sync::{Arc, Mutex};

use super::ANCHOR_WITHIN;
use crate::primitives::lock;

/// The chain's newest end not yet anchored, handed to the one thread that anchors it: the
/// keychain round trip (milliseconds) stays off the path of every call, and anchors are written
/// in order, at most one per [`ANCHOR_WITHIN`].
#[derive(Default)]
pub(super) struct Anchoring {
    state: Mutex<AnchoringState>,
    wake: std::sync::Condvar,
}

#[derive(Default)]
struct AnchoringState {
    pending: Option<(u64, String)>,
    closed: bool,
}

impl Anchoring {
    pub(super) fn start(anchor: crate::anchor::Anchor) -> Arc<Self> {
        let anchoring = Arc::new(Self::default());
        let worker = anchoring.clone();
        let spawned = std::thread::Builder::new().name("audit-anchor".into()).spawn(move || worker.run(&anchor));
        if let Err(e) = spawned {
            tracing::warn!("cannot start anchoring the audit log: {e}; it is anchored at start and shutdown only");
        }
        anchoring
    }

    /// A new end of the chain; wakes the thread only when it had nothing to do.
    pub(super) fn offer(&self, seq: u64, mac: &str) {
        let mut state = lock(&self.state);
        let idle = state.pending.is_none();
        state.pending = Some((seq, mac.to_string()));
        if idle {
            self.wake.notify_one();
        }
    }

    /// The end was anchored directly (at shutdown): nothing left to do for it.
    pub(super) fn settled(&self, seq: u64) {
        let mut state = lock(&self.state);
        if state.pending.as_ref().is_some_and(|(pending, _)| *pending <= seq) {
            state.pending = None;
        }
    }

    fn run(&self, anchor: &crate::anchor::Anchor) {
        loop {
            let mut state = lock(&self.state);
            while state.pending.is_none() && !state.closed {
                state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            if state.closed && state.pending.is_none() {
                return;
            }
            if !state.closed {
                // Let the records of the next moment gather under one anchor.
                state =
                    self.wake.wait_timeout(state, ANCHOR_WITHIN).map(|(s, _)| s).unwrap_or_else(|e| e.into_inner().0);
            }
            let Some((seq, mac)) = state.pending.take() else { continue };
            drop(state);
            if let Err(e) = anchor.set(&format!("{seq}:{mac}")) {
                tracing::warn!("cannot anchor the audit log in the keychain: {e}");
            }
        }
    }

    pub(super) fn close(&self) {
        lock(&self.state).closed = true;
        self.wake.notify_one();
    }
}
