//! The commands on Tauri's mock runtime (no display): each goes through the real IPC handler
//! and ACL to a real broker over a real simulator, and comes back as the window sees it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keybridge_broker_proto::{AdminCommand, AdminReply, TokenMinted};
use keybridge_host::Broker;
use keybridge_host::catalog::Preset;
use keybridge_qc_sim::SimHandle;
use keybridge_testkit::Simulator;
use keybridge_vault::MemoryStore;
use serde_json::{Value, json};
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::{Manager, WebviewWindow};

use crate::commands::AppState;

/// Known to the simulator; must never come back through any command.
const SENTINEL: &str = "sentinel-qc-token-7f3a9c2e51d84b06a7e3c9f1d2b4e6a8";

struct World {
    _dir: tempfile::TempDir,
    sim: SimHandle,
    account: keybridge_qc_sim::SimAccount,
    broker: Arc<Broker>,
    window: WebviewWindow<MockRuntime>,
    _app: tauri::App<MockRuntime>,
    config: std::path::PathBuf,
    /// Every answer seen, for the secret scan.
    seen: std::sync::Mutex<String>,
}

fn app(state: AppState) -> (tauri::App<MockRuntime>, WebviewWindow<MockRuntime>) {
    let app = mock_builder().invoke_handler(crate::all_commands!()).build(tauri::generate_context!()).unwrap();
    app.manage(state);
    let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap();
    (app, window)
}

