//! `keybridge serve --team` as a real process on the real engines (an OpenID provider, OpenBao,
//! PostgreSQL): set up through the CLI over the replica's admin socket, called over HTTP by four
//! callers at once, killed with SIGKILL mid-flight, started again: every answered call is on the
//! chain, which verifies, and the QuantConnect token is nowhere but in OpenBao. Two replicas side
//! by side, their database over TLS alone: a call waiting on one is approved through the other with `keybridge approvals
//! --server`, by a person the identity provider signs in and puts in the approver group. A stdio
//! MCP client reaching the service through `keybridge-mcp --server`, its person signed in once
//! with the sign-in in the OS keychain.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use keybridge_testkit::{IdentityClient, IdentityProvider, OpenBaoServer, Postgres, Simulator};
use serde_json::{Value, json};

const DESK: IdentityClient = IdentityClient { id: "desk", secret: "desk-secret", scope: "qc:account:read" };
const SENTINEL: &str = "SENTINEL-team-process-token-61c0d9e4a2";

struct Replica {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    resource: String,
}

impl Replica {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keybridge"));
        command
            .args(args)
            .env("KEYBRIDGE_SOCKET", self.dir.path().join("run/admin.sock"))
            .env("KEYBRIDGE_HOME", self.dir.path().join("unused"))
            .env_remove("RUST_BACKTRACE");
        command
    }

    fn serve(&self) -> Running {
        let mut child = self
            .command(&["serve", "--team", self.config.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), format!("ready {}", self.resource));
        Running(child)
    }

    fn cli(&self, args: &[&str], stdin: Option<&str>, printed: &mut String) -> String {
        use std::io::Write;
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).to_string(), String::from_utf8_lossy(&out.stderr));
        printed.push_str(&stdout);
        printed.push_str(&stderr);
        assert!(out.status.success(), "keybridge {args:?}: {stderr}");
        stdout
    }
}

/// A team replica's configuration: listening on a port of its own, on the shared engines.
struct Engines {
    postgres: Postgres,
    bao: OpenBaoServer,
    provider: IdentityProvider,
    sim: Simulator,
    role_id: String,
    secret_file: std::path::PathBuf,
    data: std::path::PathBuf,
    /// What the replicas share: the AppRole's secret id, the data folder.
    shared: tempfile::TempDir,
    /// The simulator's.
    _runtime: tokio::runtime::Runtime,
}

/// Every `qc:` scope, as the identity provider knows them.
fn all_scopes() -> Vec<&'static str> {
    keybridge_catalog::Scope::ALL.iter().map(|s| s.as_str()).collect()
}

impl Engines {
    /// PostgreSQL, OpenBao with an AppRole for the replicas, and a QuantConnect simulator whose
    /// token is the sentinel, beside `provider`.
    fn start(provider: IdentityProvider) -> Engines {
        Engines::start_on(Postgres::start(), provider)
    }

    /// [`Engines::start`] on `postgres`.
    fn start_on(postgres: Postgres, provider: IdentityProvider) -> Engines {
        let bao = OpenBaoServer::start();
        let (role_id, secret_id) = bao.approle("keybridge", &["keybridge/desk"], 600);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let sim = runtime.block_on(Simulator::start(SENTINEL));
        let shared = tempfile::tempdir().unwrap();
        let secret_file = shared.path().join("secret-id");
        std::fs::write(&secret_file, &secret_id).unwrap();
        let data = shared.path().join("data");
        Engines { postgres, bao, provider, sim, role_id, secret_file, data, shared, _runtime: runtime }
    }

