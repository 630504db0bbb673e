//! A replica reaches its database over TLS, the server's certificate and host name checked, and
//! never falls back to a plain connection; over the network it refuses to start without TLS.

use keybridge_broker::audit::AuditEvent;
use keybridge_broker::audit::chain::ChainKey;
use keybridge_broker::seams::AuditSink;
use keybridge_team::{PgAudit, PgConfig, PgState};
use keybridge_testkit::Postgres;
use keybridge_vault::MemoryStore;

fn key() -> ChainKey {
    ChainKey::load_or_create(&MemoryStore::default(), "audit-chain-key:team").unwrap().0
}

#[test]
fn a_replica_reaches_its_database_over_tls_with_the_certificate_checked_and_never_without() {
    let postgres = Postgres::start_tls_only();
    let ca = postgres.ca_file.clone().unwrap();
    let at =
        |host: &str, mode: &str| format!("host={host} port={} user=kb dbname=postgres sslmode={mode}", postgres.port);

    // TLS, the certificate checked against the team's CA: the chain is written and verifies.
    let database = PgConfig::new(&at("localhost", "require"), Some(&ca)).unwrap();
    let audit = PgAudit::connect(&database, key(), "a").unwrap();
    for i in 0..3 {
        audit.append(&AuditEvent::AuditLogMissing { detail: format!("record {i}") }).unwrap();
    }
    assert_eq!(audit.verify().unwrap().records, 3);
    PgState::connect(&database).unwrap();

    // The server takes nothing else: a plain connection is refused by the server itself, so the
    // connections above were encrypted.
    let plain = PgAudit::connect(&PgConfig::new(&at("localhost", "disable"), None).unwrap(), key(), "a");
    let Err(refused) = plain else { panic!("a plain connection is refused") };
    let refused = refused.to_string();
    assert!(refused.contains("no encryption"), "{refused}");

    // A certificate the replica cannot trust (the system's roots, not the team's CA), or one for
    // another name than the host dialled: refused, not used.
    let untrusted = PgAudit::connect(&PgConfig::new(&at("localhost", "require"), None).unwrap(), key(), "a");
    let Err(untrusted) = untrusted else { panic!("an unknown CA is refused") };
    let untrusted = untrusted.to_string();
    assert!(untrusted.to_lowercase().contains("certificate"), "{untrusted}");
    let misnamed = PgAudit::connect(&PgConfig::new(&at("127.0.0.1", "require"), Some(&ca)).unwrap(), key(), "a");
    let Err(misnamed) = misnamed else { panic!("a certificate for another name is refused") };
    let misnamed = misnamed.to_string();
    assert!(misnamed.to_lowercase().contains("certificate"), "{misnamed}");
}

#[test]
fn a_database_over_the_network_without_tls_required_is_refused_before_anything_starts() {
    for mode in ["disable", "prefer"] {
        let text = format!("host=db.team.example user=keybridge password=hunter2 dbname=keybridge sslmode={mode}");
        let refused = PgConfig::new(&text, None).unwrap_err();
        assert!(refused.contains("db.team.example") && refused.contains("sslmode=require"), "{refused}");
        assert!(!refused.contains("hunter2"), "{refused}");
    }
    let no_mode = PgConfig::new("postgresql://keybridge:hunter2@db.team.example/keybridge", None).unwrap_err();
    assert!(no_mode.contains("sslmode=require") && !no_mode.contains("hunter2"), "{no_mode}");
    let missing_ca =
        PgConfig::new("host=db.team.example sslmode=require", Some(std::path::Path::new("/nonexistent/ca.pem")));
    assert!(missing_ca.unwrap_err().contains("/nonexistent/ca.pem"));
    // On this machine (loopback, a Unix socket) a plain connection stays allowed.
    PgConfig::new("host=127.0.0.1 sslmode=disable", None).unwrap();
    PgConfig::new("host=/run/postgresql", None).unwrap();
}
