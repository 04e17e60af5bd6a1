//! Directory streams (`fdopendir`/`readdir`/`closedir`).

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::ptr::NonNull;

/// An open directory stream, closed on drop.
pub(crate) struct Dir(NonNull<libc::DIR>);

// SAFETY: the DIR stream is owned exclusively by this value and only used
// through `&mut self` (reading) or `&self` (its descriptor number); moving
// it to another thread is fine.
unsafe impl Send for Dir {}

impl Dir {
    /// A stream over the directory open as `fd` (opened for reading), which
    /// the stream takes over.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Dir> {
        let raw = fd.into_raw_fd();
        // SAFETY: `raw` is an open directory descriptor; on success the DIR
        // stream owns it.
        let dir = unsafe { libc::fdopendir(raw) };
        match NonNull::new(dir) {
            Some(dir) => Ok(Dir(dir)),
            None => {
                let e = io::Error::last_os_error();
                // SAFETY: fdopendir failed, so `raw` is still ours to close.
                drop(unsafe { OwnedFd::from_raw_fd(raw) });
                Err(e)
            }
        }
    }

    /// The stream's descriptor, for `*at` calls relative to the directory.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the stream is open until drop.
        let raw = unsafe { libc::dirfd(self.0.as_ptr()) };
        // SAFETY: the descriptor belongs to the stream, which outlives the
        // borrow (tied to `&self`) and does not close it before drop.
        unsafe { BorrowedFd::borrow_raw(raw) }
    }

    /// The next entry's name; `None` at the end.
    pub(crate) fn read(&mut self) -> Option<io::Result<CString>> {
        // SAFETY: errno is thread-local; the stream is open until drop and
        // used through `&mut self` only.
        let ent = unsafe {
            *libc::__errno_location() = 0;
            libc::readdir(self.0.as_ptr())
        };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(0) | None => None,
                Some(_) => Some(Err(e)),
            };
        }
        // SAFETY: readdir returned a valid entry whose name is NUL
        // terminated; it is copied before the next readdir call.
        Some(Ok(
            unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }.to_owned()
        ))
    }
}

impl fmt::Debug for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Dir").field(&self.fd().as_raw_fd()).finish()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: the stream came from fdopendir and is closed exactly once.
        unsafe { libc::closedir(self.0.as_ptr()) };
    }
}
