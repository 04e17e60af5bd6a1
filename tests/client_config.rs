//! The `client` example reading ssh_config (`-F FILE`) against OpenSSH's
//! sshd: a `Host` alias giving Hostname, Port, User, IdentityFile,
//! UserKnownHostsFile, StrictHostKeyChecking and BatchMode; `Match host`
//! and `Match originalhost`; the first value winning over a later
//! `Host *`; `-o` winning over the file; `Include`; an unknown keyword
//! (ssh's two lines, exit 255) and `IgnoreUnknown`; ProxyCommand (our own
//! client with `-W %h:%p`); ProxyJump; LocalForward with `-N`; harmless
//! keywords passing and unsupported ones refused by name; RemoteCommand;
//! PreferredAuthentications; `~/.ssh/config` read without `-F`; the `sftp`
//! example with `-F`. They run under `SSHLIB_TEST_CLIENT=openssh` too (but
//! for the checks of our own messages), to hold the expectations to ssh's.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

const TIMEOUT: Duration = Duration::from_secs(60);

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Writes `text` as `name` in `dir`; its path.
fn write_cfg(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The options that log in to `sshd` as the test user, host key checked.
fn login_lines(sshd: &Sshd) -> String {
    format!(
        "    User {USER}\n    IdentityFile {}\n    UserKnownHostsFile {}\n    StrictHostKeyChecking yes\n    BatchMode yes\n",
        path_str(&keys().ed25519),
        path_str(&sshd.known_hosts)
    )
}

fn run(args: &[&str]) -> std::process::Output {
    let mut out = run_client(args, b"", &[], TIMEOUT);
    out.stderr = String::from_utf8_lossy(&out.stderr)
        .replace("\r\n", "\n")
        .into_bytes();
    out
}

/// Accepted logins in `sshd`'s log since `mark`.
fn logins(sshd: &Sshd, mark: usize) -> usize {
    sshd.daemon
        .log_since(mark)
        .matches("Accepted publickey for")
        .count()
}

#[test]
fn host_alias_gives_everything() {
    let sshd = Sshd::start();
    let dir = TempDir::new("cfg-alias");
    let cfg = write_cfg(
        &dir,
        "config",
        &format!(
            "Host alias\n    Hostname 127.0.0.1\n    Port {}\n{}",
            sshd.port,
            login_lines(&sshd)
        ),
    );
    let out = run(&["-F", &path_str(&cfg), "alias", "echo ok"]);
    assert_output(&out, b"ok\n", b"", 0);
}

#[test]
fn match_blocks_and_first_value_wins() {
    let sshd = Sshd::start();
    let dir = TempDir::new("cfg-match");
    let closed = free_port();
    let cfg = write_cfg(
        &dir,
        "config",
        &format!(
            "Match originalhost other\n    Port {closed}\n\
             Host alias\n    Hostname 127.0.0.1\n\
             Match host 127.0.0.1 originalhost alias\n    Port {}\n{}\
             Host *\n    Port {closed}\n    User nobody\n",
            sshd.port,
            login_lines(&sshd)
        ),
    );
    let out = run(&["-F", &path_str(&cfg), "alias", "echo matched"]);
    assert_output(&out, b"matched\n", b"", 0);
    // `other` takes the first block's closed port: the connection fails.
    let out = run(&["-F", &path_str(&cfg), "other", "true"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
}

#[test]
fn command_line_wins_over_the_file() {
    let sshd = Sshd::start();
    let dir = TempDir::new("cfg-o");
    let closed = free_port();
    let cfg = write_cfg(
        &dir,
        "config",
        &format!(
            "Host alias\n    Hostname 127.0.0.1\n    Port {closed}\n    User nobody\n{}",
            login_lines(&sshd)
        ),
    );
    let port = format!("Port={}", sshd.port);
    let user = format!("User={USER}");
    let out = run(&[
        "-F",
        &path_str(&cfg),
        "-o",
        &port,
        "-o",
        &user,
        "alias",
        "echo over",
    ]);
    assert_output(&out, b"over\n", b"", 0);
    let p = sshd.port.to_string();
    let out = run(&[
        "-F",
        &path_str(&cfg),
        "-p",
        &p,
        "-l",
        USER,
        "alias",
        "echo flags",
    ]);
    assert_output(&out, b"flags\n", b"", 0);
}

#[test]
fn include_reads_the_second_file() {
    let sshd = Sshd::start();
    let dir = TempDir::new("cfg-inc");
    write_cfg(
        &dir,
        "extra.conf",
        &format!("Host alias\n    Port {}\n{}", sshd.port, login_lines(&sshd)),
    );
    let cfg = write_cfg(
        &dir,
        "config",
        &format!(
            "Include {}/*.conf\nHost alias\n    Hostname 127.0.0.1\n",
            path_str(dir.path())
        ),
    );
    let out = run(&["-F", &path_str(&cfg), "alias", "echo included"]);
    assert_output(&out, b"included\n", b"", 0);
}

#[test]
fn unknown_keyword_is_fatal_unless_ignored() {
    let sshd = Sshd::start();
    let dir = TempDir::new("cfg-bad");
    let body = format!(
        "Host alias\n    Hostname 127.0.0.1\n    Port {}\n    FooBar yes\n{}",
        sshd.port,
        login_lines(&sshd)
    );
    let cfg = write_cfg(&dir, "config", &body);
    let c = path_str(&cfg);
    let out = run(&["-F", &c, "alias", "echo no"]);
    let want = format!(
        "{c}: line 4: Bad configuration option: foobar\n{c}: terminating, 1 bad configuration options\n"
    );
    assert_output(&out, b"", want.as_bytes(), 255);
    let ok = write_cfg(&dir, "ok", &format!("IgnoreUnknown FooBar\n{body}"));
    let out = run(&["-F", &path_str(&ok), "alias", "echo yes"]);
    assert_output(&out, b"yes\n", b"", 0);
}

#[test]
fn proxy_command_through_our_client() {
    let sshd = Sshd::start();
    let dir = TempDir::new("cfg-proxy");
    let mark = sshd.daemon.log_len();
    let proxy = format!(
        "{} -F none -i {} -o BatchMode=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -l {USER} -p {} -W %h:%p 127.0.0.1",
        path_str(&example_bin("client")),
        path_str(&keys().ed25519),
        path_str(&sshd.known_hosts),
        sshd.port
    );
    let cfg = write_cfg(
        &dir,
        "config",
        &format!(
            "Host alias\n    Hostname 127.0.0.1\n    Port {}\n    ProxyCommand {proxy}\n{}",
            sshd.port,
            login_lines(&sshd)
        ),
    );
    let out = run(&["-F", &path_str(&cfg), "alias", "echo proxied"]);
    assert_output(&out, b"proxied\n", b"", 0);
    // The proxy's login and the one through it.
    assert_eq!(logins(&sshd, mark), 2);
}

#[test]
fn proxy_jump_from_the_file() {
    let a_sshd = Sshd::start();
    let b_sshd = Sshd::start();
    let (ma, mb) = (a_sshd.daemon.log_len(), b_sshd.daemon.log_len());
    let dir = TempDir::new("cfg-jump");
    let cfg = write_cfg(
        &dir,
        "config",
        &format!(
            "Host dest\n    Hostname 127.0.0.1\n    Port {}\n    ProxyJump {USER}@127.0.0.1:{}\n\
             Host *\n    User {USER}\n    IdentityFile {}\n    UserKnownHostsFile {} {}\n    StrictHostKeyChecking yes\n    BatchMode yes\n",
            b_sshd.port,
            a_sshd.port,
            path_str(&keys().ed25519),
            path_str(&a_sshd.known_hosts),
            path_str(&b_sshd.known_hosts),
        ),
    );
    let out = run(&["-F", &path_str(&cfg), "dest", "echo jumped"]);
    assert_output(&out, b"jumped\n", b"", 0);
    assert_eq!(logins(&a_sshd, ma), 1);
    assert_eq!(logins(&b_sshd, mb), 1);
}

#[test]
fn local_forward_from_the_file() {
    let sshd = Sshd::start();
    let dir = TempDir::new("cfg-fwd");
    let echo_port = tcp_echo();
    let lport = free_port();
    let cfg = write_cfg(
        &dir,
        "config",
        &format!(
            "Host alias\n    Hostname 127.0.0.1\n    Port {}\n    LocalForward {lport} 127.0.0.1:{echo_port}\n{}",
            sshd.port,
            login_lines(&sshd)
        ),
    );
    let mut p = spawn_client(&["-F", &path_str(&cfg), "-N", "alias"], &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", lport)) {
            break c;
        }
        if let Some(st) = p.wait_timeout(Duration::from_millis(100)) {
            panic!("client exited early: {st:?}");
        }
        assert!(Instant::now() < deadline, "forward never listened");
    };
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"through the forward\n").unwrap();
    let mut got = vec![0u8; 20];
    c.read_exact(&mut got).unwrap();
    assert_eq!(got, b"through the forward\n");
}

#[test]
fn harmless_keywords_pass_unsupported_ones_are_named() {
    let sshd = Sshd::start();
    let dir = TempDir::new("cfg-harmless");
    // What Debian's /etc/ssh/ssh_config sets.
    let body = format!(
        "Host alias\n    Hostname 127.0.0.1\n    Port {}\n{}\
         Host *\n    SendEnv LANG LC_*\n    HashKnownHosts yes\n    GSSAPIAuthentication yes\n",
        sshd.port,
        login_lines(&sshd)
    );
    let cfg = write_cfg(&dir, "config", &body);
    let out = run(&["-F", &path_str(&cfg), "alias", "echo harmless"]);
    assert_output(&out, b"harmless\n", b"", 0);
    if client_kind() == ClientKind::OpenSsh {
        return;
    }
    // A keyword that would change what the connection does is refused.
    let bad = write_cfg(&dir, "bad", &format!("{body}    BindAddress 127.0.0.1\n"));
    let out = run(&["-F", &path_str(&bad), "alias", "echo no"]);
    assert_output(
        &out,
        b"",
        b"client: invalid use: unsupported option \"bindaddress\"\n",
        255,
    );
}

/// SendEnv (with a `-pattern` removing an earlier one) and SetEnv reach
/// the session, as sshd's AcceptEnv lets them.
#[test]
fn send_env_and_set_env_reach_the_session() {
    let sshd = Sshd::start_with(SshdOptions {
        extra: vec!["AcceptEnv LC_SSHLIB_* SSHLIB_SET SSHLIB_DROPPED".into()],
        ..Default::default()
    });
    let dir = TempDir::new("cfg-env");
    let body = format!(
        "Host alias\n    Hostname 127.0.0.1\n    Port {}\n{}\
         Host *\n    SendEnv LC_SSHLIB_* SSHLIB_DROPPED\n    SendEnv -SSHLIB_DROP*\n    \
         SetEnv SSHLIB_SET=\"set value\"\n",
        sshd.port,
        login_lines(&sshd)
    );
    let cfg = write_cfg(&dir, "config", &body);
    let out = run_client(
        &[
            "-F",
            &path_str(&cfg),
            "alias",
            "echo \"$LC_SSHLIB_ONE|$SSHLIB_SET|${SSHLIB_DROPPED:-unset}\"",
        ],
        b"",
        &[("LC_SSHLIB_ONE", "sent"), ("SSHLIB_DROPPED", "dropped")],
        TIMEOUT,
    );
    assert_output(&out, b"sent|set value|unset\n", b"", 0);
}

#[test]
fn remote_command_and_request_tty_from_the_file() {
    let sshd = Sshd::start();
    let dir = TempDir::new("cfg-rc");
    let cfg = write_cfg(
        &dir,
        "config",
        &format!(
            "Host alias\n    Hostname 127.0.0.1\n    Port {}\n    RemoteCommand echo from-config %r\n    RequestTTY no\n{}",
            sshd.port,
            login_lines(&sshd)
        ),
    );
    let out = run(&["-F", &path_str(&cfg), "alias"]);
    assert_output(&out, format!("from-config {USER}\n").as_bytes(), b"", 0);
}

#[test]
fn preferred_authentications_orders_and_limits_methods() {
    let sshd = Sshd::start();
    let dir = TempDir::new("cfg-pref");
    let base = format!(
        "Host alias\n    Hostname 127.0.0.1\n    Port {}\n",
        sshd.port
    );
    // Only password, and BatchMode: no way in although the key would do.
    let cfg = write_cfg(
        &dir,
        "config",
        &format!(
            "{base}    PreferredAuthentications password\n{}",
            login_lines(&sshd)
        ),
    );
    let out = run(&["-F", &path_str(&cfg), "alias", "echo no"]);
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let cfg = write_cfg(
        &dir,
        "config2",
        &format!(
            "{base}    PreferredAuthentications password,publickey\n{}",
            login_lines(&sshd)
        ),
    );
    let out = run(&["-F", &path_str(&cfg), "alias", "echo in"]);
    assert_output(&out, b"in\n", b"", 0);
}

#[test]
fn user_config_read_from_home_without_f() {
    if client_kind() == ClientKind::OpenSsh {
        // The harness gives ssh `-F /dev/null`.
        return;
    }
    let sshd = Sshd::start();
    let home = TempDir::new("cfg-home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(
        home.join(".ssh/config"),
        format!(
            "Host alias\n    Hostname 127.0.0.1\n    Port {}\n{}",
            sshd.port,
            login_lines(&sshd)
        ),
    )
    .unwrap();
    let h = path_str(home.path());
    let mut out = run_client(&["alias", "echo home"], b"", &[("HOME", &h)], TIMEOUT);
    out.stderr = String::from_utf8_lossy(&out.stderr)
        .into_owned()
        .into_bytes();
    assert_output(&out, b"home\n", b"", 0);
    // -F none: the file is not read, `alias` does not resolve.
    let out = run_client(
        &["-F", "none", "alias", "true"],
        b"",
        &[("HOME", &h)],
        TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(255), "{out:?}");
}

#[test]
fn sftp_example_reads_the_config() {
    let sshd = Sshd::start();
    let dir = TempDir::new("cfg-sftp");
    let cfg = write_cfg(
        &dir,
        "config",
        &format!(
            "Host alias\n    Hostname 127.0.0.1\n    Port {}\n{}",
            sshd.port,
            login_lines(&sshd)
        ),
    );
    let batch = write_cfg(&dir, "batch", "pwd\n");
    let args: Vec<String> = ["-F", &path_str(&cfg), "-b", &path_str(&batch), "alias"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = run_prog(&example_bin("sftp"), &args, Input::Null, &[], TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Remote working directory"),
        "{out:?}"
    );
}
