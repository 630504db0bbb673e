//! Live trading: brokerage authorization, deployments, their charts, logs, portfolio,
//! orders and insights, stop/liquidate and commands.

use serde_json::{Value, json};

use super::jobs::usable_compile;
use super::market::{self, ChartRequest, Perf};
use super::projects::LATEST_LEAN;
use super::{Answer, ApiError, Ctx, Params, Reply, ok};
use crate::state::{LiveDeployment, NodeKind};
use crate::util::{fmt_datetime, hex_id, round, seed};

const AUTH0_BROKERAGES: &[&str] = &["alpaca", "tradestation", "charlesschwab", "tastytrade"];
// QuantConnect's own list, kept apart from the catalog's on purpose: the simulator must not
// agree with the client by construction.
const BROKERAGES: &[&str] = &[
    "QuantConnectBrokerage",
    "InteractiveBrokersBrokerage",
    "TradierBrokerage",
    "BitfinexBrokerage",
    "CoinbaseBrokerage",
    "BinanceBrokerage",
    "TradingTechnologiesBrokerage",
    "KrakenBrokerage",
    "BybitBrokerage",
    "OandaBrokerage",
    "WolverineBrokerage",
    "CharlesSchwabBrokerage",
    "RBIBrokerage",
    "TerminalLinkBrokerage",
    "TradeStationBrokerage",
    "TastytradeBrokerage",
    "AlpacaBrokerage",
];
const LIST_STATUSES: &[&str] = &["Running", "Stopped", "RuntimeError", "Liquidated"];

pub(crate) fn auth0_authorize(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let brokerage = p.one_of("brokerage", AUTH0_BROKERAGES);
    p.finish()?;
    // The simulated sign-in succeeds at once; the page behind the redirect only says so.
    ctx.acct.auth0.insert(brokerage.clone());
    Ok(Reply::Redirect(format!("{}/__sim/auth0/{brokerage}", ctx.origin)))
}

pub(crate) fn auth0_read(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let brokerage = p.one_of("brokerage", AUTH0_BROKERAGES);
    p.finish()?;
    if !ctx.acct.auth0.contains(&brokerage) {
        return Err(ApiError::new(format!(
            "The {brokerage} connection has not been authorized: call /live/auth0/authorize and finish the sign-in first."
        )));
    }
    ok(json!({
        "authorization": {
            "brokerage": brokerage,
            "accounts": [format!("SIM-{}", hex_id(&["auth0", &ctx.acct.account.user_id, &brokerage], 8).to_uppercase())],
            "environment": "paper",
        }
    }))
}

fn deploy_seed(d: &LiveDeployment) -> u64 {
    seed(&["live", &d.deploy_id])
}

fn holdings_qty(d: &LiveDeployment) -> f64 {
    if d.status == "Liquidated" { 0.0 } else { 50.0 + (deploy_seed(d) % 150) as f64 }
}

fn live_algorithm_json(ctx: &Ctx<'_>, d: &LiveDeployment) -> Value {
    let s = deploy_seed(d);
    let perf = Perf::new(s);
    let price = market::price_at(s, ctx.now);
    let qty = holdings_qty(d);
    let mut v = json!({
        "message": "",
        "deployId": d.deploy_id,
        "status": d.status,
        "cloneId": d.project_id,
        "launched": fmt_datetime(d.launched),
        "brokerage": d.brokerage,
        "securityTypes": "Equity",
        "datacenter": "NY7",
        "isPublicStreaming": false,
        "public": false,
        "files": d.files.iter().map(|f| super::files::file_json(d.project_id, f)).collect::<Vec<_>>(),
        "runtimeStatistics": perf.runtime_statistics(price * qty, qty * 2.5),
        "charts": {"name": "Strategy Equity"},
    });
    if let Some(t) = d.stopped {
        v["stopped"] = json!(fmt_datetime(t));
    }
    v
}

fn latest<'c>(ctx: &'c Ctx<'_>, project_id: i64) -> Result<&'c LiveDeployment, ApiError> {
    ctx.project(project_id)?;
    ctx.acct
        .live
        .iter()
        .rev()
        .find(|d| d.project_id == project_id)
        .ok_or_else(|| ApiError::new(format!("Project {project_id} has no live algorithm.")))
}

