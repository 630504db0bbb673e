//! A person's sign-in at a team service's identity provider: discovery, the device
//! authorization grant, refresh, and the form the sign-in is kept in (in the OS keychain, by
//! the caller).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keybridge_secret::SecretString;
use serde_json::{Value, json};

use crate::{TeamClientError, http_client, printable, read_json, secure_or_loopback};

/// What the person is asked to do to sign in: open a page and confirm a code there. Each part is
/// text from the provider, fit to show (no control characters).
#[derive(Debug, Clone)]
pub struct SignInPrompt {
    /// The page, with the code filled in when the provider offers that.
    pub page: String,
    pub code: String,
    /// The identity provider the page belongs to, as the service names it.
    pub issuer: String,
}

/// What the sign-in is for, which decides the scopes asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Answering questions: the person's identity and groups, for this one command.
    Approve,
    /// Calling tools through the MCP endpoint, for as long as the provider lets the sign-in
    /// last: every scope the service names, and a refresh token (`offline_access`).
    Call,
}

/// A person signed in to one team service: where to refresh, and the tokens.
pub struct SignIn {
    /// The MCP endpoint the tokens are for (their audience, RFC 8707).
    pub resource: String,
    pub issuer: String,
    pub token_endpoint: String,
    pub client_id: String,
    pub access: SecretString,
    pub refresh: Option<SecretString>,
    /// When the access token ends, in seconds since the epoch.
    pub expires_at: u64,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("resource", &self.resource)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl SignIn {
    /// The sign-in as one secret, for the keychain. With a refresh token, the access token is
    /// left out: a fresh one is had each time, and the entry stays small enough for Windows'
    /// Credential Manager (2,560 bytes).
    pub fn to_stored(&self) -> SecretString {
        let (access, expires_at) = match &self.refresh {
            Some(_) => (None, 0),
            None => (Some(self.access.expose().as_str()), self.expires_at),
        };
        let stored = json!({
            "resource": self.resource,
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "client_id": self.client_id,
            "access_token": access,
            "refresh_token": self.refresh.as_ref().map(|r| r.expose().as_str()),
            "expires_at": expires_at,
        });
        SecretString::new(stored.to_string())
    }

    /// A sign-in as [`SignIn::to_stored`] wrote it.
    pub fn from_stored(stored: &SecretString) -> Result<SignIn, TeamClientError> {
        let value: Value = serde_json::from_str(stored.expose())
            .map_err(|e| TeamClientError::Stored(format!("not JSON at line {} column {}", e.line(), e.column())))?;
        let text = |name: &str| {
            value[name].as_str().map(str::to_string).ok_or_else(|| TeamClientError::Stored(format!("no `{name}`")))
        };
        Ok(SignIn {
            resource: text("resource")?,
            issuer: text("issuer")?,
            token_endpoint: text("token_endpoint")?,
            client_id: text("client_id")?,
            access: SecretString::new(value["access_token"].as_str().unwrap_or_default().to_string()),
            refresh: value["refresh_token"].as_str().map(|r| SecretString::new(r.to_string())),
            expires_at: value["expires_at"].as_u64().unwrap_or(0),
        })
    }

    /// Seconds the access token has left (0 once it ended).
    pub fn seconds_left(&self) -> u64 {
        self.expires_at.saturating_sub(now())
    }
}

/// One of Keybridge's tool scopes (`qc:…`), as the service's metadata lists them.
fn is_keybridge_scope(scope: &str) -> bool {
    scope.strip_prefix("qc:").is_some_and(|rest| {
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'_')
    })
}

/// An access token that is a JWT must name this service among its audiences (RFC 8707): a
/// provider that ignored the `resource` asked for issued a token good elsewhere too, and it is
/// not kept. An opaque token is the service's to judge.
fn for_this_service(access: &SecretString, resource: &str) -> Result<(), TeamClientError> {
    use base64::Engine;
    let mut parts = access.expose().split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Ok(());
    };
    let Some(claims) = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    else {
        return Ok(());
    };
    let audiences = match &claims["aud"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let resource = resource.trim_end_matches('/');
    if audiences.iter().any(|aud| aud.trim_end_matches('/') == resource) {
        return Ok(());
    }
    Err(TeamClientError::SignIn(format!(
        "the identity provider issued a token for {}, not for {resource}; it must honour the `resource` asked for (RFC 8707)",
        printable(&audiences.join(", "), 300)
    )))
}

