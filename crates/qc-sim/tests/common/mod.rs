//! Test helpers: a tiny QuantConnect client with its own signing code (written apart
//! from both the product's client and the simulator's checker).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use keybridge_qc_sim::{SimAccount, SimConfig, SimHandle};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

pub async fn start(config: SimConfig) -> SimHandle {
    keybridge_qc_sim::start(config, loopback()).await.expect("simulator starts")
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub fn password(token: &str, timestamp: i64) -> String {
    let mut h = Sha256::new();
    h.update(token.as_bytes());
    h.update(b":");
    h.update(timestamp.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub account: SimAccount,
}

impl Client {
    pub fn new(sim: &SimHandle, account: SimAccount) -> Client {
        Client { http: http(), base: sim.base_url(), account }
    }

    pub fn demo(sim: &SimHandle) -> Client {
        Client::new(sim, SimAccount::demo())
    }

    pub fn url(&self, endpoint: &str) -> String {
        format!("{}{endpoint}", self.base)
    }

    pub fn signed(&self, endpoint: &str, timestamp: i64) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(endpoint))
            .header("Authorization", basic(&self.account.user_id, &password(&self.account.api_token, timestamp)))
            .header("Timestamp", timestamp.to_string())
    }

    pub async fn post(&self, endpoint: &str, body: &Value) -> reqwest::Response {
        self.signed(endpoint, unix_now())
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{endpoint}: request failed: {e}"))
    }

    /// Posts and returns the JSON body of a 200 answer, whatever its `success`.
    pub async fn raw(&self, endpoint: &str, body: Value) -> Value {
        let res = self.post(endpoint, &body).await;
        assert_eq!(res.status(), 200, "{endpoint}: HTTP status");
        res.json().await.unwrap_or_else(|e| panic!("{endpoint}: body is not JSON: {e}"))
    }

    /// Posts and returns the body, asserting `success: true`.
    pub async fn ok(&self, endpoint: &str, body: Value) -> Value {
        let v = self.raw(endpoint, body.clone()).await;
        assert_eq!(v["success"], Value::Bool(true), "{endpoint} with {body} answered {v}");
        v
    }

    /// Posts and returns the `errors`, asserting `success: false`.
    pub async fn fails(&self, endpoint: &str, body: Value) -> Vec<String> {
        let v = self.raw(endpoint, body.clone()).await;
        assert_eq!(v["success"], Value::Bool(false), "{endpoint} with {body} should fail, answered {v}");
        v["errors"]
            .as_array()
            .expect("errors array")
            .iter()
            .map(|e| e.as_str().expect("error text").to_owned())
            .collect()
    }
}

pub fn config_with_reads(n: u32) -> SimConfig {
    SimConfig { backtest_reads_until_complete: n, ..SimConfig::default() }
}
