mod common;

use common::{Client, basic, http, password, start, unix_now};
use keybridge_qc_sim::{SimAccount, SimConfig};
use serde_json::{Value, json};

async fn refusal(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"QuantConnect\"")
    );
    assert!(res.headers().get("date").is_some(), "401 carries a Date");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["success"], json!(false));
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    errors[0].as_str().unwrap().to_owned()
}

fn date_secs(res: &reqwest::Response) -> i64 {
    let text = res.headers().get("date").unwrap().to_str().unwrap();
    httpdate::parse_http_date(text).unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn good_signature_is_accepted() {
    let sim = start(SimConfig::default()).await;
    let client = Client::demo(&sim);
    let res = client.post("/authenticate", &json!({})).await;
    assert_eq!(res.status(), 200);
    let date = date_secs(&res);
    assert!((date - unix_now()).abs() <= 2, "Date is the real time");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"success": true}));

    let recorded = sim.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].endpoint, "/authenticate");
    assert_eq!(recorded[0].user_id.as_deref(), Some("1000001"));
    assert!(recorded[0].authenticated);
    sim.shutdown().await;
}

#[tokio::test]
async fn each_failure_has_its_message() {
    let sim = start(SimConfig::default()).await;
    let client = Client::demo(&sim);
    let url = client.url("/projects/read");
    let now = unix_now();

    // Unknown user.
    let res = http()
        .post(&url)
        .header("Authorization", basic("424242", &password("whatever", now)))
        .header("Timestamp", now.to_string())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(res).await, "User ID not found.");

    // Wrong token.
    let res = http()
        .post(&url)
        .header("Authorization", basic("1000001", &password("not-the-token", now)))
        .header("Timestamp", now.to_string())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(res).await, "Hash doesn't match.");

    // Signed for another timestamp than the header says.
    let res = http()
        .post(&url)
        .header("Authorization", basic("1000001", &password(&SimAccount::demo().api_token, now - 1)))
        .header("Timestamp", now.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(res).await, "Hash doesn't match.");

    // Stale timestamp, correctly signed.
    let stale = now - 7300;
    let res = client.signed("/projects/read", stale).send().await.unwrap();
    let message = refusal(res).await;
    let prefix = "Timestamp is too old for hash. Server time: ";
    assert!(message.starts_with(prefix), "{message}");
    let server_time: i64 = message[prefix.len()..].parse().unwrap();
    assert!((server_time - now).abs() <= 2);

    // A timestamp from the future is refused the same way (with a margin: the clock moves on
    // while the test runs).
    let res = client.signed("/projects/read", now + 7300).send().await.unwrap();
    assert!(refusal(res).await.starts_with(prefix));

    // Inside the window is fine.
    let res = client.signed("/projects/read", now - 7000).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // Missing or garbled headers.
    let missing = "Authorization header is missing or invalid.";
    let res = http().post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(refusal(res).await, missing);
    let res = http()
        .post(&url)
        .header("Authorization", basic("1000001", &password(&SimAccount::demo().api_token, now)))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(res).await, missing, "no Timestamp header");
    let res = http()
        .post(&url)
        .header("Authorization", "Basic !!!not-base64")
        .header("Timestamp", now.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(res).await, missing);
    let res = http()
        .post(&url)
        .header("Authorization", basic("1000001", "x"))
        .header("Timestamp", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(res).await, missing);

    let recorded = sim.requests();
    assert_eq!(recorded.len(), 10);
    assert_eq!(recorded[0].user_id.as_deref(), Some("424242"));
    assert!(!recorded[0].authenticated);
    assert!(recorded[5].authenticated);
    assert_eq!(recorded[6].user_id, None);
    assert_eq!(sim.request_count("/projects/read"), 10);
    assert_eq!(sim.request_count("/api/v2/projects/read"), 10);
    sim.clear_requests();
    assert!(sim.requests().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn clock_offset_shows_in_date_and_in_the_window() {
    let offset = 3 * 3600;
    let sim = start(SimConfig { clock_offset_secs: offset, ..SimConfig::default() }).await;
    let client = Client::demo(&sim);

    let res = client.post("/authenticate", &json!({})).await;
    let server_date = date_secs(&res);
    assert!((server_date - (unix_now() + offset)).abs() <= 2, "Date reflects the offset");
    let message = refusal(res).await;
    assert!(message.starts_with("Timestamp is too old for hash."), "{message}");

    // A client that corrects its clock from the Date header gets in.
    let res = client.signed("/authenticate", server_date).json(&json!({})).send().await.unwrap();
    assert_eq!(res.status(), 200);

    sim.set_clock_offset(-offset);
    let res = client.post("/authenticate", &json!({})).await;
    assert!((date_secs(&res) - (unix_now() - offset)).abs() <= 2);
    assert_eq!(res.status(), 401);

    sim.set_clock_offset(0);
    let res = client.post("/authenticate", &json!({})).await;
    assert_eq!(res.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn accounts_are_separate() {
    let other =
        SimAccount { user_id: "2000002".into(), api_token: "second-token".into(), organization_id: "org-two".into() };
    let sim = start(SimConfig { accounts: vec![SimAccount::demo(), other.clone()], ..SimConfig::default() }).await;
    let demo = Client::demo(&sim);
    let second = Client::new(&sim, other);

    let created = demo.ok("/projects/create", json!({"name": "Mine", "language": "Py"})).await;
    let id = created["projects"][0]["projectId"].as_i64().unwrap();
    let errors = second.fails("/projects/read", json!({"projectId": id})).await;
    assert!(errors[0].contains("not found"), "{errors:?}");
    let listed = second.ok("/projects/read", json!({})).await;
    assert_eq!(listed["projects"], json!([]));

    // The other account's organization is not reachable.
    let errors = second.fails("/object/list", json!({"organizationId": "demo-org-0001"})).await;
    assert!(errors[0].contains("demo-org-0001"), "{errors:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn only_loopback_addresses_are_served() {
    let err = keybridge_qc_sim::start(SimConfig::default(), "0.0.0.0:0".parse().unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    let sim = keybridge_qc_sim::start(SimConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    assert!(sim.addr().ip().is_loopback());
    assert_ne!(sim.addr().port(), 0);
    assert_eq!(sim.base_url(), format!("http://127.0.0.1:{}/api/v2", sim.addr().port()));
    let health = http().get(format!("http://{}/__sim/health", sim.addr())).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("date").is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn demo_account_is_documented() {
    let demo = SimAccount::demo();
    assert_eq!(demo.user_id, "1000001");
    assert_eq!(demo.api_token, "keybridge-demo-token-0000000000000000000000000000000000000000000000");
    assert_eq!(demo.organization_id, "demo-org-0001");
    let config = SimConfig::default();
    assert_eq!(config.accounts.len(), 1);
    assert_eq!(config.timestamp_window_secs, 7200);
    assert_eq!(config.backtest_reads_until_complete, 1);
}
