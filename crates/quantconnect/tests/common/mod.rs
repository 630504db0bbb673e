//! A simulator on loopback and a client pointed at it.

#![allow(dead_code, reason = "each test file uses a different part of this module")]

use std::time::Duration;

use keybridge_qc_sim::{SimAccount, SimConfig, SimHandle};
use keybridge_quantconnect::{ClientConfig, Credentials, QcClient};

pub const USER: &str = "777001";
pub const ORG: &str = "org-test-1";

pub async fn sim(token: &str, tweak: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut config = SimConfig {
        accounts: vec![SimAccount { user_id: USER.into(), api_token: token.into(), organization_id: ORG.into() }],
        ..SimConfig::default()
    };
    tweak(&mut config);
    keybridge_qc_sim::start(config, "127.0.0.1:0".parse().unwrap()).await.expect("simulator starts")
}

/// Fast retries and short timeouts, so fault tests take milliseconds.
pub fn client(sim: &SimHandle, tweak: impl FnOnce(&mut ClientConfig)) -> QcClient {
    let mut config = ClientConfig::new(sim.base_url());
    config.backoff_base = Duration::from_millis(5);
    config.request_timeout = Duration::from_secs(5);
    tweak(&mut config);
    QcClient::new(config).unwrap()
}

pub fn creds(token: &str) -> Credentials {
    Credentials::new(USER, token.to_string())
}
