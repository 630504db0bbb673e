//! `keybridge team sign-in|sign-out|token --server URL`: this user's sign-in to a team service,
//! kept in the OS keychain, and the access tokens `keybridge-mcp --server URL` calls it with.
//!
//! The refresh token never leaves this process and the keychain: the bridge is handed only an
//! access token of minutes, over a pipe, and only when stdout is not a terminal.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use keybridge_team_client::{KeptSignIns, Purpose, sign_in};

use crate::args::TeamCommand;

fn kept() -> Result<KeptSignIns> {
    let (store, _) = keybridge_host::open_keychain(false).context("cannot open the OS keychain")?;
    Ok(KeptSignIns::new(store, keybridge_host::default_data_dir()))
}

pub(crate) async fn run(command: TeamCommand) -> Result<()> {
    match command {
        TeamCommand::SignIn { server, client_id } => {
            let kept = kept()?;
            let signed_in = sign_in(&server, &client_id, Purpose::Call, |prompt| {
                eprintln!("To sign in, open {} and confirm the code {}", prompt.page, prompt.code);
                eprintln!("(the identity provider is {}, as the team service names it)", prompt.issuer);
            })
            .await
            .with_context(|| format!("cannot sign in to the team service at {server}"))?;
            if signed_in.refresh.is_none() {
                eprintln!(
                    "note: the identity provider gave no refresh token, so this sign-in ends with its access token in {} s; \
                     allow the refresh grant and `offline_access` for `{client_id}` to keep it",
                    signed_in.seconds_left()
                );
            }
            kept.keep(&signed_in).await.context("cannot keep the sign-in")?;
            crate::emit(&format!(
                "signed in to {resource}; the sign-in is in the OS keychain\n\
                 MCP server command for Claude Desktop: keybridge-mcp --server {resource}\n",
                resource = signed_in.resource
            ))
        }
        TeamCommand::SignOut { server } => {
            kept()?.forget(&server).await.context("cannot remove the sign-in")?;
            crate::emit(&format!("signed out of {server}\n"))
        }
        TeamCommand::Token { server, refused } => {
            if std::io::stdout().is_terminal() {
                bail!(
                    "`keybridge team token` hands keybridge-mcp an access token through a pipe and never shows one on a terminal"
                );
            }
            let signed_in = kept()?.fresh(&server, refused).await?;
            let body =
                serde_json::json!({"access_token": signed_in.access.expose(), "expires_in": signed_in.seconds_left()});
            crate::emit(&format!("{body}\n"))
        }
    }
}
