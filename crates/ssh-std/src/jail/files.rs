//! Regular files: [`OpenOptions`], [`Jail::open`], [`Jail::fsync`].

use std::fs::File;
use std::io;
use std::os::fd::AsFd;

use super::{errno, fstat_fd, Jail};
use crate::sys;

/// How [`Jail::open`] opens a file. `mode` is used when a file is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
    /// Writes go to the end of the file (implies `write`).
    pub append: bool,
    /// Create the file if it does not exist.
    pub create: bool,
    /// Truncate an existing file to length 0.
    pub truncate: bool,
    /// Create the file, failing with `AlreadyExists` if the name exists
    /// (implies `create`).
    pub exclusive: bool,
    /// Permission bits of a created file (before the umask).
    pub mode: u32,
}

impl Default for OpenOptions {
    /// Nothing set; `mode` 0o666 (the umask applies).
    fn default() -> Self {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            create: false,
            truncate: false,
            exclusive: false,
            mode: 0o666,
        }
    }
}

impl OpenOptions {
    /// Read only.
    pub fn read() -> Self {
        OpenOptions {
            read: true,
            ..Self::default()
        }
    }

    /// Write, create, truncate (like `std::fs::File::create`).
    pub fn create() -> Self {
        OpenOptions {
            write: true,
            create: true,
            truncate: true,
            ..Self::default()
        }
    }
}

impl Jail {
    /// Opens a regular file. Fails with `InvalidInput` when neither `read`
    /// nor `write`/`append` is set, `EISDIR` for a directory and
    /// `InvalidInput` for other non-regular files.
    pub fn open(&self, path: &str, opts: &OpenOptions) -> io::Result<File> {
        let write = opts.write || opts.append;
        let mut flags = match (opts.read, write) {
            (true, false) => libc::O_RDONLY,
            (false, true) => libc::O_WRONLY,
            (true, true) => libc::O_RDWR,
            (false, false) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "open needs read or write access",
                ))
            }
        };
        if opts.append {
            flags |= libc::O_APPEND;
        }
        if opts.create {
            flags |= libc::O_CREAT;
        }
        if opts.exclusive {
            flags |= libc::O_CREAT | libc::O_EXCL;
        }
        if opts.truncate {
            flags |= libc::O_TRUNC;
        }
        flags |= libc::O_NOCTTY | libc::O_NONBLOCK;
        let fd = self.resolve(path, flags, opts.mode)?;
        let st = fstat_fd(fd.as_fd())?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => {}
            libc::S_IFDIR => return Err(errno(libc::EISDIR)),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file",
                ))
            }
        }
        let fl = sys::get_status_flags(fd.as_fd())?;
        sys::set_status_flags(fd.as_fd(), fl & !libc::O_NONBLOCK)?;
        Ok(File::from(fd))
    }

    /// Flushes an open file to stable storage (`fsync@openssh.com`).
    pub fn fsync(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }
}
