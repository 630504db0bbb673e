//! The catalog against the official server's tool list, and the argument checks.

use keybridge_catalog::{ArgsError, CODE_SOURCE, CODE_SOURCE_PARAM, ParamType, Preset, Scope, find, tools};
use serde_json::{Value, json};
use std::path::PathBuf;

fn shared(file: &str) -> Option<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/quantconnect").join(file);
    let text = std::fs::read_to_string(&path).ok()?;
    Some(serde_json::from_str(&text).expect("shared reference file is valid JSON"))
}

fn type_name(ty: ParamType) -> String {
    match ty {
        ParamType::String => "string".into(),
        ParamType::Integer => "integer".into(),
        ParamType::Number => "number".into(),
        ParamType::Boolean => "boolean".into(),
        ParamType::Object => "object".into(),
        ParamType::Any => "any".into(),
        ParamType::Enum(values) => format!("enum({})", values.join(",")),
        ParamType::StringList => "array<string>".into(),
        ParamType::FileList => "array<File>".into(),
        ParamType::OptimizationParameters => "array<OptimizationParameter>".into(),
        ParamType::OptimizationConstraints => "array<OptimizationConstraint>".into(),
        ParamType::SearchCriteria => "array<SearchCriteria>".into(),
        ParamType::ErrorObject => "Error".into(),
        ParamType::Brokerage => "brokerage settings".into(),
        ParamType::DataProviders => "DataProviders".into(),
    }
}

#[test]
fn sixty_four_tools_with_unique_names_and_one_qc_scope_each() {
    assert_eq!(tools().len(), 64);
    let mut names: Vec<&str> = tools().iter().map(|t| t.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 64, "tool names must be unique");
    for t in tools() {
        assert!(t.scope.as_str().starts_with("qc:"), "{} has scope {}", t.name, t.scope);
        assert!(!t.description.is_empty() && t.description.len() < 140, "{}: description too long or empty", t.name);
    }
}

