//! `keybridge serve`: the headless broker in the foreground.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use keybridge_broker::{Broker, BrokerConfig, default_data_dir, server};
use keybridge_broker_proto::{AdminCommand, ClientSpec, Credential, default_socket_path};
use keybridge_vault::{KeyringStore, MemoryStore, SecretStore};

/// The keychain namespace: `KEYBRIDGE_KEYCHAIN`, else none for release builds and `dev` for
/// development builds, so a build from source never touches the installed app's credentials.
pub fn keychain_namespace(demo: bool) -> Option<String> {
    if demo {
        return Some("demo".into());
    }
    match std::env::var("KEYBRIDGE_KEYCHAIN") {
        Ok(ns) if !ns.is_empty() => Some(ns),
        _ => cfg!(debug_assertions).then(|| "dev".to_string()),
    }
}

pub fn open_keychain(demo: bool) -> Result<(Arc<dyn SecretStore>, bool)> {
    match KeyringStore::open(keychain_namespace(demo).as_deref()) {
        Ok(store) => Ok((Arc::new(store), true)),
        // The demo account's token is public, so the demo may run without a keychain.
        Err(e) if demo => {
            eprintln!("warning: {e}\nwarning: the demo keeps its keys in memory; nothing real is stored");
            Ok((Arc::new(MemoryStore::default()), false))
        }
        Err(e) => Err(e).context("cannot open the OS keychain"),
    }
}

/// Executables accepted as the bridge: `keybridge-mcp` beside this program, and any listed in
/// `KEYBRIDGE_BRIDGE_PATH` (separated like PATH).
fn bridge_executables() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(PathBuf::from)) {
        found.push(dir.join(format!("keybridge-mcp{}", std::env::consts::EXE_SUFFIX)));
    }
    if let Some(extra) = std::env::var_os("KEYBRIDGE_BRIDGE_PATH") {
        found.extend(std::env::split_paths(&extra));
    }
    found
}

pub async fn serve(demo: bool) -> Result<()> {
    let socket = default_socket_path();
    let (store, persistent) = open_keychain(demo)?;
    // The demo keeps its state apart from real accounts, and in a throwaway folder when its
    // keys cannot outlive the process.
    let scratch = if demo && !persistent {
        Some(std::env::temp_dir().join(format!("keybridge-demo-{}", std::process::id())))
    } else {
        None
    };
    let data_dir = match (&scratch, demo) {
        (Some(dir), _) => dir.clone(),
        (None, true) => default_data_dir().join("demo"),
        (None, false) => default_data_dir(),
    };
    let sim = if demo {
        let sim = keybridge_qc_sim::start(keybridge_qc_sim::SimConfig::default(), "127.0.0.1:0".parse()?)
            .await
            .context("cannot start the QuantConnect simulator")?;
        Some(sim)
    } else {
        None
    };
    let base_url = match &sim {
        Some(sim) => sim.base_url(),
        None => {
            std::env::var("KEYBRIDGE_QC_BASE_URL").unwrap_or_else(|_| keybridge_quantconnect::DEFAULT_BASE_URL.into())
        }
    };
    let mut config = BrokerConfig::new(&data_dir, base_url.clone());
    config.bridge_executables = bridge_executables();
    if let Some(secs) = std::env::var("KEYBRIDGE_APPROVAL_TIMEOUT").ok().and_then(|s| s.parse().ok()) {
        config.approval_timeout = std::time::Duration::from_secs(secs);
    }
    let listener = server::bind(&socket).context("cannot start the broker")?;
    let broker = Arc::new(Broker::open(config, store).with_context(|| format!("cannot open {}", data_dir.display()))?);
    if demo {
        set_up_demo(&broker).await?;
    }
    broker.audit_log().append(serde_json::json!({"kind": "broker_started", "quantconnect": base_url}))?;
    eprintln!("data: {}\nQuantConnect API: {base_url}", data_dir.display());
    println!("ready {}", listener.path().display());

    server::serve(listener, broker.clone(), shutdown_signal()).await;
    broker.audit_log().append(serde_json::json!({"kind": "broker_stopped"}))?;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    eprintln!("stopped");
    Ok(())
}

async fn set_up_demo(broker: &Broker) -> Result<()> {
    let demo = keybridge_qc_sim::SimAccount::demo();
    let accounts = broker.admin(AdminCommand::AccountList).await?;
    let has_demo = accounts.as_array().is_some_and(|list| list.iter().any(|a| a["id"] == "demo"));
    if !has_demo {
        broker
            .admin(AdminCommand::AccountAdd {
                name: "demo".into(),
                user_id: demo.user_id,
                organization_id: Some(demo.organization_id),
                api_token: Credential::new(demo.api_token),
                skip_check: false,
            })
            .await?;
    }
    // A fresh key client each time: a bridge started from a terminal cannot be host-bound, and
    // a key is only shown when it is made. Earlier demo clients are revoked.
    let clients = broker.admin(AdminCommand::ClientList).await?;
    for old in clients.as_array().into_iter().flatten().filter(|c| c["name"] == "Demo client" && c["revoked"] == false)
    {
        let client_id = old["client_id"].as_str().unwrap_or_default().to_string();
        broker.admin(AdminCommand::ClientRevoke { client_id }).await?;
    }
    let spec = ClientSpec {
        name: "Demo client".into(),
        account: "demo".into(),
        preset: Some("trader".into()),
        scopes: Vec::new(),
        policy: Default::default(),
        token_ttl_secs: None,
        with_key: true,
    };
    let added = broker.admin(AdminCommand::ClientAdd { spec }).await?;
    let client_id = added["client_id"].as_str().unwrap_or_default();
    let key = added["client_key"].as_str().unwrap_or_default();
    eprintln!("demo: account `demo` on the built-in simulator; client {client_id} (trader preset)");
    eprintln!("demo: try it with any MCP client, e.g.");
    eprintln!("demo:   KEYBRIDGE_CLIENT_KEY={key} keybridge-mcp --client {client_id}");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
