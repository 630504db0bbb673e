//! Scopes, policy, approvals, revocation and pause, through the real socket.

use std::time::Duration;

use keybridge_broker_proto::{AdminCommand, ApprovalDecision, ErrorCode, RequestBody, Response};
use keybridge_testkit::{Bridge, Env, admin_at, project_args};
use serde_json::json;

const LONG: Duration = Duration::from_secs(30);

/// A project with a deployed live algorithm, made directly against the simulator's API
/// through an admin-free path: the trader client itself.
async fn live_project(bridge: &mut Bridge) -> i64 {
    let created = bridge.call("create_project", json!({"name": "Momentum", "language": "Py"})).await.unwrap();
    created["projects"][0]["projectId"].as_i64().unwrap()
}

#[tokio::test]
async fn a_read_only_client_sees_and_runs_only_reads() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("read-only", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let tools = bridge.tools().await.unwrap();
    assert!(tools.contains(&"read_account".to_string()) && tools.contains(&"read_backtest".to_string()));
    assert!(!tools.iter().any(|t| t.starts_with("create_") || t.starts_with("delete_")), "{tools:?}");
    bridge.call("read_account", json!({})).await.expect("reads run");

    for (tool, args, scope) in [
        ("create_project", json!({"name": "x", "language": "Py"}), "qc:projects:write"),
        ("stop_live_algorithm", project_args(1), "qc:live:execute"),
    ] {
        let err = bridge.call(tool, args).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::MissingScope, "{tool}: {err:?}");
        assert!(err.message.contains(scope) && err.message.contains("grant"), "{}", err.message);
    }
    assert_eq!(env.sim.request_count("/projects/create"), 0, "nothing reached QuantConnect");
    assert_eq!(env.sim.request_count("/live/update/stop"), 0);

    let err = bridge.call("drop_database", json!({})).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::UnknownTool);
    let err = bridge.call("read_backtest", json!({"projectId": 1})).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArguments);
    assert!(err.message.contains("backtestId"), "{}", err.message);
}

#[tokio::test]
async fn denied_and_timed_out_approvals_never_reach_quantconnect() {
    let env = Env::start(Duration::from_secs(1)).await;
    let (client, key) = env.add_client("trader", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let project = live_project(&mut bridge).await;

    // Timed out: nobody answers within the 1 s timeout.
    let err = bridge.call("stop_live_algorithm", project_args(project)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ApprovalTimedOut, "{err:?}");
    assert_eq!(bridge.waited.len(), 1, "the bridge was told it is waiting");
    assert!(
        bridge.waited[0].contains("Momentum") && bridge.waited[0].contains("stop_live_algorithm"),
        "{}",
        bridge.waited[0]
    );

    // Denied.
    let socket = env.socket.clone();
    let token = bridge.token();
    let call = tokio::spawn(async move {
        let mut other = bridge;
        let result = other.call_with(token, "stop_live_algorithm", project_args(project)).await;
        (other, result)
    });
    let pending = env.pending_approval().await;
    assert_eq!(pending["tool"], "stop_live_algorithm");
    let decided = env
        .admin(AdminCommand::ApprovalDecide {
            approval_id: pending["id"].as_str().unwrap().into(),
            decision: ApprovalDecision::Deny,
        })
        .await
        .unwrap();
    assert_eq!(decided["decision"], "denied");
    let (_bridge, result) = call.await.unwrap();
    assert_eq!(result.unwrap_err().code, ErrorCode::ApprovalDenied);
    assert_eq!(env.sim.request_count("/live/update/stop"), 0, "denied calls never reach QuantConnect");
    let _ = socket;
}

#[tokio::test]
async fn an_approval_covers_only_the_arguments_it_was_given() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("admin", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let a = live_project(&mut bridge).await;
    let b = live_project(&mut bridge).await;
    let token = bridge.token();

    let approve_next = |env: &Env| {
        let socket = env.socket.clone();
        async move {
            let pending = keybridge_testkit::pending_at(&socket).await;
            let id = pending["id"].as_str().unwrap().to_string();
            admin_at(&socket, AdminCommand::ApprovalDecide { approval_id: id, decision: ApprovalDecision::Approve })
                .await
                .unwrap();
            pending
        }
    };
    let approver = tokio::spawn(approve_next(&env));
    bridge.call_with(token.clone(), "delete_project", project_args(a)).await.expect("approved");
    let approved = approver.await.unwrap();
    assert_eq!(approved["arguments"]["projectId"], a);
    assert_eq!(env.sim.request_count("/projects/delete"), 1);

    // Same tool, other arguments: asks again.
    let approver = tokio::spawn(approve_next(&env));
    bridge.call_with(token, "delete_project", project_args(b)).await.expect("approved again");
    let second = approver.await.unwrap();
    assert_eq!(second["arguments"]["projectId"], b);
    assert_ne!(approved["arguments_digest"], second["arguments_digest"]);
    assert_eq!(bridge.waited.len(), 2, "each call waited for its own approval");
}

#[tokio::test]
async fn an_allowance_skips_asking_for_that_tool_in_that_session() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("admin", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let project = live_project(&mut bridge).await;
    let approver = answer_next_question(&env, ApprovalDecision::AllowFor { minutes: 5 });
    let delete = json!({"projectId": project, "backtestId": "not-there"});
    let _ = bridge.call("delete_backtest", delete.clone()).await;
    approver.await.unwrap();
    let waited = bridge.waited.len();
    let _ = bridge.call("delete_backtest", delete).await;
    assert_eq!(bridge.waited.len(), waited, "the second call did not ask");
    let audit = env.admin(AdminCommand::AuditTail { last: 50, follow: false }).await.unwrap();
    assert!(audit.to_string().contains("\"allowance\""), "the allowance is audited");
}

#[tokio::test]
async fn a_live_trading_call_is_approved_on_its_own_never_for_a_while() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("trader", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let project = live_project(&mut bridge).await;
    let socket = env.socket.clone();
    let approver = tokio::spawn(async move {
        let pending = keybridge_testkit::pending_at(&socket).await;
        let id: String = pending["id"].as_str().unwrap().into();
        let decide = |decision| AdminCommand::ApprovalDecide { approval_id: id.clone(), decision };
        let refused = admin_at(&socket, decide(ApprovalDecision::AllowFor { minutes: 5 })).await.unwrap_err();
        // Still waiting: the refusal answered nothing.
        admin_at(&socket, decide(ApprovalDecision::Approve)).await.unwrap();
        refused
    });
    let command = json!({"projectId": project, "command": {"$type": "OrderCommand", "quantity": 1}});
    let _ = bridge.call("create_live_command", command.clone()).await;
    let refused = approver.await.unwrap();
    assert_eq!(env.sim.request_count("/live/commands/create"), 1, "approved once, it was sent");
    assert!(refused.message.contains("cannot be allowed for 5 minutes"), "{refused:?}");
    let audit = env.admin(AdminCommand::AuditTail { last: 50, follow: false }).await.unwrap();
    assert!(!audit.to_string().contains("\"allowance\""), "no allowance was recorded: {audit}");
    let socket = env.socket.clone();
    let second = tokio::spawn(async move { keybridge_testkit::pending_at(&socket).await });
    let waited = bridge.waited.len();
    let call = tokio::spawn(async move { bridge.call("create_live_command", command).await });
    let pending = second.await.unwrap();
    assert_eq!(pending["tool"], "create_live_command", "the next call asks again");
    assert_eq!(waited, 1);
    call.abort();
}

#[tokio::test]
async fn revocation_takes_effect_on_the_next_call_and_survives_a_restart() {
    let mut env = Env::start(LONG).await;
    let (client, key) = env.add_client("research", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    bridge.call("read_account", json!({})).await.unwrap();

    // Ending the session kills its token at once.
    env.admin(AdminCommand::SessionEnd { session_id: bridge.session.session_id.clone() }).await.unwrap();
    assert_eq!(bridge.call("read_account", json!({})).await.unwrap_err().code, ErrorCode::Revoked);

    // A new session works until the client is revoked.
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let old_token = bridge.token();
    env.admin(AdminCommand::ClientRevoke { client_id: client.clone() }).await.unwrap();
    env.admin(AdminCommand::ClientRevoke { client_id: client.clone() }).await.expect("revoking twice is fine");
    let err = bridge.call("read_account", json!({})).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Revoked, "{err:?}");
    assert!(matches!(bridge.request(RequestBody::Refresh).await, Err(e) if e.code == ErrorCode::Revoked));

    env.restart().await;
    let err =
        Bridge::connect(&env.socket, &client, key.as_deref()).await.err().expect("a revoked client cannot connect");
    assert_eq!(err.code, ErrorCode::Revoked);
    // The old token, validly signed, still does nothing.
    let (other, other_key) = env.add_client("research", true).await;
    let mut fresh = Bridge::connect(&env.socket, &other, other_key.as_deref()).await.unwrap();
    let err = fresh.call_with(old_token.clone(), "read_account", json!({})).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TokenInvalid, "a connection accepts only its own session's tokens");
    let err = env.broker.list_tools(None, &old_token).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Revoked, "and the session behind it is gone: {err}");
}

