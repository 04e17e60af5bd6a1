//! The async SFTP client (`ssh_tokio::Client::sftp`) against OpenSSH's
//! server (sshd `internal-sftp`): pipelined 64 MiB put and get, files as
//! `AsyncRead + AsyncWrite + AsyncSeek`, the path and attribute operations,
//! errors, futures dropped half-way, and several tasks on one session.

mod common;

use std::future::Future;
use std::io::SeekFrom;
use std::path::Path;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::*;
use ssh_tokio::sftp::OpenOptions;
use ssh_tokio::{Client, Config, ErrorKind, HostKeyCheck, Sftp};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Everything a test may hang on is bounded by this.
const LIMIT: Duration = Duration::from_secs(180);

async fn connect(d: &Sshd) -> (Client, Sftp) {
    let c = Client::connect_with(
        ("127.0.0.1", d.port),
        Arc::new(Config::default()),
        HostKeyCheck::KnownHostsFile(d.known_hosts.clone()),
        Some(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    c.auth_password(USER, PASSWORD).await.unwrap();
    let sftp = c.sftp().await.unwrap();
    (c, sftp)
}

/// A scratch directory the test user may write in.
fn remote_dir(prefix: &str) -> TempDir {
    let dir = TempDir::new(prefix);
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    dir
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

/// Polls `f` once and drops it: Some(output) if that poll finished it.
async fn poll_once<F: Future>(f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(|cx| match f.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_sftp_64mib_put_get() {
    let d = Sshd::start();
    let dir = remote_dir("tsftp-big");
    let local = TempDir::new("tsftp-big-local");
    tokio::time::timeout(LIMIT, async {
        let (_c, sftp) = connect(&d).await;
        let limits = sftp.limits().expect("sshd offers limits@openssh.com");
        assert!(limits.max_read >= 32 * 1024);
        let pl = sftp.pipeline();
        assert!(pl.chunk > 32 * 1024 && pl.requests >= 8, "{pl:?}");

        let data = pseudo_random_bytes(64 << 20, 4242);
        let want = sha256_hex(&data);
        let up = local.join("up.bin");
        std::fs::write(&up, &data).unwrap();
        let remote = s(&dir.join("big.bin"));

        let mut calls = 0u64;
        let mut last = 0u64;
        let mut cb = |done: u64, total: u64| {
            assert!(done <= total && done >= last);
            last = done;
            calls += 1;
        };
        let t = Instant::now();
        let n = sftp.put(&up, &remote, Some(&mut cb)).await.unwrap();
        let put_time = t.elapsed();
        assert_eq!(n, data.len() as u64);
        assert_eq!(last, n, "progress reached the end");
        assert!(calls > 10, "progress called {calls} times");
        assert_eq!(
            sha256_hex(&std::fs::read(dir.join("big.bin")).unwrap()),
            want
        );

        let down = local.join("down.bin");
        let mut last = 0u64;
        let mut cb = |done: u64, _total: u64| last = done;
        let t = Instant::now();
        let n = sftp.get(&remote, &down, Some(&mut cb)).await.unwrap();
        let get_time = t.elapsed();
        assert_eq!(n, data.len() as u64);
        assert_eq!(last, n);
        assert_eq!(sha256_hex(&std::fs::read(&down).unwrap()), want);
        let mib = |t: Duration| 64.0 / t.as_secs_f64();
        println!(
            "64 MiB put {:.2} s ({:.0} MiB/s), get {:.2} s ({:.0} MiB/s), chunk {} x {}",
            put_time.as_secs_f64(),
            mib(put_time),
            get_time.as_secs_f64(),
            mib(get_time),
            pl.chunk,
            pl.requests
        );

        // The whole file through AsyncRead (pipelined large reads).
        let mut f = sftp.open(&remote, OpenOptions::read()).await.unwrap();
        let t = Instant::now();
        let mut all = Vec::new();
        f.read_to_end(&mut all).await.unwrap();
        let read_time = t.elapsed();
        assert_eq!(all.len(), data.len());
        assert_eq!(sha256_hex(&all), want);
        f.close().await.unwrap();

        // And back through AsyncWrite in uneven pieces.
        let copy = s(&dir.join("copy.bin"));
        let mut f = sftp.open_mode(&copy, "w").await.unwrap();
        let t = Instant::now();
        for piece in data.chunks(100_003) {
            f.write_all(piece).await.unwrap();
        }
        f.flush().await.unwrap();
        assert_eq!(f.stat().await.unwrap().size, Some(data.len() as u64));
        f.close().await.unwrap();
        let write_time = t.elapsed();
        assert_eq!(
            sha256_hex(&std::fs::read(dir.join("copy.bin")).unwrap()),
            want
        );
        println!(
            "64 MiB File read_to_end {:.2} s, write_all {:.2} s",
            read_time.as_secs_f64(),
            write_time.as_secs_f64()
        );

        // Two downloads at once on one session (replies dispatched by id),
        // from two tasks.
        let (a, b) = (local.join("a.bin"), local.join("b.bin"));
        let t1 = tokio::spawn(assert_send({
            let (sftp, remote, a) = (sftp.clone(), remote.clone(), a.clone());
            async move { sftp.get(&remote, &a, None).await }
        }));
        let t2 = tokio::spawn({
            let (sftp, copy, b) = (sftp.clone(), copy.clone(), b.clone());
            async move { sftp.get(&copy, &b, None).await }
        });
        assert_eq!(t1.await.unwrap().unwrap(), data.len() as u64);
        assert_eq!(t2.await.unwrap().unwrap(), data.len() as u64);
        assert_eq!(sha256_hex(&std::fs::read(&a).unwrap()), want);
        assert_eq!(sha256_hex(&std::fs::read(&b).unwrap()), want);
        assert_eq!(sftp.in_flight(), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_sftp_files_and_paths() {
    let d = Sshd::start();
    let dir = remote_dir("tsftp-api");
    tokio::time::timeout(LIMIT, async {
        let (_c, sftp) = connect(&d).await;
        let dirs = s(dir.path());
        let p = |n: &str| format!("{dirs}/{n}");

        // AsyncWrite, AsyncSeek, AsyncRead at offsets.
        let mut f = sftp.open_mode(&p("f.txt"), "w").await.unwrap();
        f.write_all(b"hello world").await.unwrap();
        f.close().await.unwrap();
        let mut f = sftp.open_mode(&p("f.txt"), "r+").await.unwrap();
        assert_eq!(f.seek(SeekFrom::Start(6)).await.unwrap(), 6);
        f.write_all(b"WORLD").await.unwrap();
        assert_eq!(f.seek(SeekFrom::Start(0)).await.unwrap(), 0);
        let mut text = String::new();
        f.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "hello WORLD");
        assert_eq!(f.seek(SeekFrom::End(-5)).await.unwrap(), 6);
        let mut five = [0u8; 5];
        f.read_exact(&mut five).await.unwrap();
        assert_eq!(&five, b"WORLD");
        assert_eq!(f.seek(SeekFrom::Current(-3)).await.unwrap(), 8);
        let mut three = [0u8; 3];
        f.read_exact(&mut three).await.unwrap();
        assert_eq!(&three, b"RLD");
        // Small reads from read-ahead data, then a seek back inside it.
        f.seek(SeekFrom::Start(0)).await.unwrap();
        let mut one = [0u8; 1];
        f.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"h");
        f.seek(SeekFrom::Current(3)).await.unwrap();
        f.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"o");
        assert!(f.seek(SeekFrom::Current(-100)).await.is_err());
        // Past the end: a hole, then the size counts unflushed writes.
        f.seek(SeekFrom::Start(20)).await.unwrap();
        f.write_all(b"X").await.unwrap();
        assert_eq!(f.seek(SeekFrom::End(0)).await.unwrap(), 21);
        f.seek(SeekFrom::Start(11)).await.unwrap();
        let mut rest = Vec::new();
        f.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"\0\0\0\0\0\0\0\0\0X");
        // At the end, reads give 0 again.
        assert_eq!(f.read(&mut five).await.unwrap(), 0);
        assert_eq!(f.stat().await.unwrap().size, Some(21));
        f.sync().await.unwrap();
        f.close().await.unwrap();
        assert_eq!(std::fs::read(dir.join("f.txt")).unwrap().len(), 21);

        // A file dropped without flush or close still gets its bytes.
        let mut f = sftp.open_mode(&p("dropped.txt"), "w").await.unwrap();
        f.write_all(b"dropped").await.unwrap();
        drop(f);
        let mut back = String::new();
        sftp.open_mode(&p("dropped.txt"), "r")
            .await
            .unwrap()
            .read_to_string(&mut back)
            .await
            .unwrap();
        assert_eq!(back, "dropped");

        // Append and exclusive create.
        let mut a = sftp.open_mode(&p("dropped.txt"), "a").await.unwrap();
        assert!(a.is_append());
        a.write_all(b"!").await.unwrap();
        a.close().await.unwrap();
        assert_eq!(std::fs::read(dir.join("dropped.txt")).unwrap(), b"dropped!");
        let err = sftp
            .open_mode(&p("dropped.txt"), "x")
            .await
            .err()
            .expect("x on an existing file");
        assert_eq!(err.kind(), ErrorKind::Sftp, "{err}");
        sftp.open_mode(&p("new.txt"), "x").await.unwrap();

        // Attributes.
        sftp.chmod(&p("f.txt"), 0o640).await.unwrap();
        assert_eq!(
            sftp.stat(&p("f.txt")).await.unwrap().permissions.unwrap() & 0o777,
            0o640
        );
        sftp.set_times(&p("f.txt"), 1_000_000_000, 1_100_000_000)
            .await
            .unwrap();
        assert_eq!(
            sftp.stat(&p("f.txt")).await.unwrap().times,
            Some((1_000_000_000, 1_100_000_000))
        );
        sftp.truncate(&p("f.txt"), 5).await.unwrap();
        assert_eq!(sftp.stat(&p("f.txt")).await.unwrap().size, Some(5));
        let mut f = sftp.open_mode(&p("f.txt"), "r+").await.unwrap();
        f.setstat(ssh_tokio::proto::sftp::Attrs {
            permissions: Some(0o600),
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(f.stat().await.unwrap().permissions.unwrap() & 0o777, 0o600);
        drop(f);

        // Directories, names, links.
        sftp.mkdir(&p("sub"), 0o755).await.unwrap();
        assert!(sftp.stat(&p("sub")).await.unwrap().is_dir());
        sftp.rename(&p("new.txt"), &p("sub/moved.txt"))
            .await
            .unwrap();
        assert!(dir.join("sub/moved.txt").exists());
        sftp.rename(&p("sub/moved.txt"), &p("dropped.txt"))
            .await
            .unwrap();
        assert_eq!(std::fs::read(dir.join("dropped.txt")).unwrap(), b"");
        sftp.symlink("f.txt", &p("link")).await.unwrap();
        assert_eq!(sftp.readlink(&p("link")).await.unwrap(), "f.txt");
        assert!(sftp.lstat(&p("link")).await.unwrap().is_symlink());
        assert!(sftp.stat(&p("link")).await.unwrap().is_file());
        let entries = sftp.read_dir(&dirs).await.unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        for n in ["f.txt", "dropped.txt", "link", "sub"] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert!(!names.contains(&".") && !names.contains(&".."));
        let f_entry = entries.iter().find(|e| e.name == "f.txt").unwrap();
        assert_eq!(f_entry.attrs.size, Some(5));
        assert!(f_entry.longname.contains("f.txt"), "{:?}", f_entry.longname);
        let real = sftp.realpath(&p("sub/../f.txt")).await.unwrap();
        assert!(real.ends_with("/f.txt") && !real.contains(".."), "{real}");

        // chdir / getcwd: relative paths follow it.
        sftp.chdir(Some(&p("sub"))).await.unwrap();
        assert!(sftp.getcwd().await.unwrap().ends_with("/sub"));
        let mut f = sftp.open_mode("here.txt", "w").await.unwrap();
        f.write_all(b"x").await.unwrap();
        f.close().await.unwrap();
        assert_eq!(sftp.stat(&p("sub/here.txt")).await.unwrap().size, Some(1));
        let err = sftp.rmdir(&p("sub")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Sftp, "{err}");
        sftp.remove("here.txt").await.unwrap();
        sftp.chdir(None).await.unwrap();
        sftp.rmdir(&p("sub")).await.unwrap();
        assert!(!dir.join("sub").exists());
        sftp.remove(&p("link")).await.unwrap();
        assert!(dir.join("f.txt").exists() && !dir.join("link").exists());

        // Errors name the path and the status.
        let err = sftp.stat(&p("nonexistent")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Sftp);
        assert_eq!(err.code(), Some(2), "{err}");
        assert!(err.to_string().contains("nonexistent"), "{err}");
        let err = sftp
            .open(&p("nonexistent"), OpenOptions::read())
            .await
            .err()
            .expect("opening a missing file");
        assert_eq!(
            (err.kind(), err.code()),
            (ErrorKind::Sftp, Some(2)),
            "{err}"
        );
        let err = sftp
            .get(&p("nonexistent"), &dir.join("never"), None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(2), "{err}");
        let err = sftp.remove(&p("nonexistent")).await.unwrap_err();
        assert!(err.to_string().contains("nonexistent"), "{err}");

        // statvfs@openssh.com.
        let v = sftp.statvfs(&dirs).await.unwrap();
        assert!(v.blocks > 0 && v.bsize > 0, "{v:?}");
        assert_eq!(sftp.in_flight(), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_sftp_dropped_futures_and_tasks() {
    let d = Sshd::start();
    let dir = remote_dir("tsftp-cancel");
    let local = TempDir::new("tsftp-cancel-local");
    tokio::time::timeout(LIMIT, async {
        let (_c, sftp) = connect(&d).await;
        let dirs = s(dir.path());
        let p = |n: &str| format!("{dirs}/{n}");
        let data = pseudo_random_bytes(16 << 20, 99);
        let want = sha256_hex(&data);
        std::fs::write(dir.join("big.bin"), &data).unwrap();
        std::fs::write(dir.join("small.txt"), b"small file").unwrap();

        // A request polled once (sent) and dropped: its reply comes later
        // and must not reach anyone else. (A poll that reads the replies of
        // earlier ones may now and then meet its own reply too.)
        let mut dropped = 0;
        let mut last_dropped = false;
        for _ in 0..20 {
            last_dropped = match poll_once(sftp.stat(&p("big.bin"))).await {
                Some(r) => {
                    assert_eq!(r.unwrap().size, Some(data.len() as u64));
                    false
                }
                None => true,
            };
            dropped += last_dropped as u32;
        }
        // (On a loaded machine a poll may last long enough for its reply.)
        println!("{dropped} of 20 stats dropped after one poll");
        if last_dropped {
            assert!(sftp.in_flight() > 0);
        }
        // And some that time out after a few polls.
        for _ in 0..20 {
            let r = tokio::time::timeout(Duration::from_micros(50), sftp.stat(&p("big.bin"))).await;
            if let Ok(r) = r {
                assert_eq!(r.unwrap().size, Some(data.len() as u64));
            }
        }
        let a = sftp.stat(&p("small.txt")).await.unwrap();
        assert_eq!(a.size, Some(10));
        assert_eq!(sftp.in_flight(), 0, "abandoned replies are thrown away");

        // A timed-out read: the File keeps working at the right offsets.
        let mut f = sftp.open(&p("big.bin"), OpenOptions::read()).await.unwrap();
        let mut buf = vec![0u8; 4 << 20];
        if let Some(r) = poll_once(f.read(&mut buf)).await {
            let n = r.unwrap();
            assert_eq!(&buf[..n], &data[..n]);
        }
        // Elsewhere: the read in flight is abandoned.
        f.seek(SeekFrom::Start(5 << 20)).await.unwrap();
        f.read_exact(&mut buf[..1 << 20]).await.unwrap();
        assert_eq!(&buf[..1 << 20], &data[5 << 20..6 << 20]);
        // A read that timed out took nothing; the next read goes on from
        // the same place.
        let before = f.stream_position().await.unwrap() as usize;
        assert_eq!(before, 6 << 20);
        let r = tokio::time::timeout(Duration::from_micros(200), f.read(&mut buf)).await;
        let at = f.stream_position().await.unwrap() as usize;
        match r {
            Ok(n) => {
                let n = n.unwrap();
                assert_eq!(at, before + n);
                assert_eq!(&buf[..n], &data[before..at]);
            }
            Err(_) => assert_eq!(at, before),
        }
        let n = f.read(&mut buf).await.unwrap();
        assert!(n > 0);
        assert_eq!(&buf[..n], &data[at..at + n]);
        f.seek(SeekFrom::Start(7)).await.unwrap();
        f.read_exact(&mut buf[..100]).await.unwrap();
        assert_eq!(&buf[..100], &data[7..107]);
        drop(f);
        assert_eq!(sftp.stat(&p("small.txt")).await.unwrap().size, Some(10));

        // A download timed out half-way; the next one is whole.
        let down = local.join("down.bin");
        let _ = tokio::time::timeout(
            Duration::from_millis(5),
            sftp.get(&p("big.bin"), &down, None),
        )
        .await;
        // Directory listing and upload dropped right after starting.
        let _ = poll_once(sftp.read_dir(&dirs)).await;
        let up = local.join("up.bin");
        std::fs::write(&up, &data).unwrap();
        let _ =
            tokio::time::timeout(Duration::from_millis(3), sftp.put(&up, &p("up.bin"), None)).await;
        assert_eq!(
            sftp.get(&p("big.bin"), &down, None).await.unwrap(),
            data.len() as u64
        );
        assert_eq!(sha256_hex(&std::fs::read(&down).unwrap()), want);
        assert_eq!(
            sftp.put(&up, &p("up.bin"), None).await.unwrap(),
            data.len() as u64
        );
        assert_eq!(
            sha256_hex(&std::fs::read(dir.join("up.bin")).unwrap()),
            want
        );

        // A write dropped mid-way: the session goes on.
        let mut w = sftp.open_mode(&p("w.bin"), "w").await.unwrap();
        let _ = poll_once(w.write_all(&data)).await;
        drop(w);
        let names: Vec<String> = sftp
            .read_dir(&dirs)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        for n in ["big.bin", "small.txt", "up.bin", "w.bin"] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }

        // Many tasks on one session at once, each checking its own
        // answers, while a download runs.
        let big = tokio::spawn({
            let (sftp, remote, down) = (sftp.clone(), p("big.bin"), local.join("down2.bin"));
            async move { sftp.get(&remote, &down, None).await }
        });
        let mut tasks = Vec::new();
        for i in 0..16u32 {
            let sftp = sftp.clone();
            let dirs = dirs.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("{dirs}/t{i}.txt");
                let body = format!("task {i} ").repeat(i as usize + 1);
                let mut f = sftp.open_mode(&name, "w").await.unwrap();
                f.write_all(body.as_bytes()).await.unwrap();
                f.close().await.unwrap();
                for _ in 0..20 {
                    let a = sftp.stat(&name).await.unwrap();
                    assert_eq!(a.size, Some(body.len() as u64));
                    // Some given up on at once, in between.
                    let _ = poll_once(sftp.stat(&name)).await;
                }
                let mut back = String::new();
                let mut f = sftp.open_mode(&name, "r").await.unwrap();
                f.read_to_string(&mut back).await.unwrap();
                assert_eq!(back, body);
                sftp.remove(&name).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(big.await.unwrap().unwrap(), data.len() as u64);
        assert_eq!(
            sha256_hex(&std::fs::read(local.join("down2.bin")).unwrap()),
            want
        );
        // One more round trip, then nothing is left over.
        sftp.stat(&dirs).await.unwrap();
        assert_eq!(sftp.in_flight(), 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_with_input_larger_than_the_window_and_invoke_shell() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let d = Sshd::start();
    let (c, _sftp) = connect(&d).await;
    let data: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let out = tokio::time::timeout(LIMIT, c.exec_with_input("cat; echo done >&2", &data))
        .await
        .expect("exec_with_input hung")
        .unwrap();
    assert_eq!(out.status, Some(0));
    assert_eq!(out.stderr, b"done\n");
    assert!(out.stdout == data, "cat's output differs from its input");

    let mut sh = c.invoke_shell("xterm-256color", 132, 43).await.unwrap();
    sh.write_all(b"echo \"T=$TERM S=$(stty size)\"; exit\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(LIMIT, sh.read_to_end(&mut got))
        .await
        .expect("shell hung");
    let got = String::from_utf8_lossy(&got);
    assert!(got.contains("T=xterm-256color S=43 132"), "{got}");
}
