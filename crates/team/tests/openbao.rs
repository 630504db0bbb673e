//! Secrets in a real OpenBao server: AppRole sign-in, the KV round trip, refusals that say what
//! to grant, a token that runs out, and a broker whose every secret lives there.

use std::sync::Arc;
use std::time::Duration;

use keybridge_broker::seams::SecretStore;
use keybridge_broker_proto::AdminCommand;
use keybridge_team::{OpenBao, OpenBaoLogin};
use keybridge_testkit::{OpenBaoServer, Simulator};
use keybridge_vault::SecretString;

const PREFIX: &str = "keybridge/team-a";

fn signed_in(server: &OpenBaoServer, role: &str, paths: &[&str], ttl_secs: u64) -> OpenBao {
    let (role_id, secret_id) = server.approle(role, paths, ttl_secs);
    let login = OpenBaoLogin::AppRole { role_id, secret_id: SecretString::from(secret_id) };
    OpenBao::connect(&server.address, "secret", PREFIX, login).unwrap()
}

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_string())
}

#[test]
fn secrets_go_to_openbao_and_come_back_through_approle() {
    let server = OpenBaoServer::start();
    let store = signed_in(&server, "broker", &["keybridge/team-a"], 600);
    assert!(store.get("qc-token:main").unwrap().is_none(), "nothing there at first");
    store.set("qc-token:main", &secret("first")).unwrap();
    store.set("qc-token:main", &secret("second")).unwrap();
    assert_eq!(store.get("qc-token:main").unwrap().unwrap().expose(), "second");
    // Where an operator finds it.
    let stored = server.api("GET", "secret/data/keybridge/team-a/qc-token%3Amain", None, &[]);
    assert_eq!(stored.pointer("/data/data/value").and_then(|v| v.as_str()), Some("second"));
    store.delete("qc-token:main").unwrap();
    store.delete("qc-token:main").expect("deleting what is gone succeeds");
    assert!(store.get("qc-token:main").unwrap().is_none());
    assert!(!format!("{store:?}").contains("second"));
}

#[test]
fn a_role_whose_policy_does_not_cover_the_path_is_told_what_to_grant() {
    let server = OpenBaoServer::start();
    let store = signed_in(&server, "elsewhere", &["keybridge/another-team"], 600);
    let refused = store.set("qc-token:main", &secret("x")).unwrap_err().to_string();
    assert!(refused.contains("403") && refused.contains("policy must allow"), "{refused}");
    assert!(refused.contains("secret/keybridge/team-a/qc-token:main"), "names the secret: {refused}");

    let (role_id, _) = server.approle("broker", &[PREFIX], 600);
    let login = OpenBaoLogin::AppRole { role_id: role_id.clone(), secret_id: secret("not-the-secret-id") };
    let refused = OpenBao::connect(&server.address, "secret", PREFIX, login).unwrap_err().to_string();
    assert!(refused.contains(&role_id) && refused.contains("secret id"), "{refused}");
    assert!(!refused.contains("not-the-secret-id"), "the secret id is never repeated: {refused}");
}

#[test]
fn a_token_that_runs_out_is_replaced_by_signing_in_again() {
    let server = OpenBaoServer::start();
    let store = signed_in(&server, "short", &[PREFIX], 2);
    store.set("state-key:i", &secret("k")).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(store.get("state-key:i").unwrap().unwrap().expose(), "k", "signed in again");
}

const SENTINEL: &str = "SENTINEL-openbao-token-8c2f4e6a1b3d5f70";

#[test]
fn a_broker_on_openbao_keeps_every_secret_there_and_the_token_nowhere_else() {
    let server = OpenBaoServer::start();
    let store = signed_in(&server, "broker", &[PREFIX], 600);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The test's blocking HTTP client (the operator's) stays outside the broker's runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut seen = runtime.block_on(async {
        let sim = Simulator::start(SENTINEL).await;
        let secrets: Arc<dyn SecretStore> = Arc::new(store);
        let broker = keybridge_testkit::open_broker(&data, &sim.base_url(), Duration::from_secs(10), secrets).unwrap();
        keybridge_testkit::add_main_account(&broker, &sim.account, SENTINEL).await;
        broker.admin(AdminCommand::AccountTest { name: "main".into() }).await.unwrap();
        broker.admin(AdminCommand::Pause).await.unwrap();
        let export = broker.admin(AdminCommand::AuditExport).await.unwrap().to_wire();
        let mut seen = vec![export.to_string(), format!("{broker:?}")];
        seen.extend(broker.audit_log().read_all().unwrap().iter().map(|record| record.event.to_string()));
        seen
    });

    // Every secret the broker keeps is in OpenBao: the token, the keys, the pause.
    let listed = server.api("LIST", "secret/metadata/keybridge/team-a", None, &[]);
    let names: Vec<&str> =
        listed.pointer("/data/keys").and_then(|k| k.as_array()).unwrap().iter().filter_map(|k| k.as_str()).collect();
    for kind in ["qc-token:main", "state-key:", "audit-chain-key:", "jwt-signing-key:", "paused:"] {
        assert!(names.iter().any(|name| name.starts_with(kind)), "no {kind} among {names:?}");
    }
    let stored = server.api("GET", "secret/data/keybridge/team-a/qc-token%3Amain", None, &[]);
    assert_eq!(stored.pointer("/data/data/value").and_then(|v| v.as_str()), Some(SENTINEL));

    // And the token is nowhere else: no file of the broker, no record, no answer, no server log.
    seen.push(server.log());
    let mut files = vec![data.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().flatten().map(|e| e.path()));
        } else {
            seen.push(String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_string());
        }
    }
    for text in seen {
        assert!(!text.contains(SENTINEL), "the token leaked: {text:.200}");
    }
}

#[test]
fn a_redirect_is_not_followed_and_the_token_goes_nowhere_else() {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    // Where a redirect would send the token: it must never be reached.
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("http://{}/v1/auth/token/lookup-self", elsewhere.local_addr().unwrap());
    elsewhere.set_nonblocking(true).unwrap();
    let redirecting = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", redirecting.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in redirecting.incoming().flatten().take(4) {
            let mut stream = stream;
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let reply = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    let refused = OpenBao::connect(&address, "secret", PREFIX, OpenBaoLogin::Token(secret("hvs.sentinel-token")))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("307"), "{refused}");
    assert!(!refused.contains("hvs.sentinel-token"));
    assert!(elsewhere.accept().is_err(), "the redirect's target was reached");
}
