//! Names and links: removing, renaming, symlinks and hard links. Each acts
//! on the last name itself, never through a symlink there.

use std::io;

use super::resolve::{read_link_with, Target};
use super::{cstring, errno, Jail};
use crate::sys;

impl Jail {
    /// Removes a file or symlink (not a directory).
    pub fn remove(&self, path: &str) -> io::Result<()> {
        let e = self.entry(path, libc::EISDIR)?;
        sys::unlinkat(e.dir(), &e.name, 0)
    }

    /// Renames `old` to `new`. With `overwrite == false` (SFTP v3 RENAME)
    /// an existing `new` makes it fail with `AlreadyExists`
    /// (`renameat2(RENAME_NOREPLACE)`; on file systems without it, a check
    /// then a rename). With `overwrite == true` it is POSIX `rename`
    /// (`posix-rename@openssh.com`).
    pub fn rename(&self, old: &str, new: &str, overwrite: bool) -> io::Result<()> {
        let o = self.entry(old, libc::EBUSY)?;
        let n = self.entry(new, libc::EBUSY)?;
        let plain = || sys::renameat(o.dir(), &o.name, n.dir(), &n.name);
        if overwrite {
            return plain();
        }
        let e = match sys::renameat2(o.dir(), &o.name, n.dir(), &n.name, libc::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match e.raw_os_error() {
            // The file system (or kernel) does not support the flag.
            Some(libc::EINVAL) | Some(libc::ENOSYS) => {
                match sys::fstatat(n.dir(), &n.name, libc::AT_SYMLINK_NOFOLLOW) {
                    Ok(_) => Err(errno(libc::EEXIST)),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => plain(),
                    Err(e) => Err(e),
                }
            }
            _ => Err(e),
        }
    }

    /// Creates a symlink at `linkpath` whose target is `target`, stored
    /// verbatim (it is resolved inside the root whenever it is followed).
    pub fn symlink(&self, target: &str, linkpath: &str) -> io::Result<()> {
        let target = cstring(target.as_bytes())?;
        let e = self.entry(linkpath, libc::EEXIST)?;
        sys::symlinkat(&target, e.dir(), &e.name)
    }

    /// The stored target of a symlink, verbatim.
    pub fn readlink(&self, path: &str) -> io::Result<String> {
        let e = match self.locate(path)? {
            Target::Dir(_) => return Err(errno(libc::EINVAL)),
            Target::Entry(e) => e,
        };
        let target = read_link_with(|buf| sys::readlinkat(e.dir(), &e.name, buf))?;
        Ok(String::from_utf8_lossy(&target).into_owned())
    }

    /// Makes `new` a hard link to `old` (a symlink `old` is linked itself,
    /// not its target).
    pub fn hardlink(&self, old: &str, new: &str) -> io::Result<()> {
        let o = self.entry(old, libc::EPERM)?;
        let n = self.entry(new, libc::EEXIST)?;
        sys::linkat(o.dir(), &o.name, n.dir(), &n.name, 0)
    }
}
