//! The simulator's own check of QuantConnect's request signature. It is deliberately
//! written apart from the client's signing code: if both sides shared one function, a bug
//! in it would sign and verify consistently and no test would notice.

use axum::http::HeaderMap;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::config::SimAccount;

pub(crate) const MSG_MISSING: &str = "Authorization header is missing or invalid.";
pub(crate) const MSG_UNKNOWN_USER: &str = "User ID not found.";
pub(crate) const MSG_BAD_HASH: &str = "Hash doesn't match.";

#[derive(Clone, Debug)]
pub(crate) enum AuthOutcome {
    Accepted { user_id: String },
    Refused { user_id: Option<String>, message: String },
}

impl AuthOutcome {
    pub(crate) fn user_id(&self) -> Option<&str> {
        match self {
            AuthOutcome::Accepted { user_id } => Some(user_id),
            AuthOutcome::Refused { user_id, .. } => user_id.as_deref(),
        }
    }
}

/// Splits `Authorization: Basic base64(user:password)`; `None` when it is absent or garbled.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some((user.to_owned(), password.to_owned()))
}

fn expected_password(api_token: &str, timestamp: &str) -> String {
    let digest = Sha256::digest(format!("{api_token}:{timestamp}").as_bytes());
    hex::encode(digest)
}

/// Compares without stopping at the first differing byte, like a real server should.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn check(headers: &HeaderMap, accounts: &[SimAccount], sim_now: i64, window_secs: u64) -> AuthOutcome {
    let creds = basic_credentials(headers);
    let user_id = creds.as_ref().map(|(u, _)| u.clone());
    let refuse = |message: String| AuthOutcome::Refused { user_id: user_id.clone(), message };

    let timestamp = headers
        .get("Timestamp")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let (Some((user, password)), Some(timestamp)) = (creds.clone(), timestamp) else {
        return refuse(MSG_MISSING.to_owned());
    };
    let Ok(ts) = timestamp.parse::<i64>() else {
        return refuse(MSG_MISSING.to_owned());
    };

    let Some(account) = accounts.iter().find(|a| a.user_id == user) else {
        return refuse(MSG_UNKNOWN_USER.to_owned());
    };

    if sim_now.abs_diff(ts) > window_secs {
        return refuse(format!("Timestamp is too old for hash. Server time: {sim_now}"));
    }

    // The hash covers the header text exactly as sent, so a client that signs one
    // value and sends another (say, a reformatted number) is caught.
    if !same(&password, &expected_password(&account.api_token, &timestamp)) {
        return refuse(MSG_BAD_HASH.to_owned());
    }
    AuthOutcome::Accepted { user_id: user }
}

/// QuantConnect's request signature check as the simulator applies it, on raw `Authorization`
/// and `Timestamp` header values (`None`: absent): the user id when accepted, else the refusal.
/// For fuzzing the check from outside the crate.
pub fn check_signature(
    authorization: Option<&[u8]>,
    timestamp: Option<&[u8]>,
    accounts: &[SimAccount],
    now: i64,
    window_secs: u64,
) -> Result<String, String> {
    use axum::http::{HeaderName, HeaderValue, header::AUTHORIZATION};
    let mut headers = HeaderMap::new();
    let mut put = |name: HeaderName, value: Option<&[u8]>| {
        if let Some(value) = value.and_then(|v| HeaderValue::from_bytes(v).ok()) {
            headers.insert(name, value);
        }
    };
    put(AUTHORIZATION, authorization);
    put(HeaderName::from_static("timestamp"), timestamp);
    match check(&headers, accounts, now, window_secs) {
        AuthOutcome::Accepted { user_id } => Ok(user_id),
        AuthOutcome::Refused { message, .. } => Err(message),
    }
}
