//! Interoperability tests of the `server` example against real clients:
//! OpenSSH `ssh` and `scp`, PuTTY `plink`, Dropbear `dbclient`, paramiko and
//! AsyncSSH (`tests/peers/*_client.py`). Every test starts its own server on
//! 127.0.0.1 and a free port (see [`OurServer`]); all clients run with hard
//! timeouts, in a clean environment (HOME an empty temporary directory, no
//! agent, no ssh config).
//!
//! Needs root (the harness creates the local user `sshtest`, the identity
//! tests `sshlib-alice`, `sshlib-bob`, `sshlib-nologin` and
//! `sshlib-locked`, homes under /home, left in place) and the peers
//! installed by `scripts/install-peers.sh`; a missing peer fails the tests.
//! The `server` example must be built for the same profile first, e.g.
//!
//! ```text
//! cargo build --release --example server
//! cargo test --release --test interop_server
//! ```
//!
//! `SSHLIB_TEST_SERVER=/abs/path` tests another program with the same
//! command line. `SSHLIB_TEST_VERBOSE=1` prints each client run with its
//! timing.
//!
//! What the tests assume of the server, beyond its documented options: it
//! prints `host key: TYPE SHA256:B64` (one line per host key) and then
//! `listening on 127.0.0.1:PORT` on stdout once it accepts connections; the
//! commands it runs may be run as any user (the tests make the directories
//! they write to world-writable).

mod common;
#[path = "interop_server/forwarding.rs"]
mod forwarding;
#[path = "interop_server/python_forwarding.rs"]
mod python_forwarding;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use ssh_proto::algorithms::{
    CIPHER_ALL, CIPHER_LEGACY, HOST_KEY_ALL, HOST_KEY_LEGACY, KEX_ALL, KEX_LEGACY, MAC_ALL,
};

const SHORT: Duration = Duration::from_secs(30);
const BULK: Duration = Duration::from_secs(180);
const MIB: usize = 1 << 20;
const EXEC_CMD: &str = "echo out; echo err >&2; exit 7";

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Fails listing every failed case, so one failure does not hide others.
#[track_caller]
fn report(what: &str, total: usize, failures: Vec<String>) {
    if !failures.is_empty() {
        panic!(
            "{} of {total} {what} failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
}

/// The last `max` bytes of `text` (for messages about long client logs).
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut i = text.len() - max;
    while !text.is_char_boundary(i) {
        i += 1;
    }
    format!("...{}", &text[i..])
}

/// True if a line of `text` equals `line`, or starts with `line` and a
/// space (ignoring a trailing `\r`).
fn has_line(text: &str, line: &str) -> bool {
    let with_space = format!("{line} ");
    text.lines().any(|l| {
        let l = l.trim_end_matches('\r');
        l == line || l.starts_with(&with_space)
    })
}

/// A fresh directory that the commands the server runs may write to,
/// whichever user they run as.
fn writable_dir(prefix: &str) -> TempDir {
    let d = TempDir::new(prefix);
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

/// `SHA256:...` fingerprint of a public key file (`ssh-keygen -lf`).
fn fingerprint(pub_path: &Path) -> String {
    let out = Command::new(require_peer("ssh-keygen"))
        .arg("-lf")
        .arg(pub_path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen -lf");
    assert!(
        out.status.success(),
        "ssh-keygen -lf {}: {}",
        pub_path.display(),
        lossy(&out.stderr)
    );
    lossy(&out.stdout)
        .split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no SHA256 fingerprint for {}", pub_path.display()))
        .to_string()
}

fn pub_of(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", key.display()))
}

// ---------------------------------------------------------------------------
// Running client programs
// ---------------------------------------------------------------------------

/// OpenSSH `ssh ARGS USER@127.0.0.1 CMD`.
fn ssh_as(
    user: &str,
    args: &[String],
    cmd: &str,
    input: Input<'_>,
    env: &[(&str, String)],
    timeout: Duration,
) -> Output {
    let mut a = args.to_vec();
    a.push(format!("{user}@127.0.0.1"));
    a.push(cmd.to_string());
    run_prog(&require_peer("ssh"), &a, input, env, timeout)
}

/// OpenSSH `ssh ARGS sshtest@127.0.0.1 CMD`.
fn ssh(
    args: &[String],
    cmd: &str,
    input: Input<'_>,
    env: &[(&str, String)],
    timeout: Duration,
) -> Output {
    ssh_as(USER, args, cmd, input, env, timeout)
}

/// Exit status 7, stdout exactly "out\n" and a line "err" on stderr (which
/// may hold client debug output too): the result of [`EXEC_CMD`].
fn check_exec_loose(out: &Output) -> Result<(), String> {
    let err = lossy(&out.stderr);
    let mut errs = Vec::new();
    if out.status.code() != Some(7) {
        errs.push(format!(
            "exit status: expected 7, got {}",
            describe_status(&out.status)
        ));
    }
    if out.stdout != b"out\n" {
        errs.push(format!(
            "stdout: expected \"out\\n\", got {}",
            show(&out.stdout, 600)
        ));
    }
    if !err.lines().any(|l| l == "err") {
        errs.push("stderr lacks the line \"err\"".to_string());
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("{}; stderr: {}", errs.join("; "), tail(&err, 3000)))
    }
}

/// `ssh -v` reports the authentication method that succeeded.
fn check_auth_method(out: &Output, method: &str) -> Result<(), String> {
    let err = lossy(&out.stderr);
    let needle = format!("using \"{method}\".");
    if err
        .lines()
        .any(|l| l.starts_with("Authenticated to ") && l.contains(&needle))
    {
        Ok(())
    } else {
        Err(format!(
            "ssh -v does not report authentication with {method}: {}",
            tail(&err, 3000)
        ))
    }
}

/// Exit 255 and a "Permission denied" on stderr.
fn check_denied(out: &Output) -> Result<(), String> {
    let err = lossy(&out.stderr);
    if out.status.code() == Some(255) && err.contains("Permission denied") {
        Ok(())
    } else {
        Err(format!(
            "expected exit 255 with \"Permission denied\", got {} (stdout {}), stderr: {}",
            describe_status(&out.status),
            show(&out.stdout, 200),
            tail(&err, 3000)
        ))
    }
}

/// Pipes `data` through `cat` with `ssh ARGS` and checks the echo is
/// identical.
fn check_cat_roundtrip(args: &[String], data: &[u8], timeout: Duration) -> Result<Output, String> {
    let out = ssh(args, "cat", Input::Bytes(data), &[], timeout);
    let mut errs = Vec::new();
    if out.status.code() != Some(0) {
        errs.push(format!(
            "exit status: expected 0, got {}",
            describe_status(&out.status)
        ));
    }
    if out.stdout.len() != data.len() || sha256_hex(&out.stdout) != sha256_hex(data) {
        errs.push(format!(
            "stdout differs from stdin: {} bytes sha256 {} instead of {} bytes sha256 {}",
            out.stdout.len(),
            sha256_hex(&out.stdout),
            data.len(),
            sha256_hex(data)
        ));
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "{}; stderr: {}",
            errs.join("; "),
            tail(&lossy(&out.stderr), 3000)
        ))
    }
}

fn python() -> PathBuf {
    require_peer(&std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
}

/// Fails the test unless `import MODULE` works.
fn require_python_module(module: &str) {
    let py = python();
    let ok = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .stdin(Stdio::null())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python module `{module}` is not importable by {}: run scripts/install-peers.sh (as root) to install the interop peers",
        py.display()
    );
}

// ---------------------------------------------------------------------------
// Our server
// ---------------------------------------------------------------------------

fn server_bin() -> PathBuf {
    match std::env::var("SSHLIB_TEST_SERVER") {
        Ok(p) if p.starts_with('/') => PathBuf::from(p),
        Ok(p) if !p.is_empty() => panic!("SSHLIB_TEST_SERVER={p:?}: expected an absolute path"),
        _ => example_bin("server"),
    }
}

/// `sshtest:HASH` with HASH from `openssl passwd -6 sshtest-pw` (made once).
fn password_file() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let out = Command::new(require_peer("openssl"))
            .args(["passwd", "-6", PASSWORD])
            .stdin(Stdio::null())
            .output()
            .expect("run openssl passwd");
        assert!(
            out.status.success(),
            "openssl passwd -6 failed: {}",
            lossy(&out.stderr)
        );
        let hash = lossy(&out.stdout).trim().to_string();
        assert!(
            hash.starts_with("$6$"),
            "unexpected openssl passwd output {hash:?}"
        );
        let dir = scratch_dir().join("server-passwords");
        let _ = std::fs::create_dir(&dir);
        let p = dir.join("passwords");
        std::fs::write(&p, format!("{USER}:{hash}\n")).unwrap();
        p
    })
}

/// How to start [`OurServer`].
#[derive(Clone, Debug)]
struct ServerOpts {
    /// `-h` files. `None`: every key of [`openssh_host_key_files`] (ed25519,
    /// ecdsa P-256/P-384/P-521, rsa); an empty list: no `-h` (ephemeral key).
    host_keys: Option<Vec<PathBuf>>,
    /// `--authorized-keys` file contents. `None`: the test keys' file
    /// (ed25519, ecdsa, rsa and the encrypted ed25519, no options).
    authorized_keys: Option<String>,
    /// `--password-file` with user sshtest, password sshtest-pw.
    password_file: bool,
    /// Neither `--authorized-keys` nor `--password-file`: the users' own
    /// `~/.ssh/authorized_keys` and (as root) the shadow passwords.
    system_auth: bool,
    /// Run the server as this user (`setpriv`) instead of root; the host
    /// keys are copied for it to read.
    run_as: Option<TestUser>,
    /// More arguments (e.g. `--runtime blocking`; later ones win).
    extra_args: Vec<String>,
    /// `-o` values (`Key=Value`).
    options: Vec<String>,
    /// `-v`.
    verbose: bool,
    /// `-b` (default 127.0.0.1; `[::]` listens on IPv6 and IPv4).
    bind: &'static str,
}

impl Default for ServerOpts {
    fn default() -> Self {
        ServerOpts {
            host_keys: None,
            authorized_keys: None,
            password_file: true,
            system_auth: false,
            run_as: None,
            extra_args: Vec::new(),
            options: Vec::new(),
            verbose: true,
            bind: "127.0.0.1",
        }
    }
}

impl ServerOpts {
    fn with_options(options: &[&str]) -> ServerOpts {
        ServerOpts {
            options: s(options),
            ..Default::default()
        }
    }
}

/// The `server` example on 127.0.0.1 and a free port, started with
/// [`ServerOpts`]; ready once it printed `listening on ...`; killed (with its
/// process group) on drop, its output printed if the test panicked.
struct OurServer {
    // Fields drop in order: the server is killed before its directory goes.
    daemon: Daemon,
    port: u16,
    /// `[127.0.0.1]:PORT` lines for every host key file given (empty for
    /// an ephemeral key).
    known_hosts: PathBuf,
    /// The `-h` files given.
    host_keys: Vec<PathBuf>,
    _dir: TempDir,
}

impl OurServer {
    fn start() -> OurServer {
        OurServer::start_with(ServerOpts::default())
    }

