//! `keybridge`: the headless command line of Keybridge.
//!
//! Thin glue: each command parses its arguments, calls a library crate and maps errors to a
//! message and an exit code. It must never print a QuantConnect API token.

mod admin;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "keybridge",
    version = keybridge_version::VERSION,
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
    /// Run the broker in the foreground (what the desktop app runs inside it).
    Serve {
        /// Use the built-in QuantConnect simulator with a demo account and client.
        #[arg(long)]
        demo: bool,
        /// Start on clients, settings or an audit log older than what Keybridge last wrote (a
        /// backup put back on purpose), and continue from them; recorded in the audit log.
        #[arg(long)]
        accept_restored_state: bool,
    },
    /// QuantConnect accounts: the API token goes to the OS keychain only.
    #[command(subcommand)]
    Account(AccountCommand),
    /// MCP clients paired with Keybridge.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Refuse every call until `resume`.
    Pause,
    /// Accept calls again after `pause`.
    Resume,
    /// Calls waiting for your decision.
    #[command(subcommand)]
    Approvals(ApprovalCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Development access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Whether the broker runs, and its state (as JSON), refused connections included.
    Status {
        /// The output is JSON either way; the flag is there for scripts that say so.
        #[arg(long)]
        json: bool,
    },
    /// Add Keybridge to an MCP client's config (Claude Desktop: merged in place, with a
    /// backup), or print the snippet or command for it.
    Connect {
        #[arg(value_enum)]
        app: ConnectApp,
        /// The paired client's id (`keybridge client list`).
        #[arg(long)]
        client: String,
        /// The config file to merge into; default: where the app keeps it (Claude Desktop).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The server's name in the config.
        #[arg(long, default_value = "quantconnect")]
        name: String,
        /// Show what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// For a client paired with `--key`: read its key from stdin (never argv) and put it in
        /// the entry. Host-bound clients need none.
        #[arg(long)]
        with_key: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ConnectApp {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Vscode,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Add an account. The API token is read from stdin, or asked for without echo.
    Add {
        /// A short name for the account, e.g. `main` or `paper`.
        name: String,
        /// Your QuantConnect user id (quantconnect.com/settings).
        #[arg(long)]
        user_id: String,
        /// Organization id, if not your default one.
        #[arg(long)]
        organization_id: Option<String>,
        /// Store without checking the credentials against QuantConnect.
        #[arg(long)]
        skip_check: bool,
    },
    List,
    Remove {
        name: String,
    },
    /// Check the stored credentials against QuantConnect.
    Test {
        name: String,
    },
}

/// What a client may do, as `client add` and `client update` take it.
#[derive(clap::Args)]
struct Grant {
    /// read-only, research, trader or admin.
    #[arg(long, conflicts_with = "scope")]
    preset: Option<String>,
    /// Explicit scopes instead of a preset; repeatable.
    #[arg(long)]
    scope: Vec<String>,
    /// Policy overrides, `SCOPE=allow|ask|deny`; repeatable.
    #[arg(long, value_parser = parse_policy)]
    policy: Vec<(String, String)>,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Pair a client. Host-bound by default: no secret anywhere.
    Add {
        /// A name you will recognise, e.g. "Claude Desktop".
        name: String,
        /// The account it may use.
        #[arg(long)]
        account: String,
        #[command(flatten)]
        grant: Grant,
        /// Access token lifetime in minutes (1-60).
        #[arg(long)]
        token_minutes: Option<u64>,
        /// Issue a client key (for hosts whose process lineage cannot be checked).
        #[arg(long)]
        key: bool,
        #[arg(long)]
        json: bool,
    },
    List,
    Show {
        client_id: String,
    },
    /// Change what a client may do; its running bridges re-list their tools at once.
    /// Change what a client may do, or only its limits.
    Update {
        client_id: String,
        #[command(flatten)]
        grant: Grant,
        /// Tool calls it may start in any minute.
        #[arg(long)]
        calls_per_minute: Option<u32>,
        /// Live deployments it may send in any 24 hours.
        #[arg(long)]
        live_deployments_per_day: Option<u32>,
        /// Calls it may have under way at once.
        #[arg(long)]
        calls_in_flight: Option<u32>,
    },
    /// Revoke a client; its sessions stop on their next call.
    Revoke {
        client_id: String,
    },
    /// End one session now.
    EndSession {
        session_id: String,
    },
}

#[derive(Subcommand)]
enum ApprovalCommand {
    List,
    Approve {
        id: String,
        /// Also allow this tool in that session for this many minutes.
        #[arg(long)]
        minutes: Option<u32>,
    },
    Deny {
        id: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Show the last records; `--follow` keeps printing new ones.
    Tail {
        #[arg(long, default_value_t = 20)]
        last: usize,
        #[arg(long)]
        follow: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check the hash chain; names the first bad record.
    Verify,
    /// Write the whole log, as written, to a new file in the data folder's `exports/`.
    Export,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Start signing with a new key; tokens of the old one stay valid until they expire.
    Rotate,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint an access token for a client, for development.
    Mint {
        #[arg(long)]
        client: String,
        /// Lifetime in seconds (60-3600).
        #[arg(long)]
        ttl: Option<u64>,
    },
}

fn parse_policy(text: &str) -> Result<(String, String), String> {
    let (scope, decision) =
        text.split_once('=').ok_or_else(|| format!("`{text}` should look like qc:live:read=ask"))?;
    Ok((scope.to_string(), decision.to_string()))
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KEYBRIDGE_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let command = Cli::parse().command;
    match command {
        Command::Catalog { json } => print_catalog(json),
        Command::Connect { app, client, config, name, dry_run, with_key } => {
            connect(app, client, config, name, dry_run, with_key)
        }
        Command::Sim { listen, accounts, faults } => run_sim(listen, accounts, faults),
        other => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(run(other))
        }
    }
}

async fn run(command: Command) -> Result<()> {
    use keybridge_broker_proto::{AdminCommand as A, ApprovalDecision, ClientLimitsUpdate, ClientSpec, Credential};
    let admin = || async { admin::Admin::connect(&keybridge_endpoint::default_address()).await };
    let result = match command {
        Command::Serve { demo, accept_restored_state } => return serve::serve(demo, accept_restored_state).await,
        Command::Status { .. } => admin().await?.run(A::Status).await?,
        Command::Account(AccountCommand::Add { name, user_id, organization_id, skip_check }) => {
            let token = read_token()?;
            let mut admin = admin().await?;
            admin
                .run(A::AccountAdd { name, user_id, organization_id, api_token: Credential::new(token), skip_check })
                .await?
        }
        Command::Account(AccountCommand::List) => admin().await?.run(A::AccountList).await?,
        Command::Account(AccountCommand::Remove { name }) => admin().await?.run(A::AccountRemove { name }).await?,
        Command::Account(AccountCommand::Test { name }) => admin().await?.run(A::AccountTest { name }).await?,
        Command::Client(ClientCommand::Add { name, account, grant, token_minutes, key, json }) => {
            let spec = ClientSpec {
                name,
                account,
                preset: grant.preset,
                scopes: grant.scope,
                policy: grant.policy.into_iter().collect(),
                token_ttl_secs: token_minutes.map(|m| m * 60),
                with_key: key,
            };
            let result = admin().await?.run(A::ClientAdd { spec }).await?;
            if !json {
                let id = result["client_id"].as_str().unwrap_or_default();
                let mut text = format!("client {id} paired\n");
                if let Some(key) = result["client_key"].as_str() {
                    text.push_str(&format!(
                        "client key (shown once, store it in the MCP client's config as KEYBRIDGE_CLIENT_KEY):\n{key}\n"
                    ));
                }
                text.push_str(&format!("MCP server command: keybridge-mcp --client {id}\n"));
                return emit(&text);
            }
            result
        }
        Command::Client(ClientCommand::List) => admin().await?.run(A::ClientList).await?,
        Command::Client(ClientCommand::Show { client_id }) => admin().await?.run(A::ClientShow { client_id }).await?,
        Command::Client(ClientCommand::Update {
            client_id,
            grant,
            calls_per_minute,
            live_deployments_per_day,
            calls_in_flight,
        }) => {
            let policy = (!grant.policy.is_empty()).then(|| grant.policy.into_iter().collect());
            let limits = ClientLimitsUpdate { calls_per_minute, live_deployments_per_day, calls_in_flight };
            let update = A::ClientUpdate { client_id, preset: grant.preset, scopes: grant.scope, policy, limits };
            admin().await?.run(update).await?
        }
        Command::Client(ClientCommand::Revoke { client_id }) => {
            admin().await?.run(A::ClientRevoke { client_id }).await?
        }
        Command::Client(ClientCommand::EndSession { session_id }) => {
            admin().await?.run(A::SessionEnd { session_id }).await?
        }
        Command::Pause => admin().await?.run(A::Pause).await?,
        Command::Resume => admin().await?.run(A::Resume).await?,
        Command::Approvals(ApprovalCommand::List) => admin().await?.run(A::ApprovalsList).await?,
        Command::Approvals(ApprovalCommand::Approve { id, minutes }) => {
            let decision = minutes.map_or(ApprovalDecision::Approve, |minutes| ApprovalDecision::AllowFor { minutes });
            admin().await?.run(A::ApprovalDecide { approval_id: id, decision }).await?
        }
        Command::Approvals(ApprovalCommand::Deny { id }) => {
            admin().await?.run(A::ApprovalDecide { approval_id: id, decision: ApprovalDecision::Deny }).await?
        }
        Command::Audit(AuditCommand::Verify) => admin().await?.run(A::AuditVerify).await?,
        Command::Audit(AuditCommand::Export) => admin().await?.run(A::AuditExport).await?,
        Command::Audit(AuditCommand::Tail { last, follow, json }) => {
            return audit_tail(admin().await?, last, follow, json).await;
        }
        Command::Keys(KeysCommand::Rotate) => admin().await?.run(A::KeysRotate).await?,
        Command::Token(TokenCommand::Mint { client, ttl }) => {
            admin().await?.run(A::TokenMint { client_id: client, ttl_secs: ttl }).await?
        }
        Command::Catalog { .. } | Command::Sim { .. } | Command::Connect { .. } => {
            unreachable!("handled without a runtime")
        }
    };
    emit(&format!("{}\n", serde_json::to_string_pretty(&result)?))
}

fn connect(
    app: ConnectApp,
    client: String,
    config: Option<PathBuf>,
    name: String,
    dry_run: bool,
    with_key: bool,
) -> Result<()> {
    use keybridge_mcp_config::{Change, Entry, McpClient, apply, claude_desktop_config_here, merge};
    let app = match app {
        ConnectApp::ClaudeDesktop => McpClient::ClaudeDesktop,
        ConnectApp::ClaudeCode => McpClient::ClaudeCode,
        ConnectApp::Cursor => McpClient::Cursor,
        ConnectApp::Vscode => McpClient::VsCode,
    };
    let here = std::env::current_exe().context("cannot find this program's folder")?;
    let bridge = here.with_file_name(format!("keybridge-mcp{}", std::env::consts::EXE_SUFFIX));
    let bridge = std::fs::canonicalize(&bridge).unwrap_or(bridge);
    let client_key = if with_key { Some(read_secret("client key")?) } else { None };
    let entry = Entry { server_name: name, bridge, client_id: client, client_key };
    let path = match (app, config) {
        (_, Some(path)) => path,
        (McpClient::ClaudeDesktop, None) => claude_desktop_config_here()
            .context("cannot tell where Claude Desktop keeps its config; pass --config PATH")?,
        (other, None) => {
            let stored = match (&entry.client_key, other) {
                (None, _) => "It holds no secret: Keybridge asks you once to approve the program that starts it.".into(),
                (Some(_), McpClient::ClaudeCode) => "It holds the client key: Claude Code will keep it in plain text in ~/.claude.json (the user scope). Revoke the client in Keybridge if that file is ever shared.".to_string(),
                (Some(_), other) => format!("It holds the client key: {} will keep it in plain text in its configuration file. Revoke the client in Keybridge if that file is ever shared.", other.name()),
            };
            return emit(&format!(
                "Add this to {}'s MCP configuration (or pass --config PATH to merge it):\n{}\n{stored}\n",
                other.name(),
                entry.snippet(other)
            ));
        }
    };
    let plan = merge(app, &path, &entry)?;
    let mut text = format!("{}: {}\n", app.name(), plan.path.display());
    match &plan.change {
        Change::Unchanged => text.push_str("already set up; nothing to change\n"),
        Change::Added => text.push_str(&format!("will add server `{}`:\n{}\n", entry.server_name, plan.entry_text)),
        Change::Replaced { previous } => text.push_str(&format!(
            "will replace server `{}`:\n{previous}\nwith:\n{}\n",
            entry.server_name, plan.entry_text
        )),
    }
    if dry_run {
        text.push_str("dry run: nothing was written\n");
    } else if plan.change != Change::Unchanged {
        match apply(&plan)? {
            Some(backup) => text.push_str(&format!("done; the previous file is saved as {}\n", backup.display())),
            None => text.push_str("done\n"),
        }
        if app == McpClient::ClaudeDesktop {
            text.push_str(
                "Quit Claude Desktop completely (not just its window) and open it again to load the server.\n",
            );
        }
    }
    emit(&text)
}

/// The API token, from stdin when piped, else typed without echo. Never from argv.
fn read_token() -> Result<String> {
    read_secret("QuantConnect API token")
}

/// A secret, from stdin when piped, else typed without echo. Never from argv.
fn read_secret(what: &str) -> Result<String> {
    use std::io::{IsTerminal, Read};
    let secret = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{what} (not shown): "))
            .with_context(|| format!("cannot read the {what}"))?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).with_context(|| format!("cannot read the {what} from stdin"))?;
        text
    };
    let secret = secret.trim().to_string();
    anyhow::ensure!(!secret.is_empty(), "no {what} given: pipe it on stdin or type it at the prompt");
    Ok(secret)
}

async fn audit_tail(mut admin: admin::Admin, last: usize, follow: bool, json: bool) -> Result<()> {
    use keybridge_broker_proto::{AdminCommand, Response};
    let show = |record: &serde_json::Value| -> Result<()> {
        if json {
            emit(&format!("{record}\n"))
        } else {
            let event = &record["event"];
            let kind = event["kind"].as_str().unwrap_or("?");
            let detail: Vec<String> = event
                .as_object()
                .map(|m| m.iter().filter(|(k, _)| k.as_str() != "kind").map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            emit(&format!("#{} {} {kind} {}\n", record["seq"], record["ts"], detail.join(" ")))
        }
    };
    admin.send(AdminCommand::AuditTail { last, follow }).await?;
    loop {
        match admin.next().await? {
            Response::Admin { result, .. } => {
                for record in result.as_array().into_iter().flatten() {
                    show(record)?;
                }
                if !follow {
                    return Ok(());
                }
            }
            Response::Event { event } if event["type"] == "audit" => show(&event["record"])?,
            Response::Event { .. } => {}
            Response::Error { error, .. } => anyhow::bail!("{}", error.message),
            _ => {}
        }
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
