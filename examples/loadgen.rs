//! A load generator: many SSH connections from one process, their bytes
//! moved by a single `ssh-mio` reactor thread.
//!
//! ```text
//! loadgen -p PORT -i KEY -o UserKnownHostsFile=FILE --connections N --concurrency C
//!         [--exec CMD] [-o Key=Value]... user@host
//! loadgen -p PORT -i KEY -o UserKnownHostsFile=FILE --idle N [--concurrency C]
//!         [--server-pid PID] [--hold SECS] [-o Key=Value]... user@host
//! ```
//!
//! Normal mode opens N connections, C at a time; each does key exchange,
//! publickey authentication, one `exec` of CMD (default `true`, a non-zero
//! exit status counts as a failure) and a clean close. It prints
//! connections per second and the latency percentiles of whole connections
//! (connect to close), and exits 1 if any failed, after printing the first
//! error.
//!
//! `--idle N` opens N authenticated sessions (C at a time, default 50) and
//! keeps them all open. With `--server-pid` it reads that process's VmRSS
//! before the first connection and once all are up (after a 2 s settle) and
//! prints the server's bytes per idle connection. It holds the sessions for
//! `--hold SECS` (default 0) and then closes them.
//!
//! `-o` understands UserKnownHostsFile, KexAlgorithms, HostKeyAlgorithms,
//! Ciphers and MACs. The soft RLIMIT_NOFILE is raised to the hard
//! limit at start.

#[path = "common/mod.rs"]
mod common;

use common::sys;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ssh_blocking::{Client, Config, HostKeyCheck, PrivateKey};
use ssh_mio::{Reactor, ReactorHandle};

const USAGE: &str = "usage: loadgen -p PORT -i KEY -o UserKnownHostsFile=FILE --connections N --concurrency C [--exec CMD] user@host
       loadgen -p PORT -i KEY -o UserKnownHostsFile=FILE --idle N [--concurrency C] [--server-pid PID] [--hold SECS] user@host";

/// Descriptors the process needs besides one per connection (stdio, the
/// poll instance and its waker, files read on the way).
const SPARE_FDS: u64 = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

struct Opts {
    port: u16,
    key: PathBuf,
    known_hosts: Option<PathBuf>,
    options: Vec<(String, String)>,
    connections: usize,
    concurrency: Option<usize>,
    exec: String,
    idle: Option<usize>,
    server_pid: Option<u32>,
    hold: u64,
    user: String,
    host: String,
}

fn die(msg: &str) -> ! {
    eprintln!("loadgen: {msg}");
    std::process::exit(2)
}

