//! Consequence previews: before a dangerous call is asked about, the broker reads, on its own
//! authority and read-only, what the call will touch, so the human decides on what will happen
//! rather than on a tool's name. Every read is bounded in time and audited as the broker's. A
//! preview goes to the human only, never to the client that asks. If a read fails, the preview
//! says so and the question is asked all the same: a preview never blocks a decision.

use std::time::Duration;

use keybridge_broker_proto::ConsequencePreview;
use keybridge_catalog::Tool;
use serde_json::{Map, Value, json};

use super::{BROKER_LOOKUPS, Broker};
use crate::audit::{AuditEvent, Outcome};
use crate::clients::Client;
use crate::text::{plain_text, quoted, trading_mode};

/// How long one look-up may take before the question is asked without it.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

impl Broker {
    /// A read for the human's question, audited as the broker's; the reason it failed otherwise.
    pub(super) async fn look_up(
        &self,
        client: &Client,
        for_tool: &Tool,
        name: &str,
        args: Value,
    ) -> Result<Value, String> {
        let tool = keybridge_catalog::find(name).ok_or_else(|| format!("{name} is not a known tool"))?;
        let project = args.get("projectId").and_then(Value::as_i64);
        let read = self.execute(&client.account, BROKER_LOOKUPS, tool, args);
        let reply = tokio::time::timeout(LOOKUP_TIMEOUT, read).await;
        let outcome = match &reply {
            Ok(Ok(_)) => Outcome::Ok,
            Ok(Err(e)) => Outcome::Failed(e.code()),
            Err(_) => Outcome::TimedOut,
        };
        self.record(AuditEvent::BrokerLookup {
            tool: tool.name.to_string(),
            project,
            account: client.account.to_string(),
            client: client.id.clone(),
            for_tool: for_tool.name.to_string(),
            outcome,
        });
        match reply {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                Err(format!("QuantConnect answered {name} with an error: {}", plain_text(&e.to_string(), 200)))
            }
            Err(_) => Err(format!("QuantConnect did not answer {name} within {} s", LOOKUP_TIMEOUT.as_secs())),
        }
    }

    /// What `tool` will do with `args`, for the tools where that is worth a look.
    pub(super) async fn preview(
        &self,
        client: &Client,
        tool: &Tool,
        args: &Map<String, Value>,
    ) -> Option<ConsequencePreview> {
        let project = args.get("projectId").and_then(Value::as_i64);
        match tool.name {
            "liquidate_live_algorithm" | "stop_live_algorithm" => {
                let project = project?;
                let (portfolio, orders) = tokio::join!(
                    self.look_up(client, tool, "read_live_portfolio", json!({"projectId": project})),
                    self.look_up(
                        client,
                        tool,
                        "read_live_orders",
                        json!({"projectId": project, "start": 0, "end": 100})
                    ),
                );
                let mut preview = Draft::new("Holdings:");
                match portfolio {
                    Ok(portfolio) => preview.lines.extend(holdings(&portfolio)),
                    Err(e) => preview.missing(e),
                }
                match orders {
                    Ok(orders) => preview.lines.push(open_orders(&orders)),
                    Err(e) => preview.missing(e),
                }
                preview.lines.push(
                    if tool.name == "liquidate_live_algorithm" {
                        "Liquidating sells or buys back every position above at market and stops the algorithm."
                    } else {
                        "Stopping leaves every position above open at the brokerage."
                    }
                    .into(),
                );
                Some(preview.done())
            }
            "create_live_algorithm" => Some(deployment(args)),
            "delete_project" => {
                let project = project?;
                let (backtests, live) = tokio::join!(
                    self.look_up(client, tool, "list_backtests", json!({"projectId": project})),
                    self.look_up(client, tool, "read_live_algorithm", json!({"projectId": project})),
                );
                let mut preview = Draft::new("Will delete:");
                preview.lines.push(format!("Project {project}, with its files"));
                match backtests {
                    Ok(list) => preview.lines.push(match list["backtests"].as_array().map_or(0, Vec::len) {
                        0 => "No backtests".into(),
                        1 => "1 backtest".into(),
                        n => format!("{n} backtests"),
                    }),
                    Err(e) => preview.missing(e),
                }
                // A project with no deployment is an error at QuantConnect: that is an answer.
                preview.lines.push(match live {
                    Ok(live) => match live["status"].as_str() {
                        Some(status) => format!("Its live deployment, now {}", plain_text(status, 40)),
                        None => "No live deployment".into(),
                    },
                    Err(_) => "No live deployment found".into(),
                });
                Some(preview.done())
            }
            "delete_backtest" => {
                let backtest = args.get("backtestId")?.clone();
                let read =
                    self.look_up(client, tool, "read_backtest", json!({"projectId": project?, "backtestId": backtest}));
                let mut preview = Draft::new("Will delete:");
                match read.await {
                    Ok(found) => preview.lines.extend(backtest_summary(&found["backtest"])),
                    Err(e) => preview.missing(e),
                }
                Some(preview.done())
            }
            "create_optimization" => {
                let estimate_tool = keybridge_catalog::find("estimate_optimization_time")?;
                let asked: Map<String, Value> = args
                    .iter()
                    .filter(|(name, _)| estimate_tool.params.iter().any(|p| p.name == name.as_str()))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                let estimate = self.look_up(client, tool, estimate_tool.name, Value::Object(asked)).await;
                let mut preview = Draft::new("Will cost:");
                match estimate {
                    Ok(estimate) => preview.lines.extend(optimization_estimate(&estimate["estimate"])),
                    Err(e) => preview.missing(e),
                }
                preview.lines.extend(optimization_request(args));
                Some(preview.done())
            }
            "delete_object" => {
                let read = self.look_up(
                    client,
                    tool,
                    "read_object_properties",
                    json!({"organizationId": args.get("organizationId")?, "key": args.get("key")?}),
                );
                let mut preview = Draft::new("Will delete:");
                match read.await {
                    Ok(found) => preview.lines.push(object_summary(&found["metadata"])),
                    Err(e) => preview.missing(e),
                }
                Some(preview.done())
            }
            _ => None,
        }
    }
}

