//! Two broker replicas on one PostgreSQL: clients made through one are known to the other, a
//! revocation made through one refuses the next call on the other within a second, a question
//! raised on one is answered through the other, a caller's limit holds across both, and both
//! write one audit chain.
//!
//! The replicas share the account registry and the keychain stand-in (the registry is still a
//! file in the data folder: it is not in the database yet).

use std::sync::Arc;
use std::time::{Duration, Instant};

use keybridge_broker::seams::SecretStore;
use keybridge_broker::{Broker, BrokerConfig, server};
use keybridge_broker_proto::{AdminCommand, AdminReply, ErrorCode};
use keybridge_team::{PgApprovals, PgAudit, PgRates, PgState};
use keybridge_testkit::{Bridge, Postgres, Simulator};
use keybridge_vault::MemoryStore;
use serde_json::json;

fn replica(
    postgres: &Postgres,
    data: &std::path::Path,
    base_url: &str,
    secrets: &Arc<dyn SecretStore>,
    name: &str,
) -> Broker {
    let config = BrokerConfig::new(data, base_url);
    let mut backends = keybridge_host::desktop_backends(&config, secrets.clone()).unwrap();
    let key =
        keybridge_broker::audit::chain::ChainKey::load_or_create(secrets.as_ref(), "audit-chain-key:team").unwrap().0;
    backends.audit = Arc::new(PgAudit::connect(&database(postgres), key, name).unwrap());
    backends.state = Arc::new(PgState::connect(&database(postgres)).unwrap());
    backends.approvals = Arc::new(PgApprovals::connect(&database(postgres), name).unwrap());
    backends.rates = Arc::new(PgRates::connect(&database(postgres)).unwrap());
    Broker::open(config, backends).unwrap()
}

/// Two replicas on one database, sharing the data folder and the secrets.
struct Pair {
    postgres: Postgres,
    sim: Simulator,
    dir: tempfile::TempDir,
    a: Arc<Broker>,
    b: Arc<Broker>,
}

