//! `keybridge serve --team CONFIG`: the broker as a team's service. MCP over Streamable HTTP
//! (rmcp's server transport, stateless, so any replica serves any request) behind the resource
//! server; secrets in OpenBao, clients and revocations in PostgreSQL, the audit chain there too.
//!
//! Team mode's host: it chooses the broker's seams the way `keybridge-host` does for the desktop.
//! A caller is the identity provider's client (the token's `client_id`), served as the Keybridge
//! client the configuration names for it, with no more than the scopes the token carries; the
//! same policy, approvals, limits and audit as a bridge's calls.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use keybridge_broker::audit::chain::ChainKey;
use keybridge_broker::seams::{Backends, SecretStore};
use keybridge_broker::tokens::TokenIssuer;
use keybridge_broker::{Broker, BrokerConfig};
use keybridge_broker_proto::{AdminCommand, AdminReply, SessionInfo};
use keybridge_vault::SecretString;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::Value;

use crate::approvers;
use crate::resource::{Principal, ResourceConfig, ResourceServer, protect, protect_for_group};
use crate::{OpenBao, OpenBaoLogin, PgApprovals, PgAudit, PgConfig, PgRates, PgState};

/// The team service's configuration file (TOML).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamConfig {
    /// Where to listen, `127.0.0.1:8400` (a TLS-terminating proxy in front for https).
    pub listen: String,
    /// This endpoint's URL as clients reach it: the tokens' audience.
    pub resource: String,
    /// The identity provider, exactly as its tokens name it.
    pub issuer: String,
    /// This replica's folder: the install id, the signing keys' index, the accounts registry.
    pub data_dir: PathBuf,
    /// QuantConnect's API (its default when absent).
    #[serde(default)]
    pub quantconnect: Option<String>,
    /// A libpq connection string. A password, if the database needs one, goes in it (neither
    /// `PGPASSWORD` nor `~/.pgpass` is read): keep this file readable by the service alone. It
    /// is never repeated in an error. Over the network it must say `sslmode=require`: TLS, the
    /// server's certificate and host name checked.
    pub database: String,
    /// The CA certificates (PEM) the database's certificate is checked against; the system's
    /// when absent.
    #[serde(default)]
    pub database_ca: Option<PathBuf>,
    /// This replica's name, on every audit record it writes.
    pub replica: String,
    /// The identity provider's group whose people may answer questions through this service
    /// (`keybridge approvals --server`); none, and nobody may.
    #[serde(default)]
    pub approvers: Option<String>,
    pub openbao: OpenBaoConfig,
    /// The identity provider's client id → the name of the Keybridge client that serves it.
    pub clients: BTreeMap<String, String>,
}

impl std::fmt::Debug for TeamConfig {
    /// Without the database's connection string: it may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamConfig")
            .field("listen", &self.listen)
            .field("resource", &self.resource)
            .field("issuer", &self.issuer)
            .field("replica", &self.replica)
            .field("approvers", &self.approvers)
            .finish_non_exhaustive()
    }
}

/// Where the secrets are, and how the broker signs in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenBaoConfig {
    pub address: String,
    pub mount: String,
    pub prefix: String,
    pub role_id: String,
    /// A file holding the AppRole secret id (a systemd credential, say): never the id itself.
    pub secret_id_file: PathBuf,
}

