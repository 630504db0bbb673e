//! `keybridge-mcp --server URL`: stdio to a team service's Streamable HTTP endpoint, for MCP
//! clients that only start stdio servers.
//!
//! Each message read on stdin is POSTed as it is, with the access token of this user's sign-in
//! (see `keybridge team sign-in`); the answers, a JSON body or an event stream, are written to
//! stdout one message a line. The bridge adds what HTTP needs and stdio lacks: the bearer token,
//! the protocol version once negotiated, the session a server names, and `Mcp-Method` and
//! `Mcp-Name`. Requests run side by side (a call waiting for an approver holds no other);
//! notifications and responses go in the order they came. Every request gets an answer: the
//! service's, or an error saying why there is none.
//!
//! The token comes from `keybridge team token`, the CLI installed beside this bridge, through a
//! pipe: the bridge holds only an access token of minutes, never the refresh token, and never
//! writes either anywhere. A message's contents are never logged. What a service or a provider
//! sends is bounded: a line, a body, an event.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keybridge_secret::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::stdio::{Input, Line};

/// Overrides where the CLI that keeps the sign-in is looked for.
pub const CLI_ENV: &str = "KEYBRIDGE_CLI";

/// JSON-RPC's code for an error of the server's own (the team service could not answer).
const UNANSWERED: i64 = -32000;

/// The most a body or one event from the service may hold.
const MAX_BODY: usize = 16 << 20;

/// How long the CLI may take to hand out a token (a keychain may ask the person to unlock it).
const TOKEN_WAIT: Duration = Duration::from_secs(120);

/// How long the service may stay silent in the middle of an answer: a call may wait minutes for
/// an approver.
const SILENCE: Duration = Duration::from_secs(15 * 60);

/// Text from elsewhere, fit to show: no control characters (a terminal or a log could be
/// driven by them), at most `max` characters.
fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// Where the bridge gets its access tokens: the CLI beside it, which keeps the sign-in.
#[derive(Debug)]
struct TokenSource {
    cli: PathBuf,
    server: String,
    /// The token in hand, and when to stop using it.
    held: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl TokenSource {
    /// A token to call with; not `refused`, the one the service just turned away.
    async fn token(&self, refused: Option<&SecretString>) -> Result<SecretString, String> {
        let mut held = self.held.lock().await;
        if let Some((token, until)) = held.as_ref()
            && Instant::now() < *until
            && refused.is_none_or(|refused| refused.expose() != token.expose())
        {
            return Ok(token.clone());
        }
        let mut command = tokio::process::Command::new(&self.cli);
        command.args(["team", "token", "--server", &self.server]);
        if refused.is_some() {
            command.arg("--refused");
        }
        // Never killed halfway: it may be writing a rotated refresh token to the keychain, and
        // losing that would end the sign-in. Its own requests are bounded.
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("KEYBRIDGE_LOG")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE");
        let cli = self.cli.display();
        let out = tokio::time::timeout(TOKEN_WAIT, command.output())
            .await
            .map_err(|_| format!("{cli} gave no token within {} s; is the keychain locked?", TOKEN_WAIT.as_secs()))?
            .map_err(|e| format!("cannot run {cli} for a token: {e}"))?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            // The error's first line says what went wrong and what to do; the rest is its causes.
            let first = said.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
            let first = printable(first.trim().trim_start_matches("Error: "), 400);
            return Err(if first.is_empty() { format!("{cli} gave no token") } else { first });
        }
        let body: Value =
            serde_json::from_slice(&out.stdout).map_err(|_| format!("{cli} answered something other than a token"))?;
        let token = body["access_token"]
            .as_str()
            .map(|t| SecretString::new(t.to_string()))
            .ok_or_else(|| format!("{cli} answered no token"))?;
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

/// An endpoint a token may go to: https, or http on loopback; no user, query or fragment.
fn fit_for_tokens(url: &reqwest::Url) -> bool {
    let transport = url.scheme() == "https"
        || (url.scheme() == "http"
            && matches!(url.host_str(), Some("127.0.0.1") | Some("localhost") | Some("[::1]") | Some("::1")));
    transport
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
}

/// Answers on their way to stdout.
type Answers = mpsc::Sender<Vec<u8>>;

async fn send(answers: &Answers, message: &Value) {
    let _ = answers.send(message.to_string().into_bytes()).await;
}

/// The ids of the requests in `message` (one message or a batch).
fn request_ids(message: &Value) -> Vec<Value> {
    let one = |m: &Value| m.get("method").and_then(|_| m.get("id")).filter(|id| !id.is_null()).cloned();
    match message {
        Value::Array(batch) => batch.iter().filter_map(one).collect(),
        single => one(single).into_iter().collect(),
    }
}

impl Remote {
    /// The team service at `server` (its MCP endpoint), with tokens from the CLI at `cli`.
    pub fn new(server: &str, cli: PathBuf) -> Result<Remote, String> {
        let endpoint = reqwest::Url::parse(server).ok().filter(fit_for_tokens).ok_or_else(|| {
            format!(
                "`{}` is not a team service's address: give its MCP endpoint, https (http only on loopback), with no user, query or fragment",
                printable(server, 200)
            )
        })?;
        let http = reqwest::Client::builder()
            // The token must never follow a redirect somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(SILENCE)
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        let tokens = TokenSource { cli, server: endpoint.to_string(), held: tokio::sync::Mutex::new(None) };
        Ok(Remote { http, endpoint, tokens, protocol: Mutex::default(), session: Mutex::default() })
    }

    /// Serve one MCP client on `input` and `output` until `input` ends.
    pub async fn run(
        self: Arc<Self>,
        input: impl AsyncRead + Send + Unpin,
        mut output: impl AsyncWrite + Unpin + Send + 'static,
    ) -> std::io::Result<()> {
        // Bounded: a client that stops reading stops this bridge reading, not its memory growing.
        let (answers, mut to_write) = mpsc::channel::<Vec<u8>>(64);
        let writer = tokio::spawn(async move {
            while let Some(mut line) = to_write.recv().await {
                line.push(b'\n');
                output.write_all(&line).await?;
                output.flush().await?;
            }
            Ok::<_, std::io::Error>(())
        });
        let mut input = Input::new(input);
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            match input.next_line().await? {
                Line::Ended => break,
                Line::TooLong => {
                    let error = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "Invalid Request: a message longer than this bridge reads"}});
                    send(&answers, &error).await;
                    continue;
                }
                Line::Whole => {}
            }
            let line = input.take_line();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(message) = serde_json::from_slice::<Value>(&line) else {
                let error = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error: a line that is not JSON"}});
                send(&answers, &error).await;
                continue;
            };
            if request_ids(&message).is_empty() {
                // Notifications and responses keep their order (`initialized` before what follows).
                self.forward(message, &answers).await;
            } else {
                let (remote, answers) = (self.clone(), answers.clone());
                in_flight.spawn(async move { remote.forward(message, &answers).await });
            }
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

