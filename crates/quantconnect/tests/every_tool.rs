//! Every one of the 64 tools, called through the client against the simulator, in an order
//! that makes each call meaningful (create before read, read before delete).

mod common;

use std::collections::BTreeSet;

use common::{ORG, client, creds, sim};
use keybridge_quantconnect::QcClient;
use serde_json::{Value, json};

const TOKEN: &str = "every-tool-token";

#[derive(Clone, Copy, Debug)]
enum Kind {
    Str,
    Int,
    Num,
    Arr,
    Obj,
}

fn has_kind(value: &Value, kind: Kind) -> bool {
    match kind {
        Kind::Str => value.is_string(),
        Kind::Int => value.is_i64() || value.is_u64(),
        Kind::Num => value.is_number(),
        Kind::Arr => value.is_array(),
        Kind::Obj => value.is_object(),
    }
}

struct Session {
    client: QcClient,
    called: BTreeSet<&'static str>,
}

impl Session {
    /// Call `tool` and check that each JSON pointer holds a value of the given kind.
    async fn call(&mut self, tool: &'static str, args: Value, expect: &[(&str, Kind)]) -> Value {
        let spec = keybridge_catalog::find(tool).unwrap_or_else(|| panic!("{tool} is not in the catalog"));
        let reply = self.client.call(&creds(TOKEN), spec, args).await.unwrap_or_else(|e| panic!("{tool} failed: {e}"));
        assert_eq!(reply["success"], json!(true), "{tool}: {reply}");
        for (pointer, kind) in expect {
            let value = reply.pointer(pointer).unwrap_or_else(|| panic!("{tool}: no {pointer} in {reply}"));
            assert!(has_kind(value, *kind), "{tool}: {pointer} should be {kind:?}, is {value}");
        }
        self.called.insert(tool);
        reply
    }

    /// Call a read repeatedly until `done` holds, as a client polls a running job.
    async fn poll(&mut self, tool: &'static str, args: Value, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..10 {
            let reply = self.call(tool, args.clone(), &[]).await;
            if done(&reply) {
                return reply;
            }
        }
        panic!("{tool} never finished");
    }
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
        .to_string()
}

