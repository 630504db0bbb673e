//! A named pipe whose access list names this user alone; each end identifies the other by the
//! process the pipe reports and the user that process's token carries.
//!
//! Pipe names are global and anyone may list them, so the name protects nothing: a squatter of
//! another user could create the pipe before the broker does. Hence the checks both ways, made
//! with what Windows says rather than what a peer claims:
//! - the broker creates the first instance (a second broker fails), owned by this user, with a
//!   protected DACL that grants this user alone, and refuses remote clients;
//! - the broker asks which process is at the other end and compares its token's user SID with
//!   its own;
//! - before writing a byte, the client checks that the pipe's owner is this user (no one else
//!   can make us the owner of their pipe), then that the process serving it runs as this user
//!   (a process id alone could be borrowed); it opens the pipe for identification only, so the
//!   server cannot impersonate it.
//!
//! Every `unsafe` block below is a Win32 call whose pointers are to locals or buffers that
//! outlive the call; handles and strings Windows allocates are owned and freed here.

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::windows::named_pipe::{ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions};
use windows_sys::Win32::Foundation::{ERROR_ACCESS_DENIED, ERROR_PIPE_BUSY, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, GetSecurityInfo, SDDL_REVISION_1,
    SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::{
    GetLengthSid, GetTokenInformation, IsValidSid, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER, TokenUser,
};
use windows_sys::Win32::System::Pipes::{GetNamedPipeClientProcessId, GetNamedPipeServerProcessId};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

use crate::{EndpointError, PeerUser, hold_lock, io_error};

const PIPE_PREFIX: &str = r"\\.\pipe\";

/// How long a client waits for a free pipe instance while the broker makes the next one.
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// The user's SID in the name keeps two users' brokers apart; it is no secret (see above).
pub fn default_address() -> PathBuf {
    let user = own_user().and_then(|sid| sid_string(&sid)).unwrap_or_else(|_| {
        let name = std::env::var("USERNAME").unwrap_or_else(|_| "user".into());
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
    });
    PathBuf::from(format!("{PIPE_PREFIX}keybridge-{user}"))
}

fn check_pipe_name(address: &Path) -> Result<(), EndpointError> {
    let name = address.to_str().unwrap_or_default();
    let prefix = name.as_bytes().get(..PIPE_PREFIX.len()).unwrap_or_default();
    // `..` or `/` could lead the name out of the pipe namespace once Windows normalises it.
    let rest = name.get(PIPE_PREFIX.len()..).unwrap_or_default();
    if prefix.eq_ignore_ascii_case(PIPE_PREFIX.as_bytes())
        && !rest.is_empty()
        && !rest.contains("..")
        && !rest.contains('/')
    {
        return Ok(());
    }
    Err(EndpointError::Invalid(format!(
        "{} is not a named pipe; on Windows KEYBRIDGE_SOCKET must look like \\\\.\\pipe\\keybridge-yourname",
        address.display()
    )))
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// The SID, as bytes, of the user that `process` runs as.
fn user_of(process: RawHandle) -> io::Result<Vec<u8>> {
    let mut token = std::ptr::null_mut();
    // SAFETY: `process` is a process handle with query access; `token` receives a new handle.
    if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
        return Err(last_error());
    }
    // SAFETY: the call succeeded, so `token` is an open handle that nothing else owns.
    let token = unsafe { OwnedHandle::from_raw_handle(token) };
    let mut needed = 0u32;
    // SAFETY: a null buffer of length 0 only asks for the size; it fails and sets `needed`.
    unsafe { GetTokenInformation(token.as_raw_handle(), TokenUser, std::ptr::null_mut(), 0, &mut needed) };
    if needed == 0 {
        return Err(last_error());
    }
    // u64s keep the buffer aligned for the TOKEN_USER at its start.
    let mut buffer = vec![0u64; (needed as usize).div_ceil(8)];
    let size = u32::try_from(buffer.len() * 8).map_err(|_| io::Error::other("token information too large"))?;
    // SAFETY: `buffer` is writable for `size` bytes.
    if unsafe { GetTokenInformation(token.as_raw_handle(), TokenUser, buffer.as_mut_ptr().cast(), size, &mut needed) }
        == 0
    {
        return Err(last_error());
    }
    if (needed as usize) < std::mem::size_of::<TOKEN_USER>() {
        return Err(io::Error::other("the token's user information is too short"));
    }
    // SAFETY: on success the buffer starts with a TOKEN_USER, aligned (see above).
    let sid = unsafe { (*buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    // SAFETY: any u64s may be read as bytes; the view lives no longer than `buffer`.
    let bytes = unsafe { std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>(), buffer.len() * 8) };
    // The SID lies inside the buffer Windows filled; read it from there, bounds checked.
    let offset = (sid as usize).wrapping_sub(bytes.as_ptr() as usize);
    let count = *bytes.get(offset + 1).ok_or_else(|| io::Error::other("the token's user SID is out of bounds"))?;
    let length = 8 + 4 * count as usize;
    let sid =
        bytes.get(offset..offset + length).ok_or_else(|| io::Error::other("the token's user SID is out of bounds"))?;
    // SAFETY: `sid` is a readable slice of `length` bytes; IsValidSid only reads it.
    if unsafe { IsValidSid(sid.as_ptr().cast_mut().cast()) } == 0 {
        return Err(io::Error::other("the token carries no valid user SID"));
    }
    Ok(sid.to_vec())
}

/// The owner SID, as bytes, of the pipe behind `pipe`. Windows lets a process make only its own
/// user (or a group it may own with) the owner, so unlike a process id this cannot be borrowed.
fn owner_of(pipe: RawHandle) -> io::Result<Vec<u8>> {
    let mut owner = std::ptr::null_mut();
    // `owner` points into the descriptor, which stays allocated until the SID is copied.
    let _descriptor = security_of(pipe, OWNER_SECURITY_INFORMATION, &mut owner)?;
    // SAFETY: `owner` is null or a SID inside the descriptor.
    if owner.is_null() || unsafe { IsValidSid(owner) } == 0 {
        return Err(io::Error::other("the pipe has no owner"));
    }
    // SAFETY: a valid SID, `GetLengthSid` bytes long.
    Ok(unsafe { std::slice::from_raw_parts(owner.cast::<u8>(), GetLengthSid(owner) as usize) }.to_vec())
}

/// The parts `what` of the security descriptor of the object behind `handle`; the owner SID,
/// when asked for, is written to `owner` and points into the returned descriptor.
fn security_of(handle: RawHandle, what: u32, owner: *mut PSID) -> io::Result<Descriptor> {
    let mut descriptor = std::ptr::null_mut();
    // SAFETY: `handle` is open (READ_CONTROL comes with GENERIC_READ); `owner` is null or a
    // local; on success `descriptor` is Windows' allocation, freed when the result drops.
    let status = unsafe {
        GetSecurityInfo(
            handle,
            SE_KERNEL_OBJECT,
            what,
            owner,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut descriptor,
        )
    };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    Ok(Descriptor(descriptor))
}

/// The text of a NUL-terminated wide string that Windows allocated, which is then freed.
///
/// # Safety
/// `text` must be a NUL-terminated string from LocalAlloc, not used after this call.
unsafe fn take_wide(text: *mut u16) -> String {
    // SAFETY: `text` is NUL-terminated (the caller's promise).
    let length = (0..).take_while(|&i| unsafe { *text.add(i) } != 0).count();
    // SAFETY: `text` holds `length` u16s before its NUL.
    let string = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(text, length) });
    // SAFETY: allocated with LocalAlloc and not used after this (the caller's promise).
    unsafe { LocalFree(text.cast()) };
    string
}

