//! `keybridge-mcp --server URL`: stdio to a team service's Streamable HTTP endpoint, for MCP
//! clients that only start stdio servers.
//!
//! Each message read on stdin is POSTed as it is, with the access token of this user's sign-in
//! (see `keybridge team sign-in`); the answers, a JSON body or an event stream, are written to
//! stdout one message a line. The bridge adds what HTTP needs and stdio lacks: the bearer token,
//! the protocol version once negotiated, the session a server names, and `Mcp-Method` and
//! `Mcp-Name`. Requests run side by side: a call waiting for an approver holds no other.
//!
//! The token comes from `keybridge team token`, the CLI installed beside this bridge, through a
//! pipe: the bridge holds only an access token of minutes, never the refresh token, and never
//! writes either anywhere. A message's contents are never logged.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keybridge_secret::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Overrides where the CLI that keeps the sign-in is looked for.
pub const CLI_ENV: &str = "KEYBRIDGE_CLI";

/// JSON-RPC's code for an error of the server's own (the team service could not be asked).
const UNREACHABLE: i64 = -32000;

/// Where the bridge gets its access tokens: the CLI beside it, which keeps the sign-in.
#[derive(Debug)]
struct TokenSource {
    cli: PathBuf,
    server: String,
    /// The token in hand, and when to stop using it.
    held: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl TokenSource {
    async fn token(&self, stale: Option<&SecretString>) -> Result<SecretString, String> {
        let mut held = self.held.lock().await;
        if let Some((token, until)) = held.as_ref()
            && Instant::now() < *until
            && stale.is_none_or(|stale| stale.expose() != token.expose())
        {
            return Ok(token.clone());
        }
        let mut command = tokio::process::Command::new(&self.cli);
        command.args(["team", "token", "--server", &self.server]);
        if stale.is_some() {
            command.arg("--refused");
        }
        let out = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("cannot run {} for a token: {e}", self.cli.display()))?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            let said = said.trim().trim_start_matches("Error: ");
            return Err(if said.is_empty() { format!("{} gave no token", self.cli.display()) } else { said.into() });
        }
        let body: Value = serde_json::from_slice(&out.stdout)
            .map_err(|_| format!("{} answered something other than a token", self.cli.display()))?;
        let token = body["access_token"]
            .as_str()
            .map(|t| SecretString::new(t.to_string()))
            .ok_or_else(|| format!("{} answered no token", self.cli.display()))?;
        // Used until a few seconds before its end, then asked for again.
        let left = body["expires_in"].as_u64().unwrap_or(0).saturating_sub(5);
        *held = Some((token.clone(), Instant::now() + Duration::from_secs(left)));
        Ok(token)
    }
}

/// The CLI installed beside this bridge, or the one `KEYBRIDGE_CLI` names.
pub fn cli_beside_bridge() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(CLI_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| format!("the bridge cannot tell where it is installed: {e}"))?;
    let cli = exe.with_file_name(format!("keybridge{}", std::env::consts::EXE_SUFFIX));
    if cli.is_file() {
        Ok(cli)
    } else {
        Err(format!(
            "the keybridge command is not installed beside this bridge ({}); install Keybridge's package, or set {CLI_ENV}",
            cli.display()
        ))
    }
}

/// One team service, as this bridge speaks to it.
#[derive(Debug)]
pub struct Remote {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    tokens: TokenSource,
    /// What the server said at `initialize`: the protocol version, and its session if it keeps one.
    protocol: Mutex<Option<String>>,
    session: Mutex<Option<String>>,
}

fn secure_or_loopback(url: &reqwest::Url) -> bool {
    url.scheme() == "https"
        || (url.scheme() == "http"
            && matches!(url.host_str(), Some("127.0.0.1") | Some("localhost") | Some("[::1]") | Some("::1")))
}

impl Remote {
    /// The team service at `server` (its MCP endpoint), with tokens from the CLI at `cli`.
    pub fn new(server: &str, cli: PathBuf) -> Result<Remote, String> {
        let endpoint = reqwest::Url::parse(server).ok().filter(secure_or_loopback).ok_or_else(|| {
            format!("`{server}` is not a team service's address: give its MCP endpoint, https (http only on loopback)")
        })?;
        let http = reqwest::Client::builder()
            // The token must never follow a redirect somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        let tokens = TokenSource { cli, server: server.to_string(), held: tokio::sync::Mutex::new(None) };
        Ok(Remote { http, endpoint, tokens, protocol: Mutex::default(), session: Mutex::default() })
    }