    fn start_with(opts: ServerOpts) -> OurServer {
        let bin = server_bin();
        let _ = ensure_user();
        let keys = keys();
        let mut host_keys = opts
            .host_keys
            .clone()
            .unwrap_or_else(|| openssh_host_key_files().to_vec());
        let dir = TempDir::new("our-server");
        if let Some(u) = &opts.run_as {
            // Host keys the server's user may read.
            host_keys = host_keys
                .iter()
                .map(|k| {
                    let copy = dir.join(k.file_name().unwrap());
                    std::fs::copy(k, &copy).unwrap();
                    std::fs::copy(pub_of(k), pub_of(&copy)).unwrap();
                    std::os::unix::fs::chown(&copy, Some(u.uid), Some(u.gid)).unwrap();
                    copy
                })
                .collect();
        }
        let authorized_keys = match &opts.authorized_keys {
            Some(text) => {
                let p = dir.join("authorized_keys");
                std::fs::write(&p, text).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
                p
            }
            None => keys.authorized_keys.clone(),
        };
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = match &opts.run_as {
                Some(u) => {
                    let mut c = Command::new(require_peer("setpriv"));
                    c.arg(format!("--reuid={}", u.uid))
                        .arg(format!("--regid={}", u.gid))
                        .arg("--init-groups")
                        .arg("--")
                        .arg(&bin);
                    c
                }
                None => Command::new(&bin),
            };
            cmd.args(runtime_args());
            cmd.args(["-b", opts.bind, "-p", &port.to_string()]);
            for k in &host_keys {
                cmd.arg("-h").arg(k);
            }
            if !opts.system_auth {
                cmd.arg("--authorized-keys").arg(&authorized_keys);
                if opts.password_file {
                    cmd.arg("--password-file").arg(password_file());
                }
            }
            cmd.args(&opts.extra_args);
            for o in &opts.options {
                cmd.arg("-o").arg(o);
            }
            if opts.verbose {
                cmd.arg("-v");
            }
            // What the tests send as environment must not already be in
            // the server's own environment.
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy();
                if k == "LANG" || k.starts_with("LC_") || k.starts_with("SSHLIB_") {
                    cmd.env_remove(&*k);
                }
            }
            let mut daemon = Daemon::start("server", cmd);
            let deadline = Instant::now() + Duration::from_secs(15);
            let ready = loop {
                let log = daemon.log();
                if listening_pos(&log, port).is_some() {
                    break true;
                }
                if daemon.try_status().is_some() {
                    // Let the readers collect the last words.
                    std::thread::sleep(Duration::from_millis(100));
                    break false;
                }
                if Instant::now() >= deadline {
                    panic!(
                        "the server did not print \"listening on 127.0.0.1:{port}\" within 15 s; its output:\n{log}"
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            if ready {
                let known_hosts = dir.join("known_hosts");
                let pubs: Vec<String> = host_keys
                    .iter()
                    .map(|k| public_key_line(&pub_of(k)))
                    .collect();
                write_known_hosts_file(&known_hosts, port, &pubs);
                return OurServer {
                    daemon,
                    port,
                    known_hosts,
                    host_keys,
                    _dir: dir,
                };
            }
            last_log = daemon.log();
            if !last_log.contains("in use") {
                break;
            }
        }
        panic!("the server did not start; its output:\n{last_log}");
    }

    /// The `host key: ...` lines the server printed.
    fn host_key_lines(&self) -> Vec<String> {
        self.daemon
            .log()
            .lines()
            .filter(|l| l.starts_with("host key: "))
            .map(str::to_string)
            .collect()
    }

    /// Fingerprints (`SHA256:...`) of the host key files given.
    fn fingerprints(&self) -> Vec<String> {
        self.host_keys
            .iter()
            .map(|k| fingerprint(&pub_of(k)))
            .collect()
    }

    /// The `-o` options for OpenSSH clients (`ssh`, `scp`): known_hosts
    /// checked strictly, nothing read or written outside the test.
    fn openssh_options(&self) -> Vec<String> {
        s(&[
            "-o",
            &format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "UpdateHostKeys=no",
            "-o",
            "ControlMaster=no",
            "-o",
            "ConnectTimeout=15",
        ])
    }

    /// `-F /dev/null -p PORT` and [`OurServer::openssh_options`].
    fn ssh_base(&self) -> Vec<String> {
        let mut a = s(&["-F", "/dev/null", "-p", &self.port.to_string()]);
        a.extend(self.openssh_options());
        a
    }

    /// Publickey authentication with `key` only.
    fn key_args(&self, key: &Path) -> Vec<String> {
        let mut a = self.ssh_base();
        a.extend(s(&[
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            &path_str(key),
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
        ]));
        a
    }

    /// OpenSSH `ssh` as sshtest with publickey `key` only, running `cmd`
    /// (no input, [`SHORT`] time-out).
    fn ssh_key(&self, key: &Path, cmd: &str) -> Output {
        ssh(&self.key_args(key), cmd, Input::Null, &[], SHORT)
    }

    /// OpenSSH `sftp -b BATCH` as `user` with publickey `key` only.
    fn sftp_batch(&self, user: &str, key: &Path, batch: &Path) -> Output {
        let mut a = s(&["-F", "/dev/null", "-P", &self.port.to_string()]);
        a.extend(self.openssh_options());
        a.extend(s(&[
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
            &path_str(key),
            "-b",
            &path_str(batch),
            &format!("{user}@127.0.0.1"),
        ]));
        run_prog(&require_peer("sftp"), &a, Input::Null, &[], SHORT)
    }

    /// Password authentication only, one prompt, answered by SSH_ASKPASS.
    fn password_args(&self) -> Vec<String> {
        let mut a = self.ssh_base();
        a.extend(s(&[
            "-o",
            "BatchMode=no",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
        ]));
        a
    }

    /// keyboard-interactive authentication only, answered by SSH_ASKPASS.
    fn kbd_args(&self) -> Vec<String> {
        let mut a = self.ssh_base();
        a.extend(s(&[
            "-o",
            "BatchMode=no",
            "-o",
            "PreferredAuthentications=keyboard-interactive",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
        ]));
        a
    }

    fn alive(&mut self) -> bool {
        self.daemon.try_status().is_none()
    }

    /// The server is still running and serves a new connection (`ssh
    /// 'echo alive'` with the ed25519 key).
    fn check_serving(&mut self) -> Result<(), String> {
        if let Some(st) = self.daemon.try_status() {
            return Err(format!("the server exited ({})", describe_status(&st)));
        }
        let out = self.ssh_key(&keys().ed25519, "echo alive");
        check_output(&out, b"alive\n", b"", 0)
            .map_err(|e| format!("the server no longer serves a new connection: {e}"))
    }

    #[track_caller]
    fn assert_serving(&mut self) {
        if let Err(e) = self.check_serving() {
            panic!("{e}");
        }
    }
}

/// Where the `listening on 127.0.0.1:PORT` line starts in the server's
/// output. (Its stdout and stderr are collected into one log, so another
/// line may follow this one without a newline in between if the server
/// wrote it in pieces.)
fn listening_pos(log: &str, port: u16) -> Option<usize> {
    ["127.0.0.1", "[::]"].iter().find_map(|a| {
        let needle = format!("listening on {a}:{port}");
        log.match_indices(&needle).map(|(i, _)| i).find(|&i| {
            (i == 0 || log[..i].ends_with('\n'))
                && !log[i + needle.len()..].starts_with(|c: char| c.is_ascii_digit())
        })
    })
}

fn askpass_env(script: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("SSH_ASKPASS", path_str(script)),
        ("SSH_ASKPASS_REQUIRE", "force".to_string()),
    ]
}

/// An SSH_ASKPASS script that appends its prompt (its argument) to
/// `prompts` and prints `secret`.
fn recording_askpass(dir: &TempDir, secret: &str, prompts: &Path) -> PathBuf {
    let p = dir.join("askpass-recording");
    let quoted = secret.replace('\'', "'\\''");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\nprintf '%s\\n' '{quoted}'\n",
            prompts.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

// ---------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------

/// One `host key: TYPE SHA256:...` line per `-h` file, with the
/// fingerprints `ssh-keygen -lf` gives, before the `listening on` line.
#[test]
fn startup_lines_list_each_host_key() {
    let srv = OurServer::start();
    let log = srv.daemon.log();
    let lines = srv.host_key_lines();
    let mut errs = Vec::new();
    if lines.len() != srv.host_keys.len() {
        errs.push(format!(
            "expected {} host key lines, got {}",
            srv.host_keys.len(),
            lines.len()
        ));
    }
    for (k, fp) in srv.host_keys.iter().zip(srv.fingerprints()) {
        let n = lines
            .iter()
            .filter(|l| l.split_whitespace().last() == Some(fp.as_str()))
            .count();
        if n != 1 {
            errs.push(format!(
                "{} ({fp}) is on {n} host key lines instead of one",
                k.display()
            ));
        }
    }
    for l in &lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() != 4 || !f[3].starts_with("SHA256:") {
            errs.push(format!(
                "malformed line {l:?}: expected `host key: TYPE SHA256:B64`"
            ));
        }
    }
    let last_hk = log
        .match_indices("host key: ")
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || log[..i].ends_with('\n'))
        .last();
    let listening = listening_pos(&log, srv.port);
    if let (Some(h), Some(li)) = (last_hk, listening) {
        if h > li {
            errs.push("a host key line comes after the listening line".into());
        }
    }
    assert!(
        errs.is_empty(),
        "{}\nserver output:\n{log}",
        errs.join("\n")
    );
}

/// Without `-h`: one ephemeral ed25519 host key, and the fingerprint printed
/// is the one a client sees.
#[test]
fn startup_ephemeral_host_key_fingerprint_matches() {
    let srv = OurServer::start_with(ServerOpts {
        host_keys: Some(vec![]),
        ..Default::default()
    });
    let lines = srv.host_key_lines();
    assert_eq!(
        lines.len(),
        1,
        "expected one host key line, server output:\n{}",
        srv.daemon.log()
    );
    assert!(
        lines[0].to_ascii_lowercase().contains("ed25519"),
        "the ephemeral key should be ed25519: {:?}",
        lines[0]
    );
    let printed = lines[0].split_whitespace().last().unwrap().to_string();
    let dir = TempDir::new("ephemeral");
    let kh = dir.join("known_hosts");
    let mut a = s(&["-F", "/dev/null", "-p", &srv.port.to_string()]);
    a.extend(s(&[
        "-o",
        &format!("UserKnownHostsFile={}", kh.display()),
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        "UpdateHostKeys=no",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-i",
        &path_str(&keys().ed25519),
    ]));
    let out = ssh(&a, "echo ok", Input::Null, &[], SHORT);
    assert_eq!(
        (out.status.code(), out.stdout.as_slice()),
        (Some(0), &b"ok\n"[..]),
        "stderr: {}",
        lossy(&out.stderr)
    );
    let recorded = std::fs::read_to_string(&kh).unwrap_or_default();
    assert!(
        recorded.contains("ssh-ed25519"),
        "known_hosts: {recorded:?}"
    );
    assert_eq!(fingerprint(&kh), printed, "known_hosts: {recorded:?}");
}

// ---------------------------------------------------------------------------
// OpenSSH ssh: exec, data, authentication
// ---------------------------------------------------------------------------

#[test]
fn openssh_exec_stdout_stderr_exit_status() {
    let srv = OurServer::start();
    let out = srv.ssh_key(&keys().ed25519, EXEC_CMD);
    assert_output(&out, b"out\n", b"err\n", 7);
}

/// A command killed by a signal: the server sends exit-signal (not
/// exit-status); OpenSSH's ssh prints nothing about it and exits 255.
#[test]
fn openssh_exit_signal() {
    let srv = OurServer::start();
    let mut a = srv.key_args(&keys().ed25519);
    a.push("-v".into());
    let out = ssh(&a, "echo before; kill -TERM $$", Input::Null, &[], SHORT);
    let err = lossy(&out.stderr);
    assert_eq!(
        out.stdout,
        b"before\n",
        "stdout; stderr {}",
        tail(&err, 3000)
    );
    assert_eq!(
        out.status.code(),
        Some(255),
        "exit status; stderr {}",
        tail(&err, 3000)
    );
    assert!(
        err.contains("rtype exit-signal"),
        "no exit-signal request reached ssh: {}",
        tail(&err, 3000)
    );
    assert!(
        !err.contains("rtype exit-status"),
        "exit-status sent for a killed command: {}",
        tail(&err, 3000)
    );
}

/// Remote stdin is the channel; a command that does not read it still
/// ends; a long-running command's output arrives.
#[test]
fn openssh_exec_stdin_and_exit_codes() {
    let srv = OurServer::start();
    let a = srv.key_args(&keys().ed25519);
    let mut failures = Vec::new();
    let cases: [(&str, &[u8], &[u8], i32); 5] = [
        (
            "read -r l; echo \"got:$l\"",
            b"hello\nignored\n",
            b"got:hello\n",
            0,
        ),
        ("wc -c", b"12345", b"5\n", 0),
        ("exit 0", b"", b"", 0),
        ("exit 255", b"", b"", 255),
        ("sleep 1; echo late; exit 42", b"", b"late\n", 42),
    ];
    for (cmd, input, expect, code) in cases {
        let out = ssh(&a, cmd, Input::Bytes(input), &[], SHORT);
        if let Err(e) = check_output(&out, expect, b"", code) {
            failures.push(format!("{cmd:?}: {e}"));
        }
    }
    report("exec cases", cases.len(), failures);
}

#[test]
fn openssh_cat_64mib_roundtrip() {
    let srv = OurServer::start_with(ServerOpts {
        verbose: false,
        ..Default::default()
    });
    let data = pseudo_random_bytes(64 * MIB, 101);
    check_cat_roundtrip(&srv.key_args(&keys().ed25519), &data, BULK).unwrap();
}

/// 64 MiB up into `cat > FILE` and 64 MiB down from `cat FILE`.
#[test]
fn openssh_upload_and_download_64mib_files() {
    let srv = OurServer::start_with(ServerOpts {
        verbose: false,
        ..Default::default()
    });
    let a = srv.key_args(&keys().ed25519);
    let dir = writable_dir("updown");

    let up = pseudo_random_bytes(64 * MIB, 102);
    let up_file = dir.join("up.bin");
    let out = ssh(
        &a,
        &format!("cat > {}", up_file.display()),
        Input::Bytes(&up),
        &[],
        BULK,
    );
    assert_output(&out, b"", b"", 0);
    let got = std::fs::read(&up_file).expect("the uploaded file");
    assert_eq!(got.len(), up.len(), "uploaded length");
    assert_eq!(sha256_hex(&got), sha256_hex(&up), "uploaded sha256");

    let down = pseudo_random_bytes(64 * MIB, 103);
    let down_file = dir.join("down.bin");
    std::fs::write(&down_file, &down).unwrap();
    let out = ssh(
        &a,
        &format!("cat {}", down_file.display()),
        Input::Null,
        &[],
        BULK,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "exit status; stderr {}",
        show(&out.stderr, 2000)
    );
    assert_eq!(out.stdout.len(), down.len(), "downloaded length");
    assert_eq!(
        sha256_hex(&out.stdout),
        sha256_hex(&down),
        "downloaded sha256"
    );
}

#[test]
fn openssh_password_via_askpass() {
    let srv = OurServer::start();
    let askpass = askpass_script(PASSWORD);
    let mut a = srv.password_args();
    a.push("-v".into());
    let out = ssh(&a, EXEC_CMD, Input::Null, &askpass_env(&askpass), SHORT);
    check_exec_loose(&out)
        .and_then(|()| check_auth_method(&out, "password"))
        .unwrap();
}

/// keyboard-interactive: one `Password: ` prompt, answered from
/// SSH_ASKPASS (OpenSSH shows it as `(user@host) Password: `).
#[test]
fn openssh_keyboard_interactive_via_askpass() {
    let srv = OurServer::start();
    let dir = TempDir::new("kbdint");
    let prompts = dir.join("prompts");
    let askpass = recording_askpass(&dir, PASSWORD, &prompts);
    let mut a = srv.kbd_args();
    a.push("-v".into());
    let out = ssh(&a, EXEC_CMD, Input::Null, &askpass_env(&askpass), SHORT);
    check_exec_loose(&out)
        .and_then(|()| check_auth_method(&out, "keyboard-interactive"))
        .unwrap();
    let asked = std::fs::read_to_string(&prompts).unwrap_or_default();
    assert_eq!(
        asked.lines().count(),
        1,
        "expected exactly one prompt, askpass saw {asked:?}"
    );
    assert!(
        asked.trim_end_matches('\n').ends_with("Password: "),
        "expected the prompt \"Password: \", askpass saw {asked:?}"
    );
}

