//! What macOS says about other processes, through `libproc`: each process's parent, program and
//! start time, for the broker's walk up from a peer to the program that started it.
//!
//! UNTESTED: nothing here has been compiled or run on macOS, only written against the `libc`
//! crate's declarations of `proc_pidpath` and `proc_pidinfo(PROC_PIDTBSDINFO)`.

use std::ffi::{CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

fn bsd_info(pid: u32) -> Option<libc::proc_bsdinfo> {
    let pid = libc::c_int::try_from(pid).ok()?;
    // SAFETY: proc_bsdinfo is plain data; all zeros is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is a local of exactly `size` bytes for the kernel to fill.
    let written = unsafe {
        libc::proc_pidinfo(pid, libc::PROC_PIDTBSDINFO, 0, (&mut info as *mut libc::proc_bsdinfo).cast(), size)
    };
    (written == size).then_some(info)
}

/// The process that started `pid`.
pub fn parent_of(pid: u32) -> Option<u32> {
    bsd_info(pid).map(|info| info.pbi_ppid)
}

/// When `pid` started, in microseconds since the epoch.
pub fn started_at(pid: u32) -> Option<u64> {
    bsd_info(pid).map(|info| info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec)
}

/// The full path of the program `pid` runs.
pub fn image_of(pid: u32) -> Option<PathBuf> {
    let pid = libc::c_int::try_from(pid).ok()?;
    let mut buffer = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    // SAFETY: `buffer` holds the byte count passed; the kernel writes a NUL-terminated path.
    let written = unsafe { libc::proc_pidpath(pid, buffer.as_mut_ptr().cast(), buffer.len() as u32) };
    if written <= 0 {
        return None;
    }
    let path = CStr::from_bytes_until_nul(&buffer).ok()?;
    Some(PathBuf::from(OsStr::from_bytes(path.to_bytes())))
}

/// The program and start time of one process, checked unchanged around the read: the id did not
/// pass to another process in between.
pub fn image_and_start(pid: u32) -> Option<(PathBuf, u64)> {
    let before = started_at(pid)?;
    let image = image_of(pid)?;
    (started_at(pid)? == before).then_some((image, before))
}
