//! The host key is looked up in known_hosts under the host as the caller
//! named it (`localhost`, `[localhost]:PORT`, hashed `|1|` entries), not
//! under the address the name resolved to, in every adapter (blocking,
//! tokio, mio), against OpenSSH's `sshd`. Each verdict is also checked
//! against OpenSSH's `ssh` with the same known_hosts file (its default
//! CheckHostIP=no: an entry for the address alone does not vouch for a
//! connection made by name).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;
use ssh_blocking::{Config, ErrorKind, HostKeyCheck, PrivateKey, ToHostPort};

const TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Adapter {
    Blocking,
    Tokio,
    Mio,
}

const ADAPTERS: [Adapter; 3] = [Adapter::Blocking, Adapter::Tokio, Adapter::Mio];

fn mio_rt() -> &'static ssh_mio::Runtime {
    static RT: OnceLock<ssh_mio::Runtime> = OnceLock::new();
    RT.get_or_init(|| ssh_mio::Runtime::new().expect("mio runtime"))
}

fn user_key() -> Arc<PrivateKey> {
    Arc::new(ssh_std::load_private_key(&keys().ed25519, None).expect("user key"))
}

/// Connects through `adapter` with `KnownHostsFile(kh)`, authenticates and
/// runs `echo ok`: Ok(stdout), or the error's kind and text.
fn connect_exec(
    adapter: Adapter,
    addr: &dyn ToHostPort,
    kh: &Path,
) -> Result<String, (ErrorKind, String)> {
    let check = HostKeyCheck::KnownHostsFile(kh.to_path_buf());
    let config = Arc::new(Config::default());
    let err = |e: ssh_blocking::Error| (e.kind(), e.to_string());
    let out = match adapter {
        Adapter::Blocking => {
            let c = ssh_blocking::Client::connect_with(addr, config, check, Some(TIMEOUT))
                .map_err(err)?;
            c.auth_publickey(USER, user_key()).map_err(err)?;
            c.exec("echo ok").map_err(err)?
        }
        Adapter::Mio => {
            let c = mio_rt()
                .connect_with(addr, config, check, Some(TIMEOUT))
                .map_err(err)?;
            c.auth_publickey(USER, user_key()).map_err(err)?;
            c.exec("echo ok").map_err(err)?
        }
        Adapter::Tokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let c = ssh_tokio::Client::connect_with(addr, config, check, Some(TIMEOUT))
                    .await
                    .map_err(err)?;
                c.auth_publickey(USER, user_key()).await.map_err(err)?;
                c.exec("echo ok").await.map_err(err)
            })?
        }
    };
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// OpenSSH's `ssh` to `host` on `port` with only `kh` as known_hosts and
/// StrictHostKeyChecking=yes: did `echo ok` run?
fn openssh_accepts(host: &str, port: u16, kh: &Path) -> bool {
    let args: Vec<String> = [
        "-F",
        "/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        &format!("UserKnownHostsFile={}", kh.display()),
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "UpdateHostKeys=no",
        "-o",
        "IdentitiesOnly=yes",
        "-i",
        &keys().ed25519.display().to_string(),
        "-p",
        &port.to_string(),
        &format!("{USER}@{host}"),
        "echo ok",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run_prog(&require_peer("ssh"), &args, Input::Null, &[], TIMEOUT);
    out.status.success() && out.stdout == b"ok\n"
}

/// A public key that is none of the server's: a client key.
fn keys_pub() -> PathBuf {
    keys().ed25519.with_extension("pub")
}

/// The server's public keys as `TYPE BASE64`, from the harness's
/// known_hosts (`[127.0.0.1]:PORT TYPE BASE64` lines).
fn server_keys(d: &Sshd) -> Vec<String> {
    std::fs::read_to_string(&d.known_hosts)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, k)| k.to_string()))
        .collect()
}

