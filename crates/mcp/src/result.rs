//! What a tool call returns to the MCP client: QuantConnect's JSON as `structuredContent` and as
//! text, never larger than [`MAX_RESULT_BYTES`]. A larger answer keeps as many items of its
//! largest list as fit, and a note says exactly which call brings the rest: for the tools
//! QuantConnect pages, the same call with the page's start moved on.

use keybridge_catalog::Tool;
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};

/// The most a result may carry: a whole backtest's charts would fill the model's context, and
/// MCP clients refuse very large results.
pub const MAX_RESULT_BYTES: usize = 256 * 1024;

/// A successful call's result for `tool` called with `arguments`.
pub fn success(tool: Option<&Tool>, arguments: &Value, value: Value) -> CallToolResult {
    let text = serde_json::to_string(&value).unwrap_or_else(|_| value.to_string());
    if text.len() <= MAX_RESULT_BYTES {
        return whole(value, text);
    }
    match shorten(value, text.len()) {
        Ok(short) => {
            let note = note_for_short(tool, arguments, &short);
            let text = serde_json::to_string(&short.value).unwrap_or_default();
            let mut result = CallToolResult::success(vec![ContentBlock::text(text), ContentBlock::text(note)]);
            result.structured_content = Some(short.value);
            result
        }
        Err(text) => {
            // One item alone is too large: the text is cut, and there is no JSON to structure.
            let mut cut = MAX_RESULT_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let note = format!(
                "[Keybridge cut this result at {} KB of {} KB. Ask for less at a time: {}.]",
                MAX_RESULT_BYTES / 1024,
                text.len() / 1024,
                narrower_call(tool)
            );
            CallToolResult::success(vec![ContentBlock::text(text[..cut].to_string()), ContentBlock::text(note)])
        }
    }
}

/// A tool error: words for the model, nothing structured.
pub fn error(text: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text.into())])
}

/// A local answer (Keybridge's own status) as text and structure.
pub fn local(value: Value) -> CallToolResult {
    let text = serde_json::to_string(&value).unwrap_or_default();
    whole(value, text)
}

