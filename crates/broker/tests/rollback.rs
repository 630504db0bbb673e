//! State put back or deleted while the broker was stopped is refused at the next start: the
//! seals stop forgery, the keychain anchors stop rollback.

use std::time::Duration;

use keybridge_broker::OpenError;
use keybridge_broker_proto::{AdminCommand, SettingsView};
use keybridge_testkit::{Env, data_dir};

const LONG: Duration = Duration::from_secs(30);

fn refused(result: Result<keybridge_broker::Broker, OpenError>) -> String {
    match result {
        Err(OpenError::RolledBack(message)) => message,
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("the broker started on rolled-back state"),
    }
}

#[tokio::test]
async fn an_older_clients_file_put_back_cannot_revive_a_revoked_client() {
    let mut env = Env::start(LONG).await;
    let (client, _) = env.add_client("trader", true).await;
    let file = data_dir(env.dir.path()).join("clients.json");
    let before_revocation = std::fs::read(&file).unwrap();
    env.admin(AdminCommand::ClientRevoke { client_id: client.clone() }).await.unwrap();
    env.stop().await;

    std::fs::write(&file, &before_revocation).unwrap();
    let message = refused(env.open_again(false));
    assert!(message.contains("clients.json") && message.contains("older") && message.contains("revoked"), "{message}");
    assert!(message.contains("--accept-restored-state"), "says how to recover: {message}");

    std::fs::remove_file(&file).unwrap();
    let message = refused(env.open_again(false));
    assert!(message.contains("missing"), "{message}");

    // Put back on purpose: accepted, said in the log, and anchored from then on.
    std::fs::write(&file, &before_revocation).unwrap();
    let broker = env.open_again(true).expect("accepted on purpose");
    let records = broker.audit_log().read_all().unwrap();
    assert!(records.iter().any(|r| r.event["kind"] == "restored_state_accepted"));
    drop(broker);
    env.open_again(false).expect("the restored state is the newest now");
}

#[tokio::test]
async fn deleting_the_settings_cannot_drop_a_stricter_policy() {
    let mut env = Env::start(LONG).await;
    let stricter = SettingsView {
        token_ttl_secs: 900,
        approval_timeout_secs: 60,
        policy: [("qc:live:read".to_string(), "ask".to_string())].into_iter().collect(),
    };
    env.admin(AdminCommand::SettingsUpdate { settings: stricter }).await.unwrap();
    env.stop().await;
    std::fs::remove_file(data_dir(env.dir.path()).join("settings.json")).unwrap();
    let message = refused(env.open_again(false));
    assert!(message.contains("settings.json") && message.contains("policy"), "{message}");
}

/// A bridge that made one call, and the audit files as they were after it.
async fn one_call_then_a_copy_of_the_log(env: &Env) -> (keybridge_testkit::Bridge, Vec<(std::path::PathBuf, Vec<u8>)>) {
    let (client, key) = env.add_client("read-only", true).await;
    let mut bridge = keybridge_testkit::Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    bridge.call("read_account", serde_json::json!({})).await.unwrap();
    let audit = data_dir(env.dir.path()).join("audit");
    let files: Vec<_> = std::fs::read_dir(&audit).unwrap().map(|e| e.unwrap().path()).collect();
    (bridge, files.iter().map(|p| (p.clone(), std::fs::read(p).unwrap())).collect())
}

#[tokio::test]
async fn an_audit_log_cut_back_or_deleted_is_refused() {
    let mut env = Env::start(LONG).await;
    let (mut bridge, snapshot) = one_call_then_a_copy_of_the_log(&env).await;
    bridge.call("read_account", serde_json::json!({})).await.unwrap();
    drop(bridge);
    env.stop().await;

    // The log and its head put back as they were two calls ago: they verify on their own.
    for (path, bytes) in &snapshot {
        std::fs::write(path, bytes).unwrap();
    }
    let message = refused(env.open_again(false));
    assert!(message.contains("audit log") && message.contains("ends at record"), "{message}");

    // Every record deleted and the head emptied.
    let audit = data_dir(env.dir.path()).join("audit");
    for entry in std::fs::read_dir(&audit).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("audit.") {
            std::fs::remove_file(path).unwrap();
        } else {
            std::fs::write(path, "").unwrap();
        }
    }
    let message = refused(env.open_again(false));
    assert!(message.contains("ends at record 0"), "{message}");
}

#[tokio::test]
async fn records_cut_off_after_a_kill_are_refused_once_a_moment_has_passed() {
    let env = Env::start(LONG).await;
    let (mut bridge, snapshot) = one_call_then_a_copy_of_the_log(&env).await;
    bridge.call("read_account", serde_json::json!({})).await.unwrap();
    bridge.call("read_account", serde_json::json!({})).await.unwrap();
    // No orderly stop: the broker is killed once its records have had a moment to be anchored.
    tokio::time::sleep(keybridge_broker::audit::ANCHOR_WITHIN * 2).await;
    for (path, bytes) in &snapshot {
        std::fs::write(path, bytes).unwrap();
    }
    let message = refused(env.open_again(false));
    assert!(message.contains("audit log") && message.contains("ends at record"), "{message}");
}