/// A known_hosts file listing every server key under `pattern`; hashed
/// with `ssh-keygen -H` when `hashed`.
fn known_hosts(dir: &TempDir, name: &str, pattern: &str, keys: &[String], hashed: bool) -> PathBuf {
    let p = dir.join(name);
    let text: String = keys.iter().map(|k| format!("{pattern} {k}\n")).collect();
    std::fs::write(&p, text).unwrap();
    if hashed {
        let out = std::process::Command::new(require_peer("ssh-keygen"))
            .arg("-H")
            .arg("-f")
            .arg(&p)
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-keygen -H: {out:?}");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.lines().all(|l| l.starts_with("|1|")),
            "not hashed: {text}"
        );
    }
    p
}

/// One case: connecting as `host` (given as a string `host:port` and as a
/// `(host, port)` tuple) with known_hosts `kh` must be accepted or refused
/// with a host key error, in every adapter and by OpenSSH's `ssh`.
fn check_case(host: &str, port: u16, kh: &Path, what: &str, accept: bool, fails: &mut Vec<String>) {
    let ssh = openssh_accepts(host, port, kh);
    if ssh != accept {
        fails.push(format!(
            "{what}: OpenSSH ssh {} {host} port {port}; the test expects {}",
            if ssh { "accepts" } else { "refuses" },
            if accept { "accept" } else { "refuse" }
        ));
    }
    let as_string = format!("{host}:{port}");
    let as_tuple = (host, port);
    let forms: [(&str, &dyn ToHostPort); 2] =
        [("\"host:port\"", &as_string), ("(host, port)", &as_tuple)];
    for adapter in ADAPTERS {
        for (form, addr) in forms {
            let r = connect_exec(adapter, addr, kh);
            let ok = match (&r, accept) {
                (Ok(out), true) => out == "ok\n",
                (Err((kind, _)), false) => *kind == ErrorKind::HostKey,
                _ => false,
            };
            if !ok {
                fails.push(format!(
                    "{what}: {adapter:?} connect {form} as {host} port {port}: expected {}, got {r:?}",
                    if accept { "`echo ok` to run" } else { "a host key error" }
                ));
            }
        }
    }
}

#[test]
fn known_hosts_is_searched_under_the_name_given() {
    let d = Sshd::start();
    let keys = server_keys(&d);
    let dir = TempDir::new("kh-names");
    let p = d.port;
    let bracketed = known_hosts(&dir, "bracketed", &format!("[localhost]:{p}"), &keys, false);
    let hashed = known_hosts(&dir, "hashed", &format!("[localhost]:{p}"), &keys, true);
    let by_ip = known_hosts(&dir, "by_ip", &format!("[127.0.0.1]:{p}"), &keys, false);
    let bare = known_hosts(&dir, "bare", "localhost", &keys, false);
    let bare_hashed = known_hosts(&dir, "bare_hashed", "localhost", &keys, true);
    let other_key = vec![public_key_line(&keys_pub())];
    let bare_other = known_hosts(&dir, "bare_other", "localhost", &other_key, false);
    let mut fails = Vec::new();
    check_case(
        "localhost",
        p,
        &bracketed,
        "[localhost]:PORT entry",
        true,
        &mut fails,
    );
    check_case(
        "LocalHost",
        p,
        &bracketed,
        "[localhost]:PORT entry, name in capitals",
        true,
        &mut fails,
    );
    check_case(
        "localhost",
        p,
        &hashed,
        "hashed [localhost]:PORT entry",
        true,
        &mut fails,
    );
    check_case(
        "LocalHost",
        p,
        &hashed,
        "hashed entry, name in capitals",
        true,
        &mut fails,
    );
    check_case(
        "localhost",
        p,
        &by_ip,
        "entry for the address only",
        false,
        &mut fails,
    );
    // With no `[localhost]:PORT` entry, OpenSSH tries the bare name ("checking
    // without port identifier").
    check_case(
        "localhost",
        p,
        &bare,
        "bare name entry, another port",
        true,
        &mut fails,
    );
    check_case(
        "localhost",
        p,
        &bare_hashed,
        "hashed bare entry, another port",
        true,
        &mut fails,
    );
    check_case(
        "localhost",
        p,
        &bare_other,
        "bare entry with another key",
        false,
        &mut fails,
    );
    check_case(
        "127.0.0.1",
        p,
        &by_ip,
        "[127.0.0.1]:PORT entry by address",
        true,
        &mut fails,
    );
    check_case(
        "127.0.0.1",
        p,
        &bracketed,
        "name entry, connecting by address",
        false,
        &mut fails,
    );
    assert_no_fails(&fails);
}

