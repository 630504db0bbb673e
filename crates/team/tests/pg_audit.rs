//! The audit chain in a real PostgreSQL, written by several replicas at once, checked by the
//! desktop's verifier, and under a broker that runs on it.

use std::sync::Arc;
use std::time::Duration;

use keybridge_broker::audit::chain::{self, ChainKey};
use keybridge_broker::audit::{AuditError, AuditEvent};
use keybridge_broker::seams::{AuditSink, SecretStore};
use keybridge_broker_proto::{AdminCommand, AdminReply};
use keybridge_team::PgAudit;
use keybridge_testkit::{Postgres, Simulator};
use keybridge_vault::MemoryStore;

const KEY: &str = "audit-chain-key:team";

fn key(store: &dyn SecretStore) -> ChainKey {
    ChainKey::load_or_create(store, KEY).unwrap().0
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::AuditLogMissing { detail: format!("record {i}") }
}

fn sql(postgres: &Postgres, statement: &str) {
    let mut client = postgres::Client::connect(&postgres.config(), postgres::NoTls).unwrap();
    client.batch_execute(statement).unwrap();
}

#[test]
fn two_replicas_appending_at_once_leave_one_chain_that_the_desktop_verifier_checks() {
    let postgres = Postgres::start();
    let store = MemoryStore::default();
    let replicas: Vec<Arc<PgAudit>> = ["a", "b"]
        .iter()
        .map(|name| Arc::new(PgAudit::connect(&database(&postgres), key(&store), name).unwrap()))
        .collect();
    // Two writers on each replica, 100 records each.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let replica = replicas[w % 2].clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    replica.append(&event(w * 1000 + i)).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let verified = replicas[1].verify().unwrap();
    assert_eq!(verified.records, 400);
    let seqs: Vec<u64> = replicas[0].read_all().unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=400).collect::<Vec<_>>(), "one sequence, no gap, no repeat");

    let exported = tempfile::tempdir().unwrap();
    replicas[0].export_to(exported.path()).unwrap();
    let checked = chain::verify_dir(exported.path(), &key(&store)).unwrap();
    assert_eq!(checked.records, 400, "the desktop's verifier reads the export");
    assert_eq!(checked.last_mac, verified.last_mac);
    let other_key = MemoryStore::default();
    assert!(chain::verify_dir(exported.path(), &key(&other_key)).is_err(), "another key does not verify it");
}

#[test]
fn a_row_changed_deleted_or_cut_off_in_the_database_is_named() {
    let postgres = Postgres::start();
    let store = MemoryStore::default();
    let audit = PgAudit::connect(&database(&postgres), key(&store), "a").unwrap();
    for i in 0..5 {
        audit.append(&event(i)).unwrap();
    }
    assert_eq!(audit.verify().unwrap().records, 5);

    sql(&postgres, "UPDATE keybridge_audit SET line = replace(line, 'record 2', 'record 9') WHERE seq = 3");
    let broken = audit.verify().unwrap_err();
    assert!(matches!(&broken, AuditError::Broken(b) if b.expected_seq == 3), "{broken}");
    assert!(broken.to_string().contains("edited"), "{broken}");

    sql(&postgres, "DELETE FROM keybridge_audit WHERE seq = 3");
    let broken = audit.verify().unwrap_err().to_string();
    assert!(broken.contains("record #4") && broken.contains("missing"), "{broken}");

    sql(&postgres, "DELETE FROM keybridge_audit WHERE seq >= 3");
    let broken = audit.verify().unwrap_err().to_string();
    assert!(broken.contains("cut off"), "{broken}");
}

/// A sentinel QuantConnect token: it must be in no row.
const SENTINEL: &str = "SENTINEL-team-token-5d1e8f2a9b3c7d4e6f80";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_runs_on_the_database_chain_and_no_row_holds_a_token() {
    let postgres = Postgres::start();
    let sim = Simulator::start(SENTINEL).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let mut config = keybridge_broker::BrokerConfig::new(dir.path().join("data"), sim.base_url());
    config.approval_timeout = Duration::from_secs(10);
    let mut backends = keybridge_host::desktop_backends(&config, secrets.clone()).unwrap();
    let audit = Arc::new(PgAudit::connect(&database(&postgres), key(secrets.as_ref()), "a").unwrap());
    backends.audit = audit.clone();
    let broker = keybridge_broker::Broker::open(config, backends).unwrap();

    keybridge_testkit::add_main_account(&broker, &sim.account, SENTINEL).await;
    broker.admin(AdminCommand::AccountTest { name: "main".into() }).await.unwrap();
    let AdminReply::AuditVerified(verified) = broker.admin(AdminCommand::AuditVerify).await.unwrap() else {
        panic!("not a verification")
    };
    assert!(verified.intact);
    assert!(verified.records >= 1, "the account's addition is on record");
    let kinds: Vec<String> =
        audit.read_all().unwrap().iter().map(|r| r.event["kind"].as_str().unwrap_or_default().to_string()).collect();
    assert!(kinds.iter().any(|k| k == "admin"), "{kinds:?}");

    // The synchronous client runs a runtime of its own: off this test's.
    let rows = std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&postgres.config(), postgres::NoTls).unwrap();
        let scan = "SELECT line FROM keybridge_audit UNION ALL SELECT coalesce(head, '') FROM keybridge_audit_head";
        client.query(scan, &[]).unwrap().iter().map(|row| row.get::<_, String>(0)).collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    assert!(rows.len() >= 2);
    for text in rows {
        assert!(!text.contains(SENTINEL), "a row holds the token: {text}");
    }
}

/// The test cluster, reached as a replica reaches its database.
fn database(postgres: &Postgres) -> keybridge_team::PgConfig {
    keybridge_team::PgConfig::new(&postgres.config(), None).unwrap()
}
