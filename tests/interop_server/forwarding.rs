//! OpenSSH `ssh -L`, `-R`, `-D`, `-W` and `-J` against the `server`
//! example, and the server's forwarding policy (sshd's options and the
//! authorized_keys options) as OpenSSH's client sees it.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::{Arc, Mutex};

use super::*;

/// Writes `data` to `s` while reading the echo back; what came back.
fn round_trip<S: Read + Write + Send + 'static>(s: S, clone: S, data: &[u8]) -> Vec<u8> {
    let mut w = s;
    let mut r = clone;
    std::thread::scope(|sc| {
        let reader = sc.spawn(move || {
            let mut got = Vec::new();
            let _ = r.read_to_end(&mut got);
            got
        });
        w.write_all(data).unwrap();
        drop(w);
        reader.join().unwrap()
    })
}

fn tcp_round_trip(port: u16, data: &[u8]) -> Result<(), String> {
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect {port}: {e}"))?;
    s.set_read_timeout(Some(SHORT)).unwrap();
    let c = s.try_clone().unwrap();
    // Half-close after writing: the echo ends, the tunnel passes the EOF.
    struct Half(TcpStream);
    impl Read for Half {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(b)
        }
    }
    impl Write for Half {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Drop for Half {
        fn drop(&mut self) {
            let _ = self.0.shutdown(std::net::Shutdown::Write);
        }
    }
    let got = round_trip(Half(s), Half(c), data);
    if sha256_hex(&got) != sha256_hex(data) {
        return Err(format!(
            "port {port}: {} bytes came back of {}",
            got.len(),
            data.len()
        ));
    }
    Ok(())
}

fn unix_round_trip(path: &Path, data: &[u8]) -> Result<(), String> {
    let s = UnixStream::connect(path).map_err(|e| format!("connect {}: {e}", path.display()))?;
    s.set_read_timeout(Some(SHORT)).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = s;
    let got = std::thread::scope(|sc| {
        let reader = sc.spawn(move || {
            let mut got = Vec::new();
            let _ = r.read_to_end(&mut got);
            got
        });
        w.write_all(data).unwrap();
        let _ = w.shutdown(std::net::Shutdown::Write);
        reader.join().unwrap()
    });
    if sha256_hex(&got) != sha256_hex(data) {
        return Err(format!("{}: {} bytes came back", path.display(), got.len()));
    }
    Ok(())
}

/// A long-running OpenSSH `ssh`, killed on drop; its stderr collected.
struct Bg {
    child: Child,
    err: Arc<Mutex<String>>,
    _home: TempDir,
}

