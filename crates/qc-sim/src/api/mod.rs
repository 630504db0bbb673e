//! The endpoints. Each handler validates its parameters the way the API reports them
//! (HTTP 200 with `success: false`), changes the account's state and answers in the
//! response shape the specification gives for that endpoint.

mod ai;
mod files;
mod jobs;
mod live;
mod market;
mod objects;
mod optimizations;
mod projects;
pub(crate) mod source;

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::state::{AccountState, Project};

/// Every `/api/v2` endpoint the simulator answers (without the `/api/v2` prefix).
pub const ENDPOINTS: &[&str] = &[
    "/authenticate",
    "/account/read",
    "/lean/versions/read",
    "/projects/create",
    "/projects/read",
    "/projects/update",
    "/projects/delete",
    "/projects/collaboration/create",
    "/projects/collaboration/read",
    "/projects/collaboration/update",
    "/projects/collaboration/delete",
    "/projects/collaboration/lock/acquire",
    "/projects/nodes/read",
    "/projects/nodes/update",
    "/files/create",
    "/files/read",
    "/files/update",
    "/files/patch",
    "/files/delete",
    "/compile/create",
    "/compile/read",
    "/backtests/create",
    "/backtests/read",
    "/backtests/list",
    "/backtests/chart/read",
    "/backtests/orders/read",
    "/backtests/read/insights",
    "/backtests/read/report",
    "/backtests/update",
    "/backtests/delete",
    "/optimizations/estimate",
    "/optimizations/create",
    "/optimizations/read",
    "/optimizations/list",
    "/optimizations/update",
    "/optimizations/abort",
    "/optimizations/delete",
    "/live/auth0/authorize",
    "/live/auth0/read",
    "/live/create",
    "/live/read",
    "/live/list",
    "/live/chart/read",
    "/live/logs/read",
    "/live/portfolio/read",
    "/live/orders/read",
    "/live/insights/read",
    "/live/update/stop",
    "/live/update/liquidate",
    "/live/commands/create",
    "/live/commands/broadcast",
    "/object/set",
    "/object/get",
    "/object/properties",
    "/object/list",
    "/object/delete",
    "/ai/tools/backtest-init",
    "/ai/tools/complete",
    "/ai/tools/error-enhance",
    "/ai/tools/pep8-convert",
    "/ai/tools/syntax-check",
    "/ai/tools/search",
];

pub(crate) struct Ctx<'a> {
    pub acct: &'a mut AccountState,
    /// The simulator's clock (real clock plus offset), in unix seconds.
    pub now: i64,
    pub reads_until_complete: u32,
    /// `http://127.0.0.1:PORT`, for URLs the simulator hands out.
    pub origin: String,
    /// Multipart file parts by field name.
    pub uploads: &'a HashMap<String, Vec<u8>>,
    pub downloads: &'a mut HashMap<String, Vec<u8>>,
}

impl Ctx<'_> {
    /// Whether a job that has been read `reads` times is finished.
    pub fn done(&self, reads: u32) -> bool {
        self.reads_until_complete == 0 || reads > self.reads_until_complete
    }

    pub fn project(&self, id: i64) -> Result<&Project, ApiError> {
        self.acct.projects.get(&id).ok_or_else(|| ApiError::new(format!("Project {id} not found.")))
    }

    pub fn project_mut(&mut self, id: i64) -> Result<&mut Project, ApiError> {
        self.acct.projects.get_mut(&id).ok_or_else(|| ApiError::new(format!("Project {id} not found.")))
    }

    pub fn check_org(&self, org: &str) -> Result<(), ApiError> {
        if org == self.acct.account.organization_id {
            Ok(())
        } else {
            Err(ApiError::new(format!("Organization {org} not found or not accessible to this user.")))
        }
    }
}

pub(crate) enum Reply {
    Json(Value),
    Redirect(String),
}

/// The `errors` of a `{"success": false}` answer.
#[derive(Debug)]
pub(crate) struct ApiError(pub Vec<String>);

impl ApiError {
    pub fn new(message: impl Into<String>) -> ApiError {
        ApiError(vec![message.into()])
    }
}

pub(crate) type Answer = Result<Reply, ApiError>;

pub(crate) fn ok(v: Value) -> Answer {
    Ok(Reply::Json(v))
}

