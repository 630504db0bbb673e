//! The command line as `clap` reads it: every command and its arguments, and nothing they do.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "keybridge",
    version = keybridge_version::VERSION,
    about = "Give MCP clients your QuantConnect account without giving them your API token"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
        /// Serve a trading team over HTTP from this configuration (TOML): the team's identity
        /// provider, OpenBao and PostgreSQL; see docs/TEAM.md.
        #[arg(long, value_name = "CONFIG", conflicts_with_all = ["demo", "accept_restored_state"])]
        team: Option<std::path::PathBuf>,
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
    Approvals(ApprovalsArgs),
    /// Your sign-in to a team service, for `keybridge-mcp --server URL`.
    #[command(subcommand)]
    Team(TeamCommand),
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
pub(crate) enum ConnectApp {
    ClaudeDesktop,
    ClaudeCode,
    Cursor,
    Vscode,
}

#[derive(Subcommand)]
pub(crate) enum AccountCommand {
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
pub(crate) struct Grant {
    /// read-only, research, trader or admin.
    #[arg(long, conflicts_with = "scope")]
    pub(crate) preset: Option<String>,
    /// Explicit scopes instead of a preset; repeatable.
    #[arg(long)]
    pub(crate) scope: Vec<String>,
    /// Policy overrides, `SCOPE=allow|ask|deny`; repeatable.
    #[arg(long, value_parser = parse_policy)]
    pub(crate) policy: Vec<(String, String)>,
}

#[derive(Subcommand)]
pub(crate) enum ClientCommand {
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

#[derive(clap::Args)]
pub(crate) struct ApprovalsArgs {
    /// A team service's MCP endpoint: its questions, answered as the person who signs in (one
    /// of the identity provider's approver group). Without it, this machine's Keybridge.
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// The identity provider's public client to sign in through (device sign-in, RFC 8628).
    #[arg(long, global = true, value_name = "ID", default_value = "keybridge-cli")]
    pub client_id: String,
    #[command(subcommand)]
    pub command: ApprovalCommand,
}

#[derive(Subcommand)]
pub(crate) enum TeamCommand {
    /// Sign in at the team's identity provider (device sign-in: a page and a code to confirm in
    /// a browser); the sign-in is kept in the OS keychain and refreshed from there.
    SignIn {
        /// The team service's MCP endpoint.
        #[arg(long, value_name = "URL")]
        server: String,
        /// The identity provider's public client the bridge signs in through.
        #[arg(long, value_name = "ID", default_value = "keybridge-mcp")]
        client_id: String,
    },
    /// Forget the sign-in to a team service.
    SignOut {
        #[arg(long, value_name = "URL")]
        server: String,
    },
    /// For keybridge-mcp: an access token for the team service, refreshed when near its end,
    /// as JSON through a pipe (never shown on a terminal).
    #[command(hide = true)]
    Token {
        #[arg(long, value_name = "URL")]
        server: String,
        /// The service refused the token in hand: refresh even if it has time left.
        #[arg(long)]
        refused: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum ApprovalCommand {
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
pub(crate) enum AuditCommand {
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
pub(crate) enum KeysCommand {
    /// Start signing with a new key; tokens of the old one stay valid until they expire.
    Rotate,
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Mint an access token for a client, for development.
    Mint {
        #[arg(long)]
        client: String,
        /// Lifetime in seconds (60-3600).
        #[arg(long)]
        ttl: Option<u64>,
    },
}

pub(crate) fn parse_policy(text: &str) -> Result<(String, String), String> {
    let (scope, decision) =
        text.split_once('=').ok_or_else(|| format!("`{text}` should look like qc:live:read=ask"))?;
    Ok((scope.to_string(), decision.to_string()))
}
