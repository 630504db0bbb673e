//! Authentication failures, clock skew and every injected fault, against the real simulator.

mod common;

use std::time::{Duration, Instant};

use common::{client, creds, sim};
use keybridge_catalog::find;
use keybridge_qc_sim::{Fault, FaultRule};
use keybridge_quantconnect::{AuthFailure, Credentials, QcError};
use serde_json::{Value, json};

const TOKEN: &str = "token-for-fault-tests";

fn rule(endpoint: &str, fault: Fault, times: Option<u32>) -> FaultRule {
    FaultRule { endpoint: Some(endpoint.into()), fault, times }
}

async fn read_account(c: &keybridge_quantconnect::QcClient, token: &str) -> Result<Value, QcError> {
    c.call(&creds(token), find("read_account").unwrap(), Value::Null).await
}

async fn create_project(c: &keybridge_quantconnect::QcClient) -> Result<Value, QcError> {
    c.call(&creds(TOKEN), find("create_project").unwrap(), json!({"name": "p", "language": "Py"})).await
}

#[tokio::test]
async fn authentication_failures_are_typed() {
    let sim = sim(TOKEN, |_| {}).await;
    let c = client(&sim, |_| {});
    let err = read_account(&c, "not-the-token").await.unwrap_err();
    assert!(matches!(err, QcError::Authentication { kind: AuthFailure::WrongToken, .. }), "{err:?}");
    let stranger = Credentials::new("999999", TOKEN.to_string());
    let err = c.call(&stranger, find("read_account").unwrap(), Value::Null).await.unwrap_err();
    assert!(matches!(err, QcError::Authentication { kind: AuthFailure::UnknownUser, .. }), "{err:?}");
    assert!(err.to_string().contains("user id"), "the message says what to check: {err}");
    assert!(read_account(&c, TOKEN).await.is_ok());
}

#[tokio::test]
async fn a_stale_timestamp_is_reported_when_correction_is_off() {
    let sim = sim(TOKEN, |c| c.clock_offset_secs = 3 * 3600).await;
    let c = client(&sim, |c| c.correct_clock_skew = false);
    let err = read_account(&c, TOKEN).await.unwrap_err();
    assert!(matches!(err, QcError::Authentication { kind: AuthFailure::StaleTimestamp, .. }), "{err:?}");
}