/// The right password for a user the password file does not list, and a
/// wrong password, for both password and keyboard-interactive.
#[test]
fn openssh_password_refusals() {
    let mut srv = OurServer::start();
    let good = askpass_script(PASSWORD);
    let bad = askpass_script("not-the-password");
    let mut failures = Vec::new();
    let cases = [
        (
            "password, unlisted user",
            srv.password_args(),
            "nosuchuser",
            &good,
        ),
        ("password, wrong password", srv.password_args(), USER, &bad),
        (
            "kbd-int, unlisted user",
            srv.kbd_args(),
            "nosuchuser",
            &good,
        ),
        ("kbd-int, wrong password", srv.kbd_args(), USER, &bad),
    ];
    for (label, args, user, askpass) in &cases {
        let out = ssh_as(
            user,
            args,
            "echo should-not-run",
            Input::Null,
            &askpass_env(askpass),
            SHORT,
        );
        if let Err(e) = check_denied(&out) {
            failures.push(format!("{label}: {e}"));
        }
        if let Err(e) = srv.check_serving() {
            failures.push(format!("after {label}: {e}"));
        }
    }
    report("password refusals", cases.len(), failures);
}

/// Publickey with each user-key type; RSA with each SHA-2 signature
/// algorithm (`PubkeyAcceptedAlgorithms` makes ssh use only that one, so
/// the server must list it in server-sig-algs and verify it).
#[test]
fn openssh_publickey_key_types() {
    let srv = OurServer::start();
    let keys = keys();
    let rows: [(&str, &Path, &[&str], &str); 5] = [
        ("ed25519", &keys.ed25519, &[], "ssh-ed25519"),
        ("ecdsa nistp256", &keys.ecdsa, &[], "ecdsa-sha2-nistp256"),
        ("rsa (default)", &keys.rsa, &[], "rsa-sha2-512"),
        (
            "rsa, rsa-sha2-256 only",
            &keys.rsa,
            &["-o", "PubkeyAcceptedAlgorithms=rsa-sha2-256"],
            "rsa-sha2-256",
        ),
        (
            "rsa, rsa-sha2-512 only",
            &keys.rsa,
            &["-o", "PubkeyAcceptedAlgorithms=rsa-sha2-512"],
            "rsa-sha2-512",
        ),
    ];
    let mut failures = Vec::new();
    for (label, key, extra, alg) in rows {
        let mut a = srv.key_args(key);
        a.extend(s(extra));
        // -vvv: ssh logs "sign_and_send_pubkey: signing using ALG ...".
        a.push("-vvv".into());
        let out = ssh(&a, EXEC_CMD, Input::Null, &[], SHORT);
        let r = check_exec_loose(&out)
            .and_then(|()| check_auth_method(&out, "publickey"))
            .and_then(|()| {
                let err = lossy(&out.stderr);
                let needle = format!("signing using {alg} ");
                if err.contains(&needle) {
                    Ok(())
                } else {
                    Err(format!("ssh did not sign with {alg}"))
                }
            });
        if let Err(e) = r {
            failures.push(format!("{label}: {e}"));
        }
    }
    report("publickey rows", rows.len(), failures);
}

// ---------------------------------------------------------------------------
// Algorithms: each one our library and OpenSSH both have, one at a time
// ---------------------------------------------------------------------------

/// `-o` options that make the server offer the legacy algorithms too.
fn legacy_server_options() -> Vec<String> {
    let mut v = Vec::new();
    for (key, legacy) in [
        ("KexAlgorithms", KEX_LEGACY),
        ("Ciphers", CIPHER_LEGACY),
        ("HostKeyAlgorithms", HOST_KEY_LEGACY),
    ] {
        if !legacy.is_empty() {
            v.push(format!("{key}=+{}", legacy.join(",")));
        }
    }
    v
}

/// The names in `ours` that `ssh -Q what` lists too.
fn intersect(ours: &[&str], what: &str) -> Vec<String> {
    let theirs = openssh_query(what);
    ours.iter()
        .filter(|a| theirs.iter().any(|t| t == *a))
        .map(|a| a.to_string())
        .collect()
}

/// One client run per row against one server offering everything: `ssh -v
/// ARGS` must run [`EXEC_CMD`] and its debug output must have each `expect`
/// line (or line prefix followed by a space).
fn run_algorithm_rows(category: &str, rows: Vec<(String, Vec<String>, Vec<String>)>) {
    assert!(
        !rows.is_empty(),
        "no {category} algorithm is supported by both our library and OpenSSH"
    );
    let srv = OurServer::start_with(ServerOpts {
        options: legacy_server_options(),
        ..Default::default()
    });
    let base = srv.key_args(&keys().ed25519);
    let mut failures = Vec::new();
    for (alg, args, expect) in &rows {
        let started = Instant::now();
        let mut a = base.clone();
        a.push("-v".into());
        a.extend(args.iter().cloned());
        let out = ssh(&a, EXEC_CMD, Input::Null, &[], SHORT);
        let err = lossy(&out.stderr);
        let mut errs = Vec::new();
        if let Err(e) = check_exec_loose(&out) {
            errs.push(e);
        } else {
            for e in expect {
                if !has_line(&err, e) {
                    errs.push(format!("ssh -v does not show {e:?}: {}", tail(&err, 3000)));
                }
            }
        }
        if verbose() {
            eprintln!("{category} {alg}: {:.3}s", started.elapsed().as_secs_f64());
        }
        if !errs.is_empty() {
            failures.push(format!("{category} {alg}: {}", errs.join("; ")));
        }
    }
    report(&format!("{category} rows"), rows.len(), failures);
}

#[test]
fn openssh_every_kex() {
    let rows = intersect(KEX_ALL, "kex")
        .into_iter()
        .map(|k| {
            let args = s(&["-o", &format!("KexAlgorithms={k}")]);
            let expect = vec![format!("debug1: kex: algorithm: {k}")];
            (k, args, expect)
        })
        .collect();
    run_algorithm_rows("kex", rows);
}

#[test]
fn openssh_every_host_key_algorithm() {
    let rows = intersect(HOST_KEY_ALL, "HostKeyAlgorithms")
        .into_iter()
        .map(|h| {
            let args = s(&["-o", &format!("HostKeyAlgorithms={h}")]);
            let expect = vec![format!("debug1: kex: host key algorithm: {h}")];
            (h, args, expect)
        })
        .collect();
    run_algorithm_rows("host key", rows);
}

#[test]
fn openssh_every_cipher() {
    let rows = intersect(CIPHER_ALL, "cipher")
        .into_iter()
        .map(|c| {
            let args = s(&["-o", &format!("Ciphers={c}")]);
            let expect = vec![
                format!("debug1: kex: server->client cipher: {c}"),
                format!("debug1: kex: client->server cipher: {c}"),
            ];
            (c, args, expect)
        })
        .collect();
    run_algorithm_rows("cipher", rows);
}

/// Each MAC with aes128-ctr (an AEAD cipher would make the MAC implicit).
#[test]
fn openssh_every_mac() {
    let rows = intersect(MAC_ALL, "mac")
        .into_iter()
        .map(|m| {
            let args = s(&["-o", "Ciphers=aes128-ctr", "-o", &format!("MACs={m}")]);
            let expect = vec![
                format!("debug1: kex: server->client cipher: aes128-ctr MAC: {m}"),
                format!("debug1: kex: client->server cipher: aes128-ctr MAC: {m}"),
            ];
            (m, args, expect)
        })
        .collect();
    run_algorithm_rows("MAC", rows);
}

// ---------------------------------------------------------------------------
// Compression, rekeying
// ---------------------------------------------------------------------------

/// `ssh -C` against `-o Compression=yes`: zlib@openssh.com both ways, 8 MiB
/// of text through `cat` intact. Against `-o Compression=no`: none.
#[test]
fn openssh_compression() {
    let data = compressible_text(8 * MIB);
    let mut failures = Vec::new();
    for (server_value, expect) in [("yes", "zlib@openssh.com"), ("no", "none")] {
        let srv = OurServer::start_with(ServerOpts::with_options(&[&format!(
            "Compression={server_value}"
        )]));
        let mut a = srv.key_args(&keys().ed25519);
        a.extend(s(&["-C", "-v"]));
        let r = check_cat_roundtrip(&a, &data, BULK).and_then(|out| {
            let err = lossy(&out.stderr);
            let both = ["server->client", "client->server"].iter().all(|dir| {
                err.lines().any(|l| {
                    l.starts_with(&format!("debug1: kex: {dir} cipher: "))
                        && l.ends_with(&format!(" compression: {expect}"))
                })
            });
            if both {
                Ok(())
            } else {
                Err(format!(
                    "ssh -v does not show compression {expect} both ways: {}",
                    tail(&err, 3000)
                ))
            }
        });
        if let Err(e) = r {
            failures.push(format!("server Compression={server_value}: {e}"));
        }
    }
    report("compression runs", 2, failures);
}

/// `ssh -C` with a rekey every MiB (server and ssh `RekeyLimit=1M`): 64
/// MiB through `cat`, text then noise, comes back with the same sha256.
/// OpenSSH starts fresh zlib streams at every NEWKEYS (RFC 4253 section
/// 6.2), so ours must too.
#[test]
fn openssh_compression_with_rekey_every_mib_64mib() {
    let srv = OurServer::start_with(ServerOpts::with_options(&[
        "Compression=yes",
        "RekeyLimit=1M",
    ]));
    let mut data = compressible_text(48 * MIB);
    data.extend(pseudo_random_bytes(16 * MIB, 106));
    let mut a = srv.key_args(&keys().ed25519);
    a.extend(s(&["-C", "-o", "RekeyLimit=1M", "-v"]));
    let out = check_cat_roundtrip(&a, &data, BULK).unwrap();
    let err = lossy(&out.stderr);
    for dir in ["server->client", "client->server"] {
        assert!(
            err.lines().any(|l| {
                l.starts_with(&format!("debug1: kex: {dir} cipher: "))
                    && l.ends_with(" compression: zlib@openssh.com")
            }),
            "ssh -v does not show zlib@openssh.com {dir}: {}",
            tail(&err, 3000)
        );
    }
    let r = rekeys(&err);
    assert!(
        r.len() >= 16,
        "expected at least 16 rekeys with RekeyLimit=1M, ssh logged {}",
        r.len()
    );
}

/// The key exchanges after the first in an `ssh -v` log, each `true` when
/// the server started it (ssh received the server's KEXINIT before sending
/// its own).
fn rekeys(ssh_log: &str) -> Vec<bool> {
    let events: Vec<bool> = ssh_log
        .lines()
        .filter_map(|l| match l.trim_end() {
            "debug1: SSH2_MSG_KEXINIT sent" => Some(false),
            "debug1: SSH2_MSG_KEXINIT received" => Some(true),
            _ => None,
        })
        .collect();
    events.chunks(2).skip(1).map(|pair| pair[0]).collect()
}

/// `ssh -o RekeyLimit=1M` with 8 MiB through `cat`: several rekeys, data
/// intact.
#[test]
fn openssh_rekey_client_limit() {
    let srv = OurServer::start();
    let data = pseudo_random_bytes(8 * MIB, 104);
    let mut a = srv.key_args(&keys().ed25519);
    a.extend(s(&["-o", "RekeyLimit=1M", "-v"]));
    let out = check_cat_roundtrip(&a, &data, BULK).unwrap();
    let r = rekeys(&lossy(&out.stderr));
    assert!(
        r.len() >= 4,
        "expected at least 4 rekeys with RekeyLimit=1M and 8 MiB each way, ssh logged {}",
        r.len()
    );
}

/// Server `-o RekeyLimit=1M` with 8 MiB through `cat`: the server starts
/// several rekeys, data intact.
#[test]
fn openssh_rekey_server_limit() {
    let srv = OurServer::start_with(ServerOpts::with_options(&["RekeyLimit=1M"]));
    let data = pseudo_random_bytes(8 * MIB, 105);
    let mut a = srv.key_args(&keys().ed25519);
    a.push("-v".into());
    let out = check_cat_roundtrip(&a, &data, BULK).unwrap();
    let r = rekeys(&lossy(&out.stderr));
    let by_server = r.iter().filter(|&&x| x).count();
    assert!(
        by_server >= 4,
        "expected the server to start at least 4 rekeys with RekeyLimit=1M and 8 MiB each way; \
         ssh logged {} rekeys, {by_server} started by the server",
        r.len()
    );
}

// ---------------------------------------------------------------------------
// Pty, environment
// ---------------------------------------------------------------------------

