//! Interoperability test harness: real peers (OpenSSH `sshd`, Dropbear, a
//! paramiko server and an AsyncSSH server) started on 127.0.0.1 by the test
//! itself, a real local user `sshtest`, keys made by `ssh-keygen`, and a
//! runner for the `client` example with a hard timeout.
//!
//! Rules this harness keeps:
//! - A missing peer is a failure (a panic telling to run
//!   `scripts/install-peers.sh`), never a skip.
//! - Every daemon runs in its own process group and is killed by its id when
//!   its handle is dropped, also when the test panics (Drop runs on unwind);
//!   it also gets `PR_SET_PDEATHSIG`, so it dies with the test process if that
//!   is killed. On a panic the daemon's log is printed.
//! - Everything lives under `/tmp/sshlib-tests/p<PID>/`, removed at exit;
//!   directories of dead test processes are removed on the next run.
//! - Several test binaries may run at once: the user setup and the shared
//!   `~sshtest/.ssh/authorized_keys` are changed under a lock file.
//!
//! `SSHLIB_TEST_CLIENT=openssh` makes [`run_client`] run OpenSSH's `ssh`
//! (with `-F /dev/null` and options that keep it from reading or writing
//! anything outside the test) instead of our `client` example: the tests then
//! check themselves against the reference implementation.

#![allow(dead_code)]

pub mod cat_server;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const USER: &str = "sshtest";
pub const PASSWORD: &str = "sshtest-pw";
/// Passphrase of [`Keys::ed25519_encrypted`].
pub const KEY_PASSPHRASE: &str = "sshlib-key-passphrase";

const INSTALL_HINT: &str = "run scripts/install-peers.sh (as root) to install the interop peers";

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in d.iter() {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `len` pseudo-random bytes from a fixed seed (xorshift64*), fast enough for
/// 64 MiB and the same on every run.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// About `len` bytes of highly compressible text (numbered lines).
pub fn compressible_text(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 128);
    let mut i = 0u64;
    while v.len() < len {
        let _ = writeln!(
            StringWriter(&mut v),
            "line {i:08} the quick brown fox jumps over the lazy dog; sshlib compression test"
        );
        i += 1;
    }
    v.truncate(len);
    v
}

struct StringWriter<'a>(&'a mut Vec<u8>);
impl std::fmt::Write for StringWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Shows bytes for an assertion message: lossy UTF-8, cut after `max` bytes.
pub fn show(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        format!(
            "{:?}... ({} bytes)",
            String::from_utf8_lossy(&bytes[..max]),
            bytes.len()
        )
    }
}

