//! Interoperability tests of the `client` example against real peers:
//! OpenSSH `sshd`, Dropbear, a paramiko server and an AsyncSSH server, all
//! started on 127.0.0.1 by the tests themselves (see `common/mod.rs`).
//!
//! Needs root (a local user `sshtest` is created) and the peers installed by
//! `scripts/install-peers.sh`; a missing peer fails the tests. The `client`
//! example must be built for the same profile first, e.g.
//!
//! ```text
//! cargo build --profile test --example client
//! cargo test --profile test --test interop_client
//! ```
//!
//! `SSHLIB_TEST_CLIENT=openssh` runs every test with OpenSSH's `ssh` in place
//! of our client: the tests then check themselves against the reference
//! implementation (they all pass that way). `SSHLIB_TEST_CLIENT=/abs/path`
//! tests another build of the client (e.g. target/release/examples/client).
//! `SSHLIB_TEST_VERBOSE=1` prints each client run with its timing.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const SHORT: Duration = Duration::from_secs(30);
const BULK: Duration = Duration::from_secs(180);
const MIB64: usize = 64 << 20;
const EXEC_CMD: &str = "echo out; echo err >&2; exit 7";

fn dest() -> String {
    format!("{USER}@127.0.0.1")
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// Base arguments plus publickey authentication with `key` only.
fn key_args(t: &Target, key: &Path) -> Vec<String> {
    let mut a = t.base_args();
    a.extend(s(&["-i", &path_str(key), "-o", "BatchMode=yes"]));
    a.extend(s(&[
        "-o",
        "PasswordAuthentication=no",
        "-o",
        "KbdInteractiveAuthentication=no",
    ]));
    a
}

/// Base arguments plus password authentication only (the password comes
/// from SSH_ASKPASS, see [`askpass_env`]).
fn password_args(t: &Target) -> Vec<String> {
    let mut a = t.base_args();
    a.extend(s(&[
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "KbdInteractiveAuthentication=no",
    ]));
    a
}

/// Base arguments plus keyboard-interactive authentication only.
fn kbd_args(t: &Target) -> Vec<String> {
    let mut a = t.base_args();
    a.extend(s(&[
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PasswordAuthentication=no",
    ]));
    a
}

fn askpass_env(script: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("SSH_ASKPASS", path_str(script)),
        ("SSH_ASKPASS_REQUIRE", "force".to_string()),
    ]
}

fn run(
    args: &[String],
    cmd: &str,
    stdin: &[u8],
    env: &[(&str, String)],
    timeout: Duration,
) -> std::process::Output {
    let mut a = strs(args);
    let d = dest();
    a.push(&d);
    a.push(cmd);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_client(&a, stdin, &env, timeout)
}

