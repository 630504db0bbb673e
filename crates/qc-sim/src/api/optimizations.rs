//! Optimizations: estimate, create (spends credit), read with progress, list, update,
//! abort, delete.

use serde_json::{Map, Value, json};

use super::jobs::usable_compile;
use super::market::{self, Perf};
use super::{Answer, ApiError, Ctx, Params, ok};
use crate::state::{OptParam, Optimization};
use crate::util::{fmt_datetime, hex_id, round, seed};

const TARGETS: &[&str] = &[
    "TotalPerformance.PortfolioStatistics.SharpeRatio",
    "TotalPerformance.PortfolioStatistics.CompoundingAnnualReturn",
    "TotalPerformance.PortfolioStatistics.ProbabilisticSharpeRatio",
    "TotalPerformance.PortfolioStatistics.Drawdown",
];
const STRATEGIES: &[&str] = &["QuantConnect.Optimizer.Strategies.GridSearchOptimizationStrategy"];
const NODE_TYPES: &[&str] = &["O2-8", "O4-12", "O8-16"];
const OPERATORS: &[&str] = &["LessOrEqual", "Less", "GreaterOrEqual", "Greater", "NotEqual", "Equals"];
/// Grid points reported per optimization; the rest are counted but not listed.
const MAX_LISTED: usize = 100;

struct Spec {
    project_id: i64,
    name: String,
    target: String,
    target_to: String,
    target_value: Option<f64>,
    strategy: String,
    parameters: Vec<OptParam>,
    constraints: Vec<Value>,
}

fn read_spec(p: &mut Params<'_>) -> Spec {
    let project_id = p.int("projectId");
    let name = p.str("name");
    let target = p.one_of("target", TARGETS);
    let target_to = p.one_of("targetTo", &["min", "max"]);
    let target_value = p.opt_num("targetValue");
    let strategy = p.one_of("strategy", STRATEGIES);
    let mut parameters = Vec::new();
    for (i, item) in p.array("parameters").iter().enumerate() {
        let field = |k: &str| item.get(k);
        let name = field("name").and_then(Value::as_str);
        let min = field("min").and_then(Value::as_f64);
        let max = field("max").and_then(Value::as_f64);
        let step = field("step").and_then(Value::as_f64);
        let (Some(name), Some(min), Some(max), Some(step)) = (name, min, max, step) else {
            p.fail(format!("parameters[{i}] must be an object with name (string) and min, max, step (numbers)"));
            continue;
        };
        if step <= 0.0 {
            p.fail(format!("parameters[{i}].step must be greater than 0"));
            continue;
        }
        if max < min {
            p.fail(format!("parameters[{i}].max must not be less than min"));
            continue;
        }
        parameters.push(OptParam {
            name: name.to_owned(),
            min,
            max,
            step,
            min_step: field("minStep").and_then(Value::as_f64),
        });
    }
    if p.has("parameters") && parameters.is_empty() {
        p.fail("parameters must name at least one parameter");
    }
    let mut constraints = Vec::new();
    for (i, c) in p.opt_array("constraints").into_iter().flatten().enumerate() {
        let target = c.get("target").and_then(Value::as_str);
        let operator = c.get("operator").and_then(Value::as_str);
        let value = c.get("targetValue").and_then(Value::as_f64);
        match (target, operator, value) {
            (Some(t), Some(o), Some(_)) if TARGETS.contains(&t) && OPERATORS.contains(&o) => {
                constraints.push(c.clone());
            }
            _ => p.fail(format!(
                "constraints[{i}] must have a target ({}), an operator ({}) and a numeric targetValue",
                TARGETS.join(", "),
                OPERATORS.join(", ")
            )),
        }
    }
    Spec { project_id, name, target, target_to, target_value, strategy, parameters, constraints }
}

fn steps(p: &OptParam) -> usize {
    ((p.max - p.min) / p.step + 1e-9).floor() as usize + 1
}

fn grid_size(params: &[OptParam]) -> usize {
    params.iter().fold(1usize, |acc, p| acc.saturating_mul(steps(p)))
}

/// The `index`-th point of the grid, as `(name, value)` pairs.
fn grid_point(params: &[OptParam], mut index: usize) -> Vec<(String, f64)> {
    params
        .iter()
        .map(|p| {
            let n = steps(p);
            let k = index % n;
            index /= n;
            (p.name.clone(), round(p.min + p.step * k as f64, 6))
        })
        .collect()
}

pub(crate) fn estimate(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let spec = read_spec(&mut p);
    let compile_id = p.opt_str("compileId");
    p.finish()?;
    let project = ctx.project(spec.project_id)?;
    if let Some(c) = &compile_id {
        usable_compile(project, c)?;
    }
    let points = grid_size(&spec.parameters);
    let seq = ctx.acct.next_seq();
    ok(json!({
        "estimate": {
            "estimateId": hex_id(&["estimate", &spec.project_id.to_string(), &seq.to_string()], 32),
            "time": (points as i64).saturating_mul(45),
            "balance": ctx.acct.credit_balance.floor() as i64,
        }
    }))
}

