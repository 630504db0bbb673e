//! The soak: `keybridge serve` (its real keychain, its data folder kept across restarts) under
//! 8 bridges of mixed calls for a long while, the simulator injecting 5xx, 429, dropped
//! connections and slowness for a third of the time, and the broker killed and restarted twice. Run by
//! `scripts/dev.sh soak [MINUTES]` inside a throwaway keyring session; figures to stdout and
//! appended to `docs/BENCHMARKS.md`.

use std::fmt::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use keybridge_qc_sim::{Fault, FaultRule, SimAccount};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::bridge::{Env, Mcp, release_bin, rss_kib};

const BRIDGES: usize = 8;
const IN_FLIGHT: u64 = 8;

/// What the bridges saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    errors: AtomicU64,
}

fn mixed_call(id: u64) -> Value {
    let (name, arguments) = match id % 5 {
        0 => ("read_project", json!({})),
        1 => ("create_project", json!({"name": format!("soak-{id}"), "language": "Py"})),
        _ => ("read_account", json!({})),
    };
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
}

async fn start_broker(env: &Env) -> Result<Child> {
    let mut serve =
        env.command(&release_bin("keybridge")?).arg("serve").stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let mut ready = BufReader::new(serve.stdout.take().context("stdout")?).lines();
    let first = ready.next_line().await?.unwrap_or_default();
    if !first.starts_with("ready ") {
        bail!("keybridge serve said {first:?}");
    }
    Ok(serve)
}

/// One bridge: keeps `IN_FLIGHT` calls going until `until`, counting what comes back.
async fn drive(env: Arc<Env>, client: String, key: String, until: Instant, tally: Arc<Tally>) -> Result<()> {
    let mut mcp = Mcp::spawn(&env, &client, &key).await?;
    mcp.initialize().await?;
    let (mut next, mut in_flight) = (1000u64, 0u64);
    while in_flight < IN_FLIGHT {
        mcp.send(mixed_call(next)).await?;
        (next, in_flight) = (next + 1, in_flight + 1);
    }
    while in_flight > 0 {
        let Some(line) = mcp.next_line().await? else { bail!("a bridge closed its output") };
        let message: Value = serde_json::from_str(&line)?;
        if message.get("id").is_none() {
            continue;
        }
        in_flight -= 1;
        if message["result"]["isError"] == false {
            tally.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            tally.errors.fetch_add(1, Ordering::Relaxed);
        }
        if Instant::now() < until {
            mcp.send(mixed_call(next)).await?;
            (next, in_flight) = (next + 1, in_flight + 1);
        }
    }
    mcp.close().await
}

