//! Attributes: [`FileStat`], reading them (`stat`, `lstat`, `fstat`) and
//! changing them (`setstat`, `lsetstat`, `fsetstat`).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::resolve::{openat, Target};
use super::{errno, fstat_fd, Jail};
use crate::sys;

/// Attributes of a file, as SFTP carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    /// Size in bytes.
    pub size: u64,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Full `st_mode`, file type bits included.
    pub mode: u32,
    /// Last access, seconds since the Unix epoch.
    pub atime: u64,
    /// Last modification, seconds since the Unix epoch.
    pub mtime: u64,
    /// Device and inode: equal for two names or descriptors of one file.
    pub dev: u64,
    /// Inode number (see `dev`).
    pub ino: u64,
}

impl FileStat {
    #[allow(clippy::unnecessary_cast)] // field types differ between targets
    pub(super) fn from_stat(st: &libc::stat) -> FileStat {
        FileStat {
            size: st.st_size.max(0) as u64,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            mode: st.st_mode as u32,
            atime: st.st_atime.max(0) as u64,
            mtime: st.st_mtime.max(0) as u64,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        }
    }

    fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }

    /// Whether this is a symbolic link (from a stat that does not follow links).
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    /// The permission bits (`mode & 0o7777`).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

fn timespecs(atime: u64, mtime: u64) -> [libc::timespec; 2] {
    let ts = |t: u64| libc::timespec {
        tv_sec: t.min(i64::MAX as u64) as libc::time_t,
        tv_nsec: 0,
    };
    [ts(atime), ts(mtime)]
}

fn mode_bits(mode: u32) -> libc::mode_t {
    (mode & 0o7777) as libc::mode_t
}

fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    let size = libc::off_t::try_from(size).map_err(|_| errno(libc::EFBIG))?;
    sys::ftruncate(fd, size)
}

/// Changes the mode of what `fd` (an `O_PATH` descriptor of something that
/// is not a symlink) refers to, with `fchmodat2(fd, "", mode, AT_EMPTY_PATH)`.
/// On kernels without `fchmodat2`, `reopen` must open the same name readably
/// without following a symlink, and `fchmod` is used on that.
fn chmod_path_fd(
    fd: BorrowedFd<'_>,
    mode: u32,
    reopen: impl FnOnce() -> io::Result<OwnedFd>,
) -> io::Result<()> {
    match sys::fchmodat2(
        fd,
        c"",
        mode_bits(mode),
        libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
    ) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            let file = reopen()?;
            sys::fchmod(file.as_fd(), mode_bits(mode))
        }
        r => r,
    }
}

impl Jail {
    /// Attributes, following symlinks (inside the root).
    pub fn stat(&self, path: &str) -> io::Result<FileStat> {
        let fd = self.resolve(path, libc::O_PATH, 0)?;
        Ok(FileStat::from_stat(&fstat_fd(fd.as_fd())?))
    }

    /// Attributes, not following a symlink as last component.
    pub fn lstat(&self, path: &str) -> io::Result<FileStat> {
        let st = match self.locate(path)? {
            Target::Dir(fd) => fstat_fd(fd.as_fd())?,
            Target::Entry(e) => sys::fstatat(e.dir(), &e.name, libc::AT_SYMLINK_NOFOLLOW)?,
        };
        Ok(FileStat::from_stat(&st))
    }

    /// Attributes of an open file.
    pub fn fstat(&self, file: &File) -> io::Result<FileStat> {
        Ok(FileStat::from_stat(&fstat_fd(file.as_fd())?))
    }