fn own_user() -> io::Result<Vec<u8>> {
    // SAFETY: the pseudo-handle of this process needs no closing and is always valid.
    user_of(unsafe { GetCurrentProcess() })
}

fn user_of_process(pid: u32) -> io::Result<Vec<u8>> {
    // SAFETY: returns a new handle, or null on failure.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(last_error());
    }
    // SAFETY: a new open handle that nothing else owns.
    let process = unsafe { OwnedHandle::from_raw_handle(process) };
    user_of(process.as_raw_handle())
}

/// `S-1-5-21-…` for a SID held as bytes.
fn sid_string(sid: &[u8]) -> io::Result<String> {
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: `sid` holds a SID copied whole from a token; Windows only reads it. On success
    // `text` is a NUL-terminated string that Windows allocated and we free below.
    if unsafe { ConvertSidToStringSidW(sid.as_ptr().cast_mut().cast(), &mut text) } == 0 {
        return Err(last_error());
    }
    // SAFETY: Windows' NUL-terminated allocation, not used after this.
    Ok(unsafe { take_wide(text) })
}

/// The pipe's security, in SDDL: owned by `sid` and open to it alone.
fn only_for(sid: &[u8]) -> io::Result<String> {
    // O: this user owns it, which is what clients check (also for an elevated broker, whose
    // default owner would be Administrators). P: protected, so nothing is inherited; one allow
    // entry, so everyone else is denied, creating instances included.
    let sid = sid_string(sid)?;
    Ok(format!("O:{sid}D:P(A;;GA;;;{sid})"))
}

