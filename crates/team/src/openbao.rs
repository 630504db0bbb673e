//! Secrets in OpenBao's key/value store (version 2): the `SecretStore` a team's brokers share.
//!
//! Each secret is one entry, `<mount>/data/<prefix>/<name>`, holding `{"value": …}`. The broker
//! signs in with AppRole (or is handed a token), renews its token before it runs out, and signs
//! in again only when it cannot be renewed. A secret read is kept as a `SecretString`; the HTTP
//! layer's own copies of a reply are not zeroized. A reply's body goes into no error and no log;
//! the client follows no redirect, so the token and a secret never go to another address.

use keybridge_vault::{SecretStore, SecretString, VaultError};
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::worker::Worker;

/// How the broker signs in to OpenBao.
pub enum OpenBaoLogin {
    /// AppRole: the role's id and one of its secret ids.
    AppRole { role_id: String, secret_id: SecretString },
    /// A token handed to the broker (by an agent, or a development server's root token).
    Token(SecretString),
}

/// A team's secrets in OpenBao.
pub struct OpenBao {
    session: Worker<Session>,
    /// Where, for messages: the server, and the mount and prefix the secrets live under.
    place: String,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBao").field("place", &self.place).finish_non_exhaustive()
    }
}

struct Session {
    http: Client,
    address: String,
    mount: String,
    prefix: String,
    login: OpenBaoLogin,
    token: Option<SecretString>,
    /// When the token should be renewed (two thirds of its lease), if it runs out at all.
    renew_at: Option<std::time::Instant>,
}

impl OpenBao {
    /// Secrets under `prefix` in the KV version 2 engine at `mount` of the OpenBao at `address`
    /// (`http://127.0.0.1:8200`), signed in now, so a wrong role or address is found at start.
    pub fn connect(address: &str, mount: &str, prefix: &str, login: OpenBaoLogin) -> Result<OpenBao, VaultError> {
        let address = address.trim_end_matches('/').to_string();
        let place = format!("OpenBao {address}, {mount}/{prefix}");
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
        let secure = address.starts_with("https://")
            || loopback.iter().any(|l| address == *l || address.starts_with(&format!("{l}:")));
        if !secure {
            return Err(failed(
                &place,
                "its address must be https (http only on this very machine): the token and the secrets cross it",
            ));
        }
        let (mount, prefix) = (mount.trim_matches('/').to_string(), prefix.trim_matches('/').to_string());
        let open = move || -> Result<Session, VaultError> {
            let http = Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| failed(&address, &format!("cannot make an HTTP client: {e}")))?;
            let mut session = Session { http, address, mount, prefix, login, token: None, renew_at: None };
            session.sign_in()?;
            // A token handed over is checked now too, not at the first secret.
            let (status, body) = session.send(reqwest::Method::GET, "auth/token/lookup-self", None)?;
            if !status.is_success() {
                let why = format!("its token is refused ({status}: {}); give the broker a valid one", errors_of(&body));
                return Err(failed(&session.address, &why));
            }
            Ok(session)
        };
        let started = Worker::start("keybridge-openbao", open).map_err(|e| failed(&place, &e.to_string()))?;
        Ok(OpenBao { session: started?, place })
    }

    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Session) -> Result<T, VaultError> + Send + 'static,
    ) -> Result<T, VaultError> {
        self.session.run(work).map_err(|_| failed(&self.place, "its connection thread stopped"))?
    }
}

impl SecretStore for OpenBao {
    fn get(&self, name: &str) -> Result<Option<SecretString>, VaultError> {
        let name = name.to_string();
        self.run(move |session| {
            let (status, body) = session.request(reqwest::Method::GET, &session.data_path(&name)?, None)?;
            match status {
                StatusCode::NOT_FOUND => Ok(None),
                s if s.is_success() => match body.pointer("/data/data/value").and_then(Value::as_str) {
                    Some(value) => Ok(Some(SecretString::from(value.to_string()))),
                    // A deleted version reads as data: null.
                    None if body.pointer("/data/data").is_some_and(Value::is_null) => Ok(None),
                    None => Err(VaultError::Corrupt { name: name.clone() }),
                },
                s => Err(session.refused("read", &name, s, &body)),
            }
        })
    }

    fn set(&self, name: &str, value: &SecretString) -> Result<(), VaultError> {
        let (name, body) = (name.to_string(), json!({"data": {"value": value.expose()}}));
        self.run(move |session| {
            let (status, reply) = session.request(reqwest::Method::POST, &session.data_path(&name)?, Some(&body))?;
            if status.is_success() { Ok(()) } else { Err(session.refused("write", &name, status, &reply)) }
        })
    }

    fn delete(&self, name: &str) -> Result<(), VaultError> {
        let name = name.to_string();
        self.run(move |session| {
            // The metadata path removes every version, not only the newest.
            let path = format!("{}/metadata/{}/{}", session.mount, session.prefix, segment(&name)?);
            let (status, reply) = session.request(reqwest::Method::DELETE, &path, None)?;
            match status {
                s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
                s => Err(session.refused("delete", &name, s, &reply)),
            }
        })
    }
}

impl Session {
    fn data_path(&self, name: &str) -> Result<String, VaultError> {
        Ok(format!("{}/data/{}/{}", self.mount, self.prefix, segment(name)?))
    }

