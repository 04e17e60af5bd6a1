//! The examples' calls into the C library: user database look-ups
//! (reentrant, safe from many connection threads at once), pseudo-terminals
//! opened close-on-exec, terminal attributes, signals, resource limits, and
//! the privilege drop a command's child makes between fork and exec. Every
//! `unsafe` block of the examples is here, each with its SAFETY argument.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// A passwd entry, with the home directory as a path.
#[derive(Clone, Debug)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub dir: PathBuf,
    /// As in the entry (may be empty: callers treat that as `/bin/sh`).
    pub shell: String,
}

/// A shadow entry: the hash, and the day (since 1970) the account expires.
#[derive(Clone, Debug)]
pub struct Shadow {
    pub hash: String,
    pub expire_day: Option<i64>,
}

/// Largest buffer a look-up may grow to (ERANGE doubles it up to this).
const MAX_BUF: usize = 1 << 20;

/// Runs a `get*_r` call with a buffer that doubles on ERANGE. `call`
/// returns the C function's error code and whether an entry was found.
fn with_buffer<T>(
    mut call: impl FnMut(&mut [libc::c_char]) -> (i32, Option<T>),
) -> io::Result<Option<T>> {
    let mut size = 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        match call(&mut buf) {
            (0, r) => return Ok(r),
            (libc::ERANGE, _) if size < MAX_BUF => size *= 2,
            // "Not found" comes back as one of these from some NSS modules.
            (libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM, _) => return Ok(None),
            (e, _) => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// Copies a C string field (null: empty).
///
/// # Safety
/// `p` is null or points to a NUL-terminated string.
unsafe fn field(p: *const libc::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: per this function's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl From<ssh_std::passwd::Passwd> for Passwd {
    fn from(p: ssh_std::passwd::Passwd) -> Self {
        Passwd {
            name: p.name,
            uid: p.uid,
            gid: p.gid,
            dir: PathBuf::from(p.dir),
            shell: p.shell,
        }
    }
}

/// The passwd entry of `name` (the library's reentrant `getpwnam_r`).
pub fn passwd_by_name(name: &str) -> io::Result<Option<Passwd>> {
    Ok(ssh_std::passwd::Passwd::by_name(name)?.map(Passwd::from))
}

/// The passwd entry of `uid` (the library's reentrant `getpwuid_r`).
pub fn passwd_by_uid(uid: u32) -> io::Result<Option<Passwd>> {
    Ok(ssh_std::passwd::Passwd::by_uid(uid)?.map(Passwd::from))
}

/// Seconds since the epoch of a local date and time (`mktime`, daylight
/// saving time as the zone had it then); None when it cannot convert.
pub fn mktime_local(year: u32, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> Option<i64> {
    let int = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    // SAFETY: a zeroed `tm` is a valid value; mktime only reads and
    // normalises the struct we own and returns -1 when it cannot convert.
    let t = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        tm.tm_year = int(year) - 1900;
        tm.tm_mon = int(month) - 1;
        tm.tm_mday = int(day);
        tm.tm_hour = int(hour);
        tm.tm_min = int(min);
        tm.tm_sec = int(sec);
        tm.tm_isdst = -1;
        libc::mktime(&mut tm)
    };
    (t != -1).then_some(t as i64)
}

/// The shadow entry of `name` (`getspnam_r`; needs root).
pub fn shadow_by_name(name: &str) -> io::Result<Option<Shadow>> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    with_buffer(|buf| {
        // SAFETY: all-zero is a valid spwd value.
        let mut sp: libc::spwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::spwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call.
        let r = unsafe {
            libc::getspnam_r(
                cname.as_ptr(),
                &mut sp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut res,
            )
        };
        let found = (r == 0 && !res.is_null()).then(|| Shadow {
            // SAFETY: sp_pwdp points into `buf`, alive here.
            hash: unsafe { field(sp.sp_pwdp) },
            expire_day: (sp.sp_expire > 0).then_some(sp.sp_expire as i64),
        });
        (r, found)
    })
}

/// The gid of group `name` (`getgrnam_r`).
pub fn group_id(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    with_buffer(|buf| {
        // SAFETY: all-zero is a valid group value.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call.
        let r = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut gr,
                buf.as_mut_ptr(),
                buf.len(),
                &mut res,
            )
        };
        (r, (r == 0 && !res.is_null()).then_some(gr.gr_gid))
    })
    .ok()
    .flatten()
}

