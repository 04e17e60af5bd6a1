//! Scratch directories under `/tmp/sshlib-tests/p<PID>/`, lock files,
//! temporary directories and free ports.

use std::collections::HashSet;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use super::keys::remove_our_authorized_keys;
use super::util::pid_alive;

pub(crate) const SCRATCH_ROOT: &str = "/tmp/sshlib-tests";

pub(crate) fn mkdir_mode(p: &Path, mode: u32) {
    match std::fs::create_dir(p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("cannot create {}: {e}", p.display()),
    }
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

extern "C" fn remove_scratch_at_exit() {
    // Never unwind out of an extern "C" function.
    let _ = std::panic::catch_unwind(|| {
        let dir = Path::new(SCRATCH_ROOT).join(format!("p{}", std::process::id()));
        let _ = std::fs::remove_dir_all(dir);
        let _ = remove_our_authorized_keys();
    });
}

/// This process's scratch directory, `/tmp/sshlib-tests/p<PID>` (mode 755 so
/// that the `sshtest` user can read test files in it). Created on first use,
/// with directories of dead test processes removed; removed at exit.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(SCRATCH_ROOT);
        mkdir_mode(root, 0o755);
        with_lock("scratch", || {
            if let Ok(rd) = std::fs::read_dir(root) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if let Some(pid) = name.strip_prefix('p').and_then(|p| p.parse::<u32>().ok()) {
                        if !pid_alive(pid) {
                            let _ = std::fs::remove_dir_all(e.path());
                        }
                    }
                }
            }
        });
        let dir = root.join(format!("p{}", std::process::id()));
        mkdir_mode(&dir, 0o755);
        // SAFETY: registering a plain extern "C" function with no captured state.
        unsafe { libc::atexit(remove_scratch_at_exit) };
        dir
    })
}

/// Runs `f` holding an exclusive `flock` on `/tmp/sshlib-tests/NAME.lock`,
/// shared by every test process on the machine.
pub fn with_lock<T>(name: &str, f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    mkdir_mode(Path::new(SCRATCH_ROOT), 0o755);
    let path = Path::new(SCRATCH_ROOT).join(format!("{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open lock {}: {e}", path.display()));
    // SAFETY: flock on a file descriptor we own; released when `file` closes.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(
        rc,
        0,
        "flock {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    let r = f();
    drop(file);
    r
}

pub(crate) static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under [`scratch_dir`], removed on drop.
pub struct TempDir {
    pub(crate) path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = scratch_dir().join(format!("{prefix}-{n}"));
        let _ = std::fs::remove_dir_all(&path);
        mkdir_mode(&path, 0o755);
        TempDir { path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that this process
/// has not handed out before. (Daemons retry on another port if it was taken
/// in between.)
///
/// It is chosen outside the kernel's ephemeral range when there is room:
/// outgoing connections take their source ports from that range, and one
/// could take a port between its choice here and its bind by a daemon or a
/// forward.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let given = GIVEN.get_or_init(Default::default);
    let (lo, hi) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut w = t.split_whitespace().map(|x| x.parse::<u32>().ok());
            Some((w.next()??, w.next()??))
        })
        .unwrap_or((32768, 60999));
    // The larger stretch outside [lo, hi], above 10000.
    let below = (10000u32, lo.saturating_sub(1));
    let above = (hi.saturating_add(1), 65535u32);
    let span = |r: (u32, u32)| r.1.saturating_sub(r.0);
    let range = if span(below) >= span(above) {
        below
    } else {
        above
    };
    if span(range) >= 1000 {
        let n = u64::from(span(range) + 1);
        let seed = u64::from(std::process::id()).wrapping_mul(7919);
        for _ in 0..2000 {
            let i = NEXT.fetch_add(1, Ordering::Relaxed);
            let port = (u64::from(range.0) + (seed + i * 101) % n) as u16;
            if given.lock().unwrap().contains(&port) {
                continue;
            }
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                given.lock().unwrap().insert(port);
                return port;
            }
        }
    }
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        if given.lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("no free TCP port found on 127.0.0.1");
}
