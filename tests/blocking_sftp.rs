//! The blocking SFTP client API (`Client::sftp`) against OpenSSH's server
//! (sshd `internal-sftp`) and against our own (`ssh_blocking::Server`
//! serving `LocalFs`), paramiko-style operations one by one.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use common::*;
use ssh_blocking::proto::sftp::SftpServerConfig;
use ssh_blocking::proto::{ChannelRequest, Config};
use ssh_blocking::{
    Auth, Channel, Client, ErrorKind, Handler, HostKeyCheck, OpenOptions, PrivateKey, Server,
    ServerHandle, Sftp,
};
use ssh_std::sftp_server::{serve, LocalFs};

/// Every operation of the client API, in a scratch directory `dir`
/// (as the server names it), against whatever server `sftp` talks to.
fn exercise(sftp: &Sftp, dir: &str, local: &Path) {
    let p = |n: &str| format!("{dir}/{n}");
    // Pipelined put and get of 16 MiB, with progress.
    let data = pseudo_random_bytes(16 << 20, 77);
    let src = local.join("up.bin");
    std::fs::write(&src, &data).unwrap();
    let mut seen = 0u64;
    let mut cb = |done: u64, total: u64| {
        assert!(done <= total);
        seen = done;
    };
    assert_eq!(
        sftp.put(&src, &p("big.bin"), Some(&mut cb)).unwrap(),
        data.len() as u64
    );
    assert_eq!(seen, data.len() as u64, "progress reached the end");
    let back = local.join("down.bin");
    assert_eq!(
        sftp.get(&p("big.bin"), &back, None).unwrap(),
        data.len() as u64
    );
    assert_eq!(
        sha256_hex(&std::fs::read(&back).unwrap()),
        sha256_hex(&data)
    );
    assert_eq!(
        sftp.stat(&p("big.bin")).unwrap().size,
        Some(data.len() as u64)
    );

    // Files: Read + Write + Seek, large reads and writes pipelined.
    let mut f = sftp.open_mode(&p("f.txt"), "w").unwrap();
    f.write_all(b"hello world").unwrap();
    drop(f);
    let mut f = sftp.open_mode(&p("f.txt"), "r+").unwrap();
    f.seek(SeekFrom::Start(6)).unwrap();
    f.write_all(b"WORLD").unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello WORLD");
    assert_eq!(f.seek(SeekFrom::End(-5)).unwrap(), 6);
    f.close().unwrap();
    let mut f = sftp.open(&p("big.bin"), OpenOptions::read()).unwrap();
    let mut all = Vec::new();
    f.read_to_end(&mut all).unwrap();
    assert_eq!(all.len(), data.len());
    assert_eq!(sha256_hex(&all), sha256_hex(&data));

    // Append and exclusive create (paramiko's 'a' and 'x').
    let mut a = sftp.open_mode(&p("f.txt"), "a").unwrap();
    a.write_all(b"!").unwrap();
    drop(a);
    let mut s = String::new();
    sftp.open_mode(&p("f.txt"), "r")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "hello WORLD!");
    let err = sftp
        .open_mode(&p("f.txt"), "x")
        .err()
        .expect("x on an existing file");
    assert_eq!(err.kind(), ErrorKind::Sftp, "{err}");
    sftp.open_mode(&p("new.txt"), "x").unwrap();

    // Attributes.
    sftp.chmod(&p("f.txt"), 0o640).unwrap();
    assert_eq!(
        sftp.stat(&p("f.txt")).unwrap().permissions.unwrap() & 0o777,
        0o640
    );
    sftp.set_times(&p("f.txt"), 1_000_000_000, 1_100_000_000)
        .unwrap();
    assert_eq!(
        sftp.stat(&p("f.txt")).unwrap().times,
        Some((1_000_000_000, 1_100_000_000))
    );
    sftp.truncate(&p("f.txt"), 5).unwrap();
    assert_eq!(sftp.stat(&p("f.txt")).unwrap().size, Some(5));

    // Directories, names, links.
    sftp.mkdir(&p("sub"), 0o755).unwrap();
    assert!(sftp.stat(&p("sub")).unwrap().is_dir());
    sftp.rename(&p("new.txt"), &p("sub/moved.txt")).unwrap();
    // rename over an existing file (posix-rename when offered).
    sftp.rename(&p("sub/moved.txt"), &p("f.txt")).unwrap();
    sftp.symlink("f.txt", &p("link")).unwrap();
    assert_eq!(sftp.readlink(&p("link")).unwrap(), "f.txt");
    assert!(sftp.lstat(&p("link")).unwrap().is_symlink());
    assert!(sftp.stat(&p("link")).unwrap().is_file());
    let names: Vec<String> = sftp
        .read_dir(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    for n in ["big.bin", "f.txt", "link", "sub"] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    assert!(!names.iter().any(|x| x == "." || x == ".."));
    let real = sftp.realpath(&p("sub/../f.txt")).unwrap();
    assert!(real.ends_with("/f.txt") && !real.contains(".."), "{real}");

    // chdir / getcwd emulation: relative paths follow it.
    sftp.chdir(Some(&p("sub"))).unwrap();
    assert!(sftp.getcwd().unwrap().ends_with("/sub"));
    let mut f = sftp.open_mode("here.txt", "w").unwrap();
    f.write_all(b"x").unwrap();
    drop(f);
    assert_eq!(sftp.stat(&p("sub/here.txt")).unwrap().size, Some(1));
    sftp.remove("here.txt").unwrap();
    sftp.chdir(None).unwrap();
    sftp.rmdir(&p("sub")).unwrap();

    // Errors name the path and the status.
    let err = sftp.stat(&p("nonexistent")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Sftp);
    assert_eq!(err.code(), Some(2), "{err}");
    assert!(err.to_string().contains("nonexistent"), "{err}");

    // statvfs@openssh.com.
    let v = sftp.statvfs(dir).unwrap();
    assert!(v.blocks > 0 && v.bsize > 0, "{v:?}");
    sftp.remove(&p("link")).unwrap();
}

