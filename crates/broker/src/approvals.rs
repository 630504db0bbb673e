//! Calls waiting for the human: pending approvals, their answers, and time-boxed allowances.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keybridge_broker_proto::ApprovalDecision;
use tokio::sync::oneshot;

use crate::primitives::{lock, now};

pub use keybridge_broker_proto::{ApprovalKind, ApprovalView as Pending};

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Approved,
    /// Approved, and the tool may run without asking in this session until the given time.
    ApprovedFor(Duration),
    Denied,
    TimedOut,
}

struct Entry {
    pending: Pending,
    answer: Option<oneshot::Sender<ApprovalDecision>>,
}

/// The pending approvals of a broker and the allowances granted so far.
#[derive(Default)]
pub struct Approvals {
    pending: Mutex<HashMap<String, Entry>>,
    /// (session, tool) → until.
    allowances: Mutex<HashMap<(String, String), Instant>>,
    /// Questions each session is about to ask or is asking: reserved before anything is looked
    /// up, so concurrent calls cannot all pass the cap and then all ask.
    reserved: Mutex<HashMap<String, usize>>,
}

/// A session's place among the questions it may have open; given back when dropped.
pub struct Reservation<'a> {
    approvals: &'a Approvals,
    session: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut reserved = lock(&self.approvals.reserved);
        if let Some(count) = reserved.get_mut(&self.session) {
            *count -= 1;
            if *count == 0 {
                reserved.remove(&self.session);
            }
        }
    }
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals").finish_non_exhaustive()
    }
}

/// A registered approval: await [`Ticket::wait`] for the human's answer.
pub struct Ticket {
    pub pending: Pending,
    receiver: oneshot::Receiver<ApprovalDecision>,
    timeout: Duration,
}

impl Approvals {
    /// Register a request; it is listed until answered or timed out.
    pub fn open(&self, mut pending: Pending, timeout: Duration) -> Ticket {
        let (tx, rx) = oneshot::channel();
        pending.created = now();
        pending.expires = pending.created + timeout.as_secs();
        lock(&self.pending).insert(pending.id.clone(), Entry { pending: pending.clone(), answer: Some(tx) });
        Ticket { pending, receiver: rx, timeout }
    }

    /// Wait for the answer; a timeout is a denial. The request is withdrawn either way.
    pub async fn wait(&self, ticket: Ticket) -> Outcome {
        let id = ticket.pending.id.clone();
        let outcome = match tokio::time::timeout(ticket.timeout, ticket.receiver).await {
            Ok(Ok(ApprovalDecision::Approve)) => Outcome::Approved,
            Ok(Ok(ApprovalDecision::AllowFor { minutes })) => {
                Outcome::ApprovedFor(Duration::from_secs(u64::from(minutes.clamp(1, 24 * 60)) * 60))
            }
            Ok(Ok(ApprovalDecision::Deny)) | Ok(Err(_)) => Outcome::Denied,
            Err(_) => Outcome::TimedOut,
        };
        self.withdraw(&id);
        outcome
    }

    /// Remove a request without an answer (the caller gave up waiting).
    pub fn withdraw(&self, id: &str) {
        lock(&self.pending).remove(id);
    }

    /// Answer a request. Returns the request, or `None` if it is not pending any more.
    pub fn decide(&self, id: &str, decision: ApprovalDecision) -> Option<Pending> {
        let mut pending = lock(&self.pending);
        let entry = pending.get_mut(id)?;
        let sender = entry.answer.take()?;
        let shown = entry.pending.clone();
        pending.remove(id);
        sender.send(decision).ok()?;
        Some(shown)
    }

    /// Deny every pending request that `matches` (on pause, revocation, session end): a stale
    /// question must not be answerable after the human pulled the plug.
    pub fn deny_where(&self, matches: impl Fn(&Pending) -> bool) -> usize {
        let mut pending = lock(&self.pending);
        let ids: Vec<String> = pending.values().filter(|e| matches(&e.pending)).map(|e| e.pending.id.clone()).collect();
        for id in &ids {
            if let Some(mut entry) = pending.remove(id)
                && let Some(answer) = entry.answer.take()
            {
                let _ = answer.send(ApprovalDecision::Deny);
            }
        }
        ids.len()
    }

