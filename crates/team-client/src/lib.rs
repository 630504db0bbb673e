//! The client side of a Keybridge team service: a person signs in at the team's identity
//! provider, their tokens are refreshed, and approvers answer questions.
//!
//! [`sign_in`] finds the provider from the service's protected-resource metadata (RFC 9728),
//! then signs the person in by the device authorization grant (RFC 8628): it shows a page and a
//! code, the person confirms them in a browser, and no password ever passes through Keybridge.
//! [`refresh`] trades a refresh token for new tokens. [`ApproverClient`] lists and answers a
//! team service's questions as the person signed in. [`KeptSignIns`] keeps sign-ins in the OS
//! keychain and hands out access tokens fresh enough to call with.
//!
//! This crate must never print, log or write a token, send one anywhere but over https (http on
//! loopback only) to the provider or the service it was issued for, or follow a redirect with one.

mod approvers;
mod kept;
mod sign_in;

pub use approvers::{Answer, ApproverClient};
pub use kept::KeptSignIns;
pub use sign_in::{Purpose, SignIn, SignInPrompt, refresh, sign_in};

/// What went wrong signing in or talking to a team service. Never carries a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TeamClientError {
    #[error(
        "`{0}` is not a team service's address: give its MCP endpoint, https (http only on loopback), with no user, query or fragment"
    )]
    Address(String),
    #[error("cannot reach {what} at {url}: {detail}")]
    Unreachable { what: &'static str, url: String, detail: String },
    #[error("{what} at {url} answered {status}: {detail}")]
    Refused { what: &'static str, url: String, status: u16, detail: String },
    #[error("signing in did not finish: {0}; sign in again")]
    SignIn(String),
    #[error("the sign-in kept in the keychain is unreadable ({0}); sign in again")]
    Stored(String),
    #[error(
        "the sign-in to {server} could not be renewed: {why}; run `keybridge team sign-in --server {server}` in a terminal"
    )]
    Renew { server: String, why: String },
    #[error(
        "the team service answered something unexpected ({0}); check the address, and that Keybridge is of one version on both ends"
    )]
    Unexpected(String),
    #[error("not signed in to {0}: run `keybridge team sign-in --server {0}` in a terminal")]
    NotSignedIn(String),
    #[error("{0}")]
    Keychain(#[from] keybridge_vault::VaultError),
    #[error("cannot lock the sign-ins for a refresh ({0})")]
    Lock(String),
}

/// A URL a token or a code may go to: https, or http on loopback; no user, query or fragment.
fn secure_or_loopback(url: &reqwest::Url) -> bool {
    let transport = url.scheme() == "https"
        || (url.scheme() == "http"
            && matches!(url.host_str(), Some("127.0.0.1") | Some("localhost") | Some("[::1]") | Some("::1")));
    transport && url.username().is_empty() && url.password().is_none() && url.fragment().is_none()
}

/// A team service's address as one spelling (`HTTPS://Team.example:443/mcp/` and
/// `https://team.example/mcp` are one service), or why it is not one.
pub fn service_address(endpoint: &str) -> Result<reqwest::Url, TeamClientError> {
    reqwest::Url::parse(endpoint.trim())
        .ok()
        .filter(|url| secure_or_loopback(url) && url.query().is_none())
        .map(|mut url| {
            let path = url.path().trim_end_matches('/').to_string();
            url.set_path(&path);
            url
        })
        .ok_or_else(|| TeamClientError::Address(printable(endpoint, 200)))
}

/// Text from a service or a provider, fit to show on a terminal: no control characters (they
/// could rewrite what the person sees), at most `max` characters.
pub(crate) fn printable(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

fn http_client() -> Result<reqwest::Client, TeamClientError> {
    reqwest::Client::builder()
        // A token must never follow a redirect somewhere else.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| TeamClientError::Unreachable { what: "HTTP", url: String::new(), detail: e.to_string() })
}

async fn read_json(
    what: &'static str,
    url: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<serde_json::Value, TeamClientError> {
    let response = sent.map_err(|e| TeamClientError::Unreachable {
        what,
        url: url.to_string(),
        detail: e.without_url().to_string(),
    })?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let detail = body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("no reason given");
        return Err(TeamClientError::Refused {
            what,
            url: url.to_string(),
            status: status.as_u16(),
            detail: printable(detail, 300),
        });
    }
    Ok(body)
}
