//! The client under test: our examples (or OpenSSH's `ssh` with
//! `SSHLIB_TEST_CLIENT=openssh`), run with a hard timeout, and checks of
//! their output.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::scratch::TempDir;
use super::util::{is_executable, require_peer, show};

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
pub(crate) fn clean_command<V: AsRef<std::ffi::OsStr>>(
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
pub(crate) fn client_command() -> (PathBuf, Vec<String>) {
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
pub(crate) fn client_process(args: &[&str], env: &[(&str, &str)]) -> (Command, String, TempDir) {
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
    pub(crate) _home: TempDir,
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
