//! Approvers of a team service, over HTTP: the routes a replica serves to the people of the
//! identity provider's approver group, and the client `keybridge approvals --server` uses.
//!
//! `GET {endpoint}/approvals` lists every question any replica waits on; `POST
//! {endpoint}/approvals/{id}` with `{"decision": ...}` answers one, through whichever replica
//! the request reaches. The caller is the token's subject: nobody answers a question their own
//! call raised. The client signs a person in with the device authorization grant (RFC 8628):
//! it shows a code and a page, the person signs in there, and the client never sees a password.
//! Access tokens are held only as secrets and sent only to the team service.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use keybridge_broker::{Broker, BrokerError};
use keybridge_broker_proto::{AdminCommand, AdminReply, ApprovalDecided, ApprovalDecision, ApprovalView, ErrorCode};
use keybridge_vault::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::resource::Principal;

/// The body of an answer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Answer {
    pub decision: ApprovalDecision,
}

/// The approvers' routes under `base` (the MCP endpoint's path, `""` at the root). They expect
/// the [`Principal`] the resource server's group guard puts on each request.
pub fn routes(broker: Arc<Broker>, base: &str) -> Router {
    Router::new()
        .route(&format!("{base}/approvals"), get(list))
        .route(&format!("{base}/approvals/{{id}}"), post(answer))
        .with_state(broker)
}

async fn list(State(broker): State<Arc<Broker>>) -> Response {
    match broker.admin(AdminCommand::ApprovalsList).await {
        Ok(AdminReply::Approvals(open)) => Json(open).into_response(),
        Ok(_) => refused(&BrokerError::Internal("the broker answered with something else".into())),
        Err(e) => refused(&e),
    }
}

async fn answer(
    State(broker): State<Arc<Broker>>,
    Extension(approver): Extension<Principal>,
    Path(id): Path<String>,
    Json(answer): Json<Answer>,
) -> Response {
    match broker.answer_question(&id, answer.decision, Some(&approver.subject)) {
        Ok(AdminReply::ApprovalDecided(decided)) => Json(decided).into_response(),
        Ok(_) => refused(&BrokerError::Internal("the broker answered with something else".into())),
        Err(e) => refused(&e),
    }
}

fn refused(error: &BrokerError) -> Response {
    let status = match error {
        BrokerError::OwnRequest { .. } => StatusCode::FORBIDDEN,
        _ => match error.code() {
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        },
    };
    (status, Json(json!({"error": error.to_string()}))).into_response()
}

/// What went wrong signing in or talking to the team service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApproverError {
    #[error("`{0}` is not a team service's address: give its MCP endpoint, https (http only on loopback)")]
    Address(String),
    #[error("cannot reach {what} at {url}: {detail}")]
    Unreachable { what: &'static str, url: String, detail: String },
    #[error("{what} at {url} answered {status}: {detail}")]
    Refused { what: &'static str, url: String, status: u16, detail: String },
    #[error("signing in did not finish: {0}; run the command again")]
    SignIn(String),
}

/// What the person is asked to do to sign in: open a page and confirm a code there.
#[derive(Debug, Clone)]
pub struct SignInPrompt {
    /// The page, with the code filled in when the provider offers that.
    pub page: String,
    pub code: String,
}

/// A person signed in to a team service: its approvals, answered as them.
pub struct ApproverClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    token: SecretString,
}

impl std::fmt::Debug for ApproverClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApproverClient").field("endpoint", &self.endpoint.as_str()).finish_non_exhaustive()
    }
}

fn secure_or_loopback(url: &reqwest::Url) -> bool {
    url.scheme() == "https"
        || (url.scheme() == "http"
            && matches!(url.host_str(), Some("127.0.0.1") | Some("localhost") | Some("[::1]") | Some("::1")))
}

fn http_client() -> Result<reqwest::Client, ApproverError> {
    reqwest::Client::builder()
        // A token must never follow a redirect somewhere else.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ApproverError::Unreachable { what: "HTTP", url: String::new(), detail: e.to_string() })
}

async fn read_json(
    what: &'static str,
    url: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<Value, ApproverError> {
    let response = sent.map_err(|e| ApproverError::Unreachable {
        what,
        url: url.to_string(),
        detail: e.without_url().to_string(),
    })?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let detail = body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("no reason given");
        return Err(ApproverError::Refused {
            what,
            url: url.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
        });
    }
    Ok(body)
}