/// Runs [`EXEC_CMD`] and checks stdout "out\n", stderr "err\n", exit 7.
fn check_exec(args: &[String], env: &[(&str, String)]) -> Result<(), String> {
    let out = run(args, EXEC_CMD, b"", env, SHORT);
    check_output(&out, b"out\n", b"err\n", 7)
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

/// Waits for `needle` in the daemon log after `mark`.
fn log_has(d: &Daemon, mark: usize, needle: &str) -> Result<(), String> {
    let log = d.wait_log(mark, &[needle], Duration::from_secs(3));
    if log.contains(needle) {
        Ok(())
    } else {
        Err(format!("peer log lacks {needle:?}; it has:\n{log}"))
    }
}

/// Pipes `data` through `cat` on the peer and checks the echo is identical.
fn check_cat_roundtrip(args: &[String], data: &[u8]) -> Result<(), String> {
    let started = Instant::now();
    let out = run(args, "cat", data, &[], BULK);
    let mut errs = Vec::new();
    if out.status.code() != Some(0) {
        errs.push(format!(
            "exit status: expected 0, got {}",
            describe_status(&out.status)
        ));
    }
    if !out.stderr.is_empty() {
        errs.push(format!(
            "stderr should be empty: {}",
            show(&out.stderr, 2000)
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
    if std::env::var_os("SSHLIB_TEST_VERBOSE").is_some() {
        eprintln!(
            "cat round trip of {} bytes: {:.2}s",
            data.len(),
            started.elapsed().as_secs_f64()
        );
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

// ---------------------------------------------------------------------------
// OpenSSH sshd
// ---------------------------------------------------------------------------

/// The command of issue 3's "done when", verbatim.
#[test]
fn sshd_exec_stdout_stderr_exit_status_ed25519() {
    let sshd = Sshd::start();
    let keys = keys();
    let kh = format!("UserKnownHostsFile={}", sshd.known_hosts.display());
    let port = sshd.port.to_string();
    let key = path_str(&keys.ed25519);
    let d = dest();
    let mark = sshd.daemon.log_len();
    let out = run_client(
        &[
            "-p",
            &port,
            "-i",
            &key,
            "-o",
            &kh,
            "-o",
            "BatchMode=yes",
            &d,
            EXEC_CMD,
        ],
        b"",
        &[],
        SHORT,
    );
    assert_output(&out, b"out\n", b"err\n", 7);
    log_has(&sshd.daemon, mark, "Accepted publickey for sshtest").unwrap();
    log_has(&sshd.daemon, mark, "ED25519").unwrap();
}

/// One sshd offering everything; one client run per kex, host key, cipher
/// and MAC that issue 3 lists and sshd 9.2 offers. sshd's own log must show
/// the algorithm was negotiated.
#[test]
fn sshd_every_algorithm() {
    let sshd = Sshd::start_with(SshdOptions {
        all_algorithms: true,
        log_level: Some("DEBUG1".into()),
        ..Default::default()
    });
    let keys = keys();
    let base = key_args(&sshd.target(), &keys.ed25519);
    let offered_kex = openssh_query("kex");

    struct Row {
        label: String,
        args: Vec<String>,
        expect: Vec<String>,
    }
    let mut rows = Vec::new();
    for kex in [
        "mlkem768x25519-sha256",
        "sntrup761x25519-sha512",
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
        "diffie-hellman-group1-sha1",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group14-sha256",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group-exchange-sha1",
        "diffie-hellman-group-exchange-sha256",
    ] {
        // mlkem768x25519 arrived in OpenSSH 9.9; the others are all in 9.2.
        if kex.starts_with("mlkem") && !offered_kex.iter().any(|k| k == kex) {
            continue;
        }
        rows.push(Row {
            label: format!("kex {kex}"),
            args: s(&["-o", &format!("KexAlgorithms={kex}")]),
            // sshd logs "kex: algorithm: NAME [preauth]".
            expect: vec![format!("kex: algorithm: {kex} ")],
        });
    }
    for hk in [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "rsa-sha2-256",
        "rsa-sha2-512",
        "ssh-rsa",
    ] {
        rows.push(Row {
            label: format!("host key {hk}"),
            args: s(&["-o", &format!("HostKeyAlgorithms={hk}")]),
            expect: vec![format!("kex: host key algorithm: {hk} ")],
        });
    }
    for c in [
        "chacha20-poly1305@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
        "aes128-cbc",
        "aes256-cbc",
        "3des-cbc",
    ] {
        rows.push(Row {
            label: format!("cipher {c}"),
            args: s(&["-o", &format!("Ciphers={c}")]),
            expect: vec![
                format!("kex: client->server cipher: {c} "),
                format!("kex: server->client cipher: {c} "),
            ],
        });
    }
    for m in [
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-512",
        "hmac-sha1-etm@openssh.com",
        "hmac-sha1",
    ] {
        rows.push(Row {
            label: format!("MAC {m} (aes128-ctr)"),
            args: s(&["-c", "aes128-ctr", "-m", m]),
            expect: vec![
                format!("kex: client->server cipher: aes128-ctr MAC: {m} compression"),
                format!("kex: server->client cipher: aes128-ctr MAC: {m} compression"),
            ],
        });
    }

    let mut failures = Vec::new();
    for row in &rows {
        let started = Instant::now();
        let mut args = base.clone();
        args.extend(row.args.iter().cloned());
        let mark = sshd.daemon.log_len();
        let out = run(&args, EXEC_CMD, b"", &[], SHORT);
        let mut errs = Vec::new();
        if let Err(e) = check_output(&out, b"out\n", b"err\n", 7) {
            errs.push(e);
        } else {
            let needles: Vec<&str> = row.expect.iter().map(String::as_str).collect();
            let log = sshd.daemon.wait_log(mark, &needles, Duration::from_secs(3));
            if !needles.iter().all(|n| log.contains(n)) {
                errs.push(format!("sshd log does not show {:?}", row.expect));
            }
        }
        if std::env::var_os("SSHLIB_TEST_VERBOSE").is_some() {
            eprintln!("{}: {:.3}s", row.label, started.elapsed().as_secs_f64());
        }
        if !errs.is_empty() {
            failures.push(format!("{}: {}", row.label, errs.join("; ")));
        }
    }
    report("algorithm rows", rows.len(), failures);
}

#[test]
fn sshd_password_via_askpass() {
    let sshd = Sshd::start();
    let askpass = askpass_script(PASSWORD);
    let mark = sshd.daemon.log_len();
    check_exec(&password_args(&sshd.target()), &askpass_env(&askpass)).unwrap();
    log_has(&sshd.daemon, mark, "Accepted password for sshtest").unwrap();
}

#[test]
fn sshd_publickey_ecdsa() {
    let sshd = Sshd::start();
    let mark = sshd.daemon.log_len();
    check_exec(&key_args(&sshd.target(), &keys().ecdsa), &[]).unwrap();
    log_has(&sshd.daemon, mark, "Accepted publickey for sshtest").unwrap();
    log_has(&sshd.daemon, mark, "ECDSA SHA256:").unwrap();
}

/// RSA user key, rsa-sha2-512 signature: sshd accepts only that one
/// (`PubkeyAcceptedAlgorithms`). (sshd 9.2's server-sig-algs always lists
/// every algorithm, so it cannot steer a client to rsa-sha2-256: the
/// paramiko test below does that.)
#[test]
fn sshd_publickey_rsa_sha2_512() {
    let sshd = Sshd::start_with(SshdOptions {
        extra: vec!["PubkeyAcceptedAlgorithms rsa-sha2-512".into()],
        log_level: Some("DEBUG1".into()),
        ..Default::default()
    });
    let mark = sshd.daemon.log_len();
    check_exec(&key_args(&sshd.target(), &keys().rsa), &[]).unwrap();
    log_has(&sshd.daemon, mark, "Accepted publickey for sshtest").unwrap();
    log_has(&sshd.daemon, mark, "RSA SHA256:").unwrap();
    log_has(&sshd.daemon, mark, "pkalg rsa-sha2-512").unwrap();
}

/// sshd that accepts only rsa-sha2-256 while its server-sig-algs lists
/// everything: our client's rsa-sha2-512 query is refused and it retries
/// with rsa-sha2-256 (OpenSSH's `ssh` gives up there, so this is checked
/// for our client only).
#[test]
fn sshd_publickey_rsa_sha2_256_after_512_is_refused() {
    if client_kind() != ClientKind::Ours {
        return;
    }
    let sshd = Sshd::start_with(SshdOptions {
        extra: vec!["PubkeyAcceptedAlgorithms rsa-sha2-256".into()],
        log_level: Some("DEBUG1".into()),
        ..Default::default()
    });
    let mark = sshd.daemon.log_len();
    check_exec(&key_args(&sshd.target(), &keys().rsa), &[]).unwrap();
    log_has(&sshd.daemon, mark, "Accepted publickey for sshtest").unwrap();
    log_has(&sshd.daemon, mark, "pkalg rsa-sha2-256").unwrap();
}

/// RSA user key with each SHA-2 signature algorithm, against a paramiko
/// server whose server-sig-algs lists only that one (and that rejects any
/// other): the client must pick it from server-sig-algs.
#[test]
fn paramiko_publickey_rsa_sha2_256_and_512_from_server_sig_algs() {
    let mut failures = Vec::new();
    for alg in ["rsa-sha2-256", "rsa-sha2-512"] {
        let py = PyServer::start_with(PyKind::Paramiko, &["--pubkey-algs", alg]);
        let mark = py.daemon.log_len();
        let r = check_exec(&key_args(&py.target(), &keys().rsa), &[])
            .and_then(|()| {
                log_has(
                    &py.daemon,
                    mark,
                    &format!("auth publickey signature {alg}\n"),
                )
            })
            .and_then(|()| log_has(&py.daemon, mark, "auth publickey ok for sshtest (ssh-rsa)"));
        if let Err(e) = r {
            failures.push(format!("{alg}: {e}"));
        }
    }
    report("RSA signature algorithms", 2, failures);
}

#[test]
fn sshd_publickey_encrypted_key_passphrase_via_askpass() {
    let sshd = Sshd::start();
    let keys = keys();
    let mut args = sshd.target().base_args();
    args.extend(s(&["-i", &path_str(&keys.ed25519_encrypted)]));
    args.extend(s(&[
        "-o",
        "PasswordAuthentication=no",
        "-o",
        "KbdInteractiveAuthentication=no",
    ]));
    let askpass = askpass_script(KEY_PASSPHRASE);
    let mark = sshd.daemon.log_len();
    check_exec(&args, &askpass_env(&askpass)).unwrap();
    log_has(&sshd.daemon, mark, "Accepted publickey for sshtest").unwrap();
}

/// keyboard-interactive through PAM (sshd `UsePAM yes`), answered from
/// SSH_ASKPASS.
#[test]
fn sshd_keyboard_interactive_pam() {
    let sshd = Sshd::start_with(SshdOptions {
        pam: true,
        ..Default::default()
    });
    let askpass = askpass_script(PASSWORD);
    let mark = sshd.daemon.log_len();
    check_exec(&kbd_args(&sshd.target()), &askpass_env(&askpass)).unwrap();
    log_has(
        &sshd.daemon,
        mark,
        "Accepted keyboard-interactive/pam for sshtest",
    )
    .unwrap();
}

#[test]
fn sshd_wrong_password_exits_255_with_one_line() {
    let sshd = Sshd::start();
    let askpass = askpass_script("not-the-password");
    let mut args = password_args(&sshd.target());
    args.extend(s(&["-o", "NumberOfPasswordPrompts=1"]));
    let out = run(
        &args,
        "echo should-not-run",
        b"",
        &askpass_env(&askpass),
        SHORT,
    );
    assert_error_exit(&out, true);
    assert!(
        !sshd.daemon.log().contains("Accepted"),
        "sshd accepted a wrong password:\n{}",
        sshd.daemon.log()
    );
}

#[test]
fn sshd_unknown_host_key_strict_exits_255() {
    let sshd = Sshd::start();
    let dir = TempDir::new("kh-empty");
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, "").unwrap();
    let target = Target {
        port: sshd.port,
        known_hosts: kh.clone(),
    };
    let out = run(
        &key_args(&target, &keys().ed25519),
        "echo should-not-run",
        b"",
        &[],
        SHORT,
    );
    assert_error_exit(&out, false);
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        "",
        "the client must not add the key with StrictHostKeyChecking=yes"
    );
    assert!(
        !sshd.daemon.log().contains("Accepted"),
        "the client authenticated to an unknown host"
    );
}

#[test]
fn sshd_changed_host_key_exits_255() {
    let sshd = Sshd::start();
    let dir = TempDir::new("kh-wrong");
    let other = dir.join("other_host_key");
    let st = std::process::Command::new(require_peer("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "other", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(dir.join("other_host_key.pub")).unwrap();
    let mut f = public.split_whitespace();
    let kh = dir.join("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "[127.0.0.1]:{} {} {}\n",
            sshd.port,
            f.next().unwrap(),
            f.next().unwrap()
        ),
    )
    .unwrap();
    let target = Target {
        port: sshd.port,
        known_hosts: kh,
    };
    let out = run(
        &key_args(&target, &keys().ed25519),
        "echo should-not-run",
        b"",
        &[],
        SHORT,
    );
    assert_error_exit(&out, false);
    assert!(
        !sshd.daemon.log().contains("Accepted"),
        "the client authenticated to a host with a changed key"
    );
}

#[test]
fn sshd_cat_64mib_roundtrip() {
    let sshd = Sshd::start();
    let data = pseudo_random_bytes(MIB64, 1);
    check_cat_roundtrip(&key_args(&sshd.target(), &keys().ed25519), &data).unwrap();
}

/// Upload only: 64 MiB into the remote `sha256sum`.
#[test]
fn sshd_upload_64mib_sha256sum() {
    let sshd = Sshd::start();
    let data = pseudo_random_bytes(MIB64, 2);
    let out = run(
        &key_args(&sshd.target(), &keys().ed25519),
        "sha256sum",
        &data,
        &[],
        BULK,
    );
    assert_output(
        &out,
        format!("{}  -\n", sha256_hex(&data)).as_bytes(),
        b"",
        0,
    );
}

/// Download only: `cat` of a 64 MiB file made by the test.
#[test]
fn sshd_download_64mib_file() {
    let sshd = Sshd::start();
    let dir = TempDir::new("download");
    let file = dir.join("data.bin");
    let data = pseudo_random_bytes(MIB64, 3);
    std::fs::write(&file, &data).unwrap();
    let out = run(
        &key_args(&sshd.target(), &keys().ed25519),
        &format!("cat {}", file.display()),
        b"",
        &[],
        BULK,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "exit status; stderr {}",
        show(&out.stderr, 2000)
    );
    assert_eq!(out.stderr, b"", "stderr {}", show(&out.stderr, 2000));
    assert_eq!(out.stdout.len(), data.len(), "downloaded length");
    assert_eq!(
        sha256_hex(&out.stdout),
        sha256_hex(&data),
        "downloaded sha256"
    );
}

/// Counts the key exchanges sshd logged after `mark` (LogLevel DEBUG1).
fn kex_count(sshd: &Sshd, mark: usize) -> usize {
    sshd.daemon
        .log_since(mark)
        .matches("SSH2_MSG_KEXINIT received")
        .count()
}

/// sshd rekeys every MiB (`RekeyLimit 1M`) during a 64 MiB round trip.
#[test]
fn sshd_rekey_server_limit_during_64mib() {
    let sshd = Sshd::start_with(SshdOptions {
        extra: vec!["RekeyLimit 1M".into()],
        log_level: Some("DEBUG1".into()),
        ..Default::default()
    });
    let data = pseudo_random_bytes(MIB64, 4);
    let mark = sshd.daemon.log_len();
    check_cat_roundtrip(&key_args(&sshd.target(), &keys().ed25519), &data).unwrap();
    let n = kex_count(&sshd, mark);
    assert!(
        n >= 17,
        "expected the server to rekey at least 16 times, sshd logged {n} key exchanges"
    );
}

/// The client rekeys every MiB (`-o RekeyLimit=1M`) during a 64 MiB round
/// trip.
#[test]
fn sshd_rekey_client_limit_during_64mib() {
    let sshd = Sshd::start_with(SshdOptions {
        log_level: Some("DEBUG1".into()),
        ..Default::default()
    });
    let data = pseudo_random_bytes(MIB64, 5);
    let mut args = key_args(&sshd.target(), &keys().ed25519);
    args.extend(s(&["-o", "RekeyLimit=1M"]));
    let mark = sshd.daemon.log_len();
    check_cat_roundtrip(&args, &data).unwrap();
    let n = kex_count(&sshd, mark);
    assert!(
        n >= 17,
        "expected the client to rekey at least 16 times, sshd logged {n} key exchanges"
    );
}

/// `-C` and `-o Compression=yes`: 8 MiB of text through `cat`, and sshd
/// reports zlib@openssh.com both ways.
#[test]
fn sshd_compression_roundtrip() {
    let sshd = Sshd::start_with(SshdOptions {
        log_level: Some("DEBUG1".into()),
        ..Default::default()
    });
    let data = compressible_text(8 << 20);
    let mut failures = Vec::new();
    for flags in [&["-C"][..], &["-o", "Compression=yes"]] {
        let mut args = key_args(&sshd.target(), &keys().ed25519);
        args.extend(s(flags));
        let mark = sshd.daemon.log_len();
        let r = check_cat_roundtrip(&args, &data).and_then(|()| {
            let c2s = "client->server cipher:";
            let s2c = "server->client cipher:";
            let log = sshd.daemon.wait_log(
                mark,
                &["compression: zlib@openssh.com"],
                Duration::from_secs(3),
            );
            let has = |dir: &str| {
                log.lines()
                    .any(|l| l.contains(dir) && l.contains("compression: zlib@openssh.com"))
            };
            if has(c2s) && has(s2c) {
                Ok(())
            } else {
                Err(format!(
                    "sshd log does not show zlib@openssh.com both ways:\n{log}"
                ))
            }
        });
        if let Err(e) = r {
            failures.push(format!("{}: {e}", flags.join(" ")));
        }
    }
    report("compression runs", 2, failures);
}

/// `-C` with a rekey every MiB (sshd `RekeyLimit 1M`, client
/// `-o RekeyLimit=1M`): 64 MiB through `cat`, text then noise, comes back
/// with the same sha256. OpenSSH starts fresh zlib streams at every
/// NEWKEYS (RFC 4253 section 6.2), so ours must too.
#[test]
fn sshd_compression_with_rekey_every_mib_64mib() {
    let sshd = Sshd::start_with(SshdOptions {
        extra: vec!["RekeyLimit 1M".into()],
        log_level: Some("DEBUG1".into()),
        ..Default::default()
    });
    let mut data = compressible_text(MIB64 - (16 << 20));
    data.extend(pseudo_random_bytes(16 << 20, 7));
    let mut args = key_args(&sshd.target(), &keys().ed25519);
    args.extend(s(&["-C", "-o", "RekeyLimit=1M"]));
    let mark = sshd.daemon.log_len();
    check_cat_roundtrip(&args, &data).unwrap();
    let log = sshd.daemon.log_since(mark);
    for dir in ["client->server cipher:", "server->client cipher:"] {
        assert!(
            log.lines()
                .any(|l| l.contains(dir) && l.contains("compression: zlib@openssh.com")),
            "sshd log does not show zlib@openssh.com {dir}: {}",
            show(log.as_bytes(), 3000)
        );
    }
    let n = kex_count(&sshd, mark);
    assert!(
        n >= 17,
        "expected at least 16 rekeys with RekeyLimit 1M, sshd logged {n} key exchanges"
    );
}

/// A remote command killed by a signal: its output arrives, exit 255.
#[test]
fn sshd_exit_signal() {
    let sshd = Sshd::start();
    let out = run(
        &key_args(&sshd.target(), &keys().ed25519),
        "echo before; kill -TERM $$",
        b"",
        &[],
        SHORT,
    );
    assert_eq!(
        out.stdout,
        b"before\n",
        "stdout; stderr {}",
        show(&out.stderr, 2000)
    );
    assert_eq!(
        out.status.code(),
        Some(255),
        "exit status; stderr {}",
        show(&out.stderr, 2000)
    );
}

// ---------------------------------------------------------------------------
// Dropbear
// ---------------------------------------------------------------------------

/// One authentication case: client arguments, environment, and the line the
/// peer logs when it accepts.
struct AuthCase {
    label: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    peer_log: String,
}

/// Runs [`EXEC_CMD`] once per case against one peer (which must keep
/// serving), checking the output and the peer's log; reports every failure.
fn run_auth_cases(what: &str, daemon: &Daemon, cases: &[AuthCase]) {
    let mut failures = Vec::new();
    for c in cases {
        let mark = daemon.log_len();
        if let Err(e) =
            check_exec(&c.args, &c.env).and_then(|()| log_has(daemon, mark, &c.peer_log))
        {
            failures.push(format!("{}: {e}", c.label));
        }
    }
    report(what, cases.len(), failures);
}

/// Exec with every user-key type and with a password, on one dropbear.
#[test]
fn dropbear_exec_and_auth_methods() {
    let db = Dropbear::start();
    let keys = keys();
    let t = db.target();
    let askpass = askpass_script(PASSWORD);
    let pk = |label, key: &Path, logged: &str| AuthCase {
        label,
        args: key_args(&t, key),
        env: vec![],
        peer_log: format!("Pubkey auth succeeded for 'sshtest' with {logged} key"),
    };
    let cases = [
        pk("publickey ed25519", &keys.ed25519, "ssh-ed25519"),
        pk("publickey ecdsa", &keys.ecdsa, "ecdsa-sha2-nistp256"),
        // Dropbear logs the key type, not the signature algorithm.
        pk("publickey rsa", &keys.rsa, "ssh-rsa"),
        AuthCase {
            label: "password",
            args: password_args(&t),
            env: askpass_env(&askpass),
            peer_log: "Password auth succeeded for 'sshtest'".into(),
        },
    ];
    run_auth_cases("dropbear cases", &db.daemon, &cases);
}

#[test]
fn dropbear_cat_64mib_roundtrip() {
    let db = Dropbear::start();
    let data = pseudo_random_bytes(MIB64, 6);
    check_cat_roundtrip(&key_args(&db.target(), &keys().ed25519), &data).unwrap();
}

// ---------------------------------------------------------------------------
// paramiko and AsyncSSH servers
// ---------------------------------------------------------------------------

/// Exec with every user-key type, password and keyboard-interactive, one
/// connection each on one server (which must keep serving).
fn py_exec_and_auth_methods(kind: PyKind) {
    let py = PyServer::start(kind);
    let keys = keys();
    let t = py.target();
    let askpass = askpass_script(PASSWORD);
    let pk = |label, key: &Path, alg: &str| AuthCase {
        label,
        args: key_args(&t, key),
        env: vec![],
        peer_log: format!("auth publickey ok for sshtest ({alg})"),
    };
    let cases = [
        pk("publickey ed25519", &keys.ed25519, "ssh-ed25519"),
        pk("publickey ecdsa", &keys.ecdsa, "ecdsa-sha2-nistp256"),
        // Both servers log the key type, not the signature algorithm.
        pk("publickey rsa", &keys.rsa, "ssh-rsa"),
        AuthCase {
            label: "password",
            args: password_args(&t),
            env: askpass_env(&askpass),
            peer_log: "auth password ok for sshtest".into(),
        },
        AuthCase {
            label: "keyboard-interactive",
            args: kbd_args(&t),
            env: askpass_env(&askpass),
            peer_log: "auth keyboard-interactive ok for sshtest".into(),
        },
    ];
    run_auth_cases(&format!("{kind:?} cases"), &py.daemon, &cases);
}

fn py_cat_64mib(kind: PyKind, seed: u64) {
    let py = PyServer::start(kind);
    let data = pseudo_random_bytes(MIB64, seed);
    check_cat_roundtrip(&key_args(&py.target(), &keys().ed25519), &data).unwrap();
}

fn py_exit_signal(kind: PyKind) {
    let py = PyServer::start(kind);
    let out = run(
        &key_args(&py.target(), &keys().ed25519),
        "echo before; kill -TERM $$",
        b"",
        &[],
        SHORT,
    );
    assert_eq!(
        out.stdout,
        b"before\n",
        "stdout; stderr {}",
        show(&out.stderr, 2000)
    );
    assert_eq!(
        out.status.code(),
        Some(255),
        "exit status; stderr {}",
        show(&out.stderr, 2000)
    );
}

#[test]
fn paramiko_exec_and_auth_methods() {
    py_exec_and_auth_methods(PyKind::Paramiko);
}

#[test]
fn paramiko_cat_64mib_roundtrip() {
    py_cat_64mib(PyKind::Paramiko, 7);
}

#[test]
fn paramiko_exit_signal() {
    py_exit_signal(PyKind::Paramiko);
}

#[test]
fn asyncssh_exec_and_auth_methods() {
    py_exec_and_auth_methods(PyKind::AsyncSsh);
}

#[test]
fn asyncssh_cat_64mib_roundtrip() {
    py_cat_64mib(PyKind::AsyncSsh, 8);
}

#[test]
fn asyncssh_exit_signal() {
    py_exit_signal(PyKind::AsyncSsh);
}

// ---------------------------------------------------------------------------
// Bad peers
// ---------------------------------------------------------------------------

/// A one-connection TCP server in a thread: sends `payload`, then closes
/// (`close`) or reads until the client closes (at most 20 s).
fn bad_peer(payload: Vec<u8>, close: bool) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        l.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut sock = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return,
            }
        };
        use std::io::{Read, Write};
        sock.set_nonblocking(false).unwrap();
        let _ = sock.set_read_timeout(Some(Duration::from_secs(20)));
        let _ = sock.write_all(&payload);
        if close {
            return;
        }
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    });
    (port, h)
}