fn invoke_on(window: &WebviewWindow<MockRuntime>, command: &str, args: Value) -> Result<Value, Value> {
    let request = tauri::webview::InvokeRequest {
        cmd: command.into(),
        callback: tauri::ipc::CallbackFn(0),
        error: tauri::ipc::CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: tauri::ipc::InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(window, request).map(|body| body.deserialize::<Value>().unwrap())
}

impl World {
    fn start(approval_timeout: Duration) -> World {
        let dir = tempfile::tempdir().unwrap();
        let Simulator { handle: sim, account } = tauri::async_runtime::block_on(Simulator::start(SENTINEL));
        let data = keybridge_testkit::data_dir(dir.path());
        let secrets = Arc::new(MemoryStore::default());
        let broker = keybridge_testkit::open_broker(&data, &sim.base_url(), approval_timeout, secrets);
        let broker = Arc::new(broker.unwrap());
        let claude = dir.path().join("Claude/claude_desktop_config.json");
        let state = AppState {
            broker: Some(broker.clone()),
            problem: None,
            demo: false,
            socket: dir.path().join("run/broker.sock"),
            quantconnect: sim.base_url(),
            data_dir: data,
            bridge: "/opt/keybridge/keybridge-mcp".into(),
            claude_desktop_config: Some(claude.clone()),
        };
        let (app, window) = app(state);
        World { _dir: dir, sim, account, broker, window, _app: app, config: claude, seen: Default::default() }
    }

    fn invoke(&self, command: &str, args: Value) -> Result<Value, Value> {
        let answer = invoke_on(&self.window, command, args);
        let text = match &answer {
            Ok(v) | Err(v) => v.to_string(),
        };
        self.seen.lock().unwrap().push_str(&text);
        answer
    }

    fn ok(&self, command: &str, args: Value) -> Value {
        self.invoke(command, args).unwrap_or_else(|e| panic!("{command}: {e}"))
    }

    fn err(&self, command: &str, args: Value) -> Value {
        self.invoke(command, args).expect_err(command)
    }

    fn add_account(&self) {
        let account = &self.account;
        self.ok(
            "account_add",
            json!({"account": {"name": "main", "user_id": account.user_id, "organization_id": account.organization_id, "api_token": SENTINEL}}),
        );
    }

    fn add_client(&self, preset: &str) -> String {
        let added = self.ok(
            "client_add",
            json!({"client": {"name": "Claude Desktop", "account": "main", "preset": preset, "scopes": [], "with_key": false}}),
        );
        added["client_id"].as_str().unwrap().to_string()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let seen = self.seen.lock().unwrap();
        assert!(!seen.contains(SENTINEL), "a command answered with the QuantConnect token");
    }
}

#[test]
fn an_account_is_checked_before_it_is_saved_and_its_token_never_comes_back() {
    let world = World::start(Duration::from_secs(5));
    let bad = world.err(
        "account_add",
        json!({"account": {"name": "main", "user_id": "1000001", "organization_id": null, "api_token": "wrong-token"}}),
    );
    assert_eq!(bad["code"], "invalid", "{bad}");
    assert!(bad["message"].as_str().unwrap().contains("nothing was saved"), "{bad}");
    assert_eq!(world.ok("accounts_list", json!({})), json!([]));

    world.add_account();
    let accounts = world.ok("accounts_list", json!({}));
    assert_eq!(accounts[0]["id"], "main");
    assert_eq!(accounts[0]["organization_id"], world.account.organization_id);
    assert_eq!(world.ok("account_test", json!({"name": "main"}))["ok"], true);

    let renamed = world.ok("account_rename", json!({"name": "main", "newName": "trading"}));
    assert_eq!(renamed["id"], "trading");
    assert_eq!(world.ok("account_test", json!({"name": "trading"}))["ok"], true, "the token moved with the name");
    assert_eq!(world.ok("account_remove", json!({"name": "trading"}))["removed"], true);
    assert_eq!(world.ok("accounts_list", json!({})), json!([]));
}

#[test]
fn clients_are_created_from_presets_edited_and_revoked() {
    let world = World::start(Duration::from_secs(5));
    world.add_account();
    let presets = world.ok("presets", json!({}));
    assert_eq!(presets.as_array().unwrap().len(), 4);
    assert!(presets[2]["description"].as_str().unwrap().contains("live"), "{presets}");
    let id = world.add_client("trader");
    let clients = world.ok("clients_list", json!({}));
    assert_eq!(clients[0]["client_id"], id);
    assert_eq!(clients[0]["preset"], "trader");
    assert!(clients[0]["scopes"].as_array().unwrap().contains(&json!("qc:live:execute")));
    assert_eq!(clients[0]["mode"], "host");

    world.ok("client_update", json!({"clientId": id, "preset": "read-only", "scopes": []}));
    let limited = world.ok("client_limits", json!({"clientId": id, "limits": {"calls_per_minute": 30}}));
    assert_eq!(limited["limits"]["calls_per_minute"], 30, "{limited}");
    assert_eq!(
        limited["scopes"].as_array().map(Vec::len),
        Some(Preset::ReadOnly.scopes().len()),
        "scopes stay: {limited}"
    );
    let refused = world.err("client_limits", json!({"clientId": id, "limits": {"calls_in_flight": 0}}));
    assert!(refused.to_string().contains("calls in flight 0 is outside 1..=10000"), "{refused}");
    let clients = world.ok("clients_list", json!({}));
    assert_eq!(clients[0]["preset"], "read-only");
    assert!(!clients[0]["scopes"].as_array().unwrap().contains(&json!("qc:live:execute")));

    world.ok("client_revoke", json!({"clientId": id}));
    assert_eq!(world.ok("clients_list", json!({}))[0]["revoked"], true);
    let gone = world.err("connect_preview", json!({"clientId": id}));
    assert_eq!(gone["code"], "revoked", "{gone}");

    let unknown = world.err(
        "client_add",
        json!({"client": {"name": "x", "account": "nope", "preset": "trader", "scopes": [], "with_key": false}}),
    );
    assert_eq!(unknown["code"], "not_found", "{unknown}");
    assert!(unknown["message"].as_str().unwrap().contains("add it first"), "{unknown}");
}

#[test]
fn connecting_claude_desktop_keeps_other_servers_and_refuses_a_broken_file() {
    let world = World::start(Duration::from_secs(5));
    world.add_account();
    let id = world.add_client("research");
    std::fs::create_dir_all(world.config.parent().unwrap()).unwrap();
    let original = r#"{"mcpServers": {"filesystem": {"command": "npx", "args": ["fs"]}}, "theme": "dark"}"#;
    std::fs::write(&world.config, original).unwrap();

    let preview = world.ok("connect_preview", json!({"clientId": id}));
    assert_eq!(preview["change"], "added");
    assert_eq!(preview["other_servers"], json!(["filesystem"]));
    assert_eq!(std::fs::read_to_string(&world.config).unwrap(), original, "a preview writes nothing");

    let stale = world.err("connect_apply", json!({"clientId": id, "fileDigest": "0000"}));
    assert!(stale["message"].as_str().unwrap().contains("changed since you looked"), "{stale}");
    assert_eq!(std::fs::read_to_string(&world.config).unwrap(), original, "a stale preview writes nothing");
    let done = world.ok("connect_apply", json!({"clientId": id, "fileDigest": preview["file_digest"]}));
    let backup = done["backup"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(backup).unwrap(), original);
    assert!(done["next_step"].as_str().unwrap().contains("Quit Claude Desktop completely"));
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(&world.config).unwrap()).unwrap();
    assert_eq!(merged["mcpServers"]["filesystem"]["args"], json!(["fs"]));
    assert_eq!(merged["theme"], "dark");
    assert_eq!(merged["mcpServers"]["quantconnect"]["command"], "/opt/keybridge/keybridge-mcp");
    assert_eq!(merged["mcpServers"]["quantconnect"]["args"], json!(["--client", id]));
    assert_eq!(world.ok("connect_preview", json!({"clientId": id}))["change"], "unchanged");

    let broken = "{\"mcpServers\": {\"filesystem\": ";
    std::fs::write(&world.config, broken).unwrap();
    let refused = world.err("connect_preview", json!({"clientId": id}));
    assert_eq!(refused["code"], "config");
    assert!(refused["message"].as_str().unwrap().contains("not valid JSON"), "{refused}");
    assert_eq!(std::fs::read_to_string(&world.config).unwrap(), broken, "left as it was");

    let snippets = world.ok("connect_snippets", json!({"clientId": id}));
    assert!(snippets["claude_code"].as_str().unwrap().starts_with("claude mcp add"));
    assert!(snippets["vscode"].as_str().unwrap().contains("\"servers\""));
}

