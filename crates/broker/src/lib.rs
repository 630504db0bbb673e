//! The Keybridge broker: everything that decides whether an MCP client's call reaches
//! QuantConnect.
//!
//! - [`tokens`]: short-lived EdDSA access tokens, with signing keys kept in the keychain and
//!   rotated without breaking tokens already issued.
//! - [`audit`]: the hash-chained audit log and its verifier.
//! - [`anchor`]: generations kept in the keychain, so state put back or deleted is refused.
//! - [`Broker`]: authentication of bridges (host-bound pairing or client keys), authorization
//!   of every call (token, revocation, pause, scope, policy), approvals, execution through the
//!   QuantConnect client with a concurrency limit per account, and an audit record for each.
//!
//! The broker holds QuantConnect tokens only inside [`keybridge_secret::Secret`]s and must never
//! put one in a token, an audit record, a log line or an error.

pub mod anchor;
pub mod approvals;
pub mod audit;
mod broker;
pub mod clients;
mod error;
pub mod peer;
pub mod policy;
mod primitives;
pub mod rates;
mod sealed;
pub mod seams;
pub mod server;
pub mod settings;
pub mod state;
mod text;
pub mod tokens;

pub use broker::{Broker, BrokerConfig, MAX_WAITING_PER_SESSION, default_data_dir, install_id};
pub use error::{BrokerError, OpenError};
pub use keybridge_endpoint::current_uid as own_uid;
pub use primitives::KeychainKeyError;
pub use text::{canonical, masked, plain_text, redact};