pub(crate) fn dispatch(endpoint: &str, ctx: &mut Ctx<'_>, body: &Value) -> Option<Answer> {
    type Handler = fn(&mut Ctx<'_>, &Value) -> Answer;
    let handler: Handler = match endpoint {
        "/authenticate" => |_, _| ok(serde_json::json!({"success": true})),
        "/account/read" => projects::read_account,
        "/lean/versions/read" => projects::read_lean_versions,
        "/projects/create" => projects::create,
        "/projects/read" => projects::read,
        "/projects/update" => projects::update,
        "/projects/delete" => projects::delete,
        "/projects/collaboration/create" => projects::collaborator_create,
        "/projects/collaboration/read" => projects::collaborator_read,
        "/projects/collaboration/update" => projects::collaborator_update,
        "/projects/collaboration/delete" => projects::collaborator_delete,
        "/projects/collaboration/lock/acquire" => projects::lock_acquire,
        "/projects/nodes/read" => projects::nodes_read,
        "/projects/nodes/update" => projects::nodes_update,
        "/files/create" => files::create,
        "/files/read" => files::read,
        "/files/update" => files::update,
        "/files/patch" => files::patch,
        "/files/delete" => files::delete,
        "/compile/create" => jobs::compile_create,
        "/compile/read" => jobs::compile_read,
        "/backtests/create" => jobs::backtest_create,
        "/backtests/read" => jobs::backtest_read,
        "/backtests/list" => jobs::backtest_list,
        "/backtests/chart/read" => jobs::backtest_chart,
        "/backtests/orders/read" => jobs::backtest_orders,
        "/backtests/read/insights" => jobs::backtest_insights,
        "/backtests/read/report" => jobs::backtest_report,
        "/backtests/update" => jobs::backtest_update,
        "/backtests/delete" => jobs::backtest_delete,
        "/optimizations/estimate" => optimizations::estimate,
        "/optimizations/create" => optimizations::create,
        "/optimizations/read" => optimizations::read,
        "/optimizations/list" => optimizations::list,
        "/optimizations/update" => optimizations::update,
        "/optimizations/abort" => optimizations::abort,
        "/optimizations/delete" => optimizations::delete,
        "/live/auth0/authorize" => live::auth0_authorize,
        "/live/auth0/read" => live::auth0_read,
        "/live/create" => live::create,
        "/live/read" => live::read,
        "/live/list" => live::list,
        "/live/chart/read" => live::chart,
        "/live/logs/read" => live::logs,
        "/live/portfolio/read" => live::portfolio,
        "/live/orders/read" => live::orders,
        "/live/insights/read" => live::insights,
        "/live/update/stop" => live::stop,
        "/live/update/liquidate" => live::liquidate,
        "/live/commands/create" => live::command_create,
        "/live/commands/broadcast" => live::command_broadcast,
        "/object/set" => objects::set,
        "/object/get" => objects::get,
        "/object/properties" => objects::properties,
        "/object/list" => objects::list,
        "/object/delete" => objects::delete,
        "/ai/tools/backtest-init" => ai::backtest_init,
        "/ai/tools/complete" => ai::complete,
        "/ai/tools/error-enhance" => ai::error_enhance,
        "/ai/tools/pep8-convert" => ai::pep8_convert,
        "/ai/tools/syntax-check" => ai::syntax_check,
        "/ai/tools/search" => ai::search,
        _ => return None,
    };
    Some(handler(ctx, body))
}

/// Reads request parameters and collects every problem, so one answer names all the
/// missing or mistyped parameters at once.
pub(crate) struct Params<'a> {
    body: Option<&'a Map<String, Value>>,
    errors: Vec<String>,
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Params<'a> {
    pub fn new(body: &'a Value) -> Params<'a> {
        match body {
            Value::Object(map) => Params { body: Some(map), errors: Vec::new() },
            _ => Params { body: None, errors: vec!["The request body must be a JSON object.".to_owned()] },
        }
    }

    /// A parameter's value; `null` counts as absent.
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.body?.get(name).filter(|v| !v.is_null())
    }

    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    pub fn fail(&mut self, message: impl Into<String>) {
        self.errors.push(message.into());
    }

    fn missing(&mut self, name: &str) {
        self.errors.push(format!("{name} is required"));
    }

    fn mistyped(&mut self, name: &str, want: &str, got: &Value) {
        self.errors.push(format!("{name} is required and must be {want}, not {}", kind_of(got)));
    }

    fn take<T>(&mut self, name: &str, required: bool, want: &str, conv: impl Fn(&'a Value) -> Option<T>) -> Option<T> {
        match self.raw(name) {
            None => {
                if required {
                    self.missing(name);
                }
                None
            }
            Some(v) => match conv(v) {
                Some(t) => Some(t),
                None => {
                    self.mistyped(name, want, v);
                    None
                }
            },
        }
    }

    pub fn opt_int(&mut self, name: &str) -> Option<i64> {
        self.take(name, false, "an integer", Value::as_i64)
    }

    pub fn int(&mut self, name: &str) -> i64 {
        self.take(name, true, "an integer", Value::as_i64).unwrap_or_default()
    }

    pub fn opt_num(&mut self, name: &str) -> Option<f64> {
        self.take(name, false, "a number", Value::as_f64)
    }

    pub fn num(&mut self, name: &str) -> f64 {
        self.take(name, true, "a number", Value::as_f64).unwrap_or_default()
    }

    pub fn opt_bool(&mut self, name: &str) -> Option<bool> {
        self.take(name, false, "a boolean", Value::as_bool)
    }

    pub fn bool(&mut self, name: &str) -> bool {
        self.take(name, true, "a boolean", Value::as_bool).unwrap_or_default()
    }

    pub fn opt_str(&mut self, name: &str) -> Option<String> {
        self.take(name, false, "a string", |v| v.as_str().map(str::to_owned))
    }

    /// A required string; an empty one counts as missing.
    pub fn str(&mut self, name: &str) -> String {
        match self.take(name, true, "a string", |v| v.as_str().map(str::to_owned)) {
            Some(s) if s.trim().is_empty() => {
                self.missing(name);
                String::new()
            }
            Some(s) => s,
            None => String::new(),
        }
    }

    pub fn one_of(&mut self, name: &str, allowed: &[&str]) -> String {
        let value = self.str(name);
        self.check_one_of(name, value, allowed)
    }

    pub fn opt_one_of(&mut self, name: &str, allowed: &[&str]) -> Option<String> {
        let value = self.opt_str(name)?;
        Some(self.check_one_of(name, value, allowed))
    }

    fn check_one_of(&mut self, name: &str, value: String, allowed: &[&str]) -> String {
        if !value.is_empty() && !allowed.contains(&value.as_str()) {
            self.errors.push(format!("{name} must be one of: {} (got {value:?})", allowed.join(", ")));
        }
        value
    }

    pub fn opt_array(&mut self, name: &str) -> Option<&'a Vec<Value>> {
        self.take(name, false, "an array", Value::as_array)
    }

    pub fn array(&mut self, name: &str) -> &'a [Value] {
        self.take(name, true, "an array", Value::as_array).map(Vec::as_slice).unwrap_or_default()
    }

    pub fn opt_object(&mut self, name: &str) -> Option<&'a Map<String, Value>> {
        self.take(name, false, "an object", Value::as_object)
    }

    pub fn object(&mut self, name: &str) -> Option<&'a Map<String, Value>> {
        self.take(name, true, "an object", Value::as_object)
    }

    pub fn opt_str_array(&mut self, name: &str) -> Option<Vec<String>> {
        self.take(name, false, "an array of strings", |v| {
            v.as_array()?.iter().map(|x| x.as_str().map(str::to_owned)).collect()
        })
    }

    pub fn str_array(&mut self, name: &str) -> Vec<String> {
        self.take(name, true, "an array of strings", |v| {
            v.as_array()?.iter().map(|x| x.as_str().map(str::to_owned)).collect()
        })
        .unwrap_or_default()
    }

    /// `Err` with every problem found so far.
    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.errors.is_empty() { Ok(()) } else { Err(ApiError(std::mem::take(&mut self.errors))) }
    }
}

/// Source files as the AI tools take them: `[{"name": ..., "content": ...}]`.
pub(crate) fn source_files(p: &mut Params<'_>, name: &str) -> Vec<(String, String)> {
    let items = p.array(name);
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let file_name = item.get("name").and_then(Value::as_str);
        let content = item.get("content").and_then(Value::as_str);
        match (file_name, content) {
            (Some(n), Some(c)) => out.push((n.to_owned(), c.to_owned())),
            _ => p.fail(format!("{name}[{i}] must be an object with string fields name and content")),
        }
    }
    out
}
