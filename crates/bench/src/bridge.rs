//! The bridge as MCP clients see it: `keybridge-mcp` processes against a `keybridge serve`
//! process, measured with a minimal JSON-RPC client over stdio.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use keybridge_quantconnect::{ClientConfig, Credentials, QcClient};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::{Stats, stats, us};

/// A release binary beside the benchmark, or in `KEYBRIDGE_BENCH_BINARIES` when that names a
/// folder (to compare another build's binaries in the same run).
pub(crate) fn release_bin(name: &str) -> Result<PathBuf> {
    let folder = match std::env::var_os("KEYBRIDGE_BENCH_BINARIES") {
        Some(folder) => PathBuf::from(folder),
        None => std::env::current_exe()?.parent().context("bench binary folder")?.to_path_buf(),
    };
    let path = folder.join(name);
    if !path.exists() {
        bail!("{} is not built: run `cargo build --release -p keybridge-cli -p keybridge-mcp` first", path.display());
    }
    Ok(path)
}

/// A data folder and socket of its own, and what every Keybridge process there runs with.
pub(crate) struct Env {
    home: tempfile::TempDir,
    socket: PathBuf,
    extra: Vec<(&'static str, String)>,
}

impl Env {
    pub(crate) fn new(home: tempfile::TempDir, extra: &[(&'static str, String)]) -> Env {
        Env { socket: home.path().join("run/broker.sock"), home, extra: extra.to_vec() }
    }

    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env("KEYBRIDGE_HOME", self.home.path().join("data"))
            .env("KEYBRIDGE_SOCKET", &self.socket)
            .env("KEYBRIDGE_LOG", "error")
            .envs(self.extra.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        command
    }

    pub(crate) async fn cli(&self, args: &[&str]) -> Result<Value> {
        self.cli_with_stdin(args, "").await
    }

    pub(crate) async fn cli_with_stdin(&self, args: &[&str], input: &str) -> Result<Value> {
        let mut child = self
            .command(&release_bin("keybridge")?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().context("stdin")?;
        stdin.write_all(input.as_bytes()).await?;
        drop(stdin);
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!("keybridge {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
    }

    /// Every audit record, as the lines `keybridge audit tail --json` prints.
    pub(crate) async fn audit_lines(&self) -> Result<Vec<String>> {
        let out = self
            .command(&release_bin("keybridge")?)
            .args(["audit", "tail", "--last", "100000000", "--json"])
            .output()
            .await?;
        Ok(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect())
    }
}

/// One `keybridge-mcp` process and a line-based JSON-RPC client on its stdio.
pub(crate) struct Mcp {
    child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl Mcp {
    pub(crate) async fn spawn(env: &Env, client: &str, key: &str) -> Result<Mcp> {
        let mut child = env
            .command(&release_bin("keybridge-mcp")?)
            .args(["--client", client])
            .env("KEYBRIDGE_CLIENT_KEY", key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        Ok(Mcp { child, stdin, lines })
    }

    pub(crate) async fn send(&mut self, message: Value) -> Result<()> {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        Ok(())
    }

    /// Read until the reply to `id`.
    async fn reply(&mut self, id: u64) -> Result<Value> {
        while let Some(line) = self.lines.next_line().await? {
            let message: Value = serde_json::from_str(&line)?;
            if message["id"] == id {
                return Ok(message);
            }
        }
        bail!("the bridge closed stdout")
    }

    pub(crate) async fn next_line(&mut self) -> Result<Option<String>> {
        Ok(self.lines.next_line().await?)
    }

    /// Close stdin and wait for the bridge to exit.
    pub(crate) async fn close(mut self) -> Result<()> {
        drop(self.stdin);
        self.child.wait().await?;
        Ok(())
    }

    pub(crate) async fn initialize(&mut self) -> Result<()> {
        self.send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}))
            .await?;
        self.reply(0).await?;
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await
    }

    fn rss_kib(&self) -> u64 {
        self.child.id().map(rss_kib).unwrap_or(0)
    }
}

/// Time a process has spent on a CPU, all its threads together (from the scheduler's figures).
pub(crate) fn cpu_time(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    Duration::from_nanos(
        tasks
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
            .sum(),
    )
}

pub(crate) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "read_account", "arguments": {}}})
}

