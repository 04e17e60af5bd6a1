//! A jailed view of a local directory, for an SFTP server backend (Linux only).
//!
//! [`Jail`] serves one directory, the *root*, as `/`. Every method takes a
//! client path as `&str`; a relative path is relative to the root (the
//! client's working directory is `/` here, the SFTP layer above resolves its
//! own).
//!
//! # Guarantees
//!
//! * **All resolution is done by the kernel, relative to a descriptor of the
//!   root.** The jail keeps an `O_PATH` descriptor of the root directory for
//!   its whole life and resolves client paths with `openat2(2)` and
//!   `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`. With these, `/` and `..` at
//!   the root stay at the root, absolute symlink targets are resolved against
//!   the root and relative ones are clamped at it (like a `chroot`), and
//!   "magic links" such as `/proc/self/fd/N` are refused. This holds for
//!   every symlink on the way, whoever made it: the administrator, the client
//!   (through [`Jail::symlink`]), or another process that swaps a directory
//!   for a symlink *during* the request. The kernel checks each step of the
//!   walk itself; when a concurrent rename could have moved a `..` step out
//!   of the root it fails the walk with `EAGAIN`, which is retried here.
//! * **The final component is never followed where the operation is about
//!   the name itself.** `mkdir`, `rmdir`, `remove`, `rename`, `symlink`,
//!   `hardlink`, `readlink`, `lstat` and `lsetstat` resolve the *parent*
//!   directory as above (to an `O_PATH | O_DIRECTORY` descriptor) and then
//!   act on the single last name with the `*at` system call in its
//!   non-following form (`mkdirat`, `unlinkat`, `renameat2`, `symlinkat`,
//!   `linkat` without `AT_SYMLINK_FOLLOW`, `readlinkat`, `fstatat`/`fchownat`/
//!   `utimensat` with `AT_SYMLINK_NOFOLLOW`). A symlink as last component is
//!   therefore created, removed, renamed, linked, read or examined as a
//!   symlink, never through its target. A hard link can only be made to a
//!   file that is inside the root, so no outside file can be pulled in.
//! * **No path string is ever joined and handed to a path-based call.** No
//!   `std::fs` path function is used on client paths.
//! * [`Jail::open`] only returns regular files (it opens with `O_NONBLOCK`
//!   so that a FIFO cannot hang the server, checks the type, then clears
//!   `O_NONBLOCK`). Directories are read with [`Jail::open_dir`].
//! * [`Jail::realpath`] returns the path as the client sees it (starting at
//!   `/` = the root); it fails rather than return anything outside.
//! * Listing the root reports the root's own attributes for `..`, not those
//!   of the real parent directory.
//! * A symlink's target is stored verbatim ([`Jail::symlink`]) and returned
//!   verbatim ([`Jail::readlink`]); it is only ever *followed* inside the
//!   root, so `/etc/passwd` means `<root>/etc/passwd`.
//!
//! # Limits
//!
//! * The jail does no permission checks of its own: run the server as the
//!   user whose rights should apply, the kernel checks them. Modes passed by
//!   the client are used as given (masked to `0o7777`).
//! * Mount points inside the root are crossed (`RESOLVE_NO_XDEV` is not
//!   set), so a bind mount placed inside the root by the administrator is
//!   served; so is an existing hard link to an outside file.
//! * If a *third party* with access outside the root moves a directory out
//!   of the root while an operation holds a descriptor to it, that one
//!   operation acts in the moved directory. The client itself cannot do this:
//!   all of its renames stay inside the root.
//! * Trailing slashes are ignored: `a/` means `a` (for `stat`/`open` the
//!   kernel still insists that `a/` is a directory).
//! * Names that are not UTF-8 are converted lossily in [`DirReader`],
//!   [`Jail::readlink`] and [`Jail::realpath`].
//! * Needs Linux 5.6 (`openat2`). Changing a mode uses `fchmodat2` (Linux
//!   6.6) on an `O_PATH` descriptor; on older kernels it falls back to
//!   opening the file read-only and `fchmod`.
#![cfg(target_os = "linux")]
//!
//! # Layout
//!
//! The methods of [`Jail`] are grouped by concept: resolving client paths
//! (`resolve.rs`, with [`Jail::realpath`]), regular files (`files.rs`),
//! directories (`dir.rs`), names and links (`links.rs`), attributes
//! (`attrs.rs`) and file system statistics (`statvfs.rs`). The system calls
//! themselves are the crate's safe wrappers in `sys`.
#![cfg(target_os = "linux")]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::sys;

mod attrs;
mod dir;
mod files;
mod links;
mod resolve;
mod statvfs;
#[cfg(test)]
mod tests;

pub use attrs::FileStat;
pub use dir::DirReader;
pub use files::OpenOptions;
/// File system statistics (`statvfs@openssh.com`): the codec's type.
pub use ssh_proto::sftp::StatVfs;

/// A directory tree served with its root as `/`. See the [module
/// documentation](self) for what it guarantees.
#[derive(Debug)]
pub struct Jail {
    root: OwnedFd,
}

impl Jail {
    /// Serves the directory `root` as `/`. Fails if it is not a directory
    /// or the kernel lacks `openat2` (Linux < 5.6, or a seccomp filter).
    pub fn new(root: impl AsRef<Path>) -> io::Result<Jail> {
        let root = root.as_ref();
        let c = cstring(root.as_os_str().as_bytes())?;
        let jail = Jail {
            root: sys::open(&c, libc::O_PATH | libc::O_DIRECTORY)?,
        };
        match jail.resolve(".", libc::O_PATH | libc::O_DIRECTORY, 0) {
            Ok(_) => Ok(jail),
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "openat2(2) is not available (Linux 5.6 or later is needed)",
            )),
            Err(e) => Err(e),
        }
    }

    fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn cstring(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// `fstat` of a descriptor (an `O_PATH` one too).
fn fstat_fd(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    sys::fstatat(fd, c"", libc::AT_EMPTY_PATH)
}
