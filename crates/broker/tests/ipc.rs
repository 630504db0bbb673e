//! The socket: permissions, hostile frames, floods, other users, one broker per user, and
//! host-bound pairing by what the OS says about the peer.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use keybridge_broker::server;
use keybridge_broker_proto::{AdminCommand, ApprovalDecision, ErrorCode, Response, read_frame};
use keybridge_testkit::{Bridge, Env};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

const LONG: Duration = Duration::from_secs(30);
/// Set when this test binary runs as a child process that acts as a bridge.
const CHILD: &str = "KEYBRIDGE_TEST_CHILD_SOCKET";

#[tokio::test]
async fn the_socket_is_private() {
    let env = Env::start(LONG).await;
    let mode = std::fs::metadata(&env.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");
    let dir_mode = std::fs::metadata(env.socket.parent().unwrap()).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700, "folder mode {dir_mode:o}");
}

#[tokio::test]
async fn a_second_broker_is_told_one_is_running() {
    let env = Env::start(LONG).await;
    let err = server::bind(&env.socket).unwrap_err().to_string();
    assert!(err.contains("already running"), "{err}");
    env.admin(AdminCommand::Status).await.expect("the first one still serves");
}

async fn bad_frame_closes_only_that_connection(frame: Vec<u8>, expect: &str) {
    let env = Env::start(LONG).await;
    let mut hostile = UnixStream::connect(&env.socket).await.unwrap();
    hostile.write_all(&frame).await.unwrap();
    match read_frame::<Response, _>(&mut hostile).await.unwrap() {
        Response::Error { error, .. } => {
            assert_eq!(error.code, ErrorCode::BadFrame);
            assert!(error.message.contains(expect), "{}", error.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(read_frame::<Response, _>(&mut hostile).await.is_err(), "the connection is closed");
    env.admin(AdminCommand::Status).await.expect("others are served");
}

#[tokio::test]
async fn malformed_frames_get_an_error_and_a_close() {
    let garbage = b"{not json".to_vec();
    let mut frame = (garbage.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&garbage);
    bad_frame_closes_only_that_connection(frame, "not a valid message").await;
}

#[tokio::test]
async fn unknown_messages_get_an_error_and_a_close() {
    let body = json!({"role": "superuser", "version": 1}).to_string().into_bytes();
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    bad_frame_closes_only_that_connection(frame, "superuser").await;
}

#[tokio::test]
async fn oversized_frames_are_refused_unread() {
    let frame = (64u32 * 1024 * 1024).to_be_bytes().to_vec();
    bad_frame_closes_only_that_connection(frame, "exceeds").await;
}

#[tokio::test]
async fn a_flood_of_idle_connections_does_not_starve_others() {
    let env = Env::start(LONG).await;
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(UnixStream::connect(&env.socket).await.unwrap());
    }
    let started = Instant::now();
    env.admin(AdminCommand::Status).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "served in {:?}", started.elapsed());
    // Idle peers are dropped after the hello timeout.
    let mut one = idle.pop().unwrap();
    let closed =
        tokio::time::timeout(server::HELLO_TIMEOUT + Duration::from_secs(2), read_frame::<Response, _>(&mut one)).await;
    assert!(matches!(closed, Ok(Err(_))), "an idle connection is closed: {closed:?}");
}

#[tokio::test]
async fn host_bound_pairing_asks_once_per_host_executable() {
    let env = Env::start(LONG).await;
    let (client, _) = env.add_client("research", false).await;

    // First session from this host: waits for the human.
    let socket = env.socket.clone();
    let id = client.clone();
    let first = tokio::spawn(async move { Bridge::connect(&socket, &id, None).await });
    let pending = env.pending_approval().await;
    assert_eq!(pending["kind"], "pairing");
    assert!(pending["summary"].as_str().unwrap().contains("first time"), "{pending}");
    let approve = AdminCommand::ApprovalDecide {
        approval_id: pending["id"].as_str().unwrap().into(),
        decision: ApprovalDecision::Approve,
    };
    env.admin(approve).await.unwrap();
    first.await.unwrap().expect("paired after approval");

    // Same host again: no question.
    let started = Instant::now();
    Bridge::connect(&env.socket, &client, None).await.expect("known host passes silently");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(env.admin(AdminCommand::ApprovalsList).await.unwrap().as_array().unwrap().is_empty());

    // The same bridge launched by another program (this test binary): asks again.
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD, &env.socket)
        .env("KEYBRIDGE_TEST_CHILD_CLIENT", &client)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pending = env.pending_approval().await;
    assert_eq!(pending["kind"], "pairing");
    let host = pending["arguments"]["host"].as_str().unwrap().to_string();
    assert_eq!(std::path::PathBuf::from(&host), std::env::current_exe().unwrap(), "the host is the launching program");
    let deny = AdminCommand::ApprovalDecide {
        approval_id: pending["id"].as_str().unwrap().into(),
        decision: ApprovalDecision::Deny,
    };
    env.admin(deny).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("CHILD-RESULT pairing_denied"), "{printed}");
}