    /// POST one message (or batch); write what comes back, and for each request it held that got
    /// no answer, an error saying why.
    async fn forward(&self, message: Value, answers: &Answers) {
        let requests = request_ids(&message);
        let initialize = message["method"] == "initialize";
        let answered = match self.exchange(&message, initialize, answers).await {
            Ok(answered) => answered,
            Err(why) => {
                for id in &requests {
                    send(answers, &json!({"jsonrpc": "2.0", "id": id, "error": {"code": UNANSWERED, "message": why}}))
                        .await;
                }
                return;
            }
        };
        for id in requests.iter().filter(|id| !answered.contains(&id.to_string())) {
            let why = format!("the team service at {} gave no answer to this request", self.endpoint);
            send(answers, &json!({"jsonrpc": "2.0", "id": id, "error": {"code": UNANSWERED, "message": why}})).await;
        }
    }

    /// Send `message`; relay the answers. The ids answered, or why nothing could be.
    async fn exchange(&self, message: &Value, initialize: bool, answers: &Answers) -> Result<HashSet<String>, String> {
        let mut refused = None;
        let mut response = loop {
            let token = self.tokens.token(refused.as_ref()).await?;
            let response = self.post(message, &token).await.map_err(|e| {
                format!(
                    "cannot reach the team service at {}: {}; check that it runs and the address",
                    self.endpoint,
                    e.without_url()
                )
            })?;
            // A token the service no longer takes (it ended early, or its keys changed): once more
            // with a new one.
            if response.status() == reqwest::StatusCode::UNAUTHORIZED && refused.is_none() {
                refused = Some(token);
                continue;
            }
            break response;
        };
        let status = response.status();
        if let Some(session) = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.to_string());
        }
        let mut answered = HashSet::new();
        if status == reqwest::StatusCode::ACCEPTED {
            return Ok(answered);
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
            let body = read_body(&mut response).await.unwrap_or_default();
            // A JSON-RPC answer with an HTTP error status (the server refused the request itself).
            if let Ok(answer) = serde_json::from_slice::<Value>(&body)
                && (answer.get("result").is_some() || answer.get("error").is_some_and(Value::is_object))
            {
                self.relay(answer, initialize, answers, &mut answered).await;
                return Ok(answered);
            }
            return Err(refusal(&self.endpoint, status, challenge.as_deref(), &String::from_utf8_lossy(&body)));
        }
        if event_stream {
            self.relay_events(response, initialize, answers, &mut answered).await?;
        } else {
            let body = read_body(&mut response).await?;
            let body = serde_json::from_slice::<Value>(&body).map_err(|_| {
                format!("the team service at {} answered with something other than JSON", self.endpoint)
            })?;
            self.relay(body, initialize, answers, &mut answered).await;
        }
        Ok(answered)
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
        if let Some(version) = meta_version.map(str::to_string).or(negotiated).filter(|v| header_safe(v)) {
            request = request.header("MCP-Protocol-Version", version);
        }
        if let Some(session) = self.session.lock().unwrap_or_else(|e| e.into_inner()).clone().filter(|s| header_safe(s))
        {
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

    /// Write each message of a body (one message or a batch), one a line.
    async fn relay(&self, body: Value, initialize: bool, answers: &Answers, answered: &mut HashSet<String>) {
        let messages = match body {
            Value::Array(batch) => batch,
            one => vec![one],
        };
        for message in messages {
            if initialize && let Some(version) = message["result"]["protocolVersion"].as_str() {
                *self.protocol.lock().unwrap_or_else(|e| e.into_inner()) = Some(version.to_string());
            }
            if message.get("method").is_none()
                && let Some(id) = message.get("id")
            {
                answered.insert(id.to_string());
            }
            send(answers, &message).await;
        }
    }

    /// Write the `data` of each event of a stream as it arrives (progress, then the answer).
    async fn relay_events(
        &self,
        mut response: reqwest::Response,
        initialize: bool,
        answers: &Answers,
        answered: &mut HashSet<String>,
    ) -> Result<(), String> {
        let mut pending = Vec::new();
        let mut data = Vec::new();
        let too_long = || format!("the team service at {} sent an event longer than {MAX_BODY} bytes", self.endpoint);
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Err(format!("the answer from {} broke off: {}", self.endpoint, e.without_url())),
            };
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = line.strip_suffix(b"\n").unwrap_or(&line);
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    if let Ok(event) = serde_json::from_slice::<Value>(&data) {
                        self.relay(event, initialize, answers, answered).await;
                    }
                    data.clear();
                } else if let Some(field) = line.strip_prefix(b"data:") {
                    if !data.is_empty() {
                        data.push(b'\n');
                    }
                    data.extend_from_slice(field.strip_prefix(b" ").unwrap_or(field));
                }
            }
            if pending.len() + data.len() > MAX_BODY {
                return Err(too_long());
            }
        }
        if let Ok(event) = serde_json::from_slice::<Value>(&data) {
            self.relay(event, initialize, answers, answered).await;
        }
        Ok(())
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

