//! Rules about the project's own source that a compiler does not check.
//!
//! Servers look users up and open pseudo-terminals from many connection
//! threads at once, so the C library's calls that return static storage
//! (`getpwuid`, `getpwnam`, `ptsname`, ...) are data races there, and
//! `openpty` leaves its descriptors inheritable until a later `fcntl`, a
//! window in which another thread's spawned command inherits them. Only the
//! reentrant and close-on-exec forms may be used.

use std::path::{Path, PathBuf};

/// Calls that are refused, each with the one to use instead.
const FORBIDDEN: &[(&str, &str)] = &[
    ("getpwuid", "getpwuid_r (ssh_std::passwd::Passwd::by_uid)"),
    ("getpwnam", "getpwnam_r (ssh_std::passwd::Passwd::by_name)"),
    ("getpwent", "getpwnam_r / getpwuid_r"),
    ("getspnam", "getspnam_r"),
    ("getgrnam", "getgrnam_r"),
    ("getgrgid", "getgrgid_r"),
    ("ptsname", "ptsname_r"),
    ("openpty", "posix_openpt(O_CLOEXEC) + open(O_CLOEXEC)"),
    ("forkpty", "posix_openpt(O_CLOEXEC) + open(O_CLOEXEC)"),
    ("localtime", "localtime_r"),
    ("gmtime", "gmtime_r"),
    ("strerror", "std::io::Error::from_raw_os_error"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() {
            if name != "target" && name != ".git" {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_thread_unsafe_or_inheritable_libc_calls() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in ["crates", "examples", "fuzz/src", "fuzz/fuzz_targets"] {
        rust_files(&root.join(d), &mut files);
    }
    assert!(
        files.iter().any(|f| f.ends_with("examples/server/main.rs")),
        "the scan found no source (looked under {})",
        root.display()
    );
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (no, line) in text.lines().enumerate() {
            for (name, instead) in FORBIDDEN {
                // `libc::NAME(`: the `_r` forms do not match.
                if line.contains(&format!("libc::{name}(")) {
                    found.push(format!(
                        "{}:{}: libc::{name} (use {instead})",
                        f.strip_prefix(root).unwrap_or(f).display(),
                        no + 1
                    ));
                }
            }
        }
    }
    assert!(found.is_empty(), "refused calls:\n{}", found.join("\n"));
}