    fn replica(&self, name: &str, extra: &str) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let resource = format!("http://127.0.0.1:{port}/mcp");
        let config = dir.path().join("team.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nresource = \"{resource}\"\nissuer = \"{}\"\ndata_dir = \"{}\"\nquantconnect = \"{}\"\n\
                 database = \"{}\"\n{}replica = \"{name}\"\n{extra}\n[openbao]\naddress = \"{}\"\nmount = \"secret\"\nprefix = \"keybridge/desk\"\n\
                 role_id = \"{}\"\nsecret_id_file = \"{}\"\n\n[clients]\ndesk = \"Desk (team)\"\nkeybridge-mcp = \"Claude (team)\"\n",
                self.provider.issuer(),
                self.data.display(),
                self.sim.base_url(),
                self.postgres.config(),
                self.postgres.ca_file.as_ref().map(|ca| format!("database_ca = \"{}\"\n", ca.display())).unwrap_or_default(),
                self.bao.address,
                self.role_id,
                self.secret_file.display()
            ),
        )
        .unwrap();
        Replica { dir, config, resource }
    }
}

/// A replica's process, killed (SIGKILL) when dropped: a failing test leaves none behind.
struct Running(Child);

impl Running {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Call `read_account` over HTTP until told to stop or the replica goes away; count the answered
/// calls. What a call answered other than a result is kept in `odd`.
fn caller(
    resource: String,
    token: String,
    answered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    odd: Arc<Mutex<Option<String>>>,
) {
    let http = reqwest::blocking::Client::new();
    let mut id = 0;
    while !stop.load(Ordering::SeqCst) {
        id += 1;
        // A 2026-07-28 request stands alone: it says its protocol and its client's capabilities.
        let meta = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "keybridge-load", "version": "1"},
        });
        let params = json!({"name": "read_account", "arguments": {}, "_meta": meta});
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
        let reply = http
            .post(&resource)
            .bearer_auth(&token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", "tools/call")
            .header("Mcp-Name", "read_account")
            .json(&call)
            .send();
        // The replica was killed: the calls in flight end here.
        let Ok(reply) = reply else { return };
        let Ok(text) = reply.text() else { return };
        match serde_json::from_str::<Value>(&text) {
            Ok(body) if body["result"]["isError"] == false => {
                answered.fetch_add(1, Ordering::SeqCst);
            }
            _ => {
                *odd.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
                return;
            }
        }
    }
}

#[test]
fn a_team_replica_killed_mid_call_loses_no_audit_record_and_the_token_stays_in_openbao() {
    let engines = Engines::start(IdentityProvider::start(&all_scopes(), &[DESK]));
    let replica = engines.replica("a", "");
    let resource = replica.resource.clone();
    let mut printed = String::new();

    let mut serve = replica.serve();
    let user = engines.sim.account.user_id.clone();
    replica.cli(&["account", "add", "main", "--user-id", &user], Some(SENTINEL), &mut printed);
    replica.cli(&["client", "add", "Desk (team)", "--account", "main", "--preset", "research"], None, &mut printed);
    let client = replica.cli(&["client", "list"], None, &mut printed);
    let client: Value = serde_json::from_str(&client).unwrap();
    let id = client[0]["client_id"].as_str().unwrap().to_string();
    replica.cli(&["client", "update", &id, "--calls-per-minute", "1000000"], None, &mut printed);

    let token = engines.provider.token(&DESK, "qc:account:read", &resource);
    let answered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let odd = Arc::new(Mutex::new(None));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (resource, token, answered, stop, odd) =
                (resource.clone(), token.clone(), answered.clone(), stop.clone(), odd.clone());
            std::thread::spawn(move || caller(resource, token, answered, stop, odd))
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while answered.load(Ordering::SeqCst) < 200 {
        let odd_answer = odd.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert!(odd_answer.is_none(), "a call answered {odd_answer:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "only {} calls answered in a minute",
            answered.load(Ordering::SeqCst)
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    serve.kill(); // SIGKILL
    stop.store(true, Ordering::SeqCst);
    for caller in callers {
        caller.join().unwrap();
    }
    let answered = answered.load(Ordering::SeqCst);

    let mut serve = replica.serve();
    let verified = replica.cli(&["audit", "verify"], None, &mut printed);
    assert!(verified.contains("\"intact\": true"), "{verified}");
    let tail = replica.cli(&["audit", "tail", "--last", "100000", "--json"], None, &mut printed);
    let calls = tail.lines().filter(|l| l.contains("\"tool_call\"") && l.contains("\"ok\"")).count() as u64;
    eprintln!("SIGKILL under load, team replica: {answered} calls answered, {calls} call records on the chain");
    assert!(calls >= answered && calls <= answered + 4, "{calls} records for {answered} answered calls");
    serve.kill();

    let mut files = vec![replica.dir.path().to_path_buf(), engines.shared.path().to_path_buf()];
    let mut seen = vec![printed, engines.bao.log()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().flatten().map(|e| e.path()));
        } else if path.file_name().is_some_and(|n| n != "secret-id") {
            seen.push(String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).to_string());
        }
    }
    for text in seen {
        assert!(!text.contains(SENTINEL), "the token leaked: {text:.200}");
    }
}

