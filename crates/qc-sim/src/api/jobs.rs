//! Compiles and backtests.

use serde_json::{Value, json};

use super::market::{self, ChartRequest, Perf};
use super::{Answer, ApiError, Ctx, Params, ok, source};
use crate::state::{Backtest, Compile, Project};
use crate::util::{fmt_datetime, hex_id, seed};

fn find_compile<'p>(project: &'p Project, compile_id: &str) -> Result<&'p Compile, ApiError> {
    project
        .compiles
        .iter()
        .find(|c| c.id == compile_id)
        .ok_or_else(|| ApiError::new(format!("Compile {compile_id} not found in project {}.", project.id)))
}

/// A compile that will not build cannot start a backtest, an optimization or a live
/// algorithm, as on the real platform.
pub(crate) fn usable_compile<'p>(project: &'p Project, compile_id: &str) -> Result<&'p Compile, ApiError> {
    let c = find_compile(project, compile_id)?;
    if c.errors.is_empty() {
        Ok(c)
    } else {
        Err(ApiError::new(format!("Compile {compile_id} failed with build errors; fix them and compile again.")))
    }
}

pub(crate) fn compile_create(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    p.finish()?;
    let seq = ctx.acct.next_seq();
    let done = ctx.done(0);
    let project = ctx.project_mut(id)?;

    let mut all = String::new();
    let mut errors = Vec::new();
    let mut parameters = Vec::new();
    for f in &project.files {
        all.push_str(&f.name);
        all.push('\0');
        all.push_str(&f.content);
        all.push('\0');
        errors.extend(source::check(&f.name, &f.content, &project.language));
        let calls = source::parameter_calls(&f.content);
        if !calls.is_empty() {
            parameters.push(json!({
                "file": f.name,
                "parameters": calls
                    .into_iter()
                    .map(|(line, kind)| json!({"line": line, "type": kind}))
                    .collect::<Vec<_>>(),
            }));
        }
    }
    let signature = hex_id(&["signature", &all], 32);
    // "<hash of project and code>-<n>": the same code compiled twice gets two ids.
    let compile_id = format!("{}-{seq}", hex_id(&["compile", &id.to_string(), &signature], 32));
    let file_names: Vec<String> = project.files.iter().map(|f| f.name.clone()).collect();
    let state = compile_state(done, &errors);
    project.compiles.push(Compile {
        id: compile_id.clone(),
        reads: 0,
        errors,
        signature: signature.clone(),
        file_names: file_names.clone(),
    });
    ok(json!({
        "compileId": compile_id,
        "state": state,
        "parameters": parameters,
        "projectId": id,
        "signature": signature,
        "signatureOrder": file_names,
    }))
}

fn compile_state(done: bool, errors: &[String]) -> &'static str {
    match (done, errors.is_empty()) {
        (false, _) => "InQueue",
        (true, true) => "BuildSuccess",
        (true, false) => "BuildError",
    }
}

pub(crate) fn compile_read(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let compile_id = p.str("compileId");
    p.finish()?;
    let reads_until = ctx.reads_until_complete;
    let project = ctx.project_mut(id)?;
    find_compile(project, &compile_id)?;
    let Some(c) = project.compiles.iter_mut().find(|c| c.id == compile_id) else {
        return Err(ApiError::new("Compile not found."));
    };
    c.reads = c.reads.saturating_add(1);
    let done = reads_until == 0 || c.reads > reads_until;
    let state = compile_state(done, &c.errors);
    let mut logs = Vec::new();
    if done {
        logs.push(format!(
            "Build Request Successful for Project ID: {id}, with CompileID: {compile_id}, Lean Version: 2.5.0.0.{}",
            super::projects::LATEST_LEAN
        ));
        logs.extend(c.errors.iter().cloned());
        logs.push(if c.errors.is_empty() {
            "Build Success".to_owned()
        } else {
            format!("Build Error: {} error(s) in {}", c.errors.len(), c.file_names.join(", "))
        });
    }
    ok(json!({ "compileId": compile_id, "state": state, "logs": logs }))
}

struct RunView {
    done: bool,
    progress: f64,
    status: String,
}

/// `parameterSet` as QuantConnect writes it: an empty list when there are none, else an object.
pub(crate) fn parameter_set(parameters: &serde_json::Map<String, Value>) -> Value {
    if parameters.is_empty() { json!([]) } else { Value::Object(parameters.clone()) }
}

fn run_view(ctx: &Ctx<'_>, reads: u32) -> RunView {
    // A job QuantConnect has just accepted is queued first, however fast it then runs.
    if reads == 0 {
        return RunView { done: false, progress: 0.0, status: "In Queue...".to_owned() };
    }
    if ctx.done(reads) {
        return RunView { done: true, progress: 1.0, status: "Completed.".to_owned() };
    }
    let progress = f64::from(reads) / f64::from(ctx.reads_until_complete + 1);
    let progress = (progress * 100.0).round() / 100.0;
    RunView { done: false, progress, status: format!("Running: {:.0}%", progress * 100.0) }
}

