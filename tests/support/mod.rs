//! Interop harness: real peers (OpenSSH sshd, Dropbear, paramiko and AsyncSSH
//! servers) on 127.0.0.1 high ports with throwaway keys and configs, stopped
//! by PID when dropped. Keys are made by `ssh-keygen`, never by our code.
//! A missing peer fails the test: run `scripts/install-peers.sh`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const USER: &str = "sshtest";
pub const PASSWORD: &str = "sshtest-pw";
pub const PASSPHRASE: &str = "key-pass-123";

pub fn need(path: &str) -> String {
    let found = if path.starts_with('/') {
        Path::new(path).exists()
    } else {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {path}"))
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        found,
        "peer {path} is missing: run scripts/install-peers.sh"
    );
    path.to_string()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("sshlib-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        let _ = Command::new("chmod").arg("755").arg(&p).status();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn keygen(path: &Path, kind: &str, bits: Option<&str>, passphrase: &str) {
    let mut c = Command::new(need("ssh-keygen"));
    c.args(["-q", "-t", kind, "-N", passphrase, "-C", "test", "-f"])
        .arg(path);
    if let Some(b) = bits {
        c.args(["-b", b]);
    }
    run(&mut c);
}

/// Client keys and the test user, made once per test binary.
pub struct Env {
    _dir: TempDir,
    pub ed25519: PathBuf,
    pub ecdsa: PathBuf,
    pub rsa: PathBuf,
    pub encrypted: PathBuf,
    pub authorized_keys: PathBuf,
    pub askpass_password: PathBuf,
    pub askpass_passphrase: PathBuf,
    pub askpass_wrong: PathBuf,
}

pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        ensure_user();
        let dir = TempDir::new("keys");
        let ed25519 = dir.path("id_ed25519");
        let ecdsa = dir.path("id_ecdsa");
        let rsa = dir.path("id_rsa");
        let encrypted = dir.path("id_enc");
        keygen(&ed25519, "ed25519", None, "");
        keygen(&ecdsa, "ecdsa", Some("256"), "");
        keygen(&rsa, "rsa", Some("3072"), "");
        keygen(&encrypted, "ed25519", None, PASSPHRASE);
        let mut ak = String::new();
        for k in [&ed25519, &ecdsa, &rsa, &encrypted] {
            ak.push_str(&std::fs::read_to_string(k.with_extension("pub")).unwrap());
        }
        let authorized_keys = dir.path("authorized_keys");
        std::fs::write(&authorized_keys, &ak).unwrap();
        // Dropbear reads ~/.ssh/authorized_keys of the user.
        let home = PathBuf::from(format!("/home/{USER}"));
        let ssh = home.join(".ssh");
        let _ = std::fs::create_dir_all(&ssh);
        std::fs::write(ssh.join("authorized_keys"), &ak).unwrap();
        let _ = Command::new("chown")
            .args(["-R", &format!("{USER}:{USER}")])
            .arg(&ssh)
            .status();
        let _ = Command::new("chmod").arg("700").arg(&ssh).status();
        let _ = Command::new("chmod")
            .arg("600")
            .arg(ssh.join("authorized_keys"))
            .status();
        let askpass = |name: &str, secret: &str| {
            let p = dir.path(name);
            std::fs::write(&p, format!("#!/bin/sh\necho '{secret}'\n")).unwrap();
            let _ = Command::new("chmod").arg("755").arg(&p).status();
            p
        };
        Env {
            askpass_password: askpass("askpass-pw", PASSWORD),
            askpass_passphrase: askpass("askpass-pp", PASSPHRASE),
            askpass_wrong: askpass("askpass-wrong", "not-the-password"),
            _dir: dir,
            ed25519,
            ecdsa,
            rsa,
            encrypted,
            authorized_keys,
        }
    })
}

/// A real local user with a password (idempotent, safe across processes).
pub fn ensure_user() {
    let _lock = std::fs::File::create("/tmp/sshlib-user.lock");
    if Command::new("id")
        .arg(USER)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        // Make sure the password is what the tests expect.
    } else {
        let _ = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", USER])
            .status();
    }
    let mut c = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .expect("chpasswd");
    c.stdin
        .take()
        .unwrap()
        .write_all(format!("{USER}:{PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(c.wait().unwrap().success(), "chpasswd failed");
    std::fs::create_dir_all("/run/sshd").ok();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited early with {st}");
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    panic!("{what} did not listen on port {port}");
}

/// A running peer server.
pub struct Daemon {
    pub name: &'static str,
    child: Child,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub dir: TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Log output (for daemons started with stderr to a file).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("log")).unwrap_or_default()
    }
}