fn running_index(ctx: &Ctx<'_>, project_id: i64) -> Result<usize, ApiError> {
    ctx.project(project_id)?;
    ctx.acct
        .live
        .iter()
        .position(|d| d.project_id == project_id && d.status == "Running")
        .ok_or_else(|| ApiError::new(format!("Project {project_id} has no running live algorithm.")))
}

pub(crate) fn create(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let version = match p.raw("versionId") {
        None => {
            p.int("versionId");
            0
        }
        Some(Value::Number(n)) if n.is_i64() => n.as_i64().unwrap_or_default(),
        Some(Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(n) => n,
            Err(_) => {
                p.fail(format!("versionId must be a LEAN version id or \"-1\" (got {s:?})"));
                0
            }
        },
        Some(_) => {
            p.fail("versionId is required and must be a string such as \"-1\"");
            0
        }
    };
    let project_id = p.int("projectId");
    let compile_id = p.str("compileId");
    let node_id = p.str("nodeId");
    let brokerage = p.object("brokerage");
    let brokerage_id = brokerage.and_then(|b| b.get("id")).and_then(Value::as_str).map(str::to_owned);
    if brokerage.is_some() {
        match &brokerage_id {
            Some(id) if BROKERAGES.contains(&id.as_str()) => {}
            Some(id) => {
                p.fail(format!("brokerage.id {id:?} is not a known brokerage; use one of: {}", BROKERAGES.join(", ")))
            }
            None => p.fail("brokerage.id is required"),
        }
    }
    p.opt_object("dataProviders");
    p.finish()?;

    let version_id = if version == -1 { LATEST_LEAN } else { version };
    if !super::projects::lean_versions().iter().any(|v| v["id"].as_i64() == Some(version_id)) {
        return Err(ApiError::new(format!("LEAN version {version} not found; use \"-1\" for the latest.")));
    }
    let project = ctx.project(project_id)?;
    usable_compile(project, &compile_id)?;
    let files = project.files.clone();
    let Some(node) = ctx.acct.nodes.iter().find(|n| n.id == node_id && n.kind == NodeKind::Live) else {
        return Err(ApiError::new(format!(
            "Live node {node_id} not found; read the project's nodes for the live node ids."
        )));
    };
    let busy = ctx.acct.live.iter().any(|d| d.node_id == node.id && d.status == "Running");
    if busy {
        return Err(ApiError::new(format!("Live node {node_id} is busy with another live algorithm.")));
    }
    if ctx.acct.live.iter().any(|d| d.project_id == project_id && d.status == "Running") {
        return Err(ApiError::new(format!(
            "Project {project_id} already has a running live algorithm; stop it first."
        )));
    }
    let seq = ctx.acct.next_seq();
    let deployment = LiveDeployment {
        deploy_id: format!("L-{}", hex_id(&["deploy", &project_id.to_string(), &compile_id, &seq.to_string()], 32)),
        project_id,
        node_id,
        brokerage: brokerage_id.unwrap_or_default(),
        launched: ctx.now,
        stopped: None,
        status: "Running",
        version_id,
        files,
        commands: Vec::new(),
    };
    let live = live_algorithm_json(ctx, &deployment);
    let deploy_id = deployment.deploy_id.clone();
    ctx.acct.live.push(deployment);
    ok(json!({
        "responseCode": "OK",
        "source": "api-v2",
        "deployId": deploy_id,
        "versionId": version_id,
        "projectId": project_id,
        "live": live,
    }))
}

pub(crate) fn read(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let project_id = p.int("projectId");
    p.opt_str("deployId");
    p.finish()?;
    let d = latest(ctx, project_id)?;
    let mut v = live_algorithm_json(ctx, d);
    v["projectName"] = json!(ctx.project(project_id)?.name);
    ok(v)
}

