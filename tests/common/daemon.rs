//! Peer daemons: started in their own process group, output collected,
//! killed on drop; and how a test client reaches one ([`Target`]).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::INSTALL_HINT;

/// A peer process with its output collected in memory; killed (with its
/// whole process group) on drop.
pub struct Daemon {
    pub(crate) name: String,
    pub(crate) child: Child,
    pub(crate) log: Arc<Mutex<Vec<u8>>>,
    pub(crate) _readers: Vec<JoinHandle<()>>,
}

impl Daemon {
    /// Starts `cmd` the way the harness starts its peers: its own process
    /// group, stdout and stderr collected into [`Daemon::log`], killed with
    /// its group on drop (its log printed if the test panics).
    pub fn start(name: &str, mut cmd: Command) -> Daemon {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; it only sets a flag of the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}; {INSTALL_HINT}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = log.clone();
            readers.push(std::thread::spawn(move || {
                let mut r = r;
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }));
        }
        Daemon {
            name: name.into(),
            child,
            log,
            _readers: readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the daemon wrote on stdout and stderr so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// Length of the log now, to look only at what comes after
    /// ([`Daemon::log_since`]).
    pub fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    pub fn log_since(&self, mark: usize) -> String {
        let l = self.log.lock().unwrap();
        String::from_utf8_lossy(&l[mark.min(l.len())..]).into_owned()
    }

    /// Waits up to `timeout` until the log after `mark` contains every one of
    /// `needles`; returns that part of the log either way.
    pub fn wait_log(&self, mark: usize, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.log_since(mark);
            if needles.iter().all(|n| s.contains(n)) || Instant::now() >= deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The daemon's exit status, if it has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits until `port` answers with an SSH version line. Returns false if
    /// the daemon exited first (e.g. port taken); panics on timeout.
    pub(crate) fn wait_ready(
        &mut self,
        port: u16,
        ready_line: Option<&str>,
        timeout: Duration,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.try_status().is_some() {
                // Let the readers collect the last words.
                std::thread::sleep(Duration::from_millis(50));
                return false;
            }
            let line_ok = ready_line.is_none_or(|l| self.log().lines().any(|x| x.trim() == l));
            if line_ok && probe_ssh(port) {
                // If the port was taken by another SSH server in between,
                // ours fails to bind and exits: make sure it is still up.
                std::thread::sleep(Duration::from_millis(50));
                return self.try_status().is_none();
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not get ready on port {port} within {timeout:?}; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn stop(&mut self) {
        let pid = self.child.id() as i32;
        if self.try_status().is_none() {
            // SAFETY: signalling the process group we created for this daemon.
            unsafe { libc::kill(-pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(2);
            while self.try_status().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Whatever is left of the group (connection handlers, commands).
        // SAFETY: as above.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let tail = {
                let l = self.log.lock().unwrap();
                String::from_utf8_lossy(&l[l.len().saturating_sub(16 * 1024)..]).into_owned()
            };
            eprintln!(
                "----- {} log (pid {}) -----\n{tail}\n----- end of {} log -----",
                self.name,
                self.pid(),
                self.name
            );
        }
    }
}

/// Connects to 127.0.0.1:port and reads the SSH version line.
pub(crate) fn probe_ssh(port: u16) -> bool {
    let Ok(s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // Servers may send other lines before the version line.
    for _ in 0..20 {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line.starts_with("SSH-") => return true,
            Ok(_) => {}
        }
    }
    false
}

/// Where a test client connects: port and a known_hosts file for it.
#[derive(Clone, Debug)]
pub struct Target {
    pub port: u16,
    pub known_hosts: PathBuf,
}

impl Target {
    /// `-p PORT -o UserKnownHostsFile=KH -o StrictHostKeyChecking=yes`.
    pub fn base_args(&self) -> Vec<String> {
        vec![
            "-p".into(),
            self.port.to_string(),
            "-o".into(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
        ]
    }
}

/// Writes a known_hosts file with one `[127.0.0.1]:PORT TYPE BASE64` line
/// per public key line.
pub fn write_known_hosts_file(path: &Path, port: u16, public_lines: &[String]) {
    let mut s = String::new();
    for l in public_lines {
        let mut f = l.split_whitespace();
        let (t, b) = (f.next().unwrap(), f.next().unwrap());
        let _ = writeln!(s, "[127.0.0.1]:{port} {t} {b}");
    }
    std::fs::write(path, s).unwrap();
}
