//! The endpoint on this OS for real: a Unix socket here, a named pipe on Windows (these tests
//! also run, cross-compiled, under Wine in CI).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use keybridge_endpoint::{EndpointError, Listener, PeerUser, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fresh address, and what must stay alive while it is used.
fn address() -> (PathBuf, Option<tempfile::TempDir>) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    if cfg!(windows) {
        (PathBuf::from(format!(r"\\.\pipe\keybridge-test-{}-{n}", std::process::id())), None)
    } else {
        let dir = tempfile::tempdir().unwrap();
        (dir.path().join(format!("run-{n}")).join("broker.sock"), Some(dir))
    }
}

/// Accept `count` connections and echo one line on each, reporting who each peer was.
fn echo(mut listener: Listener, count: usize) -> tokio::task::JoinHandle<Vec<PeerUser>> {
    tokio::spawn(async move {
        let mut peers = Vec::new();
        let mut served = Vec::new();
        for _ in 0..count {
            let (mut stream, peer) = listener.accept().await.unwrap();
            peers.push(peer);
            served.push(tokio::spawn(async move {
                let mut buf = [0u8; 5];
                stream.read_exact(&mut buf).await.unwrap();
                stream.write_all(&buf).await.unwrap();
                stream.flush().await.unwrap();
                // Hold the connection until the client has read the echo and hung up.
                let _ = stream.read(&mut buf).await;
            }));
        }
        for task in served {
            task.await.unwrap();
        }
        peers
    })
}

async fn round_trip(address: &std::path::Path, message: &[u8; 5]) {
    let mut stream = connect(address).await.unwrap();
    stream.write_all(message).await.unwrap();
    let mut back = [0u8; 5];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, message);
}

#[tokio::test]
async fn bytes_go_both_ways_and_the_peer_is_this_user_and_process() {
    let (address, _dir) = address();
    let server = echo(Listener::bind(&address).unwrap(), 1);
    round_trip(&address, b"hello").await;
    let peers = server.await.unwrap();
    assert_eq!(peers, vec![PeerUser::Same { pid: Some(std::process::id()) }]);
}

#[tokio::test]
async fn many_clients_at_once_are_all_served() {
    let (address, _dir) = address();
    let server = echo(Listener::bind(&address).unwrap(), 40);
    let clients: Vec<_> = (0..40u8)
        .map(|i| {
            let address = address.clone();
            tokio::spawn(async move { round_trip(&address, &[b'a', b'b', b'c', b'd', i]).await })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let peers = server.await.unwrap();
    assert!(peers.iter().all(|p| matches!(p, PeerUser::Same { .. })), "{peers:?}");
}

#[tokio::test]
async fn a_second_listener_is_told_one_runs_and_the_address_frees_when_the_first_goes() {
    let (address, _dir) = address();
    let first = Listener::bind(&address).unwrap();
    match Listener::bind(&address) {
        Err(e @ EndpointError::AlreadyRunning { .. }) => assert!(e.to_string().contains("already running"), "{e}"),
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    drop(first);
    let again = echo(Listener::bind(&address).unwrap(), 1);
    round_trip(&address, b"again").await;
    again.await.unwrap();
}

#[tokio::test]
async fn nothing_listening_is_reported_as_not_running() {
    let (address, _dir) = address();
    let err = connect(&address).await.unwrap_err();
    assert!(matches!(err, EndpointError::NotRunning { .. }), "{err:?}");
    assert!(err.to_string().contains("keybridge serve"), "{err}");
}

#[cfg(windows)]
#[tokio::test]
async fn an_address_that_is_not_a_pipe_is_refused_with_the_expected_form() {
    let err = Listener::bind(std::path::Path::new(r"C:\keybridge\broker.sock")).unwrap_err();
    assert!(err.to_string().contains(r"\\.\pipe\"), "{err}");
}

#[cfg(windows)]
#[test]
fn the_default_pipe_is_named_for_this_user() {
    let address = keybridge_endpoint::default_address();
    let name = address.to_str().unwrap();
    assert!(name.starts_with(r"\\.\pipe\keybridge-S-1-"), "{name}");
}

#[cfg(unix)]
mod unix {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;

    /// Set when this test binary runs as another user's listener.
    const CHILD: &str = "KEYBRIDGE_TEST_FOREIGN_LISTENER";

    #[tokio::test]
    async fn the_socket_and_its_folder_are_private() {
        let (address, _dir) = address();
        let _listener = Listener::bind(&address).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&address), 0o600);
        assert_eq!(mode(address.parent().unwrap()), 0o700);
    }

    #[tokio::test]
    async fn a_folder_others_can_enter_is_refused_before_a_byte_is_sent() {
        let (address, _dir) = address();
        let mut listener = Listener::bind(&address).unwrap();
        std::fs::set_permissions(address.parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = connect(&address).await.unwrap_err();
        assert!(matches!(err, EndpointError::NotYours { .. }), "{err:?}");
        assert!(err.to_string().contains("mode 0700") && err.to_string().contains("755"), "{err}");
        // The broker saw a connection, and nothing on it.
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(stream.read(&mut buf).await.unwrap(), 0, "the client wrote nothing");
    }

    /// The child: listen at the given path as whoever this process runs as, until killed.
    #[test]
    fn foreign_listener_entry() {
        let Some(path) = std::env::var_os(CHILD) else { return };
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        println!("LISTENING");
        std::thread::sleep(Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_listener_of_another_user_is_refused_before_a_byte_is_sent() {
        if keybridge_endpoint::current_uid() != 0 {
            panic!("this test listens as another uid and must run as root (CI does); run it with sudo");
        }
        let (address, dir) = address();
        let folder = address.parent().unwrap();
        // Let uid 65534 make its socket in our folder, then close the folder again: what is left
        // to catch the squatter is the check of who listens.
        std::fs::set_permissions(dir.as_ref().unwrap().path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(folder).unwrap();
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut child = tokio::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", "unix::foreign_listener_entry", "--nocapture", "--test-threads=1"])
            .env(CHILD, &address)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("setpriv (util-linux) runs");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !address.exists() {
            assert!(std::time::Instant::now() < deadline, "the foreign listener never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = connect(&address).await.unwrap_err();
        child.kill().await.unwrap();
        assert!(matches!(err, EndpointError::NotYours { .. }), "{err:?}");
        assert!(err.to_string().contains("runs as uid 65534, not as you"), "{err}");
    }
}
