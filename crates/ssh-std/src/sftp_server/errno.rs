//! Errors as SFTP status replies: errno to status code as OpenSSH's
//! sftp-server maps them, and the file attributes of a stat.

use std::io;

use ssh_proto::sftp::{status, Attrs, Response};

use crate::jail::FileStat;

/// The status code for an errno, as OpenSSH's sftp-server maps it
/// (`errno_to_portable`).
pub(super) fn errno_to_status(errno: i32) -> u32 {
    match errno {
        0 => status::OK,
        libc::ENOENT | libc::ENOTDIR | libc::EBADF | libc::ELOOP => status::NO_SUCH_FILE,
        libc::EPERM | libc::EACCES | libc::EFAULT => status::PERMISSION_DENIED,
        libc::ENAMETOOLONG | libc::EINVAL => status::BAD_MESSAGE,
        libc::ENOSYS => status::OP_UNSUPPORTED,
        _ => status::FAILURE,
    }
}

/// The reply to a failed operation: OpenSSH's code and message for the
/// errno (errors without one are FAILURE).
pub(super) fn errno_status(e: &io::Error) -> Response {
    let code = match e.raw_os_error() {
        Some(n) => errno_to_status(n),
        None => match e.kind() {
            io::ErrorKind::NotFound => status::NO_SUCH_FILE,
            io::ErrorKind::PermissionDenied => status::PERMISSION_DENIED,
            _ => status::FAILURE,
        },
    };
    fail(code)
}

/// A status reply with OpenSSH's message for `code`.
pub(super) fn fail(code: u32) -> Response {
    Response::status(code, status::message(code))
}

pub(super) fn to_attrs(s: &FileStat) -> Attrs {
    Attrs {
        size: Some(s.size),
        uid_gid: Some((s.uid, s.gid)),
        permissions: Some(s.mode),
        times: Some((s.atime as u32, s.mtime as u32)),
        extended: Vec::new(),
    }
}

pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
