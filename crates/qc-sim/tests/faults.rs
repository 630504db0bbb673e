mod common;

use std::time::{Duration, Instant};

use common::{Client, http, start};
use keybridge_qc_sim::{Fault, FaultRule, SimConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn rules_parse_from_text() {
    let cases: [(&str, FaultRule); 9] = [
        ("5xx:503", FaultRule::always(Fault::ServerError(503))),
        ("5xx", FaultRule::always(Fault::ServerError(500))),
        ("429:2", FaultRule::always(Fault::RateLimited { retry_after_secs: 2 })),
        ("latency:150ms", FaultRule::always(Fault::Latency(Duration::from_millis(150)))),
        ("latency:2s", FaultRule::always(Fault::Latency(Duration::from_secs(2)))),
        ("malformed", FaultRule::always(Fault::MalformedJson)),
        ("drop", FaultRule::always(Fault::DropConnection)),
        ("timeout", FaultRule::always(Fault::Timeout)),
        (
            "/backtests/read=5xx:502*3",
            FaultRule { endpoint: Some("/backtests/read".into()), fault: Fault::ServerError(502), times: Some(3) },
        ),
    ];
    for (text, want) in cases {
        let got: FaultRule = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(got, want, "{text}");
        let again: FaultRule = got.to_string().parse().unwrap();
        assert_eq!(again, want, "round trip of {text}");
    }
    let prefixed: FaultRule = "/api/v2/files/read=drop*1".parse().unwrap();
    assert_eq!(prefixed.endpoint.as_deref(), Some("/files/read"));

    for (bad, names) in [
        ("5xx:404", "\"404\""),
        ("429:soon", "\"soon\""),
        ("latency:fast", "\"fast\""),
        ("explode", "\"explode\""),
        ("drop*0", "\"0\""),
        ("/files/read", "'='"),
        ("", "empty"),
    ] {
        let err = bad.parse::<FaultRule>().unwrap_err().to_string();
        assert!(err.contains(names), "{bad}: {err}");
        assert!(err.contains("Accepted forms"), "{bad}: {err}");
    }
}

#[tokio::test]
async fn latency_delays_then_answers() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);
    sim.add_fault("latency:300ms*1".parse().unwrap());
    let t = Instant::now();
    c.ok("/authenticate", json!({})).await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    c.ok("/authenticate", json!({})).await;
    assert!(t.elapsed() < Duration::from_millis(300), "the rule was spent");
    sim.shutdown().await;
}

#[tokio::test]
async fn server_error_and_times() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);
    sim.add_fault(FaultRule {
        endpoint: Some("/projects/read".into()),
        fault: Fault::ServerError(503),
        times: Some(2),
    });
    // Other endpoints are not affected.
    c.ok("/authenticate", json!({})).await;
    for _ in 0..2 {
        let res = c.post("/projects/read", &json!({})).await;
        assert_eq!(res.status(), 503);
        assert!(res.headers().get("date").is_some());
        assert!(!res.text().await.unwrap().is_empty());
    }
    c.ok("/projects/read", json!({})).await;
    assert_eq!(sim.request_count("/projects/read"), 3, "faulted requests are recorded");
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limit_has_retry_after() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);
    sim.add_fault("429:7".parse().unwrap());
    let res = c.post("/authenticate", &json!({})).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("7"));
    sim.clear_faults();
    c.ok("/authenticate", json!({})).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_json_is_truncated() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);
    sim.add_fault("malformed*1".parse().unwrap());
    let res = c.post("/projects/read", &json!({})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let text = res.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_connection_gets_no_response() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);
    sim.add_fault("/authenticate=drop*2".parse().unwrap());

    let err = c.signed("/authenticate", common::unix_now()).json(&json!({})).send().await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert!(err.status().is_none(), "{err:?}");

    // On the wire: the connection closes and not one byte of HTTP comes back.
    let mut stream = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    stream
        .write_all(
            b"POST /api/v2/authenticate HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf))
        .await
        .expect("the server closes the connection");
    match read {
        Ok(n) => assert_eq!(n, 0, "got {:?}", String::from_utf8_lossy(&buf)),
        Err(e) => assert!(
            matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted),
            "{e}"
        ),
    }

    c.ok("/authenticate", json!({})).await;
    assert_eq!(sim.request_count("/authenticate"), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn timeout_never_answers_until_shutdown() {
    let sim = start(SimConfig { faults: vec!["timeout".parse().unwrap()], ..SimConfig::default() }).await;
    let c = Client::demo(&sim);
    let err = c
        .signed("/authenticate", common::unix_now())
        .timeout(Duration::from_millis(400))
        .json(&json!({}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    // A request still waiting is cut off by shutdown, which does not hang.
    let pending = {
        let req = c.signed("/authenticate", common::unix_now()).json(&json!({}));
        tokio::spawn(async move { req.send().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(5), sim.shutdown()).await.expect("shutdown completes");
    let outcome =
        tokio::time::timeout(Duration::from_secs(5), pending).await.expect("the waiting request ends").unwrap();
    assert!(outcome.is_err());
}

#[tokio::test]
async fn faults_over_http() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);
    let control = format!("http://{}/__sim/faults", sim.addr());

    let res = http().post(&control).json(&json!({"rule": "/projects/read=5xx:500*1"})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["rule"], "/projects/read=5xx:500*1");
    assert_eq!(c.post("/projects/read", &json!({})).await.status(), 500);
    c.ok("/projects/read", json!({})).await;

    let res = http().post(&control).json(&json!({"rule": "teapot:418"})).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(body["errors"][0].as_str().unwrap().contains("teapot"));

    http().post(&control).json(&json!({"rule": "429:1"})).send().await.unwrap();
    assert_eq!(c.post("/authenticate", &json!({})).await.status(), 429);
    let res = http().delete(&control).send().await.unwrap();
    assert_eq!(res.status(), 200);
    c.ok("/authenticate", json!({})).await;

    // Control routes are not recorded as API requests.
    assert!(sim.requests().iter().all(|r| !r.endpoint.contains("__sim")));
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_apply_before_authentication() {
    let sim = start(SimConfig::default()).await;
    sim.add_fault("5xx:502*1".parse().unwrap());
    // No credentials at all: the fault still answers first.
    let res = http().post(format!("{}/authenticate", sim.base_url())).send().await.unwrap();
    assert_eq!(res.status(), 502);
    let res = http().post(format!("{}/authenticate", sim.base_url())).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 2);
    assert!(!recorded[0].authenticated);
    sim.shutdown().await;
}