fn whole(value: Value, text: String) -> CallToolResult {
    // The official server wraps a scalar answer as `{"result": …}` and shows the scalar itself.
    let text = match &value {
        Value::Object(map) if map.len() == 1 => match map.get("result") {
            Some(Value::String(scalar)) => scalar.clone(),
            _ => text,
        },
        _ => text,
    };
    let structured = match value {
        Value::Object(_) => value,
        other => json!({ "result": other }),
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// A result cut down to fit: `kept` of the `total` items under `field`.
struct Short {
    value: Value,
    field: String,
    kept: usize,
    total: usize,
}

/// Keep as many of the largest list's items as fit; `Err` with the whole text when even one
/// item does not, or there is no list to shorten.
fn shorten(value: Value, size: usize) -> Result<Short, String> {
    let Value::Object(mut map) = value else { return Err(compact(&value)) };
    let largest = map
        .iter()
        .filter_map(|(k, v)| v.as_array().map(|items| (k.clone(), items.iter().map(encoded_len).sum::<usize>())))
        .max_by_key(|(_, bytes)| *bytes);
    let Some((field, list_bytes)) = largest else { return Err(compact(&Value::Object(map))) };
    let Some(Value::Array(items)) = map.remove(&field) else { return Err(compact(&Value::Object(map))) };
    // Room left for the list once everything else is written, with some for separators.
    let others = size.saturating_sub(list_bytes);
    let room = MAX_RESULT_BYTES.saturating_sub(others + 16);
    let total = items.len();
    let mut used = 0;
    let mut kept = 0;
    for item in &items {
        let len = encoded_len(item) + 1;
        if used + len > room {
            break;
        }
        used += len;
        kept += 1;
    }
    if kept == 0 {
        map.insert(field, Value::Array(items));
        return Err(compact(&Value::Object(map)));
    }
    let mut items = items;
    items.truncate(kept);
    map.insert(field.clone(), Value::Array(items));
    Ok(Short { value: Value::Object(map), field, kept, total })
}

fn encoded_len(value: &Value) -> usize {
    serde_json::to_string(value).map(|s| s.len()).unwrap_or(0)
}

fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// What the model reads after a shortened result: what it got, and the exact call for the rest.
fn note_for_short(tool: Option<&Tool>, arguments: &Value, short: &Short) -> String {
    let got = format!(
        "[Keybridge returned the first {} of the {} items in `{}`: the whole answer is larger than the {} KB a result may carry.",
        short.kept,
        short.total,
        short.field,
        MAX_RESULT_BYTES / 1024
    );
    let next = tool.and_then(|tool| next_page(tool, arguments, short));
    match (tool, next) {
        (Some(tool), Some(next)) => {
            format!(
                "{got} For the rest, call {} with {}.]",
                tool.name,
                serde_json::to_string(&next).unwrap_or_default()
            )
        }
        (tool, _) => format!("{got} For the rest, {}.]", narrower_call(tool)),
    }
}

/// The same call with the page's start moved past the items returned.
fn next_page(tool: &Tool, arguments: &Value, short: &Short) -> Option<Map<String, Value>> {
    let paging = tool.paging()?;
    if paging.items != short.field {
        return None;
    }
    let mut args = tool.prepare(arguments.clone()).ok()?;
    args.remove(keybridge_catalog::CODE_SOURCE_PARAM);
    let start = args.get(paging.start).and_then(Value::as_i64).unwrap_or(0);
    args.insert(paging.start.into(), json!(start + short.kept as i64));
    Some(args)
}

/// How to ask a tool for less, in words.
fn narrower_call(tool: Option<&Tool>) -> String {
    let Some(tool) = tool else { return "ask for less at a time".into() };
    if let Some(paging) = tool.paging() {
        return format!("call {} with a smaller range from `{}` to `{}`", tool.name, paging.start, paging.end);
    }
    match tool.name {
        "read_file" => "call read_file with `name` to read one file at a time".into(),
        "read_backtest" | "read_live_algorithm" => {
            "read the charts one at a time by name with read_backtest_chart or read_live_chart and a small `count`"
                .into()
        }
        "read_backtest_chart" | "read_live_chart" => format!("call {} with a smaller `count`", tool.name),
        "list_object_store_files" => "call list_object_store_files with a narrower `path`".into(),
        name => format!("call {name} for fewer items at a time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(result: &CallToolResult) -> Vec<String> {
        let json = serde_json::to_value(result).unwrap();
        json["content"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap().to_string()).collect()
    }

    fn size(result: &CallToolResult) -> usize {
        serde_json::to_string(result).unwrap().len()
    }

    #[test]
    fn a_small_result_is_both_text_and_structure() {
        let result = success(None, &json!({}), json!({"ok": true}));
        assert_eq!(texts(&result), [r#"{"ok":true}"#]);
        assert_eq!(result.structured_content, Some(json!({"ok": true})));
    }

    #[test]
    fn a_wrapped_scalar_reads_as_the_scalar() {
        let result = success(None, &json!({}), json!({"result": "0.1.0"}));
        assert_eq!(texts(&result), ["0.1.0"]);
        assert_eq!(result.structured_content, Some(json!({"result": "0.1.0"})));
        let bare = local(json!("text"));
        assert_eq!(bare.structured_content, Some(json!({"result": "text"})));
    }

    #[test]
    fn a_paged_answer_of_megabytes_keeps_what_fits_and_names_the_next_call() {
        let tool = keybridge_catalog::find("read_live_orders").unwrap();
        let orders: Vec<Value> = (0..1000).map(|i| json!({"id": i, "tag": "é".repeat(2000)})).collect();
        let answer = json!({"success": true, "orders": orders, "length": 1000});
        assert!(encoded_len(&answer) > 4_000_000);
        let result = success(Some(tool), &json!({"model": {"projectId": 5, "start": 0, "end": 1000}}), answer);
        assert!(size(&result) < 2 * MAX_RESULT_BYTES + 2048, "{} bytes", size(&result));
        let structured = result.structured_content.clone().unwrap();
        let kept = structured["orders"].as_array().unwrap().len();
        assert!(kept > 10 && kept < 1000, "{kept} kept");
        assert_eq!(structured["orders"][kept - 1]["id"], kept - 1);
        assert_eq!(structured["length"], 1000);
        let note = &texts(&result)[1];
        assert!(note.contains(&format!("first {kept} of the 1000 items in `orders`")), "{note}");
        let next = note.split_once("call read_live_orders with ").map(|(_, call)| call.trim_end_matches(".]"));
        let next: Value = serde_json::from_str(next.unwrap_or_else(|| panic!("{note}"))).unwrap();
        assert_eq!(next, json!({"projectId": 5, "start": kept, "end": 1000}), "{note}");
    }

    #[test]
    fn paging_continues_from_where_the_asked_page_began() {
        let tool = keybridge_catalog::find("read_live_logs").unwrap();
        let logs: Vec<Value> = (0..250).map(|i| json!(format!("{i} {}", "x".repeat(2000)))).collect();
        let args = json!({"projectId": 5, "algorithmId": "L-1", "startLine": 500, "endLine": 750});
        let result = success(Some(tool), &args, json!({"logs": logs, "length": 9000}));
        let kept = result.structured_content.as_ref().unwrap()["logs"].as_array().unwrap().len();
        assert!(texts(&result)[1].contains(&format!(r#""startLine":{}"#, 500 + kept)), "{}", texts(&result)[1]);
    }

    #[test]
    fn a_list_that_is_not_paged_says_how_to_ask_for_less() {
        let tool = keybridge_catalog::find("read_file").unwrap();
        let files: Vec<Value> =
            (0..40).map(|i| json!({"name": format!("f{i}.py"), "content": "#".repeat(128 * 1024)})).collect();
        let result = success(Some(tool), &json!({"projectId": 5}), json!({"files": files}));
        assert!(size(&result) < 2 * MAX_RESULT_BYTES);
        assert!(texts(&result)[1].contains("call read_file with `name`"), "{}", texts(&result)[1]);
    }

    #[test]
    fn one_item_too_large_is_cut_as_text_with_no_structure() {
        let tool = keybridge_catalog::find("read_file").unwrap();
        let big = json!({"files": [{"name": "big.py", "content": "é".repeat(3_000_000)}]});
        let result = success(Some(tool), &json!({"projectId": 5}), big);
        assert!(result.structured_content.is_none());
        let texts = texts(&result);
        assert!(texts[0].len() <= MAX_RESULT_BYTES);
        assert!(texts[1].contains("Keybridge cut this result at 256 KB of 5859 KB"), "{}", texts[1]);
    }
}