/// Port 22: entries are bare names (`localhost`, hashed or not), as OpenSSH
/// writes them. sshd also listens on 127.0.0.1:22 for this test, which
/// needs that port free.
#[test]
fn port_22_uses_bare_names() {
    with_lock("port-22", || {
        let d = Sshd::start_with(SshdOptions {
            extra: vec!["ListenAddress 127.0.0.1:22".into()],
            ..Default::default()
        });
        let log = d.daemon.log();
        assert!(
            !log.contains("Bind to port 22") && !log.contains("Cannot bind any address"),
            "sshd could not listen on 127.0.0.1:22 (this test needs the port free):\n{log}"
        );
        let keys = server_keys(&d);
        let dir = TempDir::new("kh-22");
        let bare = known_hosts(&dir, "bare", "localhost", &keys, false);
        let hashed = known_hosts(&dir, "hashed", "localhost", &keys, true);
        let bracketed = known_hosts(&dir, "bracketed", "[localhost]:22", &keys, false);
        let by_ip = known_hosts(&dir, "by_ip", "127.0.0.1", &keys, false);
        let mut fails = Vec::new();
        check_case(
            "localhost",
            22,
            &bare,
            "bare localhost entry",
            true,
            &mut fails,
        );
        check_case(
            "localhost",
            22,
            &hashed,
            "hashed bare entry",
            true,
            &mut fails,
        );
        check_case(
            "localhost",
            22,
            &bracketed,
            "[localhost]:22 entry",
            false,
            &mut fails,
        );
        check_case(
            "localhost",
            22,
            &by_ip,
            "entry for the address only",
            false,
            &mut fails,
        );
        check_case(
            "127.0.0.1",
            22,
            &by_ip,
            "bare address entry by address",
            true,
            &mut fails,
        );
        assert_no_fails(&fails);
    })
}

/// Fails the test listing every entry of `fails`, if there are any.
#[track_caller]
fn assert_no_fails(fails: &[String]) {
    assert!(
        fails.is_empty(),
        "{} failures:\n  {}",
        fails.len(),
        fails.join("\n  ")
    );
}