/// `ssh -tt` without a command: the login shell on a pty runs a scripted
/// interaction (stdin a pipe held open), exits 3.
#[test]
fn openssh_pty_shell_session() {
    let srv = OurServer::start();
    let mut a = srv.key_args(&keys().ed25519);
    a.push("-tt".into());
    a.push(format!("{USER}@127.0.0.1"));
    let script = b"echo size=$(stty size)=; echo tty=$(tty)=; echo marker-$((6*7)); exit 3\n";
    let out = run_prog(
        &require_peer("ssh"),
        &a,
        Input::Held(script),
        &[("TERM", "dumb".to_string())],
        SHORT,
    );
    let text = lossy(&out.stdout);
    let ctx = format!("stdout {text:?}, stderr {:?}", lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "exit status; {ctx}");
    // The pty echoes the input, which has "marker-$((6*7))", not "marker-42".
    assert!(text.contains("marker-42"), "no marker-42; {ctx}");
    assert!(text.contains("tty=/dev/pts/"), "not on a pty; {ctx}");
    let size = text
        .split("size=")
        .skip(1)
        .filter_map(|rest| rest.split('=').next())
        .find(|v| {
            let f: Vec<&str> = v.split(' ').collect();
            f.len() == 2
                && f.iter()
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
    assert!(
        size.is_some(),
        "`stty size` did not print two numbers; {ctx}"
    );
}

/// exec gets a pty with `-tt` (output newlines become CRLF), none without.
#[test]
fn openssh_pty_for_exec_only_when_requested() {
    let srv = OurServer::start();
    let mut a = srv.key_args(&keys().ed25519);
    a.push("-tt".into());
    let out = ssh(&a, "tty; exit 4", Input::Null, &[], SHORT);
    let text = lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{}", lossy(&out.stderr));
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    assert!(
        text.ends_with("\r\n"),
        "a pty translates newlines: {text:?}"
    );
    let out = srv.ssh_key(&keys().ed25519, "tty");
    assert_eq!(out.stdout, b"not a tty\n", "{}", lossy(&out.stderr));
}

/// SendEnv: LANG and LC_* always accepted, names in AcceptEnv accepted,
/// anything else dropped.
#[test]
fn openssh_send_env() {
    let srv = OurServer::start_with(ServerOpts::with_options(&[
        "AcceptEnv=SSHLIB_TEST_VAR,SSHLIB_TEST_VAR2",
    ]));
    let mut a = srv.key_args(&keys().ed25519);
    for v in [
        "LANG",
        "LC_SSHLIBTEST",
        "SSHLIB_TEST_VAR",
        "SSHLIB_TEST_VAR2",
        "SSHLIB_NOT_ACCEPTED",
    ] {
        a.extend(s(&["-o", &format!("SendEnv={v}")]));
    }
    let env = [
        ("LANG", "C.UTF-8".to_string()),
        ("LC_SSHLIBTEST", "lc-value".to_string()),
        ("SSHLIB_TEST_VAR", "hello".to_string()),
        ("SSHLIB_TEST_VAR2", "world".to_string()),
        ("SSHLIB_NOT_ACCEPTED", "leaked".to_string()),
    ];
    let out = ssh(
        &a,
        "echo \"$LANG|$LC_SSHLIBTEST|$SSHLIB_TEST_VAR|$SSHLIB_TEST_VAR2|${SSHLIB_NOT_ACCEPTED-unset}\"",
        Input::Null,
        &env,
        SHORT,
    );
    assert_output(&out, b"C.UTF-8|lc-value|hello|world|unset\n", b"", 0);
}

// ---------------------------------------------------------------------------
// authorized_keys options
// ---------------------------------------------------------------------------

/// `ssh -tt CMD` where the server refuses the pty: OpenSSH's ssh reports
/// "PTY allocation request failed" and, since the tty was explicitly
/// requested, closes the channel (exit 255) instead of running without one;
/// the command's output, if any arrives, is not from a pty.
fn check_pty_refused(o: &Output) -> Result<(), String> {
    let err = lossy(&o.stderr);
    let out = lossy(&o.stdout);
    if err.contains("PTY allocation request failed") && !out.contains("/dev/pts/") {
        Ok(())
    } else {
        Err(format!(
            "expected the pty request refused, got {} with stdout {}",
            describe_status(&o.status),
            show(&o.stdout, 200)
        ))
    }
}

/// One server per case, its authorized_keys holding the ed25519 key with
/// the options under test.
#[test]
fn authorized_keys_options() {
    let keys = keys();
    let ed_pub = public_key_line(&pub_of(&keys.ed25519));
    type Check = fn(&Output) -> Result<(), String>;
    let cases: [(&str, &str, &[&str], &str, Check); 9] = [
        (
            "command= forces the command",
            "command=\"echo forced\"",
            &[],
            "echo requested",
            |o| check_output(o, b"forced\n", b"", 0),
        ),
        (
            "no-pty refuses a pty",
            "no-pty",
            &["-tt"],
            "tty",
            check_pty_refused,
        ),
        (
            "restrict refuses a pty",
            "restrict",
            &["-tt"],
            "tty",
            check_pty_refused,
        ),
        (
            "restrict still runs commands",
            "restrict",
            &[],
            "echo ok",
            |o| check_output(o, b"ok\n", b"", 0),
        ),
        (
            "from= another address refuses the key",
            "from=\"10.0.0.1\"",
            &[],
            "echo should-not-run",
            check_denied,
        ),
        (
            "from= 127.0.0.1 accepts the key",
            "from=\"127.0.0.1\"",
            &[],
            "echo ok",
            |o| check_output(o, b"ok\n", b"", 0),
        ),
        (
            "from= a matching wildcard accepts the key",
            "from=\"10.0.0.1,127.0.0.*\"",
            &[],
            "echo ok",
            |o| check_output(o, b"ok\n", b"", 0),
        ),
        (
            "from= a negated match refuses the key",
            "from=\"127.0.0.*,!127.0.0.1\"",
            &[],
            "echo should-not-run",
            check_denied,
        ),
        (
            "environment= sets a variable",
            "environment=\"SSHLIB_AK_ENV=from-key\"",
            &[],
            "echo \"$SSHLIB_AK_ENV\"",
            |o| check_output(o, b"from-key\n", b"", 0),
        ),
    ];
    let mut failures = Vec::new();
    for (label, options, extra, cmd, check) in &cases {
        let srv = OurServer::start_with(ServerOpts {
            authorized_keys: Some(format!("{options} {ed_pub}\n")),
            ..Default::default()
        });
        let mut a = srv.key_args(&keys.ed25519);
        a.extend(s(extra));
        let out = ssh(&a, cmd, Input::Null, &[], SHORT);
        if let Err(e) = check(&out) {
            failures.push(format!(
                "{label} ({options}): {e}; stderr {}",
                tail(&lossy(&out.stderr), 1500)
            ));
        }
    }
    report("authorized_keys cases", cases.len(), failures);
}

/// `expiry-time=` is enforced as sshd does it (a key past its time is
/// refused, with a line in the server's log), and lines with options the
/// server cannot honour (`cert-authority`, `principals=`, `tunnel=`) do not
/// log in: OpenSSH `ssh` with the ed25519 key, one server per case.
#[test]
fn authorized_keys_expiry_and_unsupported_options() {
    let keys = keys();
    let ed_pub = public_key_line(&pub_of(&keys.ed25519));
    // Local times a few minutes either side of now (`date`, in the zone the
    // server runs in too).
    let local = |offset: &str| {
        let out = Command::new("date")
            .args(["-d", offset, "+%Y%m%d%H%M%S"])
            .output()
            .expect("run date");
        lossy(&out.stdout).trim().to_string()
    };
    let (past, future) = (local("-2 minutes"), local("+5 minutes"));
    let past_option = format!("expiry-time=\"{past}\"");
    let future_option = format!("expiry-time=\"{future}\"");
    // (label, options, logs in, what the server log says)
    let cases: [(&str, &str, bool, &str); 10] = [
        (
            "expired two minutes ago (local time)",
            &past_option,
            false,
            "expired at ",
        ),
        (
            "expires in five minutes (local time)",
            &future_option,
            true,
            "",
        ),
        (
            "expired (local date)",
            "expiry-time=\"20200101\"",
            false,
            "expired at 2020-01-01T00:00:00",
        ),
        (
            "expired (UTC)",
            "expiry-time=\"202001011230Z\"",
            false,
            "expired at 2020-01-01T12:30:00 UTC",
        ),
        (
            "expired among several",
            "expiry-time=\"20991231\",expiry-time=\"20200101120000UTC\"",
            false,
            "expired at 2020-01-01T12:00:00 UTC",
        ),
        (
            "expires in the future",
            "expiry-time=\"20991231\"",
            true,
            "",
        ),
        (
            "expires in the future (UTC)",
            "expiry-time=\"209912312359Z\"",
            true,
            "",
        ),
        (
            "cert-authority",
            "cert-authority",
            false,
            "option cert-authority is not supported",
        ),
        (
            "principals= without certificates",
            "principals=\"sshtest\"",
            false,
            "option principals is not supported",
        ),
        (
            "tunnel=",
            "tunnel=\"0\"",
            false,
            "option tunnel is not supported",
        ),
    ];
    let mut failures = Vec::new();
    for (label, options, logs_in, log_needle) in cases {
        let srv = OurServer::start_with(ServerOpts {
            authorized_keys: Some(format!("{options} {ed_pub}\n")),
            ..Default::default()
        });
        let out = srv.ssh_key(&keys.ed25519, "echo ok");
        let r = if logs_in {
            check_output(&out, b"ok\n", b"", 0)
        } else {
            check_denied(&out).and_then(|()| {
                let log = srv.daemon.log();
                if log.contains(log_needle) {
                    Ok(())
                } else {
                    Err(format!(
                        "the server log lacks {log_needle:?}: {}",
                        tail(&log, 2000)
                    ))
                }
            })
        };
        if let Err(e) = r {
            failures.push(format!("{label} ({options}): {e}"));
        }
    }
    report(
        "authorized_keys expiry/unsupported cases",
        cases.len(),
        failures,
    );
}

/// SHA-1 `ssh-rsa` user signatures are refused unless
/// `-o PubkeyAcceptedAlgorithms` adds them (OpenSSH 8.8+'s default): a
/// paramiko client forced to sign with ssh-rsa is refused by a default
/// server, and logs in once the list has `+ssh-rsa`, as does OpenSSH `ssh
/// -o PubkeyAcceptedAlgorithms=ssh-rsa`. The handler is told the algorithm.
#[test]
fn pubkey_accepted_algorithms_and_ssh_rsa() {
    require_python_module("paramiko");
    let keys = keys();
    let rsa = s(&["--key", &path_str(&keys.rsa), "--sig-alg", "ssh-rsa"]);
    let mut failures = Vec::new();

    let srv = OurServer::start();
    let out = python_client(
        "paramiko_client.py",
        &srv,
        USER,
        &rsa,
        "echo ok",
        Input::Null,
    );
    let log = srv.daemon.log();
    if out.status.code() != Some(255) || !out.stdout.is_empty() {
        failures.push(format!(
            "default server, paramiko ssh-rsa: expected a refusal, got {} and {}",
            describe_status(&out.status),
            show(&out.stdout, 200)
        ));
    }
    if !log.contains("signature algorithm ssh-rsa not in PubkeyAcceptedAlgorithms") {
        failures.push(format!(
            "default server: no log line for the refused ssh-rsa signature: {}",
            tail(&log, 2000)
        ));
    }
    let mut a = srv.key_args(&keys.rsa);
    a.extend(s(&["-o", "PubkeyAcceptedAlgorithms=ssh-rsa"]));
    let out = ssh(&a, "echo ok", Input::Null, &[], SHORT);
    if let Err(e) = check_denied(&out) {
        failures.push(format!("default server, ssh with ssh-rsa only: {e}"));
    }

    for list in ["+ssh-rsa", "ssh-rsa,ssh-ed25519", "^ssh-rsa"] {
        let srv = OurServer::start_with(ServerOpts::with_options(&[&format!(
            "PubkeyAcceptedAlgorithms={list}"
        )]));
        let out = python_client(
            "paramiko_client.py",
            &srv,
            USER,
            &rsa,
            "echo ok",
            Input::Null,
        );
        if let Err(e) = check_output(&out, b"ok\n", b"", 0) {
            failures.push(format!("{list}: paramiko ssh-rsa: {e}"));
        }
        let mut a = srv.key_args(&keys.rsa);
        a.extend(s(&["-o", "PubkeyAcceptedAlgorithms=ssh-rsa", "-vvv"]));
        let out = ssh(&a, "echo ok", Input::Null, &[], SHORT);
        let r = check_output(&out, b"ok\n", b"", 0)
            .or_else(|e| {
                // -vvv output on stderr: compare stdout and status only.
                if out.stdout == b"ok\n" && out.status.code() == Some(0) {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .and_then(|()| {
                if lossy(&out.stderr).contains("signing using ssh-rsa ") {
                    Ok(())
                } else {
                    Err("ssh did not sign with ssh-rsa".into())
                }
            });
        if let Err(e) = r {
            failures.push(format!("{list}: ssh with ssh-rsa only: {e}"));
        }
        let log = srv.daemon.log();
        if !log.contains("signature ssh-rsa) accepted for sshtest") {
            failures.push(format!(
                "{list}: the handler did not log the ssh-rsa algorithm: {}",
                tail(&log, 2000)
            ));
        }
    }

    // Without ed25519 in the list the ed25519 key is refused.
    let srv = OurServer::start_with(ServerOpts::with_options(&[
        "PubkeyAcceptedAlgorithms=-ssh-ed25519",
    ]));
    let out = srv.ssh_key(&keys.ed25519, "echo ok");
    if let Err(e) = check_denied(&out) {
        failures.push(format!("-ssh-ed25519, ed25519 key: {e}"));
    }

    // A name the server does not know is refused at startup, named.
    let out = run_prog(
        &server_bin(),
        &s(&["-p", "0", "-o", "PubkeyAcceptedAlgorithms=+ssh-bogus"]),
        Input::Null,
        &[],
        SHORT,
    );
    let err = lossy(&out.stderr);
    if out.status.success() || !err.contains("ssh-bogus") {
        failures.push(format!(
            "an unknown algorithm: expected a startup error naming it, got {}: {}",
            describe_status(&out.status),
            tail(&err, 1000)
        ));
    }
    report("PubkeyAcceptedAlgorithms cases", 9, failures);
}

/// Publickey requests with bad signatures count toward MaxAuthTries as in
/// sshd: a paramiko client sending them on one connection is disconnected
/// at the third with `-o MaxAuthTries=3`.
#[test]
fn bad_signatures_count_toward_max_auth_tries() {
    require_python_module("paramiko");
    let mut srv = OurServer::start_with(ServerOpts::with_options(&["MaxAuthTries=3"]));
    let args = s(&[
        "--bad-signature-key",
        &path_str(&keys().ed25519),
        "--attempts",
        "6",
    ]);
    let out = python_client("paramiko_client.py", &srv, USER, &args, "true", Input::Null);
    assert_eq!(
        lossy(&out.stdout),
        "attempt 1: failed\nattempt 2: failed\nattempt 3: disconnected\n",
        "{}; stderr {}",
        describe_status(&out.status),
        tail(&lossy(&out.stderr), 2000)
    );
    srv.assert_serving();
}

// ---------------------------------------------------------------------------
// scp, PuTTY, Dropbear, paramiko, AsyncSSH
// ---------------------------------------------------------------------------

/// `scp -O` (the legacy scp protocol over exec) up and down, 4 MiB each.
#[test]
fn scp_legacy_upload_and_download_4mib() {
    let srv = OurServer::start();
    let dir = writable_dir("scp");
    let mut a = s(&["-O", "-F", "/dev/null", "-P", &srv.port.to_string()]);
    a.extend(srv.openssh_options());
    a.extend(s(&[
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-i",
        &path_str(&keys().ed25519),
    ]));
    let scp = require_peer("scp");

    let up = pseudo_random_bytes(4 * MIB, 106);
    let local_up = dir.join("local-up.bin");
    std::fs::write(&local_up, &up).unwrap();
    let remote_up = dir.join("remote-up.bin");
    let mut args = a.clone();
    args.push(path_str(&local_up));
    args.push(format!("{USER}@127.0.0.1:{}", remote_up.display()));
    let out = run_prog(&scp, &args, Input::Null, &[], SHORT);
    assert_output(&out, b"", b"", 0);
    let got = std::fs::read(&remote_up).expect("the uploaded file");
    assert_eq!(
        sha256_hex(&got),
        sha256_hex(&up),
        "uploaded sha256 ({} bytes)",
        got.len()
    );

    let down = pseudo_random_bytes(4 * MIB, 107);
    let remote_down = dir.join("remote-down.bin");
    std::fs::write(&remote_down, &down).unwrap();
    std::fs::set_permissions(&remote_down, std::fs::Permissions::from_mode(0o644)).unwrap();
    let local_down = dir.join("local-down.bin");
    let mut args = a.clone();
    args.push(format!("{USER}@127.0.0.1:{}", remote_down.display()));
    args.push(path_str(&local_down));
    let out = run_prog(&scp, &args, Input::Null, &[], SHORT);
    assert_output(&out, b"", b"", 0);
    let got = std::fs::read(&local_down).expect("the downloaded file");
    assert_eq!(
        sha256_hex(&got),
        sha256_hex(&down),
        "downloaded sha256 ({} bytes)",
        got.len()
    );
}

/// PuTTY's plink with a password and with a .ppk key (converted from the
/// OpenSSH ed25519 key by puttygen); the host key pinned by `-hostkey`.
#[test]
fn plink_password_and_ppk_key() {
    let srv = OurServer::start();
    let plink = require_peer("plink");
    let dir = TempDir::new("plink");
    let ppk = dir.join("id_ed25519.ppk");
    let conv = Command::new(require_peer("puttygen"))
        .arg(&keys().ed25519)
        .args(["-O", "private", "-o"])
        .arg(&ppk)
        .stdin(Stdio::null())
        .output()
        .expect("run puttygen");
    assert!(
        conv.status.success(),
        "puttygen failed: {}",
        lossy(&conv.stderr)
    );
    let mut base = s(&["-batch", "-ssh", "-noagent", "-P", &srv.port.to_string()]);
    for fp in srv.fingerprints() {
        base.extend(s(&["-hostkey", &fp]));
    }
    let cases = [
        ("password", s(&["-pw", PASSWORD])),
        ("ppk key", s(&["-i", &path_str(&ppk)])),
    ];
    let mut failures = Vec::new();
    for (label, auth) in &cases {
        let mut a = base.clone();
        a.extend(auth.iter().cloned());
        a.push(format!("{USER}@127.0.0.1"));
        a.push("echo out; exit 5".into());
        let out = run_prog(&plink, &a, Input::Null, &[], SHORT);
        if out.stdout != b"out\n" || out.status.code() != Some(5) {
            failures.push(format!(
                "{label}: expected stdout \"out\\n\" and exit 5, got {} and {}; stderr {}",
                show(&out.stdout, 200),
                describe_status(&out.status),
                tail(&lossy(&out.stderr), 2000)
            ));
        }
    }
    report("plink cases", cases.len(), failures);
}

/// Dropbear's dbclient with a key (converted by dropbearconvert) and with
/// a password (DROPBEAR_PASSWORD); `-y` accepts the unknown host key.
#[test]
fn dropbear_dbclient_key_and_password() {
    let srv = OurServer::start();
    let dbclient = require_peer("dbclient");
    let dir = TempDir::new("dbclient");
    let db_key = dir.join("id_ed25519.db");
    let conv = Command::new(require_peer("dropbearconvert"))
        .args(["openssh", "dropbear"])
        .arg(&keys().ed25519)
        .arg(&db_key)
        .stdin(Stdio::null())
        .output()
        .expect("run dropbearconvert");
    assert!(
        conv.status.success(),
        "dropbearconvert failed: {}",
        lossy(&conv.stderr)
    );
    let fps = srv.fingerprints();
    let cases = [
        ("key", s(&["-i", &path_str(&db_key)]), vec![]),
        (
            "password",
            vec![],
            vec![("DROPBEAR_PASSWORD", PASSWORD.to_string())],
        ),
    ];
    let mut failures = Vec::new();
    for (label, auth, env) in &cases {
        // dbclient keeps known hosts in ~/.ssh/known_hosts: a fresh HOME.
        let home = TempDir::new("dbclient-home");
        std::fs::create_dir(home.join(".ssh")).unwrap();
        let mut env = env.clone();
        env.push(("HOME", path_str(home.path())));
        let mut a = s(&["-y", "-p", &srv.port.to_string()]);
        a.extend(auth.iter().cloned());
        a.push(format!("{USER}@127.0.0.1"));
        a.push(EXEC_CMD.into());
        let out = run_prog(&dbclient, &a, Input::Null, &env, SHORT);
        let r = check_exec_loose(&out).and_then(|()| {
            let err = lossy(&out.stderr);
            if fps.iter().any(|f| err.contains(f.as_str())) {
                Ok(())
            } else {
                Err(format!(
                    "dbclient did not report one of our host keys {fps:?}: {}",
                    tail(&err, 2000)
                ))
            }
        });
        if let Err(e) = r {
            failures.push(format!("{label}: {e}"));
        }
    }
    report("dbclient cases", cases.len(), failures);
}

/// `python3 tests/peers/SCRIPT 127.0.0.1 PORT USER KNOWN_HOSTS AUTH... CMD`.
fn python_client(
    script: &str,
    srv: &OurServer,
    user: &str,
    auth: &[String],
    cmd: &str,
    input: Input<'_>,
) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(script);
    assert!(script.exists(), "{} is missing", script.display());
    let mut a = vec![
        "-u".to_string(),
        path_str(&script),
        "127.0.0.1".into(),
        srv.port.to_string(),
        user.into(),
        path_str(&srv.known_hosts),
    ];
    a.extend(auth.iter().cloned());
    a.push(cmd.into());
    run_prog(&python(), &a, input, &[], SHORT)
}

/// Password, keyboard-interactive, ed25519/ecdsa/rsa keys, a wrong
/// password, stdin, and an exit-signal (AsyncSSH reports it).
fn python_client_cases(module: &str, script: &str) {
    require_python_module(module);
    let mut srv = OurServer::start();
    let keys = keys();
    let key = |k: &Path| s(&["--key", &path_str(k)]);
    let mut failures = Vec::new();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("password", s(&["--password", PASSWORD])),
        ("keyboard-interactive", s(&["--kbdint", PASSWORD])),
        ("ed25519 key", key(&keys.ed25519)),
        ("ecdsa key", key(&keys.ecdsa)),
        ("rsa key", key(&keys.rsa)),
    ];
    for (label, auth) in &cases {
        let out = python_client(script, &srv, USER, auth, EXEC_CMD, Input::Null);
        if let Err(e) = check_exec_loose(&out) {
            failures.push(format!("{label}: {e}"));
        }
    }
    let out = python_client(
        script,
        &srv,
        USER,
        &s(&["--kbdint", PASSWORD]),
        "true",
        Input::Null,
    );
    let err = lossy(&out.stderr);
    let prompts: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("kbdint prompt: "))
        .collect();
    if prompts != ["Password: "] {
        failures.push(format!(
            "keyboard-interactive: expected one prompt \"Password: \", got {prompts:?}"
        ));
    }
    let out = python_client(
        script,
        &srv,
        USER,
        &s(&["--password", "not-the-password"]),
        "echo should-not-run",
        Input::Null,
    );
    if out.status.code() != Some(255) || !out.stdout.is_empty() {
        failures.push(format!(
            "wrong password: expected exit 255 and no output, got {} and {}",
            describe_status(&out.status),
            show(&out.stdout, 200)
        ));
    }
    let data = pseudo_random_bytes(MIB, 108);
    let out = python_client(
        script,
        &srv,
        USER,
        &key(&keys.ed25519),
        "cat",
        Input::Bytes(&data),
    );
    if out.status.code() != Some(0) || sha256_hex(&out.stdout) != sha256_hex(&data) {
        failures.push(format!(
            "1 MiB through cat: {}, {} bytes back (sha256 equal: {}); stderr {}",
            describe_status(&out.status),
            out.stdout.len(),
            sha256_hex(&out.stdout) == sha256_hex(&data),
            tail(&lossy(&out.stderr), 2000)
        ));
    }
    let out = python_client(
        script,
        &srv,
        USER,
        &key(&keys.ed25519),
        "echo before; kill -TERM $$",
        Input::Null,
    );
    let err = lossy(&out.stderr);
    let signal_ok = module != "asyncssh" || err.contains("killed by signal TERM");
    if out.stdout != b"before\n" || out.status.code() != Some(255) || !signal_ok {
        failures.push(format!(
            "exit-signal: expected stdout \"before\\n\", exit 255{}; got {} and {}; stderr {}",
            if module == "asyncssh" {
                " and signal TERM reported"
            } else {
                ""
            },
            show(&out.stdout, 200),
            describe_status(&out.status),
            tail(&err, 2000)
        ));
    }
    if let Err(e) = srv.check_serving() {
        failures.push(e);
    }
    report(&format!("{module} cases"), cases.len() + 5, failures);
}

#[test]
fn paramiko_client_auth_methods_and_exec() {
    python_client_cases("paramiko", "paramiko_client.py");
}

#[test]
fn asyncssh_client_auth_methods_and_exec() {
    python_client_cases("asyncssh", "asyncssh_client.py");
}

/// mlkem768x25519-sha256 (which OpenSSH 9.2 lacks) with an AsyncSSH
/// client: the exec works and the server's log names the kex.
#[test]
fn asyncssh_client_mlkem768x25519() {
    require_python_module("asyncssh");
    let srv = OurServer::start();
    let kex = "mlkem768x25519-sha256";
    let mut auth = s(&["--password", PASSWORD, "--kex", kex]);
    auth.insert(0, "--timeout".into());
    auth.insert(1, "30".into());
    let out = python_client(
        "asyncssh_client.py",
        &srv,
        USER,
        &auth,
        EXEC_CMD,
        Input::Null,
    );
    check_exec_loose(&out).unwrap();
    let log = srv.daemon.log();
    assert!(
        log.contains(&format!("kex {kex} ")),
        "the server log does not show kex {kex}:\n{}",
        tail(&log, 3000)
    );
}

/// Server `-o MaxSessions=2`: on one AsyncSSH connection a third session is
/// refused while two are open; two at once are fine.
#[test]
fn max_sessions_refuses_extra_channel() {
    require_python_module("asyncssh");
    let mut srv = OurServer::start_with(ServerOpts::with_options(&["MaxSessions=2"]));
    let key = path_str(&keys().ed25519);
    let mut failures = Vec::new();
    for (n, want_ok, want_refused) in [(3, 2, 1), (2, 2, 0)] {
        let args = s(&["--key", &key, "--sessions", &n.to_string()]);
        let out = python_client(
            "asyncssh_client.py",
            &srv,
            USER,
            &args,
            "sleep 1; exit 4",
            Input::Null,
        );
        let text = lossy(&out.stdout);
        let ok = text.lines().filter(|l| l.ends_with(": exit 4")).count();
        let refused = text.lines().filter(|l| l.contains(": refused: ")).count();
        if out.status.code() != Some(0) || (ok, refused) != (want_ok, want_refused) {
            failures.push(format!(
                "{n} sessions: expected {want_ok} run and {want_refused} refused, got {}: {text:?}; stderr {}",
                describe_status(&out.status),
                tail(&lossy(&out.stderr), 2000)
            ));
        }
    }
    if let Err(e) = srv.check_serving() {
        failures.push(e);
    }
    report("MaxSessions cases", 3, failures);
}

/// Without `-v` the server writes one line per connection on stderr.
#[test]
fn quiet_log_has_one_line_per_connection() {
    let srv = OurServer::start_with(ServerOpts {
        verbose: false,
        ..Default::default()
    });
    let log = srv.daemon.log();
    let mark = listening_pos(&log, srv.port).expect("listening line")
        + format!("listening on 127.0.0.1:{}", srv.port).len();
    let a = srv.key_args(&keys().ed25519);
    for _ in 0..3 {
        let out = ssh(&a, "true", Input::Null, &[], SHORT);
        assert_output(&out, b"", b"", 0);
    }
    let count = |t: &str| t.lines().filter(|l| !l.trim().is_empty()).count();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = srv.daemon.log_since(mark);
    while count(&after) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        after = srv.daemon.log_since(mark);
    }
    // Give a fourth (unexpected) line a moment to show up.
    std::thread::sleep(Duration::from_millis(200));
    after = srv.daemon.log_since(mark);
    assert_eq!(
        count(&after),
        3,
        "expected one line per connection (3) after the listening line, got:\n{after}"
    );
}

// ---------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------

/// 50 OpenSSH clients at once, each sending its own 1 MiB through `cat`.
#[test]
fn fifty_concurrent_openssh_clients() {
    const N: usize = 50;
    let srv = OurServer::start_with(ServerOpts {
        options: s(&["MaxStartups=100"]),
        verbose: false,
        ..Default::default()
    });
    let args = srv.key_args(&keys().ed25519);
    let started = Instant::now();
    let results: Vec<Result<(), String>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let args = &args;
                sc.spawn(move || {
                    let data = pseudo_random_bytes(MIB, 1000 + i as u64);
                    check_cat_roundtrip(args, &data, BULK).map(|_| ())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|e| Err(format!("client thread panicked: {e:?}")))
            })
            .collect()
    });
    if verbose() {
        eprintln!("{N} clients: {:.2}s", started.elapsed().as_secs_f64());
    }
    let failures: Vec<String> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| r.err().map(|e| format!("client {i}: {e}")))
        .collect();
    report("concurrent clients", N, failures);
}

