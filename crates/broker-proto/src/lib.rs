//! The wire between the broker and its local clients (the bridge, the CLI, the app).
//!
//! Every message is one frame: a 4-byte big-endian length, then that many bytes of JSON.
//! Frames larger than [`MAX_FRAME_BYTES`] are refused before they are read. The first frame
//! of a connection is a [`Request::Hello`] carrying [`PROTOCOL_VERSION`]; after that the
//! client sends [`Request`]s and the broker answers with [`Response`]s matched by `id`, and
//! may push [`Response::Event`]s to subscribers.
//!
//! This crate is the only place these formats are defined. It does no I/O beyond reading and
//! writing frames on a stream it is given, and it never logs a message: frames carry access
//! tokens and client keys.

use std::fmt;

mod replies;
mod views;
pub use replies::*;
pub use views::*;

use keybridge_secret::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bumped on any incompatible change; the broker refuses other versions with a clear error.
/// Version 2 names each request and answer by an outer key instead of a `type` field inside.
pub const PROTOCOL_VERSION: u32 = 2;
/// Largest frame either side accepts: room for big files and backtest results.
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// A bearer credential on the wire: an access token or a client key. Prints as `<redacted>`.
#[derive(Clone)]
pub struct Credential(SecretString);

impl Credential {
    pub fn new(value: String) -> Self {
        Self(SecretString::from(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Credential {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose())
    }
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Credential::new)
    }
}

/// What a connection is for, said in its first frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Hello {
    /// `keybridge-mcp` for a paired client: host-bound (no key) or with its client key.
    Bridge { version: u32, client_id: String, client_key: Option<Credential> },
    /// The CLI or the app, administering the broker. Same OS user only.
    Admin { version: u32 },
}

impl Hello {
    pub fn version(&self) -> u32 {
        match self {
            Hello::Bridge { version, .. } | Hello::Admin { version } => *version,
        }
    }
}

/// A request after the hello. `id` is chosen by the client and echoed in the answer.
///
/// Requests and answers are named by an outer key (`{"id": 1, "body": {"call": {…}}}`), not
/// by a tag inside or fields flattened in: serde then reads a frame in one pass, where a tag or
/// a flattened field makes it buffer the whole frame first, on every call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub body: RequestBody,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestBody {
    /// A fresh access token for the authenticated session.
    Refresh,
    /// The tools the token's scopes allow.
    ListTools { token: Credential },
    /// Run one tool.
    Call { token: Credential, tool: String, arguments: Value },
    /// Stop waiting for the answer to request `target` (e.g. a pending approval).
    Cancel { target: u64 },
    /// Administration, on admin connections only.
    Admin(AdminCommand),
}

/// What the CLI and the app can ask of the broker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum AdminCommand {
    Status,
    AccountAdd {
        name: String,
        user_id: String,
        organization_id: Option<String>,
        api_token: Credential,
        skip_check: bool,
    },
    AccountList,
    AccountRemove {
        name: String,
    },
    AccountTest {
        name: String,
    },
    /// Give an account a new name; its clients follow it.
    AccountRename {
        name: String,
        new_name: String,
    },
    ClientAdd {
        spec: ClientSpec,
    },
    ClientList,
    ClientShow {
        client_id: String,
    },
    ClientRevoke {
        client_id: String,
    },
    /// Change what a client may do; its live bridges re-list their tools.
    ClientUpdate {
        client_id: String,
        preset: Option<String>,
        #[serde(default)]
        scopes: Vec<String>,
        /// `None` keeps the client's overrides.
        #[serde(default)]
        policy: Option<std::collections::BTreeMap<String, String>>,
        /// Limits to change; with neither a preset nor scopes, the client keeps its scopes.
        #[serde(default)]
        limits: ClientLimitsUpdate,
    },
    SessionEnd {
        session_id: String,
    },
    Pause,
    Resume,
    ApprovalsList,
    /// The standing allowances, with the time each has left.
    AllowancesList,
    /// End a standing allowance now: the next call of that tool in that session asks again.
    AllowanceRevoke {
        session_id: String,
        tool: String,
    },
    ApprovalDecide {
        approval_id: String,
        decision: ApprovalDecision,
    },
    AuditTail {
        last: usize,
        follow: bool,
    },
    AuditVerify,
    /// Write the whole log, every line as written (chain fields included), to a new private
    /// file in `exports/` of the data folder; the export itself goes on record.
    AuditExport,
    KeysRotate,
    SettingsGet,
    /// Replace the broker-wide settings; answers with what is now in force.
    SettingsUpdate {
        settings: SettingsView,
    },
    TokenMint {
        client_id: String,
        ttl_secs: Option<u64>,
    },
}

