//! The bridge's stdio transport: rmcp's own line transport, with one shortcut on the path every
//! tool call takes.
//!
//! rmcp reads a request by trying each kind of client request in turn until one fits, which for
//! `tools/call` means a dozen failed attempts, each building an error message: about a quarter
//! of the bridge's work per call. Here a line that is a `tools/call` request (a `method`, an
//! `id`, no `result` or `error`) is read straight as one, into the very type rmcp would have
//! settled on. Every other line (`initialize`, `server/discover`, notifications, responses,
//! anything malformed) is handed to rmcp's transport as it came and read by rmcp, with all of
//! rmcp's rules: what it ignores, what it answers with an Invalid Request error. Order is kept:
//! what was handed over is read before the next line is looked at. Answers are written by
//! rmcp's transport.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context, Poll};

use rmcp::RoleServer;
use rmcp::model::{CallToolRequest, ClientRequest, JsonRpcMessage, JsonRpcRequest};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::{AsyncRwTransport, DEFAULT_MAX_LINE_LENGTH};
use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::sync::mpsc;

/// Lines rmcp reads itself, handed over whole.
struct Handed {
    lines: mpsc::UnboundedReceiver<Vec<u8>>,
    current: Vec<u8>,
    read: usize,
}

impl AsyncRead for Handed {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        while this.read == this.current.len() {
            match this.lines.poll_recv(cx) {
                Poll::Ready(Some(line)) => (this.current, this.read) = (line, 0),
                // The input ended: so does what rmcp reads.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = buf.remaining().min(this.current.len() - this.read);
        buf.put_slice(&this.current[this.read..this.read + n]);
        this.read += n;
        Poll::Ready(Ok(()))
    }
}

/// What the shortcut needs to know of a line: whether it is a request, and for what. Keys
/// count by being there, `null` or not, as rmcp counts them.
#[derive(Deserialize)]
struct Shape<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    id: bool,
    #[serde(default, deserialize_with = "present")]
    result: bool,
    #[serde(default, deserialize_with = "present")]
    error: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(value: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(value).map(|_| true)
}

/// A `tools/call` request read directly, or `None` for rmcp to read the line its own way.
fn tool_call(line: &[u8]) -> Option<RxJsonRpcMessage<RoleServer>> {
    let shape: Shape = serde_json::from_slice(line).ok()?;
    if shape.method.as_deref() != Some("tools/call") || !shape.id || shape.result || shape.error {
        return None;
    }
    let request: JsonRpcRequest<CallToolRequest> = serde_json::from_slice(line).ok()?;
    Some(JsonRpcMessage::Request(JsonRpcRequest {
        jsonrpc: request.jsonrpc,
        id: request.id,
        request: ClientRequest::CallToolRequest(request.request),
    }))
}

/// One line of input, as rmcp delimits it.
pub(crate) enum Line {
    /// A whole line, its newline (and a carriage return) taken off, in the reader's buffer.
    Whole,
    /// Longer than rmcp reads: skipped to its end.
    TooLong,
    Ended,
}

/// The input, read a line at a time.
pub(crate) struct Input<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    skipping: bool,
}

impl<R: AsyncRead + Send + Unpin> Input<R> {
    pub(crate) fn new(input: R) -> Self {
        Input { reader: BufReader::new(input), line: Vec::new(), skipping: false }
    }

    /// The line [`Input::next_line`] read, without its newline, a carriage return or a BOM;
    /// the next read starts a new one.
    pub(crate) fn take_line(&mut self) -> Vec<u8> {
        let mut line = std::mem::take(&mut self.line);
        for suffix in [&b"\n"[..], b"\r"] {
            if line.ends_with(suffix) {
                line.truncate(line.len() - 1);
            }
        }
        if line.starts_with(b"\xEF\xBB\xBF") {
            line.drain(..3);
        }
        line
    }

    /// Read up to the next newline into `self.line`, at most rmcp's longest line. Cancelled
    /// halfway (another branch of a `select!` won), it resumes where it was.
    pub(crate) async fn next_line(&mut self) -> std::io::Result<Line> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(Line::Ended);
            }
            let newline = available.iter().position(|b| *b == b'\n');
            let take = newline.map_or(available.len(), |at| at + 1);
            if !self.skipping {
                self.line.extend_from_slice(&available[..take]);
            }
            self.reader.consume(take);
            if self.line.len() > DEFAULT_MAX_LINE_LENGTH {
                self.line.clear();
                self.skipping = true;
            }
            if newline.is_some() {
                if std::mem::take(&mut self.skipping) {
                    return Ok(Line::TooLong);
                }
                return Ok(Line::Whole);
            }
        }
    }
}

pub struct Stdio<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    input: Input<R>,
    to_rmcp: Option<mpsc::UnboundedSender<Vec<u8>>>,
    rmcp: AsyncRwTransport<RoleServer, Handed, W>,
}

impl<R, W> Stdio<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    pub fn new((input, output): (R, W)) -> Self {
        let (to_rmcp, lines) = mpsc::unbounded_channel();
        Self {
            input: Input::new(input),
            to_rmcp: Some(to_rmcp),
            rmcp: AsyncRwTransport::new(Handed { lines, current: Vec::new(), read: 0 }, output),
        }
    }
}

