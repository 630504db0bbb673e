//! `keybridge`: the headless command line of Keybridge.
//!
//! Thin glue: each command parses its arguments, calls a library crate and maps errors to a
//! message and an exit code. It must never print a QuantConnect API token.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "keybridge",
    version,
    about = "Give MCP clients your QuantConnect account without giving them your API token"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the QuantConnect tools Keybridge exposes, with the scope each needs.
    Catalog {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the QuantConnect API simulator (for demos and tests) until interrupted.
    Sim {
        /// Address to listen on; port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// JSON file with a list of {user_id, api_token, organization_id}; default: the demo account.
        #[arg(long)]
        accounts: Option<PathBuf>,
        /// Fault to inject, e.g. `429:2`, `/backtests/read=5xx:503*2`, `latency:150ms`; repeatable.
        #[arg(long = "fault", value_name = "RULE")]
        faults: Vec<keybridge_qc_sim::FaultRule>,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KEYBRIDGE_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Catalog { json } => print_catalog(json),
        Command::Sim { listen, accounts, faults } => run_sim(listen, accounts, faults),
    }
}

/// Write to stdout; a reader that went away (`keybridge catalog | head`) is not an error.
fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

fn print_catalog(as_json: bool) -> Result<()> {
    use std::fmt::Write;
    let tools = keybridge_catalog::tools();
    if as_json {
        let rows: Vec<_> = tools
            .iter()
            .map(|t| {
                let hints = t.hints();
                json!({
                    "name": t.name,
                    "category": t.category.name(),
                    "scope": t.scope,
                    "endpoint": t.call.endpoint(),
                    "read_only": hints.read_only,
                    "destructive": hints.destructive,
                    "description": t.description,
                })
            })
            .collect();
        return emit(&format!("{}\n", serde_json::to_string_pretty(&rows)?));
    }
    let mut out = String::new();
    writeln!(out, "{:<38} {:<20} {:<26} {:<38} {:<5} DESTRUCTIVE", "NAME", "CATEGORY", "SCOPE", "ENDPOINT", "READ")?;
    for t in tools {
        let h = t.hints();
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        writeln!(
            out,
            "{:<38} {:<20} {:<26} {:<38} {:<5} {}",
            t.name,
            t.category.name(),
            t.scope.as_str(),
            t.call.endpoint(),
            yes_no(h.read_only),
            yes_no(h.destructive)
        )?;
    }
    writeln!(out, "{} tools", tools.len())?;
    emit(&out)
}

fn run_sim(listen: SocketAddr, accounts: Option<PathBuf>, faults: Vec<keybridge_qc_sim::FaultRule>) -> Result<()> {
    let mut config = keybridge_qc_sim::SimConfig::default();
    if let Some(path) = accounts {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read accounts file {}", path.display()))?;
        config.accounts = serde_json::from_str(&text).with_context(|| {
            format!("accounts file {} must be a JSON list of {{user_id, api_token, organization_id}}", path.display())
        })?;
        anyhow::ensure!(!config.accounts.is_empty(), "accounts file {} lists no account", path.display());
    }
    config.faults = faults;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let sim = keybridge_qc_sim::start(config, listen)
            .await
            .with_context(|| format!("cannot listen on {listen}; is the port in use?"))?;
        let addr = sim.addr();
        println!("listening on http://{addr}");
        eprintln!("QuantConnect API base URL: {} (Ctrl-C to stop)", sim.base_url());
        tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
        Ok(())
    })
}