/// An SSH packet (no encryption, no MAC) holding `payload`.
fn plain_packet(payload: &[u8]) -> Vec<u8> {
    let mut pad = 8 - (payload.len() + 5) % 8;
    if pad < 4 {
        pad += 8;
    }
    let mut p = Vec::new();
    p.extend_from_slice(&((payload.len() + pad + 1) as u32).to_be_bytes());
    p.push(pad as u8);
    p.extend_from_slice(payload);
    p.extend(std::iter::repeat_n(0u8, pad));
    p
}

fn kexinit_with_nothing_in_common() -> Vec<u8> {
    let mut m = vec![20u8];
    m.extend_from_slice(&[7u8; 16]);
    let name_list = |m: &mut Vec<u8>, s: &str| {
        m.extend_from_slice(&(s.len() as u32).to_be_bytes());
        m.extend_from_slice(s.as_bytes());
    };
    name_list(&mut m, "bogus-kex@example.invalid");
    name_list(&mut m, "ssh-ed25519");
    for _ in 0..2 {
        name_list(&mut m, "aes128-ctr");
    }
    for _ in 0..2 {
        name_list(&mut m, "hmac-sha2-256");
    }
    for _ in 0..2 {
        name_list(&mut m, "none");
    }
    for _ in 0..2 {
        name_list(&mut m, "");
    }
    m.push(0);
    m.extend_from_slice(&0u32.to_be_bytes());
    plain_packet(&m)
}

