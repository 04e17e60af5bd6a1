//! Load on one local forward (`-L`): a single SSH connection to OpenSSH's
//! sshd, and 1,000 TCP connections through its forward at the same time
//! to an echo server on 127.0.0.1, each with its own 64 KiB of data
//! written while the echo is read back. Every connection must come back
//! whole (equal SHA-256), all 1,000 must be open at the echo server at
//! once, and the whole run must finish within a bound. In each adapter:
//! ssh-blocking, ssh-mio and ssh-tokio.
//!
//! Descriptors: each connection holds about five in this process (the
//! test's socket and its clone, the forward's accepted socket and its
//! clone, the echo server's socket) and one in sshd (the channel's
//! socket), so the test raises its RLIMIT_NOFILE
//! soft limit to the hard limit before starting sshd, which inherits it.
//! The adapters run one after another (a lock), so the peak is one run's.
//! sshd's own bounds are far off: `MaxSessions` does not count
//! `direct-tcpip` channels, and one connection may hold 16,384 channels
//! (`CHANNELS_MAX_CHANNELS` in OpenSSH's channels.h).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use ssh_blocking::{Config, HostKeyCheck, PrivateKey};

/// Connections open through the forward at once.
const CONNECTIONS: usize = 1000;
/// Bytes each connection sends (and gets back).
const SIZE: usize = 64 << 10;
/// The bound on one whole run (connect, open, send, echo, check).
const BOUND: Duration = Duration::from_secs(120);
/// Stack of the test's own threads (they only copy through a small buffer).
const STACK: usize = 256 << 10;
const TIMEOUT: Duration = Duration::from_secs(30);

/// One adapter at a time: three runs at once would triple the threads and
/// descriptors, and each run's time would say little.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn user_key() -> Arc<PrivateKey> {
    Arc::new(ssh_std::load_private_key(&keys().ed25519, None).expect("user key"))
}

fn mio_rt() -> &'static ssh_mio::Runtime {
    static RT: OnceLock<ssh_mio::Runtime> = OnceLock::new();
    RT.get_or_init(|| ssh_mio::Runtime::new().expect("mio runtime"))
}

/// Raises this process's RLIMIT_NOFILE soft limit to its hard limit (sshd,
/// started afterwards, inherits it); fails when even that is too few.
fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `r`.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        if r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
        }
    }
    let need = (CONNECTIONS * 6 + 256) as libc::rlim_t;
    assert!(
        r.rlim_cur >= need,
        "RLIMIT_NOFILE hard limit {} is below the {need} descriptors \
         {CONNECTIONS} forwarded connections need (raise it: ulimit -Hn)",
        r.rlim_cur
    );
}

/// A TCP echo server on 127.0.0.1, a thread per connection, that counts
/// how many connections it holds at once.
struct Echo {
    port: u16,
    peak: Arc<AtomicUsize>,
}

fn echo_server() -> Echo {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let open = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let p = peak.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let now = open.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            let open = open.clone();
            std::thread::Builder::new()
                .stack_size(STACK)
                .spawn(move || {
                    let mut buf = vec![0u8; 16 << 10];
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = s.shutdown(Shutdown::Write);
                    open.fetch_sub(1, Ordering::SeqCst);
                })
                .expect("echo thread");
        }
    });
    Echo { port, peak }
}

/// Where the connections meet once each one's tunnel is open: a count
/// and a failure flag under a lock, with a condition variable.
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, bool)>,
    cv: Condvar,
    /// When the last connection got there.
    all_open: OnceLock<Instant>,
}

impl Gate {
    /// Counts this connection in and waits for all the others, until a
    /// failure or `deadline`.
    fn arrive_and_wait(&self, deadline: Instant) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0 += 1;
        if st.0 == CONNECTIONS {
            let _ = self.all_open.set(Instant::now());
        }
        self.cv.notify_all();
        while st.0 < CONNECTIONS && !st.1 {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} of {CONNECTIONS} forwarded connections ready in time",
                st.0
            );
            st = self
                .cv
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        assert!(!st.1, "another connection failed");
    }

    /// A connection failed: nobody waits any longer.
    fn fail(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.cv.notify_all();
    }
}

/// One connection through the forward: a one-byte round trip (the tunnel
/// is open to the echo server), then, once every connection got there,
/// `data` written on one thread while the echo is read back on this one.
/// Returns what came back.
fn one_connection(addr: SocketAddr, data: Arc<Vec<u8>>, gate: &Gate, deadline: Instant) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect to the forward");
    s.set_read_timeout(Some(BOUND)).unwrap();
    s.write_all(&data[..1]).unwrap();
    let mut first = [0u8; 1];
    s.read_exact(&mut first)
        .expect("one-byte round trip through the tunnel");
    assert_eq!(first[0], data[0]);
    gate.arrive_and_wait(deadline);

    let mut w = s.try_clone().unwrap();
    let writer = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            for piece in data[1..].chunks(8 << 10) {
                if let Err(e) = w.write_all(piece) {
                    // The reader must not wait for an echo that cannot come.
                    let _ = w.shutdown(Shutdown::Both);
                    panic!("write through the tunnel: {e}");
                }
            }
            w.shutdown(Shutdown::Write).unwrap();
        })
        .expect("writer thread");
    let mut got = first.to_vec();
    got.reserve(SIZE);
    s.read_to_end(&mut got).expect("read the echo");
    writer.join().expect("writer");
    got
}

