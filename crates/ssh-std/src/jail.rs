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

use std::ffi::{CStr, CString};
use std::fmt;
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

/// How every client path is resolved.
const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
/// How often an `openat2` that failed with `EAGAIN` (a rename raced with the
/// walk) or `EINTR` is retried.
const RETRIES: usize = 1024;

/// How [`Jail::open`] opens a file. `mode` is used when a file is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    pub read: bool,
    pub write: bool,
    /// Writes go to the end of the file (implies `write`).
    pub append: bool,
    pub create: bool,
    pub truncate: bool,
    /// Create the file, failing with `AlreadyExists` if the name exists
    /// (implies `create`).
    pub exclusive: bool,
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

/// Attributes of a file, as SFTP carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
    /// Full `st_mode`, file type bits included.
    pub mode: u32,
    pub atime: u64,
    pub mtime: u64,
    /// Device and inode: equal for two names or descriptors of one file.
    pub dev: u64,
    pub ino: u64,
}

impl FileStat {
    #[allow(clippy::unnecessary_cast)] // field types differ between targets
    fn from_stat(st: &libc::stat) -> FileStat {
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

    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }

    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    /// The permission bits (`mode & 0o7777`).
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// File system statistics (`statvfs@openssh.com`): the codec's type.
pub use ssh_proto::sftp::StatVfs;

/// A directory tree served with its root as `/`. See the [module
/// documentation](self) for what it guarantees.
#[derive(Debug)]
pub struct Jail {
    root: OwnedFd,
}

/// An open directory: yields `(name, attributes)` for every entry, `.` and
/// `..` included, with `lstat` semantics (a symlink is reported as a
/// symlink). Entries that vanish while listing are skipped.
pub struct DirReader {
    dir: NonNull<libc::DIR>,
    /// The directory is the jail root: `..` is reported as `.`.
    is_root: bool,
    done: bool,
}

// SAFETY: the DIR stream is owned exclusively by this value and only used
// through `&mut self`; moving it to another thread is fine.
unsafe impl Send for DirReader {}

impl fmt::Debug for DirReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirReader")
            .field("fd", &self.raw_fd())
            .field("is_root", &self.is_root)
            .finish()
    }
}

impl DirReader {
    fn raw_fd(&self) -> RawFd {
        // SAFETY: `dir` is a valid open DIR stream until drop.
        unsafe { libc::dirfd(self.dir.as_ptr()) }
    }
}

impl Iterator for DirReader {
    type Item = io::Result<(String, FileStat)>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            // SAFETY: errno is thread-local; `dir` is valid until drop.
            let ent = unsafe {
                *libc::__errno_location() = 0;
                libc::readdir(self.dir.as_ptr())
            };
            if ent.is_null() {
                self.done = true;
                let e = io::Error::last_os_error();
                return match e.raw_os_error() {
                    Some(0) | None => None,
                    Some(_) => Some(Err(e)),
                };
            }
            // SAFETY: readdir returned a valid entry, its name is NUL
            // terminated; it is copied before the next readdir call.
            let name: CString = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }.to_owned();
            let stat_name: &CStr = if self.is_root && name.as_bytes() == b".." {
                c"."
            } else {
                &name
            };
            let st = match fstatat(self.raw_fd(), stat_name, libc::AT_SYMLINK_NOFOLLOW) {
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

impl Drop for DirReader {
    fn drop(&mut self) {
        // SAFETY: `dir` came from fdopendir and is closed exactly once.
        unsafe { libc::closedir(self.dir.as_ptr()) };
    }
}

// ---------------------------------------------------------------------------
// Thin wrappers around the system calls.

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn cstring(s: &[u8]) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// `openat2(dir, path, flags | O_CLOEXEC, mode)` resolving inside `dir`.
fn openat2(dir: BorrowedFd<'_>, path: &CStr, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain data; all-zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        u64::from(mode & 0o7777)
    } else {
        0
    };
    how.resolve = RESOLVE;
    for _ in 0..RETRIES {
        // SAFETY: valid descriptor, NUL-terminated path, `how` of the size
        // given.
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            // SAFETY: the kernel returned a new descriptor that we own.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
    Err(errno(libc::EAGAIN))
}

/// Plain `openat` of a single name (no `/`) in a trusted directory.
fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: valid descriptor and NUL-terminated name.
        let r = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
        match cvt(r) {
            // SAFETY: a new descriptor that we own.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn fstatat(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid pointers; the kernel fills `st` on success.
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), st.as_mut_ptr(), flags) })?;
    // SAFETY: initialised by the successful call.
    Ok(unsafe { st.assume_init() })
}

