//! The `client` example's forwarding flags against OpenSSH's sshd, as
//! ssh(1) has them: `-L` (TCP and Unix sockets on either side) and `-R`
//! (a fixed port, port 0 with its "Allocated port" line, a Unix socket) to
//! echo servers the test runs, data both ways with equal hashes; `-D`
//! through curl's SOCKS5 to a small HTTP server; `-N` staying up; `-W`
//! carrying stdin and stdout; `-J` through sshd to sshd; ExitOnForwardFailure
//! on a taken port (exit 255 with ssh's message) and without it (a warning,
//! the command still runs); a destination sshd refuses (ssh's "open failed"
//! line, the session going on); malformed specifications. Under the
//! blocking and the tokio runtime.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const TIMEOUT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(20);

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// `--runtime RT` for our client (nothing for OpenSSH's).
fn rt_args(rt: &str) -> Vec<String> {
    match client_kind() {
        ClientKind::Ours => s(&["--runtime", rt]),
        ClientKind::OpenSsh => vec![],
    }
}

/// Publickey login as the test user, host key checked.
fn login_args(sshd: &Sshd, rt: &str) -> Vec<String> {
    let mut a = rt_args(rt);
    a.extend(sshd.target().base_args());
    a.extend(s(&[
        "-i",
        &path_str(&keys().ed25519),
        "-o",
        "BatchMode=yes",
        "-l",
        USER,
    ]));
    a
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    free_port()
}

/// Sends 1 MiB through `s` while reading the echo; checks the hashes.
fn round_trip<S: Read + Write + Send + 'static>(s: S, clone: S, what: &str) {
    let data = pseudo_random_bytes(1 << 20, 7);
    let want = sha256_hex(&data);
    let mut w = s;
    let writer = std::thread::spawn(move || {
        w.write_all(&data).unwrap();
        w
    });
    let mut r = clone;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < 1 << 20 {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{what}: read: {e}"),
        }
    }
    drop(writer.join().unwrap());
    assert_eq!(got.len(), 1 << 20, "{what}: echoed length");
    assert_eq!(sha256_hex(&got), want, "{what}: echoed bytes differ");
}