fn parse_args() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut port = 22;
    let mut key = None;
    let mut options = Vec::new();
    let mut connections = 100;
    let mut concurrency = None;
    let mut exec = "true".to_string();
    let mut idle = None;
    let mut server_pid = None;
    let mut hold = 0;
    let mut target = None;
    let mut i = 0;
    let value = |i: &mut usize, flag: &str| -> String {
        *i += 1;
        match args.get(*i) {
            Some(v) => v.clone(),
            None => die(&format!("option {flag} needs a value\n{USAGE}")),
        }
    };
    fn num<T: std::str::FromStr>(v: &str, flag: &str) -> T {
        v.parse()
            .unwrap_or_else(|_| die(&format!("bad value {v:?} for {flag}")))
    }
    while i < args.len() {
        let a = args[i].clone();
        match a.as_str() {
            "-p" => port = num(&value(&mut i, &a), &a),
            "-i" => key = Some(PathBuf::from(value(&mut i, &a))),
            "-o" => options.push(value(&mut i, &a)),
            "--connections" => connections = num(&value(&mut i, &a), &a),
            "--concurrency" => concurrency = Some(num(&value(&mut i, &a), &a)),
            "--exec" => exec = value(&mut i, &a),
            "--idle" => idle = Some(num(&value(&mut i, &a), &a)),
            "--server-pid" => server_pid = Some(num(&value(&mut i, &a), &a)),
            "--hold" => hold = num(&value(&mut i, &a), &a),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ if a.starts_with("-o") && a.len() > 2 => options.push(a[2..].to_string()),
            _ if a.starts_with("-p") && a.len() > 2 => port = num(&a[2..], "-p"),
            _ if a.starts_with("-i") && a.len() > 2 => key = Some(PathBuf::from(&a[2..])),
            _ if a.starts_with('-') => die(&format!("unknown option {a:?}\n{USAGE}")),
            _ if target.is_none() => target = Some(a),
            _ => die(&format!("unexpected argument {a:?}\n{USAGE}")),
        }
        i += 1;
    }
    let target = target.unwrap_or_else(|| die(&format!("no user@host given\n{USAGE}")));
    let (user, host) = match target.rsplit_once('@') {
        Some((u, h)) => (u.to_string(), h.to_string()),
        None => (
            std::env::var("USER").unwrap_or_else(|_| "root".into()),
            target,
        ),
    };
    let key = key.unwrap_or_else(|| die(&format!("-i KEY is required\n{USAGE}")));
    let mut known_hosts = None;
    let mut opts = Vec::new();
    for kv in options {
        let (k, v) = common::split_option(&kv).unwrap_or_else(|e| die(&e.to_string()));
        if k == "userknownhostsfile" {
            known_hosts = Some(PathBuf::from(v));
        } else {
            opts.push((k, v));
        }
    }
    if concurrency == Some(0) {
        die("--concurrency must be at least 1");
    }
    Opts {
        port,
        key,
        known_hosts,
        options: opts,
        connections,
        concurrency,
        exec,
        idle,
        server_pid,
        hold,
        user,
        host,
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft
/// limit.
fn raise_nofile() -> u64 {
    let Ok((cur, max)) = sys::nofile_limit() else {
        return 1024;
    };
    if cur < max && sys::set_nofile_limit(max, max).is_ok() {
        return max;
    }
    cur
}

/// VmRSS of a process in KiB, from /proc/PID/status.
fn vm_rss_kib(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

struct Target {
    handle: ReactorHandle,
    addr: (String, u16),
    config: Arc<Config>,
    known_hosts: PathBuf,
    user: String,
    key: Arc<PrivateKey>,
}

impl Target {
    /// Connects, checks the host key and authenticates.
    fn open(&self) -> Result<Client, String> {
        let client = self
            .handle
            .connect_with(
                (self.addr.0.as_str(), self.addr.1),
                self.config.clone(),
                HostKeyCheck::KnownHostsFile(self.known_hosts.clone()),
                Some(CONNECT_TIMEOUT),
            )
            .map_err(|e| format!("connect: {e}"))?;
        client
            .auth_publickey(&self.user, self.key.clone())
            .map_err(|e| format!("publickey auth as {}: {e}", self.user))?;
        Ok(client)
    }

    /// One whole connection: open, exec, close.
    fn one(&self, cmd: &str) -> Result<(), String> {
        let client = self.open()?;
        let out = client.exec(cmd).map_err(|e| format!("exec {cmd:?}: {e}"))?;
        let (stderr, status) = (out.stderr, out.status);
        if let Some(sig) = out.signal {
            return Err(format!("exec {cmd:?}: killed by signal {}", sig.signal));
        }
        match status {
            Some(0) => {}
            Some(s) => {
                return Err(format!(
                    "exec {cmd:?}: exit status {s}: {}",
                    String::from_utf8_lossy(&stderr).trim()
                ))
            }
            None => return Err(format!("exec {cmd:?}: no exit status")),
        }
        client.disconnect();
        drop(client);
        Ok(())
    }
}

/// Failures: how many, and the first one's message.
#[derive(Default)]
struct Failures {
    count: usize,
    first: Option<String>,
}

impl Failures {
    fn add(&mut self, e: String) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(e);
        }
    }
}

/// Runs `work(i)` for i in 0..n on `threads` threads.
fn run_workers<F>(n: usize, threads: usize, work: F)
where
    F: Fn(usize) + Sync,
{
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.min(n).max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                work(i);
            });
        }
    });
}