/// A preview being put together.
struct Draft {
    heading: &'static str,
    lines: Vec<String>,
    unavailable: Vec<String>,
}

impl Draft {
    fn new(heading: &'static str) -> Self {
        Draft { heading, lines: Vec::new(), unavailable: Vec::new() }
    }

    fn missing(&mut self, reason: String) {
        self.unavailable.push(reason);
    }

    fn done(self) -> ConsequencePreview {
        ConsequencePreview {
            heading: self.heading.into(),
            lines: self.lines,
            unavailable: (!self.unavailable.is_empty())
                .then(|| format!("Not everything could be looked up: {}.", self.unavailable.join("; "))),
        }
    }
}

/// Dollars as a trader reads them: `$54,252.00`, `-$1,200.50`.
fn money(amount: f64) -> String {
    let cents = (amount.abs() * 100.0).round() as u64;
    let whole = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!("{}${grouped}.{:02}", if amount < 0.0 { "-" } else { "" }, cents % 100)
}

/// A quantity without a needless fraction: `120`, `0.5`.
fn quantity(amount: f64) -> String {
    if amount.fract() == 0.0 { format!("{amount:.0}") } else { format!("{amount}") }
}

/// One line per position of a live portfolio, largest first. Holdings come as LEAN writes them
/// (`q`, `p`, `v`) or with their long names.
fn holdings(portfolio: &Value) -> Vec<String> {
    let Some(held) = portfolio.pointer("/portfolio/holdings").and_then(Value::as_object) else {
        return vec!["No holdings were reported".into()];
    };
    let field = |h: &Value, short: &str, long: &str| h.get(short).or_else(|| h.get(long)).and_then(Value::as_f64);
    let mut positions: Vec<(String, f64, Option<f64>, Option<f64>)> = held
        .iter()
        .filter_map(|(symbol, h)| {
            let shares = field(h, "q", "quantity")?;
            (shares != 0.0).then(|| {
                // A symbol id reads "SPY R735QTJ8XC9X": the ticker is its first word.
                let ticker = symbol.split_whitespace().next().unwrap_or(symbol);
                (plain_text(ticker, 24), shares, field(h, "p", "marketPrice"), field(h, "v", "marketValue"))
            })
        })
        .collect();
    if positions.is_empty() {
        return vec!["No open positions".into()];
    }
    positions.sort_by(|a, b| b.3.unwrap_or(0.0).abs().total_cmp(&a.3.unwrap_or(0.0).abs()));
    positions
        .into_iter()
        .map(|(ticker, shares, price, value)| {
            let side = if shares < 0.0 { "short " } else { "" };
            let mut line = format!("{ticker}: {side}{} shares", quantity(shares.abs()));
            if let Some(price) = price {
                line.push_str(&format!(" at {}", money(price)));
            }
            if let Some(value) = value {
                line.push_str(&format!(", market value {}", money(value)));
            }
            line
        })
        .collect()
}