// ---------------------------------------------------------------------------
// Refusals and misbehaving clients: the server closes that connection and
// keeps serving others
// ---------------------------------------------------------------------------

#[test]
fn refuse_wrong_password() {
    let mut srv = OurServer::start();
    let askpass = askpass_script("not-the-password");
    let out = ssh(
        &srv.password_args(),
        "echo should-not-run",
        Input::Null,
        &askpass_env(&askpass),
        SHORT,
    );
    check_denied(&out).unwrap();
    srv.assert_serving();
}

#[test]
fn refuse_unknown_key() {
    let mut srv = OurServer::start();
    let dir = TempDir::new("unknown-key");
    let k = dir.join("id_unknown");
    generate_key(&k, &["-t", "ed25519"], "", "unknown");
    let out = srv.ssh_key(&k, "echo should-not-run");
    check_denied(&out).unwrap();
    srv.assert_serving();
}

/// Server `-o MaxAuthTries=2`, a client offering 5 unauthorized keys: the
/// server ends the connection before all of them were tried.
#[test]
fn refuse_too_many_auth_attempts() {
    let mut srv = OurServer::start_with(ServerOpts::with_options(&["MaxAuthTries=2"]));
    let dir = TempDir::new("many-keys");
    let mut a = srv.ssh_base();
    a.extend(s(&[
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "PasswordAuthentication=no",
        "-o",
        "KbdInteractiveAuthentication=no",
        "-v",
    ]));
    for i in 0..5 {
        let k = dir.join(format!("id_{i}"));
        generate_key(&k, &["-t", "ed25519"], "", &format!("unauthorized-{i}"));
        a.extend(s(&["-i", &path_str(&k)]));
    }
    let out = ssh(&a, "echo should-not-run", Input::Null, &[], SHORT);
    let err = lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "stderr: {}", tail(&err, 4000));
    assert!(
        err.contains("Too many authentication failures") || err.contains("Permission denied"),
        "stderr: {}",
        tail(&err, 4000)
    );
    let offered = err.matches("Offering public key:").count();
    assert!(
        offered <= 3,
        "MaxAuthTries=2, yet ssh offered {offered} keys: {}",
        tail(&err, 4000)
    );
    srv.assert_serving();
}

