//! The broker's local endpoint, for this user only: a Unix socket in a private folder, or on
//! Windows a named pipe whose access list names this user alone.
//!
//! Both ends check the other, with what the operating system says rather than what a peer
//! claims. [`Listener::accept`] tells the broker which user each peer runs as. [`connect`]
//! refuses an endpoint that another user serves before a single byte is written, so a client
//! key or a QuantConnect token typed into `keybridge account add` never reaches a process that
//! squats where the broker should be.
//!
//! This crate moves bytes and nothing else: it knows no frame, holds no secret, and must never
//! hand out a connection to or from another user as if it were this user's. It is the one
//! crate of the workspace allowed unsafe code, in its Windows module and its macOS `process`
//! module only.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as sys;

#[cfg(windows)]
#[allow(unsafe_code)]
mod windows;
#[cfg(windows)]
use windows as sys;

/// What Windows says about other processes, for the broker's walk up from a peer to the program
/// that started it: each process's parent, program and start time.
#[cfg(windows)]
pub mod process {
    pub use crate::windows::{image_and_start, image_of, parent_of, started_at};
}

/// The same for macOS, through `libproc`. Untested: it cannot be built or run here.
#[cfg(target_os = "macos")]
#[allow(unsafe_code)]
pub mod process;

/// What went wrong reaching or opening the endpoint. Messages name the endpoint and what to do.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error(
        "Keybridge is not running (nothing answers at {address}: {cause}); start it with `keybridge serve` or open the Keybridge app"
    )]
    NotRunning { address: String, cause: io::Error },
    #[error("refusing to talk to {address}: {reason}")]
    NotYours { address: String, reason: String },
    #[error(
        "another Keybridge broker of yours is already running at {address}; use it, or quit it first (`keybridge status` tells)"
    )]
    AlreadyRunning { address: String },
    #[error("{0}")]
    Invalid(String),
    // The OS error is in the message, so it is not also a `source` that would print twice.
    #[error("cannot {what} {address}: {cause}")]
    Io { what: &'static str, address: String, cause: io::Error },
}

/// Which user the process at the other end runs as, by the operating system's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerUser {
    /// This user; `pid` is the peer's process when the OS tells it.
    Same { pid: Option<u32> },
    /// Someone else, described for the log (a uid or a Windows SID).
    Other { user: String },
    /// The OS could not say; treated as someone else.
    Unknown { reason: String },
}

/// Where the broker listens: `KEYBRIDGE_SOCKET` when set; else on Unix
/// `$XDG_RUNTIME_DIR/keybridge/broker.sock`, or a per-user folder under the temporary
/// directory; on Windows the named pipe `\\.\pipe\keybridge-<user>`.
pub fn default_address() -> PathBuf {
    if let Some(path) = std::env::var_os("KEYBRIDGE_SOCKET").filter(|p| !p.is_empty()) {
        return path.into();
    }
    sys::default_address()
}

/// This process's user id on Unix; 0 where the OS has none (Windows, whose users are SIDs).
pub fn current_uid() -> u32 {
    #[cfg(unix)]
    {
        rustix::process::getuid().as_raw()
    }
    #[cfg(not(unix))]
    {
        0
    }
}

/// A bound endpoint. On Unix it holds the per-user lock that keeps a second broker out and
/// removes its socket when dropped; on Windows the first pipe instance is that lock.
#[derive(Debug)]
pub struct Listener {
    inner: sys::Listener,
    address: PathBuf,
}

impl Listener {
    /// Listen at `address`, refusing if another broker of this user already does.
    pub fn bind(address: &Path) -> Result<Self, EndpointError> {
        Ok(Self { inner: sys::Listener::bind(address)?, address: address.to_path_buf() })
    }

    pub fn address(&self) -> &Path {
        &self.address
    }

    /// The next connection and the user its peer runs as. The caller decides what to do with
    /// another user's connection; it is returned so that the refusal can be explained to it.
    pub async fn accept(&mut self) -> io::Result<(Stream, PeerUser)> {
        let (stream, peer) = self.inner.accept().await?;
        Ok((Stream(stream), peer))
    }
}

/// Connect to the broker at `address`, and make sure it runs as this user before returning.
pub async fn connect(address: &Path) -> Result<Stream, EndpointError> {
    sys::connect(address).await.map(Stream)
}

/// A connection to or from the broker: bytes both ways.
#[derive(Debug)]
pub struct Stream(sys::Stream);

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// Open and take the lock at `lock_path` that keeps a second broker out: held means one runs;
/// any other failure is reported as what it is.
fn hold_lock(lock_path: &Path, address: &Path) -> Result<std::fs::File, EndpointError> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)
        .map_err(|e| io_error("open", lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(EndpointError::AlreadyRunning { address: address.display().to_string() })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io_error("lock", lock_path, e)),
    }
}

fn io_error(what: &'static str, address: &Path, cause: io::Error) -> EndpointError {
    EndpointError::Io { what, address: address.display().to_string(), cause }
}