/// LEAN's order statuses that are still working: new, submitted, partly filled, update
/// submitted.
const WORKING_ORDER_STATUSES: [i64; 4] = [0, 1, 2, 9];

fn open_orders(orders: &Value) -> String {
    let working = orders["orders"].as_array().map_or(0, |list| {
        list.iter().filter(|o| o["status"].as_i64().is_some_and(|s| WORKING_ORDER_STATUSES.contains(&s))).count()
    });
    match working {
        0 => "No open orders".into(),
        1 => "1 open order".into(),
        n => format!("{n} open orders"),
    }
}

/// A deployment, from its arguments alone: whether it trades real money comes first.
fn deployment(args: &Map<String, Value>) -> ConsequencePreview {
    let mut lines = Vec::new();
    match args.get("brokerage") {
        Some(Value::Object(brokerage)) => {
            lines.push(trading_mode(brokerage).to_string());
            let id = brokerage.get("id").and_then(Value::as_str).unwrap_or("not named");
            lines.push(format!("Brokerage: {}", quoted(id, 60)));
            let account = brokerage
                .iter()
                .find(|(key, _)| key.as_str() == "account" || key.ends_with("-account") || key.ends_with("-account-id"))
                .and_then(|(_, value)| value.as_str());
            if let Some(account) = account {
                lines.push(format!("Brokerage account: {}", quoted(account, 40)));
            }
        }
        _ => lines.push("trading mode not stated: treat it as LIVE MONEY".into()),
    }
    let text = |name: &str| args.get(name).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    if let Some(node) = text("nodeId") {
        lines.push(format!("Node: {}", quoted(&node, 40)));
    }
    if let Some(project) = args.get("projectId").and_then(Value::as_i64) {
        lines.push(format!("Project: {project}"));
    }
    if let Some(compile) = text("compileId") {
        lines.push(format!("Compile: {}", quoted(&compile, 60)));
    }
    ConsequencePreview { heading: "Will deploy:".into(), lines, unavailable: None }
}

/// A backtest's name and the statistics a trader would miss.
fn backtest_summary(backtest: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    let name = backtest["name"].as_str().unwrap_or("unnamed");
    lines.push(format!("Backtest {}", quoted(name, 80)));
    let statistics = &backtest["statistics"];
    let shown: Vec<String> = ["Net Profit", "Sharpe Ratio", "Drawdown", "Total Orders"]
        .iter()
        .filter_map(|name| {
            statistics.get(*name).map(|v| format!("{name} {}", plain_text(v.as_str().unwrap_or(&v.to_string()), 24)))
        })
        .collect();
    if !shown.is_empty() {
        lines.push(shown.join(", "));
    }
    lines
}

