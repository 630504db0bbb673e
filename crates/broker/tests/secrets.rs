//! A sentinel QuantConnect token must appear nowhere the broker writes or answers.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keybridge_broker_proto::AdminCommand;
use keybridge_testkit::{Bridge, Env};
use serde_json::json;

const SENTINEL: &str = "SENTINEL-broker-token-5d1c8e7a2b9f4c3d6e0a";

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

fn files_under(dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
}

#[tokio::test]
async fn the_token_is_in_no_file_record_answer_error_or_log() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = Env::start_with(Duration::from_secs(1), SENTINEL.to_string()).await;
    let mut seen: Vec<String> = Vec::new();
    let (client, key) = env.add_client("admin", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    seen.push(format!("{:?}", bridge.session));
    seen.push(format!("{:?}", bridge.call("read_account", json!({})).await));
    seen.push(format!("{:?}", bridge.call("read_backtest", json!({"projectId": 5, "backtestId": "nope"})).await));
    seen.push(format!("{:?}", bridge.call("delete_project", json!({"projectId": 5})).await));
    seen.push(format!("{:?}", bridge.call("read_backtest", json!({"projectId": "x"})).await));
    env.sim.add_fault(keybridge_qc_sim::FaultRule {
        endpoint: None,
        fault: keybridge_qc_sim::Fault::ServerError(500),
        times: None,
    });
    seen.push(format!("{:?}", bridge.call("read_account", json!({})).await));
    for command in [
        AdminCommand::Status,
        AdminCommand::AccountList,
        AdminCommand::AccountTest { name: "main".into() },
        AdminCommand::ClientList,
        AdminCommand::AuditTail { last: 1000, follow: false },
        AdminCommand::AuditVerify,
    ] {
        seen.push(format!("{:?}", env.admin(command).await));
    }
    seen.push(format!("{:?}", env.broker));
    let mut files = Vec::new();
    files_under(env.dir.path(), &mut files);
    assert!(files.iter().any(|(name, _)| name.contains("audit.")), "the audit log was written");
    for (name, bytes) in &files {
        assert!(!String::from_utf8_lossy(bytes).contains(SENTINEL), "the token is in {name}");
    }
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for text in seen.iter().chain([&logs]) {
        assert!(!text.contains(SENTINEL), "the token leaked: {text}");
    }
}