#[tokio::test]
async fn clock_skew_is_corrected_with_one_retry_then_remembered() {
    let sim = sim(TOKEN, |c| c.clock_offset_secs = 3 * 3600).await;
    let c = client(&sim, |_| {});
    // A write too: the rejected attempt did nothing upstream.
    create_project(&c).await.expect("succeeds after following QuantConnect's clock");
    assert_eq!(sim.request_count("/projects/create"), 2, "one rejected attempt, one signed with the corrected clock");
    assert!((c.clock_offset_secs() - 3 * 3600).abs() <= 2, "offset learnt: {}", c.clock_offset_secs());
    read_account(&c, TOKEN).await.unwrap();
    assert_eq!(sim.request_count("/account/read"), 1, "later calls are signed right the first time");
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_within_a_bound() {
    let sim = sim(TOKEN, |_| {}).await;
    let c = client(&sim, |_| {});
    sim.add_fault(rule("/account/read", Fault::ServerError(503), Some(2)));
    read_account(&c, TOKEN).await.expect("third attempt succeeds");
    assert_eq!(sim.request_count("/account/read"), 3);

    sim.clear_requests();
    sim.add_fault(rule("/account/read", Fault::ServerError(500), None));
    let err = read_account(&c, TOKEN).await.unwrap_err();
    assert!(matches!(err, QcError::Server { status: 500, .. }), "{err:?}");
    assert_eq!(sim.request_count("/account/read"), 3, "gives up after max_read_attempts");
}

#[tokio::test]
async fn writes_are_never_retried() {
    let sim = sim(TOKEN, |_| {}).await;
    let c = client(&sim, |_| {});
    for fault in [
        Fault::ServerError(502),
        Fault::MalformedJson,
        Fault::DropConnection,
        Fault::RateLimited { retry_after_secs: 1 },
    ] {
        sim.clear_requests();
        sim.add_fault(rule("/projects/create", fault.clone(), Some(1)));
        let err = create_project(&c).await.unwrap_err();
        assert_eq!(sim.request_count("/projects/create"), 1, "{fault:?} led to a retry of a write: {err:?}");
    }
}

#[tokio::test]
async fn rate_limits_honour_retry_after() {
    let sim = sim(TOKEN, |_| {}).await;
    let c = client(&sim, |_| {});
    sim.add_fault(rule("/account/read", Fault::RateLimited { retry_after_secs: 1 }, Some(1)));
    let started = Instant::now();
    read_account(&c, TOKEN).await.expect("succeeds after waiting");
    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
    assert_eq!(sim.request_count("/account/read"), 2);

    sim.clear_requests();
    sim.add_fault(rule("/account/read", Fault::RateLimited { retry_after_secs: 600 }, Some(1)));
    let started = Instant::now();
    let err = read_account(&c, TOKEN).await.unwrap_err();
    assert!(matches!(err, QcError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(600)));
    assert!(started.elapsed() < Duration::from_secs(2), "a wait over the cap is returned, not slept");
    assert!(err.to_string().contains("600s"), "{err}");
}

#[tokio::test]
async fn malformed_bodies_and_dropped_connections_are_typed_and_retried_for_reads() {
    let sim = sim(TOKEN, |_| {}).await;
    let c = client(&sim, |_| {});
    sim.add_fault(rule("/account/read", Fault::MalformedJson, None));
    let err = read_account(&c, TOKEN).await.unwrap_err();
    assert!(matches!(err, QcError::MalformedResponse { .. }), "{err:?}");
    assert_eq!(sim.request_count("/account/read"), 3);

    sim.clear_faults();
    sim.clear_requests();
    sim.add_fault(rule("/account/read", Fault::DropConnection, Some(1)));
    read_account(&c, TOKEN).await.expect("a dropped connection is retried for a read");
    sim.add_fault(rule("/account/read", Fault::DropConnection, None));
    let err = read_account(&c, TOKEN).await.unwrap_err();
    assert!(matches!(err, QcError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn timeouts_and_latency() {
    let sim = sim(TOKEN, |_| {}).await;
    let c = client(&sim, |c| c.request_timeout = Duration::from_millis(400));
    sim.add_fault(rule("/account/read", Fault::Latency(Duration::from_millis(150)), Some(1)));
    let started = Instant::now();
    read_account(&c, TOKEN).await.expect("latency under the timeout is fine");
    assert!(started.elapsed() >= Duration::from_millis(150));

    sim.clear_requests();
    sim.add_fault(rule("/account/read", Fault::Timeout, None));
    let err = read_account(&c, TOKEN).await.unwrap_err();
    assert!(matches!(err, QcError::Timeout { .. }), "{err:?}");
    assert_eq!(sim.request_count("/account/read"), 1, "a timed-out request is not repeated");
}

#[tokio::test]
async fn invalid_arguments_send_nothing() {
    let sim = sim(TOKEN, |_| {}).await;
    let c = client(&sim, |_| {});
    let err = c.call(&creds(TOKEN), find("read_backtest").unwrap(), json!({"projectId": 1})).await.unwrap_err();
    assert!(matches!(err, QcError::InvalidArguments(_)), "{err:?}");
    assert!(err.to_string().contains("backtestId"), "{err}");
    assert!(sim.requests().is_empty(), "nothing reached the simulator");
}

#[tokio::test]
async fn api_refusals_carry_quantconnects_messages() {
    let sim = sim(TOKEN, |_| {}).await;
    let c = client(&sim, |_| {});
    let err = c
        .call(&creds(TOKEN), find("read_backtest").unwrap(), json!({"projectId": 424242, "backtestId": "nope"}))
        .await
        .unwrap_err();
    match &err {
        QcError::Api { endpoint, messages } => {
            assert_eq!(endpoint, "/backtests/read");
            assert!(!messages.is_empty());
        }
        other => panic!("expected an API refusal, got {other:?}"),
    }
}
