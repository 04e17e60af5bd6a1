//! The tokio client against the tokio server, in one process over
//! loopback: exec, stdout/stderr/exit status, 64 MiB through an echo
//! channel with equal hashes, per-channel back-pressure, and dropping
//! futures and handles mid-operation.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use ssh_proto::{ChannelRequest, PrivateKey};
use ssh_tokio::{Auth, Channel, Client, Config, Handler, HostKeyCheck, Server, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Implements `channel_request` only: the dispatcher hands it the channel.
struct Echo;

impl Handler for Echo {
    async fn auth_password(&mut self, user: &str, password: &str) -> Auth {
        // An async decision: only this connection waits.
        let wait = if user == "slow" { 1500 } else { 5 };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if user == "alice" && password == "secret" {
            Auth::Accept
        } else {
            Auth::Reject
        }
    }
    async fn channel_request(&mut self, channel: &Channel, request: ChannelRequest) -> bool {
        match request {
            ChannelRequest::Exec { command } => {
                let mut ch = channel.clone();
                tokio::spawn(async move {
                    match command.as_slice() {
                        b"cat" => {
                            let mut buf = vec![0u8; 64 * 1024];
                            loop {
                                let n = ch.read(&mut buf).await.unwrap_or(0);
                                if n == 0 {
                                    break;
                                }
                                if ch.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                            let _ = ch.send_exit_status(0);
                        }
                        _ => {
                            let _ = ch.write_all(b"out\n").await;
                            let _ = ch.stderr().write_all(b"err\n").await;
                            let _ = ch.send_exit_status(7);
                        }
                    }
                    let _ = ch.send_eof();
                    let _ = ch.close();
                });
                true
            }
            _ => false,
        }
    }
}

async fn server() -> (std::net::SocketAddr, ssh_tokio::ShutdownHandle) {
    let mut config = Config::default();
    let key = PrivateKey::generate_ed25519(&mut *ssh_proto::os_rng());
    config.transport.host_keys.push(Arc::new(key));
    config.auth_methods = vec!["password".into()];
    let server = Server::bind("127.0.0.1:0", Arc::new(config)).await.unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    tokio::spawn(server.run(|_h: &ServerHandle| Echo));
    (addr, stop)
}

async fn client(addr: std::net::SocketAddr) -> Client {
    let c = Client::connect_with(
        addr,
        Arc::new(Config::default()),
        HostKeyCheck::InsecureAcceptAny,
        Some(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    c.auth_password("alice", "secret").await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_wrong_password() {
    let (addr, stop) = server().await;
    let c = client(addr).await;
    let out = c.exec("hello").await.unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status, Some(7));

    let bad = Client::connect_with(
        addr,
        Arc::new(Config::default()),
        HostKeyCheck::InsecureAcceptAny,
        None,
    )
    .await
    .unwrap();
    let e = bad.auth_password("alice", "wrong").await.unwrap_err();
    assert_eq!(e.kind(), ssh_tokio::ErrorKind::AuthFailed, "{e}");
    stop.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_64_mib_while_another_channel_is_never_read() {
    let (addr, stop) = server().await;
    let c = client(addr).await;
    // A channel whose echo nobody reads: its window fills, it stops.
    let stuck = c.channel_session().await.unwrap();
    stuck.exec("cat").await.unwrap();
    let filler = vec![7u8; 4 << 20];
    let mut stuck_w = c.channel_session().await.unwrap();
    drop(std::mem::replace(&mut stuck_w, stuck));
    let writer = tokio::spawn(async move {
        // Writes until the windows run out, then waits forever (bounded by
        // the test's own end).
        let _ = tokio::time::timeout(Duration::from_secs(30), stuck_w.write_all(&filler)).await;
        stuck_w
    });

    let ch = c.channel_session().await.unwrap();
    ch.exec("cat").await.unwrap();
    let total = 64usize << 20;
    let data: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
    let want = Sha256::digest(&data);
    let ch = Arc::new(ch);
    let w = ch.clone();
    let send = tokio::spawn(async move {
        for chunk in data.chunks(256 * 1024) {
            w.write_all_data(ssh_proto::Stream::Stdout, chunk)
                .await
                .unwrap();
        }
        w.send_eof().unwrap();
    });
    let mut h = Sha256::new();
    let mut got = 0usize;
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = tokio::time::timeout(
            Duration::from_secs(60),
            ch.read_stream(ssh_proto::Stream::Stdout, &mut buf),
        )
        .await
        .expect("the read channel must keep moving")
        .unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        got += n;
    }
    send.await.unwrap();
    assert_eq!(got, total);
    assert_eq!(h.finalize(), want);
    assert_eq!(ch.exit_status().await.unwrap(), Some(0));
    writer.abort();
    stop.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_futures_and_handles_leave_the_connection_usable() {
    let (addr, stop) = server().await;
    let c = client(addr).await;
    // A read that never completes, dropped by a timeout.
    let ch = c.channel_session().await.unwrap();
    ch.exec("cat").await.unwrap();
    let mut buf = [0u8; 16];
    assert!(tokio::time::timeout(
        Duration::from_millis(100),
        ch.read_stream(ssh_proto::Stream::Stdout, &mut buf)
    )
    .await
    .is_err());
    // A channel-open future dropped before it resolves.
    let open = c.channel_session();
    drop(open);
    // An exec future dropped mid-way.
    let _ = tokio::time::timeout(Duration::from_millis(1), c.exec("hello")).await;
    drop(ch);
    // The connection still works.
    for _ in 0..3 {
        let out = c.exec("hello").await.unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.status, Some(7));
    }
    stop.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_async_decision_holds_only_its_own_connection() {
    let (addr, stop) = server().await;
    let slow = Client::connect_with(
        addr,
        Arc::new(Config::default()),
        HostKeyCheck::InsecureAcceptAny,
        None,
    )
    .await
    .unwrap();
    let t0 = std::time::Instant::now();
    let pending = tokio::spawn(async move { slow.auth_password("slow", "x").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Meanwhile another connection logs in and runs a command.
    let c = client(addr).await;
    assert_eq!(c.exec("hello").await.unwrap().status, Some(7));
    let fast = t0.elapsed();
    assert!(
        fast < Duration::from_millis(1200),
        "blocked behind the slow decision: {fast:?}"
    );
    let e = pending.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ssh_tokio::ErrorKind::AuthFailed);
    assert!(t0.elapsed() >= Duration::from_millis(1500));
    stop.shutdown();
}

/// A server on `bind` with `admission`, version lines due within 1 s.
async fn server_with(
    bind: &str,
    admission: ssh_proto::AdmissionConfig,
) -> (std::net::SocketAddr, ssh_tokio::ShutdownHandle) {
    let mut config = Config::default();
    let key = PrivateKey::generate_ed25519(&mut *ssh_proto::os_rng());
    config.transport.host_keys.push(Arc::new(key));
    config.auth_methods = vec!["password".into()];
    config.identification_timeout = Some(Duration::from_secs(1));
    config.admission = admission;
    let server = Server::bind(bind, Arc::new(config)).await.unwrap();
    let addr = server.local_addr().unwrap();
    let stop = server.shutdown_handle();
    tokio::spawn(server.run(|_h: &ServerHandle| Echo));
    (addr, stop)
}

/// A socket that has read the server's version line (so the server took
/// it on), optionally having sent its own.
async fn idle(addr: std::net::SocketAddr, version: bool) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    if version {
        s.write_all(b"SSH-2.0-idle\r\n").await.unwrap();
    }
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\n") {
        assert_eq!(
            s.read(&mut b).await.unwrap(),
            1,
            "closed before its version"
        );
        line.push(b[0]);
    }
    assert!(line.starts_with(b"SSH-2.0-"));
    s
}

/// MaxStartups 2:50:10 with two idle connections holding the slots: about
/// half of new clients get in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_early_drop_past_idle_slots() {
    let admission = ssh_proto::MaxStartups::new(2, 50, 10).unwrap().into();
    let (addr, stop) = server_with("127.0.0.1:0", admission).await;
    let _idle = [idle(addr, true).await, idle(addr, true).await];
    let tries = 40;
    let mut got_in = 0;
    for _ in 0..tries {
        let c = Client::connect_with(
            addr,
            Arc::new(Config::default()),
            HostKeyCheck::InsecureAcceptAny,
            Some(Duration::from_secs(10)),
        )
        .await;
        if let Ok(c) = c {
            c.auth_password("alice", "secret").await.unwrap();
            assert_eq!(c.exec("x").await.unwrap().status, Some(7));
            got_in += 1;
        }
    }
    // Binomial(40, 0.5): outside 8..=32 is a 1 in 10^4 event.
    assert!((8..=32).contains(&got_in), "{got_in} of {tries} got in");
    stop.shutdown();
}

/// PerSourceMaxStartups 2 on a dual-stack listener: a third connection from
/// 127.0.0.1 reads sshd's notice and is closed, ::1 gets in, and silent
/// sockets are closed after the 1 s identification timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_source_limit_and_identification_timeout() {
    let admission = ssh_proto::AdmissionConfig {
        per_source_max_startups: Some(2),
        ..Default::default()
    };
    let (addr, stop) = server_with("[::]:0", admission).await;
    let v4: std::net::SocketAddr = ([127, 0, 0, 1], addr.port()).into();
    let t0 = std::time::Instant::now();
    let mut silent = [idle(v4, false).await, idle(v4, false).await];
    let mut third = tokio::net::TcpStream::connect(v4).await.unwrap();
    let mut got = Vec::new();
    let _ = third.read_to_end(&mut got).await;
    assert_eq!(got, b"Exceeded MaxStartups\r\n");
    let v6: std::net::SocketAddr = (std::net::Ipv6Addr::LOCALHOST, addr.port()).into();
    let c = client(v6).await;
    assert_eq!(c.exec("x").await.unwrap().status, Some(7));
    for s in &mut silent {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    }
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "silent sockets closed after {waited:?}"
    );
    stop.shutdown();
}

/// Counts how often a task would have been woken.
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waiting_on_one_channel_is_not_woken_by_another() {
    use std::sync::atomic::Ordering;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, ReadBuf};

    let (addr, stop) = server().await;
    let c = client(addr).await;
    let mut quiet = c.channel_session().await.unwrap();
    quiet.exec("cat").await.unwrap();
    let busy = c.channel_session().await.unwrap();
    busy.exec("cat").await.unwrap();

    // A read on the quiet channel waits, with a waker that counts.
    let counter = Arc::new(CountingWaker(Default::default()));
    let waker = std::task::Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let mut buf = [0u8; 64];
    let mut rb = ReadBuf::new(&mut buf);
    assert!(matches!(
        std::pin::Pin::new(&mut quiet).poll_read(&mut cx, &mut rb),
        Poll::Pending
    ));

    // 4 MiB through the busy channel: data, window adjusts, output.
    let data = vec![7u8; 4 << 20];
    let mut back = vec![0u8; data.len()];
    let read_back = async {
        let mut off = 0;
        while off < back.len() {
            let n = busy
                .read_stream(ssh_proto::Stream::Stdout, &mut back[off..])
                .await?;
            assert!(n > 0, "echo ended early");
            off += n;
        }
        Ok::<(), ssh_tokio::Error>(())
    };
    let (w, r) = tokio::join!(
        busy.write_all_data(ssh_proto::Stream::Stdout, &data),
        read_back
    );
    w.unwrap();
    r.unwrap();
    assert_eq!(back, data);
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        0,
        "the quiet channel's reader was woken by the busy channel's traffic"
    );

    // Data on the quiet channel wakes it.
    quiet.write_all(b"ping").await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while counter.0.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the quiet channel's reader was never woken by its own data");
    let mut got = [0u8; 4];
    quiet.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");
    stop.shutdown();
}
