//! `keybridge serve`: the headless broker in the foreground; with `--team`, a team's service.

use anyhow::{Context, Result};
use keybridge_host::{Host, HostOptions, shutdown_signal};

pub async fn serve(demo: bool, accept_restored_state: bool) -> Result<()> {
    let host = Host::start(HostOptions { demo, demo_key_client: true, connection_tests: false, accept_restored_state })
        .await
        .context("cannot start Keybridge")?;
    eprintln!("data: {}\nQuantConnect API: {}", host.data_dir().display(), host.base_url());
    if let Some(client) = host.demo_client() {
        eprintln!("demo: account `demo` on the built-in simulator; client {} (trader preset)", client.client_id);
        eprintln!("demo: try it with any MCP client, e.g.");
        eprintln!(
            "demo:   KEYBRIDGE_CLIENT_KEY={} keybridge-mcp --client {}",
            client.client_key.expose(),
            client.client_id
        );
    }
    println!("ready {}", host.socket_path().display());
    host.serve(shutdown_signal()).await?;
    eprintln!("stopped");
    Ok(())
}

/// `keybridge serve --team CONFIG`: MCP over HTTP for the team, and this user's admin socket for
/// the operator's `keybridge` commands on this machine.
#[cfg(unix)]
pub async fn serve_team(config: &std::path::Path) -> Result<()> {
    let config = keybridge_team::serve::TeamConfig::read(config)?;
    keybridge_team::serve::serve(&config, shutdown_signal()).await.context("cannot serve the team")?;
    eprintln!("stopped");
    Ok(())
}

/// Team mode runs on the team's servers (Linux, or another Unix), not on a trader's Windows desk.
#[cfg(not(unix))]
pub async fn serve_team(config: &std::path::Path) -> Result<()> {
    anyhow::bail!(
        "`keybridge serve --team {}`: team mode runs on Linux or another Unix server; on Windows, sign in to a team service with `keybridge team sign-in --server URL` instead",
        config.display()
    )
}