#[tokio::test]
async fn pause_refuses_every_call_until_resumed() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("research", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    env.admin(AdminCommand::Pause).await.unwrap();
    let before = env.sim.request_count("/account/read");
    let err = bridge.call("read_account", json!({})).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Paused);
    assert!(err.message.contains("keybridge resume"), "{}", err.message);
    assert_eq!(env.sim.request_count("/account/read"), before);
    env.admin(AdminCommand::Resume).await.unwrap();
    bridge.call("read_account", json!({})).await.unwrap();
}

#[tokio::test]
async fn refresh_gives_a_new_token_for_the_same_session() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("research", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let Response::Token { session, .. } = bridge.request(RequestBody::Refresh).await.unwrap() else { panic!() };
    assert_eq!(session.session_id, bridge.session.session_id);
    assert_ne!(session.token.expose(), bridge.session.token.expose());
    bridge.call_with(session.token, "read_account", json!({})).await.unwrap();
}

#[tokio::test]
async fn client_keys_are_checked() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("research", true).await;
    let key = key.unwrap();
    assert_eq!(key.len(), 64, "256 bits, hex");
    let err = Bridge::connect(&env.socket, &client, Some(&"0".repeat(64))).await.err().unwrap();
    assert_eq!(err.code, ErrorCode::PairingDenied);
    let err = Bridge::connect(&env.socket, &client, None).await.err().unwrap();
    assert!(err.message.contains("KEYBRIDGE_CLIENT_KEY"), "{}", err.message);
    let shown = env.admin(AdminCommand::ClientShow { client_id: client.clone() }).await.unwrap();
    assert!(!shown.to_string().contains(&key), "the key is never shown again");
    let stored = std::fs::read_to_string(keybridge_testkit::data_dir(env.dir.path()).join("clients.json")).unwrap();
    assert!(!stored.contains(&key), "only a hash of the key is stored");
    Bridge::connect(&env.socket, &client, Some(&key)).await.unwrap();
}