/// `keybridge approvals ARGS --server URL`, signing in as `login` at the page it shows; its
/// stdout, or its stderr when it failed.
fn approvals_as(replica: &Replica, login: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["approvals"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--server", &replica.resource]);
    let (said, out) = signing_in(replica.command(&all), login);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() { Ok(stdout) } else { Err(said) }
}

/// Run `command`, which signs a person in by device sign-in: `login` confirms the code at the
/// page it shows. What it said on stderr, and how it ended.
fn signing_in(mut command: Command, login: &str) -> (String, std::process::Output) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut prompt = String::new();
    stderr.read_line(&mut prompt).unwrap();
    let page = prompt
        .strip_prefix("To sign in, open ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no sign-in prompt: {prompt:?}"));
    keybridge_testkit::sign_in_at(page, login);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    (format!("{prompt}{rest}"), child.wait_with_output().unwrap())
}

#[test]
fn a_call_waiting_on_one_replica_is_approved_through_the_other_by_a_person_of_the_approver_group() {
    const CALLER: IdentityClient =
        IdentityClient { id: "desk", secret: "desk-secret", scope: "qc:projects:write qc:projects:delete" };
    let people: &[(&str, &[&str])] = &[("bob", &["approvers"]), ("alice", &["traders"])];
    // The replicas reach the database over TLS alone, its certificate checked against the team's CA.
    let provider = IdentityProvider::start_with_people(&all_scopes(), &[CALLER], people, &["keybridge-cli"]);
    let engines = Engines::start_on(Postgres::start_tls_only(), provider);
    let a = engines.replica("a", "approvers = \"approvers\"\n");
    let b = engines.replica("b", "approvers = \"approvers\"\n");
    let (_a_running, _b_running) = (a.serve(), b.serve());
    let mut printed = String::new();
    let user = engines.sim.account.user_id.clone();
    a.cli(&["account", "add", "main", "--user-id", &user], Some(SENTINEL), &mut printed);
    a.cli(&["client", "add", "Desk (team)", "--account", "main", "--preset", "admin"], None, &mut printed);

    // The desk deletes a project through B: the call waits for an approver.
    let token = engines.provider.token(&CALLER, "qc:projects:write qc:projects:delete", &b.resource);
    let call = |tool: &str, arguments: Value| {
        let meta = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "desk", "version": "1"},
        });
        let params = json!({"name": tool, "arguments": arguments, "_meta": meta});
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
        let reply = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .unwrap()
            .post(&b.resource)
            .bearer_auth(&token)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", "tools/call")
            .header("Mcp-Name", tool)
            .json(&body)
            .send()
            .unwrap();
        serde_json::from_str::<Value>(&reply.text().unwrap()).unwrap()
    };
    let created = call("create_project", json!({"name": "Momentum", "language": "Py"}));
    let text = created["result"]["content"][0]["text"].as_str().unwrap_or_default().to_string();
    let project: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{created}"));
    let project = project["projects"][0]["projectId"].as_i64().unwrap();
    let waiting = std::thread::scope(|scope| {
        let waiting = scope.spawn(|| call("delete_project", json!({"projectId": project})));

        // Alice is no approver: the service refuses her, naming the group.
        let refused = approvals_as(&a, "alice", &["list"]).unwrap_err();
        assert!(refused.contains("403") && refused.contains("`approvers`"), "{refused}");

        // Bob, of the approver group, sees B's question through A and approves it there.
        let question = loop {
            let listed: Value = serde_json::from_str(&approvals_as(&a, "bob", &["list"]).unwrap()).unwrap();
            if let Some(question) = listed.as_array().and_then(|l| l.first()).cloned() {
                break question;
            }
        };
        assert_eq!(question["tool"], "delete_project", "{question}");
        assert_eq!(question["host"], "desk", "the question names whose call it is: {question}");
        assert!(!waiting.is_finished(), "the call waits for the approver");
        let id = question["id"].as_str().unwrap();
        let approved = approvals_as(&a, "bob", &["approve", id]).unwrap();
        assert!(approved.contains("approved"), "{approved}");
        waiting.join().unwrap()
    });
    assert_eq!(waiting["result"]["isError"], false, "the call B held ran once approved through A: {waiting}");
    assert_eq!(engines.sim.handle.request_count("/projects/delete"), 1);

    // On the shared chain: the answer, by bob.
    let tail = b.cli(&["audit", "tail", "--last", "1000", "--json"], None, &mut printed);
    let approval = tail.lines().find(|l| l.contains("\"approval\"")).unwrap_or_else(|| panic!("no approval: {tail}"));
    assert!(approval.contains("\"by\":\"bob\""), "{approval}");
    assert!(!printed.contains(SENTINEL));
}