#[tokio::test]
async fn a_host_starting_the_bridge_twice_at_once_is_asked_once() {
    let env = Env::start(LONG).await;
    let (client, _) = env.add_client("research", false).await;
    let (socket_a, socket_b) = (env.socket.clone(), env.socket.clone());
    let (id_a, id_b) = (client.clone(), client.clone());
    let a = tokio::spawn(async move { Bridge::connect(&socket_a, &id_a, None).await });
    let pending = env.pending_approval().await;
    let b = tokio::spawn(async move { Bridge::connect(&socket_b, &id_b, None).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.admin(AdminCommand::ApprovalsList).await.unwrap().as_array().unwrap().len(), 1, "one question");
    let approve = AdminCommand::ApprovalDecide {
        approval_id: pending["id"].as_str().unwrap().into(),
        decision: ApprovalDecision::Approve,
    };
    env.admin(approve).await.unwrap();
    a.await.unwrap().expect("first paired");
    b.await.unwrap().expect("second paired by the same answer");
}

#[tokio::test]
async fn a_peer_that_is_not_the_bridge_is_refused() {
    let env = Env::start(LONG).await;
    let (client, _) = env.add_client("research", false).await;
    // A broker that accepts only an executable this test binary is not.
    let mut config = env.broker.config().clone();
    config.bridge_executables = vec!["/nonexistent/keybridge-mcp".into()];
    let broker = keybridge_testkit::open_desktop_broker(config, env.store.clone()).unwrap();
    let me = keybridge_broker::peer::Peer::inspect(keybridge_broker::own_uid(), Some(std::process::id() as i32));
    let err = broker.authenticate(&client, None, &me).await.unwrap_err();
    assert!(err.to_string().contains("is not the keybridge-mcp bridge"), "{err}");
    assert!(env.admin(AdminCommand::ApprovalsList).await.unwrap().as_array().unwrap().is_empty(), "nobody was asked");
}

#[tokio::test]
async fn another_user_is_refused() {
    if keybridge_broker::own_uid() != 0 {
        panic!("this test switches to another uid and must run as root (CI does); run it with sudo");
    }
    let env = Env::start(LONG).await;
    // Open the folder and socket so the uid check itself is what refuses.
    std::fs::set_permissions(env.socket.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&env.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = std::env::current_exe().unwrap();
    // tokio's Command: the broker runs on this test's runtime and must keep serving meanwhile.
    let out = tokio::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args(["--exact", "child_process_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD, &env.socket)
        .env("KEYBRIDGE_TEST_CHILD_CLIENT", "anyone")
        .output()
        .await
        .expect("setpriv (util-linux) runs");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("CHILD-RESULT not_authenticated"),
        "stdout: {printed}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Not a test of its own: the entry point of the child processes above, which connect as a
/// bridge and print how the broker answered.
#[tokio::test]
async fn child_process_entry() {
    let Some(socket) = std::env::var_os(CHILD) else { return };
    let client = std::env::var("KEYBRIDGE_TEST_CHILD_CLIENT").unwrap();
    let result = match Bridge::connect(std::path::Path::new(&socket), &client, None).await {
        Ok(_) => "ok".to_string(),
        Err(e) => serde_json::to_value(e.code).unwrap().as_str().unwrap().to_string(),
    };
    println!("CHILD-RESULT {result}");
}

#[tokio::test]
async fn an_answer_too_large_for_a_frame_is_refused_and_the_connection_lives_on() {
    let env = Env::start(std::time::Duration::from_secs(60)).await;
    let (writer, writer_key) = env.add_client("research", true).await;
    let mut setup = Bridge::connect(&env.socket, &writer, writer_key.as_deref()).await.unwrap();
    let project = setup.call("create_project", serde_json::json!({"name": "Big", "language": "Py"})).await.unwrap();
    let project = project["projects"][0]["projectId"].as_i64().unwrap();
    // Two files of 4.5 MB: each fits in a frame, both together (what `read_file` without a
    // name returns) do not.
    let content = "x".repeat(4_500_000);
    for name in ["a.py", "b.py"] {
        let args = serde_json::json!({"projectId": project, "name": name, "content": content});
        setup.call("create_file", args).await.unwrap();
    }

    let (reader, reader_key) = env.add_client("read-only", true).await;
    let mut bridge = Bridge::connect(&env.socket, &reader, reader_key.as_deref()).await.unwrap();
    let refused = bridge.call("read_file", serde_json::json!({"projectId": project})).await.unwrap_err();
    assert_eq!(refused.code, keybridge_broker_proto::ErrorCode::TooLarge, "{}", refused.message);
    assert!(refused.message.contains("8.6 MB") && refused.message.contains("ask for less"), "{}", refused.message);
    // The same connection still answers (before, its writer had died and this waited forever).
    let account = tokio::time::timeout(Duration::from_secs(20), bridge.call("read_account", serde_json::json!({})))
        .await
        .expect("the connection still answers")
        .unwrap();
    assert!(account.to_string().contains("organization"), "{account}");
    let one = bridge.call("read_file", serde_json::json!({"projectId": project, "name": "a.py"})).await.unwrap();
    assert!(one.to_string().len() > 4_000_000);
}

#[tokio::test]
async fn a_long_audit_tail_arrives_in_pages_not_one_giant_frame() {
    use keybridge_broker::audit::{AuditEvent, ToolCallEvent};
    use keybridge_broker_proto::{Hello, PROTOCOL_VERSION, Request, RequestBody, write_frame};
    let env = Env::start(LONG).await;
    // Twenty records of 600 KB: 12 MB, more than one frame may carry.
    for n in 0..20 {
        let padding = ToolCallEvent {
            tool: format!("padding-{n}"),
            args: Some(json!({"pad": "x".repeat(600_000)})),
            ..ToolCallEvent::default()
        };
        env.broker.audit_log().append(&AuditEvent::ToolCall(padding)).unwrap();
    }
    let total = env.broker.audit_log().read_all().unwrap().len();
    let mut stream = UnixStream::connect(&env.socket).await.unwrap();
    write_frame(&mut stream, &Hello::Admin { version: PROTOCOL_VERSION }).await.unwrap();
    let _welcome: Response = read_frame(&mut stream).await.unwrap();
    let tail = AdminCommand::AuditTail { last: 100_000_000, follow: false };
    write_frame(&mut stream, &Request { id: 7, body: RequestBody::Admin(tail) }).await.unwrap();
    let mut seqs = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(20), read_frame::<Response, _>(&mut stream))
            .await
            .unwrap()
            .unwrap()
        {
            Response::Event { event } => seqs.push(event["record"]["seq"].as_u64().unwrap()),
            Response::Admin { id, result } => {
                assert_eq!(id, 7);
                seqs.extend(result.as_array().unwrap().iter().map(|r| r["seq"].as_u64().unwrap()));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>(), "every record, once, in order");
}

#[tokio::test]
async fn reconnecting_bridges_do_not_pile_up_sessions() {
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("read-only", true).await;
    for _ in 0..200 {
        let bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
        drop(bridge);
    }
    let live = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    // The broker notices each closed connection as it reads its end.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions = env.admin(AdminCommand::Status).await.unwrap()["sessions"].as_u64().unwrap();
        if sessions == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{sessions} sessions after 200 reconnections and one live bridge");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(live);
}

#[tokio::test]
async fn a_peer_that_stops_reading_cannot_make_answers_pile_up() {
    use keybridge_broker_proto::{Request, RequestBody, write_frame};
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("research", true).await;
    let mut bridge = Bridge::connect(&env.socket, &client, key.as_deref()).await.unwrap();
    let project = bridge.call("create_project", json!({"name": "Wide", "language": "Py"})).await.unwrap();
    let project = project["projects"][0]["projectId"].as_i64().unwrap();
    let args = json!({"projectId": project, "name": "wide.py", "content": "x".repeat(1_000_000)});
    bridge.call("create_file", args).await.unwrap();

    // 150 reads of a 1 MB file, and not one answer read while they run.
    let calls = 150u64;
    for id in 0..calls {
        let body = RequestBody::Call {
            token: bridge.token(),
            tool: "read_file".into(),
            arguments: json!({"projectId": project, "name": "wide.py"}),
        };
        write_frame(&mut bridge.stream, &Request { id: 10_000 + id, body }).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (mut answered, mut refused) = (0, 0);
    while answered + refused < calls {
        match tokio::time::timeout(Duration::from_secs(30), read_frame::<Response, _>(&mut bridge.stream))
            .await
            .unwrap()
            .unwrap()
        {
            Response::Result { .. } => answered += 1,
            Response::Error { error, .. } => {
                assert!(error.message.contains("calls in flight"), "{}", error.message);
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let limit = server::MAX_CALLS_IN_FLIGHT as u64;
    assert!(answered <= limit + 2, "{answered} answers of 1 MB were queued for a peer that read none");
    assert!(refused > 0);
}

#[tokio::test]
async fn a_bridge_of_another_protocol_version_is_told_to_update() {
    use keybridge_broker_proto::{Hello, PROTOCOL_VERSION, write_frame};
    let env = Env::start(LONG).await;
    let (client, key) = env.add_client("read-only", true).await;
    let mut stream = UnixStream::connect(&env.socket).await.unwrap();
    let hello = Hello::Bridge {
        version: PROTOCOL_VERSION - 1,
        client_id: client,
        client_key: key.map(keybridge_broker_proto::Credential::new),
    };
    write_frame(&mut stream, &hello).await.unwrap();
    match read_frame::<Response, _>(&mut stream).await.unwrap() {
        Response::Error { id: None, error } => {
            assert_eq!(error.code, keybridge_broker_proto::ErrorCode::UnsupportedVersion);
            assert!(error.message.contains(&format!("protocol version {}", PROTOCOL_VERSION - 1)), "{}", error.message);
            assert!(error.message.contains("update Keybridge"), "{}", error.message);
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// An admin connection that has said hello.
async fn admin_connection(env: &Env) -> UnixStream {
    use keybridge_broker_proto::{Hello, PROTOCOL_VERSION, write_frame};
    let mut stream = UnixStream::connect(&env.socket).await.unwrap();
    write_frame(&mut stream, &Hello::Admin { version: PROTOCOL_VERSION }).await.unwrap();
    let _welcome: Response = read_frame(&mut stream).await.unwrap();
    stream
}

/// A status request padded with blank space to the largest frame: its length and all of its
/// bytes but the last `held_back` (blank space too).
fn largest_request(held_back: usize) -> Vec<u8> {
    let len = keybridge_broker_proto::MAX_FRAME_BYTES;
    let mut body = json!({"id": 1, "body": {"admin": {"command": "status"}}}).to_string().into_bytes();
    body.resize(len, b' ');
    let mut frame = (len as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body[..len - held_back]);
    frame
}

#[tokio::test]
async fn large_requests_in_progress_share_one_budget_across_connections() {
    let env = Env::start(LONG).await;
    // Eight peers each send all but the last byte of the largest frame: the budget is full.
    let mut holding = Vec::new();
    for _ in 0..server::LARGE_FRAMES_BUDGET / keybridge_broker_proto::MAX_FRAME_BYTES {
        let mut stream = admin_connection(&env).await;
        stream.write_all(&largest_request(1)).await.unwrap();
        holding.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A ninth large frame is refused with what to do, and only its connection closes.
    let mut ninth = admin_connection(&env).await;
    ninth.write_all(&largest_request(1)[..4 + 1024]).await.unwrap();
    let started = Instant::now();
    match tokio::time::timeout(LONG, read_frame::<Response, _>(&mut ninth)).await.unwrap().unwrap() {
        Response::Error { error, .. } => assert!(error.message.contains("must wait"), "{}", error.message),
        other => panic!("unexpected {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10), "refused after {:?}", started.elapsed());
    // Ordinary requests are never held up by large ones.
    env.admin(AdminCommand::Status).await.expect("a small request is served meanwhile");

    // One of the eight completes its frame and is answered; its share serves the next one.
    holding[0].write_all(b" ").await.unwrap();
    match tokio::time::timeout(LONG, read_frame::<Response, _>(&mut holding[0])).await.unwrap().unwrap() {
        Response::Admin { id: 1, .. } => {}
        other => panic!("unexpected {other:?}"),
    }
    let mut next = admin_connection(&env).await;
    next.write_all(&largest_request(0)).await.unwrap();
    match tokio::time::timeout(LONG, read_frame::<Response, _>(&mut next)).await.unwrap().unwrap() {
        Response::Admin { id: 1, .. } => {}
        other => panic!("unexpected {other:?}"),
    }
}