fn fstat_fd(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    fstatat(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

fn readlinkat(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: the buffer is valid for `buf.len()` bytes.
        let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
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

fn timespecs(atime: u64, mtime: u64) -> [libc::timespec; 2] {
    let ts = |t: u64| libc::timespec {
        tv_sec: t.min(i64::MAX as u64) as libc::time_t,
        tv_nsec: 0,
    };
    [ts(atime), ts(mtime)]
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
    // SAFETY: valid descriptor, empty NUL-terminated path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            (mode & 0o7777) as libc::mode_t,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ENOSYS) {
        return Err(e);
    }
    let file = reopen()?;
    // SAFETY: valid descriptor.
    cvt(unsafe { libc::fchmod(file.as_raw_fd(), (mode & 0o7777) as libc::mode_t) })?;
    Ok(())
}

/// What a client path names, for operations on a final component.
enum Loc<'a> {
    /// The path names the root or ends in `.`/`..`: always a directory,
    /// resolved as a whole (the trimmed path is given).
    Dir(&'a str),
    /// A parent directory path and a plain last name (no `/`, not `.`/`..`).
    Entry { parent: &'a str, name: &'a str },
}

fn split_last(path: &str) -> Loc<'_> {
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
struct Entry {
    dir: OwnedFd,
    name: CString,
}

impl Entry {
    fn dirfd(&self) -> RawFd {
        self.dir.as_raw_fd()
    }
}

/// A resolved final component.
enum Target {
    /// A directory named by the root, `.` or `..` (an `O_PATH` descriptor).
    Dir(OwnedFd),
    Entry(Entry),
}

fn path_of_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let link = cstring(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes())?;
    readlinkat(libc::AT_FDCWD, &link)
}

fn same_inode(a: &libc::stat, b: &libc::stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

impl Jail {
    /// Serves the directory `root` as `/`. Fails if it is not a directory
    /// or the kernel lacks `openat2` (Linux < 5.6, or a seccomp filter).
    pub fn new(root: &Path) -> io::Result<Jail> {
        let c = cstring(root.as_os_str().as_bytes())?;
        // SAFETY: NUL-terminated path.
        let fd = cvt(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: a new descriptor that we own.
        let jail = Jail {
            root: unsafe { OwnedFd::from_raw_fd(fd) },
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

    /// Resolves a whole client path inside the root.
    fn resolve(&self, path: &str, flags: libc::c_int, mode: u32) -> io::Result<OwnedFd> {
        let path = if path.is_empty() { "." } else { path };
        openat2(self.root.as_fd(), &cstring(path.as_bytes())?, flags, mode)
    }

    fn resolve_parent(&self, parent: &str, name: &str) -> io::Result<Entry> {
        let name = cstring(name.as_bytes())?;
        let dir = self.resolve(parent, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        Ok(Entry { dir, name })
    }

    fn locate(&self, path: &str) -> io::Result<Target> {
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
    fn entry(&self, path: &str, dir_errno: i32) -> io::Result<Entry> {
        match split_last(path) {
            Loc::Dir(_) => Err(errno(dir_errno)),
            Loc::Entry { parent, name } => self.resolve_parent(parent, name),
        }
    }

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
        // SAFETY: valid descriptor.
        let fl = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
        // SAFETY: valid descriptor.
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK) })?;
        Ok(File::from(fd))
    }

    /// Opens a directory for listing (follows symlinks, inside the root).
    pub fn open_dir(&self, path: &str) -> io::Result<DirReader> {
        let fd = self.resolve(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        let is_root = same_inode(&fstat_fd(fd.as_fd())?, &fstat_fd(self.root.as_fd())?);
        let raw = fd.into_raw_fd();
        // SAFETY: `raw` is an open directory descriptor; on success the DIR
        // stream owns it.
        let dir = unsafe { libc::fdopendir(raw) };
        match NonNull::new(dir) {
            Some(dir) => Ok(DirReader {
                dir,
                is_root,
                done: false,
            }),
            None => {
                let e = io::Error::last_os_error();
                // SAFETY: fdopendir failed, so we still own `raw`.
                drop(unsafe { OwnedFd::from_raw_fd(raw) });
                Err(e)
            }
        }
    }

    /// Attributes, following symlinks (inside the root).
    pub fn stat(&self, path: &str) -> io::Result<FileStat> {
        let fd = self.resolve(path, libc::O_PATH, 0)?;
        Ok(FileStat::from_stat(&fstat_fd(fd.as_fd())?))
    }

    /// Attributes, not following a symlink as last component.
    pub fn lstat(&self, path: &str) -> io::Result<FileStat> {
        let st = match self.locate(path)? {
            Target::Dir(fd) => fstat_fd(fd.as_fd())?,
            Target::Entry(e) => fstatat(e.dirfd(), &e.name, libc::AT_SYMLINK_NOFOLLOW)?,
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
        self.set_path_fd(fd.as_fd(), uid_gid, mode, times, || {
            self.resolve(path, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY, 0)
        })
    }

    /// Mode, times and owner of what an `O_PATH` descriptor (not a symlink)
    /// refers to.
    fn set_path_fd(
        &self,
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
            let ts = timespecs(atime, mtime);
            // SAFETY: valid descriptor, empty path, two timespecs.
            cvt(unsafe {
                libc::utimensat(
                    fd.as_raw_fd(),
                    c"".as_ptr(),
                    ts.as_ptr(),
                    libc::AT_EMPTY_PATH,
                )
            })?;
        }
        if let Some((uid, gid)) = uid_gid {
            // SAFETY: valid descriptor, empty path.
            cvt(unsafe {
                libc::fchownat(
                    fd.as_raw_fd(),
                    c"".as_ptr(),
                    uid,
                    gid,
                    libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
        }
        Ok(())
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
                return self.set_path_fd(fd.as_fd(), uid_gid, mode, times, || {
                    self.resolve(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                });
            }
            Target::Entry(e) => e,
        };
        let nofollow = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        if let Some(size) = size {
            let fd = openat(e.dir.as_fd(), &e.name, libc::O_WRONLY | nofollow)?;
            ftruncate(fd.as_fd(), size)?;
        }
        if let Some(mode) = mode {
            let fd = openat(e.dir.as_fd(), &e.name, libc::O_PATH | libc::O_NOFOLLOW)?;
            if fstat_fd(fd.as_fd())?.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return Err(errno(libc::EOPNOTSUPP));
            }
            chmod_path_fd(fd.as_fd(), mode, || {
                openat(e.dir.as_fd(), &e.name, libc::O_RDONLY | nofollow)
            })?;
        }
        if let Some((atime, mtime)) = times {
            let ts = timespecs(atime, mtime);
            // SAFETY: valid descriptor and name, two timespecs.
            cvt(unsafe {
                libc::utimensat(
                    e.dirfd(),
                    e.name.as_ptr(),
                    ts.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
        }
        if let Some((uid, gid)) = uid_gid {
            // SAFETY: valid descriptor and name.
            cvt(unsafe {
                libc::fchownat(
                    e.dirfd(),
                    e.name.as_ptr(),
                    uid,
                    gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
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
        let fd = file.as_raw_fd();
        if let Some(size) = size {
            ftruncate(file.as_fd(), size)?;
        }
        if let Some(mode) = mode {
            // SAFETY: valid descriptor.
            cvt(unsafe { libc::fchmod(fd, (mode & 0o7777) as libc::mode_t) })?;
        }
        if let Some((atime, mtime)) = times {
            let ts = timespecs(atime, mtime);
            // SAFETY: valid descriptor, two timespecs.
            cvt(unsafe { libc::futimens(fd, ts.as_ptr()) })?;
        }
        if let Some((uid, gid)) = uid_gid {
            // SAFETY: valid descriptor.
            cvt(unsafe { libc::fchown(fd, uid, gid) })?;
        }
        Ok(())
    }

    /// Flushes an open file to stable storage (`fsync@openssh.com`).
    pub fn fsync(&self, file: &File) -> io::Result<()> {
        file.sync_all()
    }

    /// Creates a directory (`mode` masked to `0o7777`, the umask applies).
    pub fn mkdir(&self, path: &str, mode: u32) -> io::Result<()> {
        let e = self.entry(path, libc::EEXIST)?;
        // SAFETY: valid descriptor and name.
        cvt(unsafe { libc::mkdirat(e.dirfd(), e.name.as_ptr(), (mode & 0o7777) as libc::mode_t) })?;
        Ok(())
    }

    /// Removes an empty directory (not a symlink to one).
    pub fn rmdir(&self, path: &str) -> io::Result<()> {
        let e = self.entry(path, libc::EINVAL)?;
        // SAFETY: valid descriptor and name.
        cvt(unsafe { libc::unlinkat(e.dirfd(), e.name.as_ptr(), libc::AT_REMOVEDIR) })?;
        Ok(())
    }

    /// Removes a file or symlink (not a directory).
    pub fn remove(&self, path: &str) -> io::Result<()> {
        let e = self.entry(path, libc::EISDIR)?;
        // SAFETY: valid descriptor and name.
        cvt(unsafe { libc::unlinkat(e.dirfd(), e.name.as_ptr(), 0) })?;
        Ok(())
    }

    /// Renames `old` to `new`. With `overwrite == false` (SFTP v3 RENAME)
    /// an existing `new` makes it fail with `AlreadyExists`
    /// (`renameat2(RENAME_NOREPLACE)`; on file systems without it, a check
    /// then a rename). With `overwrite == true` it is POSIX `rename`
    /// (`posix-rename@openssh.com`).
    pub fn rename(&self, old: &str, new: &str, overwrite: bool) -> io::Result<()> {
        let o = self.entry(old, libc::EBUSY)?;
        let n = self.entry(new, libc::EBUSY)?;
        let plain = || {
            // SAFETY: valid descriptors and names.
            cvt(unsafe { libc::renameat(o.dirfd(), o.name.as_ptr(), n.dirfd(), n.name.as_ptr()) })
                .map(drop)
        };
        if overwrite {
            return plain();
        }
        // SAFETY: valid descriptors and names.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                o.dirfd(),
                o.name.as_ptr(),
                n.dirfd(),
                n.name.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // The file system (or kernel) does not support the flag.
            Some(libc::EINVAL) | Some(libc::ENOSYS) => {
                match fstatat(n.dirfd(), &n.name, libc::AT_SYMLINK_NOFOLLOW) {
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
        // SAFETY: NUL-terminated strings, valid descriptor.
        cvt(unsafe { libc::symlinkat(target.as_ptr(), e.dirfd(), e.name.as_ptr()) })?;
        Ok(())
    }

    /// The stored target of a symlink, verbatim.
    pub fn readlink(&self, path: &str) -> io::Result<String> {
        let e = match self.locate(path)? {
            Target::Dir(_) => return Err(errno(libc::EINVAL)),
            Target::Entry(e) => e,
        };
        let target = readlinkat(e.dirfd(), &e.name)?;
        Ok(String::from_utf8_lossy(&target).into_owned())
    }

    /// Makes `new` a hard link to `old` (a symlink `old` is linked itself,
    /// not its target).
    pub fn hardlink(&self, old: &str, new: &str) -> io::Result<()> {
        let o = self.entry(old, libc::EPERM)?;
        let n = self.entry(new, libc::EEXIST)?;
        // SAFETY: valid descriptors and names.
        cvt(unsafe { libc::linkat(o.dirfd(), o.name.as_ptr(), n.dirfd(), n.name.as_ptr(), 0) })?;
        Ok(())
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
        let root = path_of_fd(self.root.as_fd())?;
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

    /// File system statistics for the file system holding `path`.
    #[allow(clippy::unnecessary_cast)] // field types differ between targets
    pub fn statvfs(&self, path: &str) -> io::Result<StatVfs> {
        let fd = self.resolve(path, libc::O_PATH, 0)?;
        let mut st = MaybeUninit::<libc::statvfs>::uninit();
        // SAFETY: valid descriptor and buffer.
        cvt(unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
        // SAFETY: initialised by the successful call.
        let st = unsafe { st.assume_init() };
        Ok(StatVfs {
            bsize: st.f_bsize as u64,
            frsize: st.f_frsize as u64,
            blocks: st.f_blocks as u64,
            bfree: st.f_bfree as u64,
            bavail: st.f_bavail as u64,
            files: st.f_files as u64,
            ffree: st.f_ffree as u64,
            favail: st.f_favail as u64,
            fsid: st.f_fsid as u64,
            flag: st.f_flag as u64,
            namemax: st.f_namemax as u64,
        })
    }
}

fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> io::Result<()> {
    let size = libc::off_t::try_from(size).map_err(|_| errno(libc::EFBIG))?;
    // SAFETY: valid descriptor.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A temporary directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir().join(format!(
                "jail-test-{}-{}-{}-{}",
                std::process::id(),
                tag,
                nanos,
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// What a tree holds: for each relative path, its mode and its contents
    /// or link target.
    fn snapshot(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
            for ent in std::fs::read_dir(dir).unwrap() {
                let p = ent.unwrap().path();
                let md = std::fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                let content = if md.file_type().is_symlink() {
                    std::fs::read_link(&p)
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec()
                } else if md.is_file() {
                    std::fs::read(&p).unwrap()
                } else {
                    walk(base, &p, out);
                    Vec::new()
                };
                out.insert(rel, (md.permissions().mode(), content));
            }
        }
        let mut out = BTreeMap::new();
        walk(dir, dir, &mut out);
        out
    }

    fn names(dir: &Path) -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn read_all(jail: &Jail, path: &str) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        jail.open(path, &OpenOptions::read())?.read_to_end(&mut v)?;
        Ok(v)
    }

    fn write_opts() -> OpenOptions {
        OpenOptions {
            write: true,
            create: true,
            ..OpenOptions::default()
        }
    }

    /// `tmp/outside/{secret,sub/deep}` and `tmp/root/{file,dir/inner}` with
    /// the symlinks `root/abs -> /`, `root/up -> ../outside`,
    /// `root/dotdot -> ..`.
    fn setup(tag: &str) -> (TempDir, PathBuf, PathBuf) {
        let t = TempDir::new(tag);
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"top secret").unwrap();
        std::fs::set_permissions(outside.join("secret"), PermissionsExt::from_mode(0o600)).unwrap();
        std::fs::create_dir(outside.join("sub")).unwrap();
        std::fs::write(outside.join("sub/deep"), b"deep").unwrap();
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::set_permissions(&root, PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::set_permissions(t.path(), PermissionsExt::from_mode(0o711)).unwrap();
        std::fs::write(root.join("file"), b"hello").unwrap();
        std::fs::create_dir(root.join("dir")).unwrap();
        std::fs::write(root.join("dir/inner"), b"inner").unwrap();
        symlink("/", root.join("abs")).unwrap();
        symlink("../outside", root.join("up")).unwrap();
        symlink("..", root.join("dotdot")).unwrap();
        (t, outside, root)
    }

    fn is_enoent<T: fmt::Debug>(r: io::Result<T>, what: &str) {
        match r {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => panic!("{what}: expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn jail_escapes_are_contained() {
        let (t, outside, root) = setup("escape");
        let before = snapshot(&outside);
        let outside_str = outside.to_str().unwrap().to_owned();
        let jail = Jail::new(&root).unwrap();
        jail.symlink("/etc/passwd", "/link").unwrap();
        jail.symlink("../../outside/secret", "/l2").unwrap();
        jail.symlink(&format!("{outside_str}/secret"), "/l3")
            .unwrap();
        assert_eq!(jail.readlink("link").unwrap(), "/etc/passwd");
        assert_eq!(jail.readlink("/l2").unwrap(), "../../outside/secret");
        assert_eq!(jail.readlink("up").unwrap(), "../outside");
        assert_eq!(jail.readlink("abs").unwrap(), "/");
        assert!(jail.lstat("up").unwrap().is_symlink());

        let escapes = [
            "../outside/secret",
            "/../outside/secret",
            "../../../../outside/secret",
            "up/secret",
            "/up/secret",
            "up/sub/deep",
            "abs/outside/secret",
            "abs/../outside/secret",
            "dotdot/outside/secret",
            "dotdot/../outside/secret",
            "dir/../../outside/secret",
            "link",
            "l2",
            "l3",
        ];
        for p in escapes {
            is_enoent(jail.open(p, &OpenOptions::read()), &format!("open {p}"));
            assert!(jail.open(p, &write_opts()).is_err(), "create {p}");
            is_enoent(jail.stat(p), &format!("stat {p}"));
            assert!(
                jail.setstat(p, None, None, Some(0o777), None).is_err(),
                "setstat {p}"
            );
            assert!(
                jail.setstat(p, Some(0), None, None, None).is_err(),
                "truncate {p}"
            );
            assert!(jail.remove(p).is_err() || p.starts_with('l'), "remove {p}");
            assert!(
                jail.lsetstat(p, None, None, Some(0o777), None).is_err(),
                "lsetstat {p}"
            );
            assert!(jail.open_dir(p).is_err(), "open_dir {p}");
            assert!(jail.statvfs(p).is_err(), "statvfs {p}");
            if let Ok(real) = jail.realpath(p) {
                assert!(
                    real.starts_with('/') && !real.contains(&outside_str),
                    "{p} -> {real}"
                );
            }
        }
        // The link names themselves still exist (remove above only took
        // the links, which is fine); recreate for the following checks.
        let _ = jail.symlink("/etc/passwd", "/link");
        let _ = jail.symlink("../../outside/secret", "/l2");

        // Creating through links to the root stays inside.
        jail.open("abs/created", &write_opts()).unwrap();
        assert!(root.join("created").exists());
        jail.open("dotdot/../created2", &write_opts()).unwrap();
        assert!(root.join("created2").exists());

        // Directories.
        is_enoent(jail.mkdir("up/new", 0o777), "mkdir up/new");
        is_enoent(jail.mkdir("../outside/new", 0o777), "mkdir ../outside/new");
        jail.mkdir("dotdot/new", 0o755).unwrap();
        assert!(root.join("new").is_dir());
        assert!(jail.rmdir("dotdot").is_err());
        assert!(jail.rmdir("dotdot/").is_err());
        assert!(jail.rmdir("abs").is_err());
        assert!(jail.rmdir("..").is_err());
        assert!(jail.rmdir("/").is_err());
        assert!(jail.rmdir("up/sub").is_err());
        assert!(jail.remove("..").is_err());
        assert!(jail.remove("/").is_err());
        is_enoent(jail.open_dir("up").map(|_| ()), "open_dir up");

        // Listing via links to the root lists the root; `..` of the root is
        // the root itself.
        let root_mode = std::fs::metadata(&root).unwrap().permissions().mode();
        for p in ["abs", "dotdot", "/", "", "..", "abs/.."] {
            let list: BTreeMap<String, FileStat> =
                jail.open_dir(p).unwrap().map(|r| r.unwrap()).collect();
            assert!(
                list.contains_key("file") && list.contains_key("up"),
                "{p}: {list:?}"
            );
            assert_eq!(list[".."].mode & 0o7777, root_mode & 0o7777, "{p}");
            let (dd, d) = (list[".."], list["."]);
            assert_eq!((dd.mode, dd.uid, dd.mtime), (d.mode, d.uid, d.mtime), "{p}");
        }

        // Renames.
        is_enoent(jail.rename("/file", "../outside/moved", false), "rename ..");
        is_enoent(jail.rename("/file", "up/moved", false), "rename up");
        is_enoent(jail.rename("/file", "up/moved", true), "posix-rename up");
        is_enoent(jail.rename("up/secret", "/stolen", true), "rename from up");
        jail.rename("/file", "dotdot/moved", false).unwrap();
        assert!(root.join("moved").exists());
        jail.rename("moved", "file", false).unwrap();
        jail.rename("up", "up2", false).unwrap();
        assert!(std::fs::symlink_metadata(root.join("up2"))
            .unwrap()
            .file_type()
            .is_symlink());
        jail.rename("up2", "up", false).unwrap();
        assert!(jail.rename("..", "x", false).is_err());
        assert!(jail.rename("file", "/", true).is_err());

        // Symlinks made by the client, then written through.
        jail.symlink("../outside/evil", "/s1").unwrap();
        jail.symlink("/../../outside/evil", "/s2").unwrap();
        jail.symlink(&format!("{outside_str}/evil"), "/s3").unwrap();
        jail.symlink("up/evil", "/s4").unwrap();
        jail.symlink("../../outside", "/dir/s5").unwrap();
        for p in [
            "s1",
            "s2",
            "s3",
            "s4",
            "dir/s5/evil",
            "/dir/s5/../outside/evil",
        ] {
            assert!(jail.open(p, &write_opts()).is_err(), "write {p}");
            assert!(jail.mkdir(&format!("{p}/d"), 0o777).is_err(), "mkdir {p}/d");
        }

        // Hard links cannot pull outside files in.
        is_enoent(jail.hardlink("up/secret", "/stolen"), "hardlink up/secret");
        is_enoent(
            jail.hardlink("../outside/secret", "/stolen"),
            "hardlink ../",
        );
        is_enoent(
            jail.hardlink("abs/../../outside/secret", "/stolen"),
            "hardlink abs",
        );
        assert!(jail.hardlink("..", "/stolen").is_err());
        // Linking a symlink links the symlink itself, not its target.
        jail.hardlink("l2", "/stolen2").unwrap();
        assert!(jail.lstat("stolen2").unwrap().is_symlink());
        is_enoent(jail.open("stolen2", &OpenOptions::read()), "open stolen2");

        // realpath never leaves the root.
        assert_eq!(jail.realpath("up").unwrap(), "/up"); // dangling: parent + name
        assert_eq!(jail.realpath("abs").unwrap(), "/");
        assert_eq!(jail.realpath("dotdot").unwrap(), "/");
        assert_eq!(jail.realpath("../..").unwrap(), "/");
        assert_eq!(jail.realpath("abs/../dir/..").unwrap(), "/");
        assert_eq!(jail.realpath("dotdot/dir").unwrap(), "/dir");
        assert!(jail.realpath("up/secret").is_err());
        assert_eq!(jail.realpath("link").unwrap(), "/link");

        // Attributes of the link itself are fine to change; its target is
        // not touched.
        assert!(jail.lstat("up").unwrap().is_symlink());
        assert_eq!(
            jail.lsetstat("up", None, None, Some(0o777), None)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EOPNOTSUPP)
        );
        jail.lsetstat("up", None, None, None, Some((10, 20)))
            .unwrap();
        assert_eq!(jail.lstat("up").unwrap().mtime, 20);
        assert!(jail.lsetstat("up", Some(0), None, None, None).is_err());

        // Once a directory named like the outside one exists *inside* the
        // root, the same paths land there.
        jail.mkdir("/outside", 0o755).unwrap();
        jail.open("up/secret", &write_opts())
            .unwrap()
            .write_all(b"decoy")
            .unwrap();
        assert_eq!(
            std::fs::read(root.join("outside/secret")).unwrap(),
            b"decoy"
        );
        assert_eq!(read_all(&jail, "l2").unwrap(), b"decoy");
        assert_eq!(read_all(&jail, "../outside/secret").unwrap(), b"decoy");
        jail.hardlink("up/secret", "/stolen").unwrap();
        assert_eq!(read_all(&jail, "stolen").unwrap(), b"decoy");
        jail.setstat("up/secret", None, None, Some(0o666), None)
            .unwrap();
        jail.remove("up/secret").unwrap();
        jail.mkdir("up/new", 0o755).unwrap();
        assert!(root.join("outside/new").is_dir());
        assert_eq!(jail.realpath("up/new").unwrap(), "/outside/new");

        // Nothing outside changed, and nothing appeared next to the root.
        assert_eq!(snapshot(&outside), before);
        assert_eq!(
            std::fs::read(outside.join("secret")).unwrap(),
            b"top secret"
        );
        assert_eq!(
            names(t.path()),
            ["outside", "root"].iter().map(|s| s.to_string()).collect()
        );
    }

    fn rename_exchange(a: &Path, b: &Path) -> io::Result<()> {
        let a = cstring(a.as_os_str().as_bytes())?;
        let b = cstring(b.as_os_str().as_bytes())?;
        // SAFETY: NUL-terminated paths.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    #[test]
    fn jail_swap_race_stays_inside() {
        let (t, outside, root) = setup("race");
        let before = snapshot(&outside);
        std::fs::create_dir(root.join("swap")).unwrap();
        symlink("../outside", root.join("swap_alt")).unwrap();
        let jail = Jail::new(&root).unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicUsize::new(0));
        let attacker = {
            let stop = stop.clone();
            let swaps = swaps.clone();
            let (a, b) = (root.join("swap"), root.join("swap_alt"));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    rename_exchange(&a, &b).unwrap();
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            })
        };

        let (mut created, mut made_dirs) = (0, 0);
        for _ in 0..2000 {
            if jail.open("swap/secret-name", &write_opts()).is_ok() {
                created += 1;
                let _ = jail.remove("swap/secret-name");
            }
            if jail.mkdir("swap/x", 0o755).is_ok() {
                made_dirs += 1;
                let _ = jail.rmdir("swap/x");
            }
            let _ = jail.symlink("s", "swap/sl");
            let _ = jail.hardlink("file", "swap/hl");
            let _ = jail.rename("dir/inner", "swap/inner", false);
            let _ = jail.rename("swap/inner", "dir/inner", false);
            let _ = jail.setstat("swap/secret", None, None, Some(0o777), None);
            let _ = jail.remove("swap/secret");
        }
        stop.store(true, Ordering::Relaxed);
        attacker.join().unwrap();
        assert!(swaps.load(Ordering::Relaxed) > 0);
        eprintln!(
            "race: {} swaps, {created} files and {made_dirs} dirs created inside",
            swaps.load(Ordering::Relaxed)
        );

        assert_eq!(snapshot(&outside), before);
        assert_eq!(
            names(t.path()),
            ["outside", "root"].iter().map(|s| s.to_string()).collect()
        );
        // Whatever was created is inside the root.
        let real_dir = if std::fs::symlink_metadata(root.join("swap"))
            .unwrap()
            .is_dir()
        {
            root.join("swap")
        } else {
            root.join("swap_alt")
        };
        for n in names(&real_dir) {
            assert!(
                ["sl", "hl", "inner", "secret-name", "x"].contains(&n.as_str()),
                "{n}"
            );
        }
    }

    #[test]
    fn jail_normal_operations() {
        let (_t, _outside, root) = setup("normal");
        let jail = Jail::new(&root).unwrap();
        assert!(Jail::new(&root.join("file")).is_err());
        assert!(Jail::new(&root.join("missing")).is_err());

        // Create, write, read, append, exclusive, truncate.
        let mut f = jail.open("a.txt", &OpenOptions::create()).unwrap();
        f.write_all(b"hello").unwrap();
        jail.fsync(&f).unwrap();
        drop(f);
        assert_eq!(read_all(&jail, "/a.txt").unwrap(), b"hello");
        let append = OpenOptions {
            append: true,
            ..OpenOptions::default()
        };
        jail.open("a.txt", &append)
            .unwrap()
            .write_all(b" world")
            .unwrap();
        assert_eq!(read_all(&jail, "a.txt").unwrap(), b"hello world");
        let excl = OpenOptions {
            write: true,
            exclusive: true,
            mode: 0o600,
            ..OpenOptions::default()
        };
        assert_eq!(
            jail.open("a.txt", &excl).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            jail.open("link-to-a", &OpenOptions::read())
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        jail.open("b.txt", &excl)
            .unwrap()
            .write_all(b"bee")
            .unwrap();
        assert_eq!(jail.stat("b.txt").unwrap().permissions() & 0o077, 0);
        let rw = OpenOptions {
            read: true,
            write: true,
            ..OpenOptions::default()
        };
        let mut f = jail.open("a.txt", &rw).unwrap();
        f.write_all(b"J").unwrap();
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "Jello world");
        assert_eq!(jail.fstat(&f).unwrap().size, 11);
        drop(f);
        let trunc = OpenOptions {
            write: true,
            truncate: true,
            ..OpenOptions::default()
        };
        drop(jail.open("b.txt", &trunc).unwrap());
        assert_eq!(jail.stat("b.txt").unwrap().size, 0);
        assert_eq!(
            jail.open("a.txt", &OpenOptions::default())
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            jail.open("dir", &OpenOptions::read())
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EISDIR)
        );
        assert!(jail.open("dir", &write_opts()).is_err());
        assert!(jail.open("a.txt\0x", &OpenOptions::read()).is_err());

        // Directories.
        jail.mkdir("d", 0o755).unwrap();
        jail.mkdir("/d/e/", 0o700).unwrap();
        assert!(jail.stat("d/e").unwrap().is_dir());
        assert_eq!(
            jail.mkdir("d", 0o755).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            jail.mkdir("/", 0o755).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(jail.rmdir("d").is_err()); // not empty
        assert!(jail.remove("d").is_err()); // a directory
        jail.mkdir("d/gone", 0o755).unwrap();
        jail.rmdir("d/gone").unwrap();
        is_enoent(jail.stat("d/gone"), "stat removed dir");

        // Renames.
        jail.rename("a.txt", "c.txt", false).unwrap();
        is_enoent(jail.stat("a.txt"), "renamed away");
        assert_eq!(
            jail.rename("b.txt", "c.txt", false).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        jail.open("b.txt", &OpenOptions::create())
            .unwrap()
            .write_all(b"bbb")
            .unwrap();
        jail.rename("b.txt", "/d/../c.txt", true).unwrap();
        assert_eq!(read_all(&jail, "c.txt").unwrap(), b"bbb");
        jail.rename("d/e", "d/f", false).unwrap();
        assert!(jail.stat("d/f").unwrap().is_dir());

        // Symlinks, relative and absolute (inside the root).
        jail.symlink("c.txt", "/lnk").unwrap();
        jail.symlink("/d/f", "d/abs").unwrap();
        jail.symlink("../c.txt", "d/rel").unwrap();
        assert_eq!(jail.readlink("lnk").unwrap(), "c.txt");
        assert_eq!(jail.readlink("d/abs").unwrap(), "/d/f");
        assert!(jail.readlink("c.txt").is_err());
        assert!(jail.readlink("/").is_err());
        assert!(jail.stat("lnk").unwrap().is_file());
        assert_eq!(jail.stat("lnk").unwrap().size, 3);
        assert!(jail.lstat("lnk").unwrap().is_symlink());
        assert!(jail.stat("d/abs").unwrap().is_dir());
        assert_eq!(read_all(&jail, "d/rel").unwrap(), b"bbb");
        assert!(jail.lstat("/").unwrap().is_dir());
        assert!(jail.lstat("d/..").unwrap().is_dir());
        assert_eq!(
            jail.symlink("x", "lnk").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        jail.open("d/abs/through", &OpenOptions::create()).unwrap();
        assert!(root.join("d/f/through").is_file());

        // Hard links.
        jail.hardlink("c.txt", "h.txt").unwrap();
        jail.open("h.txt", &append)
            .unwrap()
            .write_all(b"!")
            .unwrap();
        assert_eq!(read_all(&jail, "c.txt").unwrap(), b"bbb!");
        assert_eq!(
            jail.hardlink("c.txt", "h.txt").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        jail.remove("h.txt").unwrap();
        assert_eq!(read_all(&jail, "c.txt").unwrap(), b"bbb!");

        // realpath.
        assert_eq!(jail.realpath("d/../d/./f").unwrap(), "/d/f");
        assert_eq!(jail.realpath("d/f/../../c.txt").unwrap(), "/c.txt");
        assert_eq!(jail.realpath("/").unwrap(), "/");
        assert_eq!(jail.realpath("").unwrap(), "/");
        assert_eq!(jail.realpath(".").unwrap(), "/");
        assert_eq!(jail.realpath("lnk").unwrap(), "/c.txt");
        assert_eq!(jail.realpath("d/abs").unwrap(), "/d/f");
        assert_eq!(jail.realpath("d/./newname").unwrap(), "/d/newname");
        assert_eq!(jail.realpath("d/f/../newname/").unwrap(), "/d/newname");
        assert_eq!(jail.realpath("newname").unwrap(), "/newname");
        is_enoent(jail.realpath("missing/x"), "realpath missing/x");

        // statvfs.
        let vfs = jail.statvfs("/").unwrap();
        assert!(
            vfs.blocks > 0 && vfs.bsize > 0 && vfs.namemax >= 255,
            "{vfs:?}"
        );
        assert_eq!(jail.statvfs("d/f").unwrap().fsid, vfs.fsid);

        // Listing.
        let list: BTreeMap<String, FileStat> =
            jail.open_dir("/").unwrap().map(|r| r.unwrap()).collect();
        for n in [".", "..", "c.txt", "d", "lnk", "file", "dir"] {
            assert!(list.contains_key(n), "{n} missing in {list:?}");
        }
        assert_eq!(list["c.txt"].size, 4);
        assert!(list["c.txt"].is_file());
        assert!(list["lnk"].is_symlink());
        assert!(list["d"].is_dir());
        let list: BTreeSet<String> = jail
            .open_dir("d/abs")
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(
            list,
            [".", "..", "through"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        assert!(jail.open_dir("c.txt").is_err());

        // setstat (follows), lsetstat (does not), fsetstat.
        jail.setstat("c.txt", Some(2), None, Some(0o640), Some((1000, 2000)))
            .unwrap();
        let st = jail.stat("c.txt").unwrap();
        assert_eq!(
            (st.size, st.permissions(), st.atime, st.mtime),
            (2, 0o640, 1000, 2000)
        );
        jail.setstat("lnk", None, None, Some(0o604), Some((3, 4)))
            .unwrap();
        let st = jail.stat("c.txt").unwrap();
        assert_eq!((st.permissions(), st.mtime), (0o604, 4));
        jail.lsetstat("lnk", None, None, None, Some((5, 6)))
            .unwrap();
        assert_eq!(jail.lstat("lnk").unwrap().mtime, 6);
        assert_eq!(jail.stat("c.txt").unwrap().mtime, 4);
        jail.lsetstat("c.txt", Some(1), None, Some(0o600), Some((7, 8)))
            .unwrap();
        let st = jail.stat("c.txt").unwrap();
        assert_eq!((st.size, st.permissions(), st.mtime), (1, 0o600, 8));
        jail.lsetstat("d/.", None, None, Some(0o750), None).unwrap();
        assert_eq!(jail.stat("d").unwrap().permissions(), 0o750);
        jail.setstat("/", None, None, None, Some((11, 12))).unwrap();
        assert_eq!(jail.stat("").unwrap().mtime, 12);
        let f = jail.open("c.txt", &rw).unwrap();
        jail.fsetstat(&f, Some(5), None, Some(0o644), Some((9, 10)))
            .unwrap();
        let st = jail.fstat(&f).unwrap();
        assert_eq!((st.size, st.permissions(), st.mtime), (5, 0o644, 10));
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            jail.setstat("lnk", None, Some((1234, 5678)), None, None)
                .unwrap();
            let st = jail.stat("c.txt").unwrap();
            assert_eq!((st.uid, st.gid), (1234, 5678));
            jail.lsetstat("lnk", None, Some((4321, 8765)), None, None)
                .unwrap();
            let st = jail.lstat("lnk").unwrap();
            assert_eq!((st.uid, st.gid), (4321, 8765));
            assert_eq!(jail.stat("c.txt").unwrap().uid, 1234);
            jail.fsetstat(&f, None, Some((1, 2)), None, None).unwrap();
            assert_eq!(jail.stat("c.txt").unwrap().gid, 2);
        }
        drop(f);

        // Removal.
        jail.remove("lnk").unwrap();
        assert!(jail.stat("c.txt").is_ok());
        jail.remove("c.txt").unwrap();
        is_enoent(jail.remove("c.txt"), "remove twice");
        jail.remove("d/abs").unwrap();
        jail.remove("d/rel").unwrap();
        jail.remove("d/f/through").unwrap();
        jail.rmdir("d/f").unwrap();
        jail.rmdir("d/").unwrap();
        is_enoent(jail.stat("d"), "stat d");
    }
}
