//! The one test kit: every tier's tests start their world here, so a broker under test is set
//! up one way, the way Keybridge runs it.
//!
//! - [`Simulator`]: the QuantConnect simulator on loopback, with one account whose token the
//!   test chooses (a sentinel, for the scans that prove it never leaks).
//! - [`open_broker`] and [`Env`]: a broker on the desktop's seams (chosen by
//!   `keybridge_host::desktop_backends`, with an in-memory keychain) in a temporary folder,
//!   served on a real socket, stopped, restarted and reopened as the host does.
//! - [`wire`]: admin and bridge connections speaking the broker's wire.
//! - [`Processes`]: `keybridge serve` and the CLI as real processes with the real keychain,
//!   their environment pointing at one temporary world.
//! - [`Postgres`], [`OpenBaoServer`] and [`IdentityProvider`]: a PostgreSQL cluster, an OpenBao
//!   server and an OpenID provider of the test's own, for team mode.
//!
//! Test code only: no shipped binary may depend on it (a tidy test checks).

// The broker in-process and the wire's clients speak over a Unix socket.
#[cfg(unix)]
mod env;
mod identity;
mod openbao;
mod postgres;
mod processes;
#[cfg(unix)]
pub mod wire;

#[cfg(unix)]
pub use env::{Env, add_main_account, client_spec, data_dir, open_broker};
pub use identity::{IdentityClient, IdentityProvider, clients_dir, sign_in_at, ts_client, ts_client_launching};
pub use keybridge_host::open_desktop_broker;
pub use openbao::OpenBaoServer;
pub use postgres::Postgres;
pub use processes::Processes;
#[cfg(unix)]
pub use wire::{Bridge, admin_at, pending_at, project_args};

use keybridge_qc_sim::{SimAccount, SimConfig, SimHandle};

/// The QuantConnect simulator on loopback with one account.
pub struct Simulator {
    pub handle: SimHandle,
    /// The one account it knows: the demo's, with the token the test chose.
    pub account: SimAccount,
}

impl Simulator {
    /// A simulator whose account's token is `token`.
    pub async fn start(token: &str) -> Simulator {
        let account = SimAccount { api_token: token.into(), ..SimAccount::demo() };
        let config = SimConfig { accounts: vec![account.clone()], ..SimConfig::default() };
        let handle = keybridge_qc_sim::start(config, "127.0.0.1:0".parse().expect("a loopback address"))
            .await
            .expect("the simulator starts on loopback");
        Simulator { handle, account }
    }

    /// A simulator with the demo account and its public token.
    pub async fn demo() -> Simulator {
        Simulator::start(&SimAccount::demo().api_token).await
    }

    pub fn base_url(&self) -> String {
        self.handle.base_url()
    }
}