/// A body of at most [`MAX_BODY`] bytes.
async fn read_body(response: &mut reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("the answer broke off: {}", e.without_url()))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(format!("the team service's answer is longer than {MAX_BODY} bytes"));
        }
    }
    Ok(body)
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
        .unwrap_or_else(|| body.to_string());
    let said = printable(&said, 200);
    let scope = challenge.and_then(|c| c.split("scope=\"").nth(1)).and_then(|rest| rest.split('"').next());
    match (status.as_u16(), scope) {
        (401, _) => format!(
            "the team service at {endpoint} does not accept this sign-in ({said}); run `keybridge team sign-in --server {endpoint}` in a terminal"
        ),
        (403, Some(scope)) => format!(
            "the team service at {endpoint} refused: this call needs the scope {}, which your sign-in does not carry; ask the team's administrator for it, then sign in again",
            printable(scope, 64)
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
        let spoofed = refusal(&endpoint, reqwest::StatusCode::BAD_GATEWAY, None, "\u{1b}[2Jgone");
        assert!(!spoofed.contains('\u{1b}') && spoofed.contains("gone"), "{spoofed}");
        assert!(!header_safe("tools/call\r\nX-Evil: 1") && header_safe("read_account"));
    }

    #[test]
    fn only_https_or_loopback_without_a_user_or_query_is_a_team_service() {
        let cli = PathBuf::from("keybridge");
        for refused in ["http://team.example/mcp", "https://user:pw@team.example/mcp", "https://team.example/mcp?x=1"] {
            assert!(Remote::new(refused, cli.clone()).is_err(), "{refused}");
        }
        assert!(Remote::new("https://team.example/mcp", cli.clone()).is_ok());
        assert!(Remote::new("http://127.0.0.1:8080/mcp", cli).is_ok());
    }

    #[test]
    fn each_request_of_a_batch_is_known_by_its_id_and_a_notification_has_none() {
        let batch = json!([
            {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": "a", "method": "ping"},
            {"jsonrpc": "2.0", "id": 7, "result": {}},
        ]);
        assert_eq!(request_ids(&batch), vec![json!(1), json!("a")]);
        assert!(request_ids(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled"})).is_empty());
    }

    /// A service that answers a request with nothing (202), or with something that is not JSON:
    /// the client is told, and never left waiting.
    #[tokio::test]
    async fn a_request_the_service_leaves_unanswered_gets_an_error_not_silence() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let answers = [
                "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n",
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5\r\n\r\nhello",
            ];
            for answer in answers {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = vec![0; 65536];
                let _ = socket.read(&mut request).await.unwrap();
                socket.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        let input = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n";
        for expected in ["gave no answer", "something other than JSON"] {
            let remote = Remote::new(&format!("http://{address}/mcp"), PathBuf::from("unused")).unwrap();
            // A token in hand: the CLI is not asked.
            *remote.tokens.held.lock().await =
                Some((SecretString::new("t".into()), Instant::now() + Duration::from_secs(60)));
            let (output, mut written) = tokio::io::duplex(1 << 16);
            Arc::new(remote).run(&input[..], output).await.unwrap();
            let mut said = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut written, &mut said).await.unwrap();
            let said: Value = serde_json::from_str(said.trim()).unwrap();
            assert_eq!(said["id"], 1, "{said}");
            assert!(said["error"]["message"].as_str().unwrap().contains(expected), "{said}");
        }
    }
}