/// Connects to 127.0.0.1:`port`, retrying until the client listens.
fn connect_tcp(port: u16, proc_: &mut ClientProcess, err: &Stderr) -> TcpStream {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            return s;
        }
        if let Some(st) = proc_.child.try_wait().unwrap() {
            panic!("client exited ({st:?}); stderr: {}", err.text());
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on port {port}; stderr: {}",
            err.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn connect_unix(path: &Path, err: &Stderr) -> UnixStream {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(s) = UnixStream::connect(path) {
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {}; stderr: {}",
            path.display(),
            err.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tcp_round_trip(port: u16, p: &mut ClientProcess, err: &Stderr, what: &str) {
    let c = connect_tcp(port, p, err);
    let c2 = c.try_clone().unwrap();
    round_trip(c, c2, what);
}

fn unix_round_trip(path: &Path, err: &Stderr, what: &str) {
    let c = connect_unix(path, err);
    let c2 = c.try_clone().unwrap();
    round_trip(c, c2, what);
}

/// A running client's stderr, collected as it comes.
#[derive(Clone)]
struct Stderr(Arc<Mutex<String>>);

impl Stderr {
    fn watch(p: &mut ClientProcess) -> Stderr {
        let e = Stderr(Arc::new(Mutex::new(String::new())));
        let r = p.child.stderr.take().unwrap();
        let e2 = e.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                let mut t = e2.0.lock().unwrap();
                t.push_str(line.trim_end_matches('\r'));
                t.push('\n');
            }
        });
        e
    }
    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
    /// Waits for a line that starts with `prefix`; the line.
    fn wait_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(l) = self.text().lines().find(|l| l.starts_with(prefix)) {
                return l.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no stderr line starting {prefix:?}; stderr: {}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts the client with `args` and the host; its stderr watched.
fn spawn(args: &[String]) -> (ClientProcess, Stderr) {
    let mut a = strs(args);
    a.push("127.0.0.1");
    let mut p = spawn_client(&a, &[]);
    let e = Stderr::watch(&mut p);
    (p, e)
}

/// The client is still running (-N stays until killed).
fn assert_running(p: &mut ClientProcess, err: &Stderr) {
    if let Some(st) = p.wait_timeout(Duration::from_millis(300)) {
        panic!("client exited early ({st:?}); stderr: {}", err.text());
    }
}

fn run(args: &[String], host_and_cmd: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut a = strs(args);
    a.extend_from_slice(host_and_cmd);
    let mut out = run_client(&a, stdin, &[], TIMEOUT);
    // OpenSSH ends its log lines with CRLF: compare lines.
    out.stderr = String::from_utf8_lossy(&out.stderr)
        .replace("\r\n", "\n")
        .into_bytes();
    out
}

fn local_forward(rt: &str) {
    let sshd = Sshd::start();
    let dir = TempDir::new("fwd-l");
    let echo_port = tcp_echo();
    let echo_sock = unix_echo(dir.path());
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let (l1, l2) = (dir.join("l1.sock"), dir.join("l2.sock"));
    let mut a = login_args(&sshd, rt);
    a.extend(s(&[
        "-N",
        "-o",
        &format!("LocalForward=localhost:{p3} 127.0.0.1:{echo_port}"),
        "-L",
        &format!("{p1}:127.0.0.1:{echo_port}"),
        "-L",
        &format!("127.0.0.1:{p2}:{}", path_str(&echo_sock)),
        "-L",
        &format!("{}:127.0.0.1:{echo_port}", path_str(&l1)),
        "-L",
        &format!("{}:{}", path_str(&l2), path_str(&echo_sock)),
    ]));
    let (mut p, err) = spawn(&a);
    tcp_round_trip(p1, &mut p, &err, "-L port:host:hostport");
    tcp_round_trip(p2, &mut p, &err, "-L bind:port:/remote_socket");
    unix_round_trip(&l1, &err, "-L /local_socket:host:hostport");
    unix_round_trip(&l2, &err, "-L /local_socket:/remote_socket");
    tcp_round_trip(p3, &mut p, &err, "-o LocalForward");
    // Two at once over the same forward.
    let a1 = std::thread::spawn(move || {
        let c = TcpStream::connect(("127.0.0.1", p1)).unwrap();
        let c2 = c.try_clone().unwrap();
        round_trip(c, c2, "concurrent 1");
    });
    tcp_round_trip(p1, &mut p, &err, "concurrent 2");
    a1.join().unwrap();
    // -N: no session, still up.
    std::thread::sleep(Duration::from_millis(500));
    assert_running(&mut p, &err);
    assert!(
        !err.text().contains("open failed"),
        "stderr: {}",
        err.text()
    );
}

#[test]
fn local_forward_blocking() {
    local_forward("blocking");
}

#[test]
fn local_forward_tokio() {
    local_forward("tokio");
}

fn remote_forward(rt: &str) {
    let sshd = Sshd::start();
    let dir = TempDir::new("fwd-r");
    let echo_port = tcp_echo();
    let echo_sock = unix_echo(dir.path());
    let (fixed, fixed2) = (free_port(), free_port());
    let remote_sock = dir.join("r.sock");
    let mut a = login_args(&sshd, rt);
    a.extend(s(&[
        "-N",
        "-o",
        &format!("RemoteForward={fixed2} 127.0.0.1:{echo_port}"),
        "-R",
        &format!("{fixed}:127.0.0.1:{echo_port}"),
        "-R",
        &format!("0:127.0.0.1:{echo_port}"),
        "-R",
        &format!("{}:{}", path_str(&remote_sock), path_str(&echo_sock)),
    ]));
    let (mut p, err) = spawn(&a);
    let line = err.wait_line("Allocated port ");
    let want_tail = format!(" for remote forward to 127.0.0.1:{echo_port}");
    let n: u16 = line
        .strip_prefix("Allocated port ")
        .and_then(|r| r.strip_suffix(want_tail.as_str()))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    assert_ne!(n, 0);
    tcp_round_trip(fixed, &mut p, &err, "-R port:host:hostport");
    tcp_round_trip(n, &mut p, &err, "-R 0:host:hostport");
    unix_round_trip(&remote_sock, &err, "-R /remote_socket:/local_socket");
    tcp_round_trip(fixed2, &mut p, &err, "-o RemoteForward");
    assert_running(&mut p, &err);
}

#[test]
fn remote_forward_blocking() {
    remote_forward("blocking");
}

#[test]
fn remote_forward_tokio() {
    remote_forward("tokio");
}

/// Kills a helper process on drop.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dynamic_forward(rt: &str) {
    let sshd = Sshd::start();
    let dir = TempDir::new("fwd-d");
    let body = pseudo_random_bytes(200_000, 3);
    std::fs::write(dir.join("file.bin"), &body).unwrap();
    let http_port = free_port();
    let _http = Killed(
        Command::new(require_peer("python3"))
            .args(["-m", "http.server", &http_port.to_string()])
            .args(["--bind", "127.0.0.1", "--directory"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server"),
    );
    let socks = free_port();
    let mut a = login_args(&sshd, rt);
    a.extend(s(&[
        "-N",
        "-o",
        &format!("DynamicForward=127.0.0.1:{socks}"),
    ]));
    let (mut p, err) = spawn(&a);
    drop(connect_tcp(socks, &mut p, &err));
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", http_port)).is_err() {
        assert!(Instant::now() < deadline, "the HTTP server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new(require_peer("curl"))
        .args(["-sS", "--max-time", "30", "--socks5-hostname"])
        .arg(format!("127.0.0.1:{socks}"))
        .arg(format!("http://127.0.0.1:{http_port}/file.bin"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}; client stderr: {}",
        String::from_utf8_lossy(&out.stderr),
        err.text()
    );
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&body));
    assert_running(&mut p, &err);
}

#[test]
fn dynamic_forward_socks_blocking() {
    dynamic_forward("blocking");
}

#[test]
fn dynamic_forward_socks_tokio() {
    dynamic_forward("tokio");
}

fn stdio_forward(rt: &str) {
    let sshd = Sshd::start();
    let echo_port = tcp_echo();
    let data = pseudo_random_bytes(300_000, 11);
    let mut a = login_args(&sshd, rt);
    a.extend(s(&["-W", &format!("127.0.0.1:{echo_port}")]));
    let out = run(&a, &["127.0.0.1"], &data);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), data.len());
    assert_eq!(sha256_hex(&out.stdout), sha256_hex(&data));
}