/// The provider's answer to a token request: the tokens, or why not.
enum Granted {
    Tokens { access: SecretString, refresh: Option<SecretString>, expires_at: u64 },
    Pending,
    SlowDown,
    Refused(String),
}

/// Ask the provider's token endpoint for tokens; what it granted, or why not.
async fn ask_for_tokens(
    http: &reqwest::Client,
    token_url: &str,
    form: &[(&str, &str)],
) -> Result<Granted, TeamClientError> {
    let sent = http.post(token_url).form(form).send().await.map_err(|e| TeamClientError::Unreachable {
        what: "the identity provider",
        url: token_url.to_string(),
        detail: e.without_url().to_string(),
    })?;
    Ok(granted(&sent.json().await.unwrap_or(Value::Null)))
}

fn granted(body: &Value) -> Granted {
    if let Some(access) = body["access_token"].as_str() {
        // An access token of unknown life is taken as a short one: asked again soon, never kept.
        let lifetime = body["expires_in"].as_u64().unwrap_or(60).clamp(1, 24 * 3600);
        return Granted::Tokens {
            access: SecretString::new(access.to_string()),
            refresh: body["refresh_token"].as_str().map(|r| SecretString::new(r.to_string())),
            expires_at: now() + lifetime,
        };
    }
    match body["error"].as_str() {
        Some("authorization_pending") => Granted::Pending,
        Some("slow_down") => Granted::SlowDown,
        Some("access_denied") => Granted::Refused("the sign-in was declined".into()),
        Some("expired_token") => Granted::Refused("the code expired before anyone confirmed it".into()),
        Some("invalid_grant") => Granted::Refused(
            "the identity provider no longer accepts this sign-in (it ended, was revoked, or was used elsewhere)"
                .into(),
        ),
        other => Granted::Refused(printable(
            &format!(
                "the identity provider said {}{}",
                other.unwrap_or("nothing"),
                body["error_description"].as_str().map(|d| format!(": {d}")).unwrap_or_default()
            ),
            400,
        )),
    }
}