/// Results depend on the code (compile signature) and the parameters, not on the
/// backtest's name: the same code run twice gives the same numbers.
fn backtest_seed(project: &Project, bt: &Backtest) -> u64 {
    let signature = project.compiles.iter().find(|c| c.id == bt.compile_id).map(|c| c.signature.as_str()).unwrap_or("");
    seed(&["backtest", &project.id.to_string(), signature, &Value::Object(bt.parameters.clone()).to_string()])
}

fn backtest_json(ctx: &Ctx<'_>, project: &Project, bt: &Backtest) -> Value {
    let view = run_view(ctx, bt.reads);
    let s = backtest_seed(project, bt);
    let start = market::backtest_start();
    let end = market::backtest_end();
    let mut v = json!({
        "note": bt.note,
        "name": bt.name,
        "organizationId": project.organization_id,
        "projectId": project.id,
        "completed": view.done,
        "backtestId": bt.id,
        "tradeableDates": 251,
        "researchGuide": {"minutes": 5, "backtestCount": project.backtests.len(), "parameters": bt.parameters.len()},
        "backtestStart": fmt_datetime(start),
        "backtestEnd": fmt_datetime(end),
        "created": fmt_datetime(bt.created),
        "snapshotId": 0,
        "status": view.status,
        "progress": view.progress,
        "hasInitializeError": false,
        "parameterSet": parameter_set(&bt.parameters),
        "nodeName": "B2-8 node",
        "outOfSampleMaxEndDate": fmt_datetime(end),
        "outOfSampleDays": 0,
    });
    if view.done {
        let perf = Perf::new(s);
        let price = market::price_at(s, end);
        v["charts"] = market::chart_summaries();
        v["runtimeStatistics"] = perf.runtime_statistics(price * 100.0, perf.end_equity() * 0.01);
        v["statistics"] = perf.statistics();
        v["totalPerformance"] = perf.total_performance(s, start, end);
        v["rollingWindow"] = json!({});
    } else {
        v["charts"] = json!({});
    }
    v
}

fn find_backtest<'p>(project: &'p Project, backtest_id: &str) -> Result<&'p Backtest, ApiError> {
    project
        .backtests
        .iter()
        .find(|b| b.id == backtest_id)
        .ok_or_else(|| ApiError::new(format!("Backtest {backtest_id} not found in project {}.", project.id)))
}

pub(crate) fn backtest_create(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let compile_id = p.str("compileId");
    let name = p.str("backtestName");
    let parameters = p.opt_object("parameters").cloned().unwrap_or_default();
    for (k, v) in &parameters {
        if !(v.is_string() || v.is_number()) {
            p.fail(format!("parameters.{k} must be a string or a number"));
        }
    }
    p.finish()?;
    let seq = ctx.acct.next_seq();
    let now = ctx.now;
    let project = ctx.project(id)?;
    usable_compile(project, &compile_id)?;
    let bt = Backtest {
        id: hex_id(&["backtest", &id.to_string(), &compile_id, &name, &seq.to_string()], 32),
        name,
        note: String::new(),
        compile_id,
        created: now,
        parameters,
        reads: 0,
    };
    let v = backtest_json(ctx, project, &bt);
    ctx.project_mut(id)?.backtests.push(bt);
    ok(json!({ "backtest": v, "debugging": false }))
}

pub(crate) fn backtest_read(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let backtest_id = p.str("backtestId");
    p.finish()?;
    let project = ctx.project_mut(id)?;
    let bt = project
        .backtests
        .iter_mut()
        .find(|b| b.id == backtest_id)
        .ok_or_else(|| ApiError::new(format!("Backtest {backtest_id} not found in project {id}.")))?;
    bt.reads = bt.reads.saturating_add(1);
    let project = ctx.project(id)?;
    let bt = find_backtest(project, &backtest_id)?;
    ok(json!({ "backtest": backtest_json(ctx, project, bt), "debugging": false }))
}