pub(crate) fn create(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let spec = read_spec(&mut p);
    let compile_id = p.str("compileId");
    let cost = p.num("estimatedCost");
    let node_type = p.one_of("nodeType", NODE_TYPES);
    let parallel = p.int("parallelNodes");
    if p.has("parallelNodes") && parallel < 1 {
        p.fail("parallelNodes must be at least 1");
    }
    if cost < 0.0 {
        p.fail("estimatedCost must not be negative");
    }
    p.finish()?;
    let project = ctx.project(spec.project_id)?;
    usable_compile(project, &compile_id)?;
    if cost > ctx.acct.credit_balance {
        return Err(ApiError::new(format!(
            "Insufficient QuantConnect credit: the optimization needs {cost:.2} QCC and the organization has {:.2} QCC.",
            ctx.acct.credit_balance
        )));
    }
    ctx.acct.credit_balance -= cost;
    let seq = ctx.acct.next_seq();
    let opt = Optimization {
        id: format!("O-{}", hex_id(&["optimization", &spec.project_id.to_string(), &spec.name, &seq.to_string()], 32)),
        project_id: spec.project_id,
        name: spec.name,
        target: spec.target,
        target_to: spec.target_to,
        target_value: spec.target_value,
        strategy: spec.strategy,
        compile_id,
        parameters: spec.parameters,
        constraints: spec.constraints,
        node_type,
        parallel_nodes: parallel,
        created: ctx.now,
        reads: 0,
        aborted: false,
    };
    let v = summary_json(ctx, &opt);
    ctx.acct.optimizations.push(opt);
    ok(json!({ "optimizations": [v] }))
}