/// A new client, as the user describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientSpec {
    pub name: String,
    pub account: String,
    /// A preset name (`read-only`, `research`, `trader`, `admin`) or explicit scopes.
    pub preset: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scope → `allow` / `ask` / `deny`, over the defaults.
    #[serde(default)]
    pub policy: std::collections::BTreeMap<String, String>,
    pub token_ttl_secs: Option<u64>,
    /// Issue a client key instead of host-bound pairing.
    #[serde(default)]
    pub with_key: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    Approve,
    Deny,
    /// Approve, and let the same tool run in this session without asking for some minutes.
    AllowFor {
        minutes: u32,
    },
}

/// The broker's answers and pushed events, each named by its outer key (see [`Request`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Answer to the hello of a bridge.
    Welcome {
        session: SessionInfo,
    },
    /// Answer to an admin hello.
    AdminWelcome {
        broker_version: String,
    },
    Token {
        id: u64,
        session: SessionInfo,
    },
    Tools {
        id: u64,
        tools: Vec<ToolInfo>,
    },
    /// A tool's result: QuantConnect's JSON.
    Result {
        id: u64,
        result: Value,
    },
    /// A call is waiting for the human: sent while it waits, then the final answer follows.
    /// The approval's id is not sent: only the human decides, in Keybridge.
    Waiting {
        id: u64,
        summary: String,
        seconds_left: u64,
    },
    Admin {
        id: u64,
        result: Value,
    },
    /// An audit record or an approval change, on a following admin connection.
    Event {
        event: Value,
    },
    Error {
        id: Option<u64>,
        error: ErrorInfo,
    },
}

/// An authenticated bridge session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub session_id: String,
    pub client_id: String,
    pub client_name: String,
    pub account: String,
    pub scopes: Vec<String>,
    pub token: Credential,
    /// Unix seconds.
    pub expires_at: u64,
    pub paused: bool,
}

/// A tool as the bridge lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub scope: String,
    /// `allow`, `ask` or `deny` for this client.
    pub policy: String,
}

/// An error a client can branch on (`code`) and show (`message`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    BadFrame,
    UnsupportedVersion,
    NotAuthenticated,
    PairingDenied,
    TokenInvalid,
    TokenExpired,
    Revoked,
    Paused,
    UnknownTool,
    MissingScope,
    PolicyDenied,
    ApprovalDenied,
    ApprovalTimedOut,
    Cancelled,
    /// The answer is larger than a frame may carry; nothing of it was sent.
    TooLarge,
    InvalidArguments,
    QuantConnect,
    RateLimited,
    NotFound,
    Invalid,
    /// One of the client's own limits (calls a minute, deployments a day, calls at once).
    LimitReached,
    Internal,
}

impl Response {
    /// The request this answers, if it answers one.
    pub fn id(&self) -> Option<u64> {
        match self {
            Response::Token { id, .. }
            | Response::Tools { id, .. }
            | Response::Result { id, .. }
            | Response::Waiting { id, .. }
            | Response::Admin { id, .. } => Some(*id),
            Response::Error { id, .. } => *id,
            Response::Welcome { .. } | Response::AdminWelcome { .. } | Response::Event { .. } => None,
        }
    }
}

/// A frame that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("frame is not a valid message: {0}")]
    Invalid(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Every byte a reader may hold for large frames in progress is taken by other frames.
    #[error(
        "a frame of {0} bytes must wait: other large requests fill what the broker reads at once; send it again in a moment"
    )]
    Busy(usize),
    /// A large frame that did not arrive whole in time, holding its share of the budget.
    #[error("a frame of {0} bytes did not arrive whole within {1} s")]
    Stalled(usize, u64),
}

/// Frames up to this size are read without asking the [`FrameBudget`]: every ordinary request.
pub const SMALL_FRAME_BYTES: usize = 64 * 1024;

/// What all the connections of one reader may hold at once in large frames still arriving, so
/// that many peers each sending most of an 8 MiB frame cannot add up to gigabytes. A frame that
/// cannot get its share within [`FrameBudget::WAIT`] is refused; one whose bytes stop coming for
/// [`FrameBudget::STALL`] is dropped and its share returned.
#[derive(Clone, Debug)]
pub struct FrameBudget {
    kib: std::sync::Arc<tokio::sync::Semaphore>,
}