#[tokio::test]
async fn all_64_tools_answer_with_plausible_typed_responses() {
    use Kind::*;
    let sim = sim(TOKEN, |_| {}).await;
    let mut s = Session { client: client(&sim, |_| {}), called: BTreeSet::new() };

    s.call("read_account", json!({}), &[("/organizationId", Str), ("/creditBalance", Num)]).await;
    let created = s
        .call("create_project", json!({"name": "Momentum", "language": "Py"}), &[("/projects/0/projectId", Int)])
        .await;
    let pid = created["projects"][0]["projectId"].as_i64().unwrap();
    let project = json!({"projectId": pid});
    s.call("read_project", json!({"model": {"projectId": pid}}), &[("/projects/0/name", Str)]).await;
    s.call("list_projects", json!({}), &[("/projects", Arr)]).await;
    s.call("update_project", json!({"projectId": pid, "name": "Momentum v2", "description": "12-1 momentum"}), &[])
        .await;
    let renamed = s.call("read_project", project.clone(), &[]).await;
    assert_eq!(renamed["projects"][0]["name"], "Momentum v2", "the update is visible");

    // Files
    s.call("create_file", json!({"projectId": pid, "name": "utils.py", "content": "x = 1\n"}), &[]).await;
    let file = s.call("read_file", json!({"projectId": pid, "name": "utils.py"}), &[("/files/0/content", Str)]).await;
    assert_eq!(file["files"][0]["content"], "x = 1\n");
    s.call("update_file_name", json!({"projectId": pid, "name": "utils.py", "newName": "helpers.py"}), &[]).await;
    s.call("update_file_contents", json!({"projectId": pid, "name": "helpers.py", "content": "x = 1\ny = 2\n"}), &[])
        .await;
    let patch = "--- a/helpers.py\n+++ b/helpers.py\n@@ -1,2 +1,2 @@\n-x = 1\n+x = 3\n y = 2\n";
    s.call("patch_file", json!({"projectId": pid, "patch": patch}), &[]).await;
    let patched = s.call("read_file", json!({"projectId": pid, "name": "helpers.py"}), &[]).await;
    assert_eq!(patched["files"][0]["content"], "x = 3\ny = 2\n", "the patch was applied");

    // Collaboration and nodes
    let friend = json!({"projectId": pid, "collaboratorUserId": "friend-1", "collaborationLiveControl": false, "collaborationWrite": true});
    s.call("create_project_collaborator", friend, &[("/collaborators", Arr)]).await;
    s.call("read_project_collaborators", project.clone(), &[("/collaborators", Arr)]).await;
    let update = json!({"projectId": pid, "collaboratorUserId": "friend-1", "liveControl": true, "write": false});
    s.call("update_project_collaborator", update, &[]).await;
    s.call("lock_project_with_collaborators", json!({"projectId": pid, "codeSourceId": "keybridge"}), &[]).await;
    let nodes = s.call("read_project_nodes", project.clone(), &[("/nodes", Obj)]).await;
    let node_id = text(&nodes, "/nodes/live/0/id");
    s.call("update_project_nodes", json!({"projectId": pid, "nodes": [node_id.clone()]}), &[]).await;

    // Compile and backtest
    let compile = s.call("create_compile", project.clone(), &[("/compileId", Str), ("/state", Str)]).await;
    let compile_id = text(&compile, "/compileId");
    let read_compile = json!({"projectId": pid, "compileId": compile_id});
    s.poll("read_compile", read_compile, |r| r["state"] == "BuildSuccess").await;
    let bt = json!({"projectId": pid, "compileId": compile_id, "backtestName": "first"});
    let bt = s.call("create_backtest", bt, &[("/backtest/backtestId", Str)]).await;
    let bid = text(&bt, "/backtest/backtestId");
    let backtest = json!({"projectId": pid, "backtestId": bid});
    let done = s.poll("read_backtest", backtest.clone(), |r| r["backtest"]["completed"] == json!(true)).await;
    assert!(done["backtest"]["statistics"].is_object(), "a completed backtest has statistics: {done}");
    s.call("list_backtests", json!({"projectId": pid, "includeStatistics": true}), &[("/backtests/0/backtestId", Str)])
        .await;
    let chart = json!({"projectId": pid, "backtestId": bid, "name": "Strategy Equity", "count": 50, "start": 0, "end": 2_000_000_000});
    s.poll("read_backtest_chart", chart, |r| r["chart"].is_object()).await;
    let page = json!({"start": 0, "end": 100, "projectId": pid, "backtestId": bid});
    s.call("read_backtest_orders", page.clone(), &[("/orders", Arr), ("/length", Int)]).await;
    s.call("read_backtest_insights", page, &[("/insights", Arr), ("/length", Int)]).await;
    s.call("update_backtest", json!({"projectId": pid, "backtestId": bid, "name": "kept", "note": "good"}), &[]).await;

    // Optimization
    let optimization = json!({
        "projectId": pid, "name": "opt", "target": "TotalPerformance.PortfolioStatistics.SharpeRatio",
        "targetTo": "max", "strategy": "QuantConnect.Optimizer.Strategies.GridSearchOptimizationStrategy",
        "compileId": compile_id, "parameters": [{"name": "lookback", "min": 10, "max": 30, "step": 10}],
        "constraints": [{"target": "TotalPerformance.PortfolioStatistics.Drawdown", "operator": "LessOrEqual", "targetValue": 0.2}],
    });
    s.call("estimate_optimization_time", optimization.clone(), &[("/estimate", Obj)]).await;
    let mut create = optimization;
    create["estimatedCost"] = json!(1.5);
    create["nodeType"] = json!("O2-8");
    create["parallelNodes"] = json!(2);
    let opt = s.call("create_optimization", create, &[("/optimizations/0/optimizationId", Str)]).await;
    let oid = text(&opt, "/optimizations/0/optimizationId");
    s.call("read_optimization", json!({"optimizationId": oid}), &[("/optimization", Obj)]).await;
    s.call("list_optimizations", project.clone(), &[("/optimizations", Arr)]).await;
    s.call("update_optimization", json!({"optimizationId": oid, "name": "renamed"}), &[]).await;
    s.call("abort_optimization", json!({"optimizationId": oid}), &[]).await;

    // Live trading
    s.call("authorize_connection", json!({"brokerage": "alpaca"}), &[("/authorizationUrl", Str)]).await;
    let deploy = json!({"versionId": "-1", "projectId": pid, "compileId": compile_id, "nodeId": node_id,
        "brokerage": {"id": "QuantConnectBrokerage"}});
    let live = s.call("create_live_algorithm", deploy.clone(), &[("/deployId", Str)]).await;
    let deploy_id = text(&live, "/deployId");
    s.call("read_live_algorithm", project.clone(), &[("/status", Str), ("/deployId", Str)]).await;
    s.call("list_live_algorithms", json!({"status": "Running"}), &[("/live/0/projectId", Int)]).await;
    let chart = json!({"projectId": pid, "name": "Strategy Equity", "count": 50, "start": 0, "end": 2_000_000_000});
    s.poll("read_live_chart", chart, |r| r["chart"].is_object()).await;
    let logs = json!({"projectId": pid, "algorithmId": deploy_id, "startLine": 0, "endLine": 20});
    s.call("read_live_logs", logs, &[("/logs", Arr)]).await;
    s.call("read_live_portfolio", project.clone(), &[("/portfolio", Obj)]).await;
    s.poll("read_live_orders", json!({"start": 0, "end": 100, "projectId": pid}), |r| r["orders"].is_array()).await;
    s.call("read_live_insights", json!({"end": 50, "projectId": pid}), &[("/insights", Arr)]).await;
    let command = json!({"$type": "OrderCommand", "symbol": "SPY", "quantity": 1});
    s.call("create_live_command", json!({"projectId": pid, "command": command}), &[]).await;
    s.call("broadcast_live_command", json!({"organizationId": ORG, "command": command}), &[]).await;
    s.call("liquidate_live_algorithm", project.clone(), &[]).await;
    let liquidated = s.call("read_live_algorithm", project.clone(), &[]).await;
    assert_eq!(liquidated["status"], "Liquidated", "liquidation is visible: {liquidated}");
    s.call("create_live_algorithm", deploy, &[("/deployId", Str)]).await;
    s.call("stop_live_algorithm", project.clone(), &[]).await;
    let stopped = s.call("read_live_algorithm", project.clone(), &[]).await;
    assert_eq!(stopped["status"], "Stopped", "stop is visible: {stopped}");

    // Object store
    let key = "models/weights.json";
    s.call("upload_object", json!({"organizationId": ORG, "key": key, "objectData": "{\"w\": [1, 2]}"}), &[]).await;
    s.call("read_object_properties", json!({"organizationId": ORG, "key": key}), &[("/metadata", Obj)]).await;
    let job = s
        .call("read_object_store_file_job_id", json!({"organizationId": ORG, "keys": [key]}), &[("/jobId", Str)])
        .await;
    let job_id = text(&job, "/jobId");
    let url = json!({"organizationId": ORG, "jobId": job_id});
    s.call("read_object_store_file_download_url", url, &[("/url", Str)]).await;
    let listed =
        s.call("list_object_store_files", json!({"organizationId": ORG, "path": "models"}), &[("/objects", Arr)]).await;
    assert!(listed.to_string().contains("weights.json"), "the upload is listed: {listed}");
    s.call("delete_object", json!({"organizationId": ORG, "key": key}), &[]).await;

    // Administrative
    s.call("read_lean_versions", json!({}), &[("/versions", Arr)]).await;
    // Answered locally, in the official server's shape: no `success`, the version as `result`.
    for tool in ["read_mcp_server_version", "read_latest_mcp_server_version"] {
        let spec = keybridge_catalog::find(tool).unwrap();
        let version = s.client.call(&creds(TOKEN), spec, json!({})).await.unwrap();
        assert_eq!(version, json!({ "result": keybridge_quantconnect::VERSION }), "{tool}");
        s.called.insert(tool);
    }

    // AI assistance
    let files = json!([{"name": "main.py", "content": "class A(QCAlgorithm):\n    pass\n"}]);
    s.call("check_initialization_errors", json!({"language": "Py", "files": files}), &[("/state", Str)]).await;
    s.call("complete_code", json!({"language": "Py", "sentence": "self.add_eq"}), &[("/payload", Arr)]).await;
    let error = json!({"message": "NameError: name 'x' is not defined"});
    s.call("enhance_error_message", json!({"language": "Py", "error": error}), &[("/payload", Str)]).await;
    s.call("update_code_to_pep8", json!({"files": files}), &[("/payload", Obj)]).await;
    s.call("check_syntax", json!({"language": "Py", "files": files}), &[("/state", Str)]).await;
    let criteria = json!([{"input": "option chains", "type": "Docs", "count": 2}]);
    s.call("search_quantconnect", json!({"language": "Py", "criteria": criteria}), &[("/retrivals", Arr)]).await;

    // Deletes last
    s.call("delete_project_collaborator", json!({"projectId": pid, "collaboratorId": "friend-1"}), &[]).await;
    s.call("delete_backtest", backtest, &[]).await;
    s.call("delete_optimization", json!({"optimizationId": oid}), &[]).await;
    s.call("delete_file", json!({"projectId": pid, "name": "helpers.py"}), &[]).await;
    s.call("delete_project", project, &[]).await;
    let remaining = s.call("list_projects", json!({}), &[]).await;
    assert!(!remaining.to_string().contains("Momentum v2"), "the deleted project is gone: {remaining}");

    let missing: Vec<&str> =
        keybridge_catalog::tools().iter().map(|t| t.name).filter(|n| !s.called.contains(n)).collect();
    assert!(missing.is_empty(), "tools never called: {missing:?}");
    assert_eq!(s.called.len(), 64);
}