/// Sign a person in to the team service at `endpoint` (its MCP endpoint's URL) as the identity
/// provider's public client `client_id`, by the device authorization grant: `prompt` is shown
/// the page and the code, then this waits until the person confirmed.
pub async fn sign_in(
    endpoint: &str,
    client_id: &str,
    purpose: Purpose,
    prompt: impl FnOnce(&SignInPrompt),
) -> Result<SignIn, TeamClientError> {
    let endpoint = crate::service_address(endpoint)?;
    let http = http_client()?;
    // RFC 9728: the endpoint names its identity provider and what tokens must be for.
    let path = endpoint.path().trim_end_matches('/');
    let metadata_url =
        format!("{}/.well-known/oauth-protected-resource{path}", endpoint.origin().ascii_serialization());
    let metadata =
        read_json("the team service's metadata", &metadata_url, http.get(&metadata_url).send().await).await?;
    // RFC 9728 §3.3: the metadata must be for the endpoint asked about, or a token for another
    // resource could be had and carried there.
    let resource = metadata["resource"].as_str().unwrap_or_default().to_string();
    if resource.trim_end_matches('/') != endpoint.as_str().trim_end_matches('/') {
        return Err(TeamClientError::SignIn(format!(
            "the team service's metadata is for `{resource}`, not for {endpoint}; check the address"
        )));
    }
    let issuer = metadata["authorization_servers"][0]
        .as_str()
        .and_then(|issuer| reqwest::Url::parse(issuer).ok())
        .filter(secure_or_loopback)
        .ok_or_else(|| {
            TeamClientError::SignIn("the team service names no identity provider it may send people to".into())
        })?;
    let issuer = issuer.as_str().trim_end_matches('/').to_string();
    let discovery_url = format!("{issuer}/.well-known/openid-configuration");
    let provider = read_json("the identity provider", &discovery_url, http.get(&discovery_url).send().await).await?;
    if provider["issuer"].as_str().map(|i| i.trim_end_matches('/')) != Some(issuer.as_str()) {
        return Err(TeamClientError::SignIn(format!(
            "the identity provider at {issuer} names another issuer in its discovery document"
        )));
    }
    // The device code and the tokens travel to these: https, or http on loopback only.
    let endpoint_of = |name: &str| {
        provider[name].as_str().filter(|url| reqwest::Url::parse(url).is_ok_and(|url| secure_or_loopback(&url)))
    };
    let device_url = endpoint_of("device_authorization_endpoint").ok_or_else(|| {
        TeamClientError::SignIn(
            "the identity provider offers no device sign-in (RFC 8628) over https; enable it for this client".into(),
        )
    })?;
    let token_url = endpoint_of("token_endpoint")
        .ok_or_else(|| TeamClientError::SignIn("the identity provider names no https token endpoint".into()))?;
    let scope = match purpose {
        Purpose::Approve => "openid".to_string(),
        Purpose::Call => {
            // Keybridge's own scopes alone, whatever else the service names: a token asked for
            // here must be good for nothing but this service's tools.
            let mut scope = vec!["openid", "offline_access"];
            if let Some(supported) = metadata["scopes_supported"].as_array() {
                scope.extend(supported.iter().filter_map(Value::as_str).filter(|s| is_keybridge_scope(s)));
            }
            scope.join(" ")
        }
    };
    let asked = http
        .post(device_url)
        .form(&[("client_id", client_id), ("scope", scope.as_str()), ("resource", resource.as_str())])
        .send()
        .await;
    let device = read_json("the identity provider's device sign-in", device_url, asked).await?;
    let (Some(device_code), Some(code)) = (device["device_code"].as_str(), device["user_code"].as_str()) else {
        return Err(TeamClientError::SignIn("the identity provider's answer has no device or user code".into()));
    };
    let device_code = SecretString::new(device_code.to_string());
    let page = device["verification_uri_complete"].as_str().or(device["verification_uri"].as_str()).unwrap_or_default();
    prompt(&SignInPrompt { page: printable(page, 500), code: printable(code, 64), issuer: printable(&issuer, 300) });
    let mut interval = Duration::from_secs(device["interval"].as_u64().unwrap_or(5).clamp(1, 60));
    let lifetime = device["expires_in"].as_u64().unwrap_or(600).clamp(1, 3600);
    let deadline = std::time::Instant::now() + Duration::from_secs(lifetime);
    loop {
        if std::time::Instant::now() > deadline {
            return Err(TeamClientError::SignIn("the code expired before anyone confirmed it".into()));
        }
        tokio::time::sleep(interval).await;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code.expose().as_str()),
            ("client_id", client_id),
            ("resource", resource.as_str()),
        ];
        match ask_for_tokens(&http, token_url, &form).await? {
            Granted::Tokens { access, refresh, expires_at } => {
                for_this_service(&access, &resource)?;
                return Ok(SignIn {
                    resource,
                    issuer,
                    token_endpoint: token_url.to_string(),
                    client_id: client_id.to_string(),
                    access,
                    refresh,
                    expires_at,
                });
            }
            Granted::Pending => {}
            Granted::SlowDown => interval += Duration::from_secs(5),
            Granted::Refused(why) => return Err(TeamClientError::SignIn(why)),
        }
    }
}