    /// Serve one MCP client on `input` and `output` until `input` ends.
    pub async fn run(
        self: Arc<Self>,
        input: impl AsyncRead + Unpin,
        mut output: impl AsyncWrite + Unpin + Send + 'static,
    ) -> std::io::Result<()> {
        let (answers, mut to_write) = mpsc::unbounded_channel::<Vec<u8>>();
        let writer = tokio::spawn(async move {
            while let Some(mut line) = to_write.recv().await {
                line.push(b'\n');
                output.write_all(&line).await?;
                output.flush().await?;
            }
            Ok::<_, std::io::Error>(())
        });
        let mut lines = BufReader::new(input).lines();
        let mut in_flight = tokio::task::JoinSet::new();
        while let Some(line) = lines.next_line().await? {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let message: Value = match serde_json::from_str(line) {
                Ok(message) => message,
                Err(_) => {
                    let error = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error: a line that is not JSON"}});
                    let _ = answers.send(error.to_string().into_bytes());
                    continue;
                }
            };
            let (remote, answers) = (self.clone(), answers.clone());
            in_flight.spawn(async move { remote.forward(message, &answers).await });
            while in_flight.try_join_next().is_some() {}
        }
        // The client closed its end: answers already on their way get a moment to arrive, then
        // what is still waiting (an approval, say) is dropped.
        let _ = tokio::time::timeout(Duration::from_secs(5), async { while in_flight.join_next().await.is_some() {} })
            .await;
        in_flight.abort_all();
        self.end_session().await;
        drop(answers);
        writer.await.map_err(std::io::Error::other)?
    }

    /// POST one message; write what comes back, or, for a request, an error saying why nothing did.
    async fn forward(&self, message: Value, answers: &mpsc::UnboundedSender<Vec<u8>>) {
        let id = message.get("id").filter(|_| message.get("method").is_some()).cloned();
        let initialize = message["method"] == "initialize";
        let fail = |why: String| {
            if let Some(id) = &id {
                let error = json!({"jsonrpc": "2.0", "id": id, "error": {"code": UNREACHABLE, "message": why}});
                let _ = answers.send(error.to_string().into_bytes());
            }
        };
        let mut stale = None;
        let response = loop {
            let token = match self.tokens.token(stale.as_ref()).await {
                Ok(token) => token,
                Err(why) => return fail(why),
            };
            let response = match self.post(&message, &token).await {
                Ok(response) => response,
                Err(e) => {
                    return fail(format!(
                        "cannot reach the team service at {}: {}; check that it runs and the address",
                        self.endpoint,
                        e.without_url()
                    ));
                }
            };
            // A token the service no longer takes (it ended early, or its keys changed): once more
            // with a new one.
            if response.status() == reqwest::StatusCode::UNAUTHORIZED && stale.is_none() {
                stale = Some(token);
                continue;
            }
            break response;
        };
        let status = response.status();
        if let Some(session) = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.to_string());
        }
        if status == reqwest::StatusCode::ACCEPTED {
            return;
        }
        let event_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if !status.is_success() {
            let challenge = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response.text().await.unwrap_or_default();
            // A JSON-RPC answer with an HTTP error status (the server refused the request itself).
            if let Ok(answer) = serde_json::from_str::<Value>(&body)
                && (answer.get("result").is_some() || answer.get("error").is_some_and(Value::is_object))
            {
                let _ = answers.send(body.into_bytes());
                return;
            }
            return fail(refusal(&self.endpoint, status, challenge.as_deref(), &body));
        }
        if event_stream {
            self.relay_events(response, initialize, answers).await;
        } else {
            let body = response.bytes().await.unwrap_or_default();
            self.relay(&body, initialize, answers);
        }
    }

    async fn post(&self, message: &Value, token: &SecretString) -> Result<reqwest::Response, reqwest::Error> {
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .bearer_auth(token.expose())
            .header(reqwest::header::ACCEPT, "application/json, text/event-stream")
            .json(message);
        let meta_version = message["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"].as_str();
        let negotiated = self.protocol.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(version) = meta_version.map(str::to_string).or(negotiated) {
            request = request.header("MCP-Protocol-Version", version);
        }
        if let Some(session) = self.session.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            request = request.header("Mcp-Session-Id", session);
        }
        if let Some(method) = message["method"].as_str().filter(|m| header_safe(m)) {
            request = request.header("Mcp-Method", method);
            let name = match method {
                "tools/call" | "prompts/get" => message["params"]["name"].as_str(),
                "resources/read" => message["params"]["uri"].as_str(),
                _ => None,
            };
            if let Some(name) = name.filter(|n| header_safe(n)) {
                request = request.header("Mcp-Name", name);
            }
        }
        request.send().await
    }

    /// Write each message of a JSON body (one message or a batch).
    fn relay(&self, body: &[u8], initialize: bool, answers: &mpsc::UnboundedSender<Vec<u8>>) {
        let Ok(value) = serde_json::from_slice::<Value>(body) else { return };
        let messages = match value {
            Value::Array(batch) => batch,
            one => vec![one],
        };
        for message in messages {
            if initialize && let Some(version) = message["result"]["protocolVersion"].as_str() {
                *self.protocol.lock().unwrap_or_else(|e| e.into_inner()) = Some(version.to_string());
            }
            let _ = answers.send(message.to_string().into_bytes());
        }
    }

    /// Write the `data` of each event of a stream as it arrives (progress, then the answer).
    async fn relay_events(
        &self,
        mut response: reqwest::Response,
        initialize: bool,
        answers: &mpsc::UnboundedSender<Vec<u8>>,
    ) {
        let mut pending = Vec::new();
        let mut data = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    if !data.is_empty() {
                        self.relay(&data, initialize, answers);
                        data.clear();
                    }
                } else if let Some(field) = line.strip_prefix(b"data:") {
                    if !data.is_empty() {
                        data.push(b'\n');
                    }
                    data.extend_from_slice(field.strip_prefix(b" ").unwrap_or(field));
                }
            }
        }
        if !data.is_empty() {
            self.relay(&data, initialize, answers);
        }
    }

    /// Tell a server that keeps sessions this one is over.
    async fn end_session(&self) {
        let Some(session) = self.session.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
        let Ok(token) = self.tokens.token(None).await else { return };
        let _ = self
            .http
            .delete(self.endpoint.clone())
            .bearer_auth(token.expose())
            .header("Mcp-Session-Id", session)
            .timeout(Duration::from_secs(2))
            .send()
            .await;
    }
}