fn status(ctx: &Ctx<'_>, o: &Optimization) -> &'static str {
    if o.aborted {
        "aborted"
    } else if ctx.done(o.reads) {
        "completed"
    } else if o.reads == 0 {
        "new"
    } else {
        "running"
    }
}

/// How many grid points have finished, given the optimization's progress.
fn finished_points(ctx: &Ctx<'_>, o: &Optimization) -> usize {
    let total = grid_size(&o.parameters);
    if ctx.done(o.reads) && !o.aborted {
        total
    } else if o.reads == 0 {
        0
    } else {
        let frac = f64::from(o.reads) / f64::from(ctx.reads_until_complete + 1);
        ((total as f64 * frac).floor() as usize).min(total)
    }
}

fn point_seed(o: &Optimization, point: &[(String, f64)]) -> u64 {
    let label: String = point.iter().map(|(k, v)| format!("{k}={v};")).collect();
    seed(&["optimization-point", &o.project_id.to_string(), &o.compile_id, &label])
}

fn criterion(o: &Optimization) -> Value {
    let mut c = json!({ "target": o.target, "extremum": o.target_to });
    if let Some(v) = o.target_value {
        c["targetValue"] = json!(v);
    }
    c
}

fn params_json(o: &Optimization) -> Vec<Value> {
    o.parameters
        .iter()
        .map(|p| {
            let mut v = json!({ "name": p.name, "min": p.min, "max": p.max, "step": p.step });
            if let Some(ms) = p.min_step {
                v["minStep"] = json!(ms);
            }
            v
        })
        .collect()
}

/// The best finished grid point by the optimization's target.
fn best(ctx: &Ctx<'_>, o: &Optimization) -> Option<Perf> {
    let n = finished_points(ctx, o).min(MAX_LISTED);
    let key = |p: &Perf| match o.target.as_str() {
        "TotalPerformance.PortfolioStatistics.CompoundingAnnualReturn" => p.cagr,
        "TotalPerformance.PortfolioStatistics.ProbabilisticSharpeRatio" => p.psr,
        "TotalPerformance.PortfolioStatistics.Drawdown" => p.drawdown,
        _ => p.sharpe,
    };
    (0..n).map(|i| Perf::new(point_seed(o, &grid_point(&o.parameters, i)))).reduce(|a, b| {
        let better = if o.target_to == "min" { key(&b) < key(&a) } else { key(&b) > key(&a) };
        if better { b } else { a }
    })
}

fn summary_json(ctx: &Ctx<'_>, o: &Optimization) -> Value {
    let best = best(ctx, o);
    json!({
        "optimizationId": o.id,
        "projectId": o.project_id,
        "name": o.name,
        "status": status(ctx, o),
        "nodeType": o.node_type,
        "criterion": criterion(o),
        "created": fmt_datetime(o.created),
        "psr": best.as_ref().map(|b| b.psr).unwrap_or(0.0),
        "sharpeRatio": best.as_ref().map(|b| b.sharpe).unwrap_or(0.0),
        "trades": best.as_ref().map(|b| b.trades).unwrap_or(0),
        "cloneId": o.project_id,
        "outOfSampleDays": 0,
        "outOfSampleMaxEndDate": fmt_datetime(market::backtest_end()),
        "parameters": params_json(o),
    })
}

fn full_json(ctx: &Ctx<'_>, o: &Optimization) -> Value {
    let total = grid_size(&o.parameters);
    let finished = finished_points(ctx, o);
    let running =
        if status(ctx, o) == "running" { (o.parallel_nodes.max(1) as usize).min(total - finished) } else { 0 };
    let queued = if o.aborted { 0 } else { total - finished - running };
    let start = market::backtest_start();
    let end = market::backtest_end();
    let mut backtests = Map::new();
    for i in 0..finished.min(MAX_LISTED) {
        let point = grid_point(&o.parameters, i);
        let s = point_seed(o, &point);
        let perf = Perf::new(s);
        let id = hex_id(&["optimization-backtest", &o.id, &i.to_string()], 32);
        let label: Vec<String> = point.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let parameter_set: Map<String, Value> = point.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let equity: Vec<Value> = (0..=4)
            .map(|q| {
                let t = start + (end - start) * q / 4;
                json!([t, round(market::START_EQUITY * (1.0 + perf.net * q as f64 / 4.0), 2)])
            })
            .collect();
        backtests.insert(
            id.clone(),
            json!({
                "name": format!("{} ({})", o.name, label.join(", ")),
                "id": id,
                "progress": 1.0,
                "exitCode": 0,
                "statistics": [
                    perf.net, perf.cagr, perf.drawdown, perf.sharpe, perf.sortino, perf.psr,
                    perf.alpha, perf.beta, perf.win_rate, perf.trades as f64,
                ],
                "parameterSet": parameter_set,
                "equity": equity,
                "startDate": fmt_datetime(start),
                "endDate": fmt_datetime(end),
                "outOfSampleDays": 0,
                "outOfSampleMaxEndDate": fmt_datetime(end),
            }),
        );
    }
    let mut v = json!({
        "optimizationId": o.id,
        "snapshotId": 0,
        "projectId": o.project_id,
        "name": o.name,
        "status": status(ctx, o),
        "nodeType": o.node_type,
        "parallelNodes": o.parallel_nodes,
        "criterion": criterion(o),
        "runtimeStatistics": {
            "Completed": finished.to_string(),
            "Failed": "0",
            "Running": running.to_string(),
            "In Queue": queued.to_string(),
            "Average Length": "00:00:45",
            "Total Runtime": format!("{:02}:{:02}:{:02}", finished * 45 / 3600, finished * 45 / 60 % 60, finished * 45 % 60),
            "Total": total.to_string(),
            "Consumed": format!("{:.2} QCC", finished as f64 * 0.01),
        },
        "constraints": o.constraints,
        "parameters": params_json(o),
        "backtests": backtests,
        "strategy": o.strategy,
        "requested": fmt_datetime(o.created),
        "optimizationTarget": o.target,
        "gridLayout": [],
        "outOfSampleMaxEndDate": fmt_datetime(end),
        "outOfSampleDays": 0,
    });
    if let Some(t) = o.target_value {
        v["targetValue"] = json!(t);
    }
    v
}

fn position(ctx: &Ctx<'_>, optimization_id: &str) -> Result<usize, ApiError> {
    ctx.acct
        .optimizations
        .iter()
        .position(|o| o.id == optimization_id)
        .ok_or_else(|| ApiError::new(format!("Optimization {optimization_id} not found.")))
}

pub(crate) fn read(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.str("optimizationId");
    p.finish()?;
    let i = position(ctx, &id)?;
    let o = &mut ctx.acct.optimizations[i];
    if !o.aborted {
        o.reads = o.reads.saturating_add(1);
    }
    let o = &ctx.acct.optimizations[i];
    ok(json!({ "optimization": full_json(ctx, o) }))
}

pub(crate) fn list(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let project_id = p.int("projectId");
    p.finish()?;
    ctx.project(project_id)?;
    let list: Vec<Value> =
        ctx.acct.optimizations.iter().filter(|o| o.project_id == project_id).map(|o| summary_json(ctx, o)).collect();
    ok(json!({ "optimizations": list }))
}

pub(crate) fn update(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.str("optimizationId");
    let name = p.str("name");
    p.finish()?;
    let i = position(ctx, &id)?;
    ctx.acct.optimizations[i].name = name;
    ok(json!({}))
}

pub(crate) fn abort(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.str("optimizationId");
    p.finish()?;
    let i = position(ctx, &id)?;
    if status(ctx, &ctx.acct.optimizations[i]) == "completed" {
        return Err(ApiError::new(format!("Optimization {id} has already completed and cannot be aborted.")));
    }
    ctx.acct.optimizations[i].aborted = true;
    ok(json!({}))
}

pub(crate) fn delete(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let id = p.str("optimizationId");
    p.finish()?;
    let i = position(ctx, &id)?;
    ctx.acct.optimizations.remove(i);
    ok(json!({}))
}
