//! A QuantConnect API v2 simulator: a real HTTP server on loopback that answers the
//! `/api/v2/*` endpoints with the documented response shapes, keeps coherent in-memory
//! state per account, and can inject faults (latency, 5xx, 429, malformed bodies,
//! dropped connections, requests that never get an answer).
//!
//! Tests and the app's demo mode point the QuantConnect client at [`SimHandle::base_url`];
//! the base URL is ordinary configuration, so no test-only path exists in the client.
//!
//! What this crate must never do:
//!
//! * reach the network beyond loopback: [`start`] refuses any address that is not a
//!   loopback address, and nothing here opens an outbound connection;
//! * share signing code with the client: the simulator checks the HTTP Basic signature
//!   (`sha256_hex("{api_token}:{timestamp}")`) with its own code, so one signing bug
//!   cannot pass on both sides.
//!
//! Besides the API, the server answers a few control routes that need no authentication
//! (they are only reachable on loopback): `GET /__sim/health`, `POST /__sim/faults` with
//! `{"rule": "<FaultRule text form>"}` and `DELETE /__sim/faults`.

mod api;
mod auth;
mod config;
mod fault;
mod server;
mod state;
mod util;

pub use api::ENDPOINTS;
pub use auth::check_signature;
pub use config::{SimAccount, SimConfig};
pub use fault::{Fault, FaultParseError, FaultRule};
pub use server::{RecordedRequest, SimHandle, start};
