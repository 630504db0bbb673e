//! Text the broker shows or records that a program chose: canonical JSON for digests, arguments
//! as audited (credentials removed, cut to size) and as approved (credentials masked), and untrusted
//! text made safe to place in a sentence. Pure functions; nothing here may let a brokerage
//! credential through or let a client's text pass for the broker's own words.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// A JSON value as text with object keys sorted, so equal arguments digest equally.
pub fn canonical(value: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(map) => {
                let by_key: BTreeMap<&String, Value> = map.iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(by_key.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Most bytes an audit record keeps of a call's arguments; the keyed digest covers them whole.
pub const MAX_RECORDED_ARGS_BYTES: usize = 2048;
/// Most characters an audit record keeps of an error.
pub const MAX_RECORDED_ERROR_CHARS: usize = 1000;

/// Arguments as they may be audited: brokerage credentials removed, long text cut, and no
/// more than [`MAX_RECORDED_ARGS_BYTES`] in all (a large value is replaced by its size).
pub fn redact(args: &Map<String, Value>) -> Value {
    let shown = redact_cut(args, true);
    let size = |v: &Value| v.to_string().len();
    if size(&shown) <= MAX_RECORDED_ARGS_BYTES {
        return shown;
    }
    let Value::Object(fields) = shown else { return shown };
    let small: Map<String, Value> = fields
        .into_iter()
        .map(|(key, value)| {
            let bytes = size(&value);
            (key, if bytes <= 256 { value } else { json!(format!("<{bytes} bytes, in the digest>")) })
        })
        .collect();
    let small = Value::Object(small);
    if size(&small) <= MAX_RECORDED_ARGS_BYTES {
        small
    } else {
        json!({"cut": format!("{} bytes of arguments; args_digest covers them whole", size(&Value::Object(args.clone())))})
    }
}

/// Arguments as the human approves them: every value whole, only brokerage credentials masked.
pub fn masked(args: &Map<String, Value>) -> Value {
    redact_cut(args, false)
}

/// Text a program chose (a project name, an argument), made safe to show in a sentence: no
/// line breaks or control characters, no bidirectional overrides that would reorder what the
/// human reads, and not longer than `max` characters.
pub fn plain_text(text: &str, max: usize) -> String {
    let is_bidi = |c: char| matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).filter(|c| !is_bidi(*c)).collect();
    if cleaned.chars().count() > max {
        format!("{}…", cleaned.chars().take(max).collect::<String>())
    } else {
        cleaned
    }
}

fn redact_cut(args: &Map<String, Value>, cut: bool) -> Value {
    let mut out = Map::new();
    for (key, value) in args {
        let shown = match (key.as_str(), value) {
            ("brokerage" | "dataProviders", Value::Object(settings)) => redact_settings(settings),
            (_, Value::String(text)) if cut && text.chars().count() > 200 => {
                json!(format!("{}… ({} bytes)", text.chars().take(120).collect::<String>(), text.len()))
            }
            (_, other) => other.clone(),
        };
        out.insert(key.clone(), shown);
    }
    Value::Object(out)
}

/// Brokerage settings with only the fields known to be safe shown (which brokerage, live or
/// paper, which account, when it restarts), so the human sees live versus paper; every other
/// field, at any depth and inside arrays, is hidden. An allow-list: a credential under a name
/// nobody thought of stays hidden.
fn redact_settings(settings: &Map<String, Value>) -> Value {
    fn safe(name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        const EXACT: &[&str] = &["id", "environment", "live", "account", "account-id", "region", "market", "currency"];
        const ENDINGS: &[&str] =
            &["trading-mode", "-environment", "-account", "-account-id", "-restart-utc-time", "-region", "-market"];
        EXACT.contains(&name.as_str()) || ENDINGS.iter().any(|end| name.ends_with(end))
    }
    fn hide(value: &Value) -> Value {
        match value {
            Value::Object(inner) => redact_settings(inner),
            Value::Array(items) => Value::Array(items.iter().map(hide).collect()),
            Value::Null => Value::Null,
            _ => json!("<redacted>"),
        }
    }
    let mut shown = Map::new();
    for (name, value) in settings {
        let value = match value {
            Value::Object(inner) => redact_settings(inner),
            Value::Array(items) => Value::Array(items.iter().map(hide).collect()),
            Value::String(text) if safe(name) => json!(truncate(text, 80)),
            Value::Bool(_) | Value::Number(_) if safe(name) => value.clone(),
            _ => json!("<redacted>"),
        };
        shown.insert(name.clone(), value);
    }
    Value::Object(shown)
}

/// Text a program chose, as quoted data: cleaned like [`plain_text`], inside straight quotes,
/// with any quote mark in it escaped, so it cannot close the quote and go on as the sentence.
pub(crate) fn quoted(text: &str, max: usize) -> String {
    let cleaned = plain_text(text, max);
    let mut out = String::with_capacity(cleaned.len() + 2);
    out.push('"');
    for c in cleaned.chars() {
        if matches!(c, '"' | '\\' | '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{00AB}' | '\u{00BB}') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Whether brokerage settings trade real money, read from the fields that say so wherever they
/// stand; when none says, the human is told to assume they do.
pub(crate) fn trading_mode(brokerage: &Map<String, Value>) -> &'static str {
    if brokerage.get("id").and_then(Value::as_str) == Some("QuantConnectBrokerage") {
        return "PAPER (QuantConnect paper trading)";
    }
    let says = brokerage.iter().find_map(|(key, value)| {
        let key = key.to_ascii_lowercase();
        let names_mode =
            key.contains("trading-mode") || key.contains("environment") || key == "live" || key.ends_with("-live");
        let value = match value {
            Value::String(text) => text.to_ascii_lowercase(),
            Value::Bool(live) if key.contains("live") => (if *live { "live" } else { "paper" }).to_string(),
            _ => return None,
        };
        names_mode.then_some(value)
    });
    match says.as_deref() {
        Some("live" | "real" | "production" | "prod") => "LIVE MONEY",
        Some("paper" | "demo" | "sandbox" | "practice" | "test" | "testnet") => "PAPER",
        _ => "trading mode not stated: treat it as LIVE MONEY",
    }
}

/// At most `max` characters of `text`.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_objects_have_one_canonical_form_whatever_their_key_order() {
        let a = json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": null}});
        let b = json!({"a": {"c": null, "d": [1, {"y": 1, "z": 0}]}, "b": 1});
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&a), r#"{"a":{"c":null,"d":[1,{"y":1,"z":0}]},"b":1}"#);
    }

    #[test]
    fn large_arguments_are_recorded_within_the_bound() {
        let mut args = Map::new();
        args.insert("small".into(), json!(7));
        args.insert("files".into(), json!(vec!["x".repeat(150); 40]));
        let recorded = redact(&args);
        assert_eq!(recorded["small"], 7, "small values stay");
        assert!(recorded["files"].as_str().unwrap().ends_with("bytes, in the digest>"), "{recorded}");
        let many: Map<String, Value> = (0..300).map(|i| (format!("field{i}"), json!(i))).collect();
        let recorded = redact(&many);
        assert!(recorded.to_string().len() <= MAX_RECORDED_ARGS_BYTES, "{}", recorded.to_string().len());
        assert!(recorded["cut"].as_str().unwrap().contains("args_digest covers them whole"));
    }

    #[test]
    fn quoted_text_cannot_close_its_quote() {
        assert_eq!(quoted("a\"b\u{201D}c\\", 80), "\"a\\\"b\\\u{201D}c\\\\\"");
        assert_eq!(truncate("abcdef", 3), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
    }

    #[test]
    fn trading_mode_is_read_wherever_it_is_stated_and_assumed_live_when_not() {
        let mode = |v: Value| trading_mode(v.as_object().unwrap());
        assert_eq!(mode(json!({"id": "QuantConnectBrokerage"})), "PAPER (QuantConnect paper trading)");
        assert_eq!(mode(json!({"id": "X", "ib-trading-mode": "live"})), "LIVE MONEY");
        assert_eq!(mode(json!({"id": "X", "oanda-environment": "practice"})), "PAPER");
        assert_eq!(mode(json!({"id": "X", "binance-live": false})), "PAPER");
        assert_eq!(mode(json!({"id": "X"})), "trading mode not stated: treat it as LIVE MONEY");
    }

    #[test]
    fn text_a_client_chose_cannot_reorder_or_break_the_sentence() {
        let spoof = "Sandbox\u{202E}dleif\u{202C} (id 1).\nArguments: brokerage={\"id\":\"Paper\"}";
        let shown = plain_text(spoof, 200);
        assert!(!shown.contains('\n') && !shown.contains('\u{202E}') && !shown.contains('\u{202C}'), "{shown:?}");
        assert!(shown.starts_with("Sandboxdleif (id 1). Arguments"), "{shown:?}");
        assert_eq!(plain_text(&"x".repeat(100), 80).chars().count(), 81, "cut, with an ellipsis");
    }

    #[test]
    fn the_human_sees_whole_arguments_with_only_credentials_masked() {
        let long = "x".repeat(500);
        let args = json!({"code": long, "brokerage": {"id": "InteractiveBrokersBrokerage", "ib-password": "hunter2"}});
        let args = args.as_object().unwrap();
        let shown = masked(args);
        assert_eq!(shown["code"].as_str().unwrap().len(), 500, "nothing cut from what is approved");
        assert_eq!(shown["brokerage"]["ib-password"], "<redacted>");
        assert!(redact(args)["code"].as_str().unwrap().len() < 200, "the audit log keeps a cut copy");
    }

    #[test]
    fn brokerage_fields_are_shown_only_when_known_to_be_safe() {
        let args = json!({"brokerage": {
            "id": "InteractiveBrokersBrokerage", "ib-trading-mode": "live", "ib-account": "U123",
            "ib-weekly-restart-utc-time": "22:00:00", "ib-authorization-code": "sentinel-1",
            "tokens": ["sentinel-2", {"refresh": "sentinel-3"}], "nested": {"otp-seed": "sentinel-4", "environment": "live"}
        }});
        let args = args.as_object().unwrap();
        for shown in [masked(args), redact(args)] {
            let text = shown.to_string();
            for sentinel in ["sentinel-1", "sentinel-2", "sentinel-3", "sentinel-4"] {
                assert!(!text.contains(sentinel), "{sentinel} shown: {text}");
            }
            let b = &shown["brokerage"];
            assert_eq!(b["id"], "InteractiveBrokersBrokerage");
            assert_eq!(b["ib-trading-mode"], "live");
            assert_eq!(b["ib-account"], "U123");
            assert_eq!(b["nested"]["environment"], "live");
        }
    }
}
