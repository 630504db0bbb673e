//! A sentinel API token must never show up in formatting, errors or logs, whatever happens.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client, creds, sim};
use keybridge_catalog::find;
use keybridge_qc_sim::{Fault, FaultRule};
use serde_json::{Value, json};

const SENTINEL: &str = "SENTINEL-qc-token-7f3a9c1e5b2d4f6a8c0e";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_token_appears_in_no_debug_output_error_or_log_line() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut seen = Vec::new();
    runtime.block_on(async {
        let sim = sim(SENTINEL, |c| c.clock_offset_secs = 7200).await;
        let c = client(&sim, |c| c.request_timeout = Duration::from_millis(300));
        let good = creds(SENTINEL);
        seen.push(format!("{good:?} {c:?}"));
        let account = find("read_account").unwrap();
        seen.push(format!("{:?}", c.call(&good, account, Value::Null).await));
        seen.push(format!("{:?}", c.call(&creds("wrong"), account, Value::Null).await));
        for fault in [Fault::ServerError(500), Fault::MalformedJson, Fault::DropConnection, Fault::Timeout] {
            sim.add_fault(FaultRule { endpoint: None, fault, times: Some(3) });
            let result = c.call(&good, account, Value::Null).await;
            seen.push(format!("{result:?}"));
            if let Err(e) = result {
                seen.push(e.to_string());
            }
            sim.clear_faults();
        }
        let upload = find("upload_object").unwrap();
        let args = json!({"organizationId": common::ORG, "key": "k", "objectData": "data"});
        seen.push(format!("{:?}", c.call(&good, upload, args).await));
        seen.push(format!("{:?}", c.call(&good, upload, json!({"key": 1})).await));
        seen.push(format!("{:?}", sim.requests()));
    });
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("quantconnect request"), "the client logged at all (else this test proves nothing)");
    for text in seen.iter().chain([&logs]) {
        assert!(!text.contains(SENTINEL), "the API token leaked: {text}");
    }
}
