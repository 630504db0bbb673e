//! `keybridge-bench`: measures Keybridge against its baselines in one run and writes the
//! figures, with the machine and the method, to `docs/BENCHMARKS.md`.
//!
//! Run it with `scripts/dev.sh bench` (a release build). It must never be a test: timings on a
//! shared 2-core machine are figures to read, not pass/fail checks.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod bridge;
mod soak;
mod team;

use anyhow::{Context, Result};
use keybridge_broker::audit::{AuditEvent, AuditLog, ToolCallEvent};
use keybridge_broker::server;
use keybridge_broker::tokens::{Grant, TokenIssuer};
use keybridge_broker_proto::{
    AdminCommand, ClientLimitsUpdate, Credential, Hello, PROTOCOL_VERSION, Request, RequestBody, Response, read_frame,
    write_frame,
};
use keybridge_catalog::Scope;
use keybridge_quantconnect::{ClientConfig, Credentials, QcClient};
use keybridge_vault::{MemoryStore, SecretStore};
use serde_json::json;

pub(crate) struct Stats {
    pub(crate) median: Duration,
    pub(crate) p99: Duration,
    pub(crate) n: usize,
}

pub(crate) fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let n = samples.len();
    Stats { median: samples[n / 2], p99: samples[(n * 99 / 100).min(n - 1)], n }
}

