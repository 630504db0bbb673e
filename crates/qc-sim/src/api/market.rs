//! Deterministic "results": performance statistics, chart series, orders and insights.
//! Every number is a pure function of a seed derived from ids and names.

use serde_json::{Map, Value, json};

use super::ApiError;
use crate::util::{fmt_datetime, money, ranged, round, unit, unix_from_date};

pub(crate) const SYMBOL_ID: &str = "SPY R735QTJ8XC9X";
pub(crate) const TICKER: &str = "SPY";
pub(crate) const START_EQUITY: f64 = 100_000.0;

pub(crate) fn backtest_start() -> i64 {
    unix_from_date(2024, 1, 1)
}

pub(crate) fn backtest_end() -> i64 {
    unix_from_date(2024, 12, 31)
}

/// The headline numbers of one simulated run.
pub(crate) struct Perf {
    pub net: f64,
    pub cagr: f64,
    pub drawdown: f64,
    pub sharpe: f64,
    pub sortino: f64,
    pub psr: f64,
    pub alpha: f64,
    pub beta: f64,
    pub std_dev: f64,
    pub info_ratio: f64,
    pub tracking_error: f64,
    pub treynor: f64,
    pub trades: i64,
    pub win_rate: f64,
    pub avg_win: f64,
    pub avg_loss: f64,
    pub fees: f64,
    pub turnover: f64,
    pub capacity: f64,
}

impl Perf {
    pub fn new(seed: u64) -> Perf {
        let net = ranged(seed, 1, -0.12, 0.38, 4);
        let drawdown = ranged(seed, 2, 0.03, 0.25, 3);
        let sharpe = round(net * 3.2 - 0.1 + ranged(seed, 3, -0.2, 0.2, 3), 3);
        let win_rate = ranged(seed, 4, 0.35, 0.7, 2);
        let trades = 5 + (unit(seed, 5) * 60.0) as i64;
        Perf {
            net,
            cagr: round(net * 1.003, 4),
            drawdown,
            sharpe,
            sortino: round(sharpe * 1.3, 3),
            psr: round((0.5 + sharpe / 4.0).clamp(0.01, 0.99), 4),
            alpha: round(net / 8.0, 3),
            beta: ranged(seed, 6, 0.2, 1.2, 3),
            std_dev: ranged(seed, 7, 0.08, 0.3, 3),
            info_ratio: ranged(seed, 8, -1.0, 1.5, 3),
            tracking_error: ranged(seed, 9, 0.05, 0.2, 3),
            treynor: ranged(seed, 10, -0.2, 0.4, 3),
            trades,
            win_rate,
            avg_win: ranged(seed, 11, 0.005, 0.04, 4),
            avg_loss: -ranged(seed, 12, 0.003, 0.03, 4),
            fees: round(trades as f64 * 1.0, 2),
            turnover: ranged(seed, 13, 0.01, 0.2, 4),
            capacity: round(ranged(seed, 14, 1.0, 50.0, 0) * 1_000_000.0, 0),
        }
    }

    pub fn end_equity(&self) -> f64 {
        round(START_EQUITY * (1.0 + self.net), 2)
    }

    pub fn statistics(&self) -> Value {
        let pct = |v: f64| format!("{:.3}%", v * 100.0);
        json!({
            "Total Orders": (self.trades * 2).to_string(),
            "Average Win": pct(self.avg_win),
            "Average Loss": pct(self.avg_loss),
            "Compounding Annual Return": pct(self.cagr),
            "Drawdown": pct(self.drawdown),
            "Expectancy": format!("{:.3}", self.win_rate * (self.avg_win / -self.avg_loss) - (1.0 - self.win_rate)),
            "Start Equity": format!("{START_EQUITY:.0}"),
            "End Equity": format!("{:.2}", self.end_equity()),
            "Net Profit": pct(self.net),
            "Sharpe Ratio": format!("{:.3}", self.sharpe),
            "Sortino Ratio": format!("{:.3}", self.sortino),
            "Probabilistic Sharpe Ratio": pct(self.psr),
            "Loss Rate": format!("{:.0}%", (1.0 - self.win_rate) * 100.0),
            "Win Rate": format!("{:.0}%", self.win_rate * 100.0),
            "Profit-Loss Ratio": format!("{:.2}", self.avg_win / -self.avg_loss),
            "Alpha": format!("{:.3}", self.alpha),
            "Beta": format!("{:.3}", self.beta),
            "Annual Standard Deviation": format!("{:.3}", self.std_dev),
            "Annual Variance": format!("{:.3}", self.std_dev * self.std_dev),
            "Information Ratio": format!("{:.3}", self.info_ratio),
            "Tracking Error": format!("{:.3}", self.tracking_error),
            "Treynor Ratio": format!("{:.3}", self.treynor),
            "Total Fees": money(self.fees),
            "Estimated Strategy Capacity": money(self.capacity),
            "Lowest Capacity Asset": SYMBOL_ID,
            "Portfolio Turnover": pct(self.turnover),
        })
    }

