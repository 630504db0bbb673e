//! `keybridge`: the headless command line of Keybridge.
//!
//! Thin glue: each command parses its arguments, calls a library crate and maps errors to a
//! message and an exit code. It must never print a QuantConnect API token.

mod admin;
mod approvers;
mod args;
mod audit;
mod connect;
mod local;
mod serve;
mod team;

use anyhow::{Context, Result};
use clap::Parser;

use crate::args::*;

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KEYBRIDGE_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let command = Cli::parse().command;
    match command {
        Command::Catalog { json } => local::print_catalog(json),
        Command::Connect { app, client, config, name, dry_run, with_key } => {
            connect::connect(app, client, config, name, dry_run, with_key)
        }
        Command::Sim { listen, accounts, faults } => local::run_sim(listen, accounts, faults),
        other => {
            // One thread: the broker's work is short steps between waits on sockets, and on a
            // single thread each hand-off between its tasks is a queue push rather than a wake
            // of another thread (about 15 µs less per bridged call, measured by the benchmark).
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(run(other))
        }
    }
}

async fn run(command: Command) -> Result<()> {
    use keybridge_broker_proto::{AdminCommand as A, ApprovalDecision, ClientLimitsUpdate, ClientSpec, Credential};
    let admin = || async { admin::Admin::connect(&keybridge_endpoint::default_address()).await };
    let result = match command {
        Command::Serve { team: Some(config), .. } => return serve::serve_team(&config).await,
        Command::Serve { demo, accept_restored_state, team: None } => {
            return serve::serve(demo, accept_restored_state).await;
        }
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
            let reply = admin().await?.run(A::ClientAdd { spec }).await?;
            if let (false, keybridge_broker_proto::AdminReply::ClientAdded(added)) = (json, &reply) {
                let id = &added.client_id;
                let mut text = format!("client {id} paired\n");
                if let Some(key) = &added.client_key {
                    text.push_str(&format!(
                        "client key (shown once, store it in the MCP client's config as KEYBRIDGE_CLIENT_KEY):\n{key}\n"
                    ));
                }
                text.push_str(&format!("MCP server command: keybridge-mcp --client {id}\n"));
                return emit(&text);
            }
            reply
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
        Command::Team(command) => return team::run(command).await,
        Command::Approvals(ApprovalsArgs { server: Some(server), client_id, command }) => {
            approvers::at_team_service(&server, &client_id, command).await?
        }
        Command::Approvals(ApprovalsArgs { server: None, command, .. }) => match command {
            ApprovalCommand::List => admin().await?.run(A::ApprovalsList).await?,
            ApprovalCommand::Approve { id, minutes } => {
                let decision = approvers::decision(minutes);
                admin().await?.run(A::ApprovalDecide { approval_id: id, decision }).await?
            }
            ApprovalCommand::Deny { id } => {
                admin().await?.run(A::ApprovalDecide { approval_id: id, decision: ApprovalDecision::Deny }).await?
            }
        },
        Command::Audit(AuditCommand::Verify) => admin().await?.run(A::AuditVerify).await?,
        Command::Audit(AuditCommand::Export) => admin().await?.run(A::AuditExport).await?,
        Command::Audit(AuditCommand::Tail { last, follow, json }) => {
            return audit::audit_tail(admin().await?, last, follow, json).await;
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

/// The API token, from stdin when piped, else typed without echo. Never from argv.
pub(crate) fn read_token() -> Result<String> {
    read_secret("QuantConnect API token")
}

/// A secret, from stdin when piped, else typed without echo. Never from argv.
pub(crate) fn read_secret(what: &str) -> Result<String> {
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

/// Write to stdout; a reader that went away (`keybridge catalog | head`) is not an error.
pub(crate) fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}
