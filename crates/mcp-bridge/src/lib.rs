//! `keybridge-mcp`: the MCP server an MCP client (Claude Desktop, Claude Code, Cursor, VS Code)
//! launches. It holds no QuantConnect secret: it authenticates to the Keybridge broker over the
//! local socket and forwards each tool call there.
//!
//! [`Bridge`] is the rmcp handler: `tools/list` is exactly what the client's scopes allow (from
//! the broker) plus `keybridge_status`; schemas, descriptions and annotations come from the
//! catalog. Failures are tool results with `isError` and plain words, never protocol errors.
//! [`link::Link`] is the broker connection: concurrent calls on one socket, transparent token
//! refresh, and reconnection when the broker restarts.
//!
//! This crate must never link the vault, the broker or the QuantConnect client, never write
//! anything but MCP to stdout, and never log a token or a client key.

pub mod launch;
pub mod link;

use std::borrow::Cow;
use std::sync::Arc;

use keybridge_broker_proto::ErrorCode;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, JsonObject, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use crate::link::{Link, LinkError, Waiting};

/// The tool that is always listed: who am I, which account, which scopes, is Keybridge there.
pub const STATUS_TOOL: &str = "keybridge_status";

/// Results larger than this are cut with a note: a whole backtest's charts would fill the
/// model's context, and MCP clients refuse very large results.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;

/// The MCP side of the bridge.
#[derive(Clone)]
pub struct Bridge {
    link: Arc<Link>,
}

impl Bridge {
    pub fn new(link: Arc<Link>) -> Self {
        Self { link }
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
            Ok(session) => text_result(
                json!({
                    "keybridge": "connected",
                    "client_id": session.client_id,
                    "client_name": session.client_name,
                    "account": session.account,
                    "scopes": session.scopes,
                    "paused": session.paused,
                    "token_expires_at": session.expires_at,
                }),
                false,
            ),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
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

/// A JSON result as text, cut at [`MAX_RESULT_BYTES`] with a note saying how to get the rest.
fn text_result(value: Value, is_error: bool) -> CallToolResult {
    let text = serde_json::to_string(&value).unwrap_or_else(|_| value.to_string());
    let text = if text.len() > MAX_RESULT_BYTES {
        let mut cut = MAX_RESULT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!(
            "{}\n\n[Keybridge cut this result at {} KB of {} KB. Ask for less at a time: a smaller start/end range, a chart by name with a smaller count, or one file by name.]",
            &text[..cut],
            MAX_RESULT_BYTES / 1024,
            text.len() / 1024
        )
    } else {
        text
    };
    if is_error {
        CallToolResult::error(vec![ContentBlock::text(text)])
    } else {
        CallToolResult::success(vec![ContentBlock::text(text)])
    }
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

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        // Up to 2025-11-25: the 2026 lifecycle without `initialize` is not what clients speak yet.
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = vec![Self::status_tool()];
        match self.link.tools().await {
            Ok(allowed) => {
                tools.extend(allowed.iter().filter_map(|t| keybridge_catalog::find(&t.name)).map(mcp_tool));
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
        let name = request.name.to_string();
        if name == STATUS_TOOL {
            return Ok(self.status().await.into());
        }
        let Some(tool) = keybridge_catalog::find(&name) else {
            let text = format!("Unknown tool `{name}`. Call tools/list to see the tools this client may use.");
            return Ok(CallToolResult::error(vec![ContentBlock::text(text)]).into());
        };
        let arguments = Value::Object(request.arguments.unwrap_or_default());

        // While the call waits for the human, tell the client why, as progress.
        let (progress_tx, mut progress_rx) = tokio::sync::mpsc::unbounded_channel::<Waiting>();
        let progress_token = context.meta.get_progress_token();
        let peer = context.peer.clone();
        let forward = tokio::spawn(async move {
            let mut step = 0.0;
            while let Some(waiting) = progress_rx.recv().await {
                step += 1.0;
                let message = format!(
                    "Waiting for your approval in Keybridge ({}s left): {}",
                    waiting.seconds_left, waiting.summary
                );
                if let Some(token) = &progress_token {
                    let _ = peer
                        .notify_progress(ProgressNotificationParam::new(token.clone(), step).with_message(message))
                        .await;
                }
            }
        });
        let result =
            self.link.call(tool.name, arguments, tool.hints().read_only, Some(progress_tx), Some(&context.ct)).await;
        forward.abort();
        Ok(match result {
            Ok(value) => text_result(value, false),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(explain(&e))]),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(result: &CallToolResult) -> String {
        serde_json::to_value(result).unwrap()["content"][0]["text"].as_str().unwrap().to_string()
    }

    #[test]
    fn large_results_are_cut_with_a_note_saying_how_to_get_the_rest() {
        let big = json!({"logs": vec!["é".repeat(100); 5000]});
        let result = text_result(big, false);
        let text = text_of(&result);
        assert!(text.len() < MAX_RESULT_BYTES + 400, "{} bytes", text.len());
        assert!(text.contains("Keybridge cut this result") && text.contains("smaller start/end range"));
        let small = text_result(json!({"ok": true}), false);
        assert_eq!(text_of(&small), r#"{"ok":true}"#);
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
