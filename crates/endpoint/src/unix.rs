//! A Unix socket in a folder only this user can enter; peers identified by `SO_PEERCRED`.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use crate::{EndpointError, PeerUser, current_uid, hold_lock, io_error};

pub type Stream = UnixStream;

pub fn default_address() -> PathBuf {
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        return Path::new(&runtime).join("keybridge").join("broker.sock");
    }
    std::env::temp_dir().join(format!("keybridge-{}", current_uid())).join("broker.sock")
}

/// Whether the socket's folder is safe to trust: a real folder (not a symlink) owned by this
/// user and closed to everyone else. Otherwise another user could put their own listener, or a
/// link to one, where the bridge looks for the broker.
fn check_folder(socket: &Path) -> Result<(), EndpointError> {
    let dir = folder_of(socket)?;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| io_error("inspect", dir, e))?;
    if meta.file_type().is_symlink() || !meta.is_dir() || meta.uid() != current_uid() || meta.mode() & 0o077 != 0 {
        return Err(EndpointError::NotYours {
            address: socket.display().to_string(),
            reason: format!(
                "its folder {} must be a folder of yours with mode 0700 (it is owned by uid {} with mode {:o}{}); remove it, or set KEYBRIDGE_SOCKET elsewhere",
                dir.display(),
                meta.uid(),
                meta.mode() & 0o777,
                if meta.file_type().is_symlink() { ", and is a symbolic link" } else { "" }
            ),
        });
    }
    Ok(())
}

fn folder_of(socket: &Path) -> Result<&Path, EndpointError> {
    socket.parent().filter(|dir| !dir.as_os_str().is_empty()).ok_or_else(|| {
        EndpointError::Invalid(format!("socket path {} has no folder; give a full path", socket.display()))
    })
}

fn peer_user(stream: &UnixStream) -> PeerUser {
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == current_uid() => {
            PeerUser::Same { pid: cred.pid().and_then(|pid| u32::try_from(pid).ok()) }
        }
        Ok(cred) => PeerUser::Other { user: format!("uid {}", cred.uid()) },
        Err(e) => PeerUser::Unknown { reason: e.to_string() },
    }
}

#[derive(Debug)]
pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
    _lock: std::fs::File,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Listener {
    pub fn bind(path: &Path) -> Result<Self, EndpointError> {
        let dir = folder_of(path)?;
        if std::fs::symlink_metadata(dir).is_err() {
            use std::os::unix::fs::DirBuilderExt;
            // Private from its first moment; the check below refuses a folder that is not.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| io_error("create", dir, e))?;
        }
        check_folder(path).map_err(|e| match e {
            EndpointError::NotYours { reason, .. } => EndpointError::Invalid(format!("cannot listen there: {reason}")),
            other => other,
        })?;
        let lock_path = path.with_extension("lock");
        let lock = hold_lock(&lock_path, path)?;
        // The lock is ours, so a socket file left behind is stale.
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|e| io_error("listen on", path, e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_error("protect", path, e))?;
        Ok(Self { listener, path: path.to_path_buf(), _lock: lock })
    }

    pub async fn accept(&mut self) -> io::Result<(Stream, PeerUser)> {
        let (stream, _) = self.listener.accept().await?;
        let peer = peer_user(&stream);
        Ok((stream, peer))
    }
}

pub async fn connect(path: &Path) -> Result<Stream, EndpointError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|cause| EndpointError::NotRunning { address: path.display().to_string(), cause })?;
    check_folder(path)?;
    match peer_user(&stream) {
        PeerUser::Same { .. } => Ok(stream),
        PeerUser::Other { user } => Err(EndpointError::NotYours {
            address: path.display().to_string(),
            reason: format!("the process listening there runs as {user}, not as you"),
        }),
        PeerUser::Unknown { reason } => Err(EndpointError::NotYours {
            address: path.display().to_string(),
            reason: format!("cannot tell which user listens there ({reason})"),
        }),
    }
}
