//! The `smol_exec` example (ssh-proto driven directly from smol) against
//! OpenSSH `sshd` started by the test (see `common/mod.rs`). Needs root and
//! the peers, like the other interop tests, and the example built first:
//!
//! ```text
//! cargo build --release --example smol_exec
//! cargo test --release --test smol_example
//! ```

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const TIMEOUT: Duration = Duration::from_secs(60);

/// `-p PORT -i KEY -o UserKnownHostsFile=KH sshtest@127.0.0.1 CMD`.
fn args(port: u16, known_hosts: &Path, cmd: &str) -> Vec<String> {
    vec![
        "-p".into(),
        port.to_string(),
        "-i".into(),
        keys().ed25519.display().to_string(),
        "-o".into(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        format!("{USER}@127.0.0.1"),
        cmd.into(),
    ]
}

/// Runs `smol_exec` with stdin from /dev/null, HOME an empty directory, in
/// its own session; kills it and fails the test after [`TIMEOUT`].
fn run_smol_exec(args: &[String]) -> Output {
    let prog = example_bin("smol_exec");
    let home = TempDir::new("smol-home");
    let mut cmd = Command::new(&prog);
    cmd.args(args)
        .env("HOME", home.path())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("cannot start smol_exec");
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out_t = read_all(Box::new(child.stdout.take().unwrap()));
    let err_t = read_all(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            // SAFETY: the child leads its own process group (setsid).
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            let err = err_t.join().unwrap_or_default();
            panic!(
                "smol_exec timed out after {TIMEOUT:?}: {args:?}\nstderr: {}",
                show(&err, 4000)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

#[test]
fn exec_stdout_stderr_and_exit_status() {
    let sshd = Sshd::start();
    let out = run_smol_exec(&args(
        sshd.port,
        &sshd.known_hosts,
        "echo out; echo err >&2; exit 3",
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}; stderr: {err}",
        describe_status(&out.status)
    );
    assert_eq!(out.stdout, b"out\n", "stdout: {}", show(&out.stdout, 400));
    assert!(err.contains("err"), "stderr: {err}");
}

#[test]
fn one_mib_of_output_arrives_complete() {
    let sshd = Sshd::start();
    let out = run_smol_exec(&args(
        sshd.port,
        &sshd.known_hosts,
        "head -c 1048576 /dev/zero | tr '\\0' a",
    ));
    assert_output(&out, &vec![b'a'; 1 << 20], b"", 0);
}

#[test]
fn unknown_host_key_is_refused() {
    let sshd = Sshd::start();
    let dir = TempDir::new("smol-kh");
    let empty = dir.join("known_hosts");
    std::fs::write(&empty, "").unwrap();
    let out = run_smol_exec(&args(sshd.port, &empty, "echo should-not-run"));
    assert_error_exit(&out, true);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("smol_exec: ") && err.contains("host key verification failed"),
        "stderr: {err}"
    );
}

#[test]
fn exit_signal_gives_255_and_a_message() {
    let sshd = Sshd::start();
    let out = run_smol_exec(&args(sshd.port, &sshd.known_hosts, "kill -KILL $$"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "stderr: {err}");
    assert!(err.contains("signal KILL"), "stderr: {err}");
}

#[test]
fn changed_host_key_is_refused() {
    let sshd = Sshd::start();
    let dir = TempDir::new("smol-kh");
    let wrong = dir.join("known_hosts");
    // The client's own public key, listed as the server's: a mismatch.
    let line = std::fs::read_to_string(keys().ed25519.with_extension("pub")).unwrap();
    let mut f = line.split_whitespace();
    let (t, b) = (f.next().unwrap(), f.next().unwrap());
    std::fs::write(&wrong, format!("[127.0.0.1]:{} {t} {b}\n", sshd.port)).unwrap();
    let out = run_smol_exec(&args(sshd.port, &wrong, "echo should-not-run"));
    assert_error_exit(&out, true);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HAS CHANGED"), "stderr: {err}");
}
