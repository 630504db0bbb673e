//! The catalog of QuantConnect tools that Keybridge exposes, as plain data.
//!
//! Every tool of QuantConnect's official MCP server is here under the same name, with the same
//! endpoint and parameters, so prompts written for that server keep working. Each tool names
//! the one [`Scope`] it needs and carries honest annotations. [`Tool::prepare`] checks a call's
//! arguments (flat, or wrapped in the official server's single `model` object) before anything
//! is sent anywhere.
//!
//! This crate does no I/O and holds no secret: the bridge, the broker and the QuantConnect
//! client all read it, and it must stay safe for each of them to link.
//!
//! ```
//! let tool = keybridge_catalog::find("read_backtest").unwrap();
//! assert_eq!(tool.scope.as_str(), "qc:backtests:read");
//! let args = tool.prepare(serde_json::json!({"model": {"projectId": 7, "backtestId": "b1"}})).unwrap();
//! assert_eq!(args["projectId"], 7);
//! ```

mod scope;
mod tools;

use serde_json::{Map, Value, json};

pub use scope::{Preset, Scope, UnknownScope};

/// Every tool, in a stable order.
pub fn tools() -> &'static [Tool] {
    tools::TOOLS
}

/// Look a tool up by its exact name.
pub fn find(name: &str) -> Option<&'static Tool> {
    tools::TOOLS.iter().find(|t| t.name == name)
}

/// The parameter QuantConnect's file and lock endpoints take to name the editing tool. The official
/// server fills it itself whatever the model sends; so does Keybridge, with [`CODE_SOURCE`].
pub const CODE_SOURCE_PARAM: &str = "codeSourceId";

/// What Keybridge names itself as the editing tool in QuantConnect.
pub const CODE_SOURCE: &str = "Keybridge";

/// How a paged tool names the bounds of its page: a half-open index range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub start: &'static str,
    pub end: &'static str,
    /// Where the page's items are in the result.
    pub items: &'static str,
}

/// One tool: what it is called, what it needs, what it does to the account.
#[derive(Debug)]
pub struct Tool {
    pub name: &'static str,
    pub category: Category,
    pub scope: Scope,
    pub call: Call,
    pub effect: Effect,
    pub params: &'static [Param],
    pub description: &'static str,
}

/// How a tool reaches QuantConnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `POST` with a JSON body to this path under the API base.
    Json(&'static str),
    /// `POST` as `multipart/form-data`; the `objectData` argument becomes the file part.
    Multipart(&'static str),
    /// `/live/auth0/authorize` (redirect not followed), then `/live/auth0/read`.
    BrokerageAuthorization,
    /// Answered locally with Keybridge's version; no network call.
    ServerVersion,
}

impl Call {
    /// The API path shown to users (`local` for tools answered without a call).
    pub fn endpoint(self) -> &'static str {
        match self {
            Call::Json(path) | Call::Multipart(path) => path,
            Call::BrokerageAuthorization => "/live/auth0/authorize",
            Call::ServerVersion => "local",
        }
    }
}

/// What a tool does to the account, from which the MCP annotations follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Changes nothing.
    Read,
    /// Makes something new; repeating it makes another.
    Create,
    /// Changes settings or metadata; repeating it changes nothing more.
    Update,
    /// Replaces content; repeating it changes nothing more.
    Overwrite,
    /// Removes or stops something; repeating it changes nothing more.
    Delete,
    /// Acts with consequences each time (commands that can place orders, aborts).
    Act,
}

/// MCP tool annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hints {
    #[serde(rename = "readOnlyHint")]
    pub read_only: bool,
    #[serde(rename = "destructiveHint")]
    pub destructive: bool,
    #[serde(rename = "idempotentHint")]
    pub idempotent: bool,
    #[serde(rename = "openWorldHint")]
    pub open_world: bool,
}

