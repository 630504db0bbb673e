//! Checks every simulator answer against the response schemas of QuantConnect's
//! OpenAPI specification. The specification may not be redistributed, so it is not part
//! of the project: the test reads it from the shared folder beside the work tree when it
//! is there, and says so and passes when it is not.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::{Client, start, unix_now};
use keybridge_qc_sim::{ENDPOINTS, SimConfig};
use serde_json::{Value, json};

fn shared_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/quantconnect").join(name)
}

/// A small OpenAPI 3.0 schema checker: `$ref`, `allOf`, `oneOf`/`anyOf` (any branch
/// may match), object properties and `required`, `additionalProperties`, array items,
/// scalar types, `enum` and `nullable`.
struct Checker {
    spec: Value,
}

impl Checker {
    fn resolve<'a>(&'a self, reference: &str) -> &'a Value {
        let path =
            reference.strip_prefix("#/").unwrap_or_else(|| panic!("only local references are supported: {reference}"));
        let mut node = &self.spec;
        for part in path.split('/') {
            node = node.get(part).unwrap_or_else(|| panic!("unresolvable reference {reference}"));
        }
        node
    }

    fn check(&self, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
        let Some(schema) = schema.as_object() else {
            return; // `true`/`{}`-like schemas accept anything.
        };
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            return self.check(self.resolve(r), value, path, errors);
        }
        if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.check(s, value, path, errors);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                let mut first_failure = None;
                let matched = branches.iter().any(|s| {
                    let mut e = Vec::new();
                    self.check(s, value, path, &mut e);
                    if !e.is_empty() && first_failure.is_none() {
                        first_failure = Some(e.join("; "));
                    }
                    e.is_empty()
                });
                if !matched {
                    errors.push(format!(
                        "{path}: matches no branch of {key} (first branch: {})",
                        first_failure.unwrap_or_default()
                    ));
                }
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !value.is_null()
            && !allowed.iter().any(|a| a == value || same_number(a, value))
        {
            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
        let declared = schema.get("type").and_then(Value::as_str);
        let ty = declared.or_else(|| {
            (schema.contains_key("properties") || schema.contains_key("additionalProperties")).then_some("object")
        });
        let Some(ty) = ty else { return };
        let ok = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            other => panic!("unknown schema type {other} at {path}"),
        };
        if !ok {
            errors.push(format!("{path}: expected {ty}, found {value}"));
            return;
        }
        match value {
            Value::Object(map) => {
                let props = schema.get("properties").and_then(Value::as_object);
                for (k, v) in map {
                    let child = format!("{path}.{k}");
                    match props.and_then(|p| p.get(k)) {
                        Some(s) => self.check(s, v, &child, errors),
                        None => match schema.get("additionalProperties") {
                            Some(Value::Bool(false)) => errors.push(format!("{child}: property not allowed")),
                            Some(s @ Value::Object(_)) => self.check(s, v, &child, errors),
                            _ => {}
                        },
                    }
                }
                for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                    let r = r.as_str().unwrap_or_default();
                    if !map.contains_key(r) {
                        errors.push(format!("{path}.{r}: required property missing"));
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            _ => {}
        }
    }

    fn response_schema(&self, endpoint: &str) -> Option<&Value> {
        self.spec["paths"][endpoint]["post"]["responses"]["200"]["content"]["application/json"].get("schema")
    }

    /// Errors of `value` against the endpoint's 200 schema, each naming endpoint and path.
    fn errors(&self, endpoint: &str, value: &Value) -> Vec<String> {
        let schema = self
            .response_schema(endpoint)
            .unwrap_or_else(|| panic!("the specification has no 200 JSON schema for {endpoint}"));
        let mut errors = Vec::new();
        self.check(schema, value, "$", &mut errors);
        errors.into_iter().map(|e| format!("{endpoint}: {e}")).collect()
    }
}

fn same_number(a: &Value, b: &Value) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x == y)
}

struct Run {
    checker: Checker,
    client: Client,
    checked: BTreeSet<String>,
    failures: Vec<String>,
}

impl Run {
    /// Calls `endpoint`, requires `success: true`, and checks the answer's shape.
    async fn check(&mut self, endpoint: &str, body: Value) -> Value {
        let v = self.client.ok(endpoint, body).await;
        self.failures.extend(self.checker.errors(endpoint, &v));
        self.checked.insert(endpoint.to_owned());
        v
    }
}

