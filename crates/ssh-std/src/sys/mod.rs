//! Every `unsafe` block of this crate: small safe wrappers around the C
//! library and the system calls that `std` does not offer.
//!
//! Each wrapper takes descriptors as [`BorrowedFd`](std::os::fd::BorrowedFd)
//! or [`OwnedFd`](std::os::fd::OwnedFd) and strings as
//! [`CStr`](std::ffi::CStr), so a caller cannot hand the kernel a dangling
//! pointer or a descriptor it does not hold; each returns `io::Result` with
//! the `errno` of a failed call. The callers (the [`jail`](crate::jail) and
//! [`passwd`](crate::passwd) modules) hold no `unsafe` code.

#[cfg(target_os = "linux")]
mod dir;
#[cfg(target_os = "linux")]
mod fs;
#[cfg(unix)]
mod passwd;

#[cfg(target_os = "linux")]
pub(crate) use dir::Dir;
#[cfg(target_os = "linux")]
pub(crate) use fs::*;
#[cfg(all(unix, test))]
pub(crate) use passwd::geteuid;
#[cfg(unix)]
pub(crate) use passwd::{getpw_r, getuid, PwKey};

#[cfg(unix)]
use std::io;

/// `Ok(r)` unless a call returned `-1`, then the `errno` it set.
#[cfg(unix)]
fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Like [`cvt`] for the `long` that `syscall(2)` returns.
#[cfg(target_os = "linux")]
fn cvt_long(r: libc::c_long) -> io::Result<libc::c_long> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}