pub(crate) fn backtest_list(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let with_stats = p.opt_bool("includeStatistics").unwrap_or(false);
    p.finish()?;
    let project = ctx.project(id)?;
    let list: Vec<Value> = project
        .backtests
        .iter()
        .map(|bt| {
            let view = run_view(ctx, bt.reads);
            let mut v = json!({
                "backtestId": bt.id,
                "status": view.status,
                "name": bt.name,
                "created": fmt_datetime(bt.created),
                "progress": view.progress,
                "tradeableDates": 251,
                "parameterSet": parameter_set(&bt.parameters),
                "snapshotId": 0,
                "tags": [],
            });
            if with_stats && view.done {
                let perf = Perf::new(backtest_seed(project, bt));
                let extra = json!({
                    "sharpeRatio": perf.sharpe,
                    "alpha": perf.alpha,
                    "beta": perf.beta,
                    "compoundingAnnualReturn": perf.cagr,
                    "drawdown": perf.drawdown,
                    "lossRate": crate::util::round(1.0 - perf.win_rate, 2),
                    "netProfit": perf.net,
                    "parameters": bt.parameters.len(),
                    "psr": perf.psr,
                    "securityTypes": 1,
                    "sortinoRatio": perf.sortino,
                    "trades": perf.trades,
                    "treynorRatio": perf.treynor,
                    "winRate": perf.win_rate,
                });
                if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
                    m.extend(e);
                }
            }
            v
        })
        .collect();
    let count = list.len();
    ok(json!({ "backtests": list, "count": count }))
}

fn completed_backtest<'p>(
    ctx: &'p Ctx<'_>,
    id: i64,
    backtest_id: &str,
) -> Result<(&'p Project, &'p Backtest, bool), ApiError> {
    let project = ctx.project(id)?;
    let bt = find_backtest(project, backtest_id)?;
    Ok((project, bt, ctx.done(bt.reads)))
}

pub(crate) fn backtest_chart(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let backtest_id = p.str("backtestId");
    let req = ChartRequest { name: p.str("name"), count: p.int("count"), start: p.int("start"), end: p.int("end") };
    p.finish()?;
    let (project, bt, done) = completed_backtest(ctx, id, &backtest_id)?;
    req.validate()?;
    if !done {
        let view = run_view(ctx, bt.reads);
        return ok(json!({ "progress": view.progress, "status": "loading" }));
    }
    let s = backtest_seed(project, bt);
    let perf = Perf::new(s);
    ok(market::chart(s, &perf, &req, market::backtest_start(), market::backtest_end()))
}

pub(crate) fn backtest_orders(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let backtest_id = p.str("backtestId");
    let start = p.int("start");
    let end = p.int("end");
    p.finish()?;
    market::check_range(start, end, 100, "orders")?;
    let (project, bt, done) = completed_backtest(ctx, id, &backtest_id)?;
    let orders: Vec<Value> = if done {
        let s = backtest_seed(project, bt);
        let total = Perf::new(s).trades * 2;
        (start..end.min(total))
            .map(|i| market::order(s, &bt.id, i + 1, total, market::backtest_start(), market::backtest_end()))
            .collect()
    } else {
        Vec::new()
    };
    let length = orders.len();
    ok(json!({ "orders": orders, "length": length }))
}

pub(crate) fn backtest_insights(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let backtest_id = p.str("backtestId");
    let start = p.int("start");
    let end = p.int("end");
    p.finish()?;
    market::check_range(start, end, 100, "insights")?;
    let (project, bt, done) = completed_backtest(ctx, id, &backtest_id)?;
    let insights: Vec<Value> = if done {
        let s = backtest_seed(project, bt);
        let total = 10 + (s % 50) as i64;
        (start..end.min(total))
            .map(|i| market::insight(s, i, total, market::backtest_start(), market::backtest_end()))
            .collect()
    } else {
        Vec::new()
    };
    let length = insights.len();
    ok(json!({ "insights": insights, "length": length }))
}

pub(crate) fn backtest_report(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let backtest_id = p.str("backtestId");
    p.finish()?;
    let (project, bt, done) = completed_backtest(ctx, id, &backtest_id)?;
    if !done {
        return ok(json!({ "generating": true }));
    }
    let perf = Perf::new(backtest_seed(project, bt));
    let stats = perf.statistics();
    let rows: String = stats
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("<tr><td>{k}</td><td>{}</td></tr>", v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    let name: String = bt.name.chars().filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_').collect();
    ok(json!({
        "report": format!("<!doctype html><html><head><title>{name}</title></head><body><h1>{name}</h1><table>{rows}</table></body></html>"),
    }))
}

pub(crate) fn backtest_update(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let backtest_id = p.str("backtestId");
    let name = p.opt_str("name");
    let note = p.opt_str("note");
    p.finish()?;
    let project = ctx.project_mut(id)?;
    let bt = project
        .backtests
        .iter_mut()
        .find(|b| b.id == backtest_id)
        .ok_or_else(|| ApiError::new(format!("Backtest {backtest_id} not found in project {id}.")))?;
    if let Some(n) = name {
        if n.trim().is_empty() {
            return Err(ApiError::new("name cannot be empty."));
        }
        bt.name = n;
    }
    if let Some(n) = note {
        bt.note = n;
    }
    ok(json!({}))
}

pub(crate) fn backtest_delete(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.int("projectId");
    let backtest_id = p.str("backtestId");
    p.finish()?;
    let project = ctx.project_mut(id)?;
    find_backtest(project, &backtest_id)?;
    project.backtests.retain(|b| b.id != backtest_id);
    ok(json!({}))
}