/// Finds a peer program by absolute path or in `PATH` (plus the sbin
/// directories); panics telling how to install the peers when it is missing.
pub fn require_peer(name: &str) -> PathBuf {
    if name.starts_with('/') {
        let p = PathBuf::from(name);
        if is_executable(&p) {
            return p;
        }
        panic!("peer program {name} not found: {INSTALL_HINT}");
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for dir in path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
    {
        if dir.is_empty() {
            continue;
        }
        let p = Path::new(dir).join(name);
        if is_executable(&p) {
            return p;
        }
    }
    panic!("peer program `{name}` not found in PATH: {INSTALL_HINT}");
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs a setup command to completion; panics with its output if it fails.
fn run_checked(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}; {INSTALL_HINT}"));
    if !out.status.success() {
        panic!(
            "{what}: {cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            show(&out.stdout, 2000),
            show(&out.stderr, 2000)
        );
    }
    out
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

// ---------------------------------------------------------------------------
// Scratch directories and locks
// ---------------------------------------------------------------------------

const SCRATCH_ROOT: &str = "/tmp/sshlib-tests";

fn mkdir_mode(p: &Path, mode: u32) {
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

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under [`scratch_dir`], removed on drop.
pub struct TempDir {
    path: PathBuf,
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
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(Default::default);
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        if given.lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("no free TCP port found on 127.0.0.1");
}

// ---------------------------------------------------------------------------
// The test user
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct TestUser {
    pub name: String,
    pub password: String,
    pub home: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

fn passwd_entry(name: &str) -> Option<(u32, u32, PathBuf, String)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 7 && f[0] == name {
            Some((
                f[2].parse().ok()?,
                f[3].parse().ok()?,
                PathBuf::from(f[5]),
                f[6].to_string(),
            ))
        } else {
            None
        }
    })
}

/// Makes sure the local user `sshtest` exists with shell `/bin/sh`, password
/// `sshtest-pw` and a `~/.ssh` directory. Idempotent, and safe when several
/// test processes run it at once (a lock file, "already exists" tolerated).
pub fn ensure_user() -> TestUser {
    static USER_INFO: OnceLock<TestUser> = OnceLock::new();
    USER_INFO
        .get_or_init(|| {
            assert!(
                is_root(),
                "the interop tests need root: they create the local user {USER} and run sshd/dropbear (CI runs as root)"
            );
            with_lock("user", || {
                // Other processes (not all of them using our lock) may hold
                // the passwd/shadow locks for a moment: retry a few times.
                if passwd_entry(USER).is_none() {
                    retry("useradd", || {
                        let out = Command::new(require_peer("useradd"))
                            .args(["-m", "-s", "/bin/sh", USER])
                            .stdin(Stdio::null())
                            .output()
                            .unwrap_or_else(|e| panic!("cannot run useradd: {e}"));
                        // Exit code 9: the user already exists (another process won the race).
                        if out.status.success() || out.status.code() == Some(9) || passwd_entry(USER).is_some() {
                            Ok(())
                        } else {
                            Err(show(&out.stderr, 2000))
                        }
                    });
                }
                let (_, _, _, shell) = passwd_entry(USER).expect("sshtest missing from /etc/passwd after useradd");
                if shell != "/bin/sh" {
                    run_checked(Command::new(require_peer("usermod")).args(["-s", "/bin/sh", USER]), "usermod");
                }
                chpasswd(&[], USER, PASSWORD);

                let (uid, gid, home, _) = passwd_entry(USER).unwrap();
                if !home.exists() {
                    std::fs::create_dir_all(&home).unwrap();
                    std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
                    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
                }
                ensure_ssh_dir(&home, uid, gid);
                TestUser { name: USER.into(), password: PASSWORD.into(), home, uid, gid }
            })
        })
        .clone()
}

/// Sets `user`'s password with `chpasswd ARGS` (retried: other processes
/// may hold the passwd/shadow locks for a moment).
fn chpasswd(args: &[&str], user: &str, password: &str) {
    retry("chpasswd", || {
        let mut child = Command::new(require_peer("chpasswd"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run chpasswd");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{user}:{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(show(&out.stderr, 2000))
        }
    });
}

/// `HOME/.ssh` exists, owned by uid:gid, mode 0700.
fn ensure_ssh_dir(home: &Path, uid: u32, gid: u32) {
    let ssh_dir = home.join(".ssh");
    if !ssh_dir.exists() {
        std::fs::create_dir(&ssh_dir).unwrap();
    }
    std::os::unix::fs::chown(&ssh_dir, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// Makes sure the local user `name` exists with home `/home/NAME` and
/// `shell`, and sets its password: `Some(pw)` hashed as SHA-512 crypt
/// (`chpasswd -c SHA512`), `None` locked (`usermod
/// -L`, a `!` hash). Idempotent and safe when several test processes run
/// it at once (the lock [`ensure_user`] takes). Needs root.
pub fn ensure_local_user(name: &str, shell: &str, password: Option<&str>) -> TestUser {
    assert!(is_root(), "creating the local user {name} needs root");
    with_lock("user", || {
        if passwd_entry(name).is_none() {
            retry("useradd", || {
                let out = Command::new(require_peer("useradd"))
                    .args(["-m", "-d", &format!("/home/{name}"), "-s", shell, name])
                    .stdin(Stdio::null())
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run useradd: {e}"));
                if out.status.success()
                    || out.status.code() == Some(9)
                    || passwd_entry(name).is_some()
                {
                    Ok(())
                } else {
                    Err(show(&out.stderr, 2000))
                }
            });
        }
        let (_, _, _, old_shell) =
            passwd_entry(name).expect("user missing from /etc/passwd after useradd");
        if old_shell != shell {
            run_checked(
                Command::new(require_peer("usermod")).args(["-s", shell, name]),
                "usermod",
            );
        }
        let pw = password.unwrap_or("locked-account");
        chpasswd(&["-c", "SHA512"], name, pw);
        if password.is_none() {
            run_checked(
                Command::new(require_peer("usermod")).args(["-L", name]),
                "usermod -L",
            );
        }
        let (uid, gid, home, _) = passwd_entry(name).unwrap();
        if !home.exists() {
            std::fs::create_dir_all(&home).unwrap();
        }
        std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_ssh_dir(&home, uid, gid);
        TestUser {
            name: name.into(),
            password: pw.into(),
            home,
            uid,
            gid,
        }
    })
}

/// Runs `f` up to 10 times, 200 ms apart, until it succeeds.
fn retry(what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let mut last = String::new();
    for _ in 0..10 {
        match f() {
            Ok(()) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} failed 10 times; last error: {last}");
}

// ---------------------------------------------------------------------------
// Client keys
// ---------------------------------------------------------------------------

/// Client keys made by `ssh-keygen` in a fresh directory, with an
/// `authorized_keys` file listing all of them, also installed (under a lock)
/// into `~sshtest/.ssh/authorized_keys` for peers that only read that file.
pub struct Keys {
    pub dir: PathBuf,
    pub ed25519: PathBuf,
    pub ecdsa: PathBuf,
    pub rsa: PathBuf,
    /// ed25519, encrypted with [`KEY_PASSPHRASE`].
    pub ed25519_encrypted: PathBuf,
    /// `authorized_keys` file with every public key above.
    pub authorized_keys: PathBuf,
    pub authorized_keys_text: String,
}

fn key_comment_tag() -> String {
    format!("sshlib-test-pid{}-", std::process::id())
}

fn ssh_keygen(path: &Path, args: &[&str], passphrase: &str, comment: &str) {
    run_checked(
        Command::new(require_peer("ssh-keygen"))
            .args(["-q"])
            .args(args)
            .args(["-N", passphrase, "-C", comment, "-f"])
            .arg(path),
        "ssh-keygen",
    );
}

fn public_line(pub_path: &Path) -> String {
    std::fs::read_to_string(pub_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", pub_path.display()))
        .trim()
        .to_string()
}

/// The process-wide client keys (generated once, installed for `sshtest`).
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let user = ensure_user();
        let dir = scratch_dir().join("client-keys");
        mkdir_mode(&dir, 0o755);
        let tag = key_comment_tag();
        let mk = |name: &str, args: &[&str], pass: &str| {
            let p = dir.join(name);
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_file(p.with_extension("pub"));
            ssh_keygen(&p, args, pass, &format!("{tag}{name}"));
            p
        };
        let ed25519 = mk("id_ed25519", &["-t", "ed25519"], "");
        let ecdsa = mk("id_ecdsa", &["-t", "ecdsa", "-b", "256"], "");
        let rsa = mk("id_rsa", &["-t", "rsa", "-b", "3072"], "");
        let ed25519_encrypted = mk("id_ed25519_enc", &["-t", "ed25519"], KEY_PASSPHRASE);
        let mut text = String::new();
        for k in [&ed25519, &ecdsa, &rsa, &ed25519_encrypted] {
            text.push_str(&public_line(&PathBuf::from(format!("{}.pub", k.display()))));
            text.push('\n');
        }
        let authorized_keys = dir.join("authorized_keys");
        std::fs::write(&authorized_keys, &text).unwrap();
        std::fs::set_permissions(&authorized_keys, std::fs::Permissions::from_mode(0o644)).unwrap();
        install_authorized_keys(&user, &text);
        Keys {
            dir,
            ed25519,
            ecdsa,
            rsa,
            ed25519_encrypted,
            authorized_keys,
            authorized_keys_text: text,
        }
    })
}

/// Adds `lines` to `~sshtest/.ssh/authorized_keys` (owned by sshtest, mode
/// 600), dropping lines left by test processes that are gone.
fn install_authorized_keys(user: &TestUser, lines: &str) {
    with_lock("authorized_keys", || {
        let path = user.home.join(".ssh/authorized_keys");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let mut out = String::new();
        for l in old.lines() {
            if let Some(pid) = test_key_pid(l) {
                if pid == std::process::id() || !pid_alive(pid) {
                    continue;
                }
            }
            out.push_str(l);
            out.push('\n');
        }
        out.push_str(lines);
        write_authorized_keys(user, &path, &out);
    });
}

fn write_authorized_keys(user: &TestUser, path: &Path, text: &str) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::os::unix::fs::chown(&tmp, Some(user.uid), Some(user.gid)).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn test_key_pid(line: &str) -> Option<u32> {
    let i = line.find("sshlib-test-pid")?;
    let rest = &line[i + "sshlib-test-pid".len()..];
    rest.split('-').next()?.parse().ok()
}

fn remove_our_authorized_keys() -> Option<()> {
    let (uid, gid, home, _) = passwd_entry(USER)?;
    let path = home.join(".ssh/authorized_keys");
    let old = std::fs::read_to_string(&path).ok()?;
    if !old.contains(&key_comment_tag()) {
        return Some(());
    }
    with_lock("authorized_keys", || {
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let kept: String = old
            .lines()
            .filter(|l| test_key_pid(l) != Some(std::process::id()))
            .map(|l| format!("{l}\n"))
            .collect();
        let user = TestUser {
            name: USER.into(),
            password: PASSWORD.into(),
            home: home.clone(),
            uid,
            gid,
        };
        write_authorized_keys(&user, &path, &kept);
    });
    Some(())
}

/// A script for `SSH_ASKPASS` that prints `secret` (whatever the prompt).
pub fn askpass_script(secret: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let p = scratch_dir().join(format!("askpass-{n}"));
    let quoted = secret.replace('\'', "'\\''");
    std::fs::write(&p, format!("#!/bin/sh\nprintf '%s\\n' '{quoted}'\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

// ---------------------------------------------------------------------------
// Daemons
// ---------------------------------------------------------------------------

/// A peer process with its output collected in memory; killed (with its
/// whole process group) on drop.
pub struct Daemon {
    name: String,
    child: Child,
    log: Arc<Mutex<Vec<u8>>>,
    _readers: Vec<JoinHandle<()>>,
}

impl Daemon {
    fn spawn(name: &str, mut cmd: Command) -> Daemon {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it only sets a flag of the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}; {INSTALL_HINT}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            readers.push(std::thread::spawn(move || {
                let mut r = r;
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }));
        }
        Daemon {
            name: name.into(),
            child,
            log,
            _readers: readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the daemon wrote on stdout and stderr so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// Length of the log now, to look only at what comes after
    /// ([`Daemon::log_since`]).
    pub fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    pub fn log_since(&self, mark: usize) -> String {
        let l = self.log.lock().unwrap();
        String::from_utf8_lossy(&l[mark.min(l.len())..]).into_owned()
    }

    /// Waits up to `timeout` until the log after `mark` contains every one of
    /// `needles`; returns that part of the log either way.
    pub fn wait_log(&self, mark: usize, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.log_since(mark);
            if needles.iter().all(|n| s.contains(n)) || Instant::now() >= deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until `port` answers with an SSH version line. Returns false if
    /// the daemon exited first (e.g. port taken); panics on timeout.
    fn wait_ready(&mut self, port: u16, ready_line: Option<&str>, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.exited().is_some() {
                // Let the readers collect the last words.
                std::thread::sleep(Duration::from_millis(50));
                return false;
            }
            let line_ok = ready_line.is_none_or(|l| self.log().lines().any(|x| x.trim() == l));
            if line_ok && probe_ssh(port) {
                // If the port was taken by another SSH server in between,
                // ours fails to bind and exits: make sure it is still up.
                std::thread::sleep(Duration::from_millis(50));
                return self.exited().is_none();
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not get ready on port {port} within {timeout:?}; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        let pid = self.child.id() as i32;
        if self.exited().is_none() {
            // SAFETY: signalling the process group we created for this daemon.
            unsafe { libc::kill(-pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(2);
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Whatever is left of the group (connection handlers, commands).
        // SAFETY: as above.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let tail = {
                let l = self.log.lock().unwrap();
                String::from_utf8_lossy(&l[l.len().saturating_sub(16 * 1024)..]).into_owned()
            };
            eprintln!(
                "----- {} log (pid {}) -----\n{tail}\n----- end of {} log -----",
                self.name,
                self.pid(),
                self.name
            );
        }
    }
}

/// Connects to 127.0.0.1:port and reads the SSH version line.
fn probe_ssh(port: u16) -> bool {
    let Ok(s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // Servers may send other lines before the version line.
    for _ in 0..20 {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line.starts_with("SSH-") => return true,
            Ok(_) => {}
        }
    }
    false
}

/// Where a test client connects: port and a known_hosts file for it.
#[derive(Clone, Debug)]
pub struct Target {
    pub port: u16,
    pub known_hosts: PathBuf,
}

impl Target {
    /// `-p PORT -o UserKnownHostsFile=KH -o StrictHostKeyChecking=yes`.
    pub fn base_args(&self) -> Vec<String> {
        vec![
            "-p".into(),
            self.port.to_string(),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
        ]
    }
}

fn write_known_hosts(path: &Path, port: u16, public_lines: &[String]) {
    let mut s = String::new();
    for l in public_lines {
        let mut f = l.split_whitespace();
        let (t, b) = (f.next().unwrap(), f.next().unwrap());
        let _ = writeln!(s, "[127.0.0.1]:{port} {t} {b}");
    }
    std::fs::write(path, s).unwrap();
}

// ----- OpenSSH sshd ---------------------------------------------------------

/// sshd host keys made once per test process by ssh-keygen: ed25519, ecdsa
/// P-256/P-384/P-521 and rsa (3072).
fn sshd_host_keys() -> &'static Vec<PathBuf> {
    static HK: OnceLock<Vec<PathBuf>> = OnceLock::new();
    HK.get_or_init(|| {
        let dir = scratch_dir().join("sshd-host-keys");
        mkdir_mode(&dir, 0o700);
        let mut v = Vec::new();
        for (name, args) in [
            ("ed25519", &["-t", "ed25519"][..]),
            ("ecdsa256", &["-t", "ecdsa", "-b", "256"]),
            ("ecdsa384", &["-t", "ecdsa", "-b", "384"]),
            ("ecdsa521", &["-t", "ecdsa", "-b", "521"]),
            ("rsa", &["-t", "rsa", "-b", "3072"]),
        ] {
            let p = dir.join(format!("ssh_host_{name}_key"));
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_file(p.with_extension("pub"));
            ssh_keygen(&p, args, "", &format!("sshd-host-{name}"));
            v.push(p);
        }
        v
    })
}

/// `ssh -Q WHAT` (kex, cipher, mac, key, HostKeyAlgorithms, ...).
pub fn openssh_query(what: &str) -> Vec<String> {
    let out = run_checked(
        Command::new(require_peer("ssh")).args(["-Q", what]),
        "ssh -Q",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Signature algorithm names without certificates, security keys or DSA.
fn plain_sig_algs() -> Vec<String> {
    openssh_query("HostKeyAlgorithms")
        .into_iter()
        .filter(|a| {
            !a.contains("cert")
                && !a.starts_with("sk-")
                && !a.contains("webauthn")
                && !a.contains("dss")
        })
        .collect()
}

/// The lines that make sshd offer everything OpenSSH supports.
pub fn sshd_all_algorithms_config() -> Vec<String> {
    vec![
        format!("KexAlgorithms {}", openssh_query("kex").join(",")),
        format!("Ciphers {}", openssh_query("cipher").join(",")),
        format!("MACs {}", openssh_query("mac").join(",")),
        format!("HostKeyAlgorithms {}", plain_sig_algs().join(",")),
        format!("PubkeyAcceptedAlgorithms {}", plain_sig_algs().join(",")),
    ]
}

/// Options for [`Sshd::start_with`].
#[derive(Clone, Debug, Default)]
pub struct SshdOptions {
    /// Extra sshd_config lines. They come before the harness's defaults, and
    /// since sshd keeps the first value of a keyword, they override them.
    pub extra: Vec<String>,
    /// Offer every kex, host key, cipher and MAC OpenSSH supports.
    pub all_algorithms: bool,
    /// `UsePAM yes` and `KbdInteractiveAuthentication yes`.
    pub pam: bool,
    /// `LogLevel` (default VERBOSE; DEBUG1 logs each kex and rekey).
    pub log_level: Option<String>,
    /// The command of `Subsystem sftp` (default `internal-sftp`), e.g.
    /// `/usr/lib/openssh/sftp-server` or `/path/sftp-server -r ROOT`
    /// (sshd splits it at spaces; it runs as the logged-in user).
    pub sftp_subsystem: Option<String>,
}

/// OpenSSH `sshd -D -e` on 127.0.0.1 and a free port, with its own config,
/// host keys and known_hosts file; killed on drop.
pub struct Sshd {
    // Fields drop in order: the daemon is killed before its directory goes.
    pub daemon: Daemon,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub config: PathBuf,
    pub dir: TempDir,
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with(SshdOptions::default())
    }

    pub fn start_with(opts: SshdOptions) -> Sshd {
        let sshd = require_peer("/usr/sbin/sshd");
        let _ = ensure_user();
        let keys = keys();
        let host_keys = sshd_host_keys();
        if !Path::new("/run/sshd").is_dir() {
            let _ = std::fs::create_dir_all("/run/sshd");
            let _ = std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755));
        }
        let dir = TempDir::new("sshd");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cfg = String::new();
            for l in &opts.extra {
                let _ = writeln!(cfg, "{l}");
            }
            if opts.all_algorithms {
                for l in sshd_all_algorithms_config() {
                    let _ = writeln!(cfg, "{l}");
                }
            }
            let _ = writeln!(cfg, "ListenAddress 127.0.0.1:{port}");
            for k in host_keys {
                let _ = writeln!(cfg, "HostKey {}", k.display());
            }
            let _ = writeln!(
                cfg,
                "LogLevel {}",
                opts.log_level.as_deref().unwrap_or("VERBOSE")
            );
            let _ = writeln!(cfg, "UsePAM {}", if opts.pam { "yes" } else { "no" });
            let _ = writeln!(
                cfg,
                "KbdInteractiveAuthentication {}",
                if opts.pam { "yes" } else { "no" }
            );
            for l in [
                "PidFile none",
                "StrictModes no",
                "PasswordAuthentication yes",
                "PubkeyAuthentication yes",
                "PermitEmptyPasswords no",
                "PrintMotd no",
                "PrintLastLog no",
                "UseDNS no",
                "MaxStartups 100:30:200",
                "X11Forwarding no",
            ] {
                let _ = writeln!(cfg, "{l}");
            }
            let _ = writeln!(
                cfg,
                "Subsystem sftp {}",
                opts.sftp_subsystem.as_deref().unwrap_or("internal-sftp")
            );
            let _ = writeln!(
                cfg,
                "AuthorizedKeysFile {} .ssh/authorized_keys",
                keys.authorized_keys.display()
            );
            let config = dir.join("sshd_config");
            std::fs::write(&config, &cfg).unwrap();

            // Check the config first for a clear message on a bad option.
            let t = Command::new(&sshd)
                .arg("-t")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            if !t.status.success() {
                panic!(
                    "sshd -t rejects the test config:\n{cfg}\n{}",
                    String::from_utf8_lossy(&t.stderr)
                );
            }
            let mut cmd = Command::new(&sshd);
            cmd.args(["-D", "-e", "-f"])
                .arg(&config)
                .args(["-p", &port.to_string()]);
            let mut daemon = Daemon::spawn("sshd", cmd);
            if daemon.wait_ready(port, None, Duration::from_secs(15)) {
                let known_hosts = dir.join("known_hosts");
                let pubs: Vec<String> = host_keys
                    .iter()
                    .map(|k| public_line(&PathBuf::from(format!("{}.pub", k.display()))))
                    .collect();
                write_known_hosts(&known_hosts, port, &pubs);
                return Sshd {
                    port,
                    known_hosts,
                    config,
                    dir,
                    daemon,
                };
            }
            last_log = daemon.log();
            if !last_log.contains("Address already in use") {
                break;
            }
        }
        panic!("sshd did not start; its log:\n{last_log}");
    }

    pub fn target(&self) -> Target {
        Target {
            port: self.port,
            known_hosts: self.known_hosts.clone(),
        }
    }
}

// ----- Dropbear -------------------------------------------------------------

fn dropbear_host_keys() -> &'static Vec<(PathBuf, String)> {
    static HK: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    HK.get_or_init(|| {
        let keygen = require_peer("dropbearkey");
        let dir = scratch_dir().join("dropbear-host-keys");
        mkdir_mode(&dir, 0o700);
        let mut v = Vec::new();
        for (t, bits) in [
            ("ed25519", None),
            ("ecdsa", Some("256")),
            ("rsa", Some("2048")),
        ] {
            let p = dir.join(format!("dropbear_{t}_host_key"));
            let _ = std::fs::remove_file(&p);
            let mut c = Command::new(&keygen);
            c.args(["-t", t, "-f"]).arg(&p);
            if let Some(b) = bits {
                c.args(["-s", b]);
            }
            run_checked(&mut c, "dropbearkey");
            let out = run_checked(
                Command::new(&keygen).arg("-y").arg("-f").arg(&p),
                "dropbearkey -y",
            );
            let line = String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|l| l.starts_with("ssh-") || l.starts_with("ecdsa-"))
                .unwrap_or_else(|| panic!("no public key line in dropbearkey -y output"))
                .to_string();
            v.push((p, line));
        }
        v
    })
}

/// Dropbear (`dropbear -F -E -p 127.0.0.1:PORT -r KEY...`), killed on drop.
/// It reads `~sshtest/.ssh/authorized_keys` (installed by [`keys`]).
pub struct Dropbear {
    // Fields drop in order: the daemon is killed before its directory goes.
    pub daemon: Daemon,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub dir: TempDir,
}

impl Dropbear {
    pub fn start() -> Dropbear {
        Dropbear::start_with(&[])
    }

    /// `extra`: more dropbear flags (e.g. `-s` to refuse passwords).
    pub fn start_with(extra: &[&str]) -> Dropbear {
        let dropbear = require_peer("dropbear");
        let _ = ensure_user();
        let _ = keys();
        let hk = dropbear_host_keys();
        let dir = TempDir::new("dropbear");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&dropbear);
            cmd.args(["-F", "-E", "-p", &format!("127.0.0.1:{port}"), "-P"])
                .arg(dir.join("dropbear.pid"));
            for (k, _) in hk {
                cmd.arg("-r").arg(k);
            }
            cmd.args(extra);
            let mut daemon = Daemon::spawn("dropbear", cmd);
            if daemon.wait_ready(port, None, Duration::from_secs(15)) {
                let known_hosts = dir.join("known_hosts");
                let pubs: Vec<String> = hk.iter().map(|(_, l)| l.clone()).collect();
                write_known_hosts(&known_hosts, port, &pubs);
                return Dropbear {
                    port,
                    known_hosts,
                    dir,
                    daemon,
                };
            }
            last_log = daemon.log();
            if !last_log.contains("in use") {
                break;
            }
        }
        panic!("dropbear did not start; its log:\n{last_log}");
    }

    pub fn target(&self) -> Target {
        Target {
            port: self.port,
            known_hosts: self.known_hosts.clone(),
        }
    }
}

// ----- paramiko / AsyncSSH --------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PyKind {
    Paramiko,
    AsyncSsh,
}

fn py_host_key() -> &'static PathBuf {
    static K: OnceLock<PathBuf> = OnceLock::new();
    K.get_or_init(|| {
        let dir = scratch_dir().join("py-host-key");
        mkdir_mode(&dir, 0o700);
        let p = dir.join("ssh_host_ed25519_key");
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(p.with_extension("pub"));
        ssh_keygen(&p, &["-t", "ed25519"], "", "py-host");
        p
    })
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `tests/peers/paramiko_server.py` or `tests/peers/asyncssh_server.py` on
/// 127.0.0.1:PORT with an ssh-keygen ed25519 host key; killed on drop.
pub struct PyServer {
    // Fields drop in order: the daemon is killed before its directory goes.
    pub daemon: Daemon,
    pub kind: PyKind,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub dir: TempDir,
}

impl PyServer {
    pub fn paramiko() -> PyServer {
        PyServer::start(PyKind::Paramiko)
    }

    pub fn asyncssh() -> PyServer {
        PyServer::start(PyKind::AsyncSsh)
    }

    pub fn start(kind: PyKind) -> PyServer {
        PyServer::start_with(kind, &[])
    }

    /// `extra`: more arguments for the server script (e.g. paramiko's
    /// `--pubkey-algs rsa-sha2-256`).
    pub fn start_with(kind: PyKind, extra: &[&str]) -> PyServer {
        let py = require_peer(&python());
        let (module, script) = match kind {
            PyKind::Paramiko => ("paramiko", "paramiko_server.py"),
            PyKind::AsyncSsh => ("asyncssh", "asyncssh_server.py"),
        };
        let check = Command::new(&py)
            .args(["-c", &format!("import {module}")])
            .stdin(Stdio::null())
            .output();
        match check {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "python module `{module}` is not importable by {}: {INSTALL_HINT}",
                py.display()
            ),
        }
        let keys = keys();
        let host_key = py_host_key();
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/peers")
            .join(script);
        assert!(script.exists(), "{} is missing", script.display());
        let dir = TempDir::new(module);
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&py);
            cmd.arg("-u")
                .arg(&script)
                .arg(port.to_string())
                .arg(host_key)
                .arg(&keys.authorized_keys);
            cmd.args(["--user", USER, "--password", PASSWORD])
                .args(extra);
            let mut daemon = Daemon::spawn(module, cmd);
            if daemon.wait_ready(port, Some("READY"), Duration::from_secs(30)) {
                let known_hosts = dir.join("known_hosts");
                let pubs = vec![public_line(&host_key.with_extension("pub"))];
                write_known_hosts(&known_hosts, port, &pubs);
                return PyServer {
                    kind,
                    port,
                    known_hosts,
                    dir,
                    daemon,
                };
            }
            last_log = daemon.log();
            if !last_log.contains("in use") {
                break;
            }
        }
        panic!("{module} server did not start; its log:\n{last_log}");
    }

    pub fn target(&self) -> Target {
        Target {
            port: self.port,
            known_hosts: self.known_hosts.clone(),
        }
    }
}

