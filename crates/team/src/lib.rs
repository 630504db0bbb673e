//! Team mode's backends: the broker's seams (`keybridge_broker::seams`) on infrastructure a
//! trading team already runs, so several broker replicas share one state.
//!
//! - [`OpenBao`]: secrets (the QuantConnect tokens, the chain and seal keys) in OpenBao's KV
//!   version 2, the broker signed in with AppRole; held in memory only as secrets.
//! - [`resource`]: the OAuth 2.1 resource server in front of team mode's MCP endpoint: tokens
//!   of the team's identity provider, checked for this endpoint, mapped to `qc:` scopes.
//! - [`PgState`]: the clients, their revocations and the settings in PostgreSQL; every replica
//!   hears of a change through `LISTEN`/`NOTIFY` and takes it up before its next decision.
//! - [`PgApprovals`]: questions for approvers in PostgreSQL: a call waiting on one replica is
//!   answered through any.
//! - [`PgRates`]: the counts behind the clients' limits in PostgreSQL: a limit holds across
//!   replicas.
//! - [`PgAudit`]: the audit hash chain in PostgreSQL.
//! - [`approvers`]: the approvers' HTTP routes (people of the identity provider's approver
//!   group answer any replica's questions, never their own) and the client that signs them in.
//! - [`serve`]: `keybridge serve --team`, team mode's host: the broker on these seams, MCP over
//!   Streamable HTTP behind the resource server. One head row, locked for each append, so
//!   appends from every replica form one chain; it exports to the desktop's JSON-lines format,
//!   which the desktop's verifier checks.
//!
//! A row holds what the desktop's audit log holds, sealed with the chain key, which stays in the
//! secret store. Nothing here may put a secret into a row, a log or an error; connection errors
//! never repeat the connection string (it may carry a password).

pub mod approvers;
mod openbao;
mod pg;
mod pg_approvals;
mod pg_audit;
mod pg_rates;
mod pg_state;
pub mod resource;
pub mod serve;
mod worker;

pub use openbao::{OpenBao, OpenBaoLogin};
pub use pg::PgConfig;
pub use pg_approvals::PgApprovals;
pub use pg_audit::PgAudit;
pub use pg_rates::PgRates;
pub use pg_state::PgState;