    pub fn runtime_statistics(&self, holdings: f64, unrealized: f64) -> Value {
        let end = self.end_equity();
        json!({
            "Equity": money(end),
            "Fees": money(-self.fees),
            "Holdings": money(holdings),
            "Net Profit": money(end - START_EQUITY),
            "Probabilistic Sharpe Ratio": format!("{:.3}%", self.psr * 100.0),
            "Return": format!("{:.2} %", self.net * 100.0),
            "Unrealized": money(unrealized),
            "Volume": money(self.trades as f64 * 2.0 * 25_000.0),
        })
    }

    pub fn total_performance(&self, seed: u64, start: i64, end: i64) -> Value {
        let wins = (self.trades as f64 * self.win_rate).round() as i64;
        let losses = self.trades - wins;
        let total_profit = round(wins as f64 * self.avg_win * START_EQUITY, 2);
        let total_loss = round(losses as f64 * self.avg_loss * START_EQUITY, 2);
        let trades: Vec<Value> = (0..self.trades.min(10)).map(|i| closed_trade(seed, i as u64, start, end)).collect();
        let trade_statistics = json!({
                "startDateTime": fmt_datetime(start),
                "endDateTime": fmt_datetime(end),
                "totalNumberOfTrades": self.trades,
                "numberOfWinningTrades": wins,
                "numberOfLosingTrades": losses,
                "totalProfitLoss": round(total_profit + total_loss, 2),
                "totalProfit": total_profit,
                "totalLoss": total_loss,
                "largestProfit": round(self.avg_win * START_EQUITY * 2.5, 2),
                "largestLoss": round(self.avg_loss * START_EQUITY * 2.5, 2),
                "averageProfitLoss": round((total_profit + total_loss) / self.trades as f64, 2),
                "averageProfit": round(self.avg_win * START_EQUITY, 2),
                "averageLoss": round(self.avg_loss * START_EQUITY, 2),
                "averageTradeDuration": "5.00:00:00",
                "averageWinningTradeDuration": "6.00:00:00",
                "averageLosingTradeDuration": "3.12:00:00",
                "medianTradeDuration": "4.00:00:00",
                "medianWinningTradeDuration": "5.00:00:00",
                "medianLosingTradeDuration": "3.00:00:00",
                "maxConsecutiveWinningTrades": 1 + wins / 3,
                "maxConsecutiveLosingTrades": 1 + losses / 3,
                "profitLossRatio": round(self.avg_win / -self.avg_loss, 3),
                "winLossRatio": round(wins as f64 / losses.max(1) as f64, 3),
                "winRate": self.win_rate,
                "lossRate": round(1.0 - self.win_rate, 2),
                "averageMAE": round(self.avg_loss * START_EQUITY * 0.6, 2),
                "averageMFE": round(self.avg_win * START_EQUITY * 1.4, 2),
                "largestMAE": round(self.avg_loss * START_EQUITY * 3.0, 2),
                "largestMFE": round(self.avg_win * START_EQUITY * 3.0, 2),
                "maximumClosedTradeDrawdown": round(-self.drawdown * START_EQUITY * 0.5, 2),
                "maximumIntraTradeDrawdown": round(-self.drawdown * START_EQUITY * 0.6, 2),
                "profitLossStandardDeviation": round(self.avg_win * START_EQUITY * 1.1, 2),
                "profitLossDownsideDeviation": round(-self.avg_loss * START_EQUITY * 0.9, 2),
                "profitFactor": round(total_profit / -total_loss.min(-1.0), 3),
                "sharpeRatio": self.sharpe,
                "sortinoRatio": self.sortino,
                "profitToMaxDrawdownRatio": round(self.net / self.drawdown, 3),
                "maximumEndTradeDrawdown": round(-self.drawdown * START_EQUITY * 0.4, 2),
                "averageEndTradeDrawdown": round(-self.drawdown * START_EQUITY * 0.1, 2),
                "maximumDrawdownDuration": "45.00:00:00",
                "totalFees": self.fees,
        });
        let portfolio_statistics = json!({
                "averageWinRate": self.avg_win,
                "averageLossRate": self.avg_loss,
                "profitLossRatio": round(self.avg_win / -self.avg_loss, 3),
                "winRate": self.win_rate,
                "lossRate": round(1.0 - self.win_rate, 2),
                "expectancy": round(self.win_rate * (self.avg_win / -self.avg_loss) - (1.0 - self.win_rate), 3),
                "startEquity": START_EQUITY,
                "endEquity": self.end_equity(),
                "compoundingAnnualReturn": self.cagr,
                "drawdown": self.drawdown,
                "totalNetProfit": self.net,
                "sharpeRatio": self.sharpe,
                "probabilisticSharpeRatio": self.psr,
                "sortinoRatio": self.sortino,
                "alpha": self.alpha,
                "beta": self.beta,
                "annualStandardDeviation": self.std_dev,
                "annualVariance": round(self.std_dev * self.std_dev, 4),
                "informationRatio": self.info_ratio,
                "trackingError": self.tracking_error,
                "treynorRatio": self.treynor,
                "portfolioTurnover": self.turnover,
                "valueAtRisk99": round(-self.std_dev / 6.0, 4),
                "valueAtRisk95": round(-self.std_dev / 9.0, 4),
        });
        json!({
            "tradeStatistics": trade_statistics,
            "portfolioStatistics": portfolio_statistics,
            "closedTrades": trades,
        })
    }
}

