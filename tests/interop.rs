//! The `client` example against real servers on 127.0.0.1: OpenSSH sshd,
//! Dropbear, paramiko and AsyncSSH.

mod support;

use support::*;

const EXEC: &str = "echo out; echo err >&2; exit 7";

fn key(p: &std::path::Path) -> String {
    p.display().to_string()
}

fn assert_exec(r: &Run, label: &str) {
    assert_eq!(
        (
            r.code,
            String::from_utf8_lossy(&r.stdout).as_ref(),
            r.stderr.as_str()
        ),
        (7, "out\n", "err\n"),
        "{label}"
    );
}

#[test]
fn sshd_exec_stdout_stderr_exit_status() {
    let e = env();
    let d = sshd("");
    let r = client(&d, &["-i", &key(&e.ed25519)], EXEC, b"", &[]);
    assert_exec(&r, "sshd ed25519");
    // A command killed by a signal: no exit status, so 255 like OpenSSH.
    let r = client(&d, &["-i", &key(&e.ed25519)], "kill -TERM $$", b"", &[]);
    assert_eq!(r.code, 255, "{}", r.stderr);
}

#[test]
fn sshd_every_algorithm_one_session_each() {
    let e = env();
    let kex = "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,\
ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,\
diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,\
diffie-hellman-group14-sha1,diffie-hellman-group1-sha1,diffie-hellman-group-exchange-sha1";
    let d = sshd(&format!(
        "KexAlgorithms {kex}\nHostKeyAlgorithms ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa\n\
         Ciphers chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-cbc,aes256-cbc,3des-cbc\n\
         MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1\n"
    ));
    let mut rows: Vec<(String, String)> = Vec::new();
    for k in kex.split(',') {
        rows.push(("KexAlgorithms".into(), k.into()));
    }
    for h in [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
    ] {
        rows.push(("HostKeyAlgorithms".into(), h.into()));
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
        rows.push(("Ciphers".into(), c.into()));
    }
    for m in [
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha1-etm@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-512",
        "hmac-sha1",
    ] {
        rows.push(("MACs".into(), m.into()));
    }
    let mut failures = Vec::new();
    for (opt, alg) in &rows {
        let mut extra = vec![
            "-i".to_string(),
            key(&e.ed25519),
            "-v".into(),
            "-o".into(),
            format!("{opt}={alg}"),
        ];
        if opt == "MACs" {
            extra.push("-o".into());
            extra.push("Ciphers=aes128-ctr".into());
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let r = client(&d, &extra, EXEC, b"", &[]);
        let stdout = String::from_utf8_lossy(&r.stdout).into_owned();
        // -v prints the negotiated algorithms; the row's must be among them.
        let used = r
            .stderr
            .lines()
            .any(|l| l.starts_with("debug1: kex:") && l.contains(alg.as_str()));
        let err: String = r
            .stderr
            .lines()
            .filter(|l| !l.starts_with("debug1"))
            .collect::<Vec<_>>()
            .join("\n");
        if r.code != 7 || stdout != "out\n" || err != "err" || !used {
            failures.push(format!(
                "{opt}={alg}: code {} stdout {stdout:?} stderr {:?}",
                r.code, r.stderr
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn sshd_auth_methods() {
    let e = env();
    let d = sshd("");
    // password through SSH_ASKPASS
    let pw = [
        ("SSH_ASKPASS", e.askpass_password.to_str().unwrap()),
        ("SSH_ASKPASS_REQUIRE", "force"),
    ];
    let r = client(&d, &["-o", "PubkeyAuthentication=no"], EXEC, b"", &pw);
    assert_exec(&r, "password");
    // ecdsa and rsa keys, and an encrypted key with its passphrase from askpass
    assert_exec(
        &client(&d, &["-i", &key(&e.ecdsa)], EXEC, b"", &[]),
        "ecdsa key",
    );
    assert_exec(
        &client(&d, &["-i", &key(&e.rsa)], EXEC, b"", &[]),
        "rsa key",
    );
    let pp = [
        ("SSH_ASKPASS", e.askpass_passphrase.to_str().unwrap()),
        ("SSH_ASKPASS_REQUIRE", "force"),
    ];
    assert_exec(
        &client(
            &d,
            &["-i", &key(&e.encrypted), "-o", "PasswordAuthentication=no"],
            EXEC,
            b"",
            &pp,
        ),
        "encrypted key",
    );
    // wrong password: 255 and one line
    let bad = [
        ("SSH_ASKPASS", e.askpass_wrong.to_str().unwrap()),
        ("SSH_ASKPASS_REQUIRE", "force"),
    ];
    let r = client(&d, &["-o", "PubkeyAuthentication=no"], EXEC, b"", &bad);
    assert_eq!(r.code, 255);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("ermission denied") && !r.stderr.contains("panicked"),
        "{}",
        r.stderr
    );
}

#[test]
fn sshd_rsa_sha2_256_and_512_user_keys() {
    let e = env();
    for alg in ["rsa-sha2-256", "rsa-sha2-512"] {
        let d = sshd(&format!("PubkeyAcceptedAlgorithms {alg}\n"));
        assert_exec(
            &client(
                &d,
                &["-i", &key(&e.rsa), "-o", "PasswordAuthentication=no"],
                EXEC,
                b"",
                &[],
            ),
            alg,
        );
    }
}

#[test]
fn sshd_host_key_unknown_or_changed_is_refused() {
    let e = env();
    let d = sshd("");
    let empty = d.dir.path("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let khopt = format!("UserKnownHostsFile={}", empty.display());
    let r = client(&d, &["-i", &key(&e.ed25519), "-o", &khopt], EXEC, b"", &[]);
    assert_eq!(r.code, 255);
    assert!(
        r.stderr.contains("no ssh-ed25519 host key is known"),
        "{}",
        r.stderr
    );
    // A known_hosts entry with another key for the host.
    let other = d.dir.path("other");
    keygen(&other, "ed25519", None, "");
    let wrong = d.dir.path("wrong_known_hosts");
    std::fs::write(
        &wrong,
        format!(
            "[127.0.0.1]:{} {}",
            d.port,
            std::fs::read_to_string(other.with_extension("pub")).unwrap()
        ),
    )
    .unwrap();
    let khopt = format!("UserKnownHostsFile={}", wrong.display());
    let r = client(&d, &["-i", &key(&e.ed25519), "-o", &khopt], EXEC, b"", &[]);
    assert_eq!(r.code, 255);
    assert!(r.stderr.contains("CHANGED"), "{}", r.stderr);
    // accept-new records it, and the next strict connection succeeds.
    let newkh = d.dir.path("new_known_hosts");
    let khopt = format!("UserKnownHostsFile={}", newkh.display());
    let r = client(
        &d,
        &[
            "-i",
            &key(&e.ed25519),
            "-o",
            &khopt,
            "-o",
            "StrictHostKeyChecking=accept-new",
        ],
        EXEC,
        b"",
        &[],
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    let r = client(&d, &["-i", &key(&e.ed25519), "-o", &khopt], EXEC, b"", &[]);
    assert_eq!(r.code, 7, "{}", r.stderr);
}

fn cat_round_trip(d: &Daemon, extra: &[&str], size: usize) {
    let e = env();
    let data = pseudo_random(size, size as u32);
    let mut args = vec!["-i", key(&e.ed25519).leak() as &str];
    args.extend_from_slice(extra);
    let r = client(d, &args, "cat", &data, &[]);
    assert_eq!(r.code, 0, "{} {}", d.name, r.stderr);
    assert_eq!(r.stdout.len(), data.len(), "{}: length", d.name);
    assert_eq!(
        sha256(&r.stdout),
        sha256(&data),
        "{}: sha256 differs",
        d.name
    );
}

#[test]
fn sshd_64_mib_through_cat_both_ways() {
    let d = sshd("");
    cat_round_trip(&d, &[], 64 << 20);
}

#[test]
fn sshd_rekey_during_transfer() {
    // The server rekeys every MiB.
    let d = sshd("RekeyLimit 1M\nLogLevel DEBUG1\n");
    cat_round_trip(&d, &[], 64 << 20);
    // And the client rekeys every MiB.
    cat_round_trip(&d, &["-o", "RekeyLimit=1M"], 16 << 20);
    let log = d.log();
    let kex = log.matches("SSH2_MSG_NEWKEYS received").count();
    assert!(kex > 20, "expected many rekeys in sshd's log, saw {kex}");
}

#[test]
fn sshd_compression() {
    let d = sshd("Compression yes\n");
    let e = env();
    let text: Vec<u8> = (0..300_000)
        .flat_map(|i| format!("compressible line number {i}\n").into_bytes())
        .collect();
    for opts in [&["-C", "-v"][..], &["-o", "Compression=yes", "-v"][..]] {
        let mut args = vec!["-i", key(&e.ed25519).leak() as &str];
        args.extend_from_slice(opts);
        let r = client(&d, &args, "cat", &text, &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout == text, "compressed round trip differs");
        assert!(
            r.stderr.contains("compression: zlib@openssh.com"),
            "{}",
            r.stderr
        );
    }
}

fn peer_suite(d: &Daemon, kbd: bool) {
    let e = env();
    assert_exec(
        &client(d, &["-i", &key(&e.ed25519)], EXEC, b"", &[]),
        d.name,
    );
    let pw = [
        ("SSH_ASKPASS", e.askpass_password.to_str().unwrap()),
        ("SSH_ASKPASS_REQUIRE", "force"),
    ];
    assert_exec(
        &client(d, &["-o", "PubkeyAuthentication=no"], EXEC, b"", &pw),
        d.name,
    );
    if kbd {
        // Only keyboard-interactive left: the prompt is answered through askpass.
        let r = client(
            d,
            &[
                "-o",
                "PubkeyAuthentication=no",
                "-o",
                "PasswordAuthentication=no",
            ],
            EXEC,
            b"",
            &pw,
        );
        assert_exec(&r, &format!("{} keyboard-interactive", d.name));
    }
    cat_round_trip(d, &[], 64 << 20);
}

#[test]
fn dropbear_suite() {
    let d = dropbear();
    peer_suite(&d, false);
}

#[test]
fn paramiko_suite() {
    let d = pyserver("paramiko_server.py");
    peer_suite(&d, true);
}

#[test]
fn asyncssh_suite() {
    let d = pyserver("asyncssh_server.py");
    peer_suite(&d, true);
}

#[test]
fn garbage_peer_gives_one_line_and_255() {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let _ = s.write_all(b"SSH-2.0-garbage\r\n");
            let junk = pseudo_random(4096, 99);
            let _ = s.write_all(&junk);
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    });
    let kh = TempDir::new("garbage");
    std::fs::write(kh.path("kh"), "").unwrap();
    let argv: Vec<String> = vec![
        example_bin("client").display().to_string(),
        "-p".into(),
        port.to_string(),
        "-o".into(),
        format!("UserKnownHostsFile={}", kh.path("kh").display()),
        "-o".into(),
        "BatchMode=yes".into(),
        "x@127.0.0.1".into(),
        "true".into(),
    ];
    let r = run_timeout(&argv, b"", &[], std::time::Duration::from_secs(30));
    let _ = t.join();
    assert_eq!(r.code, 255);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn sshd_forced_pty_with_t() {
    let e = env();
    let d = sshd("");
    let r = client(
        &d,
        &["-t", "-i", &key(&e.ed25519)],
        "tty; stty size; exit 3",
        b"",
        &[],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.starts_with("/dev/pts/"), "{out:?}");
    assert!(out.contains("\r\n"), "a pty translates newlines: {out:?}");
    assert!(
        out.contains("24 80"),
        "default size 80x24 when local stdout is not a terminal: {out:?}"
    );
    // Without -t there is no terminal.
    let r = client(&d, &["-i", &key(&e.ed25519)], "tty", b"", &[]);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "not a tty\n");
}

#[test]
fn asyncssh_post_quantum_mlkem768x25519() {
    let e = env();
    let d = pyserver("asyncssh_server.py");
    let r = client(
        &d,
        &[
            "-v",
            "-i",
            &key(&e.ed25519),
            "-o",
            "KexAlgorithms=mlkem768x25519-sha256",
        ],
        EXEC,
        b"",
        &[],
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("debug1: kex: algorithm: mlkem768x25519-sha256"),
        "{}",
        r.stderr
    );
    assert_eq!(String::from_utf8_lossy(&r.stdout), "out\n");
}