#[test]
fn stdio_forward_blocking() {
    stdio_forward("blocking");
}

#[test]
fn stdio_forward_tokio() {
    stdio_forward("tokio");
}

/// Two sshds: `-J A` to B, or `-o ProxyJump=A,B` to A (ssh refuses a
/// last hop that is the destination itself: "jumphost loop").
fn jump(rt: &str, how: &str) {
    let a_sshd = Sshd::start();
    let b_sshd = Sshd::start();
    let (ma, mb) = (a_sshd.daemon.log_len(), b_sshd.daemon.log_len());
    let mut a = rt_args(rt);
    a.extend(s(&[
        "-o",
        &format!(
            "UserKnownHostsFile={} {}",
            path_str(&a_sshd.known_hosts),
            path_str(&b_sshd.known_hosts)
        ),
        "-o",
        "StrictHostKeyChecking=yes",
        "-i",
        &path_str(&keys().ed25519),
        "-o",
        "BatchMode=yes",
        "-l",
        USER,
    ]));
    let hop_a = format!("{USER}@127.0.0.1:{}", a_sshd.port);
    let hop_b = format!("{USER}@127.0.0.1:{}", b_sshd.port);
    let (dest_port, want_a, want_b) = match how {
        "-J" => {
            a.extend(s(&["-J", &hop_a]));
            (b_sshd.port, 1, 1)
        }
        _ => {
            a.extend(s(&["-o", &format!("ProxyJump={hop_a},{hop_b}")]));
            (a_sshd.port, 2, 1)
        }
    };
    a.extend(s(&["-p", &dest_port.to_string()]));
    let out = run(&a, &["127.0.0.1", "echo jumped"], b"");
    assert_output(&out, b"jumped\n", b"", 0);
    for (sshd, mark, want) in [(&a_sshd, ma, want_a), (&b_sshd, mb, want_b)] {
        let log = sshd.daemon.log_since(mark);
        assert_eq!(
            log.matches("Accepted publickey for").count(),
            want,
            "sshd log: {log}"
        );
    }
}