    /// Take one of the `max` places `session` has for open questions, or `None` when all are
    /// taken. Checking and taking are one step.
    pub fn reserve(&self, session: &str, max: usize) -> Option<Reservation<'_>> {
        let mut reserved = lock(&self.reserved);
        let count = reserved.entry(session.to_string()).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Reservation { approvals: self, session: session.to_string() })
    }

    pub fn list(&self) -> Vec<Pending> {
        let mut list: Vec<Pending> = lock(&self.pending).values().map(|e| e.pending.clone()).collect();
        // A stable order: cards must not swap places under the human's pointer.
        list.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        list
    }

    pub fn allow_for(&self, session: &str, tool: &str, duration: Duration) {
        lock(&self.allowances).insert((session.to_string(), tool.to_string()), Instant::now() + duration);
    }

    /// Whether a time-boxed allowance covers this tool in this session now.
    pub fn allowed(&self, session: &str, tool: &str) -> bool {
        let mut allowances = lock(&self.allowances);
        let key = (session.to_string(), tool.to_string());
        match allowances.get(&key) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                allowances.remove(&key);
                false
            }
            None => false,
        }
    }

    /// The allowances in force: session, tool, and how long each has left.
    pub fn standing(&self) -> Vec<(String, String, Duration)> {
        let now = Instant::now();
        let mut standing: Vec<_> = lock(&self.allowances)
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|((session, tool), until)| (session.clone(), tool.clone(), *until - now))
            .collect();
        standing.sort();
        standing
    }

    /// End one allowance now; whether there was one.
    pub fn revoke(&self, session: &str, tool: &str) -> bool {
        lock(&self.allowances).remove(&(session.to_string(), tool.to_string())).is_some()
    }

    /// Forget the allowances of an ended session.
    pub fn end_session(&self, session: &str) {
        lock(&self.allowances).retain(|(s, _), _| s != session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: &str) -> Pending {
        Pending {
            preview: None,
            code: None,
            host: None,
            host_program: None,
            id: id.into(),
            kind: ApprovalKind::ToolCall,
            client_id: "c".into(),
            client_name: "C".into(),
            session_id: Some("s".into()),
            account: "main".into(),
            tool: Some("stop_live_algorithm".into()),
            scope: Some("qc:live:execute".into()),
            summary: "stop".into(),
            arguments: serde_json::json!({"projectId": 1}),
            arguments_digest: "d".into(),
            created: 0,
            expires: 0,
        }
    }

    #[tokio::test]
    async fn an_allowance_expires_on_time_and_only_covers_its_session_and_tool() {
        let approvals = Approvals::default();
        approvals.allow_for("s", "stop_live_algorithm", Duration::from_millis(150));
        assert!(approvals.allowed("s", "stop_live_algorithm"));
        assert!(!approvals.allowed("other-session", "stop_live_algorithm"));
        assert!(!approvals.allowed("s", "liquidate_live_algorithm"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!approvals.allowed("s", "stop_live_algorithm"), "expired");
    }

    #[tokio::test]
    async fn a_timeout_is_a_denial_and_withdraws_the_request() {
        let approvals = Approvals::default();
        let ticket = approvals.open(pending("a1"), Duration::from_millis(50));
        assert_eq!(approvals.list().len(), 1);
        assert_eq!(approvals.wait(ticket).await, Outcome::TimedOut);
        assert!(approvals.list().is_empty());
        assert!(approvals.decide("a1", ApprovalDecision::Approve).is_none(), "too late to approve");
    }

    #[tokio::test]
    async fn decisions_reach_the_waiting_call() {
        let approvals = std::sync::Arc::new(Approvals::default());
        let ticket = approvals.open(pending("a2"), Duration::from_secs(5));
        let deciding = approvals.clone();
        tokio::spawn(async move { deciding.decide("a2", ApprovalDecision::AllowFor { minutes: 3 }) });
        assert_eq!(approvals.wait(ticket).await, Outcome::ApprovedFor(Duration::from_secs(180)));
    }

    #[test]
    fn a_session_gets_back_its_places_as_questions_end_and_sessions_do_not_share_them() {
        let approvals = Approvals::default();
        let mut held: Vec<_> = (0..3).map(|_| approvals.reserve("s", 3).expect("a place")).collect();
        assert!(approvals.reserve("s", 3).is_none(), "all three places are taken");
        assert!(approvals.reserve("other", 3).is_some(), "another session has places of its own");
        held.pop();
        let again = approvals.reserve("s", 3).expect("a place given back is free again");
        assert!(approvals.reserve("s", 3).is_none());
        drop(again);
        assert_eq!(approvals.reserved.lock().unwrap().get("s"), Some(&2));
    }

    #[test]
    fn the_last_place_given_back_leaves_nothing_behind() {
        let approvals = Approvals::default();
        let first = approvals.reserve("s", 2).unwrap();
        let second = approvals.reserve("s", 2).unwrap();
        drop(first);
        assert_eq!(approvals.reserved.lock().unwrap().get("s"), Some(&1));
        drop(second);
        assert!(approvals.reserved.lock().unwrap().is_empty(), "no count kept for a session with none open");
    }

    #[tokio::test]
    async fn denying_what_matches_answers_only_those_and_says_how_many() {
        let approvals = Approvals::default();
        let mut other = pending("b1");
        other.session_id = Some("t".into());
        let (mine, theirs) =
            (approvals.open(pending("a3"), Duration::from_secs(5)), approvals.open(other, Duration::from_secs(5)));
        assert_eq!(approvals.deny_where(|p| p.session_id.as_deref() == Some("s")), 1);
        assert_eq!(approvals.wait(mine).await, Outcome::Denied);
        assert_eq!(approvals.list().len(), 1, "the other session's question stays");
        assert!(approvals.decide("b1", ApprovalDecision::Approve).is_some());
        assert_eq!(approvals.wait(theirs).await, Outcome::Approved);
    }

    #[test]
    fn questions_are_listed_oldest_first_and_an_allowance_ends_with_its_session() {
        let approvals = Approvals::default();
        let mut late = pending("a9");
        late.created = 0;
        let _b = approvals.open(pending("b0"), Duration::from_secs(5));
        let _a = approvals.open(late, Duration::from_secs(5));
        let ids: Vec<String> = approvals.list().into_iter().map(|p| p.id).collect();
        assert_eq!(ids, ["a9", "b0"], "same second: by id");
        approvals.allow_for("s", "stop_live_algorithm", Duration::from_secs(60));
        approvals.allow_for("t", "stop_live_algorithm", Duration::from_secs(60));
        approvals.end_session("s");
        assert!(!approvals.allowed("s", "stop_live_algorithm"));
        assert!(approvals.allowed("t", "stop_live_algorithm"), "another session keeps its allowance");
    }

    #[tokio::test]
    async fn an_allowance_is_at_least_a_minute_and_at_most_a_day() {
        let approvals = std::sync::Arc::new(Approvals::default());
        for (minutes, seconds) in [(0, 60), (5000, 24 * 60 * 60)] {
            let id = format!("m{minutes}");
            let ticket = approvals.open(pending(&id), Duration::from_secs(5));
            approvals.decide(&id, ApprovalDecision::AllowFor { minutes });
            assert_eq!(approvals.wait(ticket).await, Outcome::ApprovedFor(Duration::from_secs(seconds)));
        }
    }

    #[test]
    fn a_question_says_when_it_was_asked_and_when_it_expires() {
        let approvals = Approvals::default();
        let before = now();
        let ticket = approvals.open(pending("t1"), Duration::from_secs(90));
        let listed = &approvals.list()[0];
        assert!(listed.created >= before && listed.created <= before + 2, "asked now: {}", listed.created);
        assert_eq!(listed.expires, listed.created + 90);
        assert_eq!((ticket.pending.created, ticket.pending.expires), (listed.created, listed.expires));
    }
}