/// Runs [`CONNECTIONS`] connections at once through the forward at `addr`
/// to `echo` and checks each one's echo; the time until all were open and
/// the whole elapsed time.
fn load(addr: SocketAddr, echo: &Echo) -> (Duration, Duration) {
    let start = Instant::now();
    let deadline = start + BOUND;
    let gate = Arc::new(Gate::default());
    let runs: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let data = Arc::new(pseudo_random_bytes(SIZE, 1000 + i as u64));
            let want = sha256_hex(&data);
            let g = gate.clone();
            let t = std::thread::Builder::new()
                .stack_size(STACK)
                .spawn(move || {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        one_connection(addr, data, &g, deadline)
                    }));
                    if r.is_err() {
                        g.fail();
                    }
                    r
                })
                .unwrap_or_else(|e| {
                    gate.fail();
                    panic!(
                        "cannot start the thread of connection {i} of {CONNECTIONS}: {e} \
                         (RLIMIT_NPROC, kernel.threads-max or memory)"
                    )
                });
            (t, want)
        })
        .collect();
    let mut errors = Vec::new();
    let mut wrong = 0;
    for (i, (t, want)) in runs.into_iter().enumerate() {
        match t.join().expect("connection thread") {
            Ok(got) => {
                if got.len() != SIZE || sha256_hex(&got) != want {
                    wrong += 1;
                    errors.push(format!(
                        "connection {i}: {} bytes back, digest differs",
                        got.len()
                    ));
                }
            }
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                errors.push(format!("connection {i}: {msg}"));
            }
        }
    }
    let took = start.elapsed();
    assert!(
        errors.is_empty(),
        "{} of {CONNECTIONS} connections failed ({wrong} with wrong data), first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(
        echo.peak.load(Ordering::SeqCst),
        CONNECTIONS,
        "connections open at the echo server at once"
    );
    assert!(took < BOUND, "{CONNECTIONS} connections took {took:?}");
    let opened = gate.all_open.get().map_or(took, |t| *t - start);
    (opened, took)
}

fn connect_std(d: &Sshd, mio: bool) -> ssh_std::Client {
    let check = HostKeyCheck::KnownHostsFile(d.known_hosts.clone());
    let config = Arc::new(Config::default());
    let c = if mio {
        mio_rt()
            .connect_with(("127.0.0.1", d.port), config, check, Some(TIMEOUT))
            .unwrap()
    } else {
        ssh_blocking::Client::connect_with(("127.0.0.1", d.port), config, check, Some(TIMEOUT))
            .unwrap()
    };
    c.auth_publickey(USER, user_key()).unwrap();
    c
}

fn std_forward_load(mio: bool) {
    let _serial = serial();
    raise_nofile();
    let d = Sshd::start();
    let echo = echo_server();
    let c = connect_std(&d, mio);
    let fwd = c
        .forward_local(
            "127.0.0.1:0",
            ssh_std::ForwardTarget::Tcp {
                host: "127.0.0.1".into(),
                port: echo.port,
            },
        )
        .unwrap();
    let (opened, took) = load(fwd.local_addr().unwrap(), &echo);
    eprintln!(
        "{}: {CONNECTIONS} connections x {} KiB through one forward in {took:?} \
         (all open after {opened:?})",
        if mio { "ssh-mio" } else { "ssh-blocking" },
        SIZE >> 10
    );
    fwd.stop();
    // The connection is still good.
    assert_eq!(c.exec("echo ok").unwrap().stdout, b"ok\n");
}

#[test]
fn thousand_connections_through_one_forward_blocking() {
    std_forward_load(false);
}

#[test]
fn thousand_connections_through_one_forward_mio() {
    std_forward_load(true);
}

#[test]
fn thousand_connections_through_one_forward_tokio() {
    let _serial = serial();
    raise_nofile();
    let d = Sshd::start();
    let echo = echo_server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (c, fwd) = rt.block_on(async {
        let c = ssh_tokio::Client::connect_with(
            ("127.0.0.1", d.port),
            Arc::new(Config::default()),
            HostKeyCheck::KnownHostsFile(d.known_hosts.clone()),
            Some(TIMEOUT),
        )
        .await
        .unwrap();
        c.auth_publickey(USER, user_key()).await.unwrap();
        let fwd = c
            .forward_local(
                "127.0.0.1:0",
                ssh_tokio::ForwardTarget::Tcp {
                    host: "127.0.0.1".into(),
                    port: echo.port,
                },
            )
            .await
            .unwrap();
        (c, fwd)
    });
    // The load runs on plain threads; the runtime's own threads carry it.
    let (opened, took) = load(fwd.local_addr().unwrap(), &echo);
    eprintln!(
        "ssh-tokio: {CONNECTIONS} connections x {} KiB through one forward in {took:?} \
         (all open after {opened:?})",
        SIZE >> 10
    );
    rt.block_on(async {
        drop(fwd);
        assert_eq!(c.exec("echo ok").await.unwrap().stdout, b"ok\n");
    });
}