fn main() {
    let o = parse_args();
    let nofile = raise_nofile();
    let concurrency = o
        .concurrency
        .unwrap_or(if o.idle.is_some() { 50 } else { 32 });
    let needed = match o.idle {
        Some(n) => n as u64 + SPARE_FDS,
        None => concurrency as u64 + SPARE_FDS,
    };
    if needed > nofile {
        die(&format!(
            "{} connections need about {needed} file descriptors, but RLIMIT_NOFILE allows {nofile} \
             (the soft limit was raised to the hard limit); raise the hard limit (ulimit -Hn) or use fewer",
            o.idle.unwrap_or(concurrency)
        ));
    }
    let known_hosts = o.known_hosts.clone().unwrap_or_else(|| {
        die("-o UserKnownHostsFile=FILE is required (the host key is always checked)")
    });
    let key = match ssh_std::load_private_key(&o.key, None) {
        Ok(k) => Arc::new(k),
        Err(e) => die(&format!("{}: {e}", o.key.display())),
    };
    let mut config = Config::default();
    for (k, v) in &o.options {
        match common::apply_transport_option(&mut config, k, v) {
            Ok(true) => {}
            Ok(false) => die(&format!("unsupported option {k:?}")),
            Err(e) => die(&e.to_string()),
        }
    }

    // The reactor on a thread of its own, as ssh_mio::Runtime does, but
    // kept so that the end can wait for every connection to close.
    let mut reactor = Reactor::new().unwrap_or_else(|e| die(&format!("mio: {e}")));
    let handle = reactor.handle();
    let thread = std::thread::Builder::new()
        .name("ssh-mio".into())
        .spawn(move || reactor.run())
        .unwrap_or_else(|e| die(&format!("cannot start the reactor thread: {e}")));

    let target = Target {
        handle: handle.clone(),
        addr: (o.host.clone(), o.port),
        config: Arc::new(config),
        known_hosts,
        user: o.user.clone(),
        key,
    };
    let failures = Mutex::new(Failures::default());

    let ok = match o.idle {
        None => normal(&o, &target, concurrency, &failures),
        Some(n) => idle(&o, &target, n, concurrency, &failures),
    };

    // Let the reactor send every close and end.
    handle.shutdown();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if thread.is_finished() {
        if let Ok(Err(e)) = thread.join() {
            eprintln!("loadgen: reactor: {e}");
        }
    } else {
        eprintln!("loadgen: warning: connections still open 10 s after the end");
    }
    let _ = std::io::stdout().flush();
    std::process::exit(if ok { 0 } else { 1 });
}

fn report_failures(failures: &Mutex<Failures>) -> bool {
    let f = failures.lock().unwrap();
    if let Some(e) = &f.first {
        eprintln!("loadgen: first error: {e}");
    }
    f.count == 0
}

fn normal(o: &Opts, target: &Target, concurrency: usize, failures: &Mutex<Failures>) -> bool {
    let n = o.connections;
    let latencies = Mutex::new(Vec::with_capacity(n));
    let t0 = Instant::now();
    run_workers(n, concurrency, |_| {
        let start = Instant::now();
        match target.one(&o.exec) {
            Ok(()) => latencies.lock().unwrap().push(start.elapsed()),
            Err(e) => failures.lock().unwrap().add(e),
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let mut lat = latencies.into_inner().unwrap();
    lat.sort();
    let failed = failures.lock().unwrap().count;
    println!(
        "loadgen: {n} connections in {wall:.2} s: {:.1} conn/s; latency ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}; {failed} failed",
        n as f64 / wall,
        percentile(&lat, 50.0),
        percentile(&lat, 90.0),
        percentile(&lat, 99.0),
        percentile(&lat, 100.0),
    );
    report_failures(failures)
}

fn idle(
    o: &Opts,
    target: &Target,
    n: usize,
    concurrency: usize,
    failures: &Mutex<Failures>,
) -> bool {
    let pid = o.server_pid.map(|p| p.to_string());
    let server_before = pid.as_deref().map(|p| {
        vm_rss_kib(p).unwrap_or_else(|| die(&format!("cannot read VmRSS of process {p}")))
    });
    let own_before = vm_rss_kib("self").unwrap_or(0);
    let clients = Mutex::new(Vec::with_capacity(n));
    let t0 = Instant::now();
    run_workers(n, concurrency, |_| match target.open() {
        Ok(c) => clients.lock().unwrap().push(c),
        Err(e) => failures.lock().unwrap().add(e),
    });
    let clients = clients.into_inner().unwrap();
    let up = clients.len();
    println!(
        "idle: {up} sessions open in {:.2} s ({} failed)",
        t0.elapsed().as_secs_f64(),
        n - up
    );
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(2));
    if let (Some(p), Some(before)) = (pid.as_deref(), server_before) {
        match vm_rss_kib(p) {
            Some(after) => {
                let per = (after as f64 - before as f64) * 1024.0 / up.max(1) as f64;
                println!(
                    "idle: {up} sessions; server RSS before {before} KiB, after {after} KiB: {per:.0} bytes per connection"
                );
            }
            None => eprintln!("loadgen: process {p} is gone"),
        }
    }
    let own_after = vm_rss_kib("self").unwrap_or(0);
    println!(
        "idle: loadgen RSS before {own_before} KiB, after {own_after} KiB: {:.0} bytes per connection",
        (own_after as f64 - own_before as f64) * 1024.0 / up.max(1) as f64
    );
    let _ = std::io::stdout().flush();
    if o.hold > 0 {
        std::thread::sleep(Duration::from_secs(o.hold));
    }
    drop(clients);
    report_failures(failures)
}
