//! The broker's errors, each with the code clients branch on.

use keybridge_broker_proto::{ErrorCode, ErrorInfo};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("pairing refused: {0}")]
    PairingDenied(String),
    #[error("{0}")]
    TokenInvalid(String),
    #[error("the access token expired; the bridge gets a new one automatically")]
    TokenExpired,
    #[error("{0}")]
    Revoked(String),
    #[error("access is paused in Keybridge; resume it in the app or with `keybridge resume`")]
    Paused,
    #[error("unknown tool `{0}`; `keybridge catalog` lists the tools")]
    UnknownTool(String),
    #[error(
        "`{tool}` needs the scope {scope}, which this client was not granted; nothing was sent. To grant it: `keybridge client update {client} --preset {preset}` (or add `--scope {scope}`), or edit the client in the Keybridge app"
    )]
    MissingScope { tool: String, scope: String, client: String, preset: String },
    #[error("the policy of this client denies {scope}; change it in Keybridge (Settings → Policy)")]
    PolicyDenied { scope: String },
    /// An approver answering a question their own call raised.
    #[error(
        "`{approver}` raised this question by their own call, and nobody approves their own request: another approver must answer it"
    )]
    OwnRequest { approver: String },
    #[error("you denied this call in Keybridge")]
    ApprovalDenied,
    #[error("nobody approved this call in Keybridge within {0}s, so it was denied")]
    ApprovalTimedOut(u64),
    #[error("the call was cancelled")]
    Cancelled,
    #[error("{0}")]
    InvalidArguments(String),
    #[error("QuantConnect: {0}")]
    QuantConnect(String),
    #[error("QuantConnect: {0}")]
    RateLimited(String),
    /// A limit of the client's own, named with how to change it.
    #[error("{0}")]
    LimitReached(String),
    #[error("keychain: {0}")]
    Vault(#[from] keybridge_vault::VaultError),
    #[error("internal error: {0}")]
    Internal(String),
    /// The keys that sign access tokens could not be opened, made or used.
    #[error("the token signing keys: {0}")]
    Tokens(#[from] crate::tokens::TokenError),
    /// A key Keybridge keeps in the keychain could not be had.
    #[error("{0}")]
    KeychainKey(#[from] crate::primitives::KeychainKeyError),
    /// The audit log could not be opened, written or read.
    #[error("{0}")]
    Audit(#[from] crate::audit::AuditError),
    /// The audit log failed earlier: no call runs until it can be written again.
    #[error(
        "the audit log cannot be written ({0}); every call is refused until it can: fix the cause, then restart Keybridge"
    )]
    AuditFailed(String),
    /// The clients that other brokers share could not be read again: nothing is decided on a
    /// copy that may be stale.
    #[error("cannot read the shared clients again ({0}); every call is refused until they can be read")]
    StateUnreadable(#[source] Box<OpenError>),
    /// The task running a call ended without an answer (it panicked).
    #[error("the call stopped without an answer: {0}")]
    CallStopped(#[source] tokio::task::JoinError),
}

/// Why a broker could not start. Apart from [`BrokerError`], which a call or a command gets:
/// these stop the broker before it serves anyone, and each says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// A file or folder of Keybridge's own could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Storage {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("keychain: {0}")]
    Keychain(#[from] keybridge_vault::VaultError),
    /// A key Keybridge keeps in the keychain could not be had.
    #[error("{0}")]
    KeychainKey(#[from] crate::primitives::KeychainKeyError),
    /// The keys that sign access tokens could not be opened or made.
    #[error("the token signing keys: {0}")]
    Tokens(#[from] crate::tokens::TokenError),
    /// The audit log on disk cannot be continued (it does not verify, or cannot be read).
    #[error("{0}; inspect it with `keybridge audit verify`, then move the audit folder aside to start a new log")]
    AuditUnusable(#[source] crate::audit::AuditError),
    /// State on disk is behind what this install wrote (put back, or deleted): refused.
    #[error("{0}")]
    RolledBack(String),
    /// Clients or settings on disk that cannot be obeyed: changed outside Keybridge, or damaged.
    /// The message names the file and what to do.
    #[error("{0}")]
    StateRefused(String),
    #[error("cannot set up the QuantConnect client: {0}")]
    QuantConnect(#[source] keybridge_quantconnect::QcError),
    /// Another broker of this user holds the socket: `keybridge serve` or the app.
    #[error("Keybridge is already running for this user (socket {0}); stop it first, or use it: it is the same broker")]
    AlreadyRunning(String),
    /// The local socket or pipe could not be bound.
    #[error("{0}")]
    Endpoint(#[source] keybridge_endpoint::EndpointError),
}

impl From<BrokerError> for OpenError {
    /// A state store's write during start-up (accepting restored state) fails like any write.
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::Vault(e) => OpenError::Keychain(e),
            BrokerError::KeychainKey(e) => OpenError::KeychainKey(e),
            BrokerError::Tokens(e) => OpenError::Tokens(e),
            other => OpenError::StateRefused(other.to_string()),
        }
    }
}

impl BrokerError {
    pub fn code(&self) -> ErrorCode {
        match self {
            BrokerError::NotFound(_) => ErrorCode::NotFound,
            BrokerError::Invalid(_) | BrokerError::Vault(_) | BrokerError::OwnRequest { .. } => ErrorCode::Invalid,
            BrokerError::PairingDenied(_) => ErrorCode::PairingDenied,
            BrokerError::TokenInvalid(_) => ErrorCode::TokenInvalid,
            BrokerError::TokenExpired => ErrorCode::TokenExpired,
            BrokerError::Revoked(_) => ErrorCode::Revoked,
            BrokerError::Paused => ErrorCode::Paused,
            BrokerError::UnknownTool(_) => ErrorCode::UnknownTool,
            BrokerError::MissingScope { .. } => ErrorCode::MissingScope,
            BrokerError::PolicyDenied { .. } => ErrorCode::PolicyDenied,
            BrokerError::ApprovalDenied => ErrorCode::ApprovalDenied,
            BrokerError::ApprovalTimedOut(_) => ErrorCode::ApprovalTimedOut,
            BrokerError::Cancelled => ErrorCode::Cancelled,
            BrokerError::InvalidArguments(_) => ErrorCode::InvalidArguments,
            BrokerError::QuantConnect(_) => ErrorCode::QuantConnect,
            BrokerError::RateLimited(_) => ErrorCode::RateLimited,
            BrokerError::LimitReached(_) => ErrorCode::LimitReached,
            BrokerError::Internal(_)
            | BrokerError::Tokens(_)
            | BrokerError::KeychainKey(_)
            | BrokerError::Audit(_)
            | BrokerError::AuditFailed(_)
            | BrokerError::StateUnreadable(_)
            | BrokerError::CallStopped(_) => ErrorCode::Internal,
        }
    }

    pub fn info(&self) -> ErrorInfo {
        ErrorInfo { code: self.code(), message: self.to_string() }
    }
}

impl From<keybridge_quantconnect::QcError> for BrokerError {
    fn from(e: keybridge_quantconnect::QcError) -> Self {
        use keybridge_quantconnect::QcError;
        match e {
            QcError::InvalidArguments(a) => BrokerError::InvalidArguments(a.to_string()),
            e @ QcError::RateLimited { .. } => BrokerError::RateLimited(e.to_string()),
            other => BrokerError::QuantConnect(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_below_keeps_its_cause_and_says_where() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = OpenError::Storage { action: "read", path: "/data/clients.json".into(), source: denied.into() };
        assert!(std::error::Error::source(&e).is_some(), "the cause is kept, not flattened into text");
        assert!(e.to_string().starts_with("cannot read /data/clients.json: "), "{e}");
        let e = BrokerError::from(crate::tokens::TokenError::Expired);
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(e.code(), ErrorCode::Internal);
    }
}