    /// Changes attributes, following symlinks (inside the root). Applied in
    /// OpenSSH's order: size, mode, times, owner; stops at the first error.
    pub fn setstat(
        &self,
        path: &str,
        size: Option<u64>,
        uid_gid: Option<(u32, u32)>,
        mode: Option<u32>,
        times: Option<(u64, u64)>,
    ) -> io::Result<()> {
        if let Some(size) = size {
            let fd = self.resolve(path, libc::O_WRONLY | libc::O_NONBLOCK | libc::O_NOCTTY, 0)?;
            ftruncate(fd.as_fd(), size)?;
        }
        if mode.is_none() && times.is_none() && uid_gid.is_none() {
            return Ok(());
        }
        // A followed O_PATH descriptor is never a symlink.
        let fd = self.resolve(path, libc::O_PATH, 0)?;
        set_path_fd(fd.as_fd(), uid_gid, mode, times, || {
            self.resolve(path, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY, 0)
        })
    }

    /// Changes attributes without following a symlink as last component.
    /// Times and owner of a symlink are changed on the link itself; its size
    /// (`ELOOP`) and mode (`EOPNOTSUPP`) cannot be changed.
    pub fn lsetstat(
        &self,
        path: &str,
        size: Option<u64>,
        uid_gid: Option<(u32, u32)>,
        mode: Option<u32>,
        times: Option<(u64, u64)>,
    ) -> io::Result<()> {
        let e = match self.locate(path)? {
            // `.`, `..` and the root are directories, never symlinks.
            Target::Dir(fd) => {
                if size.is_some() {
                    return Err(errno(libc::EISDIR));
                }
                return set_path_fd(fd.as_fd(), uid_gid, mode, times, || {
                    self.resolve(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                });
            }
            Target::Entry(e) => e,
        };
        let nofollow = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        if let Some(size) = size {
            let fd = openat(e.dir(), &e.name, libc::O_WRONLY | nofollow)?;
            ftruncate(fd.as_fd(), size)?;
        }
        if let Some(mode) = mode {
            let fd = openat(e.dir(), &e.name, libc::O_PATH | libc::O_NOFOLLOW)?;
            if fstat_fd(fd.as_fd())?.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return Err(errno(libc::EOPNOTSUPP));
            }
            chmod_path_fd(fd.as_fd(), mode, || {
                openat(e.dir(), &e.name, libc::O_RDONLY | nofollow)
            })?;
        }
        if let Some((atime, mtime)) = times {
            let ts = timespecs(atime, mtime);
            sys::utimensat(e.dir(), &e.name, &ts, libc::AT_SYMLINK_NOFOLLOW)?;
        }
        if let Some((uid, gid)) = uid_gid {
            sys::fchownat(e.dir(), &e.name, uid, gid, libc::AT_SYMLINK_NOFOLLOW)?;
        }
        Ok(())
    }

    /// Changes attributes of an open file (size, mode, times, owner).
    pub fn fsetstat(
        &self,
        file: &File,
        size: Option<u64>,
        uid_gid: Option<(u32, u32)>,
        mode: Option<u32>,
        times: Option<(u64, u64)>,
    ) -> io::Result<()> {
        let fd = file.as_fd();
        if let Some(size) = size {
            ftruncate(fd, size)?;
        }
        if let Some(mode) = mode {
            sys::fchmod(fd, mode_bits(mode))?;
        }
        if let Some((atime, mtime)) = times {
            sys::futimens(fd, &timespecs(atime, mtime))?;
        }
        if let Some((uid, gid)) = uid_gid {
            sys::fchown(fd, uid, gid)?;
        }
        Ok(())
    }
}

/// Mode, times and owner of what an `O_PATH` descriptor (not a symlink)
/// refers to.
fn set_path_fd(
    fd: BorrowedFd<'_>,
    uid_gid: Option<(u32, u32)>,
    mode: Option<u32>,
    times: Option<(u64, u64)>,
    reopen: impl FnOnce() -> io::Result<OwnedFd>,
) -> io::Result<()> {
    if let Some(mode) = mode {
        chmod_path_fd(fd, mode, reopen)?;
    }
    if let Some((atime, mtime)) = times {
        sys::utimensat(fd, c"", &timespecs(atime, mtime), libc::AT_EMPTY_PATH)?;
    }
    if let Some((uid, gid)) = uid_gid {
        sys::fchownat(
            fd,
            c"",
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )?;
    }
    Ok(())
}