pub(crate) fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn time_each(n: usize, mut f: impl FnMut()) -> Stats {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f();
        samples.push(started.elapsed());
    }
    stats(samples)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {}; {rustc}; release build", std::env::consts::OS)
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // `keybridge-bench soak MINUTES`: the long run, appended to the report.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("overhead") {
        let rounds = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(3);
        return runtime.block_on(bridge::overhead(rounds));
    }
    // `keybridge-bench team`: team mode's audit chain alone, printed.
    if args.get(1).map(String::as_str) == Some("team") {
        let mut report = String::new();
        team_audit(&mut report, &bench_record())?;
        team::service(&mut report, &runtime)?;
        print!("{report}");
        return Ok(());
    }
    if args.get(1).map(String::as_str) == Some("soak") {
        let minutes = args.get(2).and_then(|m| m.parse().ok()).unwrap_or(30);
        let report = runtime.block_on(soak::run(minutes))?;
        print!("{report}");
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/BENCHMARKS.md");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(at) = text.find("\n## Soak\n") {
            text.truncate(at + 1);
        }
        if !text.is_empty() && !text.ends_with("\n\n") {
            text.push('\n');
        }
        text.push_str(&report);
        std::fs::write(&path, text).context("cannot write docs/BENCHMARKS.md")?;
        return Ok(());
    }
    let mut report = String::new();
    writeln!(report, "# Benchmarks\n")?;
    writeln!(
        report,
        "Written by `scripts/dev.sh bench` (release builds of `keybridge`, `keybridge-mcp` and `keybridge-bench`). Machine: {}.\n",
        machine()
    )?;
    writeln!(
        report,
        "Each figure is the median (and 99th percentile) of N timed repetitions after a warm-up, in one process, one after another; the baselines are measured in the same run.\n"
    )?;

    let dir = tempfile::tempdir()?;
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());

    // Tokens.
    let issuer = TokenIssuer::open("bench", dir.path(), store.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let grant = Grant {
        client_id: "bench".into(),
        session_id: "s".into(),
        account: "main".into(),
        scopes: Scope::ALL.iter().copied().collect(),
        ttl_secs: 600,
    };
    let (token, _) = issuer.mint(&grant).map_err(|e| anyhow::anyhow!("{e}"))?;
    for _ in 0..200 {
        issuer.verify(&token).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // Each token once: the whole check. Fewer than the broker remembers, so none is dropped.
    let fresh: Vec<String> = (0..4000).map(|_| issuer.mint(&grant).map(|(t, _)| t)).collect::<Result<_, _>>()?;
    let mut unseen = fresh.iter();
    let verify = time_each(fresh.len(), || {
        issuer.verify(unseen.next().unwrap()).unwrap();
    });
    let verify_again = time_each(5000, || {
        issuer.verify(&token).unwrap();
    });
    let mint = time_each(2000, || {
        issuer.mint(&grant).unwrap();
    });
    let tampered = format!("{}x", &token[..token.len() - 1]);
    let reject = time_each(5000, || {
        let _ = issuer.verify(&tampered);
    });

    // Audit log.
    let audit = AuditLog::open(&dir.path().join("audit"), store.as_ref())?;
    let record = bench_record();
    let append = time_each(5000, || {
        audit.append(&record).unwrap();
    });
    let started = Instant::now();
    let verified = audit.verify()?;
    let verify_log = started.elapsed();

    writeln!(report, "## Tokens and audit log (broker internals)\n")?;
    writeln!(report, "| operation | median | p99 | N |\n|---|---|---|---|")?;
    writeln!(
        report,
        "| verify an access token (EdDSA, all checks) | {} | {} | {} |",
        us(verify.median),
        us(verify.p99),
        verify.n
    )?;
    writeln!(
        report,
        "| verify a token already verified (the bridge's next call; expiry re-checked) | {} | {} | {} |",
        us(verify_again.median),
        us(verify_again.p99),
        verify_again.n
    )?;
    writeln!(
        report,
        "| reject a token with a bad signature | {} | {} | {} |",
        us(reject.median),
        us(reject.p99),
        reject.n
    )?;
    writeln!(report, "| mint an access token | {} | {} | {} |", us(mint.median), us(mint.p99), mint.n)?;
    stats_row(&mut report, "append an audit record (HMAC chain, one write, head update)", &append)?;
    writeln!(
        report,
        "| verify the whole audit chain | {:.1} ms for {} records | | 1 |\n",
        verify_log.as_secs_f64() * 1e3,
        verified.records
    )?;

    // A call through the broker's socket vs straight to the simulator.
    let (direct, brokered) = runtime.block_on(call_overhead(dir.path().join("broker")))?;
    team_audit(&mut report, &record)?;
    team::service(&mut report, &runtime)?;

    section(
        &mut report,
        "`read_account` through the broker's socket (in-process broker)",
        "Both use the same `QcClient` against the same in-process simulator on loopback. \"Through the broker\" is a bridge-style client on the Unix socket: token verification, authorization, policy, execution and the audit record included.",
        "| path | median | p99 | N |\n|---|---|---|---|",
    )?;
    writeln!(report, "| direct HTTP call | {} | {} | {} |", us(direct.median), us(direct.p99), direct.n)?;
    writeln!(
        report,
        "| through the broker socket | {} | {} | {} |",
        us(brokered.median),
        us(brokered.p99),
        brokered.n
    )?;
    writeln!(report, "| overhead of the broker alone | {} | | |\n", us(brokered.median.saturating_sub(direct.median)))?;

    runtime.block_on(bridge::run(&mut report))?;

    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/BENCHMARKS.md");
    // The soak's figures (`scripts/dev.sh soak`) are kept: this run does not repeat them.
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    if let Some(at) = old.find("\n## Soak\n") {
        report.push_str(&old[at + 1..]);
    }
    std::fs::write(&path, &report).with_context(|| format!("cannot write {}", path.display()))?;
    print!("{report}");
    Ok(())
}

async fn call_overhead(dir: PathBuf) -> Result<(Stats, Stats)> {
    let keybridge_testkit::Simulator { handle: sim, account: demo } = keybridge_testkit::Simulator::demo().await;
    let tool = keybridge_catalog::find("read_account").context("catalog")?;

    let client = QcClient::new(ClientConfig::new(sim.base_url()))?;
    let creds = Credentials::new(demo.user_id.clone(), demo.api_token.clone());
    for _ in 0..200 {
        client.call(&creds, tool, json!({})).await?;
    }
    let mut samples = Vec::new();
    for _ in 0..3000 {
        let started = Instant::now();
        client.call(&creds, tool, json!({})).await?;
        samples.push(started.elapsed());
    }
    let direct = stats(samples);

    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let broker = keybridge_testkit::open_broker(&dir.join("data"), &sim.base_url(), Duration::from_secs(60), store)?;
    let broker = Arc::new(broker);
    broker
        .admin(AdminCommand::AccountAdd {
            name: "main".into(),
            user_id: demo.user_id,
            organization_id: Some(demo.organization_id),
            api_token: Credential::new(demo.api_token),
            skip_check: true,
        })
        .await?;
    let spec = keybridge_testkit::client_spec("bench", "research", true);
    let Ok(added) =
        keybridge_broker_proto::ClientAdded::try_from(broker.admin(AdminCommand::ClientAdd { spec }).await?)
    else {
        anyhow::bail!("the broker answered ClientAdd with another kind of reply");
    };
    // The benchmark calls far faster than a trader's client may by default.
    let limits =
        ClientLimitsUpdate { calls_per_minute: Some(1_000_000), calls_in_flight: Some(10_000), ..Default::default() };
    let client_id = added.client_id.clone();
    let update = AdminCommand::ClientUpdate { client_id, preset: None, scopes: vec![], policy: None, limits };
    broker.admin(update).await?;
    let socket = dir.join("run/broker.sock");
    let listener = server::bind(&socket)?;
    tokio::spawn(server::serve(listener, broker.clone(), std::future::pending()));

    let mut stream = keybridge_endpoint::connect(&socket).await?;
    let hello = Hello::Bridge {
        version: PROTOCOL_VERSION,
        client_id: added.client_id,
        client_key: Some(Credential::new(added.client_key.context("a key client has a key")?)),
    };
    write_frame(&mut stream, &hello).await?;
    let Response::Welcome { session } = read_frame(&mut stream).await? else { anyhow::bail!("not welcomed") };
    let mut samples = Vec::new();
    for id in 0..3200u64 {
        let started = Instant::now();
        let call =
            RequestBody::Call { token: session.token.clone(), tool: "read_account".into(), arguments: json!({}) };
        write_frame(&mut stream, &Request { id, body: call }).await?;
        let Response::Result { .. } = read_frame(&mut stream).await? else { anyhow::bail!("call failed") };
        if id >= 200 {
            samples.push(started.elapsed());
        }
    }
    Ok((direct, stats(samples)))
}

/// A table row of timed repetitions: the median, the 99th percentile and how many.
fn stats_row(report: &mut String, label: &str, stats: &Stats) -> std::fmt::Result {
    writeln!(report, "| {label} | {} | {} | {} |", us(stats.median), us(stats.p99), stats.n)
}

/// A report section: its title, what was measured and how, and its table's head.
fn section(report: &mut String, title: &str, how: &str, head: &str) -> std::fmt::Result {
    writeln!(report, "## {title}\n")?;
    writeln!(report, "{how}\n")?;
    writeln!(report, "{head}")
}

/// The record every audit benchmark appends: a tool call, as most records are.
fn bench_record() -> AuditEvent {
    AuditEvent::ToolCall(ToolCallEvent {
        tool: "read_account".into(),
        client: Some("bench".into()),
        latency_us: 900,
        ..ToolCallEvent::default()
    })
}

/// Team mode's audit chain in PostgreSQL (a cluster of its own, flushing every commit): one
/// replica's appends, then two replicas with two writers each appending at once.
fn team_audit(report: &mut String, record: &AuditEvent) -> Result<()> {
    use keybridge_broker::audit::chain::ChainKey;
    use keybridge_broker::seams::AuditSink;
    let postgres = keybridge_testkit::Postgres::start_durable();
    let database = keybridge_team::PgConfig::new(&postgres.config(), None).map_err(anyhow::Error::msg)?;
    let store = MemoryStore::default();
    let key = || ChainKey::load_or_create(&store, "bench").map(|(key, _)| key);
    let one = keybridge_team::PgAudit::connect(&database, key()?, "a")?;
    for _ in 0..100 {
        one.append(record)?;
    }
    let append = time_each(2000, || {
        one.append(record).unwrap();
    });
    let replicas = [
        Arc::new(keybridge_team::PgAudit::connect(&database, key()?, "a")?),
        Arc::new(keybridge_team::PgAudit::connect(&database, key()?, "b")?),
    ];
    let per_writer = 1000;
    let started = Instant::now();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (replica, record) = (replicas[w % 2].clone(), record.clone());
            std::thread::spawn(move || {
                for _ in 0..per_writer {
                    replica.append(&record).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().map_err(|_| anyhow::anyhow!("a writer panicked"))?;
    }
    let together = started.elapsed();
    let started = Instant::now();
    let verified = replicas[0].verify()?;
    let verify = started.elapsed();
    writeln!(report)?;
    section(
        report,
        "Team mode's audit chain in PostgreSQL",
        "A PostgreSQL cluster of the benchmark's own on loopback, every commit flushed to disk (fsync on); each append one transaction that locks the head row.",
        "| operation | median | p99 | N |\n|---|---|---|---|",
    )?;
    stats_row(report, "append a record, one replica", &append)?;
    writeln!(
        report,
        "| two replicas, two writers each, appending at once | {:.0} records/s | | {} |",
        (4 * per_writer) as f64 / together.as_secs_f64(),
        4 * per_writer
    )?;
    writeln!(
        report,
        "| verify the whole chain ({} records) | {:.1} ms | | 1 |",
        verified.records,
        verify.as_secs_f64() * 1000.0
    )?;
    writeln!(report)?;
    Ok(())
}