/// New tokens for `signed_in`, by its refresh token; the provider may hand out a new refresh
/// token too (rotation), which then replaces the old one.
pub async fn refresh(signed_in: &SignIn) -> Result<SignIn, TeamClientError> {
    let renew = |why: String| TeamClientError::Renew { server: signed_in.resource.clone(), why };
    let Some(refresh) = &signed_in.refresh else {
        return Err(renew(
            "the identity provider gave it no refresh token (allow `offline_access` and the refresh grant for this client)".into(),
        ));
    };
    let token_url = reqwest::Url::parse(&signed_in.token_endpoint)
        .ok()
        .filter(secure_or_loopback)
        .ok_or_else(|| TeamClientError::Stored("its token endpoint is not https".into()))?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.expose().as_str()),
        ("client_id", signed_in.client_id.as_str()),
        ("resource", signed_in.resource.as_str()),
    ];
    let http = http_client()?;
    match ask_for_tokens(&http, token_url.as_str(), &form).await? {
        Granted::Tokens { access, refresh: rotated, expires_at } => {
            for_this_service(&access, &signed_in.resource).map_err(|e| renew(e.to_string()))?;
            Ok(SignIn {
                resource: signed_in.resource.clone(),
                issuer: signed_in.issuer.clone(),
                token_endpoint: signed_in.token_endpoint.clone(),
                client_id: signed_in.client_id.clone(),
                access,
                refresh: rotated.or_else(|| signed_in.refresh.clone()),
                expires_at,
            })
        }
        Granted::Pending | Granted::SlowDown => {
            Err(renew("the identity provider answered as if to a device sign-in".into()))
        }
        Granted::Refused(why) => Err(renew(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_comes_back_from_the_keychain_as_it_went_in_and_never_prints_a_token() {
        let signed_in = SignIn {
            resource: "https://team.example/mcp".into(),
            issuer: "https://id.example".into(),
            token_endpoint: "https://id.example/token".into(),
            client_id: "keybridge-mcp".into(),
            access: SecretString::new("ACCESS-SENTINEL".into()),
            refresh: Some(SecretString::new("REFRESH-SENTINEL".into())),
            expires_at: 4_000_000_000,
        };
        let printed = format!("{signed_in:?}");
        assert!(!printed.contains("SENTINEL"), "{printed}");
        // With a refresh token, the access token is not kept: the next use refreshes.
        let stored = signed_in.to_stored();
        assert!(!stored.expose().contains("ACCESS-SENTINEL"));
        let back = SignIn::from_stored(&stored).unwrap();
        assert_eq!(back.seconds_left(), 0);
        assert_eq!(back.refresh.as_ref().unwrap().expose(), "REFRESH-SENTINEL");
        assert_eq!((&back.resource, &back.client_id), (&signed_in.resource, &signed_in.client_id));
        // Without one, the access token is all there is, and is kept until its end.
        let only_access = SignIn {
            refresh: None,
            access: SecretString::new("ACCESS-SENTINEL".into()),
            expires_at: 4_000_000_000,
            ..back
        };
        let back = SignIn::from_stored(&only_access.to_stored()).unwrap();
        assert_eq!((back.access.expose().as_str(), back.expires_at), ("ACCESS-SENTINEL", 4_000_000_000));
        let broken =
            SignIn::from_stored(&SecretString::new("{\"access_token\": \"ACCESS-SENTINEL\"".into())).unwrap_err();
        assert!(!broken.to_string().contains("SENTINEL") && broken.to_string().contains("sign in again"), "{broken}");
    }

    #[test]
    fn only_keybridges_scopes_are_asked_for_and_a_token_for_another_audience_is_not_kept() {
        assert!(is_keybridge_scope("qc:live:trade") && is_keybridge_scope("qc:account:read"));
        for other in ["Mail.Read", "https://graph.microsoft.com/.default", "qc:", "qc:a b", "offline_access"] {
            assert!(!is_keybridge_scope(other), "{other}");
        }
        use base64::Engine;
        let jwt = |claims: Value| {
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
            SecretString::new(format!("eyJhbGciOiJFZERTQSJ9.{payload}.c2ln"))
        };
        let resource = "https://team.example/mcp";
        assert!(for_this_service(&jwt(json!({"aud": resource})), resource).is_ok());
        assert!(for_this_service(&jwt(json!({"aud": ["x", "https://team.example/mcp/"]})), resource).is_ok());
        let elsewhere = for_this_service(&jwt(json!({"aud": "https://graph.example"})), resource).unwrap_err();
        assert!(elsewhere.to_string().contains("https://graph.example"), "{elsewhere}");
        assert!(for_this_service(&SecretString::new("opaque-token".into()), resource).is_ok());
    }

    #[test]
    fn a_provider_that_refuses_says_so_in_words() {
        assert!(matches!(granted(&json!({"error": "authorization_pending"})), Granted::Pending));
        match granted(&json!({"error": "invalid_grant"})) {
            Granted::Refused(why) => assert!(why.contains("no longer accepts"), "{why}"),
            _ => panic!("an invalid grant is a refusal"),
        }
        match granted(&json!({"access_token": "a"})) {
            Granted::Tokens { expires_at, refresh, .. } => {
                assert!(refresh.is_none() && expires_at <= now() + 60);
            }
            _ => panic!("a token is granted"),
        }
    }
}
