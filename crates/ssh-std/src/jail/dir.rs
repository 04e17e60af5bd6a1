//! Directories: listing ([`DirReader`]), creating and removing.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::os::fd::AsFd;

use super::attrs::FileStat;
use super::resolve::same_inode;
use super::{fstat_fd, Jail};
use crate::sys;

/// An open directory: yields `(name, attributes)` for every entry, `.` and
/// `..` included, with `lstat` semantics (a symlink is reported as a
/// symlink). Entries that vanish while listing are skipped.
pub struct DirReader {
    dir: sys::Dir,
    /// The directory is the jail root: `..` is reported as `.`.
    is_root: bool,
    done: bool,
}

impl fmt::Debug for DirReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirReader")
            .field("dir", &self.dir)
            .field("is_root", &self.is_root)
            .finish()
    }
}

impl Iterator for DirReader {
    type Item = io::Result<(String, FileStat)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let name = match self.dir.read() {
                Some(Ok(name)) => name,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    return None;
                }
            };
            let stat_name: &CStr = if self.is_root && name.as_bytes() == b".." {
                c"."
            } else {
                &name
            };
            let st = match sys::fstatat(self.dir.fd(), stat_name, libc::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => return Some(Err(e)),
            };
            let name = String::from_utf8_lossy(name.as_bytes()).into_owned();
            return Some(Ok((name, FileStat::from_stat(&st))));
        }
        None
    }
}

impl Jail {
    /// Opens a directory for listing (follows symlinks, inside the root).
    pub fn open_dir(&self, path: &str) -> io::Result<DirReader> {
        let fd = self.resolve(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let is_root = same_inode(&fstat_fd(fd.as_fd())?, &fstat_fd(self.root())?);
        Ok(DirReader {
            dir: sys::Dir::new(fd)?,
            is_root,
            done: false,
        })
    }

    /// Creates a directory (`mode` masked to `0o7777`, the umask applies).
    pub fn mkdir(&self, path: &str, mode: u32) -> io::Result<()> {
        let e = self.entry(path, libc::EEXIST)?;
        sys::mkdirat(e.dir(), &e.name, (mode & 0o7777) as libc::mode_t)
    }

    /// Removes an empty directory (not a symlink to one).
    pub fn rmdir(&self, path: &str) -> io::Result<()> {
        let e = self.entry(path, libc::EINVAL)?;
        sys::unlinkat(e.dir(), &e.name, libc::AT_REMOVEDIR)
    }
}