fn optimization_estimate(estimate: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(seconds) = estimate["time"].as_i64() {
        lines.push(match seconds {
            s if s < 120 => format!("Estimated time: {s} seconds"),
            s => format!("Estimated time: about {} minutes", (s + 30) / 60),
        });
    }
    if let Some(balance) = estimate["balance"].as_f64() {
        lines.push(format!("Organization's credit balance: {} QCC", quantity(balance)));
    }
    lines
}

/// What the client asks to spend, as it sent it.
fn optimization_request(args: &Map<String, Value>) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(cost) = args.get("estimatedCost").and_then(Value::as_f64) {
        lines.push(format!("Estimated cost, as the client states it: {} QCC", quantity(cost)));
    }
    if let Some(node) = args.get("nodeType").and_then(Value::as_str) {
        let parallel = args.get("parallelNodes").and_then(Value::as_i64).unwrap_or(1);
        lines.push(format!("Nodes: {} × {parallel}", quoted(node, 20)));
    }
    lines
}

fn object_summary(metadata: &Value) -> String {
    let key = metadata["key"].as_str().unwrap_or("?");
    match metadata["size"].as_u64() {
        Some(bytes) => format!("Object {}, {bytes} bytes", quoted(key, 120)),
        None => format!("Object {}", quoted(key, 120)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdings_are_listed_largest_first_in_dollars() {
        let portfolio = json!({"portfolio": {"holdings": {
            "AAPL R735QTJ8XC9X": {"a": 180.0, "q": -10.0, "p": 190.25, "v": -1902.5},
            "SPY R735QTJ8XC9X": {"a": 440.0, "q": 120.0, "p": 452.1, "v": 54252.0},
            "QQQ RIWIV7K5Z9LX": {"quantity": 0.0, "marketPrice": 1.0},
        }}});
        assert_eq!(
            holdings(&portfolio),
            [
                "SPY: 120 shares at $452.10, market value $54,252.00",
                "AAPL: short 10 shares at $190.25, market value -$1,902.50"
            ]
        );
        assert_eq!(holdings(&json!({"portfolio": {"holdings": {}}})), ["No open positions"]);
    }

    #[test]
    fn only_working_orders_count_as_open() {
        let orders = json!({"orders": [{"status": 3}, {"status": 1}, {"status": 2}, {"status": 5}]});
        assert_eq!(open_orders(&orders), "2 open orders");
        assert_eq!(open_orders(&json!({"orders": []})), "No open orders");
    }

    #[test]
    fn a_deployment_says_live_money_or_paper_first() {
        let live = json!({"projectId": 7, "compileId": "c-1", "nodeId": "LN-1",
            "brokerage": {"id": "InteractiveBrokersBrokerage", "ib-trading-mode": "live", "ib-account": "U123", "ib-password": "hunter2"}});
        let preview = deployment(live.as_object().unwrap());
        assert_eq!(preview.heading, "Will deploy:");
        assert_eq!(preview.lines[0], "LIVE MONEY");
        assert!(preview.lines.contains(&"Brokerage account: \"U123\"".to_string()), "{:?}", preview.lines);
        assert!(!format!("{preview:?}").contains("hunter2"), "no credential in a preview");
        let paper = json!({"projectId": 7, "brokerage": {"id": "QuantConnectBrokerage"}});
        assert_eq!(deployment(paper.as_object().unwrap()).lines[0], "PAPER (QuantConnect paper trading)");
    }

    #[test]
    fn an_object_is_named_with_its_size() {
        assert_eq!(
            object_summary(&json!({"key": "models/a.pkl", "size": 2048})),
            "Object \"models/a.pkl\", 2048 bytes"
        );
        assert_eq!(object_summary(&json!({"key": "x"})), "Object \"x\"");
    }

    #[test]
    fn money_is_grouped_and_signed() {
        assert_eq!(money(0.0), "$0.00");
        assert_eq!(money(1234567.891), "$1,234,567.89");
        assert_eq!(money(-999.5), "-$999.50");
    }
}
