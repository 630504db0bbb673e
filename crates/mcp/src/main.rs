//! `keybridge-mcp --client ID`: what an MCP client's config launches; `keybridge-mcp --server
//! URL` for a team service instead. Glue only: the work is in the library. stdout carries MCP
//! and nothing else; logs go to stderr.

#![deny(clippy::print_stdout)]

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use keybridge_broker_proto::Credential;
use keybridge_mcp::Bridge;
use keybridge_mcp::link::{Link, LinkConfig};
use rmcp::ServiceExt;

#[derive(Parser)]
#[command(name = "keybridge-mcp", version = keybridge_version::VERSION, about = "MCP server for QuantConnect through Keybridge (holds no secret)")]
#[command(group = clap::ArgGroup::new("to").required(true).args(["client", "server"]))]
struct Args {
    /// The paired client's id, as `keybridge client list` shows it.
    #[arg(long)]
    client: Option<String>,
    /// The broker's socket; default KEYBRIDGE_SOCKET or the per-user runtime folder.
    #[arg(long, conflicts_with = "server")]
    socket: Option<PathBuf>,
    /// A team service's MCP endpoint instead of this machine's Keybridge, as the person signed
    /// in with `keybridge team sign-in --server URL`.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
}

// One thread: the bridge serves one client, and every hand-off between threads is latency
// added to each call.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    // The MCP library logs whole messages (tool arguments, brokerage passwords among them, and
    // results) below warn: those levels never reach the log, whatever KEYBRIDGE_LOG asks for.
    let no_messages = tracing_subscriber::filter::filter_fn(|meta| {
        !meta.target().starts_with("rmcp") || *meta.level() <= tracing::Level::WARN
    });
    let filter = EnvFilter::try_from_env("KEYBRIDGE_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_filter(filter)
                .with_filter(no_messages),
        )
        .init();
    let args = Args::parse();
    if let Some(server) = args.server {
        tracing::info!(%server, version = keybridge_version::VERSION, "keybridge-mcp started for a team service");
        let cli = keybridge_mcp::remote::cli_beside_bridge().map_err(anyhow::Error::msg)?;
        let remote = keybridge_mcp::remote::Remote::new(&server, cli).map_err(anyhow::Error::msg)?;
        std::sync::Arc::new(remote)
            .run(tokio::io::stdin(), tokio::io::stdout())
            .await
            .context("the MCP session ended abnormally")?;
        std::process::exit(0)
    }
    let client = args.client.context("--client or --server is required")?;
    tracing::info!(%client, version = keybridge_version::VERSION, "keybridge-mcp started");
    let client_key = std::env::var("KEYBRIDGE_CLIENT_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(|k| Credential::new(k.trim().to_string()));
    let link = Link::new(LinkConfig {
        socket: args.socket.unwrap_or_else(keybridge_endpoint::default_address),
        client_id: client,
        client_key,
        app: keybridge_mcp::launch::AppLauncher::from_environment(),
    });

    // The broker is reached once a real conversation begins (`initialize`, or a 2026-07-28
    // request): a client probing with `server/discover` alone leaves no trace in Keybridge.
    // Where stdin and stdout are pipes (as MCP clients start servers), they are read and written
    // on the reactor, not through a blocking thread per message; tool calls are read directly
    // (`stdio`), everything else by rmcp.
    let stdio = keybridge_mcp::stdio::Stdio::new(rmcp::transport::io::stdio_pipes());
    let running = match Bridge::new(link.clone()).serve(stdio).await {
        Ok(running) => running,
        // The client went away before the conversation began: a probe, or a client giving up.
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => std::process::exit(0),
        Err(e) => return Err(e).context("MCP initialization failed"),
    };
    let peer = running.peer().clone();
    let mut changes = link.scope_changes();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let _ = peer.notify_tool_list_changed().await;
        }
    });
    running.waiting().await.context("the MCP session ended abnormally")?;
    // A pending stdin read cannot be cancelled; leave without waiting for it.
    std::process::exit(0)
}