#[test]
fn proxy_jump_blocking() {
    jump("blocking", "-J");
}

#[test]
fn proxy_jump_tokio() {
    jump("tokio", "-J");
}

#[test]
fn proxy_jump_option_two_hops() {
    jump("blocking", "ProxyJump");
}

/// A last hop that is the destination: ssh's "jumphost loop", exit 255.
#[test]
fn proxy_jump_loop() {
    let port = closed_port().to_string();
    let hop = format!("127.0.0.1:{port}");
    let out = run(&s(&["-p", &port, "-J", &hop]), &["127.0.0.1"], b"");
    assert_output(&out, b"", b"jumphost loop via 127.0.0.1\n", 255);
}

/// `-W` with a command: refused before connecting (OpenSSH drops the
/// command without a word; here it is an error naming it).
#[test]
fn stdio_forward_with_command() {
    let port = closed_port().to_string();
    let out = run(
        &s(&["-p", &port, "-W", "127.0.0.1:9"]),
        &["127.0.0.1", "true"],
        b"",
    );
    assert_output(
        &out,
        b"",
        b"client: -W cannot be combined with a remote command\n",
        255,
    );
}

/// A port held on 127.0.0.1 (and ::1 where there is one): bound at once,
/// so no other test can take it in between.
fn take_port() -> (u16, Vec<TcpListener>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut v = vec![l];
    if let Ok(l) = TcpListener::bind(("::1", port)) {
        v.push(l);
    }
    (port, v)
}

fn local_forward_failure(rt: &str) {
    let sshd = Sshd::start();
    let (taken, _held) = take_port();
    let spec = format!("{taken}:127.0.0.1:{}", closed_port());
    let bind_line = format!("bind [127.0.0.1]:{taken}: Address already in use\n");
    let listen_line = format!("channel_setup_fwd_listener_tcpip: cannot listen to port: {taken}\n");

    let mut a = login_args(&sshd, rt);
    a.extend(s(&["-o", "ExitOnForwardFailure=yes", "-L", &spec]));
    let out = run(&a, &["127.0.0.1", "echo ran"], b"");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(255), "stderr: {err}");
    assert!(out.stdout.is_empty());
    assert!(err.contains(&bind_line), "stderr: {err}");
    assert!(err.contains(&listen_line), "stderr: {err}");
    assert!(
        err.ends_with("Could not request local forwarding.\n"),
        "stderr: {err}"
    );

    let mut a = login_args(&sshd, rt);
    a.extend(s(&["-L", &spec]));
    let out = run(&a, &["127.0.0.1", "echo ran"], b"");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    assert_eq!(out.stdout, b"ran\n");
    assert!(err.contains(&bind_line), "stderr: {err}");
    assert!(
        err.contains("Could not request local forwarding.\n"),
        "stderr: {err}"
    );
}

#[test]
fn exit_on_local_forward_failure_blocking() {
    local_forward_failure("blocking");
}

#[test]
fn exit_on_local_forward_failure_tokio() {
    local_forward_failure("tokio");
}

fn remote_forward_failure(rt: &str) {
    let sshd = Sshd::start();
    let (taken, _held) = take_port();
    let spec = format!("{taken}:127.0.0.1:{}", closed_port());

    let mut a = login_args(&sshd, rt);
    a.extend(s(&["-o", "ExitOnForwardFailure=yes", "-R", &spec]));
    let out = run(&a, &["127.0.0.1", "echo ran"], b"");
    assert_output(
        &out,
        b"",
        format!("Error: remote port forwarding failed for listen port {taken}\n").as_bytes(),
        255,
    );

    let mut a = login_args(&sshd, rt);
    a.extend(s(&["-R", &spec]));
    let out = run(&a, &["127.0.0.1", "echo ran"], b"");
    assert_output(
        &out,
        b"ran\n",
        format!("Warning: remote port forwarding failed for listen port {taken}\n").as_bytes(),
        0,
    );
}

#[test]
fn exit_on_remote_forward_failure_blocking() {
    remote_forward_failure("blocking");
}

#[test]
fn exit_on_remote_forward_failure_tokio() {
    remote_forward_failure("tokio");
}