/// A security descriptor that Windows allocated (from SDDL, or read off an object), freed on drop.
struct Descriptor(PSECURITY_DESCRIPTOR);

impl Descriptor {
    fn new(sddl: &str) -> io::Result<Self> {
        let wide: Vec<u16> = OsStr::new(&sddl).encode_wide().chain(std::iter::once(0)).collect();
        let mut descriptor = std::ptr::null_mut();
        // SAFETY: `wide` is NUL-terminated; on success `descriptor` is Windows' allocation, freed on drop.
        if unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                wide.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                std::ptr::null_mut(),
            )
        } == 0
        {
            return Err(last_error());
        }
        Ok(Self(descriptor))
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by Windows with LocalAlloc, freed once, here.
        unsafe { LocalFree(self.0) };
    }
}

fn create(address: &Path, first: bool, sddl: &str) -> io::Result<NamedPipeServer> {
    let descriptor = Descriptor::new(sddl)?;
    let mut attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor.0,
        bInheritHandle: 0,
    };
    // SAFETY: `attributes` and the descriptor it points to live until the call returns.
    unsafe {
        ServerOptions::new()
            .first_pipe_instance(first)
            .reject_remote_clients(true)
            .create_with_security_attributes_raw(address, (&mut attributes as *mut SECURITY_ATTRIBUTES).cast())
    }
}

/// Who is at the other end, given the process id the pipe reported (or why it did not).
fn peer_user(me: &[u8], pid: io::Result<u32>) -> PeerUser {
    let pid = match pid {
        Ok(pid) => pid,
        Err(e) => return PeerUser::Unknown { reason: format!("the pipe does not say which process is there: {e}") },
    };
    match user_of_process(pid) {
        Ok(sid) if sid == me => PeerUser::Same { pid: Some(pid) },
        Ok(sid) => PeerUser::Other { user: sid_string(&sid).unwrap_or_else(|_| "another user".into()) },
        Err(e) => PeerUser::Unknown { reason: format!("cannot look at process {pid}: {e}") },
    }
}

fn client_pid(pipe: RawHandle) -> io::Result<u32> {
    let mut pid = 0;
    // SAFETY: `pipe` is an open pipe handle; `pid` is a local.
    if unsafe { GetNamedPipeClientProcessId(pipe, &mut pid) } == 0 {
        return Err(last_error());
    }
    Ok(pid)
}