/// The groups the official server files its tools under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Account,
    Projects,
    Collaboration,
    Compilation,
    Files,
    Backtesting,
    Optimization,
    LiveTrading,
    ObjectStore,
    Administrative,
    AiAssistance,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::Account => "Account",
            Category::Projects => "Project Management",
            Category::Collaboration => "Collaboration",
            Category::Compilation => "Compilation",
            Category::Files => "File Management",
            Category::Backtesting => "Backtesting",
            Category::Optimization => "Optimization",
            Category::LiveTrading => "Live Trading",
            Category::ObjectStore => "Object Store",
            Category::Administrative => "Administrative",
            Category::AiAssistance => "AI Assistance",
        }
    }
}

/// One named argument of a tool.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    pub description: &'static str,
}

/// The type of an argument, including QuantConnect's structured ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Any,
    Enum(&'static [&'static str]),
    StringList,
    /// `[{name, content}]`.
    FileList,
    /// `[{name, min, max, step, minStep?}]`.
    OptimizationParameters,
    /// `[{target, operator, targetValue}]`.
    OptimizationConstraints,
    /// `[{input, type, count}]`.
    SearchCriteria,
    /// `{message, stacktrace?}`.
    ErrorObject,
    /// `{id, ...}`: brokerage settings, which may hold brokerage credentials.
    Brokerage,
    /// `{<provider id>: {id, ...}}`.
    DataProviders,
}