#[tokio::test]
async fn a_call_cancelled_after_it_was_sent_still_runs_and_is_audited() {
    use keybridge_broker_proto::{Request, write_frame};
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("research", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    env.sim.add_fault(keybridge_qc_sim::FaultRule {
        endpoint: Some("/projects/create".into()),
        fault: keybridge_qc_sim::Fault::Latency(Duration::from_millis(400)),
        times: Some(1),
    });
    let call = RequestBody::Call {
        token: bridge.token(),
        tool: "create_project".into(),
        arguments: json!({"name": "Cancelled", "language": "Py"}),
    };
    write_frame(&mut bridge.stream, &Request { id: 50, body: call }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    write_frame(&mut bridge.stream, &Request { id: 51, body: RequestBody::Cancel { target: 50 } }).await.unwrap();
    let cancelled: Response = keybridge_broker_proto::read_frame(&mut bridge.stream).await.unwrap();
    assert!(matches!(cancelled, Response::Error { id: Some(50), .. }), "{cancelled:?}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(env.sim.request_count("/projects/create"), 1, "the request had gone out");
    let audit = env.admin(AdminCommand::AuditTail { last: 20, follow: false }).await.unwrap();
    let record = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["event"]["tool"] == "create_project")
        .unwrap_or_else(|| panic!("no record of the cancelled call: {audit}"));
    assert_eq!(record["event"]["outcome"], "ok", "it ran to completion and says so: {record}");
    let listed = bridge.call("list_projects", json!({})).await.unwrap();
    assert!(listed.to_string().contains("Cancelled"), "and QuantConnect has the project");
}

#[tokio::test]
async fn a_session_cannot_bury_the_human_in_approval_requests() {
    use keybridge_broker_proto::{Request, read_frame, write_frame};
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("admin", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let limit = keybridge_broker::MAX_WAITING_PER_SESSION as u64;
    for id in 0..=limit {
        let call = RequestBody::Call {
            token: bridge.token(),
            tool: "delete_project".into(),
            arguments: project_args(id as i64),
        };
        write_frame(&mut bridge.stream, &Request { id: 100 + id, body: call }).await.unwrap();
        if id < limit {
            // Let each one register before the next.
            let Response::Waiting { .. } = read_frame(&mut bridge.stream).await.unwrap() else {
                panic!("expected waiting")
            };
        }
    }
    match read_frame::<Response, _>(&mut bridge.stream).await.unwrap() {
        Response::Error { id, error } => {
            assert_eq!(id, Some(100 + limit));
            assert!(error.message.contains("already wait for approval"), "{}", error.message);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(env.admin(AdminCommand::ApprovalsList).await.unwrap().as_array().unwrap().len(), limit as usize);
}

#[tokio::test]
async fn forty_simultaneous_questions_open_no_more_than_the_cap() {
    use keybridge_broker_proto::{Request, read_frame, write_frame};
    let env = Env::start(LONG).await;
    // The project-name look-up that builds each question is slow: the window in which the
    // cap used to be checked but not yet taken.
    let (client, key) = env.add_client("admin", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let created = bridge.call("create_project", json!({"name": "Slow", "language": "Py"})).await.unwrap();
    let created = created["projects"][0]["projectId"].as_i64().unwrap();
    env.sim.add_fault("/projects/read=latency:300ms".parse().unwrap());
    for id in 0..40u64 {
        let call = RequestBody::Call {
            token: bridge.token(),
            tool: "delete_project".into(),
            arguments: project_args(created),
        };
        write_frame(&mut bridge.stream, &Request { id: 1000 + id, body: call }).await.unwrap();
    }
    let limit = keybridge_broker::MAX_WAITING_PER_SESSION;
    let (mut waiting, mut refused) = (std::collections::HashSet::new(), 0);
    while waiting.len() + refused < 40 {
        match read_frame::<Response, _>(&mut bridge.stream).await.unwrap() {
            Response::Waiting { id, .. } => {
                waiting.insert(id);
            }
            Response::Error { error, .. } => {
                assert!(error.message.contains("already wait for approval"), "{}", error.message);
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(waiting.len(), limit, "questions opened");
    assert_eq!(env.admin(AdminCommand::ApprovalsList).await.unwrap().as_array().unwrap().len(), limit);
}

#[tokio::test]
async fn pausing_denies_the_questions_already_open() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("admin", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let token = bridge.token();
    let call = tokio::spawn(async move { bridge.call_with(token, "delete_project", project_args(9)).await });
    env.pending_approval().await;
    env.admin(AdminCommand::Pause).await.unwrap();
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::ApprovalDenied, "{err:?}");
    assert!(env.admin(AdminCommand::ApprovalsList).await.unwrap().as_array().unwrap().is_empty());
    assert_eq!(env.sim.request_count("/projects/delete"), 0);
}

#[tokio::test]
async fn pause_survives_a_restart_and_an_edited_client_file_is_refused() {
    let mut env = Env::start(LONG).await;
    let (client, key) = env.add_client("read-only", true).await;
    env.admin(AdminCommand::Pause).await.unwrap();
    env.restart().await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    assert_eq!(bridge.call("read_account", json!({})).await.unwrap_err().code, ErrorCode::Paused, "still paused");
    env.admin(AdminCommand::Resume).await.unwrap();

    // Someone who can write the data folder but not the keychain widens a client's scopes.
    let file = keybridge_testkit::data_dir(env.dir.path()).join("clients.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("qc:account:read", "qc:live:execute", 1)).unwrap();
    let err = env.open_again(false).unwrap_err();
    assert!(err.to_string().contains("changed outside Keybridge"), "{err}");
}

#[tokio::test]
async fn one_clients_slow_calls_do_not_hold_up_another_client() {
    use keybridge_broker_proto::{Request, write_frame};
    let env = Env::start(LONG).await;
    let (busy, busy_key) = env.add_client("read-only", true).await;
    let (other, other_key) = env.add_client("read-only", true).await;
    let mut hog = Bridge::connect(&env.socket, &busy, busy_key.as_deref()).await.unwrap();
    let mut bridge = Bridge::connect(&env.socket, &other, other_key.as_deref()).await.unwrap();
    // Eight slow calls from one client: as many as the account may have in flight.
    env.sim.add_fault("/backtests/read=latency:3s".parse().unwrap());
    for id in 0..8u64 {
        let call = RequestBody::Call {
            token: hog.token(),
            tool: "read_backtest".into(),
            arguments: json!({"projectId": 1, "backtestId": format!("b{id}")}),
        };
        write_frame(&mut hog.stream, &Request { id: 500 + id, body: call }).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    bridge.call("read_account", json!({})).await.unwrap();
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "another client's read waited {waited:?} behind the slow calls");
}

#[tokio::test]
async fn an_audit_record_keeps_a_bounded_summary_of_large_arguments() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("research", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let parameters: serde_json::Map<String, serde_json::Value> =
        (0..20_000).map(|n| (format!("p{n}"), json!(n))).collect();
    let args = json!({"projectId": 1, "compileId": "c-1", "backtestName": "Huge", "parameters": parameters});
    let _ = bridge.call("create_backtest", args).await;
    let records = env.broker.audit_log().read_all().unwrap();
    let call = records.iter().rev().find(|r| r.event["tool"] == "create_backtest").expect("the call is recorded");
    let stored = serde_json::to_string(&call.event).unwrap();
    assert!(stored.len() < 4096, "the record is {} bytes", stored.len());
    assert_eq!(call.event["args"]["backtestName"], "Huge", "small arguments stay readable: {}", call.event["args"]);
    assert!(call.event["args"]["parameters"].as_str().unwrap().contains("in the digest"), "{}", call.event["args"]);
    assert!(call.event["args_digest"].as_str().is_some_and(|d| d.len() == 64));
}

async fn client_with_scopes(env: &Env, scopes: &[&str]) -> (String, Option<String>) {
    let spec = keybridge_broker_proto::ClientSpec {
        name: "narrow".into(),
        account: "main".into(),
        preset: None,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        policy: Default::default(),
        token_ttl_secs: None,
        with_key: true,
    };
    let added = env.admin(AdminCommand::ClientAdd { spec }).await.unwrap();
    (added["client_id"].as_str().unwrap().to_string(), added["client_key"].as_str().map(str::to_string))
}

#[tokio::test]
async fn what_the_broker_looks_up_reaches_the_human_and_the_log_not_a_client_that_may_not_read_it() {
    let env = Env::start(LONG).await;
    let (owner, owner_key) = env.add_client("research", true).await;
    let mut setup = Bridge::connect(&env.socket, &owner, owner_key.as_deref()).await.unwrap();
    let project = setup.call("create_project", json!({"name": "Secret Alpha", "language": "Py"})).await.unwrap();
    let project = project["projects"][0]["projectId"].as_i64().unwrap();

    let (narrow, narrow_key) = client_with_scopes(&env, &["qc:projects:delete"]).await;
    let mut bridge = Bridge::connect(&env.socket, &narrow, narrow_key.as_deref()).await.unwrap();
    let socket = env.socket.clone();
    let deny = tokio::spawn(async move {
        let pending = keybridge_testkit::pending_at(&socket).await;
        let shown = pending["summary"].as_str().unwrap().to_string();
        let decide = AdminCommand::ApprovalDecide {
            approval_id: pending["id"].as_str().unwrap().into(),
            decision: ApprovalDecision::Deny,
        };
        admin_at(&socket, decide).await.unwrap();
        shown
    });
    let err = bridge.call("delete_project", project_args(project)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ApprovalDenied);
    let human = deny.await.unwrap();
    assert!(
        human.contains("Secret Alpha") && human.contains(&format!("Project {project}")),
        "the human sees it: {human}"
    );
    assert_eq!(bridge.waited.len(), 1);
    assert!(!bridge.waited[0].contains("Secret Alpha"), "a client that may not read projects: {}", bridge.waited[0]);
    assert!(bridge.waited[0].contains(&format!("Project {project}")), "{}", bridge.waited[0]);
    let records = env.broker.audit_log().read_all().unwrap();
    let lookup = records.iter().find(|r| r.event["kind"] == "broker_lookup").expect("the look-up is audited");
    assert_eq!(lookup.event["tool"], "read_project");
    assert_eq!(lookup.event["for_tool"], "delete_project");
    assert_eq!(lookup.event["client"], narrow.as_str());
}

#[tokio::test]
async fn padding_and_quotes_cannot_hide_live_money_or_fake_the_project_id() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("trader", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let project =
        bridge.call("create_project", json!({"name": "Real\u{201D} (id 1)", "language": "Py"})).await.unwrap();
    let project = project["projects"][0]["projectId"].as_i64().unwrap();
    let mut brokerage = serde_json::Map::new();
    brokerage.insert("id".into(), json!("InteractiveBrokersBrokerage"));
    for n in 0..40 {
        brokerage.insert(format!("aaa-padding-{n:02}"), json!("x".repeat(40)));
    }
    brokerage.insert("ib-trading-mode".into(), json!("live"));
    let args = json!({"versionId": "-1", "projectId": project, "compileId": "c-1", "nodeId": "LN-1",
        "brokerage": brokerage, "dataProviders": {"QuantConnectBrokerage": {"id": "QuantConnectBrokerage"}}});
    let socket = env.socket.clone();
    let deny = tokio::spawn(async move {
        let pending = keybridge_testkit::pending_at(&socket).await;
        let decide = AdminCommand::ApprovalDecide {
            approval_id: pending["id"].as_str().unwrap().into(),
            decision: ApprovalDecision::Deny,
        };
        admin_at(&socket, decide).await.unwrap();
        pending["summary"].as_str().unwrap().to_string()
    });
    let _ = bridge.call("create_live_algorithm", args).await;
    let summary = deny.await.unwrap();
    let live = summary.find("LIVE MONEY").unwrap_or_else(|| panic!("live money is not said: {summary}"));
    let padding = summary.find("aaa-padding").unwrap_or(usize::MAX);
    assert!(live < padding && live < 300, "live money comes first: {summary}");
    let id = summary
        .find(&format!("Project {project}, named \"Real\\\u{201D} (id 1)\""))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(id < padding, "{summary}");
}

/// Answer the next question with `decision`, once it is asked; what it showed the human.
fn answer_next_question(env: &Env, decision: ApprovalDecision) -> tokio::task::JoinHandle<serde_json::Value> {
    let socket = env.socket.clone();
    tokio::spawn(async move {
        let pending = keybridge_testkit::pending_at(&socket).await;
        let decide = AdminCommand::ApprovalDecide { approval_id: pending["id"].as_str().unwrap().into(), decision };
        admin_at(&socket, decide).await.unwrap();
        pending
    })
}

/// Deny the next question, once it is asked; what it showed the human.
fn deny_next_question(env: &Env) -> tokio::task::JoinHandle<serde_json::Value> {
    answer_next_question(env, ApprovalDecision::Deny)
}

/// An admin client whose policy for `scope` is `decision`: its id and its key.
async fn admin_client_where(env: &Env, name: &str, scope: &str, decision: &str) -> (String, Option<String>) {
    let spec = keybridge_broker_proto::ClientSpec {
        name: name.into(),
        account: "main".into(),
        preset: Some("admin".into()),
        scopes: Vec::new(),
        policy: [(scope.to_string(), decision.to_string())].into(),
        token_ttl_secs: None,
        with_key: true,
    };
    let added = env.admin(AdminCommand::ClientAdd { spec }).await.unwrap();
    (added["client_id"].as_str().unwrap().to_string(), added["client_key"].as_str().map(str::to_string))
}

/// A successful compile of `project`: its id.
async fn compiled(bridge: &mut Bridge, project: i64) -> String {
    let compile = bridge.call("create_compile", project_args(project)).await.unwrap();
    let compile = compile["compileId"].as_str().unwrap().to_string();
    for _ in 0..100 {
        let read = bridge.call("read_compile", json!({"projectId": project, "compileId": compile})).await.unwrap();
        if read["state"] == "BuildSuccess" {
            return compile;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("compile {compile} of project {project} did not succeed");
}

/// A project deployed live (paper, in the simulator) by a client allowed to deploy without
/// asking; its id.
async fn deployed_project(env: &Env) -> i64 {
    let (id, key) = admin_client_where(env, "deployer", "qc:live:write", "allow").await;
    let mut bridge = Bridge::connect(&env.socket, &id, key.as_deref()).await.unwrap();
    let project = bridge.call("create_project", json!({"name": "Momentum", "language": "Py"})).await.unwrap();
    let project = project["projects"][0]["projectId"].as_i64().unwrap();
    let nodes = bridge.call("read_project_nodes", project_args(project)).await.unwrap();
    let node = nodes["nodes"]["live"][0]["id"].as_str().unwrap().to_string();
    let compile = compiled(&mut bridge, project).await;
    let deploy = json!({"versionId": "-1", "projectId": project, "compileId": compile, "nodeId": node,
        "brokerage": {"id": "QuantConnectBrokerage"}});
    bridge.call("create_live_algorithm", deploy).await.unwrap();
    project
}

#[tokio::test]
async fn a_liquidation_is_asked_with_the_positions_it_closes_which_the_client_never_sees() {
    let env = Env::start(LONG).await;
    let project = deployed_project(&env).await;
    let (client, key) = env.add_client("trader", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let deny = deny_next_question(&env);
    let err = bridge.call("liquidate_live_algorithm", project_args(project)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ApprovalDenied);
    let asked = deny.await.unwrap();
    let preview = &asked["preview"];
    assert_eq!(preview["heading"], "Holdings:", "{asked}");
    let lines: Vec<&str> = preview["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(lines[0].starts_with("SPY: ") && lines[0].contains(" shares at $"), "{lines:?}");
    assert!(lines[0].contains("market value $"), "{lines:?}");
    assert!(lines.contains(&"1 open order"), "the working limit order: {lines:?}");
    assert!(preview.get("unavailable").is_none(), "{preview}");
    // The holdings are the human's: the waiting client hears only what it sent.
    assert!(!bridge.waited[0].contains("SPY"), "{}", bridge.waited[0]);
    let records = env.broker.audit_log().read_all().unwrap();
    let looked_up: Vec<&str> = records
        .iter()
        .filter(|r| r.event["kind"] == "broker_lookup" && r.event["for_tool"] == "liquidate_live_algorithm")
        .map(|r| r.event["tool"].as_str().unwrap())
        .collect();
    for read in ["read_live_portfolio", "read_live_orders"] {
        assert!(looked_up.contains(&read), "{read} is audited as the broker's: {looked_up:?}");
    }
    assert_eq!(env.sim.request_count("/live/update/liquidate"), 0, "nothing was liquidated");
}

#[tokio::test]
async fn a_preview_that_cannot_be_looked_up_says_so_and_the_question_is_asked_anyway() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("trader", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let project = live_project(&mut bridge).await;
    let deny = deny_next_question(&env);
    // Never deployed: QuantConnect has no portfolio to show.
    let err = bridge.call("stop_live_algorithm", project_args(project)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ApprovalDenied, "asked all the same");
    let asked = deny.await.unwrap();
    let unavailable = asked["preview"]["unavailable"].as_str().unwrap_or_default();
    assert!(
        unavailable.starts_with("Not everything could be looked up: QuantConnect answered read_live_portfolio"),
        "{asked}"
    );
}

#[tokio::test]
async fn a_deployment_is_asked_with_live_money_or_paper_first() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("trader", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let project = live_project(&mut bridge).await;
    let deny = deny_next_question(&env);
    let deploy = json!({"versionId": "-1", "projectId": project, "compileId": "c-1", "nodeId": "LN-1",
        "brokerage": {"id": "InteractiveBrokersBrokerage", "ib-trading-mode": "live", "ib-account": "U42", "ib-password": "sentinel-pw"}});
    let _ = bridge.call("create_live_algorithm", deploy).await;
    let asked = deny.await.unwrap();
    assert_eq!(asked["preview"]["heading"], "Will deploy:");
    let lines = asked["preview"]["lines"].clone();
    assert_eq!(lines[0], "LIVE MONEY", "{lines}");
    for fact in [
        "Brokerage: \"InteractiveBrokersBrokerage\"",
        "Brokerage account: \"U42\"",
        "Node: \"LN-1\"",
        "Compile: \"c-1\"",
    ] {
        assert!(lines.as_array().unwrap().iter().any(|l| l == fact), "{fact} in {lines}");
    }
    assert!(!asked.to_string().contains("sentinel-pw"), "no credential reaches the human's screen");
}

async fn set_limits(env: &Env, client: &str, limits: keybridge_broker_proto::ClientLimitsUpdate) -> serde_json::Value {
    let update =
        AdminCommand::ClientUpdate { client_id: client.into(), preset: None, scopes: Vec::new(), policy: None, limits };
    env.admin(update).await.unwrap()
}

#[tokio::test]
async fn a_client_past_its_calls_per_minute_is_refused_with_the_limit_named_and_audited() {
    use keybridge_broker_proto::ClientLimitsUpdate;
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("research", true).await;
    let updated =
        set_limits(&env, &client, ClientLimitsUpdate { calls_per_minute: Some(3), ..Default::default() }).await;
    assert_eq!(updated["limits"]["calls_per_minute"], 3, "{updated}");
    assert_eq!(
        updated["scopes"].as_array().unwrap().len(),
        keybridge_catalog::Preset::Research.scopes().len(),
        "scopes kept"
    );
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    for _ in 0..3 {
        bridge.call("read_account", json!({})).await.unwrap();
    }
    let refused = bridge.call("read_account", json!({})).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::LimitReached, "{refused:?}");
    assert!(refused.message.contains("3 calls in the last minute"), "{}", refused.message);
    assert!(
        refused.message.contains(&format!("keybridge client update {client} --calls-per-minute N")),
        "{}",
        refused.message
    );
    assert_eq!(env.sim.request_count("/account/read"), 3, "the refused call never left");
    let records = env.broker.audit_log().read_all().unwrap();
    let last = records.iter().rev().find(|r| r.event["kind"] == "tool_call").unwrap();
    assert_eq!(last.event["outcome"], "limit_reached", "{}", last.event);
    let shown = env.admin(AdminCommand::ClientShow { client_id: client.clone() }).await.unwrap();
    assert_eq!(shown["limits"]["calls_per_minute"], 3);
    assert_eq!(shown["limits"]["calls_in_flight"], 100, "the others keep their defaults");
}

#[tokio::test]
async fn a_client_past_its_calls_at_once_is_refused_until_one_ends() {
    use keybridge_broker_proto::ClientLimitsUpdate;
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("trader", true).await;
    set_limits(&env, &client, ClientLimitsUpdate { calls_in_flight: Some(1), ..Default::default() }).await;
    let mut waiting = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let project = live_project(&mut waiting).await;
    let deny = deny_next_question(&env);
    let asks = tokio::spawn(async move { waiting.call("stop_live_algorithm", project_args(project)).await });
    // While the first call waits for the human, a second one has no place.
    let mut other = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let asked = keybridge_testkit::pending_at(&env.socket).await;
    assert_eq!(asked["tool"], "stop_live_algorithm");
    let refused = other.call("read_account", json!({})).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::LimitReached, "{refused:?}");
    assert!(
        refused.message.contains("1 calls under way") && refused.message.contains("--calls-in-flight"),
        "{}",
        refused.message
    );
    deny.await.unwrap();
    assert_eq!(asks.await.unwrap().unwrap_err().code, ErrorCode::ApprovalDenied);
    other.call("read_account", json!({})).await.expect("the place came back when the first call ended");
}

#[tokio::test]
async fn a_client_past_its_live_deployments_per_day_is_refused() {
    use keybridge_broker_proto::ClientLimitsUpdate;
    let env = Env::start(LONG).await;
    let project = deployed_project(&env).await;
    let (second, key) = admin_client_where(&env, "deployer 2", "qc:live:write", "allow").await;
    set_limits(&env, &second, ClientLimitsUpdate { live_deployments_per_day: Some(1), ..Default::default() }).await;
    let mut bridge = Bridge::connect(&env.socket, &second, key.as_deref()).await.unwrap();
    let deploy = json!({"versionId": "-1", "projectId": project, "compileId": "c-none", "nodeId": "LN-none",
        "brokerage": {"id": "QuantConnectBrokerage"}});
    let sent = env.sim.request_count("/live/create");
    let _ = bridge.call("create_live_algorithm", deploy.clone()).await;
    assert_eq!(env.sim.request_count("/live/create"), sent + 1, "the first is sent");
    let refused = bridge.call("create_live_algorithm", deploy).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::LimitReached, "{refused:?}");
    assert!(refused.message.contains("1 live deployments in the last 24 hours"), "{}", refused.message);
    assert!(refused.message.contains("--live-deployments-per-day"), "{}", refused.message);
    assert_eq!(env.sim.request_count("/live/create"), sent + 1, "the second never left");
}

#[tokio::test]
async fn refused_connections_and_tokens_are_counted_per_client_and_reason_in_the_status() {
    let env = Env::start(LONG).await;
    let (client, _key) = env.add_client("research", true).await;
    for _ in 0..2 {
        let err = Bridge::connect(&env.socket, &client, Some("not-the-key")).await.err().unwrap();
        assert_eq!(err.code, ErrorCode::PairingDenied);
    }
    let err = Bridge::connect(&env.socket, "nobody-1234", Some("k")).await.err().unwrap();
    assert_eq!(err.code, ErrorCode::NotFound);
    env.admin(AdminCommand::ClientRevoke { client_id: client.clone() }).await.unwrap();
    assert!(Bridge::connect(&env.socket, &client, Some("not-the-key")).await.is_err());
    let forged = keybridge_broker_proto::Credential::new("eyJhbGciOiJFZERTQSJ9.e30.AAAA".to_string());
    assert!(env.broker.list_tools(None, &forged).is_err());

    let status = env.admin(AdminCommand::Status).await.unwrap();
    let count = |who: &str, reason: &str| {
        status["auth_failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client"] == who && c["reason"] == reason)
            .map_or(0, |c| c["count"].as_u64().unwrap())
    };
    assert_eq!(count(&client, "bad_key"), 2, "{status}");
    assert_eq!(count("nobody-1234", "unknown_client"), 1, "{status}");
    assert_eq!(count(&client, "revoked"), 1, "{status}");
    assert_eq!(count("(unknown)", "invalid_token"), 1, "{status}");
    let records = env.broker.audit_log().read_all().unwrap();
    let refusals = records.iter().filter(|r| r.event["kind"] == "authentication" && r.event["ok"] == false).count();
    assert_eq!(refusals, 4, "each refused connection is in the audit log too");
}

#[tokio::test]
async fn deletes_and_an_optimization_are_asked_with_what_they_remove_or_cost() {
    let env = Env::start(LONG).await;
    // Optimizations run without asking by default; this trader has them asked about.
    let (id, key) = admin_client_where(&env, "careful", "qc:optimizations:write", "ask").await;
    let mut bridge = Bridge::connect(&env.socket, &id, key.as_deref()).await.unwrap();
    let project = bridge.call("create_project", json!({"name": "Doomed", "language": "Py"})).await.unwrap();
    let project = project["projects"][0]["projectId"].as_i64().unwrap();
    let compile = compiled(&mut bridge, project).await;
    let backtest = json!({"projectId": project, "compileId": compile, "backtestName": "Best run"});
    let backtest = bridge.call("create_backtest", backtest).await.unwrap();
    let backtest = backtest["backtest"]["backtestId"].as_str().unwrap().to_string();
    for _ in 0..100 {
        let read = bridge.call("read_backtest", json!({"projectId": project, "backtestId": backtest})).await.unwrap();
        if read["backtest"]["completed"] == true {
            break;
        }
    }
    let lines = |asked: &serde_json::Value| -> Vec<String> {
        asked["preview"]["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
    };

    let deny = deny_next_question(&env);
    let _ = bridge.call("delete_backtest", json!({"projectId": project, "backtestId": backtest})).await;
    let asked = deny.await.unwrap();
    assert_eq!(asked["preview"]["heading"], "Will delete:", "{asked}");
    let shown = lines(&asked);
    assert_eq!(shown[0], "Backtest \"Best run\"");
    assert!(shown[1].contains("Net Profit") && shown[1].contains("Sharpe Ratio"), "{shown:?}");

    let deny = deny_next_question(&env);
    let _ = bridge.call("delete_project", project_args(project)).await;
    let asked = deny.await.unwrap();
    assert_eq!(
        lines(&asked),
        [format!("Project {project}, with its files"), "1 backtest".into(), "No live deployment found".into()]
    );

    let deny = deny_next_question(&env);
    let optimization = json!({
        "projectId": project, "name": "Grid", "target": "TotalPerformance.PortfolioStatistics.SharpeRatio",
        "targetTo": "max", "strategy": "QuantConnect.Optimizer.Strategies.GridSearchOptimizationStrategy",
        "compileId": compile, "parameters": [{"name": "fast", "min": 5, "max": 15, "step": 5}],
        "constraints": [], "estimatedCost": 1.5, "nodeType": "O2-8", "parallelNodes": 2,
    });
    let _ = bridge.call("create_optimization", optimization).await;
    let asked = deny.await.unwrap();
    assert_eq!(asked["preview"]["heading"], "Will cost:", "{asked}");
    let shown = lines(&asked);
    assert!(shown.iter().any(|l| l.starts_with("Estimated time: ")), "{shown:?}");
    assert!(shown.contains(&"Estimated cost, as the client states it: 1.5 QCC".to_string()), "{shown:?}");
    assert!(shown.contains(&"Nodes: \"O2-8\" × 2".to_string()), "{shown:?}");
    assert_eq!(env.sim.request_count("/optimizations/create"), 0, "nothing was started");
}

#[tokio::test]
async fn a_standing_allowance_is_listed_with_its_time_left_and_can_be_revoked() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("admin", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let project = live_project(&mut bridge).await;
    let allow = answer_next_question(&env, ApprovalDecision::AllowFor { minutes: 5 });
    let delete = json!({"projectId": project, "backtestId": "not-there"});
    let _ = bridge.call("delete_backtest", delete.clone()).await;
    allow.await.unwrap();
    let standing = env.admin(AdminCommand::AllowancesList).await.unwrap();
    let one = &standing[0];
    assert_eq!((one["tool"].as_str(), one["client_id"].as_str()), (Some("delete_backtest"), Some(client.as_str())));
    assert_eq!(one["client_name"], "admin client");
    assert!((290..=300).contains(&one["seconds_left"].as_u64().unwrap()), "{one}");
    let session = one["session_id"].as_str().unwrap().to_string();
    env.admin(AdminCommand::AllowanceRevoke { session_id: session.clone(), tool: "delete_backtest".into() })
        .await
        .unwrap();
    assert_eq!(env.admin(AdminCommand::AllowancesList).await.unwrap(), json!([]));
    let again = env.admin(AdminCommand::AllowanceRevoke { session_id: session, tool: "delete_backtest".into() }).await;
    assert!(again.unwrap_err().message.contains("ended already"));
    // Revoked: the next call asks again.
    let deny = deny_next_question(&env);
    let _ = bridge.call("delete_backtest", delete).await;
    assert_eq!(deny.await.unwrap()["tool"], "delete_backtest");
    let records = env.broker.audit_log().read_all().unwrap();
    assert!(records.iter().any(|r| r.event["action"] == "allowance_revoked" && r.event["tool"] == "delete_backtest"));
}

#[tokio::test]
async fn a_question_and_the_waiting_client_show_the_same_short_code() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("admin", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let project = live_project(&mut bridge).await;
    let deny = deny_next_question(&env);
    let _ = bridge.call("delete_backtest", json!({"projectId": project, "backtestId": "x"})).await;
    let asked = deny.await.unwrap();
    let code = asked["code"].as_str().unwrap().to_string();
    assert!(code.len() == 4 && code.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()), "{code}");
    assert!(bridge.waited[0].ends_with(&format!("Request code {code}.")), "{}", bridge.waited[0]);
    assert!(asked["host"].as_str().is_some_and(|h| !h.is_empty()), "the program it runs in: {asked}");
    let deny = deny_next_question(&env);
    let _ = bridge.call("delete_backtest", json!({"projectId": project, "backtestId": "y"})).await;
    assert_ne!(deny.await.unwrap()["code"], code.as_str(), "another request, another code");
}

/// Every call's future is moved into a task of its own, so its size is copied on every call:
/// the rare, heavy parts (the question to the human, the look-ups for it) live on the heap.
#[tokio::test]
async fn a_calls_future_stays_small_enough_to_move_cheaply() {
    let env = Env::start(LONG).await;
    let token = keybridge_broker_proto::Credential::new("not a token".into());
    let call = env.broker.call(None, &token, "read_account", json!({}), |_| {});
    let bytes = std::mem::size_of_val(&call);
    eprintln!("call future: {bytes} bytes");
    assert!(bytes <= 2048, "the call future is {bytes} bytes");
}

#[tokio::test]
async fn a_session_opened_for_an_identity_providers_caller_never_grows_past_what_it_granted() {
    use keybridge_catalog::Scope;
    let env = Env::start(Duration::from_secs(5)).await;
    let (client, _) = env.add_client("research", false).await;
    let granted: std::collections::BTreeSet<Scope> = [Scope::AccountRead].into_iter().collect();
    let session = env.broker.session_for_principal(&client, "desk", &granted).unwrap();
    assert_eq!(session.scopes, vec!["qc:account:read"], "the token carries no more than was granted");
    let call = |session: &keybridge_broker_proto::SessionInfo, tool: &'static str, args: serde_json::Value| {
        let (broker, id, token) = (env.broker.clone(), session.session_id.clone(), session.token.clone());
        async move { broker.call(Some(&id), &token, tool, args, |_| {}).await }
    };
    call(&session, "read_account", json!({})).await.expect("what was granted runs");
    let refused = call(&session, "read_project", project_args(1)).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::MissingScope, "{refused}");

    // A refreshed token keeps the limit.
    let refreshed = env.broker.refresh(&session.session_id).unwrap();
    assert_eq!(refreshed.scopes, vec!["qc:account:read"]);
    let refused = call(&refreshed, "read_project", project_args(1)).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::MissingScope, "{refused}");

    // A revoked client's callers are refused too, and a client that is not there is named.
    env.admin(AdminCommand::ClientRevoke { client_id: client.clone() }).await.unwrap();
    assert_eq!(call(&refreshed, "read_account", json!({})).await.unwrap_err().code(), ErrorCode::Revoked);
    assert!(env.broker.session_for_principal(&client, "desk", &granted).is_err());
    let missing = env.broker.session_for_principal("nobody-1234", "desk", &granted).unwrap_err().to_string();
    assert!(missing.contains("nobody-1234"), "{missing}");
    let records = env.broker.audit_log().read_all().unwrap();
    let by_provider =
        records.iter().filter(|r| r.event["kind"] == "authentication" && r.event["method"] == "identity_provider");
    assert_eq!(by_provider.count(), 1, "the one session opened is on record as the identity provider's");
}