/// Why the team service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TeamError {
    #[error("cannot read the team configuration {path}: {detail}")]
    Config { path: PathBuf, detail: String },
    #[error("secrets: {0}")]
    Secrets(#[source] keybridge_vault::VaultError),
    #[error("{0}")]
    Open(#[source] keybridge_broker::OpenError),
    #[error("the audit chain: {0}")]
    Audit(#[source] keybridge_broker::audit::AuditError),
    #[error("the identity provider: {0}")]
    Identity(#[source] crate::resource::ResourceError),
}

impl TeamConfig {
    pub fn read(path: &Path) -> Result<TeamConfig, TeamError> {
        let failed = |detail: String| TeamError::Config { path: path.to_path_buf(), detail };
        let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
        let config: TeamConfig = toml::from_str(&text).map_err(|e| {
            // toml's own message quotes the line, which may hold the database's password.
            let line = e.span().map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let reason = e.message().split('\n').next().unwrap_or("not valid").to_string();
            failed(match line {
                Some(line) => format!("line {line}: {reason}"),
                None => reason,
            })
        })?;
        // A database that would be reached without TLS over the network is refused here, before
        // anything starts.
        PgConfig::new(&config.database, config.database_ca.as_deref()).map_err(failed)?;
        Ok(config)
    }

    /// How to reach the database.
    pub fn database(&self) -> Result<PgConfig, TeamError> {
        PgConfig::new(&self.database, self.database_ca.as_deref())
            .map_err(|detail| TeamError::Config { path: PathBuf::from("`database`"), detail })
    }
}

/// A started team service: its broker, and the HTTP routes that serve it.
pub struct TeamService {
    pub broker: Arc<Broker>,
    pub router: axum::Router,
}

impl TeamService {
    /// Sign in to OpenBao, open the broker on the team's seams, read the identity provider's
    /// keys, and build the routes.
    pub async fn start(config: &TeamConfig) -> Result<TeamService, TeamError> {
        let secret_id = std::fs::read_to_string(&config.openbao.secret_id_file).map_err(|e| TeamError::Config {
            path: config.openbao.secret_id_file.clone(),
            detail: format!("cannot read the AppRole secret id: {e}"),
        })?;
        let login = OpenBaoLogin::AppRole {
            role_id: config.openbao.role_id.clone(),
            secret_id: SecretString::from(secret_id.trim().to_string()),
        };
        let bao = config.openbao.clone();
        let secrets =
            tokio::task::spawn_blocking(move || OpenBao::connect(&bao.address, &bao.mount, &bao.prefix, login))
                .await
                .map_err(|e| TeamError::Config { path: PathBuf::from("openbao"), detail: e.to_string() })?
                .map_err(TeamError::Secrets)?;
        let secrets: Arc<dyn SecretStore> = Arc::new(secrets);
        let quantconnect =
            config.quantconnect.clone().unwrap_or_else(|| keybridge_quantconnect::DEFAULT_BASE_URL.into());
        let broker_config = BrokerConfig::new(&config.data_dir, quantconnect);
        let database = config.database()?;
        let (replica, data_dir) = (config.replica.clone(), config.data_dir.clone());
        // The seams' clients block: opened off the runtime.
        let backends = tokio::task::spawn_blocking(move || team_backends(&data_dir, &database, &replica, secrets))
            .await
            .map_err(|e| TeamError::Config { path: PathBuf::from("backends"), detail: e.to_string() })??;
        let broker = Arc::new(Broker::open(broker_config, backends).map_err(TeamError::Open)?);
        let resource = ResourceServer::discover(ResourceConfig::new(&config.issuer, &config.resource))
            .await
            .map_err(TeamError::Identity)?;
        let handler = TeamHandler {
            shared: Arc::new(Shared {
                broker: broker.clone(),
                clients: config.clients.clone(),
                sessions: Mutex::default(),
            }),
        };
        let path = resource_path(&config.resource);
        let mut http = StreamableHttpServerConfig::default();
        // Stateless: any replica serves any request; the resource server checks Host and Origin.
        http.legacy_session_mode = false;
        http.json_response = true;
        http.allowed_hosts = Vec::new();
        let mcp =
            StreamableHttpService::new(move || Ok(handler.clone()), Arc::new(NeverSessionManager::default()), http);
        let resource = Arc::new(resource);
        let mut router = protect(axum::Router::new().route_service(&path, mcp), resource.clone());
        if let Some(group) = &config.approvers {
            let base = if path == "/" { "" } else { path.as_str() };
            router = router.merge(protect_for_group(approvers::routes(broker.clone(), base), resource, group.clone()));
        }
        Ok(TeamService { broker, router })
    }
}

/// The team's seams: secrets in OpenBao, clients and revocations in PostgreSQL, the audit chain
/// there too (its key in OpenBao), access tokens signed with keys kept in OpenBao.
fn team_backends(
    data_dir: &Path,
    database: &PgConfig,
    replica: &str,
    secrets: Arc<dyn SecretStore>,
) -> Result<Backends, TeamError> {
    let install_id = keybridge_broker::install_id(data_dir).map_err(TeamError::Open)?;
    let tokens = TokenIssuer::open(&install_id, data_dir, secrets.clone())
        .map_err(|e| TeamError::Open(keybridge_broker::OpenError::Tokens(e)))?;
    let (key, _) = ChainKey::load_or_create(secrets.as_ref(), "audit-chain-key:team").map_err(TeamError::Audit)?;
    let audit = PgAudit::connect(database, key, replica).map_err(TeamError::Audit)?;
    let state = PgState::connect(database).map_err(TeamError::Open)?;
    let rates =
        PgRates::connect(database).map_err(|e| TeamError::Open(keybridge_broker::OpenError::StateRefused(e)))?;
    let approvals = PgApprovals::connect(database, replica)
        .map_err(|e| TeamError::Open(keybridge_broker::OpenError::StateRefused(e)))?;
    Ok(Backends {
        secrets,
        state: Arc::new(state),
        audit: Arc::new(audit),
        tokens: Arc::new(tokens),
        approvals: Arc::new(approvals),
        rates: Arc::new(rates),
    })
}

fn resource_path(resource: &str) -> String {
    let path =
        resource.parse::<reqwest::Url>().map(|url| url.path().trim_end_matches('/').to_string()).unwrap_or_default();
    if path.is_empty() { "/".into() } else { path }
}

/// Serve `config` until `shutdown` completes.
pub async fn serve(
    config: &TeamConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), TeamError> {
    let service = TeamService::start(config).await?;
    let listener = tokio::net::TcpListener::bind(&config.listen).await.map_err(|e| TeamError::Config {
        path: PathBuf::from(&config.listen),
        detail: format!("cannot listen there: {e}"),
    })?;
    // The operator's `keybridge` commands on this machine reach this replica's broker here.
    let admin = keybridge_broker::server::bind(&keybridge_endpoint::default_address()).map_err(TeamError::Open)?;
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin = tokio::spawn(keybridge_broker::server::serve(admin, service.broker.clone(), async {
        let _ = admin_stopped.await;
    }));
    println!("ready {}", config.resource);
    let served = axum::serve(listener, service.router).with_graceful_shutdown(shutdown).await;
    let _ = stop_admin.send(());
    let _ = admin.await;
    served.map_err(|e| TeamError::Config { path: PathBuf::from(&config.listen), detail: e.to_string() })
}

/// How long past its expiry the resource server still accepts a token (its clock leeway).
const LEEWAY_SECS: u64 = 30;

/// The MCP side: each request's principal, a broker session for it, and the broker's answer.
#[derive(Clone)]
struct TeamHandler {
    shared: Arc<Shared>,
}

struct Shared {
    broker: Arc<Broker>,
    clients: BTreeMap<String, String>,
    /// A broker session per access token (its client, subject and `jti`), until the token
    /// expires and the resource server's leeway is over; swept as requests come.
    sessions: Mutex<HashMap<String, (SessionInfo, u64)>>,
}

fn principal(context: &RequestContext<RoleServer>) -> Option<Principal> {
    context.extensions.get::<axum::http::request::Parts>()?.extensions.get::<Principal>().cloned()
}

impl Shared {
    /// The broker session of this principal's token, opened at its first request.
    async fn session(&self, principal: &Principal) -> Result<SessionInfo, String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // The resource server requires both; without them nothing here could tell tokens apart.
        let (Some(token_id), Some(idp_client)) = (&principal.token_id, &principal.client_id) else {
            return Err("the access token names no client or no token id".into());
        };
        let key = format!("{idp_client}\u{0}{}\u{0}{token_id}", principal.subject);
        let (cached, ended) = {
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let ended: Vec<String> = sessions
                .iter()
                .filter(|(_, (_, expires))| expires + LEEWAY_SECS <= now)
                .map(|(_, (session, _))| session.session_id.clone())
                .collect();
            sessions.retain(|_, (_, expires)| *expires + LEEWAY_SECS > now);
            (sessions.get(&key).map(|(session, _)| session.clone()), ended)
        };
        for session in ended {
            self.broker.connection_closed(&session);
        }
        if let Some(session) = cached {
            if session.expires_at > now + 5 {
                return Ok(session);
            }
            let fresh = self.broker.refresh(&session.session_id).map_err(|e| e.to_string())?;
            self.remember(key, fresh.clone(), principal.expires_at);
            return Ok(fresh);
        }
        let name = self.clients.get(idp_client).ok_or_else(|| {
            format!("the identity provider's client `{idp_client}` is not served here: map it to a Keybridge client under [clients] in the team configuration")
        })?;
        let client_id = self.client_named(name).await?;
        let session = self
            .broker
            .session_for_principal(&client_id, &principal.subject, &principal.scopes)
            .map_err(|e| e.to_string())?;
        self.remember(key, session.clone(), principal.expires_at);
        Ok(session)
    }

    fn remember(&self, key: String, session: SessionInfo, until: u64) {
        let replaced = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (session.clone(), until));
        // Two first requests of one token at once each opened a session: the other one ends.
        if let Some((other, _)) = replaced.filter(|(other, _)| other.session_id != session.session_id) {
            self.broker.connection_closed(&other.session_id);
        }
    }

    /// The live Keybridge client called `name`; two of that name are refused, not guessed at.
    async fn client_named(&self, name: &str) -> Result<String, String> {
        let Ok(AdminReply::Clients(clients)) = self.broker.admin(AdminCommand::ClientList).await else {
            return Err("cannot read the Keybridge clients".into());
        };
        let mut named = clients.into_iter().filter(|c| c.name == name && !c.revoked);
        match (named.next(), named.next()) {
            (Some(client), None) => Ok(client.client_id),
            (None, _) => Err(format!(
                "no live Keybridge client is called `{name}`; add it, or fix [clients] in the team configuration"
            )),
            (Some(_), Some(_)) => Err(format!("two live Keybridge clients are called `{name}`; revoke one")),
        }
    }
}

impl ServerHandler for TeamHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("keybridge", keybridge_version::VERSION))
            .with_instructions(
                "QuantConnect through the team's Keybridge. Calls that trade live or delete may wait for an approver.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let Some(principal) = principal(&context) else {
            return Err(ErrorData::invalid_request("no caller: this endpoint runs behind its resource server", None));
        };
        let session = self.shared.session(&principal).await.map_err(|e| ErrorData::invalid_request(e, None))?;
        let allowed = self
            .shared
            .broker
            .list_tools(Some(&session.session_id), &session.token)
            .map_err(|e| ErrorData::invalid_request(e.to_string(), None))?;
        let tools = allowed.iter().filter_map(|t| keybridge_catalog::find(&t.name)).map(keybridge_mcp::mcp_tool);
        Ok(ListToolsResult::with_all_items(tools.collect()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(principal) = principal(&context) else {
            return Err(ErrorData::invalid_request("no caller: this endpoint runs behind its resource server", None));
        };
        let name = request.name.to_string();
        let Some(tool) = keybridge_catalog::find(&name) else {
            return Ok(keybridge_mcp::result::error(format!("Unknown tool `{name}`.")).into());
        };
        let session = match self.shared.session(&principal).await {
            Ok(session) => session,
            Err(e) => return Ok(keybridge_mcp::result::error(e).into()),
        };
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let broker = self.shared.broker.clone();
        let outcome =
            broker.call(Some(&session.session_id), &session.token, tool.name, arguments.clone(), |_| {}).await;
        Ok(match outcome {
            Ok(value) => keybridge_mcp::result::success(Some(tool), &arguments, value),
            Err(e) => keybridge_mcp::result::error(e.to_string()),
        }
        .into())
    }
}