pub(crate) fn list(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let project_id = p.opt_int("projectId");
    let status = p.opt_one_of("status", LIST_STATUSES);
    p.finish()?;
    if let Some(id) = project_id {
        ctx.project(id)?;
    }
    let live: Vec<Value> = ctx
        .acct
        .live
        .iter()
        .filter(|d| project_id.is_none_or(|id| d.project_id == id))
        .filter(|d| status.as_deref().is_none_or(|s| d.status == s))
        .map(|d| {
            let s = deploy_seed(d);
            let equity = Perf::new(s).end_equity();
            let description = ctx.acct.projects.get(&d.project_id).map(|p| p.name.clone()).unwrap_or_default();
            let mut v = json!({
                "projectId": d.project_id,
                "deployId": d.deploy_id,
                "status": d.status,
                "launched": fmt_datetime(d.launched),
                "brokerage": d.brokerage,
                "subscription": "Quant Researcher",
                "equity": equity,
                "environment": if d.brokerage == "QuantConnectBrokerage" { "Paper Trading" } else { "Live Trading" },
                "description": description,
                "error": "",
                "leagues": [],
            });
            if let Some(t) = d.stopped {
                v["stopped"] = json!(fmt_datetime(t));
            }
            v
        })
        .collect();
    ok(json!({ "live": live }))
}

pub(crate) fn chart(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let project_id = p.int("projectId");
    let req = ChartRequest { name: p.str("name"), count: p.int("count"), start: p.int("start"), end: p.int("end") };
    p.finish()?;
    let d = latest(ctx, project_id)?;
    req.validate()?;
    let s = deploy_seed(d);
    let run_end = d.stopped.unwrap_or(ctx.now).max(d.launched + 1);
    ok(market::chart(s, &Perf::new(s), &req, d.launched, run_end))
}

fn log_line(d: &LiveDeployment, i: i64) -> String {
    let t = d.launched + i * 60;
    let s = deploy_seed(d);
    let price = market::price_at(s, t);
    let text = match i {
        0 => format!("Launching analysis for {} with LEAN Engine v2.5.0.0.{}", d.deploy_id, d.version_id),
        1 => "Algorithm initialized.".to_owned(),
        _ if i % 25 == 0 => format!("Rebalancing portfolio; {} at {price:.2}", market::TICKER),
        _ => format!("{} last price {price:.2}", market::TICKER),
    };
    format!("{} {text}", fmt_datetime(t))
}

pub(crate) fn logs(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let project_id = p.int("projectId");
    let algorithm_id = p.str("algorithmId");
    let start = p.int("startLine");
    let end = p.int("endLine");
    p.raw("format");
    p.finish()?;
    if start < 0 || end < start {
        return Err(ApiError::new(format!(
            "startLine and endLine must satisfy 0 <= startLine <= endLine (got {start} and {end})."
        )));
    }
    if end - start > 250 {
        return Err(ApiError::new(format!(
            "The difference between endLine and startLine must be at most 250 (got {}).",
            end - start
        )));
    }
    ctx.project(project_id)?;
    let Some(d) = ctx.acct.live.iter().find(|d| d.project_id == project_id && d.deploy_id == algorithm_id) else {
        return Err(ApiError::new(format!("Live algorithm {algorithm_id} not found in project {project_id}.")));
    };
    let total = 300 + (deploy_seed(d) % 200) as i64;
    let mut lines: Vec<String> = (start..end.min(total)).map(|i| log_line(d, i)).collect();
    if d.status != "Running" && end >= total {
        lines.push(format!("{} Algorithm {}.", fmt_datetime(d.stopped.unwrap_or(d.launched)), d.status.to_lowercase()));
    }
    let length = lines.len();
    ok(json!({ "logs": lines, "length": length, "deploymentOffset": 0 }))
}

pub(crate) fn portfolio(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let project_id = p.int("projectId");
    p.finish()?;
    let d = latest(ctx, project_id)?;
    let s = deploy_seed(d);
    let at = d.stopped.unwrap_or(ctx.now);
    let price = market::price_at(s, at);
    let avg = market::price_at(s, d.launched);
    let qty = holdings_qty(d);
    let cash_amount = round(
        market::START_EQUITY - avg * (50.0 + (s % 150) as f64)
            + if qty == 0.0 { price * (50.0 + (s % 150) as f64) } else { 0.0 },
        2,
    );
    let mut holdings = serde_json::Map::new();
    if qty > 0.0 {
        holdings.insert(
            market::SYMBOL_ID.to_owned(),
            json!({
                "a": avg,
                "q": qty,
                "p": price,
                "v": round(price * qty, 2),
                "u": round((price - avg) * qty, 2),
                "up": round((price - avg) / avg * 100.0, 2),
            }),
        );
    }
    ok(json!({
        "portfolio": {
            "holdings": holdings,
            "cash": {
                "USD": {
                    "securitySymbols": [],
                    "symbol": "USD",
                    "amount": cash_amount,
                    "conversionRate": 1.0,
                    "currencySymbol": "$",
                    "valueInAccountCurrency": cash_amount,
                }
            }
        }
    }))
}

