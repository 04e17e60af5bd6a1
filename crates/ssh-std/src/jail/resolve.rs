//! Resolving client paths below the root, and back ([`Jail::realpath`]).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::{cstring, errno, fstat_fd, Jail};
use crate::sys;

/// How every client path is resolved.
const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
/// How often an `openat2` that failed with `EAGAIN` (a rename raced with the
/// walk) or `EINTR` is retried.
const RETRIES: usize = 1024;

/// `openat2(dir, path, flags | O_CLOEXEC, mode)` resolving inside `dir`.
fn openat2(dir: BorrowedFd<'_>, path: &CStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    let mode = if flags & libc::O_CREAT != 0 {
        u64::from(mode & 0o7777)
    } else {
        0
    };
    for _ in 0..RETRIES {
        match sys::openat2(dir, path, flags, mode, RESOLVE) {
            Ok(fd) => return Ok(fd),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(errno(libc::EAGAIN))
}

/// Plain `openat` of a single name (no `/`) in a trusted directory.
pub(super) fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    loop {
        match sys::openat(dir, name, flags) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            r => return r,
        }
    }
}

/// A symlink's target, read by `read` into ever larger buffers (up to
/// 1 MiB).
pub(super) fn read_link_with(
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        let n = read(&mut buf)?;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        if buf.len() >= 1 << 20 {
            return Err(errno(libc::ENAMETOOLONG));
        }
        buf.resize(buf.len() * 2, 0);
    }
}

/// What a client path names, for operations on a final component.
pub(super) enum Loc<'a> {
    /// The path names the root or ends in `.`/`..`: always a directory,
    /// resolved as a whole (the trimmed path is given).
    Dir(&'a str),
    /// A parent directory path and a plain last name (no `/`, not `.`/`..`).
    Entry { parent: &'a str, name: &'a str },
}

pub(super) fn split_last(path: &str) -> Loc<'_> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Loc::Dir("/");
    }
    let (parent, name) = match trimmed.rfind('/') {
        None => (".", trimmed),
        Some(0) => ("/", &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
    };
    if name == "." || name == ".." {
        Loc::Dir(trimmed)
    } else {
        Loc::Entry { parent, name }
    }
}

/// A resolved parent directory and the last name in it.
pub(super) struct Entry {
    dir: OwnedFd,
    pub(super) name: CString,
}

impl Entry {
    pub(super) fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

/// A resolved final component.
pub(super) enum Target {
    /// A directory named by the root, `.` or `..` (an `O_PATH` descriptor).
    Dir(OwnedFd),
    Entry(Entry),
}

fn path_of_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let link = cstring(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes())?;
    read_link_with(|buf| sys::readlink(&link, buf))
}

pub(super) fn same_inode(a: &libc::stat, b: &libc::stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

impl Jail {
    /// Resolves a whole client path inside the root.
    pub(super) fn resolve(&self, path: &str, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
        let path = if path.is_empty() { "." } else { path };
        openat2(self.root(), &cstring(path.as_bytes())?, flags, mode)
    }

    fn resolve_parent(&self, parent: &str, name: &str) -> io::Result<Entry> {
        let name = cstring(name.as_bytes())?;
        let dir = self.resolve(parent, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok(Entry { dir, name })
    }

    pub(super) fn locate(&self, path: &str) -> io::Result<Target> {
        match split_last(path) {
            Loc::Dir(p) => Ok(Target::Dir(self.resolve(
                p,
                libc::O_PATH | libc::O_DIRECTORY,
                0,
            )?)),
            Loc::Entry { parent, name } => Ok(Target::Entry(self.resolve_parent(parent, name)?)),
        }
    }

    /// Like `locate`, for operations that need a plain last name: when the
    /// path names the root or ends in `.`/`..`, fails with `dir_errno`.
    pub(super) fn entry(&self, path: &str, dir_errno: i32) -> io::Result<Entry> {
        match split_last(path) {
            Loc::Dir(_) => Err(errno(dir_errno)),
            Loc::Entry { parent, name } => self.resolve_parent(parent, name),
        }
    }

    /// The canonical client path (absolute, `/` = the root) of `path`,
    /// following symlinks inside the root. The last component may be
    /// missing (as OpenSSH allows, for `mkdir` completion): then the parent
    /// is resolved and the name appended. Fails rather than return anything
    /// outside the root.
    pub fn realpath(&self, path: &str) -> io::Result<String> {
        match self.resolve(path, libc::O_PATH, 0) {
            Ok(fd) => self.client_path(fd.as_fd()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => match split_last(path) {
                Loc::Dir(_) => Err(e),
                Loc::Entry { parent, name } => {
                    let dir = self.resolve(parent, libc::O_PATH | libc::O_DIRECTORY, 0)?;
                    let mut base = self.client_path(dir.as_fd())?;
                    if !base.ends_with('/') {
                        base.push('/');
                    }
                    base.push_str(name);
                    Ok(base)
                }
            },
            Err(e) => Err(e),
        }
    }

    /// The client path of a descriptor obtained by resolving in the root.
    fn client_path(&self, fd: BorrowedFd<'_>) -> io::Result<String> {
        if fstat_fd(fd)?.st_nlink == 0 {
            return Err(errno(libc::ENOENT));
        }
        let root = path_of_fd(self.root())?;
        let path = path_of_fd(fd)?;
        let rel: &[u8] = if path == root {
            b"/"
        } else if root == b"/" {
            &path
        } else if path.starts_with(&root) && path.get(root.len()) == Some(&b'/') {
            &path[root.len()..]
        } else {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "path resolves outside the jail root",
            ));
        };
        if !rel.starts_with(b"/") {
            return Err(io::Error::other("cannot name the resolved path"));
        }
        Ok(String::from_utf8_lossy(rel).into_owned())
    }
}