// ---------------------------------------------------------------------------
// The client under test
// ---------------------------------------------------------------------------

/// `target/<profile>/examples/<name>`, found from the test binary's location
/// (`target/<profile>/deps/`).
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary is not in target/<profile>/deps");
    let p = profile_dir.join("examples").join(name);
    if !is_executable(&p) {
        let profile = profile_dir
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let flag = match profile.as_str() {
            "debug" => "--profile test".to_string(),
            "release" => "--release".to_string(),
            p => format!("--profile {p}"),
        };
        panic!(
            "example `{name}` not found at {}: build it first with `cargo build {flag} --example {name}` \
             (a plain `cargo test` builds the examples; `cargo test --test NAME` does not)",
            p.display()
        );
    }
    p
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// Our `client` example (the default), or the program named by
    /// `SSHLIB_TEST_CLIENT=/absolute/path` (e.g. a release build), held to
    /// the same rules.
    Ours,
    /// OpenSSH's `ssh` (`SSHLIB_TEST_CLIENT=openssh`), to check the tests.
    OpenSsh,
}

pub fn client_kind() -> ClientKind {
    match std::env::var("SSHLIB_TEST_CLIENT").as_deref() {
        Ok("openssh") | Ok("ssh") => ClientKind::OpenSsh,
        Ok("") | Ok("ours") | Ok("client") | Err(_) => ClientKind::Ours,
        Ok(p) if p.starts_with('/') => ClientKind::Ours,
        Ok(other) => {
            panic!("SSHLIB_TEST_CLIENT={other:?}: expected `openssh`, `ours` or an absolute path")
        }
    }
}