impl Pair {
    async fn start() -> Pair {
        let postgres = Postgres::start();
        let sim = Simulator::demo().await;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let secrets: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let a = Arc::new(replica(&postgres, &data, &sim.base_url(), &secrets, "a"));
        let b = Arc::new(replica(&postgres, &data, &sim.base_url(), &secrets, "b"));
        Pair { postgres, sim, dir, a, b }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_replica_refuses_the_next_call_on_the_other_within_a_second() {
    let Pair { postgres: _postgres, sim, dir, a, b } = Pair::start().await;
    let socket_b = dir.path().join("run").join("b.sock");
    let listener = server::bind(&socket_b).unwrap();
    tokio::spawn(server::serve(listener, b.clone(), std::future::pending()));

    // Set up through A.
    keybridge_testkit::add_main_account(&a, &sim.account, &sim.account.api_token).await;
    let spec = keybridge_testkit::client_spec("desk", "research", true);
    let AdminReply::ClientAdded(added) = a.admin(AdminCommand::ClientAdd { spec }).await.unwrap() else { panic!() };
    let key = added.client_key.unwrap();

    // B knows the client A made, and serves it.
    let mut bridge = Bridge::connect(&socket_b, &added.client_id, Some(&key)).await.expect("B knows the client");
    bridge.call("read_account", json!({})).await.expect("B serves it");

    // Revoked through A: B refuses the next call, within a second.
    a.admin(AdminCommand::ClientRevoke { client_id: added.client_id.clone() }).await.unwrap();
    let revoked = Instant::now();
    let refused = loop {
        match bridge.call("read_account", json!({})).await {
            Err(error) => break error,
            Ok(_) => {
                assert!(revoked.elapsed() < Duration::from_secs(1), "B still serves a client revoked through A");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    assert_eq!(refused.code, ErrorCode::Revoked, "{refused:?}");
    eprintln!("B refused the revoked client {:?} after the revocation through A", revoked.elapsed());

    // Both replicas wrote one chain.
    let records = a.audit_log().read_all().unwrap();
    assert!(records.iter().any(|r| r.event["kind"] == "tool_call"), "B's call is on the shared chain");
    assert!(records.iter().any(|r| r.event["kind"] == "admin"), "A's changes are on it");
    assert!(b.audit_log().verify().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_writing_an_older_copy_of_a_revoked_client_cannot_bring_it_back() {
    use keybridge_broker::seams::StateStore;
    let postgres = Postgres::start();
    let sim = Simulator::demo().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let a = replica(&postgres, &dir.path().join("data"), &sim.base_url(), &secrets, "a");
    keybridge_testkit::add_main_account(&a, &sim.account, &sim.account.api_token).await;
    let spec = keybridge_testkit::client_spec("desk", "research", true);
    let AdminReply::ClientAdded(added) = a.admin(AdminCommand::ClientAdd { spec }).await.unwrap() else { panic!() };

    // Another replica's copy, taken before the revocation.
    let store = PgState::connect(&database(&postgres)).unwrap();
    let older = store.load_clients().unwrap().into_iter().find(|c| c.id == added.client_id).unwrap();
    assert!(!older.revoked);
    a.admin(AdminCommand::ClientRevoke { client_id: added.client_id.clone() }).await.unwrap();

    // That replica changes something else on its older copy and writes it.
    let mut stale = older.clone();
    stale.name = "desk (renamed)".into();
    store.save_clients(&[], &stale, true).unwrap();
    let now = store.load_clients().unwrap().into_iter().find(|c| c.id == added.client_id).unwrap();
    assert!(now.revoked, "an older copy written after the revocation brought the client back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_answered_through_one_replica_releases_the_call_waiting_on_the_other() {
    use keybridge_broker_proto::ApprovalDecision;
    use keybridge_catalog::Scope;
    let Pair { postgres: _postgres, sim, dir: _dir, a, b } = Pair::start().await;
    keybridge_testkit::add_main_account(&a, &sim.account, &sim.account.api_token).await;
    let spec = keybridge_testkit::client_spec("desk", "admin", false);
    let AdminReply::ClientAdded(added) = a.admin(AdminCommand::ClientAdd { spec }).await.unwrap() else { panic!() };

    // Alice's call on B deletes a project: it waits for an approver.
    let everything = Scope::ALL.iter().copied().collect();
    let session = b.session_for_principal(&added.client_id, "alice", &everything).unwrap();
    let created = b
        .call(
            Some(&session.session_id),
            &session.token,
            "create_project",
            json!({"name": "M", "language": "Py"}),
            |_| {},
        )
        .await
        .unwrap();
    let project = created["projects"][0]["projectId"].as_i64().unwrap();
    let waiting = {
        let (b, session) = (b.clone(), session.clone());
        tokio::spawn(async move {
            let delete = json!({"projectId": project});
            b.call(Some(&session.session_id), &session.token, "delete_project", delete, |_| {}).await
        })
    };

    // A lists B's question.
    let question = loop {
        let AdminReply::Approvals(open) = a.admin(AdminCommand::ApprovalsList).await.unwrap() else { panic!() };
        if let Some(question) = open.into_iter().next() {
            break question;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(question.tool.as_deref(), Some("delete_project"));
    assert_eq!(question.host.as_deref(), Some("alice"), "the question says whose call it is");

    // Alice cannot approve her own call, through any replica.
    let own = a.answer_question(&question.id, ApprovalDecision::Approve, Some("alice")).unwrap_err().to_string();
    assert!(own.contains("nobody approves their own request"), "{own}");
    assert!(!waiting.is_finished(), "refusing alice's answer did not end the wait");

    // Bob approves through A; B's call runs.
    let answered = Instant::now();
    a.answer_question(&question.id, ApprovalDecision::Approve, Some("bob")).unwrap();
    let done = waiting.await.unwrap();
    eprintln!("B's call ran {:?} after the approval through A", answered.elapsed());
    done.expect("the call approved through A runs on B");
    assert!(answered.elapsed() < Duration::from_secs(1));
    assert_eq!(sim.handle.request_count("/projects/delete"), 1, "the approved delete reached QuantConnect once");

    // Answered once: a second answer, through either replica, finds nothing open.
    let again = b.answer_question(&question.id, ApprovalDecision::Deny, Some("carol")).unwrap_err().to_string();
    assert!(again.contains("no pending approval"), "{again}");
    let AdminReply::Approvals(open) = a.admin(AdminCommand::ApprovalsList).await.unwrap() else { panic!() };
    assert!(open.is_empty(), "the question is gone once B stopped waiting: {open:?}");
    let records = a.audit_log().read_all().unwrap();
    let approval = records.iter().find(|r| r.event["kind"] == "approval").expect("the answer is recorded");
    assert_eq!(approval.event["by"], "bob", "{}", approval.event);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_limit_holds_across_replicas_and_each_caller_has_their_own() {
    use keybridge_broker_proto::ClientLimitsUpdate;
    use keybridge_catalog::Scope;
    let Pair { postgres: _postgres, sim, dir: _dir, a, b } = Pair::start().await;
    keybridge_testkit::add_main_account(&a, &sim.account, &sim.account.api_token).await;
    let spec = keybridge_testkit::client_spec("desk", "research", false);
    let AdminReply::ClientAdded(added) = a.admin(AdminCommand::ClientAdd { spec }).await.unwrap() else { panic!() };
    let limits = ClientLimitsUpdate { calls_per_minute: Some(10), ..Default::default() };
    let update = AdminCommand::ClientUpdate {
        client_id: added.client_id.clone(),
        preset: None,
        scopes: vec![],
        policy: None,
        limits,
    };
    a.admin(update).await.unwrap();

    // Alice calls through both replicas in turn: ten calls in the minute, then no more on either.
    let everything = Scope::ALL.iter().copied().collect();
    let on_a = a.session_for_principal(&added.client_id, "alice", &everything).unwrap();
    let on_b = b.session_for_principal(&added.client_id, "alice", &everything).unwrap();
    let mut answered = 0;
    let mut refusals = Vec::new();
    for i in 0..16 {
        let (broker, session) = if i % 2 == 0 { (&a, &on_a) } else { (&b, &on_b) };
        match broker.call(Some(&session.session_id), &session.token, "read_account", json!({}), |_| {}).await {
            Ok(_) => answered += 1,
            Err(e) => refusals.push(e),
        }
    }
    assert_eq!(answered, 10, "{refusals:?}");
    assert!(refusals.iter().all(|e| e.code() == ErrorCode::LimitReached), "{refusals:?}");
    let said = refusals[0].to_string();
    assert!(said.contains("`alice`") && said.contains("10 calls in the last minute"), "{said}");

    // Bob, through the same client, has a minute of his own.
    let bob = b.session_for_principal(&added.client_id, "bob", &everything).unwrap();
    b.call(Some(&bob.session_id), &bob.token, "read_account", json!({}), |_| {}).await.expect("bob is counted apart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_or_a_settings_change_through_one_replica_holds_on_the_other() {
    let Pair { postgres: _postgres, sim, dir: _dir, a, b } = Pair::start().await;
    keybridge_testkit::add_main_account(&a, &sim.account, &sim.account.api_token).await;
    let spec = keybridge_testkit::client_spec("desk", "research", false);
    let AdminReply::ClientAdded(added) = a.admin(AdminCommand::ClientAdd { spec }).await.unwrap() else { panic!() };
    let everything = keybridge_catalog::Scope::ALL.iter().copied().collect();
    let session = b.session_for_principal(&added.client_id, "alice", &everything).unwrap();
    let call = || b.call(Some(&session.session_id), &session.token, "read_account", json!({}), |_| {});
    call().await.expect("B serves before the pause");

    // Paused through A: B refuses within a second, and says it is paused.
    a.admin(AdminCommand::Pause).await.unwrap();
    let paused = Instant::now();
    let refused = loop {
        match call().await {
            Err(e) => break e,
            Ok(_) => {
                assert!(paused.elapsed() < Duration::from_secs(1), "B still serves after a pause through A");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    assert_eq!(refused.code(), ErrorCode::Paused, "{refused}");
    eprintln!("B refused {:?} after the pause through A", paused.elapsed());
    let AdminReply::Status(status) = b.admin(AdminCommand::Status).await.unwrap() else { panic!() };
    assert!(status.paused, "B reports the pause");

    // Resumed and a setting changed through A: B serves again, under the new setting.
    a.admin(AdminCommand::Resume).await.unwrap();
    let AdminReply::Settings(mut settings) = a.admin(AdminCommand::SettingsGet).await.unwrap() else { panic!() };
    settings.approval_timeout_secs = 42;
    a.admin(AdminCommand::SettingsUpdate { settings }).await.unwrap();
    let resumed = Instant::now();
    while call().await.is_err() {
        assert!(resumed.elapsed() < Duration::from_secs(1), "B still refuses after the resume through A");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.settings().approval_timeout.as_secs(), 42, "B took the setting up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_answer_wins_even_on_the_replica_that_asked_and_a_later_one_is_refused() {
    use keybridge_broker_proto::ApprovalDecision;
    let Pair { postgres: _postgres, sim, dir: _dir, a, b } = Pair::start().await;
    keybridge_testkit::add_main_account(&a, &sim.account, &sim.account.api_token).await;
    let spec = keybridge_testkit::client_spec("desk", "admin", false);
    let AdminReply::ClientAdded(added) = a.admin(AdminCommand::ClientAdd { spec }).await.unwrap() else { panic!() };
    let everything = keybridge_catalog::Scope::ALL.iter().copied().collect();
    let session = b.session_for_principal(&added.client_id, "alice", &everything).unwrap();
    let waiting = {
        let (b, session) = (b.clone(), session.clone());
        tokio::spawn(async move {
            b.call(Some(&session.session_id), &session.token, "delete_project", json!({"projectId": 1}), |_| {}).await
        })
    };
    let question = loop {
        let AdminReply::Approvals(open) = b.admin(AdminCommand::ApprovalsList).await.unwrap() else { panic!() };
        if let Some(question) = open.into_iter().next() {
            break question;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // Carol denies on B, the replica that asked; Bob's approval through A comes second and loses.
    b.answer_question(&question.id, ApprovalDecision::Deny, Some("carol")).unwrap();
    let late = a.answer_question(&question.id, ApprovalDecision::Approve, Some("bob")).unwrap_err().to_string();
    assert!(late.contains("no pending approval"), "{late}");
    let denied = waiting.await.unwrap().unwrap_err();
    assert_eq!(denied.code(), ErrorCode::ApprovalDenied, "{denied}");
    assert_eq!(sim.handle.request_count("/projects/delete"), 0, "nothing was sent");
    let records = a.audit_log().read_all().unwrap();
    let answers: Vec<_> = records.iter().filter(|r| r.event["kind"] == "approval").collect();
    assert_eq!(answers.len(), 1, "one answer on record: {answers:?}");
    assert_eq!(answers[0].event["by"], "carol");
}

/// The test cluster, reached as a replica reaches its database.
fn database(postgres: &Postgres) -> keybridge_team::PgConfig {
    keybridge_team::PgConfig::new(&postgres.config(), None).unwrap()
}
