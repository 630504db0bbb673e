//! The Keybridge broker: everything that decides whether an MCP client's call reaches
//! QuantConnect.
//!
//! - [`tokens`]: short-lived EdDSA access tokens, with signing keys kept in the keychain and
//!   rotated without breaking tokens already issued.
//! - [`audit`]: the hash-chained audit log and its verifier.
//!
//! The broker holds QuantConnect tokens only inside [`keybridge_secret::Secret`]s and must never
//! put one in a token, an audit record, a log line or an error.

pub mod audit;
pub mod tokens;
