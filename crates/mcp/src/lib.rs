//! `keybridge-mcp`: the MCP server an MCP client (Claude Desktop, Claude Code, Cursor, VS Code)
//! launches. It holds no QuantConnect secret: it authenticates to the Keybridge broker over the
//! local socket and forwards each tool call there.
//!
//! [`Bridge`] is the rmcp handler: `tools/list` is exactly what the client's scopes allow (from
//! the broker) plus `keybridge_status`; schemas, descriptions and annotations come from the
//! catalog. Failures are tool results with `isError` and plain words, never protocol errors.
//! [`link::Link`] is the broker connection: concurrent calls on one socket, transparent token
//! refresh, and reconnection when the broker restarts. [`remote::Remote`] is `--server URL`:
//! stdio relayed to a team service's Streamable HTTP endpoint with this user's access token.
//!
//! This crate must never link the vault, the broker or the QuantConnect client, never write
//! anything but MCP to stdout, and never log a token or a client key.

pub mod launch;
pub mod link;
pub mod remote;
pub mod result;
pub mod stdio;

use std::sync::Arc;

use keybridge_broker_proto::ErrorCode;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, InitializeRequestParams, InitializeResult,
    JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities, ServerConfig,
    Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::link::{Link, LinkError, Waiting};

/// The tool that is always listed: who am I, which account, which scopes, is Keybridge there.
pub const STATUS_TOOL: &str = "keybridge_status";

pub use result::MAX_RESULT_BYTES;

/// The MCP side of the bridge.
#[derive(Clone)]
pub struct Bridge {
    link: Arc<Link>,
    /// The scopes the client's tool list was last built from: a client that does not list again
    /// after `tools/list_changed` (Claude Desktop) keeps showing the old tools.
    listed_for: Arc<std::sync::Mutex<Option<Vec<String>>>>,
}

/// What `keybridge_status` says when the client's tool list is older than the client's scopes.
pub const RESTART_NOTE: &str = "The scopes changed since this MCP client listed its tools. Many clients (Claude Desktop \
among them) keep the tools they listed at start: quit the MCP client completely and open it again to see the tools \
these scopes allow.";

impl Bridge {
    pub fn new(link: Arc<Link>) -> Self {
        Self { link, listed_for: Arc::default() }
    }

    fn status_tool() -> Tool {
        let schema = json!({"type": "object", "properties": {}});
        Tool::new(
            STATUS_TOOL,
            "Keybridge status: this client, its QuantConnect account and scopes, and whether Keybridge is reachable.",
            as_object(schema),
        )
        .with_annotations(ToolAnnotations::new().read_only(true).destructive(false).idempotent(true).open_world(false))
    }

    async fn status(&self) -> CallToolResult {
        match self.link.session().await {
            Ok(session) => {
                let mut status = json!({
                    "keybridge": "connected",
                    "client_id": session.client_id,
                    "client_name": session.client_name,
                    "account": session.account,
                    "scopes": session.scopes,
                    "paused": session.paused,
                    "token_expires_at": session.expires_at,
                });
                let listed = self.listed_for.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if listed.is_some_and(|scopes| scopes != session.scopes) {
                    status["restart_needed"] = RESTART_NOTE.into();
                }
                result::local(status)
            }
            Err(e) => result::error(e.to_string()),
        }
    }
}

