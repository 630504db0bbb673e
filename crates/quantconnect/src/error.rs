//! What can go wrong talking to QuantConnect, in variants a caller can act on.

use std::time::Duration;

use keybridge_catalog::ArgsError;

/// Why QuantConnect refused the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthFailure {
    UnknownUser,
    WrongToken,
    /// Our timestamp was outside QuantConnect's window, even after following its clock.
    StaleTimestamp,
    Other,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QcError {
    #[error(transparent)]
    InvalidArguments(#[from] ArgsError),

    #[error("QuantConnect rejected the credentials ({}): {message}; {}", kind_text(*.kind), kind_advice(*.kind))]
    Authentication { kind: AuthFailure, message: String },

    #[error("the stored credentials cannot be used: {reason}")]
    InvalidCredentials { reason: String },

    #[error("QuantConnect refused {endpoint}: {}", .messages.join("; "))]
    Api { endpoint: String, messages: Vec<String> },

    #[error("QuantConnect is rate limiting {endpoint}{}; wait and try again", retry_text(.retry_after))]
    RateLimited { endpoint: String, retry_after: Option<Duration> },

    #[error("QuantConnect failed on {endpoint} with HTTP {status}; it is usually temporary, try again shortly")]
    Server { endpoint: String, status: u16 },

    #[error("QuantConnect answered {endpoint} with unexpected HTTP {status}")]
    Http { endpoint: String, status: u16 },

    #[error("QuantConnect did not answer {endpoint} within {}s; check the connection and try again", .after.as_secs())]
    Timeout { endpoint: String, after: Duration },

    #[error("cannot reach QuantConnect at {base_url}: {reason}; check the network or the API base URL")]
    Unreachable { base_url: String, reason: String },

    #[error("QuantConnect sent an unreadable reply to {endpoint}: {reason}")]
    MalformedResponse { endpoint: String, reason: String },
}

fn kind_text(kind: AuthFailure) -> &'static str {
    match kind {
        AuthFailure::UnknownUser => "unknown user id",
        AuthFailure::WrongToken => "wrong API token",
        AuthFailure::StaleTimestamp => "timestamp outside the allowed window",
        AuthFailure::Other => "not authorized",
    }
}

fn kind_advice(kind: AuthFailure) -> &'static str {
    match kind {
        AuthFailure::UnknownUser => "check the user id on quantconnect.com/settings",
        AuthFailure::WrongToken => "copy the API token again from quantconnect.com/settings",
        AuthFailure::StaleTimestamp => "check this computer's date and time",
        AuthFailure::Other => "check the account's permissions",
    }
}

fn retry_text(after: &Option<Duration>) -> String {
    after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default()
}

impl QcError {
    pub(crate) fn authentication(messages: Vec<String>) -> Self {
        let message = if messages.is_empty() { "no reason given".to_string() } else { messages.join("; ") };
        let lower = message.to_ascii_lowercase();
        let kind = if lower.contains("timestamp") {
            AuthFailure::StaleTimestamp
        } else if lower.contains("hash") || lower.contains("token") {
            AuthFailure::WrongToken
        } else if lower.contains("user") {
            AuthFailure::UnknownUser
        } else {
            AuthFailure::Other
        };
        QcError::Authentication { kind, message }
    }

    pub(crate) fn authentication_from_200(messages: &[String]) -> Option<Self> {
        let auth_like = messages.iter().any(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("hash doesn't match") || m.contains("timestamp is too old") || m.contains("user id not found")
        });
        auth_like.then(|| Self::authentication(messages.to_vec()))
    }

    /// Failures worth repeating for a read: the request may not have been processed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            QcError::Server { .. }
                | QcError::RateLimited { .. }
                | QcError::Unreachable { .. }
                | QcError::MalformedResponse { .. }
        )
    }
}