fn wait_for_approval(world: &World) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pending = world.ok("approvals_list", json!({}));
        if let Some(first) = pending.as_array().and_then(|a| a.first()) {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "no approval appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_dangerous_call_waits_for_the_window_and_runs_once_approved() {
    let world = World::start(Duration::from_secs(10));
    world.add_account();
    let id = world.add_client("admin");
    let minted =
        tauri::async_runtime::block_on(world.broker.admin(AdminCommand::TokenMint { client_id: id, ttl_secs: None }))
            .unwrap();
    let AdminReply::TokenMinted(TokenMinted { token, .. }) = minted else { panic!("not a token: {minted:?}") };
    let broker = world.broker.clone();
    let created = tauri::async_runtime::block_on(broker.call(
        None,
        &token,
        "create_project",
        json!({"name": "Momentum", "language": "Py"}),
        |_| {},
    ))
    .unwrap();
    let project = created["projects"][0]["projectId"].clone();
    let call = tauri::async_runtime::spawn(async move {
        broker.call(None, &token, "delete_project", json!({"projectId": project}), |_| {}).await
    });
    let approval = wait_for_approval(&world);
    assert_eq!(approval["tool"], "delete_project");
    assert!(approval["summary"].as_str().unwrap().contains("Momentum"), "{approval}");
    assert_eq!(world.sim.request_count("/projects/delete"), 0, "nothing is sent before the human answers");

    let wrong = world.err("approval_decide", json!({"approvalId": approval["id"], "decision": "maybe"}));
    assert_eq!(wrong["code"], "invalid");
    world.ok("approval_decide", json!({"approvalId": approval["id"], "decision": "approve"}));
    tauri::async_runtime::block_on(call).unwrap().unwrap();
    assert_eq!(world.sim.request_count("/projects/delete"), 1);
    assert_eq!(world.ok("approvals_list", json!({})), json!([]));

    let records = world.ok("audit_tail", json!({"last": 50}));
    let decided = records
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["event"]["kind"] == "approval" && r["event"]["decision"] == "approved");
    assert!(decided, "the decision is audited");
    assert_eq!(world.ok("audit_verify", json!({}))["intact"], true);
    let exported = world.ok("audit_export", json!({}));
    let text = std::fs::read_to_string(exported.as_str().unwrap()).unwrap();
    assert!(text.lines().count() >= records.as_array().unwrap().len(), "the export holds the whole log");
    assert!(text.contains("delete_project"));
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first.get("mac").is_some() && first.get("prev").is_some(), "chain fields kept: {first}");
    let last = world.ok("audit_tail", json!({"last": 1}));
    assert_eq!(last[0]["event"]["action"], "audit_exported", "the export is on record");
}

