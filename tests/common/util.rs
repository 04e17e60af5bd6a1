//! Small utilities: digests and test data, output display, finding peers
//! and running checked commands.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::INSTALL_HINT;

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

pub(crate) struct StringWriter<'a>(&'a mut Vec<u8>);
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

pub(crate) fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs a setup command to completion; panics with its output if it fails.
pub(crate) fn run_checked(cmd: &mut Command, what: &str) -> Output {
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

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub(crate) fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