/// When MaxAuthTries runs out, OpenSSH `ssh` reports our disconnect exactly
/// as it reports sshd's (`Received disconnect from ... port N:2: Too many
/// authentication failures`): same reason code, same text.
#[test]
fn max_auth_tries_disconnect_reads_as_from_sshd() {
    let dir = TempDir::new("max-tries-keys");
    let mut key_args = s(&[
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "PasswordAuthentication=no",
        "-o",
        "KbdInteractiveAuthentication=no",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
    ]);
    for i in 0..4 {
        let k = dir.join(format!("id_{i}"));
        generate_key(&k, &["-t", "ed25519"], "", &format!("unauthorized-{i}"));
        key_args.extend(s(&["-i", &path_str(&k)]));
    }
    let disconnect_line = |out: &Output| -> String {
        let err = lossy(&out.stderr);
        err.lines()
            .find(|l| l.starts_with("Received disconnect from 127.0.0.1 port "))
            .map(|l| {
                // Drop the port number: "...port N:CODE: TEXT" -> ":CODE: TEXT".
                let rest = &l["Received disconnect from 127.0.0.1 port ".len()..];
                rest.trim_start_matches(|c: char| c.is_ascii_digit())
                    .to_string()
            })
            .unwrap_or_else(|| format!("no disconnect line in {}", tail(&err, 2000)))
    };
    let sshd = Sshd::start_with(SshdOptions {
        extra: s(&["MaxAuthTries 2"]),
        ..Default::default()
    });
    let mut a = sshd.target().base_args();
    a.extend(key_args.clone());
    let theirs = disconnect_line(&ssh(&a, "true", Input::Null, &[], SHORT));
    let srv = OurServer::start_with(ServerOpts::with_options(&["MaxAuthTries=2"]));
    let mut a = srv.ssh_base();
    a.extend(key_args);
    let ours = disconnect_line(&ssh(&a, "true", Input::Null, &[], SHORT));
    assert_eq!(theirs, ":2: Too many authentication failures");
    assert_eq!(ours, theirs);
}

/// Reads until EOF; `Err` if nothing closes the connection within
/// `timeout`. A reset counts as closed.
fn read_until_eof(sock: &mut TcpStream, timeout: Duration) -> Result<Vec<u8>, String> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "the server did not close the connection within {timeout:?} (received {} bytes)",
                got.len()
            ));
        }
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok(got)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Server `-o LoginGraceTime=2`: a client that sends its version line and
/// then nothing is disconnected after about 2 s.
#[test]
fn login_grace_time_closes_idle_connection() {
    let mut srv = OurServer::start_with(ServerOpts::with_options(&["LoginGraceTime=2"]));
    let mut sock = connect(srv.port);
    let started = Instant::now();
    sock.write_all(b"SSH-2.0-sshlib_grace_test\r\n").unwrap();
    let got = read_until_eof(&mut sock, Duration::from_secs(10)).unwrap();
    let took = started.elapsed();
    assert!(
        got.starts_with(b"SSH-2.0-"),
        "the server should have sent its version line first: {}",
        show(&got, 200)
    );
    assert!(
        took >= Duration::from_millis(1500),
        "closed after {took:?}, before the 2 s grace time"
    );
    assert!(took <= Duration::from_secs(8), "closed only after {took:?}");
    srv.assert_serving();
}

/// Garbage instead of SSH: the server closes that connection (within 10
/// s), does not crash, and serves the next one.
#[test]
fn garbage_from_client_closes_connection() {
    let mut srv = OurServer::start();
    let mut random_after_version = b"SSH-2.0-sshlib_garbage\r\n".to_vec();
    random_after_version.extend(pseudo_random_bytes(64 * 1024, 109));
    let mut huge_packet = b"SSH-2.0-sshlib_garbage\r\n".to_vec();
    huge_packet.extend_from_slice(&[0xff, 0xff, 0xff, 0xf0]);
    huge_packet.extend(pseudo_random_bytes(4096, 110));
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "random bytes instead of a version line",
            pseudo_random_bytes(64 * 1024, 111),
        ),
        (
            "HTTP request",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        ("version line then random bytes", random_after_version),
        ("version line then a 4 GiB packet length", huge_packet),
    ];
    let mut failures = Vec::new();
    for (label, payload) in &cases {
        let mut sock = connect(srv.port);
        // The server may close before reading everything: ignore errors.
        let _ = sock.write_all(payload);
        if let Err(e) = read_until_eof(&mut sock, Duration::from_secs(10)) {
            failures.push(format!("{label}: {e}"));
        }
        if let Err(e) = srv.check_serving() {
            failures.push(format!("after {label}: {e}"));
        }
    }
    report("garbage cases", cases.len(), failures);
}

/// Server `-o MaxStartups=2`: with two unauthenticated connections open a
/// third client is refused; once they are closed clients are served again.
#[test]
fn max_startups_refuses_extra_unauthenticated() {
    let mut srv = OurServer::start_with(ServerOpts::with_options(&[
        "MaxStartups=2",
        "LoginGraceTime=60",
    ]));
    // Two connections the server has taken on (its version line came).
    let addr = ([127, 0, 0, 1], srv.port).into();
    let idle: Vec<_> = (0..2).map(|_| idle_socket(addr, true)).collect();
    let out = srv.ssh_key(&keys().ed25519, "echo should-not-run");
    assert_eq!(
        out.status.code(),
        Some(255),
        "a third unauthenticated connection was served: stdout {}, stderr {}",
        show(&out.stdout, 200),
        lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "stdout {}", show(&out.stdout, 200));
    drop(idle);
    // The server needs a moment to notice the closed connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match srv.check_serving() {
            Ok(()) => break,
            Err(e) if Instant::now() >= deadline => {
                panic!("not serving 10 s after the idle connections closed: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Reads byte by byte up to and including a newline (at most 1024 bytes;
/// less on EOF, an error or the read timeout).
fn read_line(sock: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\n") && got.len() < 1024 {
        match sock.read(&mut b) {
            Ok(1) => got.push(b[0]),
            _ => break,
        }
    }
    got
}

/// Opens a socket to the server that sends nothing (or only a version
/// line), and waits for the server's version line (so the server has taken
/// it on).
fn idle_socket(addr: std::net::SocketAddr, version: bool) -> TcpStream {
    let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    if version {
        sock.write_all(b"SSH-2.0-sshlib_idle\r\n").unwrap();
    }
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let got = read_line(&mut sock);
    assert!(
        got.starts_with(b"SSH-2.0-"),
        "no version line on an idle connection: {}",
        show(&got, 200)
    );
    sock
}

/// Server `-o MaxStartups=2:50:10` with two sockets from an attacker
/// holding the two unauthenticated slots (a version line, then nothing): real `ssh`
/// clients still get in, about half of them (sshd's random early drop at
/// `start`: 50%), and the refused ones are told "Exceeded MaxStartups".
#[test]
fn max_startups_random_early_drop_lets_clients_in() {
    let mut srv = OurServer::start_with(ServerOpts::with_options(&[
        "MaxStartups=2:50:10",
        "LoginGraceTime=120",
    ]));
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], srv.port).into();
    let idle: Vec<_> = (0..2).map(|_| idle_socket(addr, true)).collect();
    let mark = srv.daemon.log_len();
    let tries = 24;
    let mut got_in = 0;
    for _ in 0..tries {
        let out = srv.ssh_key(&keys().ed25519, "echo in");
        if out.status.code() == Some(0) {
            assert_eq!(out.stdout, b"in\n");
            got_in += 1;
        } else {
            assert_eq!(
                out.status.code(),
                Some(255),
                "stdout {} stderr {}",
                show(&out.stdout, 200),
                lossy(&out.stderr)
            );
        }
    }
    // Binomial(24, 0.5): fewer than 5 or none refused is a 1 in 1000 event.
    assert!(
        (5..tries).contains(&got_in),
        "{got_in} of {tries} clients got in past two idle sockets at MaxStartups 2:50:10"
    );
    let log = srv.daemon.log_since(mark);
    assert!(
        log.contains("beginning MaxStartups throttling")
            && log.contains("drop connection #2 from [127.0.0.1]:"),
        "no drop logged: {log}"
    );
    // A raw refused connection reads sshd's notice, then EOF.
    let notice = loop {
        let mut sock = connect(srv.port);
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let got = read_line(&mut sock);
        if !got.starts_with(b"SSH-2.0-") {
            // Refused: nothing follows the notice.
            assert_eq!(
                read_until_eof(&mut sock, Duration::from_secs(10)).unwrap(),
                b""
            );
            break got;
        }
    };
    assert_eq!(notice, b"Exceeded MaxStartups\r\n");
    drop(idle);
    srv.assert_serving();
}

/// Server `-o PerSourceMaxStartups=2` listening on IPv6 and IPv4: two idle
/// sockets from 127.0.0.1 fill that source; a third connection from it is
/// refused while `ssh` over ::1 still gets in.
#[test]
fn per_source_max_startups_refuses_one_source_only() {
    let mut srv = OurServer::start_with(ServerOpts {
        bind: "[::]",
        ..ServerOpts::with_options(&["PerSourceMaxStartups=2", "PerSourceNetBlockSize=32:128"])
    });
    let v4: std::net::SocketAddr = ([127, 0, 0, 1], srv.port).into();
    let idle: Vec<_> = (0..2).map(|_| idle_socket(v4, false)).collect();
    let out = srv.ssh_key(&keys().ed25519, "echo in");
    assert_eq!(
        out.status.code(),
        Some(255),
        "a third connection from 127.0.0.1 was served: {}",
        lossy(&out.stderr)
    );
    let mut sock = connect(srv.port);
    let got = read_until_eof(&mut sock, Duration::from_secs(10)).unwrap();
    assert_eq!(got, b"Exceeded MaxStartups\r\n");
    let mut a = srv.key_args(&keys().ed25519);
    // The known_hosts lines name [127.0.0.1]:PORT.
    let alias = format!("HostKeyAlias=[127.0.0.1]:{}", srv.port);
    a.extend(s(&["-o", &alias, &format!("{USER}@::1"), "echo v6"]));
    let out = run_prog(&require_peer("ssh"), &a, Input::Null, &[], SHORT);
    assert_output(&out, b"v6\n", b"", 0);
    drop(idle);
    srv.assert_serving();
}

/// Server `-o MaxStartups=2 -o IdentificationTimeout=2`: sockets that never
/// send a version line are closed after about 2 s (not the 120 s grace
/// time), and the slots they held are free again.
#[test]
fn identification_timeout_closes_silent_sockets() {
    let mut srv = OurServer::start_with(ServerOpts::with_options(&[
        "MaxStartups=2",
        "IdentificationTimeout=2",
    ]));
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], srv.port).into();
    let started = Instant::now();
    let mut idle: Vec<_> = (0..2).map(|_| idle_socket(addr, false)).collect();
    for sock in &mut idle {
        read_until_eof(sock, Duration::from_secs(15)).unwrap();
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(10),
        "silent sockets closed after {took:?}"
    );
    srv.assert_serving();
}

/// Malformed admission options are refused at start, naming the option.
#[test]
fn admission_options_refuse_malformed_values() {
    for (opt, name) in [
        ("MaxStartups=10:0:100", "MaxStartups"),
        ("MaxStartups=20:30:10", "MaxStartups"),
        ("MaxStartups=ten", "MaxStartups"),
        ("PerSourceMaxStartups=0", "PerSourceMaxStartups"),
        ("PerSourceMaxStartups=lots", "PerSourceMaxStartups"),
        ("PerSourceNetBlockSize=33:128", "PerSourceNetBlockSize"),
        ("PerSourceNetBlockSize=32:129", "PerSourceNetBlockSize"),
        ("IdentificationTimeout=soon", "IdentificationTimeout"),
    ] {
        let a = s(&["-b", "127.0.0.1", "-p", "0", "-o", opt]);
        let out = run_prog(&server_bin(), &a, Input::Null, &[], SHORT);
        assert!(
            !out.status.success() && lossy(&out.stderr).contains(name),
            "-o {opt}: {} stderr {}",
            describe_status(&out.status),
            lossy(&out.stderr)
        );
    }
}