fn server_pid(pipe: RawHandle) -> io::Result<u32> {
    let mut pid = 0;
    // SAFETY: `pipe` is an open pipe handle; `pid` is a local.
    if unsafe { GetNamedPipeServerProcessId(pipe, &mut pid) } == 0 {
        return Err(last_error());
    }
    Ok(pid)
}

#[derive(Debug)]
pub struct Listener {
    address: PathBuf,
    user: Vec<u8>,
    sddl: String,
    /// Held while listening, so a second broker of this user is told one runs even where the
    /// first-instance flag is not enforced (Wine).
    _lock: std::fs::File,
    /// The instance the next client will connect to; made before the last one is handed out,
    /// so there is always one and no client finds the pipe missing.
    next: NamedPipeServer,
}

impl Listener {
    pub fn bind(address: &Path) -> Result<Self, EndpointError> {
        check_pipe_name(address)?;
        let user = own_user().map_err(|e| io_error("tell which user is to own", address, e))?;
        // The temporary folder is the user's own on Windows.
        let name = address.to_string_lossy()[PIPE_PREFIX.len()..].replace(['\\', '/', ':'], "_");
        let lock_path = std::env::temp_dir().join(format!("{name}.lock"));
        let lock = hold_lock(&lock_path, address)?;
        let sddl = only_for(&user).map_err(|e| io_error("describe the owner of", address, e))?;
        let next = create(address, true, &sddl).map_err(|e| {
            if e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) {
                // Not a broker of ours (we hold the lock), and the name is no secret.
                EndpointError::NotYours {
                    address: address.display().to_string(),
                    reason: "another program already holds this pipe name; quit it, or set KEYBRIDGE_SOCKET to another name like \\\\.\\pipe\\keybridge-mine".into(),
                }
            } else {
                io_error("listen on", address, e)
            }
        })?;
        Ok(Self { address: address.to_path_buf(), user, sddl, next, _lock: lock })
    }

    pub async fn accept(&mut self) -> io::Result<(Stream, PeerUser)> {
        let connected = self.next.connect().await;
        let fresh = create(&self.address, false, &self.sddl)?;
        let instance = std::mem::replace(&mut self.next, fresh);
        connected?;
        let peer = peer_user(&self.user, client_pid(instance.as_raw_handle()));
        Ok((Stream::Server(instance), peer))
    }
}

pub async fn connect(address: &Path) -> Result<Stream, EndpointError> {
    check_pipe_name(address)?;
    let not_yours = |reason: String| EndpointError::NotYours { address: address.display().to_string(), reason };
    let deadline = Instant::now() + BUSY_WAIT;
    let client = loop {
        // Identification only (tokio's default): the server may learn who we are, never act as us.
        match ClientOptions::new().open(address) {
            Ok(client) => break client,
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) if e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) => {
                return Err(not_yours("the pipe exists but does not let you in: another user holds its name".into()));
            }
            Err(cause) => return Err(EndpointError::NotRunning { address: address.display().to_string(), cause }),
        }
    };
    let me = own_user().map_err(|e| io_error("tell which user you are for", address, e))?;
    // The owner first: a squatter cannot make us its owner. The serving process's user second;
    // alone it would not do, as a squatter can hand its pipe to a process whose id is later
    // reused by one of ours.
    match owner_of(client.as_raw_handle()) {
        Ok(owner) if owner == me => {}
        Ok(owner) => {
            let owner = sid_string(&owner).unwrap_or_else(|_| "another user".into());
            return Err(not_yours(format!("the pipe is owned by {owner}, not by you")));
        }
        Err(e) => return Err(not_yours(format!("cannot tell who owns the pipe ({e})"))),
    }
    match peer_user(&me, server_pid(client.as_raw_handle())) {
        PeerUser::Same { .. } => Ok(Stream::Client(client)),
        PeerUser::Other { user } => Err(not_yours(format!("the process serving it runs as {user}, not as you"))),
        PeerUser::Unknown { reason } => Err(not_yours(format!("cannot tell which user serves it ({reason})"))),
    }
}