fn closed_trade(seed: u64, i: u64, start: i64, end: i64) -> Value {
    let span = (end - start).max(1);
    let entry = start + (span as f64 * unit(seed, 100 + i) * 0.9) as i64;
    let exit = entry + 86_400 * (1 + (unit(seed, 200 + i) * 9.0) as i64);
    let entry_price = price_at(seed, entry);
    let exit_price = price_at(seed, exit);
    let qty = 10.0 + (unit(seed, 300 + i) * 190.0).round();
    let fees = 1.0;
    json!({
        "symbol": symbol_json(),
        "entryTime": fmt_datetime(entry),
        "entryPrice": entry_price,
        "direction": 0,
        "quantity": qty,
        "exitTime": fmt_datetime(exit),
        "exitPrice": exit_price,
        "profitLoss": round((exit_price - entry_price) * qty - fees, 2),
        "totalFees": fees,
        "mae": round(-(entry_price * 0.01 * qty), 2),
        "mfe": round(entry_price * 0.015 * qty, 2),
        "duration": format!("{}.00:00:00", (exit - entry) / 86_400),
        "endTradeDrawdown": round(-(entry_price * 0.004 * qty), 2),
    })
}

pub(crate) fn symbol_json() -> Value {
    json!({"value": TICKER, "id": SYMBOL_ID, "permtick": TICKER})
}

/// The simulated price of the one traded symbol at a moment.
pub(crate) fn price_at(seed: u64, t: i64) -> f64 {
    let days = (t - backtest_start()) as f64 / 86_400.0;
    let trend = 470.0 + days * 0.25;
    let wave = (days / 9.0).sin() * 6.0;
    let noise = (unit(seed, t as u64 / 3600) - 0.5) * 3.0;
    round(trend + wave + noise, 2)
}

/// Equity along a run: from the start equity to the final one, with some movement.
fn equity_at(seed: u64, perf: &Perf, t: i64, start: i64, end: i64) -> f64 {
    let frac = ((t - start) as f64 / (end - start).max(1) as f64).clamp(0.0, 1.0);
    let wave = (frac * 12.0).sin() * perf.drawdown * 0.3;
    let noise = (unit(seed, t as u64 / 600) - 0.5) * 0.004;
    round(START_EQUITY * (1.0 + perf.net * frac + wave * frac + noise), 2)
}

