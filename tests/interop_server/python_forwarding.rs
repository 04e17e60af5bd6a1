//! Port forwarding through the `server` example with third-party clients:
//! paramiko's `Transport` (direct-tcpip channels, `tcpip-forward` with port
//! 0 and the allocated port in the reply, forwarded-tcpip channels,
//! `cancel-tcpip-forward`) and AsyncSSH's `forward_local_port`,
//! `forward_remote_port` and `forward_socks`, driven by
//! `tests/peers/forward_client.py`, under each of the server's runtimes;
//! and the refusals of `-o AllowTcpForwarding`, `PermitOpen`,
//! `PermitListen` and the authorized_keys options, after which the
//! connection still runs a command; and a window adjust for a closed
//! channel (which paramiko sends now and then) left without consequence.
//!
//! The destination of every forward is a TCP echo server the test runs on
//! 127.0.0.1 ([`EchoServer`]); it counts its connections, so a refused open
//! is seen not to have connected anywhere.

use super::*;

use std::net::{Shutdown, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The server's runtimes, each named explicitly (so `SSHLIB_RUNTIME` does
/// not relabel the default).
const RUNTIMES: [&str; 3] = ["mio", "tokio", "blocking"];

/// How long one run of the script may take (it bounds each of its own
/// steps at 30 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A TCP echo server on 127.0.0.1: each connection gets back what it
/// sends, then a half-close after its EOF. Stops accepting on drop.
struct EchoServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl EchoServer {
    fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the echo server");
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (connections.clone(), stop.clone());
        let acceptor = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(RUN_TIMEOUT));
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match conn.read(&mut buf) {
                            Ok(0) => {
                                let _ = conn.shutdown(Shutdown::Write);
                                break;
                            }
                            Ok(n) => {
                                if conn.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                });
            }
        });
        EchoServer {
            port,
            connections,
            stop,
            acceptor: Some(acceptor),
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// `--runtime RT` plus `options` for [`OurServer`].
fn server_with(runtime: &str, options: &[&str]) -> OurServer {
    OurServer::start_with(ServerOpts {
        extra_args: s(&["--runtime", runtime]),
        options: s(options),
        ..Default::default()
    })
}

/// `python3 tests/peers/forward_client.py` against `srv` as sshtest with
/// the ed25519 key, running `checks` (names the script knows) in order on
/// one connection.
fn forward_client(srv: &OurServer, lib: &str, echo: &EchoServer, checks: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/forward_client.py");
    assert!(script.exists(), "{} is missing", script.display());
    let mut a = vec![
        "-u".to_string(),
        path_str(&script),
        "127.0.0.1".into(),
        srv.port.to_string(),
        USER.into(),
        path_str(&srv.known_hosts),
        "--key".into(),
        path_str(&keys().ed25519),
        "--lib".into(),
        lib.into(),
        "--echo-port".into(),
        echo.port.to_string(),
    ];
    a.extend(checks.iter().map(|c| c.to_string()));
    // AsyncSSH's imports warn about DSA on stderr; keep the logs readable.
    let env = [("PYTHONWARNINGS", "ignore".to_string())];
    run_prog(&python(), &a, Input::Null, &env, RUN_TIMEOUT)
}

/// Every check printed `NAME: ok`, in order, then `done`, exit 0.
fn check_forward_run(out: &Output, checks: &[&str]) -> Result<(), String> {
    let text = lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let mut want: Vec<String> = checks.iter().map(|c| format!("{c}: ok")).collect();
    want.push("done".into());
    if out.status.code() == Some(0) && lines == want {
        return Ok(());
    }
    Err(format!(
        "expected {want:?} and exit 0, got {} and {lines:?}; stderr: {}",
        describe_status(&out.status),
        tail(&lossy(&out.stderr), 3000)
    ))
}

/// The number of lines of the server log from `mark` on that contain
/// `needle`, once it is `want` (the log is collected by another thread, so
/// a line may come in after the client is done) or after 5 s.
fn log_lines_with(srv: &OurServer, mark: usize, needle: &str, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = srv
            .daemon
            .log_since(mark)
            .lines()
            .filter(|l| l.contains(needle))
            .count();
        if n == want || Instant::now() >= deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// sshd's wording for a refused forward, which the server logs.
const DENIED: &str = "but the request was denied.";

/// paramiko under each runtime: a direct-tcpip channel to the echo server
/// carries 256 KiB both ways; one to a closed port fails with code 2
/// (connect failed); `request_port_forward('127.0.0.1', 0)` gets the port
/// the server allocated, a connection to it arrives as a forwarded-tcpip
/// channel naming that address and port and the connection's source, and
/// 256 KiB go both ways; after `cancel-tcpip-forward` (its reply checked)
/// the port refuses connections. The same for the addresses `localhost`
/// and `""` (loopback with the default `GatewayPorts no`: the channel
/// names the address as asked, and after the cancel neither 127.0.0.1 nor
/// ::1 accepts). A command still runs on the connection.
#[test]
fn paramiko_direct_tcpip_and_remote_forward() {
    require_python_module("paramiko");
    let echo = EchoServer::start();
    let checks = [
        "direct",
        "direct-closed",
        "remote",
        "remote@localhost",
        "remote@",
        "exec",
    ];
    let mut failures = Vec::new();
    for rt in RUNTIMES {
        let mut srv = server_with(rt, &[]);
        let before = echo.connections();
        let out = forward_client(&srv, "paramiko", &echo, &checks);
        if let Err(e) = check_forward_run(&out, &checks) {
            failures.push(format!(
                "{rt}: {e}; server log: {}",
                tail(&srv.daemon.log(), 3000)
            ));
        }
        if echo.connections() != before + 1 {
            failures.push(format!(
                "{rt}: the echo server got {} connections, expected 1 (the direct-tcpip)",
                echo.connections() - before
            ));
        }
        if let Err(e) = srv.check_serving() {
            failures.push(format!("{rt}: {e}"));
        }
    }
    report("paramiko forwarding runs", RUNTIMES.len(), failures);
}

/// AsyncSSH under each runtime: `forward_local_port` (direct-tcpip per
/// connection to a local listener), `forward_remote_port` with port 0
/// (tcpip-forward, the allocated port, forwarded-tcpip channels the client
/// connects to the echo server; closing the listener cancels it and the
/// port refuses connections) and `forward_socks` with a SOCKS5 CONNECT to
/// the echo server, each 256 KiB both ways; then a command.
#[test]
fn asyncssh_local_remote_and_socks_forwards() {
    require_python_module("asyncssh");
    let echo = EchoServer::start();
    let checks = ["local", "remote", "socks", "exec"];
    let mut failures = Vec::new();
    for rt in RUNTIMES {
        let mut srv = server_with(rt, &[]);
        let before = echo.connections();
        let out = forward_client(&srv, "asyncssh", &echo, &checks);
        if let Err(e) = check_forward_run(&out, &checks) {
            failures.push(format!(
                "{rt}: {e}; server log: {}",
                tail(&srv.daemon.log(), 3000)
            ));
        }
        if echo.connections() != before + 3 {
            failures.push(format!(
                "{rt}: the echo server got {} connections, expected 3 (local, remote, socks)",
                echo.connections() - before
            ));
        }
        if let Err(e) = srv.check_serving() {
            failures.push(format!("{rt}: {e}"));
        }
    }
    report("AsyncSSH forwarding runs", RUNTIMES.len(), failures);
}

/// `-o AllowTcpForwarding=no` under each runtime: paramiko's direct-tcpip
/// open fails with ChannelException code 1 (administratively prohibited)
/// and `request_port_forward` with SSHException, AsyncSSH's
/// `open_connection` with ChannelOpenError code 1 and
/// `forward_remote_port` with ChannelListenError; after each the
/// connection still runs a command, nothing reached the echo server, and
/// the server logged each refusal as sshd does.
#[test]
fn forwarding_refused_with_allow_tcp_forwarding_no() {
    require_python_module("paramiko");
    require_python_module("asyncssh");
    let echo = EchoServer::start();
    let runs: [(&str, &[&str]); 2] = [
        (
            "paramiko",
            &["direct-refused", "exec", "remote-refused", "exec"],
        ),
        ("asyncssh", &["direct-refused", "remote-refused", "exec"]),
    ];
    let mut failures = Vec::new();
    for rt in RUNTIMES {
        let mut srv = server_with(rt, &["AllowTcpForwarding=no"]);
        for (lib, checks) in runs {
            let mark = srv.daemon.log_len();
            let out = forward_client(&srv, lib, &echo, checks);
            if let Err(e) = check_forward_run(&out, checks) {
                failures.push(format!(
                    "{rt}, {lib}: {e}; server log: {}",
                    tail(&srv.daemon.log_since(mark), 3000)
                ));
            }
            let denied = log_lines_with(&srv, mark, DENIED, 2);
            if denied != 2 {
                failures.push(format!(
                    "{rt}, {lib}: {denied} log lines with {DENIED:?}, expected 2: {}",
                    tail(&srv.daemon.log_since(mark), 3000)
                ));
            }
        }
        if let Err(e) = srv.check_serving() {
            failures.push(format!("{rt}: {e}"));
        }
    }
    if echo.connections() != 0 {
        failures.push(format!(
            "the echo server got {} connections through refused forwards",
            echo.connections()
        ));
    }
    report(
        "AllowTcpForwarding=no runs",
        RUNTIMES.len() * runs.len(),
        failures,
    );
}

/// Forwarding narrowed by server options and authorized_keys options, with
/// paramiko (the policy is the same code under every runtime: mio only).
/// Each case runs its checks on one connection, a command last; a refused
/// open is code 1 (administratively prohibited), a refused listen an
/// SSHException. `PermitOpen` compares the host as given (`localhost` does
/// not allow `127.0.0.1`), and a port-0 listen matches only a `*` port of
/// `PermitListen`, as in sshd.
#[test]
fn forwarding_policy_options_with_paramiko() {
    require_python_module("paramiko");
    let echo = EchoServer::start();
    let keys = keys();
    let ed_pub = public_key_line(&pub_of(&keys.ed25519));
    let ep = echo.port;
    let open_echo = format!("PermitOpen=127.0.0.1:{ep}");
    let open_localhost = format!("PermitOpen=localhost:{ep}");
    let key_open_echo = format!("permitopen=\"127.0.0.1:{ep}\"");
    // (label, -o options, key options, checks)
    let cases: Vec<(&str, Vec<&str>, &str, Vec<&str>)> = vec![
        (
            "AllowTcpForwarding=local",
            vec!["AllowTcpForwarding=local"],
            "",
            vec!["direct", "remote-refused", "exec"],
        ),
        (
            "AllowTcpForwarding=remote",
            vec!["AllowTcpForwarding=remote"],
            "",
            vec!["direct-refused", "remote", "exec"],
        ),
        (
            "DisableForwarding=yes",
            vec!["DisableForwarding=yes"],
            "",
            vec!["direct-refused", "remote-refused", "exec"],
        ),
        (
            "PermitOpen of the echo port",
            vec![&open_echo],
            "",
            vec!["direct", "direct-refused-closed", "exec"],
        ),
        (
            "PermitOpen of another port",
            vec!["PermitOpen=127.0.0.1:1"],
            "",
            vec!["direct-refused", "remote", "exec"],
        ),
        (
            "PermitOpen by name",
            vec![&open_localhost],
            "",
            vec!["direct-refused", "exec"],
        ),
        (
            "PermitOpen=none",
            vec!["PermitOpen=none"],
            "",
            vec!["direct-refused", "remote", "exec"],
        ),
        (
            "PermitListen=127.0.0.1:*",
            vec!["PermitListen=127.0.0.1:*"],
            "",
            vec!["remote", "direct", "exec"],
        ),
        (
            "PermitListen of another port",
            vec!["PermitListen=127.0.0.1:1"],
            "",
            vec!["remote-refused", "direct", "exec"],
        ),
        (
            "key permitopen of the echo port",
            vec![],
            &key_open_echo,
            vec!["direct", "direct-refused-closed", "remote", "exec"],
        ),
        (
            "key permitopen of another port",
            vec![],
            "permitopen=\"127.0.0.1:1\"",
            vec!["direct-refused", "remote", "exec"],
        ),
        (
            "key permitlisten of another port",
            vec![],
            "permitlisten=\"127.0.0.1:1\"",
            vec!["remote-refused", "direct", "exec"],
        ),
        (
            "key no-port-forwarding",
            vec![],
            "no-port-forwarding",
            vec!["direct-refused", "remote-refused", "exec"],
        ),
        (
            "key restrict",
            vec![],
            "restrict",
            vec!["direct-refused", "remote-refused", "exec"],
        ),
        (
            "key restrict,port-forwarding",
            vec![],
            "restrict,port-forwarding",
            vec!["direct", "remote", "exec"],
        ),
    ];
    let mut failures = Vec::new();
    for (label, options, key_opts, checks) in &cases {
        let mut opts = ServerOpts {
            extra_args: s(&["--runtime", "mio"]),
            options: options.iter().map(|o| o.to_string()).collect(),
            ..Default::default()
        };
        if !key_opts.is_empty() {
            opts.authorized_keys = Some(format!("{key_opts} {ed_pub}\n"));
        }
        let srv = OurServer::start_with(opts);
        let out = forward_client(&srv, "paramiko", &echo, checks);
        if let Err(e) = check_forward_run(&out, checks) {
            failures.push(format!(
                "{label}: {e}; server log: {}",
                tail(&srv.daemon.log(), 2000)
            ));
        }
        let refusals = checks.iter().filter(|c| c.contains("refused")).count();
        let denied = log_lines_with(&srv, 0, DENIED, refusals);
        if denied != refusals {
            failures.push(format!(
                "{label}: {denied} log lines with {DENIED:?}, expected {refusals}"
            ));
        }
    }
    report("forwarding policy cases", cases.len(), failures);
}

/// A CHANNEL_WINDOW_ADJUST for a channel after both sides' CLOSE is
/// ignored, and the connection goes on, as with sshd (which logs "Received
/// window adjust for non-open channel N." and carries on). paramiko sends
/// one now and then: `Channel.recv` decides on a window adjust, its
/// transport thread meanwhile answers the server's CLOSE, and the adjust
/// goes out after that CLOSE. The script sends it on purpose once the
/// channel is closed, then runs a command on the connection.
#[test]
fn window_adjust_after_close_is_ignored() {
    require_python_module("paramiko");
    let echo = EchoServer::start();
    let checks = ["late-window-adjust", "exec"];
    let mut failures = Vec::new();
    for rt in RUNTIMES {
        let srv = server_with(rt, &[]);
        let out = forward_client(&srv, "paramiko", &echo, &checks);
        if let Err(e) = check_forward_run(&out, &checks) {
            failures.push(format!(
                "{rt}: {e}; server log: {}",
                tail(&srv.daemon.log(), 1500)
            ));
        }
    }
    report("late window adjust runs", RUNTIMES.len(), failures);
}