/// Garbage and broken servers: exit 255, one line on stderr, never a panic.
#[test]
fn bad_peers_exit_255_with_one_line() {
    let banner = b"SSH-2.0-x\r\n".to_vec();
    // (what, bytes sent, close after sending)
    let mut cases: Vec<(&str, Vec<u8>, bool)> = Vec::new();
    let mut random = banner.clone();
    random.extend(pseudo_random_bytes(256 * 1024, 9));
    cases.push(("version line then random bytes", random, false));
    let mut huge = banner.clone();
    huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xf0]);
    huge.extend(pseudo_random_bytes(4096, 10));
    cases.push(("version line then a 4 GiB packet length", huge, false));
    let mut nokex = banner.clone();
    nokex.extend(kexinit_with_nothing_in_common());
    cases.push(("KEXINIT with no common kex", nokex, false));
    cases.push((
        "not SSH at all",
        b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
        true,
    ));
    cases.push(("closes right after the version line", banner.clone(), true));
    cases.push(("closes at once", Vec::new(), true));

    let keys = keys();
    let dir = TempDir::new("bad-peers");
    let known_hosts = dir.join("known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let mut failures = Vec::new();
    for (label, payload, close) in &cases {
        let (port, h) = bad_peer(payload.clone(), *close);
        let target = Target {
            port,
            known_hosts: known_hosts.clone(),
        };
        let out = run(&key_args(&target, &keys.ed25519), "true", b"", &[], SHORT);
        // OpenSSH's ssh prints two lines for most of these (e.g. "Bad packet
        // length ..." then "ssh_dispatch_run_fatal: ..."): the one-line rule
        // is ours.
        if let Err(e) = check_error_exit(&out, client_kind() == ClientKind::Ours) {
            failures.push(format!("{label}: {e}"));
        }
        let _ = h.join();
    }
    report("bad peers", cases.len(), failures);
}

