//! The commands that need no broker: the tool catalog, and the QuantConnect simulator.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use crate::emit;

pub(crate) fn print_catalog(as_json: bool) -> Result<()> {
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

pub(crate) fn run_sim(
    listen: SocketAddr,
    accounts: Option<PathBuf>,
    faults: Vec<keybridge_qc_sim::FaultRule>,
) -> Result<()> {
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