impl<R, W> Transport<RoleServer> for Stdio<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.rmcp.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if self.to_rmcp.is_none() {
                return self.rmcp.receive().await;
            }
            let line = tokio::select! {
                // What was handed to rmcp comes out first: messages keep their order.
                biased;
                message = self.rmcp.receive() => return message,
                line = self.input.next_line() => line,
            };
            match line {
                Ok(Line::Whole) => {
                    let message = {
                        let text = self.input.line.strip_suffix(b"\n").unwrap_or(&self.input.line);
                        let text = text.strip_suffix(b"\r").unwrap_or(text);
                        tool_call(text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text))
                    };
                    let line = std::mem::take(&mut self.input.line);
                    if let Some(message) = message {
                        return Some(message);
                    }
                    if let Some(to_rmcp) = &self.to_rmcp {
                        let _ = to_rmcp.send(line);
                    }
                }
                Ok(Line::TooLong) => {
                    tracing::error!(
                        max_line_length = DEFAULT_MAX_LINE_LENGTH,
                        "Incoming message exceeded the maximum line length, discarding it"
                    );
                }
                Ok(Line::Ended) | Err(_) => {
                    // A last line without its newline is handed over too: rmcp drops it.
                    if let Some(to_rmcp) = self.to_rmcp.take()
                        && !self.input.line.is_empty()
                    {
                        let _ = to_rmcp.send(std::mem::take(&mut self.input.line));
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.to_rmcp = None;
        self.rmcp.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn rmcp_reads(line: &str) -> RxJsonRpcMessage<RoleServer> {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn a_tool_call_is_read_as_rmcp_reads_it() {
        for line in [
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "read_account", "arguments": {}}}),
            json!({"jsonrpc": "2.0", "id": "x", "method": "tools/call",
                   "params": {"name": "read_file", "arguments": {"projectId": 1, "big": 12345678901234567890u64},
                              "_meta": {"progressToken": 3, "io.modelcontextprotocol/protocolVersion": "2026-07-28"}}}),
        ] {
            let text = line.to_string();
            let fast = tool_call(text.as_bytes()).expect("read by the shortcut");
            assert_eq!(serde_json::to_value(&fast).unwrap(), serde_json::to_value(rmcp_reads(&text)).unwrap());
        }
    }

    #[test]
    fn anything_else_is_left_to_rmcp() {
        for line in [
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
            json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "x"}}),
            json!({"jsonrpc": "2.0", "id": null, "method": "tools/call", "params": {"name": "x"}}),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "result": {}, "params": {"name": "x"}}),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "error": null, "params": {"name": "x"}}),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}),
        ] {
            assert!(tool_call(line.to_string().as_bytes()).is_none(), "{line}");
        }
        assert!(tool_call(br#"{"method": "tools/call", "method": "tools/call", "id": 1}"#).is_none());
        assert!(tool_call(b"not json").is_none());
    }

    /// Lines written to a transport's input; the messages it gives, and what it wrote back.
    async fn run(input: &str) -> (Vec<Value>, String) {
        let (mut client_in, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, mut client_out) = tokio::io::duplex(1 << 20);
        let input = input.to_string();
        // Written alongside the reading: a long input does not fit the pipe at once.
        tokio::spawn(async move {
            client_in.write_all(input.as_bytes()).await.unwrap();
        });
        let mut stdio = Stdio::new((server_in, server_out));
        let mut received = Vec::new();
        while let Some(message) = stdio.receive().await {
            received.push(serde_json::to_value(&message).unwrap());
        }
        stdio.close().await.unwrap();
        drop(stdio);
        let mut written = String::new();
        client_out.read_to_string(&mut written).await.unwrap();
        (received, written)
    }

    #[tokio::test]
    async fn messages_keep_their_order_and_rmcps_rules_still_apply() {
        let call = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "t"}});
        let input = [
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "c", "version": "1"}}})
            .to_string(),
            call(1).to_string(),
            // Not JSON at all: rmcp ignores it. A notification MCP does not define: rmcp passes it on.
            "{oops".into(),
            json!({"jsonrpc": "2.0", "method": "textDocument/didOpen"}).to_string(),
            format!("\u{feff}{}\r", call(2)),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
            // Well-formed but no message at all: rmcp answers Invalid Request.
            json!({"jsonrpc": "2.0", "id": 9, "result": {}, "error": {}}).to_string(),
            call(3).to_string(),
        ]
        .join("\n");
        let (received, written) = run(&format!("{input}\n")).await;
        let order: Vec<Value> =
            received.iter().map(|m| json!([m.get("method").cloned().unwrap_or_default(), m["id"]])).collect();
        assert_eq!(
            order,
            [
                json!(["initialize", 0]),
                json!(["tools/call", 1]),
                json!(["textDocument/didOpen", null]),
                json!(["tools/call", 2]),
                json!(["notifications/initialized", null]),
                json!(["tools/call", 3]),
            ]
        );
        let answer: Value = serde_json::from_str(written.trim()).unwrap();
        assert_eq!(answer["error"]["code"], -32600, "{written}");
    }

    #[tokio::test]
    async fn a_line_longer_than_rmcp_reads_is_skipped_and_the_next_one_read() {
        let long = format!("{{\"pad\": \"{}\"}}", "x".repeat(DEFAULT_MAX_LINE_LENGTH + 10));
        let call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "t"}});
        let (received, _) = run(&format!("{long}\n{call}\n")).await;
        assert_eq!(received.len(), 1);
        assert_eq!(received[0]["id"], 4);
    }
}
