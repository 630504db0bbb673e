//! The six seams through which the broker's core reaches outside itself, each a trait with the
//! one implementation the desktop has. `keybridge-host` chooses them and hands them to
//! [`crate::Broker::open`] as [`Backends`]; nothing else names the implementations.
//!
//! | seam | trait | the desktop's |
//! |---|---|---|
//! | where secrets come from | [`SecretStore`] | the OS keychain (`keybridge_vault::KeyringStore`) |
//! | where clients, settings and revocations live | [`StateStore`] | sealed, anchored files ([`crate::state::SealedFiles`]) |
//! | where audit records go | [`AuditSink`] | the JSON-lines hash chain ([`crate::audit::AuditLog`]) |
//! | who issues and verifies access tokens | [`TokenAuthority`] | the local EdDSA authority ([`crate::tokens::TokenIssuer`]) |
//! | where else a question can be answered | [`ApprovalRelay`] | nowhere else: the window and the CLI ask this broker ([`ThisBrokerOnly`]) |
//! | where the calls a limit counts are counted | [`RateCounter`] | sliding windows in memory ([`crate::rates::InMemoryCounts`]) |

use std::sync::Arc;
use std::time::Duration;

use keybridge_broker_proto::ApprovalDecision;
use tokio::sync::broadcast;

pub use crate::state::StateStore;
pub use keybridge_vault::SecretStore;

use crate::approvals::Pending;
use crate::audit::{AuditError, AuditEvent, AuditLog, AuditRecord, Verified};
use crate::tokens::{Claims, Grant, TokenError, TokenIssuer};

/// Where audit records go: appended in order, each bound to the one before, readable back and
/// verifiable. An append that fails stops every call (the broker fails closed).
pub trait AuditSink: Send + Sync {
    /// Write one record; returns once it is kept.
    fn append(&self, event: &AuditEvent) -> Result<Arc<AuditRecord>, AuditError>;
    /// A digest of `text` under the log's key: records name arguments without holding them.
    fn keyed_digest(&self, text: &str) -> String;
    /// Records appended from now on, as they are written.
    fn subscribe(&self) -> broadcast::Receiver<Arc<AuditRecord>>;
    /// The records, oldest first, read as they are needed.
    fn records(&self) -> Result<Box<dyn Iterator<Item = AuditRecord> + Send>, AuditError>;
    /// Every record, oldest first.
    fn read_all(&self) -> Result<Vec<AuditRecord>, AuditError>;
    /// Check the whole chain; an error names the first record that does not verify.
    fn verify(&self) -> Result<Verified, AuditError>;
    /// The whole log as JSON lines, chain fields included, for the desktop's verifier.
    fn export_lines(&self) -> Result<String, AuditError>;
    /// Make the chain's end durable against being cut off now (at shutdown).
    fn anchor_now(&self);
}

impl AuditSink for AuditLog {
    fn append(&self, event: &AuditEvent) -> Result<Arc<AuditRecord>, AuditError> {
        AuditLog::append(self, event)
    }

    fn keyed_digest(&self, text: &str) -> String {
        AuditLog::keyed_digest(self, text)
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<AuditRecord>> {
        AuditLog::subscribe(self)
    }

    fn records(&self) -> Result<Box<dyn Iterator<Item = AuditRecord> + Send>, AuditError> {
        Ok(Box::new(AuditLog::records(self)?))
    }

    fn read_all(&self) -> Result<Vec<AuditRecord>, AuditError> {
        AuditLog::read_all(self)
    }

    fn verify(&self) -> Result<Verified, AuditError> {
        AuditLog::verify(self)
    }

    fn export_lines(&self) -> Result<String, AuditError> {
        AuditLog::export_lines(self)
    }

    fn anchor_now(&self) {
        AuditLog::anchor_now(self)
    }
}

/// Who issues and verifies the short-lived access tokens bridges present on every call.
pub trait TokenAuthority: Send + Sync {
    /// A token for `grant`, with the claims it carries.
    fn mint(&self, grant: &Grant) -> Result<(String, Claims), TokenError>;
    /// The claims of a token this authority issued and that is still valid.
    fn verify(&self, token: &str) -> Result<Claims, TokenError>;
    /// Sign new tokens with a new key; tokens already issued stay valid until they expire.
    /// Returns the new key's id.
    fn rotate(&self) -> Result<String, TokenError>;
    /// The id of the key new tokens are signed with.
    fn active_kid(&self) -> String;
}

impl TokenAuthority for TokenIssuer {
    fn mint(&self, grant: &Grant) -> Result<(String, Claims), TokenError> {
        TokenIssuer::mint(self, grant)
    }

    fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        TokenIssuer::verify(self, token)
    }

    fn rotate(&self) -> Result<String, TokenError> {
        TokenIssuer::rotate(self)
    }

    fn active_kid(&self) -> String {
        TokenIssuer::active_kid(self)
    }
}

/// An answer given elsewhere to a question this broker waits on; handed to
/// [`ApprovalRelay::deliver_to`].
pub type DeliverAnswer = Box<dyn Fn(&str, ApprovalDecision) + Send + Sync>;

/// Where else a question this broker waits on can be answered: through another broker (a
/// replica of a team service), which learns of it here and answers it here. The call itself
/// waits, runs and is recorded on the broker that asked.
pub trait ApprovalRelay: Send + Sync {
    /// This broker now waits on `question`. An error fails the call before anything is sent.
    fn raised(&self, question: &Pending) -> Result<(), String>;
    /// This broker stopped waiting on question `id` (answered, timed out, cancelled).
    fn settled(&self, id: &str);
    /// The questions every other broker waits on.
    fn open_questions(&self) -> Result<Vec<Pending>, String>;
    /// Answer a question, this broker's or another's, where every broker sees it: the first
    /// answer wins there, and only the winner may be obeyed.
    fn answer(&self, id: &str, decision: ApprovalDecision) -> Result<Relayed, String>;
    /// From now on, hand answers given elsewhere to this broker's questions to `deliver`.
    fn deliver_to(&self, deliver: DeliverAnswer);
}

/// What became of an answer given through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relayed {
    /// It was the first answer: the broker that asked hands it to its call.
    Won,
    /// Another answer came first, or the question expired: this one is not obeyed.
    Lost,
    /// The relay does not hold this question: only the broker that asked can answer it.
    NotHeld,
}

/// The desktop's relay: none. Only this broker's own window and CLI answer its questions.
#[derive(Debug, Default)]
pub struct ThisBrokerOnly;

impl ApprovalRelay for ThisBrokerOnly {
    fn raised(&self, _question: &Pending) -> Result<(), String> {
        Ok(())
    }

    fn settled(&self, _id: &str) {}

    fn open_questions(&self) -> Result<Vec<Pending>, String> {
        Ok(Vec::new())
    }

    fn answer(&self, _id: &str, _decision: ApprovalDecision) -> Result<Relayed, String> {
        Ok(Relayed::NotHeld)
    }

    fn deliver_to(&self, _deliver: DeliverAnswer) {}
}

/// Where the calls a client's limits count are counted: in this broker's memory on the
/// desktop; where every replica counts together in team mode, so a limit holds across them.
pub trait RateCounter: Send + Sync {
    /// Count one more of `key` now, unless `most` were counted in the `window` before; whether
    /// it was counted. An error refuses the call.
    fn admit(&self, key: &str, window: Duration, most: u32) -> Result<bool, String>;
}

/// The six seams, chosen by the host.
#[derive(Clone)]
pub struct Backends {
    pub secrets: Arc<dyn SecretStore>,
    pub state: Arc<dyn StateStore>,
    pub audit: Arc<dyn AuditSink>,
    pub tokens: Arc<dyn TokenAuthority>,
    pub approvals: Arc<dyn ApprovalRelay>,
    pub rates: Arc<dyn RateCounter>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").finish_non_exhaustive()
    }
}