#[test]
fn sftp_api_against_openssh_internal_sftp() {
    let d = Sshd::start();
    let dir = TempDir::new("api-sftp");
    // The test user must be able to write there.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let c = Client::connect(
        ("127.0.0.1", d.port),
        HostKeyCheck::KnownHostsFile(d.known_hosts.clone()),
    )
    .unwrap();
    c.auth_password(USER, PASSWORD).unwrap();
    let sftp = c.sftp().unwrap();
    let limits = sftp.limits().expect("sshd 9 offers limits@openssh.com");
    assert!(limits.max_read >= 32 * 1024);
    assert!(sftp.pipeline().requests >= 8);
    let local = TempDir::new("api-sftp-local");
    exercise(&sftp, &dir.path().to_string_lossy(), local.path());
}

/// Our server: sessions with the sftp subsystem served from a root.
struct SftpOnly {
    root: std::path::PathBuf,
}

impl Handler for SftpOnly {
    fn auth_password(&mut self, _u: &str, p: &str) -> Auth {
        if p == "pw" {
            Auth::Accept
        } else {
            Auth::Reject
        }
    }
    fn channel_request(&mut self, channel: &Channel, req: ChannelRequest) -> bool {
        let ChannelRequest::Subsystem { name } = req else {
            return false;
        };
        if name != "sftp" {
            return false;
        }
        let ch = channel.clone();
        let Ok(fs) = LocalFs::new(&self.root, None) else {
            return false;
        };
        std::thread::spawn(move || {
            let _ = serve(&ch, &ch, fs, SftpServerConfig::default());
            let _ = ch.send_exit_status(0);
            let _ = ch.close();
        });
        true
    }
}

#[test]
fn sftp_api_against_our_server_and_its_jail() {
    let root = TempDir::new("api-sftp-root");
    let outside = TempDir::new("api-sftp-outside");
    std::fs::write(outside.join("secret"), b"secret").unwrap();
    let host = PrivateKey::generate_ed25519(&mut *ssh_proto::os_rng());
    let host_pub = host.public_key();
    let mut config = Config::default();
    config.transport.host_keys.push(Arc::new(host));
    config.auth_methods = vec!["password".into()];
    let server = Server::bind("127.0.0.1:0", Arc::new(config)).unwrap();
    let port = server.local_addr().port();
    let stop = server.shutdown_handle();
    let root_path = root.path().to_path_buf();
    let t = std::thread::spawn(move || {
        server
            .run(move |_h: &ServerHandle| SftpOnly {
                root: root_path.clone(),
            })
            .unwrap()
    });
    let c = Client::connect(("127.0.0.1", port), HostKeyCheck::Exact(host_pub)).unwrap();
    c.auth_password("anyone", "pw").unwrap();
    let sftp = c.sftp().unwrap();
    let l = sftp.limits().expect("our server states its limits");
    assert_eq!(l.max_packet, 256 * 1024);
    assert!(sftp.pipeline().chunk > 32 * 1024, "{:?}", sftp.pipeline());
    assert_eq!(sftp.getcwd().unwrap(), "/");
    let local = TempDir::new("api-sftp-local2");
    sftp.mkdir("/work", 0o755).unwrap();
    exercise(&sftp, "/work", local.path());

    // check-file-name (paramiko's check()): the server's sha256 of a file.
    let data = b"check me".repeat(1000);
    let mut f = sftp.open_mode("/work/c.bin", "w").unwrap();
    f.write_all(&data).unwrap();
    drop(f);
    let (alg, hash) = sftp.check("/work/c.bin", "sha256").unwrap();
    assert_eq!(alg, "sha256");
    assert_eq!(hex(&hash), sha256_hex(&data));

    // The jail: nothing outside the root is reachable.
    let rel = format!(
        "../{}/secret",
        outside.path().file_name().unwrap().to_string_lossy()
    );
    for p in [rel.as_str(), "/../../../../etc/passwd", "/etc/passwd"] {
        assert!(sftp.stat(p).is_err(), "{p} is reachable");
    }
    sftp.symlink("/etc", "/etc-link").unwrap();
    assert!(
        sftp.stat("/etc-link/passwd").is_err(),
        "symlink escaped the root"
    );
    assert_eq!(sftp.realpath("/../..").unwrap(), "/");
    drop(sftp);
    drop(c);
    assert_eq!(std::fs::read(outside.join("secret")).unwrap(), b"secret");
    stop.shutdown();
    t.join().unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