/// `keybridge team sign-in --server URL` as `login`, who confirms the code at the page it shows.
fn team_sign_in(replica: &Replica, login: &str) -> String {
    let (said, out) = signing_in(replica.command(&["team", "sign-in", "--server", &replica.resource]), login);
    assert!(out.status.success(), "sign-in failed: {said}");
    format!("{said}{}", String::from_utf8_lossy(&out.stdout))
}

#[test]
fn a_stdio_client_reaches_the_team_service_through_the_bridge_signed_in_once_with_the_sign_in_in_the_keychain() {
    if !keybridge_vault::testing::in_keyring_session(
        "a_stdio_client_reaches_the_team_service_through_the_bridge_signed_in_once_with_the_sign_in_in_the_keychain",
    ) {
        return;
    }
    let people: &[(&str, &[&str])] = &[("carol", &["traders"])];
    let mut provider = IdentityProvider::start_with_people(&all_scopes(), &[], people, &["keybridge-mcp"]);
    // Access tokens of 20 s: every token the bridge is handed comes from a refresh.
    provider.restart_with_token_ttl(20);
    let engines = Engines::start(provider);
    let replica = engines.replica("a", "");
    let _running = replica.serve();
    let mut printed = String::new();
    let user = engines.sim.account.user_id.clone();
    replica.cli(&["account", "add", "main", "--user-id", &user], Some(SENTINEL), &mut printed);
    replica.cli(&["client", "add", "Claude (team)", "--account", "main", "--preset", "research"], None, &mut printed);

    // Before signing in, the bridge says what to run.
    let bridge = std::path::PathBuf::from(env!("CARGO_BIN_EXE_keybridge")).with_file_name("keybridge-mcp");
    let bridge = bridge.to_str().unwrap();
    let steps = json!([["call", "read_account", {}]]);
    // The bridge's CLI keeps its lock where this replica's commands keep theirs.
    let home = replica.dir.path().join("unused").display().to_string();
    let launch = |steps: &Value| {
        keybridge_testkit::ts_client_launching(
            bridge,
            &["--server", &replica.resource],
            &[("KEYBRIDGE_HOME", &home)],
            steps,
        )
    };
    let before = launch(&steps);
    let said = before.to_string();
    assert!(said.contains("keybridge team sign-in --server"), "{said}");

    // Carol signs in once, in a terminal; the sign-in goes to the keychain.
    let signed_in = team_sign_in(&replica, "carol");
    assert!(signed_in.contains(&format!("keybridge-mcp --server {}", replica.resource)), "{signed_in}");
    printed.push_str(&signed_in);

    // A third-party MCP client (the TypeScript SDK) starts the bridge as Claude Desktop would,
    // twice: each time the bridge is handed a refreshed token, the sign-in rotated in the keychain.
    for _ in 0..2 {
        let out = launch(&steps);
        assert!(out["tools"].as_array().is_some_and(|t| t.iter().any(|t| t == "read_account")), "{out}");
        assert_eq!(out["steps"][0]["isError"], false, "{out}");
        printed.push_str(&out.to_string());
    }
    // A token the service refuses though it has time left (here: one spoiled in the keychain)
    // is replaced by a refresh, and the call goes through.
    let (keychain, _) = keybridge_host::open_keychain(false).unwrap();
    let entry = format!("team-sign-in:{}", replica.resource);
    let mut kept: Value = serde_json::from_str(keychain.get(&entry).unwrap().unwrap().expose()).unwrap();
    assert!(kept["access_token"].is_null(), "with a refresh token, no access token is kept: {kept}");
    let refresh_token = kept["refresh_token"].as_str().unwrap().to_string();
    kept["access_token"] = json!("not-a-token");
    kept["expires_at"] = json!(4_000_000_000u64);
    keychain.set(&entry, &kept.to_string().into()).unwrap();
    let out = launch(&steps);
    assert_eq!(out["steps"][0]["isError"], false, "{out}");
    printed.push_str(&out.to_string());

    assert_eq!(engines.sim.handle.request_count("/account/read"), 3, "every call reached QuantConnect");
    let tail = replica.cli(&["audit", "tail", "--last", "1000", "--json"], None, &mut printed);
    let calls: Vec<&str> = tail.lines().filter(|l| l.contains("\"tool_call\"") && l.contains("read_account")).collect();
    assert_eq!(calls.len(), 3, "{tail}");
    // Each call's session was opened for carol, the person signed in.
    for call in calls {
        let call: Value = serde_json::from_str(call).unwrap();
        let session = call["event"]["session"].as_str().unwrap();
        let opened = tail
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|r| r["event"]["kind"] == "authentication" && r["event"]["session"] == session)
            .unwrap_or_else(|| panic!("no authentication for {session}: {tail}"));
        assert_eq!(opened["event"]["host"], "carol", "{opened}");
    }

    // What the bridge is handed is an access token of minutes, refreshed each time it is near
    // its end, and never on a terminal's screen.
    let token = |printed: &mut String| {
        let out = replica.command(&["team", "token", "--server", &replica.resource]).output().unwrap();
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let body: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(body["expires_in"].as_u64().unwrap() <= 20, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    };
    let (first, second) = (token(&mut printed), token(&mut printed));
    assert_ne!(first, second, "a token near its end is refreshed");

    // Signed out, the bridge says again what to run.
    replica.cli(&["team", "sign-out", "--server", &replica.resource], None, &mut printed);
    let after = launch(&steps);
    assert!(after.to_string().contains("keybridge team sign-in --server"), "{after}");
    printed.push_str(&after.to_string());

    for secret in [SENTINEL, first.as_str(), second.as_str(), refresh_token.as_str()] {
        assert!(!printed.contains(secret), "a secret was shown: {printed:.300}");
    }
    let mut files = vec![replica.dir.path().to_path_buf(), engines.shared.path().to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().flatten().map(|e| e.path()));
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).to_string();
            for secret in [SENTINEL, first.as_str(), refresh_token.as_str()] {
                assert!(!text.contains(secret), "{} holds a secret", path.display());
            }
        }
    }
}