/// SIGTERM: the server stops accepting, lets the live session finish, then
/// exits.
#[test]
fn sigterm_finishes_live_sessions_then_exits() {
    let mut srv = OurServer::start();
    let dir = writable_dir("sigterm");
    let mark = dir.join("started");
    let args = srv.key_args(&keys().ed25519);
    let cmd = format!("touch {}; sleep 3; echo done", mark.display());
    let session = std::thread::spawn(move || ssh(&args, &cmd, Input::Null, &[], SHORT));
    let deadline = Instant::now() + Duration::from_secs(15);
    while !mark.exists() {
        assert!(
            Instant::now() < deadline,
            "the session's command did not start within 15 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling the server process we started (not its group).
    unsafe { libc::kill(srv.daemon.pid() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(500));
    // No new connections: refused, or accepted by the kernel but never
    // greeted by the server.
    if let Ok(mut sock) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], srv.port).into(), Duration::from_secs(2))
    {
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 64];
        if let Ok(n) = sock.read(&mut buf) {
            assert!(
                !buf[..n].starts_with(b"SSH-"),
                "the server still greets new connections after SIGTERM"
            );
        }
    }
    assert!(
        srv.alive(),
        "the server exited before its live session ended; output:\n{}",
        srv.daemon.log()
    );
    let out = session.join().expect("session thread");
    assert_output(&out, b"done\n", b"", 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = srv.daemon.try_status() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit within 10 s after its last session ended; output:\n{}",
            srv.daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    if verbose() {
        eprintln!("server exit after SIGTERM: {}", describe_status(&status));
    }
}