/// A value that may go in an HTTP header as it is.
fn header_safe(value: &str) -> bool {
    !value.is_empty() && value.len() <= 256 && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Why the service refused, in words that end in what to do.
fn refusal(endpoint: &reqwest::Url, status: reqwest::StatusCode, challenge: Option<&str>, body: &str) -> String {
    let said = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|b| b["error_description"].as_str().or(b["error"].as_str()).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    let scope = challenge.and_then(|c| c.split("scope=\"").nth(1)).and_then(|rest| rest.split('"').next());
    match (status.as_u16(), scope) {
        (401, _) => format!(
            "the team service at {endpoint} does not accept this sign-in ({said}); run `keybridge team sign-in --server {endpoint}` in a terminal"
        ),
        (403, Some(scope)) => format!(
            "the team service at {endpoint} refused: this call needs the scope {scope}, which your sign-in does not carry; ask the team's administrator for it, then sign in again"
        ),
        (code, _) => format!("the team service at {endpoint} answered {code}: {said}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_what_to_do() {
        let endpoint = reqwest::Url::parse("https://team.example/mcp").unwrap();
        let unauthorized = refusal(&endpoint, reqwest::StatusCode::UNAUTHORIZED, None, "{\"error\":\"invalid_token\"}");
        assert!(
            unauthorized.contains("invalid_token") && unauthorized.contains("keybridge team sign-in"),
            "{unauthorized}"
        );
        let challenge = "Bearer error=\"insufficient_scope\", scope=\"qc:live:trade\", resource_metadata=\"x\"";
        let forbidden = refusal(&endpoint, reqwest::StatusCode::FORBIDDEN, Some(challenge), "");
        assert!(forbidden.contains("qc:live:trade") && forbidden.contains("administrator"), "{forbidden}");
        assert!(!header_safe("tools/call\r\nX-Evil: 1") && header_safe("read_account"));
    }

    #[test]
    fn only_https_or_loopback_is_a_team_service() {
        let cli = PathBuf::from("keybridge");
        assert!(Remote::new("http://team.example/mcp", cli.clone()).is_err());
        assert!(Remote::new("https://team.example/mcp", cli.clone()).is_ok());
        assert!(Remote::new("http://127.0.0.1:8080/mcp", cli).is_ok());
    }
}