fn order_count(d: &LiveDeployment) -> i64 {
    let base = 20 + (deploy_seed(d) % 30) as i64;
    if d.status == "Liquidated" { base + 1 } else { base }
}

pub(crate) fn orders(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let project_id = p.int("projectId");
    let start = p.int("start");
    let end = p.int("end");
    p.finish()?;
    market::check_range(start, end, 1000, "orders")?;
    let d = latest(ctx, project_id)?;
    let s = deploy_seed(d);
    let total = order_count(d);
    let run_end = d.stopped.unwrap_or(ctx.now).max(d.launched + 1);
    let orders: Vec<Value> = (start..end.min(total))
        .map(|i| {
            let n = i + 1;
            if d.status == "Liquidated" && n == total {
                let t = d.stopped.unwrap_or(run_end);
                let qty = 50.0 + (s % 150) as f64;
                market::order_json(&d.deploy_id, n, t, market::price_at(s, t), -qty, 1.0, "Liquidated")
            } else if d.status == "Running" && n == total {
                // A running algorithm has its newest order still working: a limit order, submitted.
                let mut working = market::order(s, &d.deploy_id, n, total, d.launched, run_end);
                working["type"] = json!(1);
                working["status"] = json!(1);
                working
            } else {
                market::order(s, &d.deploy_id, n, total, d.launched, run_end)
            }
        })
        .collect();
    let length = orders.len();
    ok(json!({ "orders": orders, "length": length }))
}

pub(crate) fn insights(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let project_id = p.int("projectId");
    let start = p.opt_int("start").unwrap_or(0);
    let end = p.int("end");
    p.finish()?;
    if start < 0 || end < start {
        return Err(ApiError::new(format!(
            "start and end must satisfy 0 <= start <= end (got start {start}, end {end})."
        )));
    }
    if end - start >= 100 {
        return Err(ApiError::new(format!(
            "The difference between end and start must be less than 100 (got {}).",
            end - start
        )));
    }
    let d = latest(ctx, project_id)?;
    let s = deploy_seed(d);
    let total = 10 + (s % 40) as i64;
    let run_end = d.stopped.unwrap_or(ctx.now).max(d.launched + 1);
    let insights: Vec<Value> =
        (start..end.min(total)).map(|i| market::insight(s, i, total, d.launched, run_end)).collect();
    let length = insights.len();
    ok(json!({ "insights": insights, "length": length }))
}

pub(crate) fn stop(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let project_id = p.int("projectId");
    p.finish()?;
    let i = running_index(ctx, project_id)?;
    let now = ctx.now;
    let d = &mut ctx.acct.live[i];
    d.status = "Stopped";
    d.stopped = Some(now);
    ok(json!({}))
}

pub(crate) fn liquidate(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let project_id = p.int("projectId");
    p.finish()?;
    let i = running_index(ctx, project_id)?;
    let now = ctx.now;
    let d = &mut ctx.acct.live[i];
    d.status = "Liquidated";
    d.stopped = Some(now);
    ok(json!({}))
}

pub(crate) fn command_create(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let project_id = p.int("projectId");
    let command = p.object("command").cloned();
    p.finish()?;
    let i = running_index(ctx, project_id)?;
    ctx.acct.live[i].commands.push(Value::Object(command.unwrap_or_default()));
    ok(json!({}))
}

pub(crate) fn command_broadcast(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let org = p.str("organizationId");
    let exclude = p.opt_int("excludeProjectId");
    let command = p.object("command").cloned();
    p.finish()?;
    ctx.check_org(&org)?;
    let command = Value::Object(command.unwrap_or_default());
    for d in ctx.acct.live.iter_mut().filter(|d| d.status == "Running" && Some(d.project_id) != exclude) {
        d.commands.push(command.clone());
    }
    ok(json!({}))
}