pub(crate) const CHART_NAMES: &[&str] = &["Strategy Equity", "Drawdown", "Benchmark", "Portfolio Turnover"];

pub(crate) fn chart_summaries() -> Value {
    let map: Map<String, Value> = CHART_NAMES.iter().map(|n| (n.to_string(), json!({ "name": n }))).collect();
    Value::Object(map)
}

pub(crate) struct ChartRequest {
    pub name: String,
    pub count: i64,
    pub start: i64,
    pub end: i64,
}

impl ChartRequest {
    pub fn validate(&self) -> Result<(), ApiError> {
        if !CHART_NAMES.contains(&self.name.as_str()) {
            return Err(ApiError::new(format!(
                "Chart {:?} not found. Available charts: {}.",
                self.name,
                CHART_NAMES.join(", ")
            )));
        }
        if self.count < 1 {
            return Err(ApiError::new("count must be at least 1."));
        }
        if self.end <= self.start {
            return Err(ApiError::new("end must be greater than start."));
        }
        Ok(())
    }
}

/// `{"chart": {...}}` with at most `count` points between `start` and `end`
/// (unix seconds), for a run that spans `[run_start, run_end]`.
pub(crate) fn chart(seed: u64, perf: &Perf, req: &ChartRequest, run_start: i64, run_end: i64) -> Value {
    let count = req.count.min(5000);
    let step = ((req.end - req.start) / count).max(1);
    let times: Vec<i64> = (0..count).map(|i| req.start + i * step).take_while(|t| *t <= req.end).collect();
    let eq = |t: i64| equity_at(seed, perf, t, run_start, run_end);
    let line = |f: &dyn Fn(i64) -> f64| -> Vec<Value> { times.iter().map(|&t| json!([t, f(t)])).collect() };
    let series_obj = |name: &str, unit_label: &str, index: i64, series_type: i64, values: Vec<Value>| {
        json!({
            "name": name,
            "unit": unit_label,
            "index": index,
            "values": values,
            "seriesType": series_type,
            "color": "",
            "scatterMarkerSymbol": "none",
        })
    };
    let mut series = Map::new();
    match req.name.as_str() {
        "Strategy Equity" => {
            let candles: Vec<Value> = times
                .iter()
                .map(|&t| {
                    let close = eq(t);
                    let open = eq(t - step);
                    let hi = round(open.max(close) * 1.001, 2);
                    let lo = round(open.min(close) * 0.999, 2);
                    json!([t, open, hi, lo, close])
                })
                .collect();
            series.insert("Equity".into(), series_obj("Equity", "$", 0, 2, candles));
            let returns = line(&|t| round((eq(t) / eq(t - 86_400) - 1.0) * 100.0, 4));
            series.insert("Return".into(), series_obj("Return", "%", 1, 3, returns));
        }
        "Drawdown" => {
            let values = line(&|t| {
                let frac = ((t - run_start) as f64 / (run_end - run_start).max(1) as f64).clamp(0.0, 1.0);
                round(-(perf.drawdown * 100.0) * ((frac * 12.0).sin().abs()), 3)
            });
            series.insert("Equity Drawdown".into(), series_obj("Equity Drawdown", "%", 0, 0, values));
        }
        "Benchmark" => {
            let values = line(&|t| price_at(seed, t));
            series.insert("Benchmark".into(), series_obj("Benchmark", "$", 0, 0, values));
        }
        _ => {
            let values = line(&|t| round(perf.turnover * 100.0 * (1.0 + (unit(seed, t as u64 / 86_400) - 0.5)), 3));
            series.insert("Portfolio Turnover".into(), series_obj("Portfolio Turnover", "%", 0, 0, values));
        }
    }
    json!({
        "chart": {
            "name": req.name,
            "chartType": 0,
            "series": series,
        }
    })
}

/// The `n`-th (1-based) order of a run with `total` orders.
pub(crate) fn order(seed: u64, algorithm_id: &str, n: i64, total: i64, start: i64, end: i64) -> Value {
    let span = (end - start).max(1);
    let t = start + span * n / (total + 1);
    let price = price_at(seed, t);
    let buy = n % 2 == 1;
    let qty = 10.0 + (unit(seed, 400 + (n as u64).div_ceil(2)) * 190.0).round();
    let signed = if buy { qty } else { -qty };
    let fee = 1.0;
    order_json(algorithm_id, n, t, price, signed, fee, "")
}

