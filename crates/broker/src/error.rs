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
    /// Another broker of this user holds the socket: `keybridge serve` or the app.
    #[error("Keybridge is already running for this user (socket {0}); stop it first, or use it: it is the same broker")]
    AlreadyRunning(String),
    /// State on disk is behind what this install wrote (put back, or deleted): refused.
    #[error("{0}")]
    RolledBack(String),
}

impl BrokerError {
    pub fn code(&self) -> ErrorCode {
        match self {
            BrokerError::NotFound(_) => ErrorCode::NotFound,
            BrokerError::Invalid(_)
            | BrokerError::Vault(_)
            | BrokerError::AlreadyRunning(_)
            | BrokerError::RolledBack(_) => ErrorCode::Invalid,
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
            BrokerError::Internal(_) => ErrorCode::Internal,
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

impl From<crate::audit::AuditError> for BrokerError {
    fn from(e: crate::audit::AuditError) -> Self {
        BrokerError::Internal(e.to_string())
    }
}