fn as_object(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

/// A catalog tool as MCP lists it.
pub fn mcp_tool(tool: &keybridge_catalog::Tool) -> Tool {
    let hints = tool.hints();
    Tool::new(tool.name, tool.description, as_object(tool.input_schema())).with_annotations(
        ToolAnnotations::new()
            .read_only(hints.read_only)
            .destructive(hints.destructive)
            .idempotent(hints.idempotent)
            .open_world(hints.open_world),
    )
}

/// What the user reads when a call does not go through.
pub fn explain(error: &LinkError) -> String {
    match error.code() {
        Some(ErrorCode::ApprovalDenied) => "Denied: you declined this call in Keybridge.".into(),
        Some(ErrorCode::ApprovalTimedOut) => format!("Denied: {error}. Approve it in the Keybridge window next time."),
        Some(ErrorCode::Paused) => format!("Keybridge has paused all access: {error}"),
        Some(ErrorCode::Cancelled) => "Cancelled.".into(),
        _ => error.to_string(),
    }
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_tool_list_changed().build())
            .with_server_info(Implementation::new("keybridge", keybridge_version::VERSION))
            .with_instructions(
                "QuantConnect through Keybridge. The QuantConnect token stays in Keybridge; calls that trade live or delete \
                 may wait for the user's approval in the Keybridge app. Use keybridge_status to see the account and scopes.",
            )
    }

    // Every protocol version rmcp knows, both eras: `initialize` up to 2025-11-25, and 2026-07-28
    // with `server/discover` and per-request `_meta` (rmcp's default list).

    /// A handshake-era client starts here: a real client, so reach the broker now, while it
    /// finishes the handshake. A `server/discover` probe reaches nothing.
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.link.begin();
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.link.begin();
        let mut tools = vec![Self::status_tool()];
        match self.link.tools().await {
            Ok(allowed) => {
                tools.extend(allowed.iter().filter_map(|t| keybridge_catalog::find(&t.name)).map(mcp_tool));
                if let Ok(session) = self.link.session().await {
                    *self.listed_for.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.scopes);
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing only the status tool"),
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.link.begin();
        let name = request.name.to_string();
        if name == STATUS_TOOL {
            return Ok(self.status().await.into());
        }
        let Some(tool) = keybridge_catalog::find(&name) else {
            let text = format!("Unknown tool `{name}`. Call tools/list to see the tools this client may use.");
            return Ok(result::error(text).into());
        };
        let arguments = Value::Object(request.arguments.unwrap_or_default());

        // While the call waits for the human, tell the client why, as progress. In this task,
        // not one of its own: most calls never wait, and a task per call costs every call.
        let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<Waiting>();
        let progress_token = context.meta.get_progress_token();
        // Boxed: rmcp moves this handler's future into a task of its own, by value, on every call.
        let mut call = Box::pin(self.link.call(
            tool.name,
            arguments.clone(),
            tool.hints().read_only,
            Some(progress_tx),
            Some(&context.ct),
        ));
        let mut step = 0.0;
        let outcome = loop {
            tokio::select! {
                outcome = &mut call => break outcome,
                Some(waiting) = progress_rx.recv() => {
                    step += 1.0;
                    if let Some(token) = &progress_token {
                        let message = format!(
                            "Waiting for your approval in Keybridge ({}s left): {}",
                            waiting.seconds_left, waiting.summary
                        );
                        let progress = ProgressNotificationParam::new(token.clone(), step).with_message(message);
                        let _ = context.peer.notify_progress(progress).await;
                    }
                }
            }
        };
        Ok(match outcome {
            Ok(value) => result::success(Some(tool), &arguments, value),
            Err(e) => result::error(explain(&e)),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_call_and_a_mismatched_answer_are_said_as_what_they_are() {
        assert_eq!(LinkError::Cancelled.code(), Some(ErrorCode::Cancelled));
        let mismatch = LinkError::Protocol("Tools { id: 3 }".into());
        assert_eq!(mismatch.code(), None, "a mismatch is not a refusal by the broker");
        assert!(explain(&mismatch).contains("update Keybridge"), "{}", explain(&mismatch));
    }

    #[test]
    fn catalog_tools_keep_their_annotations() {
        let tool = mcp_tool(keybridge_catalog::find("liquidate_live_algorithm").unwrap());
        let listed = serde_json::to_value(&tool).unwrap();
        assert_eq!(listed["annotations"]["destructiveHint"], true);
        assert_eq!(listed["annotations"]["readOnlyHint"], false);
        assert_eq!(listed["inputSchema"]["required"], json!(["projectId"]));
    }
}
