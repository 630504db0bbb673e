//! Running an entry exactly as an MCP client will, to prove the path without the client: the
//! same command, the same arguments, the same environment entry; then `initialize` and
//! `tools/list` over stdio, as a client sends them.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Entry;

/// What the server said.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub protocol_version: String,
    /// `name version`, as the server reports itself.
    pub server: String,
    pub tools: Vec<String>,
}

/// Why the server could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    #[error("cannot start {command}: {reason}; is Keybridge installed there?")]
    Start { command: String, reason: String },
    #[error("{command} did not answer {what} within {seconds} s{stderr}")]
    Timeout { command: String, what: &'static str, seconds: u64, stderr: String },
    #[error("{command} stopped before answering {what}{stderr}")]
    Closed { command: String, what: &'static str, stderr: String },
    #[error("{command} answered {what} with an error: {message}")]
    Refused { command: String, what: &'static str, message: String },
}

impl Entry {
    /// The command line an MCP client runs for this entry, for people to read.
    pub fn command_line(&self) -> String {
        format!("{} --client {}", self.bridge.display(), self.client_id)
    }

    /// Start the server as an MCP client would and ask for its tools, within `timeout` overall
    /// (a first connection may wait for the human to approve it).
    pub fn probe(&self, timeout: Duration) -> Result<Probe, ProbeError> {
        let command = self.command_line();
        let mut process = Command::new(&self.bridge);
        process.args(["--client", &self.client_id]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(key) = &self.client_key {
            process.env("KEYBRIDGE_CLIENT_KEY", key);
        }
        let mut child =
            process.spawn().map_err(|e| ProbeError::Start { command: command.clone(), reason: e.to_string() })?;
        let (lines_tx, lines) = mpsc::channel::<String>();
        let stdout = child.stdout.take().expect("stdout is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_text = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok).take(20) {
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let deadline = Instant::now() + timeout;
        let mut send = |message: Value| writeln!(stdin, "{message}").and_then(|_| stdin.flush());
        let result = (|| {
            let _ = send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "keybridge-connection-test", "version": env!("CARGO_PKG_VERSION")}}}));
            let init = answer(&lines, 1, deadline).map_err(|what| what.into_error(&command, "initialize", timeout))?;
            let init = result_of(init).map_err(|message| ProbeError::Refused {
                command: command.clone(),
                what: "initialize",
                message,
            })?;
            let _ = send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
            let _ = send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}));
            let listed =
                answer(&lines, 2, deadline).map_err(|what| what.into_error(&command, "tools/list", timeout))?;
            let listed = result_of(listed).map_err(|message| ProbeError::Refused {
                command: command.clone(),
                what: "tools/list",
                message,
            })?;
            // Only the status tool is listed when the bridge could not authenticate: it says why.
            let _ = send(
                json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "keybridge_status", "arguments": {}}}),
            );
            let status =
                answer(&lines, 3, deadline).map_err(|what| what.into_error(&command, "keybridge_status", timeout))?;
            let status = result_of(status).map_err(|message| ProbeError::Refused {
                command: command.clone(),
                what: "keybridge_status",
                message,
            })?;
            if status["isError"] == true {
                let said = status["content"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                return Err(ProbeError::Refused { command: command.clone(), what: "keybridge_status", message: said });
            }
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            Ok(Probe {
                protocol_version: text(&init["protocolVersion"]),
                server: format!("{} {}", text(&init["serverInfo"]["name"]), text(&init["serverInfo"]["version"])),
                tools: listed["tools"].as_array().into_iter().flatten().map(|t| text(&t["name"])).collect(),
            })
        })();
        drop(stdin);
        if crate::probe::wait_briefly(&mut child).is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        result.map_err(|error| match error {
            ProbeError::Timeout { command, what, seconds, .. } => ProbeError::Timeout {
                command,
                what,
                seconds,
                stderr: last_words(stderr_text.join().unwrap_or_default()),
            },
            ProbeError::Closed { command, what, .. } => {
                ProbeError::Closed { command, what, stderr: last_words(stderr_text.join().unwrap_or_default()) }
            }
            other => other,
        })
    }
}

enum NoAnswer {
    Timeout,
    Closed,
}

impl NoAnswer {
    fn into_error(self, command: &str, what: &'static str, timeout: Duration) -> ProbeError {
        match self {
            NoAnswer::Timeout => {
                ProbeError::Timeout { command: command.into(), what, seconds: timeout.as_secs(), stderr: String::new() }
            }
            NoAnswer::Closed => ProbeError::Closed { command: command.into(), what, stderr: String::new() },
        }
    }
}

fn answer(lines: &mpsc::Receiver<String>, id: u64, deadline: Instant) -> Result<Value, NoAnswer> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => return Err(NoAnswer::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err(NoAnswer::Closed),
        };
        if let Ok(message) = serde_json::from_str::<Value>(&line)
            && message["id"] == id
        {
            return Ok(message);
        }
    }
}

fn result_of(message: Value) -> Result<Value, String> {
    match message.get("result") {
        Some(result) => Ok(result.clone()),
        None => Err(message["error"]["message"].as_str().unwrap_or("no result").to_string()),
    }
}

/// A server told its input ended should leave by itself; one that does not is stopped.
fn wait_briefly(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// What the server said on stderr, to explain a failure; a line or two is enough.
fn last_words(stderr: String) -> String {
    let words: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    match words.last() {
        Some(last) => format!(": {}", last.trim()),
        None => String::new(),
    }
}