fn load_spec() -> Option<Value> {
    let path = shared_file("QuantConnect-Platform-2.0.0.yaml");
    if !path.exists() {
        println!("spec_conformance: the QuantConnect specification was not present at {}; skipping", path.display());
        return None;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    Some(serde_norway::from_str(&text).expect("the specification parses"))
}

#[test]
fn the_checker_names_endpoint_and_path() {
    let Some(spec) = load_spec() else { return };
    let checker = Checker { spec };
    let bad = json!({
        "projects": [{
            "projectId": "12", "organizationId": "o", "name": "n", "modified": "m",
            "created": "c", "ownerId": 1, "language": "Py"
        }],
        "versions": [],
        "success": true,
    });
    let errors = checker.errors("/projects/read", &bad);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("/projects/read: $.projects[0].projectId: expected integer"), "{errors:?}");
    let missing = json!({"projects": [{"projectId": 1}]});
    let errors = checker.errors("/projects/read", &missing);
    assert!(errors.iter().any(|e| e.contains("$.projects[0].language: required property missing")), "{errors:?}");
    let wrong_enum = json!({"compileId": "x", "state": "Done"});
    assert_eq!(checker.errors("/compile/read", &wrong_enum).len(), 1);
    // Both branches of the chart answer accept extra properties, so only a value that
    // breaks each of them is refused.
    let neither = json!({"progress": "half", "chart": {"name": 5}});
    let errors = checker.errors("/backtests/chart/read", &neither);
    assert!(errors.len() == 1 && errors[0].contains("matches no branch of oneOf"), "{errors:?}");
    let loading = json!({"progress": 0.5, "status": "loading", "success": true});
    assert!(checker.errors("/backtests/chart/read", &loading).is_empty());
}