/// The server's children (direct ones: shells and commands it spawned).
fn children_of(pid: u32) -> Vec<(u32, char, String)> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head.split_once('(').map(|x| x.1).unwrap_or("").to_string();
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[1].parse::<u32>().ok() == Some(pid) {
            v.push((p, f[0].chars().next().unwrap_or('?'), name));
        }
    }
    v
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A client that vanishes mid-command (plain exec and a pty shell): the
/// server hangs up the command, reaps it (no zombie) and its descriptor
/// count returns to where it was.
#[test]
fn vanished_client_leaves_no_process_zombie_or_fd() {
    let mut srv = OurServer::start();
    let pid = srv.daemon.pid();
    // One finished session first, so lazily opened descriptors are counted.
    let out = srv.ssh_key(&keys().ed25519, "true");
    assert_output(&out, b"", b"", 0);
    std::thread::sleep(Duration::from_millis(300));
    let fds_before = fd_count(pid);
    let mut clients = Vec::new();
    for tty in [false, true] {
        let mut a = srv.key_args(&keys().ed25519);
        if tty {
            a.insert(0, "-tt".into());
        }
        let mut cmd = Command::new(require_peer("ssh"));
        cmd.args(&a)
            .arg(format!("{USER}@127.0.0.1"))
            .arg("sleep 1000")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        clients.push(cmd.spawn().expect("ssh"));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while children_of(pid).iter().filter(|c| c.1 != 'Z').count() < 2 {
        assert!(
            Instant::now() < deadline,
            "the two commands did not start: {:?}",
            children_of(pid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for mut c in clients {
        let _ = c.kill();
        let _ = c.wait();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = children_of(pid);
        let fds = fd_count(pid);
        if kids.is_empty() && fds <= fds_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "10 s after the clients vanished: children {kids:?}, {fds} descriptors (before: {fds_before})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    srv.assert_serving();
}

/// Our blocking client drives what OpenSSH's `ssh` cannot: a pty shell
/// whose window changes mid-session, and a `signal` request that kills
/// the command (reported back as exit-signal).
#[test]
fn window_change_and_signal_requests() {
    use ssh_blocking::{Client, HostKeyCheck};
    let srv = OurServer::start();
    let c = Client::connect(
        ("127.0.0.1", srv.port),
        HostKeyCheck::KnownHostsFile(srv.known_hosts.clone()),
    )
    .expect("connect");
    c.auth_key_file(USER, &keys().ed25519, None).expect("auth");

    let ch = c.channel_session().unwrap();
    ch.request_pty("xterm", 80, 24, &[]).unwrap();
    ch.shell().unwrap();
    let read_until = |needle: &str| -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(&got).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in {:?}",
                String::from_utf8_lossy(&got)
            );
            let n = (&ch).read(&mut buf).unwrap();
            assert!(
                n > 0,
                "shell ended early: {:?}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    };
    (&ch)
        .write_all(b"echo size-$(stty size | tr ' ' x)-end\n")
        .unwrap();
    read_until("size-24x80-end");
    ch.window_change(132, 40).unwrap();
    (&ch)
        .write_all(b"echo size-$(stty size | tr ' ' x)-end\n")
        .unwrap();
    read_until("size-40x132-end");
    (&ch).write_all(b"exit 4\n").unwrap();
    assert_eq!(ch.exit_status().unwrap(), Some(4));

    let ch = c.channel_session().unwrap();
    ch.exec("echo started; exec sleep 100").unwrap();
    let mut buf = [0u8; 64];
    let n = (&ch).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"started\n");
    ch.signal("TERM").unwrap();
    let t0 = Instant::now();
    assert_eq!(ch.exit_status().unwrap(), None);
    let sig = ch
        .exit_signal()
        .expect("exit-signal after a TERM signal request");
    assert_eq!(sig.signal, "TERM");
    assert!(t0.elapsed() < Duration::from_secs(10));
}

// ---------------------------------------------------------------------------
// Identity: who logs in, and as whom the sessions run
// ---------------------------------------------------------------------------

/// Users the identity tests create (and leave): two ordinary ones, one
/// with the nologin shell, one with a locked password.
const ALICE: &str = "sshlib-alice";
const BOB: &str = "sshlib-bob";
const NOLOGIN: &str = "sshlib-nologin";
const LOCKED: &str = "sshlib-locked";
const ALICE_PW: &str = "alice-Pw-4711";

/// `user`'s ed25519 key (made once, kept in `/tmp/sshlib-tests/identity-keys`
/// so every test process uses the same one) and `~user/.ssh/authorized_keys`
/// listing it.
fn identity_user(name: &str, shell: &str, password: Option<&str>) -> (TestUser, PathBuf) {
    let user = ensure_local_user(name, shell, password);
    with_lock("identity-keys", || {
        let dir = Path::new("/tmp/sshlib-tests/identity-keys").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = dir.join("id_ed25519");
        if !key.exists() || !pub_of(&key).exists() {
            generate_key(&key, &["-t", "ed25519"], "", &format!("{name}-key"));
        }
        let path = user.home.join(".ssh/authorized_keys");
        let tmp = user
            .home
            .join(format!(".ssh/authorized_keys.tmp{}", std::process::id()));
        std::fs::write(&tmp, format!("{}\n", public_key_line(&pub_of(&key)))).unwrap();
        std::os::unix::fs::chown(&tmp, Some(user.uid), Some(user.gid)).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        (user, key)
    })
}

/// `ssh -i KEY USER@ CMD` against `srv`.
fn ssh_key_as(srv: &OurServer, user: &str, key: &Path, cmd: &str) -> Output {
    ssh_as(user, &srv.key_args(key), cmd, Input::Null, &[], SHORT)
}

/// Started as root with no `--authorized-keys`/`--password-file`, the
/// server lets system users in with the keys of their own
/// `~/.ssh/authorized_keys` (or their shadow password) and runs their
/// commands and SFTP as them: `id -u`, `whoami`, `$HOME`, `pwd` and the
/// owner of a file put over SFTP are theirs, and chown to root over SFTP
/// fails. Users with the nologin shell or a locked password, unknown
/// users, and a user name with another user's key are refused, each with
/// a log line.
#[test]
fn root_server_runs_sessions_as_the_system_user() {
    let (alice, alice_key) = identity_user(ALICE, "/bin/sh", Some(ALICE_PW));
    let (bob, bob_key) = identity_user(BOB, "/bin/bash", Some("bob-Pw-0815"));
    let (_, nologin_key) = identity_user(NOLOGIN, "/usr/sbin/nologin", Some("nologin-Pw-1"));
    let (_, locked_key) = identity_user(LOCKED, "/bin/sh", None);
    let srv = OurServer::start_with(ServerOpts {
        system_auth: true,
        ..Default::default()
    });
    let mut failures = Vec::new();
    let script = "id -u; whoami; echo $HOME; pwd; echo $SHELL";
    for (u, key, shell) in [
        (&alice, &alice_key, "/bin/sh"),
        (&bob, &bob_key, "/bin/bash"),
    ] {
        let out = ssh_key_as(&srv, &u.name, key, script);
        let want = format!(
            "{}\n{}\n{}\n{}\n{shell}\n",
            u.uid,
            u.name,
            u.home.display(),
            u.home.display()
        );
        if let Err(e) = check_output(&out, want.as_bytes(), b"", 0) {
            failures.push(format!("{} with its key: {e}", u.name));
        }
    }

    // A pty session: its terminal belongs to the user.
    let mut a = srv.key_args(&alice_key);
    a.push("-tt".into());
    let out = ssh_as(ALICE, &a, "stat -c %U $(tty)", Input::Null, &[], SHORT);
    if out.status.code() != Some(0) || lossy(&out.stdout).trim() != ALICE {
        failures.push(format!(
            "owner of the pty: {} {:?}, stderr {}",
            describe_status(&out.status),
            lossy(&out.stdout),
            lossy(&out.stderr)
        ));
    }

    // The shadow password ($6$ from chpasswd -c SHA512).
    let askpass = askpass_script(ALICE_PW);
    let out = ssh_as(
        ALICE,
        &srv.password_args(),
        "whoami",
        Input::Null,
        &askpass_env(&askpass),
        SHORT,
    );
    if let Err(e) = check_output(&out, format!("{ALICE}\n").as_bytes(), b"", 0) {
        failures.push(format!("{ALICE} with the shadow password: {e}"));
    }

    // SFTP (OpenSSH sftp -b) runs as alice, starting in her home.
    let dir = TempDir::new("identity-sftp");
    let local = dir.join("local.txt");
    std::fs::write(&local, "from sftp\n").unwrap();
    let name = format!("sftp-put-{}.txt", std::process::id());
    let remote = alice.home.join(&name);
    let _ = std::fs::remove_file(&remote);
    let sftp = |batch: &str| -> Output {
        let b = dir.join("batch");
        std::fs::write(&b, batch).unwrap();
        srv.sftp_batch(ALICE, &alice_key, &b)
    };
    let out = sftp(&format!("pwd\nput {} {name}\n", local.display()));
    let text = lossy(&out.stdout);
    if out.status.code() != Some(0) {
        failures.push(format!(
            "sftp put: {}; stdout {text:?} stderr {}",
            describe_status(&out.status),
            lossy(&out.stderr)
        ));
    } else if !text.contains(&format!(
        "Remote working directory: {}",
        alice.home.display()
    )) {
        failures.push(format!(
            "sftp does not start in {}: {text:?}",
            alice.home.display()
        ));
    }
    match std::fs::metadata(&remote) {
        Ok(m) => {
            use std::os::unix::fs::MetadataExt;
            if (m.uid(), m.gid()) != (alice.uid, alice.gid) {
                failures.push(format!(
                    "file put over SFTP owned by {}:{}, expected {}:{}",
                    m.uid(),
                    m.gid(),
                    alice.uid,
                    alice.gid
                ));
            }
            let out = sftp(&format!("chown 0 {name}\n"));
            let m = std::fs::metadata(&remote).unwrap();
            if out.status.success() || m.uid() != alice.uid {
                failures.push(format!(
                    "chown to root over SFTP: {}, owner now {}; stderr {}",
                    describe_status(&out.status),
                    m.uid(),
                    lossy(&out.stderr)
                ));
            }
        }
        Err(e) => failures.push(format!("{}: {e} after sftp put", remote.display())),
    }
    let _ = std::fs::remove_file(&remote);

    // Refusals, each with its log line.
    let refusals: [(&str, &Path, String); 5] = [
        (
            NOLOGIN,
            &nologin_key,
            format!("User {NOLOGIN} from 127.0.0.1"),
        ),
        (LOCKED, &locked_key, format!("User {LOCKED} from 127.0.0.1")),
        (BOB, &alice_key, String::new()),
        (
            "sshlib-nosuchuser",
            &alice_key,
            "Invalid user sshlib-nosuchuser from 127.0.0.1".to_string(),
        ),
        ("root", &alice_key, String::new()),
    ];
    let why = [
        "not allowed because shell /usr/sbin/nologin",
        "not allowed because account is locked",
        "",
        "",
        "",
    ];
    for ((user, key, line), why) in refusals.iter().zip(why) {
        let mark = srv.daemon.log_len();
        let out = ssh_key_as(&srv, user, key, "echo should-not-run");
        if let Err(e) = check_denied(&out) {
            failures.push(format!("{user} with key {}: {e}", key.display()));
        }
        if !line.is_empty() {
            let log = srv
                .daemon
                .wait_log(mark, &[line, why], Duration::from_secs(5));
            if !log.contains(line.as_str()) || !log.contains(why) {
                failures.push(format!(
                    "no log line {line:?} ... {why:?} for {user}: {log}"
                ));
            }
        }
    }
    // A user name with a newline cannot forge a log line.
    {
        use ssh_blocking::{Client, HostKeyCheck};
        let mark = srv.daemon.log_len();
        let c = Client::connect(
            ("127.0.0.1", srv.port),
            HostKeyCheck::KnownHostsFile(srv.known_hosts.clone()),
        )
        .expect("connect");
        let r = c.auth_password("nosuch\nforged-line", "pw");
        let log = srv
            .daemon
            .wait_log(mark, &["Invalid user nosuch"], Duration::from_secs(5));
        if r.is_ok()
            || !log.contains("Invalid user nosuch\\nforged-line from")
            // The server's own lines (the "auth attempt" debug line of the
            // ssh-blocking adapter still prints the raw name).
            || log
                .lines()
                .any(|l| l == "forged-line" || l.starts_with("forged-line from"))
        {
            failures.push(format!("user name with a newline: {r:?}, log {log:?}"));
        }
    }
    report("identity checks", 11, failures);
}

/// Started as an ordinary user, the server serves that user (its own
/// `~/.ssh/authorized_keys`, commands as that user) and refuses any other
/// user name with a log line.
#[test]
fn unprivileged_server_serves_only_its_own_user() {
    let (alice, alice_key) = identity_user(ALICE, "/bin/sh", Some(ALICE_PW));
    let (_, bob_key) = identity_user(BOB, "/bin/bash", Some("bob-Pw-0815"));
    let srv = OurServer::start_with(ServerOpts {
        system_auth: true,
        run_as: Some(alice.clone()),
        ..Default::default()
    });
    let out = ssh_key_as(&srv, ALICE, &alice_key, "id -u; whoami; pwd");
    check_output(
        &out,
        format!("{}\n{ALICE}\n{}\n", alice.uid, alice.home.display()).as_bytes(),
        b"",
        0,
    )
    .unwrap();
    // SFTP (in the server's process) starts in the home, files are alice's.
    let dir = TempDir::new("unprivileged-sftp");
    let batch = dir.join("batch");
    let local = dir.join("local.txt");
    std::fs::write(&local, "x\n").unwrap();
    let name = format!("unprivileged-put-{}.txt", std::process::id());
    std::fs::write(&batch, format!("pwd\nput {} {name}\n", local.display())).unwrap();
    let out = srv.sftp_batch(ALICE, &alice_key, &batch);
    let text = lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains(&format!(
                "Remote working directory: {}",
                alice.home.display()
            )),
        "sftp: {}; stdout {text:?}; stderr {}",
        describe_status(&out.status),
        lossy(&out.stderr)
    );
    let put = alice.home.join(&name);
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&put).unwrap());
    let _ = std::fs::remove_file(&put);
    assert_eq!(owner, alice.uid, "owner of the file put over SFTP");

    let mark = srv.daemon.log_len();
    let out = ssh_key_as(&srv, BOB, &bob_key, "echo should-not-run");
    check_denied(&out).unwrap();
    let needle = format!("refused user {BOB} from 127.0.0.1");
    let log = srv
        .daemon
        .wait_log(mark, &[&needle, "serves only"], Duration::from_secs(5));
    assert!(
        log.contains(&needle) && log.contains("serves only"),
        "no log line {needle:?}: {log}"
    );
}

/// `--authorized-keys FILE` and `--password-file FILE` keep their meaning
/// (one file for every user) as root, and the session runs as the user
/// who logged in, not as the server's root.
#[test]
fn explicit_key_and_password_files_log_in_as_the_user() {
    let user = ensure_user();
    let srv = OurServer::start();
    let want = format!("{}\n{}\n{}\n", user.uid, user.name, user.home.display());
    let out = srv.ssh_key(&keys().ed25519, "id -u; whoami; echo $HOME");
    check_output(&out, want.as_bytes(), b"", 0).unwrap();
    let askpass = askpass_script(PASSWORD);
    let out = ssh(
        &srv.password_args(),
        "id -u; whoami; echo $HOME",
        Input::Null,
        &askpass_env(&askpass),
        SHORT,
    );
    check_output(&out, want.as_bytes(), b"", 0).unwrap();
}

/// Median times of `n` wrong-password attempts by each of `users`, each
/// user on a connection of its own, the attempts taken in turns (so a
/// busy moment of the machine hits every user alike).
fn median_password_times(srv: &OurServer, users: &[&str], n: usize) -> Vec<Duration> {
    use ssh_blocking::{Client, HostKeyCheck};
    let conns: Vec<Client> = users
        .iter()
        .map(|_| {
            Client::connect(
                ("127.0.0.1", srv.port),
                HostKeyCheck::KnownHostsFile(srv.known_hosts.clone()),
            )
            .expect("connect")
        })
        .collect();
    let mut times = vec![Vec::new(); users.len()];
    for _ in 0..n {
        for (i, (c, user)) in conns.iter().zip(users).enumerate() {
            let t0 = Instant::now();
            let r = c.auth_password(user, "not-the-password");
            times[i].push(t0.elapsed());
            assert!(r.is_err(), "{user} logged in with a wrong password");
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[n / 2]
        })
        .collect()
}

/// A refused password costs the same whether the user exists or not: the
/// password file's hash takes 100000 SHA-512 rounds (tens of ms), and an
/// unknown user, a user the server refuses (nologin shell) and a user with
/// a locked entry are checked against a dummy hash of the same cost, so
/// their median times stay within a factor 4 of a known user's wrong
/// password (not ~0, which would tell user names apart; the factor leaves
/// room for a busy machine).
#[test]
fn password_refusal_time_does_not_reveal_user_names() {
    use sha_crypt::{Algorithm, Params, PasswordHasher, ShaCrypt};
    let _ = ensure_user();
    let _ = identity_user(NOLOGIN, "/usr/sbin/nologin", Some("nologin-Pw-1"));
    let hasher = ShaCrypt::new(Algorithm::Sha512Crypt, Params::new(100_000).unwrap());
    let hash = hasher
        .hash_password_with_salt(PASSWORD.as_bytes(), b"timing-salt")
        .unwrap()
        .to_string();
    let dir = TempDir::new("timing");
    let file = dir.join("passwords");
    std::fs::write(
        &file,
        format!("{USER}:{hash}\n{NOLOGIN}:{hash}\nsshlib-locked-entry:!{hash}\n"),
    )
    .unwrap();
    let srv = OurServer::start_with(ServerOpts {
        password_file: false,
        extra_args: s(&["--password-file", &path_str(&file)]),
        options: s(&["MaxAuthTries=100"]),
        verbose: false,
        ..Default::default()
    });
    let users = [USER, "sshlib-nosuchuser", NOLOGIN, "sshlib-locked-entry"];
    let times = median_password_times(&srv, &users, 9);
    let known = times[0];
    let mut failures = Vec::new();
    for (user, &t) in users.iter().zip(&times).skip(1) {
        if t * 4 < known || t > known * 4 {
            failures.push(format!(
                "{user}: median {t:?}, a known user's wrong password {known:?}"
            ));
        }
    }
    report("timing comparisons", 3, failures);
}

/// While one session holds a pty, commands of another connection see no
/// pseudo-terminal descriptor of it: ptys are opened close-on-exec at
/// once, so a command spawned for another connection at the same moment
/// cannot inherit one (the server runs each connection on its own thread
/// here, so pty opening and spawning do race).
#[test]
fn ptys_do_not_leak_into_other_sessions() {
    use ssh_blocking::{Client, HostKeyCheck};
    let srv = OurServer::start_with(ServerOpts {
        extra_args: s(&["--runtime", "blocking"]),
        options: s(&["MaxSessions=100"]),
        verbose: false,
        ..Default::default()
    });
    let connect = || {
        let c = Client::connect(
            ("127.0.0.1", srv.port),
            HostKeyCheck::KnownHostsFile(srv.known_hosts.clone()),
        )
        .expect("connect");
        c.auth_key_file(USER, &keys().ed25519, None).expect("auth");
        c
    };
    // One session holding a pty (a shell on it).
    let holder = connect();
    let shell = holder.channel_session().unwrap();
    shell.request_pty("xterm", 80, 24, &[]).unwrap();
    shell.shell().unwrap();

    let stop = std::sync::atomic::AtomicBool::new(false);
    let leaks = std::thread::scope(|sc| {
        // Connections opening and dropping ptys as fast as they can.
        for _ in 0..2 {
            let c = connect();
            let stop = &stop;
            sc.spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(ch) = c.channel_session() else { break };
                    let _ = ch.request_pty("xterm", 80, 24, &[]);
                    let _ = ch.close();
                }
            });
        }
        // Commands listing their descriptors, from another connection.
        let c = connect();
        let mut leaks = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut runs = 0;
        while Instant::now() < deadline && runs < 600 && leaks.is_empty() {
            let chans: Vec<_> = (0..4)
                .map(|_| {
                    let ch = c.channel_session().unwrap();
                    ch.exec("ls -l /proc/self/fd").unwrap();
                    ch
                })
                .collect();
            for ch in chans {
                let mut out = String::new();
                let _ = (&ch).read_to_string(&mut out);
                runs += 1;
                if out.contains("/dev/pts") || out.contains("/dev/ptmx") {
                    leaks.push(out);
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        leaks
    });
    assert!(
        leaks.is_empty(),
        "a command of another connection holds a pty descriptor:\n{}",
        leaks.join("\n")
    );
    (&shell).write_all(b"exit 0\n").unwrap();
    assert_eq!(shell.exit_status().unwrap(), Some(0));
}

/// `PermitRootLogin` as sshd: by default (prohibit-password) root logs in
/// with a key but not with its (correct) password; `yes` lets the
/// password in, `no` refuses the key too, `forced-commands-only` takes
/// only a key with `command=`.
#[test]
fn permit_root_login() {
    use sha_crypt::{PasswordHasher, ShaCrypt};
    let _ = ensure_user();
    let root_pw = "root-Pw-not-real";
    let hash = ShaCrypt::default()
        .hash_password_with_salt(root_pw.as_bytes(), b"root-salt")
        .unwrap()
        .to_string();
    let dir = TempDir::new("root-login");
    let file = dir.join("passwords");
    std::fs::write(&file, format!("root:{hash}\n")).unwrap();
    let ed_pub = public_key_line(&pub_of(&keys().ed25519));
    let start = |value: Option<&str>, key_line: &str| {
        OurServer::start_with(ServerOpts {
            password_file: false,
            authorized_keys: Some(format!("{key_line}\n")),
            extra_args: s(&["--password-file", &path_str(&file)]),
            options: value
                .map(|v| vec![format!("PermitRootLogin={v}")])
                .unwrap_or_default(),
            ..Default::default()
        })
    };
    let askpass = askpass_script(root_pw);
    let by_key = |srv: &OurServer| {
        ssh_as(
            "root",
            &srv.key_args(&keys().ed25519),
            "id -u",
            Input::Null,
            &[],
            SHORT,
        )
    };
    let by_password = |srv: &OurServer| {
        ssh_as(
            "root",
            &srv.password_args(),
            "id -u",
            Input::Null,
            &askpass_env(&askpass),
            SHORT,
        )
    };
    let check = |what: &str, out: Output, ok: bool| -> Result<(), String> {
        if ok {
            check_output(&out, b"0\n", b"", 0)
        } else {
            check_denied(&out)
        }
        .map_err(|e| format!("{what}: {e}"))
    };
    let mut results = Vec::new();
    let srv = start(None, &ed_pub);
    results.push(check("default, key", by_key(&srv), true));
    let mark = srv.daemon.log_len();
    results.push(check("default, password", by_password(&srv), false));
    let needle = "ROOT LOGIN REFUSED FROM 127.0.0.1";
    let log = srv.daemon.wait_log(mark, &[needle], Duration::from_secs(5));
    if !log.contains(needle) {
        results.push(Err(format!("no {needle:?} log line: {log}")));
    }
    let srv = start(Some("yes"), &ed_pub);
    results.push(check("yes, password", by_password(&srv), true));
    let srv = start(Some("no"), &ed_pub);
    results.push(check("no, key", by_key(&srv), false));
    let srv = start(Some("forced-commands-only"), &ed_pub);
    results.push(check(
        "forced-commands-only, plain key",
        by_key(&srv),
        false,
    ));
    let srv = start(
        Some("forced-commands-only"),
        &format!("command=\"id -u\" {ed_pub}"),
    );
    results.push(check(
        "forced-commands-only, key with command=",
        by_key(&srv),
        true,
    ));
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    report("PermitRootLogin cases", 6, failures);
}

/// `-o AuthorizedKeysFile=...` as sshd: space-separated files tried in
/// turn, `%h` the home, `%u` the user name, `%%` a `%`, relative paths
/// from the home (a FIFO among them skipped, not waited on); the default
/// `~/.ssh/authorized_keys` is then not read;
/// `none` reads nothing; an unknown token stops the server with an error.
#[test]
fn authorized_keys_file_patterns() {
    let (alice, alice_key) = identity_user(ALICE, "/bin/sh", Some(ALICE_PW));
    let (bob, bob_key) = identity_user(BOB, "/bin/bash", Some("bob-Pw-0815"));
    // alice's key in a file named with her user name (relative path), bob's
    // in one with a literal % (absolute, from %h).
    let put = |u: &TestUser, file: &str, key: &Path| {
        let p = u.home.join(".ssh").join(file);
        std::fs::write(&p, format!("{}\n", public_key_line(&pub_of(key)))).unwrap();
        std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
    };
    put(&alice, &format!("alt_{ALICE}"), &alice_key);
    put(&bob, "pct%keys", &bob_key);
    // A FIFO where the first file is looked for must not stall the server.
    let fifo = alice.home.join(".ssh/missing_keys");
    if !fifo.exists() {
        let _ = Command::new("mkfifo").arg(&fifo).status();
    }
    let pattern = "AuthorizedKeysFile=.ssh/missing_keys .ssh/alt_%u %h/.ssh/pct%%keys";
    let srv = OurServer::start_with(ServerOpts {
        system_auth: true,
        options: s(&[pattern]),
        ..Default::default()
    });
    let mut failures = Vec::new();
    for (u, key) in [(ALICE, &alice_key), (BOB, &bob_key)] {
        let out = ssh_key_as(&srv, u, key, "whoami");
        if let Err(e) = check_output(&out, format!("{u}\n").as_bytes(), b"", 0) {
            failures.push(format!("{u} with {pattern:?}: {e}"));
        }
    }
    // bob's key is only in ~/.ssh/authorized_keys, which this does not name.
    let srv = OurServer::start_with(ServerOpts {
        system_auth: true,
        options: s(&["AuthorizedKeysFile=.ssh/alt_%u"]),
        ..Default::default()
    });
    if let Err(e) = check_denied(&ssh_key_as(&srv, BOB, &bob_key, "whoami")) {
        failures.push(format!(
            "bob (key only in authorized_keys) with .ssh/alt_%u: {e}"
        ));
    }
    let srv = OurServer::start_with(ServerOpts {
        system_auth: true,
        options: s(&["AuthorizedKeysFile=none"]),
        ..Default::default()
    });
    if let Err(e) = check_denied(&ssh_key_as(&srv, ALICE, &alice_key, "whoami")) {
        failures.push(format!("alice with AuthorizedKeysFile=none: {e}"));
    }
    let out = run_prog(
        &server_bin(),
        &s(&["-p", "0", "-o", "AuthorizedKeysFile=.ssh/%x"]),
        Input::Null,
        &[],
        SHORT,
    );
    let err = lossy(&out.stderr);
    if out.status.success() || !err.contains("AuthorizedKeysFile") || !err.contains("%x") {
        failures.push(format!(
            "AuthorizedKeysFile=.ssh/%x: {}, stderr {err:?}",
            describe_status(&out.status)
        ));
    }
    report("AuthorizedKeysFile cases", 5, failures);
}