pub(crate) fn order_json(algorithm_id: &str, id: i64, t: i64, price: f64, quantity: f64, fee: f64, tag: &str) -> Value {
    let buy = quantity > 0.0;
    let when = fmt_datetime(t);
    json!({
        "id": id,
        "contingentId": 0,
        "brokerId": [format!("{id}")],
        "symbol": symbol_json(),
        "price": price,
        "priceCurrency": "USD",
        "time": when,
        "createdTime": when,
        "lastFillTime": when,
        "lastUpdateTime": when,
        "quantity": quantity,
        "type": 0,
        "status": 3,
        "tag": tag,
        "securityType": 1,
        "direction": if buy { 0 } else { 1 },
        "value": round(price * quantity, 2),
        "orderSubmissionData": {
            "bidPrice": round(price - 0.01, 2),
            "askPrice": round(price + 0.01, 2),
            "lastPrice": price,
        },
        "isMarketable": true,
        "properties": {"timeInForce": {}},
        "events": [{
            "algorithmId": algorithm_id,
            "symbol": SYMBOL_ID,
            "symbolValue": TICKER,
            "symbolPermtick": TICKER,
            "orderId": id,
            "orderEventId": 1,
            "id": format!("{algorithm_id}-{id}-1"),
            "status": "filled",
            "orderFeeAmount": fee,
            "orderFeeCurrency": "USD",
            "fillPrice": price,
            "fillPriceCurrency": "USD",
            "fillQuantity": quantity,
            "direction": if buy { "buy" } else { "sell" },
            "message": "",
            "isAssignment": false,
            "quantity": quantity,
            "time": t,
            "isInTheMoney": false,
        }],
        "trailingAmount": 0,
        "trailingPercentage": false,
        "triggerPrice": 0,
        "triggerTouched": false,
    })
}

/// The `n`-th (0-based) insight of a run with `total` insights.
pub(crate) fn insight(seed: u64, n: i64, total: i64, start: i64, end: i64) -> Value {
    let span = (end - start).max(1);
    let t = start + span * n / (total + 1);
    let period = 86_400;
    let reference = price_at(seed, t);
    let final_price = price_at(seed, t + period);
    let u = unit(seed, 500 + n as u64);
    let direction = if u < 0.45 {
        "up"
    } else if u < 0.8 {
        "down"
    } else {
        "flat"
    };
    let magnitude = round((final_price - reference) / reference, 4);
    json!({
        "id": crate::util::hex_id(&["insight", &seed.to_string(), &n.to_string()], 32),
        "groupId": "",
        "sourceModel": "SimAlphaModel",
        "generatedTime": t,
        "closeTime": t + period,
        "symbol": SYMBOL_ID,
        "ticker": TICKER,
        "type": "price",
        "reference": reference,
        "referenceFinal": final_price,
        "direction": direction,
        "period": period,
        "magnitude": magnitude,
        "confidence": ranged(seed, 600 + n as u64, 0.3, 0.9, 2),
        "weight": ranged(seed, 700 + n as u64, 0.05, 0.5, 2),
        "scoreFinal": true,
        "scoreDirection": ranged(seed, 800 + n as u64, 0.0, 1.0, 3),
        "scoreMagnitude": ranged(seed, 900 + n as u64, 0.0, 1.0, 3),
        "estimatedValue": round((final_price - reference) * 10.0, 2),
        "tag": "",
    })
}

/// Checks `start`/`end` of a paged read: `0 <= start < end` and `end - start <= max`.
pub(crate) fn check_range(start: i64, end: i64, max: i64, what: &str) -> Result<(), ApiError> {
    if start < 0 || end < start {
        return Err(ApiError::new(format!(
            "start and end must satisfy 0 <= start <= end (got start {start}, end {end})."
        )));
    }
    if end - start > max {
        return Err(ApiError::new(format!(
            "The difference between end and start must be at most {max} {what} (got {}).",
            end - start
        )));
    }
    Ok(())
}