#[tokio::test]
async fn every_endpoint_answers_in_the_documented_shape() {
    let Some(spec) = load_spec() else { return };

    // Every path in the specification is served, and so is every endpoint of the tool list.
    let served: BTreeSet<&str> = ENDPOINTS.iter().copied().collect();
    let spec_paths: Vec<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    for p in &spec_paths {
        assert!(served.contains(p.as_str()), "the simulator does not serve {p}");
    }
    let tools_path = shared_file("tools.json");
    if tools_path.exists() {
        let tools: Value = serde_json::from_str(&std::fs::read_to_string(tools_path).unwrap()).unwrap();
        for tool in tools.as_array().unwrap() {
            let mut endpoints: Vec<&str> =
                tool["extra_endpoints"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
            endpoints.extend(tool["endpoint"].as_str());
            for e in endpoints.into_iter().filter(|e| e.starts_with('/')) {
                assert!(served.contains(e), "tool {} uses {e}, which the simulator does not serve", tool["name"]);
            }
        }
    }

    let sim = start(SimConfig::default()).await;
    let mut run =
        Run { checker: Checker { spec }, client: Client::demo(&sim), checked: BTreeSet::new(), failures: Vec::new() };
    let org = "demo-org-0001";

    run.client.ok("/authenticate", json!({})).await;
    run.checked.insert("/authenticate".into());
    run.check("/account/read", json!({})).await;
    run.check("/lean/versions/read", json!({})).await;

    // Projects, collaborators, nodes.
    let created = run.check("/projects/create", json!({"name": "Conformance", "language": "Py"})).await;
    let pid = created["projects"][0]["projectId"].as_i64().unwrap();
    run.check("/projects/read", json!({"projectId": pid})).await;
    run.check("/projects/read", json!({})).await;
    run.check("/projects/update", json!({"projectId": pid, "name": "Conformance 2", "description": "checked"})).await;
    run.check(
        "/projects/collaboration/create",
        json!({"projectId": pid, "collaboratorUserId": "2000002",
               "collaborationLiveControl": true, "collaborationWrite": true}),
    )
    .await;
    run.check("/projects/collaboration/read", json!({"projectId": pid})).await;
    run.check(
        "/projects/collaboration/update",
        json!({"projectId": pid, "collaboratorUserId": "2000002", "liveControl": false, "write": false}),
    )
    .await;
    run.check("/projects/collaboration/lock/acquire", json!({"projectId": pid, "codeSourceId": "conformance"})).await;
    let nodes = run.check("/projects/nodes/read", json!({"projectId": pid})).await;
    let backtest_node = nodes["nodes"]["backtest"][0]["id"].as_str().unwrap().to_owned();
    let live_node = nodes["nodes"]["live"][0]["id"].as_str().unwrap().to_owned();
    // Node ids as QuantConnect writes them (`LN-c54129e1b4f667613d3f34542b787771`), and a free
    // live node to deploy to.
    let hex = live_node.strip_prefix("LN-").unwrap();
    assert!(hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{live_node}");
    assert_eq!(nodes["nodes"]["live"][0]["busy"], false);
    run.check("/projects/nodes/update", json!({"projectId": pid, "nodes": [backtest_node]})).await;
    run.check("/projects/read", json!({"projectId": pid})).await;

    // Files.
    run.check("/files/create", json!({"projectId": pid, "name": "helper.py", "content": "x = 1\n"})).await;
    let files = run.check("/files/read", json!({"projectId": pid})).await;
    let names: Vec<&str> = files["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["main.py", "research.ipynb", "helper.py"], "a new project has its main file and notebook");
    run.check("/files/read", json!({"projectId": pid, "name": "helper.py"})).await;
    // What QuantConnect refuses, the simulator refuses.
    for bad in ["/abs.py", "../out.py", "a//b.py", "dir\\x.py"] {
        let refused = run.client.fails("/files/create", json!({"projectId": pid, "name": bad, "content": ""})).await;
        assert!(refused[0].contains("is not valid"), "{bad}: {refused:?}");
    }
    run.client.ok("/projects/create", json!({"name": "Taken", "language": "Py"})).await;
    let refused = run.client.fails("/projects/update", json!({"projectId": pid, "name": "Taken"})).await;
    assert!(refused[0].contains("A project named Taken already exists"), "{refused:?}");
    let refused = run.client.fails("/projects/read", json!({"projectId": 999_999_999})).await;
    assert!(refused[0].contains("not found"), "{refused:?}");
    run.check("/files/update", json!({"projectId": pid, "name": "helper.py", "content": "x = 2\n"})).await;
    run.check("/files/update", json!({"projectId": pid, "name": "helper.py", "newName": "helpers.py"})).await;
    run.check(
        "/files/patch",
        json!({"projectId": pid, "patch": "--- a/helpers.py\n+++ b/helpers.py\n@@ -1 +1 @@\n-x = 2\n+x = 3\n"}),
    )
    .await;

    // Compile and backtest; the first read of a job is "in progress", the second done.
    let compile = run.check("/compile/create", json!({"projectId": pid})).await;
    let cid = compile["compileId"].as_str().unwrap().to_owned();
    let read_compile = json!({"projectId": pid, "compileId": cid});
    run.check("/compile/read", read_compile.clone()).await;
    let built = run.check("/compile/read", read_compile).await;
    assert_eq!(built["state"], "BuildSuccess");

    let bt = run
        .check(
            "/backtests/create",
            json!({"projectId": pid, "compileId": cid, "backtestName": "Shape",
                   "parameters": {"fast": 10, "mode": "a"}}),
        )
        .await;
    let bid = bt["backtest"]["backtestId"].as_str().unwrap().to_owned();
    assert_eq!(bt["backtest"]["status"], "In Queue...", "a new backtest is queued first");
    assert_eq!(bt["backtest"]["parameterSet"], json!({"fast": 10, "mode": "a"}));
    let ids = json!({"projectId": pid, "backtestId": bid});
    run.check("/backtests/list", json!({"projectId": pid, "includeStatistics": true})).await;
    let chart = json!({"projectId": pid, "backtestId": bid, "name": "Strategy Equity",
                       "count": 12, "start": 1_704_067_200, "end": 1_735_603_200});
    run.check("/backtests/chart/read", chart.clone()).await; // still loading
    run.check("/backtests/read/report", ids.clone()).await; // still generating
    // The first read says "Running: NN%", a pattern the specification writes as an enum
    // entry; only its success is required here.
    run.client.ok("/backtests/read", ids.clone()).await;
    let done = run.check("/backtests/read", ids.clone()).await;
    assert_eq!(done["backtest"]["completed"], true);
    run.check("/backtests/list", json!({"projectId": pid, "includeStatistics": true})).await;
    run.check("/backtests/list", json!({"projectId": pid})).await;
    run.check("/backtests/chart/read", chart).await;
    for name in ["Drawdown", "Benchmark", "Portfolio Turnover"] {
        run.check(
            "/backtests/chart/read",
            json!({"projectId": pid, "backtestId": bid, "name": name,
                   "count": 5, "start": 1_704_067_200, "end": 1_735_603_200}),
        )
        .await;
    }
    run.check("/backtests/orders/read", json!({"projectId": pid, "backtestId": bid, "start": 0, "end": 10})).await;
    run.check("/backtests/read/insights", json!({"projectId": pid, "backtestId": bid, "start": 0, "end": 10})).await;
    run.check("/backtests/read/report", ids.clone()).await;
    run.check("/backtests/update", json!({"projectId": pid, "backtestId": bid, "name": "Shape 2", "note": "checked"}))
        .await;

    // Optimizations.
    let spec_body = json!({
        "projectId": pid, "name": "Grid",
        "target": "TotalPerformance.PortfolioStatistics.SharpeRatio", "targetTo": "max",
        "targetValue": 1.5,
        "strategy": "QuantConnect.Optimizer.Strategies.GridSearchOptimizationStrategy",
        "compileId": cid,
        "parameters": [{"name": "fast", "min": 5, "max": 15, "step": 5}],
        "constraints": [{"target": "TotalPerformance.PortfolioStatistics.Drawdown",
                         "operator": "LessOrEqual", "targetValue": 0.25}],
    });
    run.check("/optimizations/estimate", spec_body.clone()).await;
    let mut create = spec_body.clone();
    create["estimatedCost"] = json!(1.0);
    create["nodeType"] = json!("O2-8");
    create["parallelNodes"] = json!(2);
    let opt = run.check("/optimizations/create", create.clone()).await;
    let oid = opt["optimizations"][0]["optimizationId"].as_str().unwrap().to_owned();
    run.check("/optimizations/read", json!({"optimizationId": oid})).await;
    run.check("/optimizations/read", json!({"optimizationId": oid})).await;
    run.check("/optimizations/list", json!({"projectId": pid})).await;
    run.check("/optimizations/update", json!({"optimizationId": oid, "name": "Grid 2"})).await;
    let second = run.check("/optimizations/create", create).await;
    let oid2 = second["optimizations"][0]["optimizationId"].as_str().unwrap().to_owned();
    run.check("/optimizations/abort", json!({"optimizationId": oid2})).await;
    run.check("/optimizations/read", json!({"optimizationId": oid2})).await;

    // Live trading.
    let res = run.client.post("/live/auth0/authorize", &json!({"brokerage": "alpaca"})).await;
    assert_eq!(res.status(), 302, "/live/auth0/authorize redirects");
    let location = res.headers().get("location").unwrap().to_str().unwrap();
    assert!(location.starts_with(&format!("http://{}/", sim.addr())), "{location}");
    run.checked.insert("/live/auth0/authorize".into());
    run.check("/live/auth0/read", json!({"brokerage": "alpaca"})).await;
    let live = run
        .check(
            "/live/create",
            json!({"versionId": "-1", "projectId": pid, "compileId": cid, "nodeId": live_node,
                   "brokerage": {"id": "QuantConnectBrokerage"},
                   "dataProviders": {"QuantConnectBrokerage": {"id": "QuantConnectBrokerage"}}}),
        )
        .await;
    let deploy = live["deployId"].as_str().unwrap().to_owned();
    assert_eq!(live["source"], "api-v2");
    run.check("/live/read", json!({"projectId": pid})).await;
    run.check("/live/list", json!({})).await;
    run.check("/live/list", json!({"projectId": pid, "status": "Running"})).await;
    let now = unix_now();
    run.check(
        "/live/chart/read",
        json!({"projectId": pid, "name": "Strategy Equity", "count": 10, "start": now - 86_400, "end": now}),
    )
    .await;
    run.check(
        "/live/logs/read",
        json!({"projectId": pid, "algorithmId": deploy, "startLine": 0, "endLine": 100, "format": "json"}),
    )
    .await;
    let portfolio = run.check("/live/portfolio/read", json!({"projectId": pid})).await;
    assert!(
        !portfolio["portfolio"]["holdings"].as_object().unwrap().is_empty(),
        "a running algorithm holds a position"
    );
    let orders = run.check("/live/orders/read", json!({"projectId": pid, "start": 0, "end": 100})).await;
    let working = orders["orders"].as_array().unwrap().iter().filter(|o| o["status"] == 1).count();
    assert_eq!(working, 1, "a running algorithm's newest order is still working");
    run.check("/live/insights/read", json!({"projectId": pid, "start": 0, "end": 50})).await;
    run.check(
        "/live/commands/create",
        json!({"projectId": pid, "command": {"$type": "OrderCommand", "ticker": "SPY", "quantity": 1}}),
    )
    .await;
    run.check(
        "/live/commands/broadcast",
        json!({"organizationId": org, "command": {"$type": "MyCommand"}, "excludeProjectId": 1}),
    )
    .await;
    run.check("/live/update/liquidate", json!({"projectId": pid})).await;
    run.check("/live/read", json!({"projectId": pid})).await;
    run.check("/live/portfolio/read", json!({"projectId": pid})).await;
    run.check("/live/orders/read", json!({"projectId": pid, "start": 0, "end": 100})).await;
    run.check(
        "/live/create",
        json!({"versionId": "-1", "projectId": pid, "compileId": cid, "nodeId": live_node,
               "brokerage": {"id": "QuantConnectBrokerage"}}),
    )
    .await;
    run.check("/live/update/stop", json!({"projectId": pid})).await;
    run.check("/live/list", json!({"status": "Stopped"})).await;

    // Object store.
    let form = reqwest::multipart::Form::new()
        .text("organizationId", org)
        .text("key", "conformance/data.json")
        .part("objectData", reqwest::multipart::Part::bytes(b"{\"a\": 1}".to_vec()).file_name("data.json"));
    let res = run.client.signed("/object/set", unix_now()).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["success"], true, "{v}");
    run.failures.extend(run.checker.errors("/object/set", &v));
    run.checked.insert("/object/set".into());
    run.check("/object/properties", json!({"organizationId": org, "key": "conformance/data.json"})).await;
    let job = run.check("/object/get", json!({"organizationId": org, "keys": ["conformance/data.json"]})).await;
    let job_id = job["jobId"].as_str().unwrap().to_owned();
    run.check("/object/get", json!({"organizationId": org, "jobId": job_id})).await;
    let root = run.check("/object/list", json!({"organizationId": org})).await;
    assert_eq!(root["path"], "", "paths without a leading slash");
    let folder = root["objects"].as_array().unwrap().iter().find(|o| o["key"] == "conformance").unwrap().clone();
    assert_eq!(folder["mime"], "directory");
    let inside = run.check("/object/list", json!({"organizationId": org, "path": "conformance"})).await;
    assert_eq!(inside["path"], "conformance");
    assert_eq!(inside["objects"][0]["key"], "conformance/data.json");
    run.check("/object/delete", json!({"organizationId": org, "key": "conformance/data.json"})).await;

    // AI tools.
    let files = json!([{"name": "main.py", "content": "class A(QCAlgorithm):\n    def Initialize(self):\n        self.SetCash(100000)\n"}]);
    run.check("/ai/tools/backtest-init", json!({"language": "Py", "files": files})).await;
    run.check(
        "/ai/tools/backtest-init",
        json!({"language": "Py", "files": [{"name": "main.py", "content": "x = (\n"}]}),
    )
    .await;
    run.check("/ai/tools/complete", json!({"language": "Py", "sentence": "self.add", "responseSizeLimit": 3})).await;
    run.check("/ai/tools/complete", json!({"language": "C#", "sentence": "Set"})).await;
    run.check(
        "/ai/tools/error-enhance",
        json!({"language": "Py", "error": {"message": "NameError: name 'x' is not defined", "stacktrace": "line 3"}}),
    )
    .await;
    run.check("/ai/tools/pep8-convert", json!({"files": files})).await;
    let checked = run.check("/ai/tools/syntax-check", json!({"language": "Py", "files": files})).await;
    assert_eq!((checked["version"].as_f64(), &checked["payloadType"]), (Some(2.0), &json!("StringArray")));
    run.check(
        "/ai/tools/syntax-check",
        json!({"language": "Py", "files": [{"name": "main.py", "content": "def f(\n"}]}),
    )
    .await;
    run.check(
        "/ai/tools/search",
        json!({"language": "Py", "criteria": [{"input": "moving average", "type": "Docs", "count": 2},
                                               {"input": "rsi", "type": "Examples", "count": 1}]}),
    )
    .await;

    // Deletions last.
    run.check("/projects/collaboration/delete", json!({"projectId": pid, "collaboratorId": "2000002"})).await;
    run.check("/files/delete", json!({"projectId": pid, "name": "helpers.py"})).await;
    run.check("/backtests/delete", ids).await;
    run.check("/optimizations/delete", json!({"optimizationId": oid})).await;
    run.check("/projects/delete", json!({"projectId": pid})).await;

    let unchecked: Vec<&str> = ENDPOINTS.iter().copied().filter(|e| !run.checked.contains(*e)).collect();
    sim.shutdown().await;
    assert!(unchecked.is_empty(), "endpoints not exercised: {unchecked:?}");
    assert!(run.failures.is_empty(), "responses that do not match the specification:\n{}", run.failures.join("\n"));
}