// ---------------------------------------------------------------------------
// Post-quantum hybrid against a real peer, pty allocation, accept-new.

/// OpenSSH 9.2 has no ML-KEM; AsyncSSH does.
#[test]
fn asyncssh_mlkem768x25519() {
    let py = PyServer::asyncssh();
    let mut a = key_args(&py.target(), &keys().ed25519);
    a.extend(s(&["-v", "-o", "KexAlgorithms=mlkem768x25519-sha256"]));
    let out = run(&a, EXEC_CMD, b"", &[], SHORT);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"out\n");
    if client_kind() == ClientKind::Ours {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("kex: algorithm: mlkem768x25519-sha256"),
            "{err}"
        );
    }
}

/// `-t` allocates a pty (80x24 when local stdout is not a terminal); without
/// it there is none.
#[test]
fn sshd_forced_pty_with_t() {
    let sshd = Sshd::start();
    let mut a = key_args(&sshd.target(), &keys().ed25519);
    a.push("-t".into());
    let out = run(&a, "tty; stty size; exit 3", b"", &[], SHORT);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    assert!(text.contains("\r\n"), "a pty translates newlines: {text:?}");
    assert!(text.contains("24 80"), "{text:?}");
    let a = key_args(&sshd.target(), &keys().ed25519);
    let out = run(&a, "tty", b"", &[], SHORT);
    assert_eq!(out.stdout, b"not a tty\n");
}