/// OpenSSH sshd with ed25519, ecdsa (256/384/521) and rsa host keys, and
/// `extra` config lines.
pub fn sshd(extra: &str) -> Daemon {
    let e = env();
    let sshd = need("/usr/sbin/sshd");
    let dir = TempDir::new("sshd");
    let port = free_port();
    let mut hostkeys = String::new();
    let mut kh = String::new();
    for (name, kind, bits) in [
        ("hk_ed25519", "ed25519", None),
        ("hk_ecdsa256", "ecdsa", Some("256")),
        ("hk_ecdsa384", "ecdsa", Some("384")),
        ("hk_ecdsa521", "ecdsa", Some("521")),
        ("hk_rsa", "rsa", Some("2048")),
    ] {
        let p = dir.path(name);
        keygen(&p, kind, bits, "");
        hostkeys.push_str(&format!("HostKey {}\n", p.display()));
        kh.push_str(&format!(
            "[127.0.0.1]:{port} {}",
            std::fs::read_to_string(p.with_extension("pub")).unwrap()
        ));
    }
    let known_hosts = dir.path("known_hosts");
    std::fs::write(&known_hosts, kh).unwrap();
    let config = format!(
        "{extra}\nPort {port}\nListenAddress 127.0.0.1\n{hostkeys}UsePAM no\nStrictModes no\nPasswordAuthentication yes\n\
         PubkeyAuthentication yes\nKbdInteractiveAuthentication no\nAuthorizedKeysFile {}\nPidFile {}\n\
         Subsystem sftp internal-sftp\nLogLevel INFO\n",
        e.authorized_keys.display(),
        dir.path("sshd.pid").display()
    );
    let cfg = dir.path("sshd_config");
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.path("log")).unwrap();
    let mut child = Command::new(&sshd)
        .args(["-D", "-e", "-f"])
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start sshd");
    wait_port(port, &mut child, "sshd");
    Daemon {
        name: "sshd",
        child,
        port,
        known_hosts,
        dir,
    }
}

/// Dropbear with ed25519, ecdsa and rsa host keys.
pub fn dropbear() -> Daemon {
    env();
    let db = need("dropbear");
    need("dropbearkey");
    let dir = TempDir::new("dropbear");
    let port = free_port();
    let mut args = vec![
        "-F".to_string(),
        "-E".into(),
        "-p".into(),
        format!("127.0.0.1:{port}"),
    ];
    let mut kh = String::new();
    for kind in ["ed25519", "ecdsa", "rsa"] {
        let p = dir.path(&format!("db_{kind}"));
        run(Command::new("dropbearkey").args(["-t", kind, "-f"]).arg(&p));
        let out = run(Command::new("dropbearkey").arg("-y").arg("-f").arg(&p));
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("ssh-") || l.starts_with("ecdsa-"))
            .expect("dropbear pub line");
        let mut parts = line.split_whitespace();
        kh.push_str(&format!(
            "[127.0.0.1]:{port} {} {}\n",
            parts.next().unwrap(),
            parts.next().unwrap()
        ));
        args.push("-r".into());
        args.push(p.display().to_string());
    }
    let known_hosts = dir.path("known_hosts");
    std::fs::write(&known_hosts, kh).unwrap();
    let log = std::fs::File::create(dir.path("log")).unwrap();
    let mut child = Command::new(db)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start dropbear");
    wait_port(port, &mut child, "dropbear");
    Daemon {
        name: "dropbear",
        child,
        port,
        known_hosts,
        dir,
    }
}

/// The paramiko or AsyncSSH test server from tests/peers/.
pub fn pyserver(script: &'static str) -> Daemon {
    let e = env();
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let module = if script.starts_with("paramiko") {
        "paramiko"
    } else {
        "asyncssh"
    };
    let ok = Command::new(&py)
        .arg("-c")
        .arg(format!("import {module}"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python module {module} is missing: run scripts/install-peers.sh"
    );
    let dir = TempDir::new(module);
    let port = free_port();
    let hk = dir.path("hk_ed25519");
    keygen(&hk, "ed25519", None, "");
    let known_hosts = dir.path("known_hosts");
    std::fs::write(
        &known_hosts,
        format!(
            "[127.0.0.1]:{port} {}",
            std::fs::read_to_string(hk.with_extension("pub")).unwrap()
        ),
    )
    .unwrap();
    let script_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers")
        .join(script);
    let log = std::fs::File::create(dir.path("log")).unwrap();
    let mut child = Command::new(&py)
        .arg(&script_path)
        .arg(port.to_string())
        .arg(&hk)
        .arg(&e.authorized_keys)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start python server");
    wait_port(port, &mut child, script);
    Daemon {
        name: if module == "paramiko" {
            "paramiko"
        } else {
            "asyncssh"
        },
        child,
        port,
        known_hosts,
        dir,
    }
}

pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("examples").join(name);
    assert!(
        p.exists(),
        "{} not built: run cargo build --release --examples",
        p.display()
    );
    p
}

/// Result of one client run.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `argv` with `stdin`, extra env, and a hard timeout.
pub fn run_timeout(argv: &[String], stdin: &[u8], envs: &[(&str, &str)], timeout: Duration) -> Run {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
    let mut si = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let w = std::thread::spawn(move || {
        let _ = si.write_all(&input);
    });
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let ro = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let re = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{argv:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = w.join();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: ro.join().unwrap(),
        stderr: String::from_utf8_lossy(&re.join().unwrap()).into_owned(),
    }
}

/// Our `client` example against a daemon, with the usual test options.
pub fn client(
    d: &Daemon,
    extra: &[&str],
    command: &str,
    stdin: &[u8],
    envs: &[(&str, &str)],
) -> Run {
    // Options given by the test come first: for ssh_config options the
    // first value wins.
    let mut argv = vec![
        example_bin("client").display().to_string(),
        "-p".into(),
        d.port.to_string(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    argv.extend([
        "-o".into(),
        format!("UserKnownHostsFile={}", d.known_hosts.display()),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        "BatchMode=yes".into(),
    ]);
    argv.push(format!("{USER}@127.0.0.1"));
    argv.push(command.to_string());
    run_timeout(&argv, stdin, envs, Duration::from_secs(120))
}

pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(data);
    h.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}