/// `SSHLIB_TEST_VERBOSE` set: log every program a test runs.
pub fn verbose() -> bool {
    std::env::var_os("SSHLIB_TEST_VERBOSE").is_some()
}

/// What a client program gets on stdin.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    /// /dev/null.
    Null,
    /// These bytes, then EOF.
    Bytes(&'a [u8]),
    /// These bytes, with the pipe held open until the program exits (for
    /// interactive sessions that must not see EOF early).
    Held(&'a [u8]),
}

/// `prog` in a cleaned environment: no agent or askpass variables (nor
/// `remove_also`), HOME `home`, then `env` added (which may set HOME); in a
/// new session (no controlling terminal); stdout and stderr piped.
fn clean_command<V: AsRef<std::ffi::OsStr>>(
    prog: &Path,
    home: &Path,
    remove_also: &[&str],
    env: &[(&str, V)],
) -> Command {
    let mut cmd = Command::new(prog);
    for v in [
        "SSH_AUTH_SOCK",
        "SSH_AGENT_PID",
        "SSH_ASKPASS",
        "SSH_ASKPASS_REQUIRE",
        "DISPLAY",
        "SSH_CONNECTION",
    ]
    .iter()
    .chain(remove_also)
    {
        cmd.env_remove(v);
    }
    cmd.env("HOME", home);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd
}

/// Runs `prog args` with `input`, `env` added to a cleaned environment (no
/// agent, no askpass unless given, HOME an empty temporary directory unless
/// given) in a new session (no controlling terminal). Kills it (with its
/// process group) and fails the test if it runs longer than `timeout`.
pub fn run_prog(
    prog: &Path,
    args: &[String],
    input: Input<'_>,
    env: &[(&str, String)],
    timeout: Duration,
) -> Output {
    let home = TempDir::new("client-home");
    let mut cmd = clean_command(prog, home.path(), &["DROPBEAR_PASSWORD"], env);
    cmd.args(args);
    let (data, hold): (Option<&[u8]>, bool) = match input {
        Input::Null => (None, false),
        Input::Bytes(d) => (Some(d), false),
        Input::Held(d) => (Some(d), true),
    };
    cmd.stdin(if data.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let cmdline = format!("{} {}", prog.display(), args.join(" "));
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
    let (release, released) = std::sync::mpsc::channel::<()>();
    let writer = child.stdin.take().map(|mut w| {
        let data = data.unwrap_or_default().to_vec();
        std::thread::spawn(move || {
            // The program may exit without reading everything: ignore EPIPE.
            let _ = w.write_all(&data);
            let _ = w.flush();
            if hold {
                // Returns when `release` is dropped.
                let _ = released.recv();
            }
            drop(w);
        })
    });
    let read_all = |r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut r = r;
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out_t = read_all(Box::new(child.stdout.take().unwrap()));
    let err_t = read_all(Box::new(child.stderr.take().unwrap()));
    let deadline = started + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            // SAFETY: the program leads its own session/process group (setsid).
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            drop(release);
            let out = out_t.join().unwrap_or_default();
            let err = err_t.join().unwrap_or_default();
            panic!(
                "client timed out after {timeout:?} and was killed: {cmdline}\nstdout so far: {}\nstderr so far: {}",
                show(&out, 2000),
                show(&err, 4000)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(release);
    let stdout = out_t.join().expect("stdout reader");
    let stderr = err_t.join().expect("stderr reader");
    if let Some(w) = writer {
        let _ = w.join();
    }
    if verbose() {
        eprintln!(
            "[{:.2}s] {cmdline} -> {}, {} stdout bytes, stderr {}",
            started.elapsed().as_secs_f64(),
            describe_status(&status),
            stdout.len(),
            show(&stderr, 400)
        );
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// `--runtime R` for our examples when `SSHLIB_RUNTIME=R` is set
/// (blocking, tokio or mio): the same tests then run over that adapter.
/// Unset, each example uses its default (blocking clients, mio server).
pub fn runtime_args() -> Vec<String> {
    match std::env::var("SSHLIB_RUNTIME").as_deref() {
        Ok("") | Err(_) => vec![],
        Ok(r @ ("blocking" | "tokio" | "mio")) => vec!["--runtime".into(), r.into()],
        Ok(other) => panic!("SSHLIB_RUNTIME={other:?}: expected blocking, tokio or mio"),
    }
}

/// Options that keep OpenSSH's clients from reading the user's or the
/// system's configuration and known hosts, from updating host keys, and from
/// offering keys other than those given.
pub fn openssh_isolation_args() -> Vec<String> {
    [
        "-F",
        "/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "UpdateHostKeys=no",
        "-o",
        "IdentitiesOnly=yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The program and leading arguments of the client under test.
fn client_command() -> (PathBuf, Vec<String>) {
    match client_kind() {
        ClientKind::Ours => match std::env::var("SSHLIB_TEST_CLIENT") {
            Ok(p) if p.starts_with('/') => (PathBuf::from(p), vec![]),
            _ => (example_bin("client"), runtime_args()),
        },
        // Not `-o BatchMode=yes` here: it also stops OpenSSH from using
        // SSH_ASKPASS. The tests pass BatchMode=yes themselves wherever no
        // password or passphrase is asked, so both clients get the same flags.
        ClientKind::OpenSsh => {
            let mut a = openssh_isolation_args();
            a.extend(["-o".to_string(), "ControlMaster=no".to_string()]);
            (require_peer("ssh"), a)
        }
    }
}

/// Runs the client under test with `args`, feeding `stdin` (empty: stdin is
/// /dev/null), with `env` added to a cleaned environment (no agent, no
/// askpass unless given, HOME an empty temporary directory) in a new session
/// (no controlling terminal). Kills it and fails the test if it runs longer
/// than `timeout`.
pub fn run_client(args: &[&str], stdin: &[u8], env: &[(&str, &str)], timeout: Duration) -> Output {
    let (mut cmd, cmdline, _home) = client_process(args, env);
    cmd.stdin(if stdin.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    });
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
    let writer = child.stdin.take().map(|mut w| {
        let data = stdin.to_vec();
        std::thread::spawn(move || {
            // The client may exit without reading everything: ignore EPIPE.
            let _ = w.write_all(&data);
        })
    });
    let read_all = |r: Option<Box<dyn Read + Send>>| {
        let mut r = r.unwrap();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out_t = read_all(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err_t = read_all(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = started + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            // SAFETY: the client leads its own session/process group (setsid).
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            let out = out_t.join().unwrap_or_default();
            let err = err_t.join().unwrap_or_default();
            panic!(
                "client timed out after {timeout:?} and was killed: {cmdline}\nstdout so far: {}\nstderr so far: {}",
                show(&out, 2000),
                show(&err, 4000)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out_t.join().expect("stdout reader");
    let stderr = err_t.join().expect("stderr reader");
    if let Some(w) = writer {
        let _ = w.join();
    }
    if std::env::var_os("SSHLIB_TEST_VERBOSE").is_some() {
        eprintln!(
            "[{:.2}s] {cmdline} -> {:?}, {} stdout bytes, stderr {}",
            started.elapsed().as_secs_f64(),
            status.code(),
            stdout.len(),
            show(&stderr, 400)
        );
    }
    Output {
        status,
        stdout,
        stderr,
    }
}

/// The client under test with `args` as a command (stdout and stderr piped)
/// in a cleaned environment (no agent, no askpass unless given, HOME an
/// empty temporary directory, returned to be kept alive) in a new session
/// (no controlling terminal), and its command line for messages.
fn client_process(args: &[&str], env: &[(&str, &str)]) -> (Command, String, TempDir) {
    let (prog, pre) = client_command();
    let home = TempDir::new("client-home");
    let mut cmd = clean_command(&prog, home.path(), &[], env);
    cmd.args(&pre).args(args);
    let cmdline = format!(
        "{} {}",
        prog.display(),
        pre.iter()
            .map(String::as_str)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ")
    );
    (cmd, cmdline, home)
}

/// A running client under test, its stdin, stdout and stderr pipes for
/// the test to drive; killed (with its process group) on drop.
pub struct ClientProcess {
    pub child: Child,
    pub cmdline: String,
    _home: TempDir,
}

impl ClientProcess {
    /// Waits up to `timeout` for the exit status (None if still running).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: the client leads its own session/process group (setsid).
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts the client under test (as [`run_client`] would) with stdin,
/// stdout and stderr as pipes the test holds.
pub fn spawn_client(args: &[&str], env: &[(&str, &str)]) -> ClientProcess {
    let (mut cmd, cmdline, home) = client_process(args, env);
    cmd.stdin(Stdio::piped());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
    ClientProcess {
        child,
        cmdline,
        _home: home,
    }
}

/// Describes an exit status for messages ("exit 7", "signal 11").
pub fn describe_status(st: &ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => format!("{st:?}"),
    }
}

/// Checks stdout, stderr and exit code exactly; `Err` describes every
/// difference.
pub fn check_output(out: &Output, stdout: &[u8], stderr: &[u8], code: i32) -> Result<(), String> {
    let mut errs = Vec::new();
    if out.status.code() != Some(code) {
        errs.push(format!(
            "exit status: expected {code}, got {}",
            describe_status(&out.status)
        ));
    }
    if out.stdout != stdout {
        errs.push(format!(
            "stdout: expected {}, got {}",
            show(stdout, 200),
            show(&out.stdout, 600)
        ));
    }
    if out.stderr != stderr {
        errs.push(format!(
            "stderr: expected {}, got {}",
            show(stderr, 200),
            show(&out.stderr, 2000)
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

#[track_caller]
pub fn assert_output(out: &Output, stdout: &[u8], stderr: &[u8], code: i32) {
    if let Err(e) = check_output(out, stdout, stderr, code) {
        panic!("{e}");
    }
}

/// Exit 255, nothing on stdout, no panic text on stderr, and (when
/// `one_line`) exactly one non-empty line on stderr.
pub fn check_error_exit(out: &Output, one_line: bool) -> Result<(), String> {
    let err = String::from_utf8_lossy(&out.stderr);
    let mut errs = Vec::new();
    if out.status.code() != Some(255) {
        errs.push(format!(
            "exit status: expected 255, got {}",
            describe_status(&out.status)
        ));
    }
    if !out.stdout.is_empty() {
        errs.push(format!(
            "stdout should be empty, got {}",
            show(&out.stdout, 400)
        ));
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        errs.push("the client panicked".to_string());
    }
    if err.trim().is_empty() {
        errs.push("stderr should explain the error, it is empty".to_string());
    } else if one_line && (err.lines().count() != 1 || !err.ends_with('\n')) {
        errs.push("stderr should be exactly one line".to_string());
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}; stderr: {}",
            errs.join("; "),
            show(&out.stderr, 2000)
        ))
    }
}

#[track_caller]
pub fn assert_error_exit(out: &Output, one_line: bool) {
    if let Err(e) = check_error_exit(out, one_line) {
        panic!("{e}");
    }
}

/// `Vec<String>` → `Vec<&str>` for [`run_client`].
pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------
// Helpers for test files that start their own daemons (interop_server.rs)
// ---------------------------------------------------------------------------

impl Daemon {
    /// Starts `cmd` the way the harness starts its peers: its own process
    /// group, stdout and stderr collected into [`Daemon::log`], killed with
    /// its group on drop (its log printed if the test panics).
    pub fn start(name: &str, cmd: Command) -> Daemon {
        Daemon::spawn(name, cmd)
    }

    /// The daemon's exit status, if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.exited()
    }
}

/// Host keys made once per test process by ssh-keygen (OpenSSH private key
/// files, each with its `.pub` next to it): ed25519, ecdsa P-256, P-384,
/// P-521 and rsa 3072.
pub fn openssh_host_key_files() -> &'static [PathBuf] {
    sshd_host_keys()
}

/// `ssh-keygen -q ARGS -N PASSPHRASE -C COMMENT -f PATH`, replacing any
/// key already at `path`.
pub fn generate_key(path: &Path, args: &[&str], passphrase: &str, comment: &str) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(format!("{}.pub", path.display()));
    ssh_keygen(path, args, passphrase, comment);
}

/// The `TYPE BASE64 COMMENT` line of a `.pub` file.
pub fn public_key_line(pub_path: &Path) -> String {
    public_line(pub_path)
}

/// Writes a known_hosts file with one `[127.0.0.1]:PORT TYPE BASE64` line
/// per public key line.
pub fn write_known_hosts_file(path: &Path, port: u16, public_lines: &[String]) {
    write_known_hosts(path, port, public_lines)
}

// ---------------------------------------------------------------------------
// SFTP helpers (interop_sftp.rs)
// ---------------------------------------------------------------------------

/// The sftp-server program Dropbear runs for the `sftp` subsystem: Dropbear
/// has no option for it, only the path compiled in (`SFTPSERVER_PATH`,
/// `/usr/lib/sftp-server` on Debian, where openssh-sftp-server makes it a
/// symlink to `/usr/lib/openssh/sftp-server`). Found by looking for a
/// NUL-terminated absolute path ending in `sftp-server` in the dropbear
/// binary; fails (with the install hint) if it is not installed.
pub fn dropbear_sftp_server() -> PathBuf {
    let bin = require_peer("dropbear");
    let data = std::fs::read(&bin).unwrap_or_else(|e| panic!("read {}: {e}", bin.display()));
    let compiled = data
        .split(|&b| b == 0)
        .filter(|s| s.starts_with(b"/") && s.ends_with(b"sftp-server") && s.len() < 256)
        .filter_map(|s| std::str::from_utf8(s).ok())
        .map(PathBuf::from)
        .next()
        .unwrap_or_else(|| PathBuf::from("/usr/lib/sftp-server"));
    if !is_executable(&compiled) {
        panic!(
            "Dropbear serves SFTP with {} (its compiled-in SFTPSERVER_PATH), which is missing: \
             install openssh-sftp-server; {INSTALL_HINT}",
            compiled.display()
        );
    }
    compiled
}