/// Our `client` and `sftp` examples under each runtime, and OpenSSH's `ssh`
/// and `sftp`, connecting as `sshtest@HOST` with only `kh` as known_hosts:
/// each must accept (run the command) or refuse as `accept` says.
fn check_examples(
    host: &str,
    port: u16,
    kh: &Path,
    what: &str,
    accept: bool,
    fails: &mut Vec<String>,
) {
    let dir = TempDir::new("kh-batch");
    let batch = dir.join("batch");
    std::fs::write(&batch, "pwd\n").unwrap();
    let common = |port_flag: &str| -> Vec<String> {
        [
            port_flag,
            &port.to_string(),
            "-o",
            &format!("UserKnownHostsFile={}", kh.display()),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
            "-i",
            &keys().ed25519.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let dest = format!("{USER}@{host}");
    let isolation = openssh_isolation_args();
    let mut runs: Vec<(String, PathBuf, Vec<String>)> = Vec::new();
    for rt in ["blocking", "tokio", "mio"] {
        let rt_args = vec!["--runtime".to_string(), rt.to_string()];
        let mut a = rt_args.clone();
        a.extend(common("-p"));
        a.extend([dest.clone(), "echo ok".into()]);
        runs.push((format!("client --runtime {rt}"), example_bin("client"), a));
        let mut a = rt_args;
        a.extend(common("-P"));
        a.extend(["-b".into(), batch.display().to_string(), dest.clone()]);
        runs.push((format!("sftp --runtime {rt}"), example_bin("sftp"), a));
    }
    let mut a = isolation.clone();
    a.extend(common("-p"));
    a.extend([dest.clone(), "echo ok".into()]);
    runs.push(("OpenSSH ssh".into(), require_peer("ssh"), a));
    let mut a = isolation;
    a.extend(common("-P"));
    a.extend(["-b".into(), batch.display().to_string(), dest.clone()]);
    runs.push(("OpenSSH sftp".into(), require_peer("sftp"), a));
    for (name, prog, args) in runs {
        let out = run_prog(&prog, &args, Input::Null, &[], TIMEOUT);
        let ran = out.status.success()
            && if name.contains("sftp") {
                String::from_utf8_lossy(&out.stdout).contains("Remote working directory")
            } else {
                out.stdout == b"ok\n"
            };
        if ran != accept {
            fails.push(format!(
                "{what}: {name} as {host} port {port}: expected to {}, got {}; stderr: {}",
                if accept {
                    "connect"
                } else {
                    "refuse the host key"
                },
                describe_status(&out.status),
                show(&out.stderr, 400)
            ));
        }
    }
}

#[test]
fn examples_search_known_hosts_under_the_name_given() {
    let d = Sshd::start();
    let keys = server_keys(&d);
    let dir = TempDir::new("kh-examples");
    let p = d.port;
    let other_key = vec![public_key_line(&keys_pub())];
    let mut fails = Vec::new();
    for (what, pattern, keys, hashed, accept) in [
        (
            "[localhost]:PORT entry",
            format!("[localhost]:{p}"),
            &keys,
            false,
            true,
        ),
        (
            "hashed [localhost]:PORT entry",
            format!("[localhost]:{p}"),
            &keys,
            true,
            true,
        ),
        (
            "bare name entry, another port",
            "localhost".to_string(),
            &keys,
            false,
            true,
        ),
        (
            "hashed bare entry, another port",
            "localhost".to_string(),
            &keys,
            true,
            true,
        ),
        (
            "entry for the address only",
            format!("[127.0.0.1]:{p}"),
            &keys,
            false,
            false,
        ),
        (
            "bare entry with another key",
            "localhost".to_string(),
            &other_key,
            false,
            false,
        ),
    ] {
        let name = what.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let kh = known_hosts(&dir, &name, &pattern, keys, hashed);
        check_examples("localhost", p, &kh, what, accept, &mut fails);
    }
    assert_no_fails(&fails);
}

/// `-o CheckHostIP=yes` is refused with an error naming it (the address is
/// never looked up); `-o CheckHostIP=no`, OpenSSH's default, works.
#[test]
fn client_refuses_check_host_ip_yes() {
    let d = Sshd::start();
    let mut fails = Vec::new();
    for (v, ok) in [("no", true), ("yes", false)] {
        let args: Vec<String> = [
            "-p",
            &d.port.to_string(),
            "-o",
            &format!("UserKnownHostsFile={}", d.known_hosts.display()),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            &format!("CheckHostIP={v}"),
            "-i",
            &keys().ed25519.display().to_string(),
            &format!("{USER}@127.0.0.1"),
            "echo ok",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = run_prog(&example_bin("client"), &args, Input::Null, &[], TIMEOUT);
        let err = String::from_utf8_lossy(&out.stderr);
        let good = if ok {
            out.status.success() && out.stdout == b"ok\n"
        } else {
            out.status.code() == Some(255) && err.contains("CheckHostIP") && out.stdout.is_empty()
        };
        if !good {
            fails.push(format!(
                "CheckHostIP={v}: {}, stdout {}, stderr {err}",
                describe_status(&out.status),
                show(&out.stdout, 200)
            ));
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}