#[test]
fn pause_settings_and_key_rotation_take_effect_at_once() {
    let world = World::start(Duration::from_secs(5));
    assert_eq!(world.ok("status", json!({}))["paused"], false);
    world.ok("pause", json!({}));
    assert_eq!(world.ok("status", json!({}))["paused"], true);
    world.ok("resume", json!({}));
    assert_eq!(world.ok("status", json!({}))["paused"], false);

    let defaults = world.ok("settings_get", json!({}));
    assert_eq!(defaults["token_ttl_secs"], 600);
    assert_eq!(defaults["approval_timeout_secs"], 5);
    let saved = world.ok(
        "settings_update",
        json!({"settings": {"token_ttl_secs": 300, "approval_timeout_secs": 90, "policy": {"qc:live:read": "ask"}}}),
    );
    assert_eq!(saved["policy"]["qc:live:read"], "ask");
    assert_eq!(world.broker.settings().approval_timeout, Duration::from_secs(90));
    let refused = world.err(
        "settings_update",
        json!({"settings": {"token_ttl_secs": 7200, "approval_timeout_secs": 90, "policy": {}}}),
    );
    assert_eq!(refused["code"], "invalid");
    assert!(refused["message"].as_str().unwrap().contains("7200"), "{refused}");
    assert_eq!(world.ok("settings_get", json!({}))["token_ttl_secs"], 300, "a refused change changes nothing");

    let before = world.ok("status", json!({}))["signing_key"].clone();
    let rotated = world.ok("keys_rotate", json!({}));
    assert_ne!(rotated["kid"], before);
    assert_eq!(world.ok("status", json!({}))["signing_key"], rotated["kid"]);

    let scopes = world.ok("scopes", json!({}));
    let live_execute = scopes.as_array().unwrap().iter().find(|s| s["name"] == "qc:live:execute").unwrap();
    assert_eq!(live_execute["default_policy"], "ask");
    assert!(live_execute["tools"].as_array().unwrap().contains(&json!("stop_live_algorithm")));
}

#[test]
fn without_a_broker_every_command_says_why_in_plain_words() {
    let problem = "Keybridge is already running for this user (socket /run/user/1000/keybridge/broker.sock)";
    let (_app, window) = app(AppState {
        broker: None,
        problem: Some(problem.into()),
        demo: false,
        socket: Path::new("/run/user/1000/keybridge/broker.sock").into(),
        quantconnect: String::new(),
        data_dir: "/tmp/none".into(),
        bridge: "/opt/keybridge/keybridge-mcp".into(),
        claude_desktop_config: None,
    });
    let info = invoke_on(&window, "app_info", json!({})).unwrap();
    assert_eq!(info["problem"], problem);
    for command in ["status", "accounts_list", "clients_list", "approvals_list", "pause", "settings_get"] {
        let error = invoke_on(&window, command, json!({})).expect_err(command);
        assert_eq!(error, json!({"code": "not_running", "message": problem}), "{command}");
    }
}
