//! The AI tools. Answers are small rule-based stand-ins with the documented shapes:
//! deterministic, so tests can assert on them.

use serde_json::{Map, Value, json};

use super::{Answer, Ctx, Params, ok, source, source_files};
use crate::util::{seed, snake_case};

const LANGUAGES: &[&str] = &["C#", "Py"];

/// The AI tools' answer, as QuantConnect's `version` 2.0 writes it; `payload_type` is the
/// spec's name for the payload's shape.
fn envelope(state: &str, payload: Value, payload_type: PayloadType) -> Value {
    let payload_type = match payload_type {
        PayloadType::String => "String",
        PayloadType::StringArray => "StringArray",
        PayloadType::StringDict => "StringDict",
    };
    json!({ "state": state, "version": 2.0, "payload": payload, "payloadType": payload_type })
}

#[derive(Clone, Copy)]
enum PayloadType {
    String,
    StringArray,
    StringDict,
}

fn all_errors(language: &str, files: &[(String, String)]) -> Vec<String> {
    files.iter().flat_map(|(n, c)| source::check(n, c, language)).collect()
}

pub(crate) fn backtest_init(_ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let language = p.one_of("language", LANGUAGES);
    let files = source_files(&mut p, "files");
    p.finish()?;
    let mut errors = all_errors(&language, &files);
    if errors.is_empty() && !source::has_initialize(&files) {
        errors.push(if language == "C#" {
            "The algorithm class must override Initialize().".to_owned()
        } else {
            "The algorithm class must define an initialize(self) method.".to_owned()
        });
    }
    if errors.is_empty() {
        ok(envelope(
            "End",
            json!("Initialization succeeded: the algorithm has no initialization errors."),
            PayloadType::String,
        ))
    } else {
        ok(envelope("Error", json!(errors.join("\n")), PayloadType::String))
    }
}

const PY_API: &[&str] = &[
    "self.add_equity(\"SPY\", Resolution.DAILY)",
    "self.add_crypto(\"BTCUSD\", Resolution.MINUTE)",
    "self.add_forex(\"EURUSD\", Resolution.HOUR)",
    "self.add_future(Futures.Indices.SP_500_E_MINI)",
    "self.add_option(\"SPY\")",
    "self.set_start_date(2024, 1, 1)",
    "self.set_end_date(2024, 12, 31)",
    "self.set_cash(100000)",
    "self.set_holdings(\"SPY\", 1)",
    "self.set_warm_up(30)",
    "self.set_benchmark(\"SPY\")",
    "self.set_brokerage_model(BrokerageName.INTERACTIVE_BROKERS_BROKERAGE)",
    "self.liquidate()",
    "self.market_order(\"SPY\", 100)",
    "self.limit_order(\"SPY\", 100, 450.0)",
    "self.stop_market_order(\"SPY\", -100, 440.0)",
    "self.history(\"SPY\", 30, Resolution.DAILY)",
    "self.schedule.on(self.date_rules.every_day(), self.time_rules.at(10, 0), self.rebalance)",
    "self.sma(\"SPY\", 20, Resolution.DAILY)",
    "self.ema(\"SPY\", 20, Resolution.DAILY)",
    "self.rsi(\"SPY\", 14, MovingAverageType.WILDERS, Resolution.DAILY)",
    "self.macd(\"SPY\", 12, 26, 9, MovingAverageType.EXPONENTIAL, Resolution.DAILY)",
    "self.bb(\"SPY\", 20, 2, MovingAverageType.SIMPLE, Resolution.DAILY)",
    "self.debug(\"message\")",
    "self.log(\"message\")",
    "self.plot(\"Chart\", \"Series\", 1.0)",
    "self.portfolio.invested",
    "self.securities[\"SPY\"].price",
    "self.get_parameter(\"name\")",
];

/// The C# spelling of a Python API suggestion.
fn csharp_of(py: &str) -> String {
    let body = py.strip_prefix("self.").unwrap_or(py);
    let mut out = String::new();
    let mut upper = true;
    let mut in_string = false;
    for c in body.chars() {
        if c == '"' {
            in_string = !in_string;
        }
        if in_string {
            out.push(c);
            continue;
        }
        match c {
            '_' => upper = true,
            '.' => {
                upper = true;
                out.push(c);
            }
            c if upper && c.is_ascii_lowercase() => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => {
                out.push(c);
                upper = !c.is_ascii_alphanumeric() && c != ' ';
            }
        }
    }
    out
}

pub(crate) fn complete(_ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let language = p.one_of("language", LANGUAGES);
    let sentence = p.str("sentence");
    let limit = p.opt_int("responseSizeLimit").unwrap_or(10);
    if limit < 1 {
        p.fail("responseSizeLimit must be at least 1");
    }
    p.finish()?;
    let candidates: Vec<String> =
        PY_API.iter().map(|s| if language == "C#" { csharp_of(s) } else { (*s).to_owned() }).collect();
    let last = sentence.split_whitespace().last().unwrap_or("").to_ascii_lowercase();
    let needle = last.trim_start_matches("self.").to_owned();
    let key = |c: &String| c.to_ascii_lowercase().trim_start_matches("self.").to_owned();
    let mut matches: Vec<String> = candidates.iter().filter(|c| key(c).starts_with(&needle)).cloned().collect();
    if matches.is_empty() {
        matches = candidates.iter().filter(|c| key(c).contains(&needle)).cloned().collect();
    }
    if matches.is_empty() {
        matches = candidates;
    }
    matches.truncate(limit as usize);
    ok(envelope("End", json!(matches), PayloadType::StringArray))
}