#[derive(Debug)]
pub enum Stream {
    Server(NamedPipeServer),
    Client(NamedPipeClient),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Server(pipe) => Pin::new(pipe).poll_read(cx, buf),
            Stream::Client(pipe) => Pin::new(pipe).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Server(pipe) => Pin::new(pipe).poll_write(cx, buf),
            Stream::Client(pipe) => Pin::new(pipe).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Server(pipe) => Pin::new(pipe).poll_flush(cx),
            Stream::Client(pipe) => Pin::new(pipe).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Server(pipe) => Pin::new(pipe).poll_shutdown(cx),
            Stream::Client(pipe) => Pin::new(pipe).poll_shutdown(cx),
        }
    }
}

/// The process that started `pid`, from a snapshot of the process table. Windows keeps the id
/// of a parent that has exited, and may reuse it; the caller checks the parent's start time.
pub fn parent_of(pid: u32) -> Option<u32> {
    snapshot_entry(pid).map(|entry| entry.th32ParentProcessID)
}

/// The full path of the program process `pid` runs, as Windows resolved it.
pub fn image_of(pid: u32) -> Option<PathBuf> {
    image(&open_for_query(pid)?)
}

/// When process `pid` started, in Windows' 100 ns ticks: a parent that started after its child
/// is another process that took a reused id.
pub fn started_at(pid: u32) -> Option<u64> {
    start_time(&open_for_query(pid)?)
}

/// The program and start time of one process, read through one handle: the id cannot pass to
/// another process between the two.
pub fn image_and_start(pid: u32) -> Option<(PathBuf, u64)> {
    let process = open_for_query(pid)?;
    Some((image(&process)?, start_time(&process)?))
}

fn open_for_query(pid: u32) -> Option<OwnedHandle> {
    // SAFETY: returns a new handle, or null on failure.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return None;
    }
    // SAFETY: a new open handle that nothing else owns.
    Some(unsafe { OwnedHandle::from_raw_handle(process) })
}

fn image(process: &OwnedHandle) -> Option<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    use windows_sys::Win32::System::Threading::QueryFullProcessImageNameW;
    let mut buffer = vec![0u16; 32_768];
    let mut len = buffer.len() as u32;
    // SAFETY: `buffer` holds `len` u16s; Windows writes at most that many and sets `len` to the
    // characters written, without the NUL.
    if unsafe { QueryFullProcessImageNameW(process.as_raw_handle(), 0, buffer.as_mut_ptr(), &mut len) } == 0 {
        return None;
    }
    Some(PathBuf::from(std::ffi::OsString::from_wide(&buffer[..len as usize])))
}

fn start_time(process: &OwnedHandle) -> Option<u64> {
    use windows_sys::Win32::Foundation::FILETIME;
    use windows_sys::Win32::System::Threading::GetProcessTimes;
    let zero = FILETIME { dwLowDateTime: 0, dwHighDateTime: 0 };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: four local FILETIMEs for Windows to fill; the handle is open.
    let ok = unsafe { GetProcessTimes(process.as_raw_handle(), &mut created, &mut exited, &mut kernel, &mut user) };
    (ok != 0).then(|| (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
}

fn snapshot_entry(pid: u32) -> Option<windows_sys::Win32::System::Diagnostics::ToolHelp::PROCESSENTRY32W> {
    use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
    };
    // SAFETY: returns a new handle, or INVALID_HANDLE_VALUE on failure.
    let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) };
    if snapshot == INVALID_HANDLE_VALUE {
        return None;
    }
    // SAFETY: a new open handle that nothing else owns.
    let snapshot = unsafe { OwnedHandle::from_raw_handle(snapshot) };
    // SAFETY: PROCESSENTRY32W is plain data; all zeros is a valid value.
    let mut entry: PROCESSENTRY32W = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
    // SAFETY: `entry` is a local whose dwSize says its size.
    let mut more = unsafe { Process32FirstW(snapshot.as_raw_handle(), &mut entry) } != 0;
    while more {
        if entry.th32ProcessID == pid {
            return Some(entry);
        }
        // SAFETY: as above.
        more = unsafe { Process32NextW(snapshot.as_raw_handle(), &mut entry) } != 0;
    }
    None
}