/// Brokerage ids accepted in `create_live_algorithm`'s `brokerage.id`.
pub const BROKERAGE_IDS: &[&str] = &[
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

impl ParamType {
    /// The JSON Schema of a value of this type.
    pub fn schema(self) -> Value {
        fn object(props: Value, required: &[&str]) -> Value {
            json!({"type": "object", "properties": props, "required": required})
        }
        let string = json!({"type": "string"});
        let number = json!({"type": "number"});
        match self {
            ParamType::String => string,
            ParamType::Integer => json!({"type": "integer"}),
            ParamType::Number => number,
            ParamType::Boolean => json!({"type": "boolean"}),
            ParamType::Object => json!({"type": "object"}),
            ParamType::Any => json!({}),
            ParamType::Enum(values) => json!({"type": "string", "enum": values}),
            ParamType::StringList => json!({"type": "array", "items": string}),
            ParamType::FileList => json!({"type": "array", "items":
                object(json!({"name": string, "content": string}), &["name", "content"])}),
            ParamType::OptimizationParameters => json!({"type": "array", "items": object(
                json!({"name": string, "min": number, "max": number, "step": number, "minStep": number}),
                &["name", "min", "max", "step"])}),
            ParamType::OptimizationConstraints => json!({"type": "array", "items": object(json!({
                "target": {"type": "string", "enum": tools_constraint_targets()},
                "operator": {"type": "string", "enum": ["LessOrEqual", "Less", "GreaterOrEqual", "Greater", "NotEqual", "Equals"]},
                "targetValue": number}), &["target", "operator", "targetValue"])}),
            ParamType::SearchCriteria => json!({"type": "array", "items": object(json!({
                "input": string,
                "type": {"type": "string", "enum": ["Stubs", "Forum", "Docs", "Examples"]},
                "count": {"type": "integer"}}), &["input", "type", "count"])}),
            ParamType::ErrorObject => object(json!({"message": string, "stacktrace": string}), &["message"]),
            ParamType::Brokerage => json!({"type": "object", "properties":
                {"id": {"type": "string", "enum": BROKERAGE_IDS}}, "required": ["id"]}),
            ParamType::DataProviders => json!({"type": "object", "additionalProperties": {"type": "object"}}),
        }
    }

    fn describe(self) -> String {
        match self {
            ParamType::String => "a string".into(),
            ParamType::Integer => "an integer".into(),
            ParamType::Number => "a number".into(),
            ParamType::Boolean => "true or false".into(),
            ParamType::Object | ParamType::ErrorObject | ParamType::Brokerage | ParamType::DataProviders => {
                "an object".into()
            }
            ParamType::Any => "any value".into(),
            ParamType::Enum(values) => format!("one of {}", values.join(", ")),
            ParamType::StringList => "a list of strings".into(),
            ParamType::FileList
            | ParamType::OptimizationParameters
            | ParamType::OptimizationConstraints
            | ParamType::SearchCriteria => "a list of objects".into(),
        }
    }
}

fn tools_constraint_targets() -> Value {
    let create = find("create_optimization").and_then(|t| t.params.iter().find(|p| p.name == "target"));
    match create.map(|p| p.ty) {
        Some(ParamType::Enum(values)) => json!(values),
        _ => json!([]),
    }
}

/// Why a tool's arguments were refused. Nothing is sent when this happens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgsError {
    #[error("{tool}: arguments must be a JSON object, got {got}")]
    NotAnObject { tool: &'static str, got: String },
    #[error("{tool}: missing required parameter `{param}` ({expected}); required: {required}")]
    Missing { tool: &'static str, param: &'static str, expected: String, required: String },
    #[error("{tool}: parameter `{param}` must be {expected}, got {got}")]
    WrongType { tool: &'static str, param: String, expected: String, got: String },
    #[error("{tool}: unknown parameter `{param}`; accepted: {accepted}")]
    Unknown { tool: &'static str, param: String, accepted: String },
}

impl Tool {
    /// MCP annotations, derived from what the tool does.
    pub fn hints(&self) -> Hints {
        let e = self.effect;
        Hints {
            read_only: e == Effect::Read,
            destructive: matches!(e, Effect::Overwrite | Effect::Delete | Effect::Act),
            idempotent: matches!(e, Effect::Read | Effect::Update | Effect::Overwrite | Effect::Delete),
            open_world: self.call != Call::ServerVersion,
        }
    }

    /// The flat JSON Schema of the tool's arguments.
    pub fn input_schema(&self) -> Value {
        let mut properties = Map::new();
        for p in self.params {
            let mut schema = p.ty.schema();
            if let Value::Object(map) = &mut schema {
                map.insert("description".into(), p.description.into());
            }
            properties.insert(p.name.into(), schema);
        }
        let required: Vec<&str> = self.params.iter().filter(|p| p.required).map(|p| p.name).collect();
        json!({"type": "object", "properties": properties, "required": required})
    }

    /// Check a call's arguments and return the request body to send.
    ///
    /// Accepts flat arguments or the official server's `{"model": {...}}` wrapper; `null`
    /// counts as no arguments. Refuses unknown parameters so a typo is not silently dropped
    /// and an approval always covers exactly what is sent.
    pub fn prepare(&self, args: Value) -> Result<Map<String, Value>, ArgsError> {
        let mut args = match args {
            Value::Null => Map::new(),
            Value::Object(map) => map,
            other => return Err(ArgsError::NotAnObject { tool: self.name, got: kind_of(&other) }),
        };
        if args.len() == 1
            && !self.params.iter().any(|p| p.name == "model")
            && let Some(Value::Object(inner)) = args.get("model")
        {
            args = inner.clone();
        }
        for name in args.keys() {
            if !self.params.iter().any(|p| p.name == name) {
                return Err(ArgsError::Unknown {
                    tool: self.name,
                    param: name.clone(),
                    accepted: self.param_list(false),
                });
            }
        }
        // QuantConnect treats an explicit null like an absent optional value.
        args.retain(|_, v| !v.is_null());
        if self.params.iter().any(|p| p.name == CODE_SOURCE_PARAM) {
            args.insert(CODE_SOURCE_PARAM.into(), CODE_SOURCE.into());
        }
        for p in self.params {
            match args.get(p.name) {
                None if p.required => {
                    return Err(ArgsError::Missing {
                        tool: self.name,
                        param: p.name,
                        expected: p.ty.describe(),
                        required: self.param_list(true),
                    });
                }
                None => {}
                Some(value) => check(p.ty, value).map_err(|(path, expected)| ArgsError::WrongType {
                    tool: self.name,
                    param: format!("{}{path}", p.name),
                    expected,
                    // Brokerage settings carry credentials: never echo them.
                    got: if matches!(p.ty, ParamType::Brokerage | ParamType::DataProviders) {
                        "a value that is not shown (it may hold credentials)".into()
                    } else {
                        shown(value_at(value, &path))
                    },
                })?,
            }
        }
        Ok(args)
    }

    /// The index range of a tool QuantConnect answers a page at a time, and where the items are.
    pub fn paging(&self) -> Option<Paging> {
        let (start, end, items) = match self.name {
            "read_backtest_orders" | "read_live_orders" => ("start", "end", "orders"),
            "read_backtest_insights" | "read_live_insights" => ("start", "end", "insights"),
            "read_project" => ("start", "end", "projects"),
            "read_live_logs" => ("startLine", "endLine", "logs"),
            _ => return None,
        };
        Some(Paging { start, end, items })
    }

    fn param_list(&self, required_only: bool) -> String {
        let names: Vec<&str> = self.params.iter().filter(|p| p.required || !required_only).map(|p| p.name).collect();
        if names.is_empty() { "none".into() } else { names.join(", ") }
    }
}

/// Check `value` against `ty`. On failure returns the JSON path inside the value (e.g.
/// `[1].name`) and what was expected there.
fn check(ty: ParamType, value: &Value) -> Result<(), (String, String)> {
    let fail = || Err((String::new(), ty.describe()));
    match ty {
        ParamType::Any => Ok(()),
        ParamType::String if value.is_string() => Ok(()),
        ParamType::Integer if value.is_i64() || value.is_u64() => Ok(()),
        ParamType::Number if value.is_number() => Ok(()),
        ParamType::Boolean if value.is_boolean() => Ok(()),
        ParamType::Object | ParamType::DataProviders if value.is_object() => Ok(()),
        ParamType::Enum(values) => match value.as_str() {
            Some(s) if values.contains(&s) => Ok(()),
            _ => fail(),
        },
        ParamType::StringList => match value.as_array() {
            Some(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                if item.is_string() { Ok(()) } else { Err((format!("[{i}]"), "a string".into())) }
            }),
            None => fail(),
        },
        ParamType::ErrorObject | ParamType::Brokerage => check_object(ty.schema(), value),
        ParamType::FileList
        | ParamType::OptimizationParameters
        | ParamType::OptimizationConstraints
        | ParamType::SearchCriteria => match value.as_array() {
            Some(items) => {
                let item_schema = ty.schema()["items"].clone();
                items.iter().enumerate().try_for_each(|(i, item)| {
                    check_object(item_schema.clone(), item).map_err(|(path, e)| (format!("[{i}]{path}"), e))
                })
            }
            None => fail(),
        },
        _ => fail(),
    }
}

/// Check an object against the small schemas of [`ParamType::schema`]: required keys present,
/// and each known key of the right primitive type or enum.
fn check_object(schema: Value, value: &Value) -> Result<(), (String, String)> {
    let Some(map) = value.as_object() else {
        return Err((String::new(), "an object".into()));
    };
    for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(required) {
            return Err((format!(".{required}"), "present".into()));
        }
    }
    for (key, prop) in schema["properties"].as_object().into_iter().flatten() {
        let Some(v) = map.get(key).filter(|v| !v.is_null()) else { continue };
        let ok = match (prop["type"].as_str(), prop["enum"].as_array()) {
            (_, Some(allowed)) => allowed.contains(v),
            (Some("string"), _) => v.is_string(),
            (Some("integer"), _) => v.is_i64() || v.is_u64(),
            (Some("number"), _) => v.is_number(),
            _ => true,
        };
        if !ok {
            let expected = match prop["enum"].as_array() {
                Some(allowed) => {
                    format!("one of {}", allowed.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                }
                None => format!("a {}", prop["type"].as_str().unwrap_or("value")),
            };
            return Err((format!(".{key}"), expected));
        }
    }
    Ok(())
}

fn value_at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = value;
    for part in path.split(['.', '[']).filter(|p| !p.is_empty()) {
        current = match part.strip_suffix(']') {
            Some(index) => current.get(index.parse::<usize>().ok()?)?,
            None => current.get(part)?,
        };
    }
    Some(current)
}

/// A short rendering of a bad value for an error message; long values are cut.
fn shown(value: Option<&Value>) -> String {
    let Some(value) = value else { return "nothing".into() };
    let text = value.to_string();
    if text.chars().count() > 60 { format!("{}…", text.chars().take(60).collect::<String>()) } else { text }
}

fn kind_of(value: &Value) -> String {
    match value {
        Value::Array(_) => "an array".into(),
        Value::String(_) => "a string".into(),
        Value::Number(_) => "a number".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Null => "null".into(),
        Value::Object(_) => "an object".into(),
    }
}