fn refused_destination(rt: &str) {
    let echo_port = tcp_echo();
    let sshd = Sshd::start_with(SshdOptions {
        extra: vec![format!("PermitOpen 127.0.0.1:{echo_port}")],
        ..Default::default()
    });
    let (refused, allowed) = (free_port(), free_port());
    let mut a = login_args(&sshd, rt);
    a.extend(s(&[
        "-N",
        "-L",
        &format!("{refused}:127.0.0.1:{}", closed_port()),
        "-L",
        &format!("{allowed}:127.0.0.1:{echo_port}"),
    ]));
    let (mut p, err) = spawn(&a);
    let mut c = connect_tcp(refused, &mut p, &err);
    // The forward closes the refused connection.
    let mut buf = [0u8; 16];
    assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
    let line = err.wait_line("channel ");
    assert!(
        line.ends_with(": open failed: administratively prohibited: open failed"),
        "line {line:?}"
    );
    let n = line["channel ".len()..].split(':').next().unwrap();
    assert!(n.parse::<u32>().is_ok(), "line {line:?}");
    // The session goes on: the allowed forward works afterwards.
    tcp_round_trip(allowed, &mut p, &err, "after a refused open");
    assert_running(&mut p, &err);
}

#[test]
fn refused_destination_blocking() {
    refused_destination("blocking");
}

#[test]
fn refused_destination_tokio() {
    refused_destination("tokio");
}

/// A refused `-W` destination: ssh's two lines, exit 255.
#[test]
fn stdio_forward_refused() {
    let echo_port = tcp_echo();
    let sshd = Sshd::start_with(SshdOptions {
        extra: vec![format!("PermitOpen 127.0.0.1:{echo_port}")],
        ..Default::default()
    });
    let mut a = login_args(&sshd, "blocking");
    a.extend(s(&["-W", &format!("127.0.0.1:{}", closed_port())]));
    let out = run(&a, &["127.0.0.1"], b"x");
    assert_output(
        &out,
        b"",
        b"channel 0: open failed: administratively prohibited: open failed\nstdio forwarding failed\n",
        255,
    );
}

/// Malformed specifications: ssh's message and exit 255, before connecting.
#[test]
fn bad_specifications() {
    let port = closed_port().to_string();
    for (flag, spec, msg) in [
        ("-L", "foo", "Bad local forwarding specification 'foo'\n"),
        (
            "-L",
            "0:h:1",
            "Bad local forwarding specification '0:h:1'\n",
        ),
        ("-L", "1:h", "Bad local forwarding specification '1:h'\n"),
        (
            "-R",
            "a:b:c:d:e",
            "Bad remote forwarding specification 'a:b:c:d:e'\n",
        ),
        (
            "-D",
            "a:b:c",
            "Bad dynamic forwarding specification 'a:b:c'\n",
        ),
        ("-W", "a", "Bad stdio forwarding specification 'a'\n"),
        ("-J", "a@:x", "Invalid -J argument\n"),
    ] {
        let out = run(&s(&["-p", &port, flag, spec]), &["127.0.0.1"], b"");
        assert_output(&out, b"", msg.as_bytes(), 255);
    }
    let out = run(
        &s(&["-p", &port, "-o", "LocalForward=8080"]),
        &["127.0.0.1"],
        b"",
    );
    assert_output(
        &out,
        b"",
        b"command-line line 0: Missing target argument.\n",
        255,
    );
}

/// `-N` stays until the connection ends (sshd closes it once no channel
/// has been open for 2 s), then exits 255 as ssh does.
fn no_shell_until_closed(rt: &str) {
    let sshd = Sshd::start_with(SshdOptions {
        extra: vec!["UnusedConnectionTimeout 2s".into()],
        ..Default::default()
    });
    let port = free_port();
    let mut a = login_args(&sshd, rt);
    a.extend(s(&["-N", "-L", &format!("{port}:127.0.0.1:9")]));
    let started = Instant::now();
    let (mut p, err) = spawn(&a);
    drop(connect_tcp(port, &mut p, &err));
    let st = p
        .wait_timeout(WAIT)
        .unwrap_or_else(|| panic!("-N did not end with the connection; {}", err.text()));
    assert!(started.elapsed() >= Duration::from_secs(2), "ended early");
    assert_eq!(st.code(), Some(255), "stderr: {}", err.text());
    std::thread::sleep(Duration::from_millis(100));
    let e = err.text();
    assert!(e.contains("closed by remote host"), "stderr: {e}");
}