#[cfg(test)]
mod tests {
    use windows_sys::Win32::Security::Authorization::ConvertSecurityDescriptorToStringSecurityDescriptorW;
    use windows_sys::Win32::Security::DACL_SECURITY_INFORMATION;

    use super::*;

    /// The access list Windows reports for the pipe behind `pipe`, in SDDL.
    fn access_list(pipe: RawHandle) -> String {
        let descriptor = security_of(pipe, DACL_SECURITY_INFORMATION, std::ptr::null_mut()).unwrap();
        let mut text: *mut u16 = std::ptr::null_mut();
        // SAFETY: `descriptor` is valid; on success `text` is Windows' NUL-terminated allocation.
        let ok = unsafe {
            ConvertSecurityDescriptorToStringSecurityDescriptorW(
                descriptor.0,
                SDDL_REVISION_1,
                DACL_SECURITY_INFORMATION,
                &mut text,
                std::ptr::null_mut(),
            )
        };
        assert_ne!(ok, 0, "cannot print the descriptor: {}", last_error());
        // SAFETY: Windows' NUL-terminated allocation, not used after this.
        unsafe { take_wide(text) }
    }

    #[tokio::test]
    async fn the_pipe_lets_in_this_user_alone() {
        let address = PathBuf::from(format!(r"\\.\pipe\keybridge-acl-{}", std::process::id()));
        let listener = Listener::bind(&address).unwrap();
        let me = sid_string(&own_user().unwrap()).unwrap();
        let sddl = access_list(listener.next.as_raw_handle());
        // Protected (nothing inherited) and one entry: full access for this user.
        assert!(sddl.starts_with("D:P"), "{sddl}");
        assert_eq!(sddl.matches("(A;").count(), 1, "{sddl}");
        assert!(sddl.ends_with(&format!(";;;{me})")), "{sddl}");
        // And this user owns it, which is what a client checks first.
        assert_eq!(owner_of(listener.next.as_raw_handle()).unwrap(), own_user().unwrap());
    }

    #[tokio::test]
    async fn a_pipe_someone_else_owns_is_refused_before_a_byte_is_sent() {
        let address = PathBuf::from(format!(r"\\.\pipe\keybridge-squat-{}", std::process::id()));
        // A squatter's pipe: owned by Everyone and open to everyone, as a careless or hostile
        // program of another user might make it.
        let squatter = match create(&address, true, "O:WDD:P(A;;GA;;;WD)") {
            Ok(pipe) => pipe,
            Err(e) => {
                // Windows itself lets no process without SeRestorePrivilege hand a pipe to an
                // owner it is not: then that is what this test shows.
                assert_eq!(e.raw_os_error(), Some(windows_sys::Win32::Foundation::ERROR_INVALID_OWNER as i32), "{e}");
                return;
            }
        };
        let err = connect(&address).await.unwrap_err();
        assert!(matches!(err, EndpointError::NotYours { .. }), "{err:?}");
        assert!(err.to_string().contains("owned by S-1-1-0, not by you"), "{err}");
        drop(squatter);
    }

    #[test]
    fn names_that_could_leave_the_pipe_namespace_are_refused() {
        for bad in [r"\\.\pipe\", r"\\.\pipe\..\x", r"\\.\pipe\a/b", r"\\.\pipé", "C:\\x", r"\\server\pipe\x"] {
            assert!(check_pipe_name(Path::new(bad)).is_err(), "{bad}");
        }
        assert!(check_pipe_name(Path::new(r"\\.\PIPE\keybridge-S-1-5-21-1")).is_ok());
    }
}
