//! The team service end to end, on real engines: an OpenID provider, OpenBao, PostgreSQL, and
//! the official TypeScript MCP SDK as the client over Streamable HTTP.

use std::time::Duration;

use keybridge_broker_proto::AdminCommand;
use keybridge_team::serve::{TeamConfig, TeamService};
use keybridge_testkit::{IdentityClient, IdentityProvider, OpenBaoServer, Postgres, Simulator};
use serde_json::{Value, json};

const DESK: IdentityClient =
    IdentityClient { id: "desk", secret: "desk-secret", scope: "qc:account:read qc:projects:read" };
const STRANGER: IdentityClient = IdentityClient { id: "stranger", secret: "stranger-secret", scope: "qc:account:read" };
const SENTINEL: &str = "SENTINEL-team-service-token-3e9a7c5b1d";

#[test]
fn a_trader_calls_through_the_team_service_with_the_identity_providers_token_alone() {
    let postgres = Postgres::start();
    let bao = OpenBaoServer::start();
    let (role_id, secret_id) = bao.approle("keybridge", &["keybridge/desk"], 600);
    let scopes: Vec<&str> = keybridge_catalog::Scope::ALL.iter().map(|s| s.as_str()).collect();
    let provider = IdentityProvider::start(&scopes, &[DESK, STRANGER]);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret-id");
    std::fs::write(&secret_file, &secret_id).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let sim = runtime.block_on(Simulator::start(SENTINEL));
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
resource = "{resource}"
issuer = "{issuer}"
data_dir = "{data}"
quantconnect = "{qc}"
database = "{database}"
replica = "a"

[openbao]
address = "{bao}"
mount = "secret"
prefix = "keybridge/desk"
role_id = "{role_id}"
secret_id_file = "{secret_file}"

[clients]
desk = "Desk (team)"
"#,
        issuer = provider.issuer(),
        data = dir.path().join("data").display(),
        qc = sim.base_url(),
        database = postgres.config(),
        bao = bao.address,
        secret_file = secret_file.display(),
    );
    let config_file = dir.path().join("team.toml");
    std::fs::write(&config_file, config).unwrap();
    let config = TeamConfig::read(&config_file).unwrap();

    let broker = runtime.block_on(async {
        let service = TeamService::start(&config).await.unwrap();
        keybridge_testkit::add_main_account(&service.broker, &sim.account, SENTINEL).await;
        let spec = keybridge_testkit::client_spec("Desk (team)", "research", false);
        service.broker.admin(AdminCommand::ClientAdd { spec }).await.unwrap();
        let listener = tokio::net::TcpListener::bind(&config.listen).await.unwrap();
        tokio::spawn(async move { axum::serve(listener, service.router).await.unwrap() });
        service.broker
    });

    // The desk's token carries account and project reads; its Keybridge client is research.
    let token = provider.token(&DESK, "qc:account:read", &resource);
    let steps = json!([["call", "read_account", {}], ["call", "delete_project", {"projectId": 1}]]);
    let seen = keybridge_testkit::ts_client(&resource, Some(&token), &steps);
    let tools: Vec<&str> = seen["tools"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(tools.contains(&"read_account"), "{tools:?}");
    assert!(!tools.contains(&"read_project"), "the token did not grant project reads: {tools:?}");
    assert_eq!(seen["steps"][0]["isError"], false, "{seen}");
    // Refused by the resource server, the scope named in its challenge, which the SDK read.
    let refused_call = seen["steps"][1]["refused"].as_str().unwrap_or_default();
    assert!(refused_call.contains("Insufficient scope") && refused_call.contains("qc:projects:delete"), "{seen}");

    // A client of the identity provider no Keybridge client serves is told so.
    let stranger = provider.token(&STRANGER, "qc:account:read", &resource);
    let refused = keybridge_testkit::ts_client(&resource, Some(&stranger), &json!([["call", "read_account", {}]]));
    let text = refused["failed"].as_str().unwrap_or_default().to_string();
    assert!(text.contains("`stranger` is not served here"), "{refused}");

    // On record: the desk's session, by the identity provider, and its call; the chain holds.
    let records = broker.audit_log().read_all().unwrap();
    let signed_in = records.iter().any(|r| {
        r.event["kind"] == "authentication" && r.event["method"] == "identity_provider" && r.event["host"] == "desk"
    });
    assert!(signed_in, "no identity-provider session on record");
    assert!(records.iter().any(|r| r.event["kind"] == "tool_call" && r.event["tool"] == "read_account"));
    assert!(broker.audit_log().verify().is_ok());

    // The QuantConnect token is in OpenBao and nowhere else.
    let mut seen_text =
        vec![seen.to_string(), refused.to_string(), bao.log(), broker.audit_log().export_lines().unwrap()];
    let mut files = vec![dir.path().join("data")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().flatten().map(|e| e.path()));
        } else {
            seen_text.push(String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_string());
        }
    }
    for text in &seen_text {
        assert!(!text.contains(SENTINEL), "the token leaked: {text:.200}");
    }
    drop(broker);
    runtime.shutdown_timeout(Duration::from_secs(5));
}

#[test]
fn a_configuration_with_an_unknown_key_or_no_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("team.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\nresourse = \"http://127.0.0.1:1/mcp\"\n").unwrap();
    let refused = TeamConfig::read(&file).unwrap_err().to_string();
    assert!(refused.contains("team.toml") && refused.contains("resourse"), "{refused}");
    let missing = TeamConfig::read(&dir.path().join("absent.toml")).unwrap_err().to_string();
    assert!(missing.contains("absent.toml"), "{missing}");
    // A line the parser stops at is named by its number, never quoted: it may hold a password.
    std::fs::write(&file, "database = \"host=db password=hunter2\"\nlisten = [\n").unwrap();
    let refused = TeamConfig::read(&file).unwrap_err().to_string();
    assert!(refused.contains("line 2") && !refused.contains("hunter2"), "{refused}");
}