impl FrameBudget {
    pub const WAIT: std::time::Duration = std::time::Duration::from_secs(2);
    pub const STALL: std::time::Duration = std::time::Duration::from_secs(30);

    pub fn new(bytes: usize) -> Self {
        Self { kib: std::sync::Arc::new(tokio::sync::Semaphore::new(bytes.div_ceil(1024))) }
    }

    /// Bytes not held by frames in progress now.
    pub fn available(&self) -> usize {
        self.kib.available_permits() * 1024
    }
}

/// [`read_frame`], with a large frame's bytes counted against `budget` while it arrives.
pub async fn read_frame_within<T, R>(reader: &mut R, budget: &FrameBudget) -> Result<T, FrameError>
where
    T: for<'de> Deserialize<'de>,
    R: AsyncRead + Unpin,
{
    let len = read_length(reader).await?;
    if len <= SMALL_FRAME_BYTES {
        return read_body(reader, len).await;
    }
    let share = u32::try_from(len.div_ceil(1024)).map_err(|_| FrameError::TooLarge(len))?;
    let _held = tokio::time::timeout(FrameBudget::WAIT, budget.kib.acquire_many(share))
        .await
        .map_err(|_| FrameError::Busy(len))?
        .map_err(|_| FrameError::Busy(len))?;
    tokio::time::timeout(FrameBudget::STALL, read_body(reader, len))
        .await
        .map_err(|_| FrameError::Stalled(len, FrameBudget::STALL.as_secs()))?
}

/// Read one frame and decode it as `T`.
pub async fn read_frame<T, R>(reader: &mut R) -> Result<T, FrameError>
where
    T: for<'de> Deserialize<'de>,
    R: AsyncRead + Unpin,
{
    let len = read_length(reader).await?;
    read_body(reader, len).await
}

/// A frame's length, refused past [`MAX_FRAME_BYTES`] before a byte of the body is read.
async fn read_length<R: AsyncRead + Unpin>(reader: &mut R) -> Result<usize, FrameError> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

async fn read_body<T, R>(reader: &mut R, len: usize) -> Result<T, FrameError>
where
    T: for<'de> Deserialize<'de>,
    R: AsyncRead + Unpin,
{
    // The buffer grows with what arrives, not with what the length claims: a peer that
    // announces 8 MiB and sends a few bytes holds a few bytes.
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    (&mut *reader).take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    serde_json::from_slice(&body).map_err(|e| FrameError::Invalid(e.to_string()))
}

/// Encode `message` and write it as one frame.
pub async fn write_frame<T, W>(writer: &mut W, message: &T) -> Result<(), FrameError>
where
    T: Serialize,
    W: AsyncWrite + Unpin,
{
    let body = serde_json::to_vec(message).map_err(|e| FrameError::Invalid(e.to_string()))?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn frames_round_trip() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let req = Request { id: 7, body: RequestBody::Cancel { target: 3 } };
        write_frame(&mut a, &req).await.unwrap();
        let back: Request = read_frame(&mut b).await.unwrap();
        assert_eq!(back.id, 7);
        assert!(matches!(back.body, RequestBody::Cancel { target: 3 }));
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_reading() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&((MAX_FRAME_BYTES as u32) + 1).to_be_bytes()).await.unwrap();
        let err = read_frame::<Request, _>(&mut b).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(_)), "{err:?}");
    }

    #[test]
    fn credentials_never_print() {
        let hello =
            Hello::Bridge { version: 1, client_id: "c".into(), client_key: Some(Credential::new("SENTINEL".into())) };
        assert!(!format!("{hello:?}").contains("SENTINEL"));
        assert!(serde_json::to_string(&hello).unwrap().contains("SENTINEL"), "but they do cross the wire");
    }

    #[test]
    fn wire_shapes_are_stable() {
        let call = Request {
            id: 1,
            body: RequestBody::Call {
                token: Credential::new("t".into()),
                tool: "read_account".into(),
                arguments: json!({}),
            },
        };
        assert_eq!(
            serde_json::to_value(&call).unwrap(),
            json!({"id": 1, "body": {"call": {"token": "t", "tool": "read_account", "arguments": {}}}})
        );
        let err =
            Response::Error { id: Some(1), error: ErrorInfo { code: ErrorCode::MissingScope, message: "m".into() } };
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"error": {"id": 1, "error": {"code": "missing_scope", "message": "m"}}})
        );
    }
}