/// `user`'s groups (`getgrouplist`, what `initgroups` would set), `gid` first.
pub fn group_list(user: &str, gid: u32) -> Vec<u32> {
    let Ok(cname) = CString::new(user) else {
        return vec![gid];
    };
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let mut count = n;
        // SAFETY: `groups` holds `count` entries; getgrouplist writes at
        // most that many and sets `count` to the number it needs.
        let r = unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if r >= 0 {
            groups.truncate(count.max(0) as usize);
            return groups;
        }
        if count <= n || count > 65536 {
            return vec![gid];
        }
        n = count;
    }
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// A new pseudo-terminal pair (master, slave), both close-on-exec from the
/// moment they exist: a command spawned at the same time for another
/// connection cannot inherit either.
pub fn open_pty(rows: u16, cols: u16) -> io::Result<(OwnedFd, OwnedFd)> {
    // SAFETY: posix_openpt opens a new descriptor or fails.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if m < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `m` was just opened and is owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    // SAFETY: grantpt/unlockpt on the master we own.
    if unsafe { libc::grantpt(m) } != 0 || unsafe { libc::unlockpt(m) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `name` is writable for its length.
    let r = unsafe { libc::ptsname_r(m, name.as_mut_ptr(), name.len()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // SAFETY: `name` holds the NUL-terminated path ptsname_r wrote.
    let s = unsafe {
        libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if s < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `s` was just opened and is owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(s) };
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct from a valid pointer.
    unsafe { libc::ioctl(m, libc::TIOCSWINSZ, &ws) };
    Ok((master, slave))
}

/// Who a command runs as: prepared in the server (where looking up groups
/// and allocating is fine), applied in the child between fork and exec.
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, as `initgroups` would set them.
    pub groups: Vec<u32>,
    /// Where the command starts (falls back to `/` if it cannot enter it
    /// as the user, as sshd does).
    pub home: CString,
}

/// Makes `cmd`'s child become `cred`'s user before it executes: sets the
/// supplementary groups, the gid and the uid (in that order, so no root
/// group survives), checks root cannot be regained, then enters the home
/// directory. Runs after any closure registered earlier (so a new session
/// and controlling terminal are set up as root first).
pub fn run_as(cmd: &mut Command, cred: Credentials) {
    let Credentials {
        uid,
        gid,
        groups,
        home,
    } = cred;
    // SAFETY: the closure makes only async-signal-safe system calls
    // (setgroups, setgid, setuid, chdir) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if uid != 0 && libc::setuid(0) == 0 {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            if libc::chdir(home.as_ptr()) != 0 {
                libc::chdir(c"/".as_ptr());
            }
            Ok(())
        });
    }
}

/// Blocks `sigs` in the calling thread (and the threads it starts later),
/// for [`wait_signal`]; returns the set.
pub fn block_signals(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: plain libc signal-set calls on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for one of the (blocked) signals of `set`; returns its number.
pub fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` is a valid signal set, `sig` a valid out pointer.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

/// Sends `sig` to the process group `pgid` (a child's own group).
pub fn kill_group(pgid: i32, sig: i32) {
    // SAFETY: kill has no memory preconditions; a negative pid names a
    // process group.
    unsafe { libc::kill(-pgid, sig) };
}

/// Makes `cmd`'s child a session leader with nothing blocked, and with
/// `controlling_tty` its stdin (a pty slave) its controlling terminal.
pub fn new_session_pre_exec(cmd: &mut Command, controlling_tty: bool) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // The server blocks SIGINT/SIGTERM for its sigwait thread;
            // the command starts with nothing blocked.
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if controlling_tty && libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The path of the terminal open as `fd` (`ttyname_r`).
pub fn tty_name(fd: &OwnedFd) -> io::Result<String> {
    let mut buf = [0 as libc::c_char; 128];
    // SAFETY: buf is a valid buffer of the given length.
    let r = unsafe { libc::ttyname_r(fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // SAFETY: ttyname_r wrote a NUL-terminated string.
    Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}

/// Sets the window size of the terminal open as `fd`.
pub fn set_winsize(fd: i32, cols: u32, rows: u32) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows.min(u16::MAX as u32) as u16,
        ws_col: cols.min(u16::MAX as u32) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct from a valid pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The window size (columns, rows) of the terminal open as `fd`; None if
/// it is no terminal or reports no width.
pub fn winsize(fd: i32) -> Option<(u32, u32)> {
    // SAFETY: all-zero is a valid winsize.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize struct through a valid pointer.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
        Some((ws.ws_col as u32, ws.ws_row as u32))
    } else {
        None
    }
}

/// The attributes of the terminal open as `fd`; None if it is none.
pub fn tcgetattr(fd: i32) -> Option<libc::termios> {
    // SAFETY: all-zero is a valid termios; the call fills it in.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is valid for writes.
    (unsafe { libc::tcgetattr(fd, &mut t) } == 0).then_some(t)
}

/// Sets the attributes of the terminal open as `fd` (`when`: `TCSANOW`,
/// `TCSADRAIN`, ...).
pub fn tcsetattr(fd: i32, when: i32, t: &libc::termios) -> io::Result<()> {
    // SAFETY: `t` is valid for reads.
    if unsafe { libc::tcsetattr(fd, when, t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `t` made raw (`cfmakeraw`).
pub fn make_raw(mut t: libc::termios) -> libc::termios {
    // SAFETY: `t` is a valid termios, modified in place.
    unsafe { libc::cfmakeraw(&mut t) };
    t
}

/// The soft and hard `RLIMIT_NOFILE`.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes to a valid local struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((rl.rlim_cur as u64, rl.rlim_max as u64))
}

/// Sets the soft and hard `RLIMIT_NOFILE`.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
pub fn set_nofile_limit(soft: u64, hard: u64) -> io::Result<()> {
    let rl = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads a valid local struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the process umask (`umask(2)`).
pub fn set_umask(mask: u32) {
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// Sets the calling thread's file-system uid and gid (Linux keeps them
/// per thread), so the files it makes and opens are checked as that user's.
pub fn set_fs_ids(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain system calls on the calling thread's credentials.
    let (now_gid, now_uid) = unsafe {
        libc::setfsgid(gid);
        libc::setfsuid(uid);
        // An invalid id changes nothing and returns the current one.
        (libc::setfsgid(u32::MAX), libc::setfsuid(u32::MAX))
    };
    if now_uid as u32 != uid || now_gid as u32 != gid {
        return Err(io::Error::other(format!(
            "cannot take the file-system identity of uid {uid}"
        )));
    }
    Ok(())
}
