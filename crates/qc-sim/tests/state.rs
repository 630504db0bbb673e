mod common;

use common::{Client, config_with_reads, start};
use keybridge_qc_sim::SimConfig;
use serde_json::{Value, json};

async fn new_project(client: &Client, name: &str, language: &str) -> i64 {
    let v = client.ok("/projects/create", json!({"name": name, "language": language})).await;
    v["projects"][0]["projectId"].as_i64().unwrap()
}

#[tokio::test]
async fn projects_create_list_read_update_delete() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);

    let created = c.ok("/projects/create", json!({"name": "Alpha", "language": "Py"})).await;
    let p = &created["projects"][0];
    let a = p["projectId"].as_i64().unwrap();
    assert_eq!(p["name"], "Alpha");
    assert_eq!(p["language"], "Py");
    assert_eq!(p["organizationId"], "demo-org-0001");
    let b = new_project(&c, "Beta", "C#").await;
    assert_ne!(a, b);

    let files = c.ok("/files/read", json!({"projectId": a})).await;
    assert_eq!(files["files"][0]["name"], "main.py");
    let files = c.ok("/files/read", json!({"projectId": b})).await;
    assert_eq!(files["files"][0]["name"], "Main.cs");

    let listed = c.ok("/projects/read", json!({})).await;
    let names: Vec<&str> = listed["projects"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Alpha", "Beta"]);
    let page = c.ok("/projects/read", json!({"start": 1, "end": 2})).await;
    assert_eq!(page["projects"].as_array().unwrap().len(), 1);
    assert_eq!(page["projects"][0]["name"], "Beta");

    c.ok("/projects/update", json!({"projectId": a, "name": "Alpha 2", "description": "first"})).await;
    let one = c.ok("/projects/read", json!({"projectId": a})).await;
    assert_eq!(one["projects"][0]["name"], "Alpha 2");
    assert_eq!(one["projects"][0]["description"], "first");

    c.ok("/projects/delete", json!({"projectId": a})).await;
    let errors = c.fails("/projects/read", json!({"projectId": a})).await;
    assert_eq!(errors, [format!("Project {a} not found.")]);
    let listed = c.ok("/projects/read", json!({})).await;
    assert_eq!(listed["projects"].as_array().unwrap().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn parameters_are_validated() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);
    let errors = c.fails("/projects/create", json!({})).await;
    assert_eq!(errors, ["name is required", "language is required"]);
    let errors = c.fails("/projects/create", json!({"name": "x", "language": "Rust"})).await;
    assert!(errors[0].starts_with("language must be one of: C#, Py"), "{errors:?}");
    let errors = c.fails("/projects/delete", json!({"projectId": "12"})).await;
    assert!(errors[0].starts_with("projectId is required"), "{errors:?}");
    assert!(errors[0].contains("integer"), "{errors:?}");
    let errors =
        c.fails("/projects/create", json!({"name": "x", "language": "Py", "organizationId": "someone-else"})).await;
    assert!(errors[0].contains("someone-else"), "{errors:?}");

    // QuantConnect reports failures as HTTP 200 with success false.
    let res = c.post("/files/read", &json!({"projectId": 99})).await;
    assert_eq!(res.status(), 200);

    let res = c.post("/no/such/endpoint", &json!({})).await;
    assert_eq!(res.status(), 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn files_round_trip_and_patch() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);
    let id = new_project(&c, "Files", "Py").await;

    c.ok("/files/create", json!({"projectId": id, "name": "util.py", "content": "a = 1\nb = 2\nc = 3\n"})).await;
    let errors = c.fails("/files/create", json!({"projectId": id, "name": "util.py"})).await;
    assert!(errors[0].contains("already exists"));

    let one = c.ok("/files/read", json!({"projectId": id, "name": "util.py"})).await;
    assert_eq!(one["files"][0]["content"], "a = 1\nb = 2\nc = 3\n");

    c.ok("/files/update", json!({"projectId": id, "name": "util.py", "content": "a = 1\nb = 20\nc = 3\n"})).await;
    c.ok("/files/update", json!({"projectId": id, "name": "util.py", "newName": "tools.py"})).await;
    c.fails("/files/read", json!({"projectId": id, "name": "util.py"})).await;

    let patch = "--- a/tools.py\n+++ b/tools.py\n@@ -1,3 +1,4 @@\n a = 1\n-b = 20\n+b = 200\n+d = 4\n c = 3\n";
    c.ok("/files/patch", json!({"projectId": id, "patch": patch})).await;
    let one = c.ok("/files/read", json!({"projectId": id, "name": "tools.py"})).await;
    assert_eq!(one["files"][0]["content"], "a = 1\nb = 200\nd = 4\nc = 3\n");

    let stale = "--- a/tools.py\n+++ b/tools.py\n@@ -1,2 +1,2 @@\n a = 1\n-b = 20\n+b = 2\n";
    let errors = c.fails("/files/patch", json!({"projectId": id, "patch": stale})).await;
    assert!(errors[0].contains("does not apply"), "{errors:?}");
    let errors = c.fails("/files/patch", json!({"projectId": id, "patch": "not a diff"})).await;
    assert!(errors[0].contains("no hunks"), "{errors:?}");

    c.ok("/files/delete", json!({"projectId": id, "name": "tools.py"})).await;
    let all = c.ok("/files/read", json!({"projectId": id})).await;
    let names: Vec<&str> = all["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["main.py", "research.ipynb"], "what QuantConnect made with the project stays");
    sim.shutdown().await;
}

#[tokio::test]
async fn compile_then_backtest_progresses_to_completion() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);
    let id = new_project(&c, "Runs", "Py").await;

    let compile = c.ok("/compile/create", json!({"projectId": id})).await;
    assert_eq!(compile["state"], "InQueue");
    let compile_id = compile["compileId"].as_str().unwrap().to_owned();
    assert!(compile_id.contains('-'));
    let read = c.ok("/compile/read", json!({"projectId": id, "compileId": compile_id})).await;
    assert_eq!(read["state"], "InQueue");
    let read = c.ok("/compile/read", json!({"projectId": id, "compileId": compile_id})).await;
    assert_eq!(read["state"], "BuildSuccess");
    assert!(!read["logs"].as_array().unwrap().is_empty());

    let errors =
        c.fails("/backtests/create", json!({"projectId": id, "compileId": "nope-1", "backtestName": "x"})).await;
    assert!(errors[0].contains("nope-1"));

    let created =
        c.ok("/backtests/create", json!({"projectId": id, "compileId": compile_id, "backtestName": "First"})).await;
    let bt = created["backtest"]["backtestId"].as_str().unwrap().to_owned();
    assert_eq!(created["backtest"]["completed"], false);
    assert_eq!(
        created["backtest"]["parameterSet"],
        json!([]),
        "no parameters: an empty list, as QuantConnect writes it"
    );

    let first = c.ok("/backtests/read", json!({"projectId": id, "backtestId": bt})).await;
    assert_eq!(first["backtest"]["completed"], false);
    assert!(first["backtest"]["status"].as_str().unwrap().starts_with("Running"));
    assert!(first["backtest"]["progress"].as_f64().unwrap() < 1.0);

    let done = c.ok("/backtests/read", json!({"projectId": id, "backtestId": bt})).await;
    assert_eq!(done["backtest"]["completed"], true);
    assert_eq!(done["backtest"]["status"], "Completed.");
    let stats = done["backtest"]["statistics"].clone();
    assert!(stats["Sharpe Ratio"].is_string());
    assert!(done["backtest"]["runtimeStatistics"]["Equity"].is_string());

    // Deterministic: reading again gives the same numbers.
    let again = c.ok("/backtests/read", json!({"projectId": id, "backtestId": bt})).await;
    assert_eq!(again["backtest"]["statistics"], stats);

    let list = c.ok("/backtests/list", json!({"projectId": id, "includeStatistics": true})).await;
    assert_eq!(list["count"], 1);
    assert!(list["backtests"][0]["sharpeRatio"].is_number());

    let chart = c
        .ok(
            "/backtests/chart/read",
            json!({"projectId": id, "backtestId": bt, "name": "Strategy Equity",
                   "count": 20, "start": 1_704_067_200, "end": 1_735_603_200}),
        )
        .await;
    let equity = &chart["chart"]["series"]["Equity"]["values"];
    assert_eq!(equity.as_array().unwrap().len(), 20);

    let orders = c.ok("/backtests/orders/read", json!({"projectId": id, "backtestId": bt, "start": 0, "end": 5})).await;
    assert_eq!(orders["orders"].as_array().unwrap().len(), 5);
    let errors =
        c.fails("/backtests/orders/read", json!({"projectId": id, "backtestId": bt, "start": 0, "end": 500})).await;
    assert!(errors[0].contains("at most 100"));

    c.ok("/backtests/update", json!({"projectId": id, "backtestId": bt, "name": "Renamed", "note": "n"})).await;
    let read = c.ok("/backtests/read", json!({"projectId": id, "backtestId": bt})).await;
    assert_eq!(read["backtest"]["name"], "Renamed");
    assert_eq!(read["backtest"]["note"], "n");

    c.ok("/backtests/delete", json!({"projectId": id, "backtestId": bt})).await;
    c.fails("/backtests/read", json!({"projectId": id, "backtestId": bt})).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn broken_code_fails_to_build() {
    let sim = start(config_with_reads(0)).await;
    let c = Client::demo(&sim);
    let id = new_project(&c, "Broken", "Py").await;
    c.ok("/files/update", json!({"projectId": id, "name": "main.py", "content": "def initialize(self)\n    pass\n"}))
        .await;
    let compile = c.ok("/compile/create", json!({"projectId": id})).await;
    assert_eq!(compile["state"], "BuildError");
    let compile_id = compile["compileId"].as_str().unwrap();
    let read = c.ok("/compile/read", json!({"projectId": id, "compileId": compile_id})).await;
    assert_eq!(read["state"], "BuildError");
    let errors =
        c.fails("/backtests/create", json!({"projectId": id, "compileId": compile_id, "backtestName": "x"})).await;
    assert!(errors[0].contains("build errors"), "{errors:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn object_store_round_trip() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);
    let org = "demo-org-0001";

    let form = reqwest::multipart::Form::new()
        .text("organizationId", org)
        .text("key", "models/weights.json")
        .part("objectData", reqwest::multipart::Part::bytes(b"{\"w\": [1, 2, 3]}".to_vec()).file_name("weights.json"));
    let res = c.signed("/object/set", common::unix_now()).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["success"], true, "{body}");

    let recorded = sim.requests();
    let last = recorded.last().unwrap();
    assert_eq!(last.endpoint, "/object/set");
    assert_eq!(last.body["key"], "models/weights.json");
    assert_eq!(last.body["objectData"], "{\"w\": [1, 2, 3]}");

    // JSON instead of multipart is refused.
    let errors = c.fails("/object/set", json!({"organizationId": org, "key": "a.txt", "objectData": "x"})).await;
    assert!(errors[0].contains("multipart"), "{errors:?}");

    let root = c.ok("/object/list", json!({"organizationId": org})).await;
    assert_eq!(root["objects"][0]["key"], "models");
    assert_eq!(root["objects"][0]["folder"], true);
    let inner = c.ok("/object/list", json!({"organizationId": org, "path": "/models"})).await;
    assert_eq!(inner["objects"][0]["key"], "models/weights.json");
    assert_eq!(inner["objects"][0]["size"], 16);

    let props = c.ok("/object/properties", json!({"organizationId": org, "key": "models/weights.json"})).await;
    assert_eq!(props["metadata"]["size"], 16);
    assert_eq!(props["metadata"]["mime"], "application/json");
    assert_eq!(props["metadata"]["md5"].as_str().unwrap().len(), 32);

    let job = c.ok("/object/get", json!({"organizationId": org, "keys": ["models/weights.json"]})).await;
    let job_id = job["jobId"].as_str().unwrap();
    let url = c.ok("/object/get", json!({"organizationId": org, "jobId": job_id})).await;
    let url = url["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("http://{}/", sim.addr())));
    let zip = common::http().get(url).send().await.unwrap();
    assert_eq!(zip.status(), 200);
    let bytes = zip.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK\x03\x04"));

    c.ok("/object/delete", json!({"organizationId": org, "key": "models/weights.json"})).await;
    let errors = c.fails("/object/properties", json!({"organizationId": org, "key": "models/weights.json"})).await;
    assert!(errors[0].contains("not found"));
    let root = c.ok("/object/list", json!({"organizationId": org})).await;
    assert_eq!(root["objects"], json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn live_algorithm_lifecycle() {
    let sim = start(config_with_reads(0)).await;
    let c = Client::demo(&sim);
    let id = new_project(&c, "Live", "Py").await;
    let compile = c.ok("/compile/create", json!({"projectId": id})).await;
    let compile_id = compile["compileId"].as_str().unwrap();
    let nodes = c.ok("/projects/nodes/read", json!({"projectId": id})).await;
    let node = nodes["nodes"]["live"][0]["id"].as_str().unwrap();

    let create = json!({"versionId": "-1", "projectId": id, "compileId": compile_id,
                        "nodeId": node, "brokerage": {"id": "QuantConnectBrokerage"}});
    let live = c.ok("/live/create", create.clone()).await;
    let deploy = live["deployId"].as_str().unwrap().to_owned();
    assert_eq!(live["live"]["status"], "Running");
    let errors = c.fails("/live/create", create.clone()).await;
    assert!(errors[0].contains("busy") || errors[0].contains("already"), "{errors:?}");

    let running = c.ok("/live/list", json!({"status": "Running"})).await;
    assert_eq!(running["live"][0]["deployId"], deploy.as_str());
    let portfolio = c.ok("/live/portfolio/read", json!({"projectId": id})).await;
    assert_eq!(portfolio["portfolio"]["holdings"].as_object().unwrap().len(), 1);
    let errors = c
        .fails("/live/logs/read", json!({"projectId": id, "algorithmId": deploy, "startLine": 0, "endLine": 251}))
        .await;
    assert!(errors[0].contains("250"), "{errors:?}");
    let logs =
        c.ok("/live/logs/read", json!({"projectId": id, "algorithmId": deploy, "startLine": 0, "endLine": 250})).await;
    assert_eq!(logs["logs"].as_array().unwrap().len(), 250);

    c.ok("/live/commands/create", json!({"projectId": id, "command": {"$type": "OrderCommand", "ticker": "SPY"}}))
        .await;
    c.ok("/live/update/liquidate", json!({"projectId": id})).await;
    let read = c.ok("/live/read", json!({"projectId": id})).await;
    assert_eq!(read["status"], "Liquidated");
    let portfolio = c.ok("/live/portfolio/read", json!({"projectId": id})).await;
    assert!(portfolio["portfolio"]["holdings"].as_object().unwrap().is_empty());
    c.fails("/live/update/stop", json!({"projectId": id})).await;
    let stopped = c.ok("/live/list", json!({"status": "Running"})).await;
    assert_eq!(stopped["live"], json!([]));

    // The node is free again.
    let live = c.ok("/live/create", create).await;
    assert_eq!(live["live"]["status"], "Running");
    c.ok("/live/update/stop", json!({"projectId": id})).await;
    let read = c.ok("/live/read", json!({"projectId": id})).await;
    assert_eq!(read["status"], "Stopped");
    sim.shutdown().await;
}

#[tokio::test]
async fn optimization_progress_and_credit() {
    let sim = start(SimConfig::default()).await;
    let c = Client::demo(&sim);
    let id = new_project(&c, "Opt", "Py").await;
    let compile = c.ok("/compile/create", json!({"projectId": id})).await;
    let compile_id = compile["compileId"].as_str().unwrap();
    let before = c.ok("/account/read", json!({})).await["creditBalance"].as_f64().unwrap();

    let spec = json!({
        "projectId": id, "name": "Grid", "target": "TotalPerformance.PortfolioStatistics.SharpeRatio",
        "targetTo": "max", "strategy": "QuantConnect.Optimizer.Strategies.GridSearchOptimizationStrategy",
        "compileId": compile_id,
        "parameters": [{"name": "fast", "min": 5, "max": 20, "step": 5}, {"name": "slow", "min": 50, "max": 60, "step": 10}],
    });
    let estimate = c.ok("/optimizations/estimate", spec.clone()).await;
    assert_eq!(estimate["estimate"]["time"], 8 * 45);

    let mut create = spec.clone();
    create["estimatedCost"] = json!(2.5);
    create["nodeType"] = json!("O2-8");
    create["parallelNodes"] = json!(2);
    let created = c.ok("/optimizations/create", create).await;
    let opt = created["optimizations"][0]["optimizationId"].as_str().unwrap().to_owned();
    assert_eq!(created["optimizations"][0]["status"], "new");
    let after = c.ok("/account/read", json!({})).await["creditBalance"].as_f64().unwrap();
    assert!((before - after - 2.5).abs() < 0.01, "{before} -> {after}");

    let first = c.ok("/optimizations/read", json!({"optimizationId": opt})).await;
    assert_eq!(first["optimization"]["status"], "running");
    let done = c.ok("/optimizations/read", json!({"optimizationId": opt})).await;
    assert_eq!(done["optimization"]["status"], "completed");
    assert_eq!(done["optimization"]["backtests"].as_object().unwrap().len(), 8);
    let errors = c.fails("/optimizations/abort", json!({"optimizationId": opt})).await;
    assert!(errors[0].contains("completed"));

    c.ok("/optimizations/update", json!({"optimizationId": opt, "name": "Renamed"})).await;
    let list = c.ok("/optimizations/list", json!({"projectId": id})).await;
    assert_eq!(list["optimizations"][0]["name"], "Renamed");
    c.ok("/optimizations/delete", json!({"optimizationId": opt})).await;
    let list = c.ok("/optimizations/list", json!({"projectId": id})).await;
    assert_eq!(list["optimizations"], json!([]));
    sim.shutdown().await;
}