    fn sign_in(&mut self) -> Result<(), VaultError> {
        let (role_id, secret_id) = match &self.login {
            OpenBaoLogin::Token(token) => {
                self.token = Some(token.clone());
                return Ok(());
            }
            OpenBaoLogin::AppRole { role_id, secret_id } => (role_id.clone(), secret_id.expose().to_string()),
        };
        let url = format!("{}/v1/auth/approle/login", self.address);
        let reply = self
            .http
            .post(&url)
            .json(&json!({"role_id": role_id, "secret_id": secret_id}))
            .send()
            .map_err(|e| failed(&self.address, &format!("cannot reach it: {}", without_url(&e))))?;
        let status = reply.status();
        let body: Value = reply.json().unwrap_or(Value::Null);
        let token = body.pointer("/auth/client_token").and_then(Value::as_str).filter(|_| status.is_success());
        let token = token.ok_or_else(|| {
            failed(
                &self.address,
                &format!(
                    "AppRole sign-in as role {role_id} was refused ({status}: {}); check the role id and that the secret id is current",
                    errors_of(&body)
                ),
            )
        })?;
        self.token = Some(SecretString::from(token.to_string()));
        self.renew_at = renewal_time(&body["auth"]);
        Ok(())
    }

    /// Renew the token ahead of its end; sign in again only when it cannot be renewed.
    fn keep_token_fresh(&mut self) -> Result<(), VaultError> {
        if self.renew_at.is_none_or(|at| std::time::Instant::now() < at) {
            return Ok(());
        }
        let (status, body) = self.send(reqwest::Method::POST, "auth/token/renew-self", Some(&json!({})))?;
        match renewal_time(&body["auth"]).filter(|_| status.is_success()) {
            Some(at) => {
                self.renew_at = Some(at);
                Ok(())
            }
            None => self.sign_in(),
        }
    }

    /// One request with the current token, as it is.
    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), VaultError> {
        let mut token = reqwest::header::HeaderValue::from_str(self.token.as_ref().map_or("", |t| t.expose()))
            .map_err(|_| failed(&self.address, "its token is not a valid header value"))?;
        token.set_sensitive(true);
        let mut request =
            self.http.request(method, format!("{}/v1/{path}", self.address)).header("X-Vault-Token", token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let reply =
            request.send().map_err(|e| failed(&self.address, &format!("cannot reach it: {}", without_url(&e))))?;
        let status = reply.status();
        let body: Value =
            if status == StatusCode::NO_CONTENT { Value::Null } else { reply.json().unwrap_or(Value::Null) };
        Ok((status, body))
    }

    /// One request with a fresh token. A refusal with a token that no longer works (it ran out,
    /// or was revoked) signs in again once; a refusal by policy does not.
    fn request(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), VaultError> {
        self.keep_token_fresh()?;
        let (status, reply) = self.send(method.clone(), path, body)?;
        if status != StatusCode::FORBIDDEN || !matches!(self.login, OpenBaoLogin::AppRole { .. }) {
            return Ok((status, reply));
        }
        let (token_state, _) = self.send(reqwest::Method::GET, "auth/token/lookup-self", None)?;
        if token_state.is_success() {
            return Ok((status, reply));
        }
        self.sign_in()?;
        self.send(method, path, body)
    }

    fn refused(&self, action: &str, name: &str, status: StatusCode, body: &Value) -> VaultError {
        let place = format!("OpenBao {}, secret {}/{}/{name}", self.address, self.mount, self.prefix);
        let hint = if status == StatusCode::FORBIDDEN {
            format!(
                "; the broker's policy must allow create, read and update on {0}/data/{1}/* and read and delete on {0}/metadata/{1}/*",
                self.mount, self.prefix
            )
        } else {
            String::new()
        };
        failed(&place, &format!("cannot {action} it ({status}: {}){hint}", errors_of(body)))
    }
}

/// OpenBao's own words for a refusal (its `errors`), never the rest of a body.
fn errors_of(body: &Value) -> String {
    match body.get("errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => errors.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "),
        _ => "no reason given".into(),
    }
}

/// When to renew a token of this lease (`auth` of a sign-in or a renewal): at two thirds of
/// it; `None` for a token that does not run out or cannot be renewed.
fn renewal_time(auth: &Value) -> Option<std::time::Instant> {
    let lease = auth["lease_duration"].as_u64().filter(|&secs| secs > 0)?;
    auth["renewable"].as_bool().filter(|&renewable| renewable)?;
    Some(std::time::Instant::now() + std::time::Duration::from_secs(lease * 2 / 3))
}

fn failed(place: &str, detail: &str) -> VaultError {
    VaultError::Io { path: place.to_string(), detail: detail.to_string() }
}

/// An HTTP error's text without its URL (which names the secret's path).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the server");
    }
    text
}

/// A secret's name as one path segment: `:` and anything else unusual percent-encoded. A name
/// that could climb out of the prefix once the server decodes it is refused.
fn segment(name: &str) -> Result<String, VaultError> {
    if name.is_empty() || name.contains('/') || name.chars().all(|c| c == '.') {
        return Err(VaultError::Invalid(format!(
            "`{name}` cannot name a secret: it is empty, has a `/` or is all dots"
        )));
    }
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn a_name_is_one_path_segment_and_never_climbs_out() {
        assert_eq!(segment("qc-token:main").unwrap(), "qc-token%3Amain");
        assert_eq!(segment("anchor:audit:1f2e").unwrap(), "anchor%3Aaudit%3A1f2e");
        for climbing in ["../x", "..", ".", "", "a/b"] {
            assert!(segment(climbing).is_err(), "{climbing:?}");
        }
    }
}
