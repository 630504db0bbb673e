//! Team mode measured as a trader's client sees it: two `keybridge serve --team` replicas (in
//! this process, each on its own port) on a PostgreSQL cluster flushing every commit, OpenBao and
//! an OpenID provider, called over HTTP with the provider's access tokens.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use keybridge_broker::Broker;
use keybridge_broker_proto::{AdminCommand, AdminReply, ClientLimitsUpdate};
use keybridge_team::serve::{TeamConfig, TeamService};
use keybridge_testkit::{IdentityClient, IdentityProvider, OpenBaoServer, Postgres, Simulator};
use serde_json::{Value, json};

use crate::{Stats, stats, us};

const DESK: IdentityClient = IdentityClient { id: "desk", secret: "desk-secret", scope: "qc:account:read" };

/// One replica: its endpoint and its broker.
struct Replica {
    resource: String,
    broker: Arc<Broker>,
}

async fn start_replica(
    name: &str,
    dir: &std::path::Path,
    engines: (&Postgres, &OpenBaoServer, &IdentityProvider, &Simulator),
    role_id: &str,
    secret_file: &std::path::Path,
) -> Result<Replica> {
    let (postgres, bao, provider, sim) = engines;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\nresource = \"{resource}\"\nissuer = \"{}\"\ndata_dir = \"{}\"\nquantconnect = \"{}\"\n\
         database = \"{}\"\nreplica = \"{name}\"\n\n[openbao]\naddress = \"{}\"\nmount = \"secret\"\nprefix = \"keybridge/bench\"\n\
         role_id = \"{role_id}\"\nsecret_id_file = \"{}\"\n\n[clients]\ndesk = \"Desk (team)\"\n",
        provider.issuer(),
        dir.join("data").display(),
        sim.base_url(),
        postgres.config(),
        bao.address,
        secret_file.display()
    );
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, config)?;
    let service = TeamService::start(&TeamConfig::read(&file)?).await.context("a team replica starts")?;
    let broker = service.broker.clone();
    tokio::spawn(async move { axum::serve(listener, service.router).await });
    Ok(Replica { resource, broker })
}

/// One `read_account` over HTTP, as a 2026-07-28 client sends it; whether it answered a result.
async fn call(http: &reqwest::Client, resource: &str, token: &str, id: u64) -> Result<bool> {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "keybridge-bench", "version": "1"},
    });
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "read_account", "arguments": {}, "_meta": meta}});
    let reply = http
        .post(resource)
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "read_account")
        .json(&body)
        .send()
        .await?;
    let answer: Value = reply.json().await?;
    Ok(answer["result"]["isError"] == false)
}

/// Callers at once, spread over the replicas, each making `calls` calls; every latency.
async fn load(replicas: &[(String, String)], callers: usize, calls: usize) -> Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let (resource, token) = replicas[c % replicas.len()].clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut samples = Vec::with_capacity(calls);
                for i in 0..calls {
                    let at = Instant::now();
                    anyhow::ensure!(call(&http, &resource, &token, i as u64).await?, "a call failed");
                    samples.push(at.elapsed());
                }
                Ok(samples)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    Ok((all, started.elapsed()))
}

/// The engines are started and the tokens fetched outside the runtime: their clients block.
pub(crate) fn service(report: &mut String, runtime: &tokio::runtime::Runtime) -> Result<()> {
    let postgres = Postgres::start_durable();
    let bao = OpenBaoServer::start();
    let (role_id, secret_id) = bao.approle("keybridge", &["keybridge/bench"], 3600);
    let scopes: Vec<&str> = keybridge_catalog::Scope::ALL.iter().map(|s| s.as_str()).collect();
    let provider = IdentityProvider::start(&scopes, &[DESK]);
    let sim = runtime.block_on(Simulator::start("bench-team-token"));
    let dir = tempfile::tempdir()?;
    let secret_file = dir.path().join("secret-id");
    std::fs::write(&secret_file, &secret_id)?;
    let engines = (&postgres, &bao, &provider, &sim);
    let (a, b) = runtime.block_on(async {
        let a = start_replica("a", dir.path(), engines, &role_id, &secret_file).await?;
        let b = start_replica("b", dir.path(), engines, &role_id, &secret_file).await?;
        anyhow::Ok((a, b))
    })?;
    let token = |resource: &str| provider.token(&DESK, "qc:account:read", resource);
    let both = [(a.resource.clone(), token(&a.resource)), (b.resource.clone(), token(&b.resource))];
    runtime.block_on(measure(report, &a, &sim, &both))
}

async fn measure(report: &mut String, a: &Replica, sim: &Simulator, both: &[(String, String)]) -> Result<()> {
    keybridge_testkit::add_main_account(&a.broker, &sim.account, "bench-team-token").await;
    let spec = keybridge_testkit::client_spec("Desk (team)", "research", false);
    let AdminReply::ClientAdded(added) = a.broker.admin(AdminCommand::ClientAdd { spec }).await? else {
        anyhow::bail!("the client was not added")
    };
    let limits =
        ClientLimitsUpdate { calls_per_minute: Some(1_000_000), calls_in_flight: Some(10_000), ..Default::default() };
    let update =
        AdminCommand::ClientUpdate { client_id: added.client_id, preset: None, scopes: vec![], policy: None, limits };
    a.broker.admin(update).await?;

    // Warm: sessions opened, connections made.
    load(both, 2, 50).await?;
    let (one, _) = load(&both[..1], 1, 1000).await?;
    let one: Stats = stats(one);
    let (many, took) = load(both, 8, 500).await?;
    let calls = many.len();
    let many = stats(many);

    crate::section(
        report,
        "Team mode as a service: `read_account` over HTTP through two replicas",
        "Two team replicas in one process, each on its own loopback port, on a PostgreSQL cluster of the benchmark's own with every commit flushed (fsync on), OpenBao (dev server) and the OpenID provider of the tests; the QuantConnect simulator behind them. Each call is a 2026-07-28 `tools/call` over HTTP with the provider's access token: the resource server's checks, the broker's, the simulator's answer, the audit record in PostgreSQL (one transaction on the head row) and the limit's count there (another).",
        "| load | median | p99 | calls | calls/s |\n|---|---|---|---|---|",
    )?;
    writeln!(report, "| one caller, one replica | {} | {} | {} | |", us(one.median), us(one.p99), one.n)?;
    writeln!(
        report,
        "| eight callers, four on each replica | {} | {} | {calls} | {:.0} |",
        us(many.median),
        us(many.p99),
        calls as f64 / took.as_secs_f64()
    )?;
    writeln!(report)?;
    Ok(())
}