#[test]
fn names_endpoints_and_parameters_match_the_official_server() {
    let Some(official) = shared("tools.json") else {
        eprintln!("shared/quantconnect/tools.json not present: cross-check not possible here");
        return;
    };
    let official = official.as_array().unwrap();
    assert_eq!(official.len(), tools().len());
    for reference in official {
        let name = reference["name"].as_str().unwrap();
        let ours = find(name).unwrap_or_else(|| panic!("official tool {name} is missing"));
        let endpoint = reference["endpoint"].as_str().unwrap_or("local");
        if name != "read_latest_mcp_server_version" {
            assert_eq!(ours.call.endpoint(), endpoint, "{name}: endpoint");
        }
        let mut required: Vec<&str> = ours.params.iter().filter(|p| p.required).map(|p| p.name).collect();
        // The official server fills `codeSourceId` itself even where its model requires it; so
        // does Keybridge, so the model is never asked for it.
        let mut expected: Vec<&str> = reference["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .filter(|p| *p != CODE_SOURCE_PARAM)
            .collect();
        required.sort();
        expected.sort();
        assert_eq!(required, expected, "{name}: required parameters");
        let mut optional: Vec<&str> = ours.params.iter().filter(|p| !p.required).map(|p| p.name).collect();
        let mut expected: Vec<&str> =
            reference["optional"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        if reference["required"].as_array().unwrap().iter().any(|p| p == CODE_SOURCE_PARAM) {
            expected.push(CODE_SOURCE_PARAM);
        }
        optional.sort();
        expected.sort();
        assert_eq!(optional, expected, "{name}: optional parameters");
        for p in ours.params {
            let theirs = reference["param_types"][p.name].as_str().unwrap();
            let ours_ty = type_name(p.ty);
            if p.ty == ParamType::Brokerage {
                assert!(theirs.contains("BrokerageSettings"), "{name}.{}: {theirs}", p.name);
            } else {
                assert_eq!(ours_ty, theirs, "{name}.{}: type", p.name);
            }
        }
    }
}

#[test]
fn scopes_follow_the_design_where_the_reference_is_wrong() {
    let scope = |name: &str| find(name).unwrap().scope;
    assert_eq!(scope("create_live_algorithm"), Scope::LiveWrite);
    assert_eq!(scope("stop_live_algorithm"), Scope::LiveExecute);
    assert_eq!(scope("liquidate_live_algorithm"), Scope::LiveExecute);
    assert_eq!(scope("broadcast_live_command"), Scope::LiveExecute);
    assert_eq!(scope("delete_project"), Scope::ProjectsDelete);
}

#[test]
fn annotations_are_honest() {
    for name in
        ["read_live_algorithm", "list_live_algorithms", "read_live_chart", "read_live_logs", "read_live_portfolio"]
    {
        let h = find(name).unwrap().hints();
        assert!(h.read_only && !h.destructive, "{name} only reads");
    }
    let liquidate = find("liquidate_live_algorithm").unwrap().hints();
    assert!(liquidate.destructive && !liquidate.read_only);
    assert!(!find("read_mcp_server_version").unwrap().hints().open_world);
    let command = find("create_live_command").unwrap().hints();
    assert!(command.destructive && !command.idempotent, "a command can place a new order each time");
}

#[test]
fn presets_nest_and_say_what_they_allow() {
    let ro = Preset::ReadOnly.scopes();
    let research = Preset::Research.scopes();
    let trader = Preset::Trader.scopes();
    let admin = Preset::Admin.scopes();
    assert!(ro.iter().all(|s| research.contains(s)));
    assert!(research.iter().all(|s| trader.contains(s)));
    assert_eq!(admin.len(), Scope::ALL.len());
    assert!(!research.contains(&Scope::LiveWrite));
    assert!(trader.contains(&Scope::LiveExecute) && !trader.contains(&Scope::ProjectsDelete));
    assert!(ro.iter().all(|s| s.verb() == "read"));
    assert_eq!("Trader".parse::<Preset>().unwrap(), Preset::Trader);
    assert!("superuser".parse::<Preset>().unwrap_err().contains("read-only"));
}

#[test]
fn scope_strings_round_trip_and_unknown_ones_are_explained() {
    for s in Scope::ALL {
        assert_eq!(s.as_str().parse::<Scope>().unwrap(), *s);
        assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
    }
    let err = "qc:everything".parse::<Scope>().unwrap_err().to_string();
    assert!(err.contains("qc:everything") && err.contains("keybridge catalog"), "{err}");
}

#[test]
fn flat_and_model_wrapped_arguments_are_the_same_call() {
    let tool = find("create_backtest").unwrap();
    let flat = json!({"projectId": 1, "compileId": "c", "backtestName": "b"});
    let wrapped = json!({"model": flat.clone()});
    assert_eq!(tool.prepare(flat).unwrap(), tool.prepare(wrapped).unwrap());
    assert!(find("list_projects").unwrap().prepare(Value::Null).unwrap().is_empty());
}

#[test]
fn argument_errors_name_the_parameter_and_the_bad_value() {
    let check = |tool: &str, args: Value, expect: &[&str]| {
        let err = find(tool).unwrap().prepare(args).unwrap_err();
        let text = err.to_string();
        for part in expect {
            assert!(text.contains(part), "`{text}` should mention `{part}`");
        }
        err
    };
    let err = check("read_backtest", json!({"projectId": 1}), &["backtestId", "required"]);
    assert!(matches!(err, ArgsError::Missing { param: "backtestId", .. }));
    check("read_backtest", json!({"projectId": "one", "backtestId": "b"}), &["projectId", "integer", "\"one\""]);
    check("create_project", json!({"name": "x", "language": "Rust"}), &["language", "C#, Py", "\"Rust\""]);
    check("read_account", json!({"projectid": 3}), &["unknown parameter `projectid`", "none"]);
    check("check_syntax", json!({"language": "Py", "files": [{"name": "a.py"}]}), &["files[0].content"]);
    check(
        "create_live_algorithm",
        json!({"versionId": "-1", "projectId": 1, "compileId": "c", "nodeId": "n", "brokerage": {"id": "Robinhood"}}),
        &["brokerage.id", "QuantConnectBrokerage", "not shown"],
    );
    check("read_account", json!([1, 2]), &["JSON object", "an array"]);
}

#[test]
fn the_full_tool_list_is_a_fraction_of_the_official_one() {
    let list: Vec<Value> = tools()
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "inputSchema": t.input_schema(), "annotations": t.hints()}))
        .collect();
    let bytes = serde_json::to_vec(&json!({"tools": list})).unwrap().len();
    assert!(bytes < 60_000, "tools/list is {bytes} bytes; the budget is 60 KB");
    if let Some(official) = shared("official-tools-list.json") {
        let theirs = serde_json::to_vec(&official).unwrap().len();
        assert!(bytes * 5 < theirs, "ours {bytes} bytes vs official {theirs}");
    }
}

#[test]
fn keybridge_names_itself_as_the_code_source_whatever_the_model_sends() {
    let lock = find("lock_project_with_collaborators").unwrap();
    assert_eq!(lock.prepare(json!({"projectId": 3})).unwrap()[CODE_SOURCE_PARAM], CODE_SOURCE);
    let wrapped = json!({"model": {"projectId": 3, "codeSourceId": "MCP Server"}});
    assert_eq!(lock.prepare(wrapped).unwrap()[CODE_SOURCE_PARAM], CODE_SOURCE);
    let create = find("create_file").unwrap();
    let args = create.prepare(json!({"projectId": 3, "name": "a.py", "content": "x = 1"})).unwrap();
    assert_eq!(args[CODE_SOURCE_PARAM], CODE_SOURCE);
    assert!(!lock.input_schema()["required"].to_string().contains(CODE_SOURCE_PARAM));
    // Tools that do not take it are sent nothing extra.
    assert!(!find("read_project").unwrap().prepare(json!({"projectId": 3})).unwrap().contains_key(CODE_SOURCE_PARAM));
}

#[test]
fn paged_tools_name_their_range_and_every_range_is_a_parameter() {
    let paged: Vec<&str> = tools().iter().filter(|t| t.paging().is_some()).map(|t| t.name).collect();
    assert_eq!(
        paged,
        [
            "read_project",
            "read_backtest_orders",
            "read_backtest_insights",
            "read_live_logs",
            "read_live_orders",
            "read_live_insights"
        ]
    );
    for t in tools() {
        if let Some(paging) = t.paging() {
            for name in [paging.start, paging.end] {
                let param = t.params.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("{}: {name}", t.name));
                assert_eq!(param.ty, ParamType::Integer, "{}.{name}", t.name);
            }
        }
    }
}
