//! File system calls on descriptors (Linux).

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use libc::{c_int, c_uint, gid_t, mode_t, off_t, uid_t};

use super::{cvt, cvt_long};

/// One `openat2(2)` call: `path` resolved below `dir` as `resolve`
/// (`RESOLVE_*` flags) says, opened with `flags | O_CLOEXEC`; `mode` is
/// used when a file is created.
pub(crate) fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: c_int,
    mode: u64,
    resolve: u64,
) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain data; all-zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = mode;
    how.resolve = resolve;
    // SAFETY: `dir` is an open descriptor, `path` is NUL-terminated and
    // `how` is valid for reads of the size given.
    let r = cvt_long(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })?;
    // SAFETY: the kernel returned a new descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(r as c_int) })
}

/// One `openat(2)` call with `flags | O_CLOEXEC` (no mode: never creates).
pub(crate) fn openat(dir: BorrowedFd<'_>, name: &CStr, flags: c_int) -> io::Result<OwnedFd> {
    // SAFETY: `dir` is an open descriptor and `name` is NUL-terminated.
    let fd = cvt(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: the kernel returned a new descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open(2)` of a path with `flags | O_CLOEXEC` (no mode: never creates).
pub(crate) fn open(path: &CStr, flags: c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated.
    let fd = cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: the kernel returned a new descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat(2)`.
pub(crate) fn fstatat(dir: BorrowedFd<'_>, name: &CStr, flags: c_int) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dir` is open, `name` NUL-terminated, `st` valid for writes
    // of a whole `stat`.
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), flags) })?;
    // SAFETY: the successful call initialised `st`.
    Ok(unsafe { st.assume_init() })
}

/// `fstatvfs(3)`.
pub(crate) fn fstatvfs(fd: BorrowedFd<'_>) -> io::Result<libc::statvfs> {
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `fd` is open and `st` valid for writes of a whole `statvfs`.
    cvt(unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: the successful call initialised `st`.
    Ok(unsafe { st.assume_init() })
}

/// `readlinkat(2)` into `buf`: the number of bytes stored (the target is
/// cut short when it equals `buf.len()`).
pub(crate) fn readlinkat(dir: BorrowedFd<'_>, name: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `dir` is open, `name` NUL-terminated, `buf` valid for writes
    // of `buf.len()` bytes.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `readlink(2)` of a path into `buf`, as [`readlinkat`].
pub(crate) fn readlink(path: &CStr, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `path` is NUL-terminated, `buf` valid for writes of
    // `buf.len()` bytes.
    let n = unsafe { libc::readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `fchmodat2(2)` (Linux 6.6; `ENOSYS` before), which unlike `fchmodat`
/// takes `AT_EMPTY_PATH` and `AT_SYMLINK_NOFOLLOW`.
pub(crate) fn fchmodat2(
    dir: BorrowedFd<'_>,
    name: &CStr,
    mode: mode_t,
    flags: c_int,
) -> io::Result<()> {
    // SAFETY: `dir` is open and `name` NUL-terminated.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            mode,
            flags,
        )
    })?;
    Ok(())
}

/// `fchmod(2)`.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: mode_t) -> io::Result<()> {
    // SAFETY: `fd` is open.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })?;
    Ok(())
}

/// `utimensat(2)` with access and modification times.
pub(crate) fn utimensat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    times: &[libc::timespec; 2],
    flags: c_int,
) -> io::Result<()> {
    // SAFETY: `dir` is open, `name` NUL-terminated, `times` two timespecs.
    cvt(unsafe { libc::utimensat(dir.as_raw_fd(), name.as_ptr(), times.as_ptr(), flags) })?;
    Ok(())
}

/// `futimens(3)` with access and modification times.
pub(crate) fn futimens(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> io::Result<()> {
    // SAFETY: `fd` is open and `times` two timespecs.
    cvt(unsafe { libc::futimens(fd.as_raw_fd(), times.as_ptr()) })?;
    Ok(())
}

/// `fchownat(2)`.
pub(crate) fn fchownat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    uid: uid_t,
    gid: gid_t,
    flags: c_int,
) -> io::Result<()> {
    // SAFETY: `dir` is open and `name` NUL-terminated.
    cvt(unsafe { libc::fchownat(dir.as_raw_fd(), name.as_ptr(), uid, gid, flags) })?;
    Ok(())
}

/// `fchown(2)`.
pub(crate) fn fchown(fd: BorrowedFd<'_>, uid: uid_t, gid: gid_t) -> io::Result<()> {
    // SAFETY: `fd` is open.
    cvt(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })?;
    Ok(())
}

/// `ftruncate(2)`.
pub(crate) fn ftruncate(fd: BorrowedFd<'_>, size: off_t) -> io::Result<()> {
    // SAFETY: `fd` is open.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })?;
    Ok(())
}

/// The file status flags (`fcntl(F_GETFL)`).
pub(crate) fn get_status_flags(fd: BorrowedFd<'_>) -> io::Result<c_int> {
    // SAFETY: `fd` is open; F_GETFL takes no argument.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })
}

/// Sets the file status flags (`fcntl(F_SETFL)`).
pub(crate) fn set_status_flags(fd: BorrowedFd<'_>, flags: c_int) -> io::Result<()> {
    // SAFETY: `fd` is open; F_SETFL takes an int.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) })?;
    Ok(())
}

/// `mkdirat(2)`.
pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: mode_t) -> io::Result<()> {
    // SAFETY: `dir` is open and `name` NUL-terminated.
    cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })?;
    Ok(())
}

/// `unlinkat(2)`.
pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: c_int) -> io::Result<()> {
    // SAFETY: `dir` is open and `name` NUL-terminated.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    Ok(())
}

/// `renameat(2)`.
pub(crate) fn renameat(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
) -> io::Result<()> {
    // SAFETY: both descriptors are open, both names NUL-terminated.
    cvt(unsafe {
        libc::renameat(
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
        )
    })?;
    Ok(())
}

/// `renameat2(2)` with `RENAME_*` flags.
pub(crate) fn renameat2(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
    flags: c_uint,
) -> io::Result<()> {
    // SAFETY: both descriptors are open, both names NUL-terminated.
    cvt_long(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            flags,
        )
    })?;
    Ok(())
}

/// `symlinkat(2)`: a symlink `name` in `dir` whose target is `target`.
pub(crate) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: `dir` is open, both strings NUL-terminated.
    cvt(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })?;
    Ok(())
}

/// `linkat(2)`.
pub(crate) fn linkat(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
    flags: c_int,
) -> io::Result<()> {
    // SAFETY: both descriptors are open, both names NUL-terminated.
    cvt(unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            flags,
        )
    })?;
    Ok(())
}