pub async fn run(minutes: u64) -> Result<String> {
    let sim = keybridge_testkit::Simulator::demo().await.handle;
    let home = tempfile::tempdir()?;
    let env = Arc::new(Env::new(
        home,
        &[("KEYBRIDGE_QC_BASE_URL", sim.base_url()), ("KEYBRIDGE_KEYCHAIN", format!("soak-{}", std::process::id()))],
    ));
    let mut serve = start_broker(&env).await?;
    let demo = SimAccount::demo();
    env.cli_with_stdin(&["account", "add", "main", "--user-id", &demo.user_id], &demo.api_token).await?;
    let added =
        env.cli(&["client", "add", "soak", "--account", "main", "--preset", "research", "--key", "--json"]).await?;
    let client = added["client_id"].as_str().context("client id")?.to_string();
    let key = added["client_key"].as_str().context("client key")?.to_string();
    // Eight bridges at full speed are far past what one trader's client may do by default.
    env.cli(&["client", "update", &client, "--calls-per-minute", "1000000", "--calls-in-flight", "10000"]).await?;

    let started = Instant::now();
    let total = Duration::from_secs(minutes * 60);
    let until = started + total;
    let tally = Arc::new(Tally::default());
    let mut bridges = Vec::new();
    for _ in 0..BRIDGES {
        bridges.push(tokio::spawn(drive(env.clone(), client.clone(), key.clone(), until, tally.clone())));
    }

    // Faults in turn, a restart at a third and at two thirds, memory every 10 s.
    let faults = [
        Fault::ServerError(503),
        Fault::RateLimited { retry_after_secs: 1 },
        Fault::DropConnection,
        Fault::Latency(Duration::from_millis(400)),
    ];
    let restarts = [started + total / 3, started + total * 2 / 3];
    let mut restarted = 0;
    let mut samples: Vec<(u64, u64, usize)> = Vec::new();
    let mut tick = 0u64;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(10)).await;
        tick += 1;
        // Ten seconds of one fault in every thirty.
        sim.clear_faults();
        if tick.is_multiple_of(3) {
            let fault = faults[(tick / 3) as usize % faults.len()].clone();
            sim.add_fault(FaultRule { endpoint: None, fault, times: None });
        }
        if restarted < restarts.len() && Instant::now() >= restarts[restarted] {
            let _ = serve.kill().await;
            let _ = serve.wait().await;
            serve = start_broker(&env).await?;
            restarted += 1;
        }
        let rss = serve.id().map(rss_kib).unwrap_or(0);
        samples.push((started.elapsed().as_secs(), rss, restarted));
    }
    sim.clear_faults();
    let mut failed_bridges = 0;
    for bridge in bridges {
        if bridge.await.map_err(anyhow::Error::from).and_then(|r| r).is_err() {
            failed_bridges += 1;
        }
    }

    // Every answered call is on record; the chain holds; no session outlives its bridge.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = env.cli(&["status"]).await?;
    let sessions_left = status["sessions"].as_u64().unwrap_or(u64::MAX);
    let verify = env.cli(&["audit", "verify"]).await?;
    let records = env.audit_lines().await?;
    let audited_ok =
        records.iter().filter(|l| l.contains("\"tool_call\"") && l.contains("\"outcome\":\"ok\"")).count() as u64;
    let audited_all = records.iter().filter(|l| l.contains("\"tool_call\"")).count() as u64;
    let _ = serve.kill().await;
    sim.shutdown().await;

    // Memory after warm-up: the samples of the last broker, past its first two minutes.
    let last_start = samples.iter().find(|s| s.2 == restarted).map_or(0, |s| s.0);
    let steady: Vec<u64> =
        samples.iter().filter(|s| s.2 == restarted && s.0 >= last_start + 120).map(|s| s.1).collect();
    let (low, high) = (steady.iter().min().copied().unwrap_or(0), steady.iter().max().copied().unwrap_or(0));
    let mean = if steady.is_empty() { 0.0 } else { steady.iter().sum::<u64>() as f64 / steady.len() as f64 };
    let spread = if mean > 0.0 { (high - low) as f64 / mean * 100.0 } else { 0.0 };
    let (ok, errors) = (tally.ok.load(Ordering::Relaxed), tally.errors.load(Ordering::Relaxed));

    let mut report = String::new();
    writeln!(report, "## Soak\n")?;
    writeln!(
        report,
        "`scripts/dev.sh soak {minutes}`: `keybridge serve` (release, real keychain in a throwaway keyring session, data folder kept across restarts) against the simulator in the soak's process; {BRIDGES} `keybridge-mcp` bridges with {IN_FLIGHT} calls each in flight (read_account, read_project, create_project); for 10 s in every 30 s the simulator answers every request with one fault, in turn: 503, 429 (`Retry-After: 1`), a dropped connection, or 400 ms of latency; the broker is killed (SIGKILL) and restarted at a third and at two thirds.\n"
    )?;
    writeln!(report, "| measure | value | pass when |\n|---|---|---|")?;
    writeln!(report, "| duration | {:.1} min | |", started.elapsed().as_secs_f64() / 60.0)?;
    writeln!(report, "| calls answered: ok / error | {ok} / {errors} | |")?;
    writeln!(
        report,
        "| audit records of tool calls: ok / all | {audited_ok} / {audited_all} | every ok answer audited: {audited_ok} ≥ {ok} |"
    )?;
    writeln!(report, "| `audit verify` | {} | intact |", if verify["intact"] == true { "intact" } else { "BROKEN" })?;
    writeln!(report, "| sessions left after every bridge ended | {sessions_left} | 0 |")?;
    writeln!(report, "| bridges that failed | {failed_bridges} | 0 |")?;
    writeln!(
        report,
        "| broker resident memory after warm-up (last broker, {} samples) | {:.1}–{:.1} MiB, spread {spread:.1} % of the mean | within ±10 % |",
        steady.len(),
        low as f64 / 1024.0,
        high as f64 / 1024.0
    )?;
    let trace: Vec<String> = samples.iter().map(|s| format!("{}s:{:.1}", s.0, s.1 as f64 / 1024.0)).collect();
    writeln!(report, "\nBroker RSS (MiB) every 10 s: {}\n", trace.join(" "))?;
    Ok(report)
}
