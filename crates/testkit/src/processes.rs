//! `keybridge serve` and the CLI as real processes with the real keychain, in one temporary
//! world: its data folder, its socket, its QuantConnect (a simulator) and its own keychain
//! namespace, so a test never touches a trader's credentials.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

/// Where Keybridge's processes of one test run, and how they are started.
pub struct Processes {
    pub home: tempfile::TempDir,
    pub socket: PathBuf,
    pub base_url: String,
    /// The `keybridge` executable under test.
    keybridge: PathBuf,
    keychain: String,
}

impl Processes {
    /// A world for `keybridge` (the executable under test) whose QuantConnect is `base_url`;
    /// `keychain` names its keychain namespace (made unique to this test process).
    pub fn new(keybridge: PathBuf, base_url: String, keychain: &str) -> Processes {
        let home = tempfile::tempdir().expect("a temporary folder");
        let socket = home.path().join("run/broker.sock");
        let keychain = format!("{keychain}-{}", std::process::id());
        Processes { home, socket, base_url, keybridge, keychain }
    }

    /// What every Keybridge process of this world runs with.
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("KEYBRIDGE_HOME", self.home.path().join("data").display().to_string()),
            ("KEYBRIDGE_SOCKET", self.socket.display().to_string()),
            ("KEYBRIDGE_QC_BASE_URL", self.base_url.clone()),
            ("KEYBRIDGE_KEYCHAIN", self.keychain.clone()),
        ]
    }

    /// Point `command` at this world; nothing of the test's own environment that would change
    /// what it does goes with it.
    pub fn env(&self, command: &mut Command) {
        command.envs(self.env_vars()).env_remove("KEYBRIDGE_CLIENT_KEY").env_remove("RUST_BACKTRACE");
    }

    /// `keybridge ARGS` in this world.
    pub fn keybridge(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.keybridge);
        self.env(&mut command);
        command.args(args);
        command
    }

    /// Start `keybridge serve` (with `extra` environment) and wait for its `ready SOCKET` line.
    pub fn serve(&self, extra: &[(&str, String)]) -> Child {
        let mut command = self.keybridge(&["serve"]);
        command.envs(extra.iter().map(|(k, v)| (*k, v.as_str())));
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("keybridge serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("its stdout")).read_line(&mut line).expect("it says it is ready");
        assert_eq!(line.trim(), format!("ready {}", self.socket.display()), "keybridge serve said {line:?}");
        child
    }

    /// Run the CLI with `stdin` piped in; its whole output, whether it succeeded or not.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .keybridge(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("keybridge runs");
        if let Some(input) = stdin {
            child.stdin.take().expect("its stdin").write_all(input.as_bytes()).expect("it reads its stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("keybridge finishes")
    }
}