/// `keybridge serve --demo` against a simulator in this process, so that the broker's memory is
/// its own; returns the server, its first line read, and the QuantConnect URL it uses.
async fn start_serve(env: &Env, sim: &keybridge_qc_sim::SimHandle) -> Result<(Child, String)> {
    let mut serve = env
        .command(&release_bin("keybridge")?)
        .args(["serve", "--demo"])
        .env("KEYBRIDGE_DEMO_QC_URL", sim.base_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut ready = BufReader::new(serve.stdout.take().context("stdout")?).lines();
    let first = ready.next_line().await?.unwrap_or_default();
    if !first.starts_with("ready ") {
        bail!("keybridge serve said {first:?}");
    }
    let status = env.cli(&["status"]).await?;
    let base_url = status["quantconnect"].as_str().context("simulator URL")?.to_string();
    Ok((serve, base_url))
}

/// `read_account` one call at a time: 2,000 straight to the simulator, then 2,000 through a
/// bridge and the broker (each after 200 to warm up); the medians differ by what Keybridge adds.
async fn one_at_a_time(env: &Env, base_url: &str, client: &str, key: &str, broker: u32) -> Result<OneAtATime> {
    let demo = keybridge_qc_sim::SimAccount::demo();
    let qc = QcClient::new(ClientConfig::new(base_url.to_string()))?;
    let creds = Credentials::new(demo.user_id, demo.api_token);
    let tool = keybridge_catalog::find("read_account").context("catalog")?;
    let mut direct = Vec::new();
    for i in 0..2200 {
        let started = Instant::now();
        qc.call(&creds, tool, json!({})).await?;
        if i >= 200 {
            direct.push(started.elapsed());
        }
    }
    let mut mcp = Mcp::spawn(env, client, key).await?;
    mcp.initialize().await?;
    let bridge = mcp.child.id().context("the bridge exited")?;
    let mut bridged = Vec::new();
    let mut cpu_before = (Duration::ZERO, Duration::ZERO);
    for id in 10..2210u64 {
        if id == 210 {
            cpu_before = (cpu_time(bridge), cpu_time(broker));
        }
        let started = Instant::now();
        mcp.send(call(id)).await?;
        let reply = mcp.reply(id).await?;
        if reply["result"]["isError"] != false {
            bail!("call failed: {reply}");
        }
        if id >= 210 {
            bridged.push(started.elapsed());
        }
    }
    let calls = bridged.len() as u32;
    let measured = OneAtATime {
        bridge_cpu: cpu_time(bridge).saturating_sub(cpu_before.0) / calls,
        broker_cpu: cpu_time(broker).saturating_sub(cpu_before.1) / calls,
        direct: stats(direct),
        bridged: stats(bridged),
        bridge_rss: mcp.rss_kib(),
    };
    // An orderly exit, so that a profiler wrapped around the bridge can write its figures.
    mcp.close().await?;
    Ok(measured)
}

struct OneAtATime {
    direct: Stats,
    bridged: Stats,
    /// CPU time per call, in the bridge and in the broker.
    bridge_cpu: Duration,
    broker_cpu: Duration,
    bridge_rss: u64,
}

/// The client every measure uses, with limits a trader's client would never need.
async fn add_client(env: &Env, preset: &str) -> Result<(String, String)> {
    let added = env.cli(&["client", "add", preset, "--account", "demo", "--preset", preset, "--key", "--json"]).await?;
    let id = added["client_id"].as_str().unwrap_or_default().to_string();
    env.cli(&["client", "update", &id, "--calls-per-minute", "1000000", "--calls-in-flight", "10000"]).await?;
    Ok((id, added["client_key"].as_str().unwrap_or_default().to_string()))
}

/// `keybridge-bench overhead ROUNDS`: only the overhead on `read_account`, ROUNDS times, each with a
/// fresh broker, for comparing two builds (`KEYBRIDGE_BENCH_BINARIES`) back to back.
pub async fn overhead(rounds: usize) -> Result<()> {
    for _ in 0..rounds {
        let env = Env::new(tempfile::tempdir()?, &[]);
        let sim = keybridge_testkit::Simulator::demo().await.handle;
        let (mut serve, base_url) = start_serve(&env, &sim).await?;
        let (client, key) = add_client(&env, "research").await?;
        let broker = serve.id().context("keybridge serve exited")?;
        let measured = one_at_a_time(&env, &base_url, &client, &key, broker).await?;
        println!(
            "direct {}  bridged {}  overhead {}  CPU per call: bridge {}, broker {}",
            us(measured.direct.median),
            us(measured.bridged.median),
            us(measured.bridged.median.saturating_sub(measured.direct.median)),
            us(measured.bridge_cpu),
            us(measured.broker_cpu),
        );
        let _ = serve.kill().await;
        sim.shutdown().await;
    }
    Ok(())
}

pub async fn run(report: &mut String) -> Result<()> {
    let env = Env::new(tempfile::tempdir()?, &[]);
    let sim = keybridge_testkit::Simulator::demo().await.handle;
    let (mut serve, base_url) = start_serve(&env, &sim).await?;

    let mut clients = HashMap::new();
    for preset in ["read-only", "research", "trader", "admin"] {
        clients.insert(preset, add_client(&env, preset).await?);
    }
    let (client, key) = clients["research"].clone();
    let broker_rss_idle = serve.id().map(rss_kib).unwrap_or(0);

    // Start-up.
    let mut to_initialize = Vec::new();
    let mut to_tools = Vec::new();
    for _ in 0..40 {
        let started = Instant::now();
        let mut mcp = Mcp::spawn(&env, &client, &key).await?;
        mcp.initialize().await?;
        to_initialize.push(started.elapsed());
        mcp.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await?;
        let tools = mcp.reply(1).await?;
        to_tools.push(started.elapsed());
        if tools["result"]["tools"].as_array().map_or(0, Vec::len) < 2 {
            bail!("tools/list did not list the client's tools: {tools}");
        }
    }
    let (to_initialize, to_tools) = (stats(to_initialize), stats(to_tools));

    // One call at a time: direct vs through bridge and broker.
    let broker = serve.id().context("keybridge serve exited")?;
    let OneAtATime { direct, bridged, bridge_cpu, broker_cpu, bridge_rss } =
        one_at_a_time(&env, &base_url, &client, &key, broker).await?;

    // tools/list size per preset.
    let mut sizes = Vec::new();
    for preset in ["read-only", "research", "trader", "admin"] {
        let (client, key) = &clients[preset];
        let mut mcp = Mcp::spawn(&env, client, key).await?;
        mcp.initialize().await?;
        mcp.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await?;
        let reply = mcp.reply(1).await?;
        let tools = reply["result"]["tools"].as_array().map_or(0, Vec::len);
        sizes.push((preset, tools, reply["result"].to_string().len()));
    }

    // Sustained load: 8 bridges, each with 16 calls in flight, for 5 seconds.
    let records_before = count_tool_calls(&env).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut mcp = Mcp::spawn(&env, &client, &key).await?;
        tasks.push(tokio::spawn(async move {
            mcp.initialize().await?;
            let (mut next, mut done, mut in_flight) = (100u64, 0u64, 0u64);
            while in_flight < 16 {
                mcp.send(call(next)).await?;
                (next, in_flight) = (next + 1, in_flight + 1);
            }
            while let Some(line) = mcp.lines.next_line().await? {
                let message: Value = serde_json::from_str(&line)?;
                if message.get("id").is_none() {
                    continue;
                }
                if message["result"]["isError"] != false {
                    bail!("call failed under load: {message}");
                }
                (done, in_flight) = (done + 1, in_flight - 1);
                if Instant::now() < deadline {
                    mcp.send(call(next)).await?;
                    (next, in_flight) = (next + 1, in_flight + 1);
                } else if in_flight == 0 {
                    break;
                }
            }
            Ok::<u64, anyhow::Error>(done)
        }));
    }
    let mut calls = 0;
    for task in tasks {
        calls += task.await??;
    }
    let elapsed = started.elapsed();
    // Before the audit log is read back: `audit tail` holds the whole log while it answers.
    let broker_rss = serve.id().map(rss_kib).unwrap_or(0);
    let records = count_tool_calls(&env).await? - records_before;
    let broker_rss_after_tail = serve.id().map(rss_kib).unwrap_or(0);
    let _ = serve.kill().await;
    sim.shutdown().await;

    writeln!(report, "## keybridge-mcp, as an MCP client sees it\n")?;
    writeln!(
        report,
        "`keybridge serve --demo` and `keybridge-mcp` are release builds run as processes; the client is a minimal JSON-RPC writer/reader on the bridge's stdio (protocol 2025-06-18), clients in key mode. Start-up is measured from `spawn` on.\n"
    )?;
    writeln!(report, "| measure | median | p99 | N | target |\n|---|---|---|---|---|")?;
    writeln!(
        report,
        "| spawn → `initialize` reply | {} | {} | {} | ≤ 10 ms |",
        ms(&to_initialize.median),
        ms(&to_initialize.p99),
        to_initialize.n
    )?;
    writeln!(
        report,
        "| spawn → authenticated `tools/list` reply | {} | {} | {} | ≤ 5 ms |",
        ms(&to_tools.median),
        ms(&to_tools.p99),
        to_tools.n
    )?;
    writeln!(
        report,
        "| `read_account` direct HTTP to the simulator | {} | {} | {} | |",
        us(direct.median),
        us(direct.p99),
        direct.n
    )?;
    writeln!(
        report,
        "| `read_account` via bridge and broker | {} | {} | {} | |",
        us(bridged.median),
        us(bridged.p99),
        bridged.n
    )?;
    writeln!(
        report,
        "| **overhead Keybridge adds** | **{}** | | | ≤ 150 µs |",
        us(bridged.median.saturating_sub(direct.median))
    )?;
    writeln!(
        report,
        "| CPU time per bridged call: bridge / broker (scheduler run time over the timed calls) | {} / {} | | | |\n",
        us(bridge_cpu),
        us(broker_cpu)
    )?;
    writeln!(report, "| preset | tools listed (with `keybridge_status`) | `tools/list` result bytes |\n|---|---|---|")?;
    for (preset, tools, bytes) in &sizes {
        writeln!(report, "| {preset} | {tools} | {bytes} |")?;
    }
    writeln!(
        report,
        "\nTarget: all 64 tools ≤ 60 KB. QuantConnect's official server lists its 64 tools in about 336 KB.\n"
    )?;
    writeln!(report, "| sustained load | value | target |\n|---|---|---|")?;
    writeln!(
        report,
        "| calls per second, 8 bridges × 16 in flight, {:.1} s | {:.0} | ≥ 3,000 |",
        elapsed.as_secs_f64(),
        calls as f64 / elapsed.as_secs_f64()
    )?;
    writeln!(report, "| calls answered / audit records written | {calls} / {records} | equal |")?;
    writeln!(report, "| resident memory, one bridge after 2,200 calls | {:.1} MiB | |", bridge_rss as f64 / 1024.0)?;
    writeln!(
        report,
        "| resident memory, headless broker at rest after start-up (the simulator in another process) | {:.1} MiB | |",
        broker_rss_idle as f64 / 1024.0
    )?;
    writeln!(
        report,
        "| resident memory, headless broker after the load (the simulator in another process) | {:.1} MiB | ≤ 40 MiB |",
        broker_rss as f64 / 1024.0
    )?;
    writeln!(
        report,
        "| resident memory, headless broker after `audit tail` of its whole log ({} records) | {:.1} MiB | |\n",
        records_before + records + 1,
        broker_rss_after_tail as f64 / 1024.0
    )?;
    writeln!(
        report,
        "For reference, QuantConnect's official MCP server, measured on this kind of machine: about 1.7 s to start, 62–65 ms per `read_account` against a local fake API, and a 336 KB `tools/list`."
    )?;
    Ok(())
}

fn ms(d: &Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn count_tool_calls(env: &Env) -> Result<u64> {
    Ok(env
        .audit_lines()
        .await?
        .iter()
        .filter(|l| l.contains("\"tool_call\"") && l.contains("\"outcome\":\"ok\""))
        .count() as u64)
}
