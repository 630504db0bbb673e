//! `keybridge serve` as a real process with the real OS keychain: account and client set-up
//! through the CLI, calls over the socket, SIGKILL under load, restart, `audit verify`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use keybridge_broker_proto::{
    Credential, Hello, PROTOCOL_VERSION, Request, RequestBody, Response, read_frame, write_frame,
};
use keybridge_testkit::{Processes, Simulator};
use keybridge_vault::testing::in_keyring_session;
use serde_json::{Value, json};

const SENTINEL: &str = "SENTINEL-cli-token-9e4b2a7c1d3f5e6a8b0c";

/// Run a CLI command; returns stdout, and keeps everything it printed for the leak scan.
fn run(world: &Processes, args: &[&str], stdin: Option<&str>, printed: &mut String) -> String {
    let out = world.run(args, stdin);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    printed.push_str(&stdout);
    printed.push_str(&stderr);
    assert!(out.status.success(), "keybridge {args:?} failed: {stderr}");
    stdout
}

async fn call_loop(socket: PathBuf, client: String, key: String, answered: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let Ok(mut stream) = keybridge_endpoint::connect(&socket).await else { return };
    let hello = Hello::Bridge { version: PROTOCOL_VERSION, client_id: client, client_key: Some(Credential::new(key)) };
    write_frame(&mut stream, &hello).await.unwrap();
    let Ok(Response::Welcome { session }) = read_frame(&mut stream).await else { panic!("not welcomed") };
    let mut id = 0;
    while !stop.load(Ordering::SeqCst) {
        id += 1;
        let call =
            RequestBody::Call { token: session.token.clone(), tool: "read_account".into(), arguments: json!({}) };
        if write_frame(&mut stream, &Request { id, body: call }).await.is_err() {
            return;
        }
        match read_frame::<Response, _>(&mut stream).await {
            Ok(Response::Result { .. }) => {
                answered.fetch_add(1, Ordering::SeqCst);
            }
            _ => return,
        }
    }
}

fn files_under(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
}

#[test]
fn serve_survives_sigkill_with_an_intact_audit_log_and_no_token_anywhere() {
    if !in_keyring_session("serve_survives_sigkill_with_an_intact_audit_log_and_no_token_anywhere") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sim = runtime.block_on(Simulator::start(SENTINEL));
    let account = sim.account.clone();
    let setup = Processes::new(env!("CARGO_BIN_EXE_keybridge").into(), sim.base_url(), "test");
    let mut printed = String::new();

    let mut broker = setup.serve(&[]);
    let added = run(&setup, &["account", "add", "main", "--user-id", &account.user_id], Some(SENTINEL), &mut printed);
    assert!(added.contains("\"main\""), "{added}");
    let client = run(
        &setup,
        &["client", "add", "Load test", "--account", "main", "--preset", "research", "--key", "--json"],
        None,
        &mut printed,
    );
    let client: Value = serde_json::from_str(&client).unwrap();
    let (id, key) =
        (client["client_id"].as_str().unwrap().to_string(), client["client_key"].as_str().unwrap().to_string());
    run(&setup, &["account", "test", "main"], None, &mut printed);
    // As fast as they can is far past a trader's client's default calls a minute.
    run(&setup, &["client", "update", &id, "--calls-per-minute", "1000000"], None, &mut printed);

    // Four bridges call as fast as they can; the broker is killed mid-flight.
    let answered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let loops: Vec<_> = (0..4)
        .map(|_| {
            runtime.spawn(call_loop(setup.socket.clone(), id.clone(), key.clone(), answered.clone(), stop.clone()))
        })
        .collect();
    runtime.block_on(async {
        while answered.load(Ordering::SeqCst) < 200 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    broker.kill().unwrap(); // SIGKILL
    broker.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for task in loops {
        runtime.block_on(task).unwrap();
    }
    let answered = answered.load(Ordering::SeqCst);

    // A new broker opens the log (it refuses a broken one) and the chain verifies.
    let mut broker = setup.serve(&[]);
    let verified = run(&setup, &["audit", "verify"], None, &mut printed);
    assert!(verified.contains("\"intact\": true"), "{verified}");
    let tail = run(&setup, &["audit", "tail", "--last", "100000", "--json"], None, &mut printed);
    let calls = tail.lines().filter(|l| l.contains("\"tool_call\"") && l.contains("\"ok\"")).count() as u64;
    eprintln!("SIGKILL under load: {answered} calls answered, {calls} call records in the log");
    assert!(
        calls >= answered && calls <= answered + 4,
        "every answered call is in the log, and at most the 4 in flight besides: {calls} records, {answered} answered"
    );
    run(&setup, &["client", "revoke", &id], None, &mut printed);
    broker.kill().unwrap();
    broker.wait().unwrap();

    let mut files = Vec::new();
    files_under(setup.home.path(), &mut files);
    for (path, bytes) in files {
        assert!(!String::from_utf8_lossy(&bytes).contains(SENTINEL), "the token is in {}", path.display());
    }
    assert!(!printed.contains(SENTINEL), "the CLI printed the token");
}