#[test]
fn no_shell_until_closed_blocking() {
    no_shell_until_closed("blocking");
}

#[test]
fn no_shell_until_closed_tokio() {
    no_shell_until_closed("tokio");
}

#[test]
fn local_forward_mio() {
    local_forward("mio");
}

#[test]
fn proxy_jump_mio() {
    jump("mio", "-J");
}

/// `-R 0:/local_socket`: the allocated port's line names the socket as
/// ssh 9 does (with its socket "port" -2); connections reach the socket.
#[test]
fn remote_forward_port0_to_socket() {
    let sshd = Sshd::start();
    let dir = TempDir::new("fwd-r0");
    let echo_sock = unix_echo(dir.path());
    let mut a = login_args(&sshd, "blocking");
    a.extend(s(&["-N", "-R", &format!("0:{}", path_str(&echo_sock))]));
    let (mut p, err) = spawn(&a);
    let line = err.wait_line("Allocated port ");
    let n: u16 = line
        .strip_prefix("Allocated port ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    assert!(
        line.ends_with(&format!(
            " for remote forward to {}:-2",
            path_str(&echo_sock)
        )),
        "line {line:?}"
    );
    tcp_round_trip(n, &mut p, &err, "-R 0:/local_socket");
}

/// GatewayPorts: `-g` or `-o GatewayPorts=yes` makes a forward with no
/// bind address listen on all addresses (127.0.0.2 reaches it), as does an
/// explicit `*` without it; with neither it is loopback (127.0.0.1 and ::1)
/// only, as ssh binds.
#[test]
fn gateway_ports() {
    let sshd = Sshd::start();
    let echo_port = tcp_echo();
    let (g, o, star, plain) = (free_port(), free_port(), free_port(), free_port());
    let mut a = login_args(&sshd, "blocking");
    a.extend(s(&[
        "-N",
        "-g",
        "-L",
        &format!("{g}:127.0.0.1:{echo_port}"),
    ]));
    let (mut p1, err1) = spawn(&a);
    let mut a = login_args(&sshd, "tokio");
    a.extend(s(&[
        "-N",
        "-o",
        "GatewayPorts=yes",
        "-L",
        &format!("{o}:127.0.0.1:{echo_port}"),
    ]));
    let (mut p2, err2) = spawn(&a);
    let mut a = login_args(&sshd, "blocking");
    a.extend(s(&[
        "-N",
        "-L",
        &format!("*:{star}:127.0.0.1:{echo_port}"),
        "-L",
        &format!("{plain}:127.0.0.1:{echo_port}"),
    ]));
    let (mut p3, err3) = spawn(&a);
    drop(connect_tcp(g, &mut p1, &err1));
    drop(connect_tcp(o, &mut p2, &err2));
    drop(connect_tcp(star, &mut p3, &err3));
    drop(connect_tcp(plain, &mut p3, &err3));
    for port in [g, o, star] {
        let c = TcpStream::connect(("127.0.0.2", port)).expect("all addresses");
        let c2 = c.try_clone().unwrap();
        round_trip(c, c2, "all addresses via 127.0.0.2");
    }
    assert!(
        TcpStream::connect(("127.0.0.2", plain)).is_err(),
        "without GatewayPorts only loopback 127.0.0.1 listens"
    );
}

/// What this client does not do is refused with an error naming it.
#[test]
fn unsupported_forms_refused() {
    let port = closed_port().to_string();
    for (flag, spec, msg) in [
        (
            "-R",
            "5555",
            "client: dynamic remote forwarding (-R [bind_address:]port) is not supported\n",
        ),
        (
            "-D",
            "/tmp/x.sock",
            "client: dynamic forwarding on a Unix socket (-D /tmp/x.sock) is not supported\n",
        ),
    ] {
        let out = run(&s(&["-p", &port, flag, spec]), &["127.0.0.1"], b"");
        assert_output(&out, b"", msg.as_bytes(), 255);
    }
}