pub(crate) fn error_enhance(_ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    p.one_of("language", LANGUAGES);
    let error = p.object("error");
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str).map(str::to_owned);
    if error.is_some() && message.is_none() {
        p.fail("error.message is required");
    }
    p.finish()?;
    let message = message.unwrap_or_default();
    let hint = [
        ("NameError", "A name is used before it is defined. Check the spelling, the imports (from AlgorithmImports import *) and that the variable is assigned before use."),
        ("AttributeError", "An object has no attribute with that name. With the PEP8 API, methods are snake_case (self.set_holdings), not PascalCase (self.SetHoldings)."),
        ("KeyError", "A dictionary or slice has no entry for that key. Check data.contains_key(symbol) before reading data[symbol]."),
        ("TypeError", "A function received an argument of the wrong type or the wrong number of arguments. Compare the call with the method's signature."),
        ("IndexError", "A list index is out of range. Check the length of history results before indexing them."),
        ("ZeroDivisionError", "A division by zero happened. Guard the divisor, e.g. when a price or a quantity is still 0 during warm-up."),
        ("NullReferenceException", "An object is null. Check that the security was added and that data exists for it in this slice."),
        ("SyntaxError", "The code does not parse. Check for a missing ':' at the end of a block header and for unbalanced brackets."),
    ]
    .iter()
    .find(|(k, _)| message.contains(k))
    .map(|(_, h)| *h)
    .unwrap_or("Read the last line of the stack trace: it names the file and line where the error started. Reproduce it with a smaller date range and log the values involved.");
    ok(envelope("End", json!(format!("Error: {message}\n\nExplanation: {hint}")), PayloadType::String))
}

/// Python with the legacy PascalCase API converted to PEP8 names.
fn to_pep8(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let chars: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let at_word_start = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if at_word_start && chars[i].is_ascii_uppercase() {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let prev: String = chars[..start].iter().rev().take(5).collect::<String>().chars().rev().collect();
            let after_self = prev.ends_with("self.");
            let after_def = prev.ends_with("def ");
            if after_self || after_def {
                out.push_str(&snake_case(&word));
            } else {
                out.push_str(&word);
            }
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

pub(crate) fn pep8_convert(_ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let files = source_files(&mut p, "files");
    p.finish()?;
    let converted: Map<String, Value> = files.iter().map(|(n, c)| (n.clone(), Value::String(to_pep8(c)))).collect();
    ok(envelope("End", Value::Object(converted), PayloadType::StringDict))
}

pub(crate) fn syntax_check(_ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let language = p.one_of("language", LANGUAGES);
    let files = source_files(&mut p, "files");
    p.finish()?;
    let errors = all_errors(&language, &files);
    let state = if errors.is_empty() { "End" } else { "Error" };
    ok(envelope(state, json!(errors), PayloadType::StringArray))
}

pub(crate) fn search(_ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let language = p.one_of("language", LANGUAGES);
    let criteria = p.array("criteria");
    let mut wanted = Vec::new();
    for (i, c) in criteria.iter().enumerate() {
        let input = c.get("input").and_then(Value::as_str);
        let kind = c.get("type").and_then(Value::as_str);
        let count = c.get("count").and_then(Value::as_i64);
        let kinds = ["Stubs", "Forum", "Docs", "Examples"];
        match (input, kind, count) {
            (Some(input), Some(kind), Some(count)) if kinds.contains(&kind) && count >= 0 => {
                let type_no = kinds.iter().position(|k| *k == kind).unwrap_or(0);
                wanted.push((input.to_owned(), kind.to_owned(), type_no, count.min(10)));
            }
            _ => p.fail(format!(
                "criteria[{i}] must have input (string), type (Stubs, Forum, Docs or Examples) and count (integer)"
            )),
        }
    }
    p.finish()?;
    let mut retrievals = Vec::new();
    for (input, kind, type_no, count) in &wanted {
        let slug: String =
            input.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        for k in 0..*count {
            retrievals.push(json!({
                "url": format!("https://www.quantconnect.com/docs/v2/search/{}/{slug}/{}", kind.to_ascii_lowercase(), k + 1),
                "score": crate::util::round(0.95 - k as f64 * 0.07, 2),
                "content": format!("{kind} result {} for \"{input}\" ({language}).", k + 1),
                "type": type_no,
            }));
        }
    }
    let key: String = wanted.iter().map(|w| w.0.clone()).collect::<Vec<_>>().join("|");
    ok(json!({
        "state": "End",
        "version": 1,
        "retrivals": retrievals,
        "messageId": (seed(&["search", &key]) % 1_000_000) as i64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep8_and_csharp_spellings() {
        assert_eq!(
            to_pep8("    def Initialize(self):\n        self.SetStartDate(2024, 1, 1)\n        x = Resolution.Daily\n"),
            "    def initialize(self):\n        self.set_start_date(2024, 1, 1)\n        x = Resolution.Daily\n"
        );
        assert_eq!(csharp_of("self.set_holdings(\"SPY\", 1)"), "SetHoldings(\"SPY\", 1)");
    }
}