impl Bg {
    fn start(args: &[String]) -> Bg {
        let home = TempDir::new("ssh-bg-home");
        let mut cmd = Command::new(require_peer("ssh"));
        cmd.args(args)
            .env("HOME", home.path())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("SSH_ASKPASS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ssh");
        let err = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let e2 = err.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut e = e2.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        Bg {
            child,
            err,
            _home: home,
        }
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits for a stderr line containing `needle`; the line.
    fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + SHORT;
        loop {
            if let Some(l) = self.stderr().lines().find(|l| l.contains(needle)) {
                return l.to_string();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("ssh exited ({st}) before {needle:?}: {}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} from ssh: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until 127.0.0.1:`port` accepts connections.
fn wait_listening(port: u16) {
    let deadline = Instant::now() + SHORT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ssh -N` with the ed25519 key and `fwd` flags, verbose enough for its
/// forwarding messages.
fn ssh_n(srv: &OurServer, fwd: &[String]) -> Bg {
    let mut a = srv.key_args(&keys().ed25519);
    a.extend(s(&["-N", "-o", "ExitOnForwardFailure=yes"]));
    a.extend(fwd.iter().cloned());
    a.push(format!("{USER}@127.0.0.1"));
    Bg::start(&a)
}

fn runtimes() -> [&'static str; 3] {
    ["mio", "tokio", "blocking"]
}

/// `-L` (TCP and to a Unix socket), `-R` (port 0 and a Unix socket) and
/// `-D` (curl through SOCKS5 and SOCKS4) from one OpenSSH client, under
/// each runtime of the server; the remote listeners close with the
/// connection.
#[test]
fn openssh_local_remote_and_dynamic_forwards() {
    let echo_port = tcp_echo();
    let http = http_hello();
    let dir = writable_dir("fwd");
    let sock = unix_echo(dir.path());
    let remote_sock = dir.join("remote.sock");
    let data = pseudo_random_bytes(1 << 20, 7);
    for rt in runtimes() {
        let srv = OurServer::start_with(ServerOpts {
            extra_args: s(&["--runtime", rt]),
            ..Default::default()
        });
        let (l1, l2, d) = (free_port(), free_port(), free_port());
        let mut bg = ssh_n(
            &srv,
            &s(&[
                "-L",
                &format!("127.0.0.1:{l1}:127.0.0.1:{echo_port}"),
                "-L",
                &format!("127.0.0.1:{l2}:{}", sock.display()),
                "-R",
                &format!("0:127.0.0.1:{echo_port}"),
                "-R",
                &format!("{}:127.0.0.1:{echo_port}", remote_sock.display()),
                "-D",
                &format!("127.0.0.1:{d}"),
            ]),
        );
        let line = bg.wait_line("Allocated port");
        let want = format!("for remote forward to 127.0.0.1:{echo_port}");
        assert!(line.contains(&want), "{rt}: {line}");
        let rport: u16 = line
            .split_whitespace()
            .nth(2)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{rt}: {line}"));
        wait_listening(l1);
        wait_listening(l2);
        wait_listening(d);
        let mut errs = Vec::new();
        for (what, r) in [
            ("-L tcp", tcp_round_trip(l1, &data)),
            ("-L unix", tcp_round_trip(l2, &data)),
            ("-R 0", tcp_round_trip(rport, &data)),
            ("-R unix", unix_round_trip(&remote_sock, &data)),
        ] {
            if let Err(e) = r {
                errs.push(format!("{rt} {what}: {e}"));
            }
        }
        for flag in ["--socks5-hostname", "--socks4"] {
            let out = Command::new(require_peer("/usr/bin/curl"))
                .args(["-s", "--max-time", "20", flag, &format!("127.0.0.1:{d}")])
                .arg(format!("http://127.0.0.1:{http}/"))
                .output()
                .unwrap();
            if out.stdout != b"hello" {
                errs.push(format!("{rt} -D {flag}: {:?}", lossy(&out.stdout)));
            }
        }
        assert!(errs.is_empty(), "{errs:?}\nssh: {}", bg.stderr());
        drop(bg);
        // The server's listeners close with the connection.
        let deadline = Instant::now() + SHORT;
        while TcpStream::connect(("127.0.0.1", rport)).is_ok() || remote_sock.exists() {
            assert!(
                Instant::now() < deadline,
                "{rt}: remote forward still listening after the connection ended"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `ssh -W` carries stdin and stdout to the echo server.
#[test]
fn openssh_stdio_forward() {
    let echo_port = tcp_echo();
    let srv = OurServer::start();
    let data = pseudo_random_bytes(256 << 10, 9);
    let mut a = srv.key_args(&keys().ed25519);
    a.extend(s(&["-W", &format!("127.0.0.1:{echo_port}")]));
    a.push(format!("{USER}@127.0.0.1"));
    let out = run_prog(&require_peer("ssh"), &a, Input::Bytes(&data), &[], SHORT);
    assert_eq!(
        sha256_hex(&out.stdout),
        sha256_hex(&data),
        "{} bytes back; stderr {}",
        out.stdout.len(),
        lossy(&out.stderr)
    );
}

/// `ssh -J` through our server to sshd, and through sshd to our server.
#[test]
fn openssh_proxy_jump_both_ways() {
    let srv = OurServer::start();
    let sshd = Sshd::start();
    let dir = TempDir::new("jump");
    // One known_hosts and one config for every hop (the jump's ssh reads
    // the config, not the command line's -o).
    let kh = dir.join("known_hosts");
    let mut text = std::fs::read_to_string(&srv.known_hosts).unwrap();
    text.push_str(&std::fs::read_to_string(&sshd.known_hosts).unwrap());
    std::fs::write(&kh, text).unwrap();
    let cfg = dir.join("config");
    std::fs::write(
        &cfg,
        format!(
            "Host *\n  User {USER}\n  IdentityFile {}\n  IdentitiesOnly yes\n  BatchMode yes\n  \
             UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  \
             PasswordAuthentication no\n  KbdInteractiveAuthentication no\n  ConnectTimeout 15\n",
            keys().ed25519.display(),
            kh.display()
        ),
    )
    .unwrap();
    for (jump, target, what) in [
        (srv.port, sshd.port, "through our server to sshd"),
        (sshd.port, srv.port, "through sshd to our server"),
    ] {
        let a = s(&[
            "-F",
            &path_str(&cfg),
            "-J",
            &format!("127.0.0.1:{jump}"),
            "-p",
            &target.to_string(),
            "127.0.0.1",
            "echo jumped",
        ]);
        let out = run_prog(&require_peer("ssh"), &a, Input::Null, &[], SHORT);
        assert_eq!(
            (out.status.code(), lossy(&out.stdout)),
            (Some(0), "jumped\n".to_string()),
            "{what}: {}",
            lossy(&out.stderr)
        );
    }
}

/// `ssh -W` (a direct-tcpip open) under a server option or key option:
/// exit status and stderr.
fn stdio_open(srv: &OurServer, key: &Path, port: u16) -> Output {
    let mut a = srv.key_args(key);
    a.extend(s(&["-W", &format!("127.0.0.1:{port}")]));
    a.push(format!("{USER}@127.0.0.1"));
    run_prog(&require_peer("ssh"), &a, Input::Bytes(b"x"), &[], SHORT)
}

/// `ssh -R PORT:… -o ExitOnForwardFailure=yes true`: exit status and
/// stderr.
fn remote_request(srv: &OurServer, key: &Path, spec: &str) -> Output {
    let mut a = srv.key_args(key);
    a.extend(s(&["-o", "ExitOnForwardFailure=yes", "-R", spec]));
    a.push(format!("{USER}@127.0.0.1"));
    a.push("echo session".into());
    run_prog(&require_peer("ssh"), &a, Input::Null, &[], SHORT)
}

fn check_open(out: &Output, allowed: bool) -> Result<(), String> {
    let err = lossy(&out.stderr);
    if allowed {
        if out.stdout == b"x" {
            return Ok(());
        }
        return Err(format!("open refused: {err}"));
    }
    if out.status.code() == Some(255)
        && err.contains("open failed: administratively prohibited: open failed")
    {
        return Ok(());
    }
    Err(format!(
        "expected a refused open, got status {:?} stdout {:?} stderr {err}",
        out.status.code(),
        lossy(&out.stdout)
    ))
}

fn check_listen(out: &Output, allowed: bool) -> Result<(), String> {
    let err = lossy(&out.stderr);
    match (allowed, out.status.code()) {
        (true, Some(0)) if out.stdout == b"session\n" => Ok(()),
        (false, Some(255)) if err.contains("remote port forwarding failed for listen port") => {
            Ok(())
        }
        _ => Err(format!(
            "expected the forward {}, got status {:?} stdout {:?} stderr {err}",
            if allowed { "accepted" } else { "refused" },
            out.status.code(),
            lossy(&out.stdout)
        )),
    }
}

/// sshd's forwarding options and the authorized_keys options, each
/// enforced: what is refused reads as from sshd, the rest still works.
#[test]
fn forwarding_policy_is_enforced() {
    let echo_port = tcp_echo();
    let other_port = tcp_echo();
    let keys = keys();
    let ed_pub = public_key_line(&pub_of(&keys.ed25519));
    let mut failures = Vec::new();
    let mut total = 0;
    let mut check = |what: &str, r: Result<(), String>| {
        total += 1;
        if let Err(e) = r {
            failures.push(format!("{what}: {e}"));
        }
    };

    // Server options.
    let cases: &[(&[&str], &str, bool, bool)] = &[
        // (options, what, direct-tcpip allowed, tcpip-forward allowed)
        (&[], "defaults", true, true),
        (
            &["AllowTcpForwarding=no"],
            "AllowTcpForwarding=no",
            false,
            false,
        ),
        (
            &["AllowTcpForwarding=local"],
            "AllowTcpForwarding=local",
            true,
            false,
        ),
        (
            &["AllowTcpForwarding=remote"],
            "AllowTcpForwarding=remote",
            false,
            true,
        ),
        (
            &["DisableForwarding=yes"],
            "DisableForwarding=yes",
            false,
            false,
        ),
        (&["PermitListen=none"], "PermitListen=none", true, false),
    ];
    for (opts, what, open, listen) in cases {
        let srv = OurServer::start_with(ServerOpts::with_options(opts));
        check(
            what,
            check_open(&stdio_open(&srv, &keys.ed25519, echo_port), *open),
        );
        check(
            what,
            check_listen(
                &remote_request(&srv, &keys.ed25519, "0:127.0.0.1:1"),
                *listen,
            ),
        );
    }
    // PermitOpen: only the listed destination.
    let srv = OurServer::start_with(ServerOpts::with_options(&[&format!(
        "PermitOpen=127.0.0.1:{echo_port}"
    )]));
    check(
        "PermitOpen listed",
        check_open(&stdio_open(&srv, &keys.ed25519, echo_port), true),
    );
    check(
        "PermitOpen other",
        check_open(&stdio_open(&srv, &keys.ed25519, other_port), false),
    );
    // PermitListen: only the listed port.
    let lp = free_port();
    let srv = OurServer::start_with(ServerOpts::with_options(&[&format!("PermitListen={lp}")]));
    check(
        "PermitListen listed",
        check_listen(
            &remote_request(&srv, &keys.ed25519, &format!("{lp}:127.0.0.1:1")),
            true,
        ),
    );
    check(
        "PermitListen other",
        check_listen(&remote_request(&srv, &keys.ed25519, "0:127.0.0.1:1"), false),
    );

    // Key options.
    let key_cases: &[(String, &str, bool, bool)] = &[
        (
            "no-port-forwarding".into(),
            "no-port-forwarding",
            false,
            false,
        ),
        ("restrict".into(), "restrict", false, false),
        (
            "restrict,port-forwarding".into(),
            "restrict,port-forwarding",
            true,
            true,
        ),
        (
            format!("permitopen=\"127.0.0.1:{echo_port}\""),
            "permitopen= listed",
            true,
            true,
        ),
        (
            format!("permitlisten=\"{lp}\""),
            "permitlisten= other port",
            true,
            false,
        ),
    ];
    for (opt, what, open, listen) in key_cases {
        let srv = OurServer::start_with(ServerOpts {
            authorized_keys: Some(format!("{opt} {ed_pub}\n")),
            ..Default::default()
        });
        check(
            what,
            check_open(&stdio_open(&srv, &keys.ed25519, echo_port), *open),
        );
        check(
            what,
            check_listen(
                &remote_request(&srv, &keys.ed25519, "0:127.0.0.1:1"),
                *listen,
            ),
        );
        if opt.starts_with("permitopen") {
            check(
                "permitopen= other",
                check_open(&stdio_open(&srv, &keys.ed25519, other_port), false),
            );
        }
    }

    // A privileged port for a user who is not root, a taken port, and a
    // destination that refuses the connection.
    let srv = OurServer::start();
    check(
        "privileged port",
        check_listen(
            &remote_request(&srv, &keys.ed25519, "1023:127.0.0.1:1"),
            false,
        ),
    );
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    check(
        "taken port",
        check_listen(
            &remote_request(&srv, &keys.ed25519, &format!("{taken_port}:127.0.0.1:1")),
            false,
        ),
    );
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = stdio_open(&srv, &keys.ed25519, closed);
    let err = lossy(&out.stderr);
    check(
        "connect refused",
        if out.status.code() == Some(255)
            && err.contains("open failed: connect failed: Connection refused")
        {
            Ok(())
        } else {
            Err(format!("status {:?} stderr {err}", out.status.code()))
        },
    );
    // Without ExitOnForwardFailure the session goes on after a refusal.
    let mut a = srv.key_args(&keys.ed25519);
    a.extend(s(&["-R", "1023:127.0.0.1:1"]));
    a.push(format!("{USER}@127.0.0.1"));
    a.push("echo still here".into());
    let out = run_prog(&require_peer("ssh"), &a, Input::Null, &[], SHORT);
    let err = lossy(&out.stderr);
    check(
        "session goes on",
        if out.stdout == b"still here\n"
            && err.contains("Warning: remote port forwarding failed for listen port 1023")
        {
            Ok(())
        } else {
            Err(format!("stdout {:?} stderr {err}", lossy(&out.stdout)))
        },
    );
    let mut srv = srv;
    srv.assert_serving();
    drop(taken);
    report("forwarding policy checks", total, failures);
}

/// Our library client against our server: remote forwards with their
/// forwarded connections and cancel, then more forward requests than one
/// connection may hold: the rest are refused, the session goes on.
#[test]
fn library_client_remote_forwards_are_bounded() {
    let echo_port = tcp_echo();
    let srv = OurServer::start();
    let key = ssh_blocking::load_private_key(&keys().ed25519, None).unwrap();
    let c = ssh_blocking::Client::connect_with(
        ("127.0.0.1", srv.port),
        Arc::new(ssh_blocking::Config::default()),
        ssh_blocking::HostKeyCheck::KnownHostsFile(srv.known_hosts.clone()),
        Some(SHORT),
    )
    .unwrap();
    c.auth_publickey(USER, Arc::new(key)).unwrap();

    // A forward, a connection to it carried to the echo server, a cancel.
    let port = c.forward_tcpip("127.0.0.1", 0).unwrap();
    let data = pseudo_random_bytes(300 << 10, 3);
    let d2 = data.clone();
    let client = std::thread::spawn(move || tcp_round_trip(port, &d2));
    let (ch, kind) = c.accept_forwarded().unwrap();
    match &kind {
        ssh_blocking::proto::ChannelKind::ForwardedTcpip {
            address, port: p, ..
        } => assert_eq!((address.as_str(), *p), ("127.0.0.1", u32::from(port))),
        k => panic!("unexpected {k:?}"),
    }
    let echo_sock = TcpStream::connect(("127.0.0.1", echo_port)).unwrap();
    std::thread::spawn(move || ssh_blocking::splice_tcp(echo_sock, ch));
    client.join().unwrap().unwrap();
    c.cancel_forward_tcpip("127.0.0.1", port).unwrap();
    let deadline = Instant::now() + SHORT;
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "cancelled forward still listens");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        c.cancel_forward_tcpip("127.0.0.1", port)
            .unwrap_err()
            .kind(),
        ssh_blocking::ErrorKind::GlobalRequest
    );

    // 300 requests: 256 held at once, the rest refused.
    let mut granted = 0;
    let mut refused = 0;
    for _ in 0..300 {
        match c.forward_tcpip("127.0.0.1", 0) {
            Ok(_) => granted += 1,
            Err(e) if e.kind() == ssh_blocking::ErrorKind::GlobalRequest => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((granted, refused), (256, 44));
    assert_eq!(c.exec("echo ok").unwrap().stdout, b"ok\n");
}