impl ApproverClient {
    /// Sign a person in to the team service at `endpoint` (its MCP endpoint's URL) as the
    /// identity provider's public client `client_id`, by the device authorization grant:
    /// `prompt` is shown the page and the code, then this waits until the person confirmed.
    pub async fn sign_in(
        endpoint: &str,
        client_id: &str,
        prompt: impl FnOnce(&SignInPrompt),
    ) -> Result<ApproverClient, ApproverError> {
        let endpoint = reqwest::Url::parse(endpoint)
            .ok()
            .filter(secure_or_loopback)
            .ok_or_else(|| ApproverError::Address(endpoint.to_string()))?;
        let http = http_client()?;
        // RFC 9728: the endpoint names its identity provider and what tokens must be for.
        let path = endpoint.path().trim_end_matches('/');
        let metadata_url =
            format!("{}/.well-known/oauth-protected-resource{path}", endpoint.origin().ascii_serialization());
        let metadata =
            read_json("the team service's metadata", &metadata_url, http.get(&metadata_url).send().await).await?;
        // RFC 9728 §3.3: the metadata must be for the endpoint asked about, or a token for
        // another resource could be had and carried there.
        let resource = metadata["resource"].as_str().unwrap_or_default().to_string();
        if resource.trim_end_matches('/') != endpoint.as_str().trim_end_matches('/') {
            return Err(ApproverError::SignIn(format!(
                "the team service's metadata is for `{resource}`, not for {endpoint}; check the address"
            )));
        }
        let issuer = metadata["authorization_servers"][0]
            .as_str()
            .and_then(|issuer| reqwest::Url::parse(issuer).ok())
            .filter(secure_or_loopback)
            .ok_or_else(|| {
                ApproverError::SignIn("the team service names no identity provider it may send people to".into())
            })?;
        let discovery_url = format!("{}/.well-known/openid-configuration", issuer.as_str().trim_end_matches('/'));
        let provider =
            read_json("the identity provider", &discovery_url, http.get(&discovery_url).send().await).await?;
        if provider["issuer"].as_str().map(|i| i.trim_end_matches('/')) != Some(issuer.as_str().trim_end_matches('/')) {
            return Err(ApproverError::SignIn(format!(
                "the identity provider at {issuer} names another issuer in its discovery document"
            )));
        }
        // The device code and the token travel to these: https, or http on loopback only.
        let endpoint_of = |name: &str| {
            provider[name].as_str().filter(|url| reqwest::Url::parse(url).is_ok_and(|url| secure_or_loopback(&url)))
        };
        let device_url = endpoint_of("device_authorization_endpoint").ok_or_else(|| {
            ApproverError::SignIn(
                "the identity provider offers no device sign-in (RFC 8628) over https; enable it for this client"
                    .into(),
            )
        })?;
        let token_url = endpoint_of("token_endpoint")
            .ok_or_else(|| ApproverError::SignIn("the identity provider names no https token endpoint".into()))?;
        let asked = http
            .post(device_url)
            .form(&[("client_id", client_id), ("scope", "openid"), ("resource", resource.as_str())])
            .send()
            .await;
        let device = read_json("the identity provider's device sign-in", device_url, asked).await?;
        let (Some(device_code), Some(code)) = (device["device_code"].as_str(), device["user_code"].as_str()) else {
            return Err(ApproverError::SignIn("the identity provider's answer has no device or user code".into()));
        };
        let device_code = SecretString::new(device_code.to_string());
        let page =
            device["verification_uri_complete"].as_str().or(device["verification_uri"].as_str()).unwrap_or_default();
        prompt(&SignInPrompt { page: page.to_string(), code: code.to_string() });
        let mut interval = Duration::from_secs(device["interval"].as_u64().unwrap_or(5).clamp(1, 60));
        let lifetime = device["expires_in"].as_u64().unwrap_or(600).clamp(1, 3600);
        let deadline = std::time::Instant::now() + Duration::from_secs(lifetime);
        loop {
            if std::time::Instant::now() > deadline {
                return Err(ApproverError::SignIn("the code expired before anyone confirmed it".into()));
            }
            tokio::time::sleep(interval).await;
            let form = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code.expose().as_str()),
                ("client_id", client_id),
                ("resource", resource.as_str()),
            ];
            let polled = http.post(token_url).form(&form).send().await.map_err(|e| ApproverError::Unreachable {
                what: "the identity provider",
                url: token_url.to_string(),
                detail: e.without_url().to_string(),
            })?;
            let body: Value = polled.json().await.unwrap_or(Value::Null);
            if let Some(token) = body["access_token"].as_str() {
                return Ok(ApproverClient { http, endpoint, token: SecretString::new(token.to_string()) });
            }
            match body["error"].as_str() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval += Duration::from_secs(5),
                Some("access_denied") => return Err(ApproverError::SignIn("the sign-in was declined".into())),
                Some("expired_token") => {
                    return Err(ApproverError::SignIn("the code expired before anyone confirmed it".into()));
                }
                other => {
                    return Err(ApproverError::SignIn(format!(
                        "the identity provider said {}",
                        other.unwrap_or("nothing")
                    )));
                }
            }
        }
    }

    fn approvals_url(&self, id: Option<&str>) -> String {
        let base = self.endpoint.as_str().trim_end_matches('/');
        match id {
            Some(id) => format!("{base}/approvals/{}", encode_segment(id)),
            None => format!("{base}/approvals"),
        }
    }

    /// Every question any replica waits on, oldest first.
    pub async fn list(&self) -> Result<Vec<ApprovalView>, ApproverError> {
        let url = self.approvals_url(None);
        let sent = self.http.get(&url).bearer_auth(self.token.expose()).send().await;
        let body = read_json("the team service", &url, sent).await?;
        serde_json::from_value(body)
            .map_err(|e| ApproverError::SignIn(format!("the list is not one of questions: {e}")))
    }

    /// Answer question `id` as the person signed in.
    pub async fn answer(&self, id: &str, decision: ApprovalDecision) -> Result<ApprovalDecided, ApproverError> {
        let url = self.approvals_url(Some(id));
        let sent = self.http.post(&url).bearer_auth(self.token.expose()).json(&Answer { decision }).send().await;
        let body = read_json("the team service", &url, sent).await?;
        serde_json::from_value(body).map_err(|e| ApproverError::SignIn(format!("the answer is not one: {e}")))
    }
}

/// An id as one path segment: anything but letters, digits, `-` and `_` percent-encoded.
fn encode_segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