/// StrictHostKeyChecking=accept-new records an unknown key; the next strict
/// connection then succeeds.
#[test]
fn sshd_accept_new_records_the_host_key() {
    let sshd = Sshd::start();
    let dir = TempDir::new("accept-new");
    let kh = dir.join("known_hosts");
    let target = Target {
        port: sshd.port,
        known_hosts: kh.clone(),
    };
    let mut a = s(&["-o", "StrictHostKeyChecking=accept-new"]);
    a.extend(key_args(&target, &keys().ed25519));
    let out = run(&a, EXEC_CMD, b"", &[], SHORT);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded = std::fs::read_to_string(&kh).unwrap_or_default();
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{recorded:?}"
    );
    let out = run(
        &key_args(&target, &keys().ed25519),
        EXEC_CMD,
        b"",
        &[],
        SHORT,
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Request/response through pipes (no terminal): the test writes one byte
/// to the client's stdin and waits for the remote `cat` to send it back on
/// stdout (and, with `cat >&2`, on stderr), ten rounds each. Every byte
/// must come back on its own, with no newline and no more input to push it
/// out, as with OpenSSH's `ssh`.
#[test]
fn sshd_one_byte_ping_pong_through_pipes() {
    use std::io::{Read, Write};
    use std::sync::mpsc;

    let sshd = Sshd::start();
    let mut fails = Vec::new();
    for (cmd, on_stderr) in [("cat", false), ("cat >&2", true)] {
        let mut a = key_args(&sshd.target(), &keys().ed25519);
        a.push(dest());
        a.push(cmd.to_string());
        let mut p = spawn_client(&strs(&a), &[]);
        let mut stdin = p.child.stdin.take().unwrap();
        let out = p.child.stdout.take().unwrap();
        let err = p.child.stderr.take().unwrap();
        // Both pipes are drained; the echo is expected on one of them.
        let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
        for (is_err, mut r) in [
            (false, Box::new(out) as Box<dyn Read + Send>),
            (true, Box::new(err)),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                while let Ok(n @ 1..) = r.read(&mut buf) {
                    if tx.send((is_err, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut got_other = Vec::new();
        'rounds: for round in 0..10u8 {
            let byte = b'a' + round;
            if let Err(e) = stdin.write_all(&[byte]).and_then(|()| stdin.flush()) {
                fails.push(format!("{cmd}: round {round}: write to the client: {e}"));
                break;
            }
            // The first round includes connecting and authenticating.
            let wait = if round == 0 {
                SHORT
            } else {
                Duration::from_secs(5)
            };
            let deadline = Instant::now() + wait;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok((is_err, data)) if is_err == on_stderr => {
                        if data != [byte] {
                            fails.push(format!(
                                "{cmd}: round {round}: sent {:?}, got back {:?}",
                                byte as char,
                                String::from_utf8_lossy(&data)
                            ));
                            break 'rounds;
                        }
                        break;
                    }
                    Ok((_, data)) => got_other.extend_from_slice(&data),
                    Err(_) => {
                        fails.push(format!(
                            "{cmd}: round {round}: the byte {:?} did not come back on {} within {wait:?}",
                            byte as char,
                            if on_stderr { "stderr" } else { "stdout" }
                        ));
                        break 'rounds;
                    }
                }
            }
        }
        drop(stdin);
        match p.wait_timeout(SHORT) {
            Some(st) if st.success() => {}
            st => fails.push(format!("{cmd}: after stdin closed: {st:?}")),
        }
        if !got_other.is_empty() {
            fails.push(format!(
                "{cmd}: unexpected output on the other stream: {}",
                show(&got_other, 400)
            ));
        }
        if !fails.is_empty() {
            fails.push(format!("(client: {})", p.cmdline));
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// `-v`, `-vv` and `-vvv` are three levels, as ssh's debug1-3: each shows
/// more than the one before, `-v` already the version lines, the chosen
/// algorithms and the auth methods; only `-vvv` shows packets.
#[test]
fn sshd_verbosity_levels_as_ssh() {
    let sshd = Sshd::start();
    let mut errs = Vec::new();
    for v in ["-v", "-vv", "-vvv"] {
        let mut a = key_args(&sshd.target(), &keys().ed25519);
        a.push(v.into());
        let out = run(&a, "exit 4", b"", &[], SHORT);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(4), "{v}: {err}");
        errs.push(err);
    }
    let (one, two, three) = (&errs[0], &errs[1], &errs[2]);
    assert!(one.len() < two.len() && two.len() < three.len());
    match client_kind() {
        ClientKind::Ours => {
            for e in &errs {
                assert!(
                    e.contains("peer version line version=SSH-2.0-OpenSSH"),
                    "{e}"
                );
                assert!(e.contains("algorithms chosen kex="), "{e}");
                assert!(e.contains("KEXINIT side=\"peer\""), "{e}");
                assert!(e.contains("publickey"), "{e}");
            }
            assert!(
                !one.contains("ssh_proto::") && !one.contains("TRACE"),
                "{one}"
            );
            assert!(
                two.contains("ssh_proto::transport") && !two.contains("TRACE"),
                "{two}"
            );
            assert!(two.contains("close"), "spans close at -vv: {two}");
            assert!(three.contains("TRACE"), "{three}");
        }
        ClientKind::OpenSsh => {
            assert!(one.contains("debug1:") && !one.contains("debug2:"), "{one}");
            assert!(two.contains("debug2:") && !two.contains("debug3:"), "{two}");
            assert!(three.contains("debug3:"), "{three}");
        }
    }
}
