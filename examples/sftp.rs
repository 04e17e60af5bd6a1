//! An OpenSSH-style SFTP client on `ssh_blocking::Sftp` (or `ssh_tokio::Sftp`).
//!
//! ```text
//! sftp [-P PORT] [-i FILE] [-F FILE] [-J destination] [-o Key=Value]... [-b BATCHFILE] [-R NUM_REQUESTS]
//!      [-B BUFFER_SIZE] [-v[v[v]]] [--runtime blocking|tokio|mio] [user@]host[:path]
//! ```
//!
//! Commands: `ls [-l] [path]`, `cd`, `pwd`, `lcd`, `lpwd`, `get`, `put`,
//! `mkdir`, `rmdir`, `rm`, `rename`, `ln -s`, `chmod`, `chown`, `df`,
//! `bye`/`quit`/`exit`, `help`. With `-b`, a failing command stops the
//! batch and the exit code is 1; a leading `-` ignores a command's failure
//! (as OpenSSH's sftp). Host keys, identities and authentication work as in
//! the `client` example, ssh_config included (`-F`, or `~/.ssh/config`
//! and `/etc/ssh/ssh_config`).

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::connect::{connect, hops, ConnectOpts};
use common::runtime::{AnySftp as Sftp, RuntimeKind};
use ssh_blocking::proto::sftp::codec::longname;
use ssh_blocking::proto::sftp::Attrs;
use ssh_blocking::Error;

const USAGE: &str =
    "usage: sftp [-P PORT] [-i FILE] [-F FILE] [-J destination] [-o Key=Value]... [-b BATCHFILE] [-R NUM_REQUESTS]
            [-B BUFFER_SIZE] [-v[v[v]]] [--runtime blocking|tokio|mio] [user@]host[:path]";

const HELP: &str = "Available commands:
bye                                Quit sftp
cd [path]                          Change remote directory to 'path'
chmod mode path                    Change permissions of file 'path' to 'mode'
chown own path                     Change owner of file 'path' to 'own'
df [path]                          Display statistics for current directory or
                                   filesystem containing 'path'
exit                               Quit sftp
get remote [local]                 Download file
help                               Display this help text
lcd [path]                         Change local directory to 'path'
ln -s oldpath newpath              Link remote file (-s for symlink)
lpwd                               Print local working directory
ls [-l] [path]                     Display remote directory listing
mkdir path                         Create remote directory
put local [remote]                 Upload file
pwd                                Display remote working directory
quit                               Quit sftp
rename oldpath newpath             Rename remote file
rm path                            Delete remote file
rmdir path                         Remove remote directory
?                                  Synonym for help";

struct Opts {
    port: Option<u16>,
    identities: Vec<PathBuf>,
    options: Vec<(String, String)>,
    /// `-F`: the configuration file (`none`: none).
    config: Option<String>,
    batch: Option<PathBuf>,
    requests: Option<usize>,
    buffer: Option<u32>,
    /// The number of `-v` flags.
    verbose: u8,
    target: String,
    runtime: RuntimeKind,
}

fn die(msg: &str) -> ! {
    eprintln!("sftp: {msg}");
    std::process::exit(255)
}

fn parse_args() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Opts {
        port: None,
        identities: Vec::new(),
        options: Vec::new(),
        config: None,
        batch: None,
        requests: None,
        buffer: None,
        verbose: 0,
        target: String::new(),
        runtime: RuntimeKind::Blocking,
    };
    let mut i = 0;
    let value = |i: &mut usize, flag: &str| -> String {
        *i += 1;
        args.get(*i)
            .cloned()
            .unwrap_or_else(|| die(&format!("option {flag} needs a value\n{USAGE}")))
    };
    while i < args.len() {
        let a = args[i].clone();
        match a.as_str() {
            "-P" => {
                o.port = Some(
                    value(&mut i, "-P")
                        .parse()
                        .unwrap_or_else(|_| die("bad port")),
                )
            }
            "-i" => o.identities.push(value(&mut i, "-i").into()),
            "-o" => {
                let kv = value(&mut i, "-o");
                let (k, v) = common::split_option(&kv).unwrap_or_else(|e| die(&e.to_string()));
                o.options.push((k, v));
            }
            "-F" => o.config = Some(value(&mut i, "-F")),
            "-J" => o.options.push(("ProxyJump".into(), value(&mut i, "-J"))),
            "-b" => o.batch = Some(value(&mut i, "-b").into()),
            "-R" => {
                o.requests = Some(
                    value(&mut i, "-R")
                        .parse()
                        .unwrap_or_else(|_| die("bad -R value")),
                )
            }
            "-B" => {
                o.buffer = Some(
                    value(&mut i, "-B")
                        .parse()
                        .unwrap_or_else(|_| die("bad -B value")),
                )
            }
            _ if common::verbosity_flag(&a).is_some() => {
                o.verbose = o
                    .verbose
                    .saturating_add(common::verbosity_flag(&a).unwrap_or(0))
            }
            "--runtime" => {
                o.runtime =
                    RuntimeKind::parse(&value(&mut i, "--runtime")).unwrap_or_else(|e| die(&e))
            }
            "-q" | "-C" | "-4" => {}
            _ if a.starts_with('-') => die(&format!("unknown option {a}\n{USAGE}")),
            _ if o.target.is_empty() => o.target = a,
            _ => die(USAGE),
        }
        i += 1;
    }
    if o.target.is_empty() {
        die(USAGE);
    }
    o
}

/// Splits `[user@]host[:path]`.
fn split_target(t: &str) -> (Option<String>, String, Option<String>) {
    let (user, rest) = match t.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, t),
    };
    let (host, path) = if let Some(r) = rest.strip_prefix('[') {
        match r.split_once(']') {
            Some((h, tail)) => (h.to_string(), tail.strip_prefix(':').map(str::to_string)),
            None => (rest.to_string(), None),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.to_string())),
            None => (rest.to_string(), None),
        }
    };
    (user, host, path.filter(|p| !p.is_empty()))
}

fn main() {
    let o = parse_args();
    common::init_tracing(o.verbose, tracing::Level::WARN);
    let (user, host, path) = split_target(&o.target);
    let cfg = common::config::resolve(&common::config::CmdLine {
        file: o.config.as_deref(),
        host: &host,
        user,
        port: o.port,
        options: &o.options,
        remote_command: None,
    });
    let jump = hops(o.config.as_deref(), &o.options, &cfg, None).unwrap_or_else(|e| die(&e));
    let client = match connect(ConnectOpts {
        prog: "sftp",
        cfg,
        identities: o.identities.clone(),
        verbose: o.verbose > 0,
        runtime: o.runtime,
        jump,
    }) {
        Ok(c) => c,
        Err(e) => die(&e.to_string()),
    };
    let sftp = match client.sftp() {
        Ok(s) => s,
        Err(e) => die(&format!("cannot start SFTP: {e}")),
    };
    if o.buffer.is_some() || o.requests.is_some() {
        let p = sftp.pipeline();
        sftp.set_pipeline(
            o.buffer.unwrap_or(p.chunk),
            o.requests.unwrap_or(p.requests),
        );
    }
    let mut s = Session {
        sftp,
        progress: std::io::stdout().is_terminal(),
    };
    if let Some(p) = path {
        // `host:dir` starts there; `host:file` fetches the file.
        match s.sftp.stat(&p) {
            Ok(a) if a.is_dir() => {
                if let Err(e) = s.sftp.chdir(Some(&p)) {
                    die(&e.to_string());
                }
            }
            _ => {
                let code = match s.run(&format!("get {}", quote(&p))) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("{e}");
                        1
                    }
                };
                client.disconnect();
                std::process::exit(code);
            }
        }
    }
    let code = match &o.batch {
        Some(file) => {
            let input: Box<dyn BufRead> = if file.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                match std::fs::File::open(file) {
                    Ok(f) => Box::new(std::io::BufReader::new(f)),
                    Err(e) => die(&format!("{}: {e}", file.display())),
                }
            };
            s.batch(input)
        }
        None => s.interactive(),
    };
    client.disconnect();
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

struct Session {
    sftp: Sftp,
    progress: bool,
}

fn quote(p: &str) -> String {
    if p.contains([' ', '"', '\\']) {
        format!("\"{}\"", p.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        p.to_string()
    }
}

/// Splits a command line into words, with "double", 'single' quotes and
/// backslash escapes.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

fn basename(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

/// An `ls -l` line from attributes (for servers that send no longname).
fn long_line(name: &str, a: &Attrs) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    longname(name, a, now)
}

type CmdResult = Result<(), String>;

impl Session {
    fn interactive(&mut self) -> i32 {
        let stdin = std::io::stdin();
        let tty = stdin.is_terminal();
        let mut line = String::new();
        loop {
            if tty {
                print!("sftp> ");
                let _ = std::io::stdout().flush();
            }
            line.clear();
            match stdin.lock().read_line(&mut line) {
                Ok(0) | Err(_) => return 0,
                Ok(_) => {}
            }
            let cmd = line.trim();
            if cmd.is_empty() || cmd.starts_with('#') {
                continue;
            }
            if !tty {
                println!("sftp> {cmd}");
            }
            match self.run(cmd.trim_start_matches(['-', '@'])) {
                Ok(()) => {}
                Err(e) if e == "quit" => return 0,
                Err(e) => eprintln!("{e}"),
            }
        }
    }

    fn batch(&mut self, input: Box<dyn BufRead>) -> i32 {
        for line in input.lines() {
            let Ok(line) = line else { return 1 };
            let mut cmd = line.trim();
            if cmd.is_empty() || cmd.starts_with('#') {
                continue;
            }
            let mut ignore = false;
            let mut echo = true;
            loop {
                if let Some(r) = cmd.strip_prefix('-') {
                    ignore = true;
                    cmd = r;
                } else if let Some(r) = cmd.strip_prefix('@') {
                    echo = false;
                    cmd = r;
                } else {
                    break;
                }
            }
            if echo {
                println!("sftp> {cmd}");
                let _ = std::io::stdout().flush();
            }
            match self.run(cmd) {
                Ok(()) => {}
                Err(e) if e == "quit" => return 0,
                Err(e) => {
                    eprintln!("{e}");
                    if !ignore {
                        return 1;
                    }
                }
            }
        }
        0
    }

    /// Runs one command line. Err("quit") ends the session.
    fn run(&mut self, line: &str) -> CmdResult {
        let w = words(line)?;
        let Some(cmd) = w.first() else {
            return Ok(());
        };
        let args: Vec<&str> = w[1..].iter().map(String::as_str).collect();
        let e = |x: Error| x.to_string();
        match cmd.as_str() {
            "bye" | "quit" | "exit" => Err("quit".into()),
            "help" | "?" => {
                println!("{HELP}");
                Ok(())
            }
            "pwd" => {
                println!(
                    "Remote working directory: {}",
                    self.sftp.getcwd().map_err(e)?
                );
                Ok(())
            }
            "lpwd" => {
                let d = std::env::current_dir().map_err(|x| x.to_string())?;
                println!("Local working directory: {}", d.display());
                Ok(())
            }
            "cd" => {
                let target = args.first().copied().unwrap_or("");
                if target.is_empty() {
                    self.sftp.chdir(None).map_err(e)
                } else {
                    self.sftp.chdir(Some(target)).map_err(e)
                }
            }
            "lcd" => {
                let target = args
                    .first()
                    .map(|s| s.to_string())
                    .or_else(|| std::env::var("HOME").ok())
                    .unwrap_or_else(|| "/".into());
                std::env::set_current_dir(&target)
                    .map_err(|x| format!("Couldn't change local directory to \"{target}\": {x}"))
            }
            "ls" | "dir" => self.ls(&args),
            "get" => self.get(&args),
            "put" => self.put(&args),
            "mkdir" => one_arg(&args, "mkdir").and_then(|p| self.sftp.mkdir(p, 0o777).map_err(e)),
            "rmdir" => one_arg(&args, "rmdir").and_then(|p| self.sftp.rmdir(p).map_err(e)),
            "rm" => one_arg(&args, "rm").and_then(|p| self.sftp.remove(p).map_err(e)),
            "rename" => match args.as_slice() {
                [a, b] => self.sftp.rename(a, b).map_err(e),
                _ => Err("rename: two paths are needed".into()),
            },
            "ln" | "symlink" => {
                let a: Vec<&str> = args.iter().copied().filter(|a| *a != "-s").collect();
                let soft = cmd == "symlink" || args.contains(&"-s");
                match a.as_slice() {
                    [t, l] if soft => self.sftp.symlink(t, l).map_err(e),
                    [t, l] => self.sftp.hardlink(t, l).map_err(e),
                    _ => Err("ln: two paths are needed".into()),
                }
            }
            "chmod" => match args.as_slice() {
                [m, p] => {
                    let mode =
                        u32::from_str_radix(m, 8).map_err(|_| format!("chmod: bad mode {m:?}"))?;
                    println!("Changing mode on {}", self.abs(p));
                    self.sftp.chmod(p, mode).map_err(e)
                }
                _ => Err("chmod: mode and path are needed".into()),
            },
            "chown" | "chgrp" => match args.as_slice() {
                [id, p] => {
                    let id: u32 = id.parse().map_err(|_| format!("{cmd}: bad id {id:?}"))?;
                    let a = self.sftp.stat(p).map_err(e)?;
                    let (uid, gid) = a.uid_gid.unwrap_or((0, 0));
                    println!("Changing owner on {}", self.abs(p));
                    if cmd == "chown" {
                        self.sftp.chown(p, id, gid).map_err(e)
                    } else {
                        self.sftp.chown(p, uid, id).map_err(e)
                    }
                }
                _ => Err(format!("{cmd}: id and path are needed")),
            },
            "df" => {
                let p = args
                    .iter()
                    .find(|a| !a.starts_with('-'))
                    .copied()
                    .unwrap_or(".");
                let v = self.sftp.statvfs(p).map_err(e)?;
                let k = |blocks: u64| blocks * v.frsize.max(1) / 1024;
                println!(
                    "{:>12} {:>12} {:>12} {:>12} {:>5}",
                    "Size", "Used", "Avail", "(root)", "%Capacity"
                );
                let used = k(v.blocks.saturating_sub(v.bfree));
                println!(
                    "{:>12} {:>12} {:>12} {:>12} {:>4}%",
                    k(v.blocks),
                    used,
                    k(v.bavail),
                    k(v.bfree),
                    (100 * v.blocks.saturating_sub(v.bfree))
                        .checked_div(v.blocks)
                        .unwrap_or(0)
                );
                Ok(())
            }
            other => Err(format!("Invalid command \"{other}\".")),
        }
    }

    fn abs(&self, p: &str) -> String {
        if p.starts_with('/') {
            p.to_string()
        } else {
            let cwd = self.sftp.getcwd().unwrap_or_default();
            format!("{}/{p}", cwd.trim_end_matches('/'))
        }
    }

    fn ls(&mut self, args: &[&str]) -> CmdResult {
        let long = args.iter().any(|a| a.starts_with('-') && a.contains('l'));
        let all = args.iter().any(|a| a.starts_with('-') && a.contains('a'));
        let path = args
            .iter()
            .find(|a| !a.starts_with('-'))
            .copied()
            .unwrap_or(".");
        let a = self.sftp.stat(path).map_err(|e| e.to_string())?;
        if !a.is_dir() {
            if long {
                println!("{}", long_line(path, &a));
            } else {
                println!("{path}");
            }
            return Ok(());
        }
        let mut entries = self.sftp.read_dir(path).map_err(|e| e.to_string())?;
        entries.retain(|e| all || !e.name.starts_with('.'));
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let prefix = if path == "." {
            String::new()
        } else {
            format!("{}/", path.trim_end_matches('/'))
        };
        for en in entries {
            let shown = format!("{prefix}{}", en.name);
            if long {
                if en.longname.is_empty() {
                    println!("{}", long_line(&shown, &en.attrs));
                } else {
                    println!("{}", en.longname);
                }
            } else {
                println!("{shown}");
            }
        }
        Ok(())
    }

    fn bar(&self, total: u64, what: &str) -> Option<indicatif::ProgressBar> {
        if !self.progress {
            return None;
        }
        let pb = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:30!} {percent:>3}% {bytes:>10} {bytes_per_sec:>12} {eta:>5}",
        ) {
            pb.set_style(style);
        }
        pb.set_message(what.to_string());
        pb.enable_steady_tick(Duration::from_millis(200));
        Some(pb)
    }

    fn get(&mut self, args: &[&str]) -> CmdResult {
        let a: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| !a.starts_with('-'))
            .collect();
        let (remote, local) = match a.as_slice() {
            [r] => (*r, PathBuf::from(basename(r))),
            [r, l] => {
                let l = Path::new(l);
                let l = if l.is_dir() {
                    l.join(basename(r))
                } else {
                    l.to_path_buf()
                };
                (*r, l)
            }
            _ => return Err("get: a remote path is needed".into()),
        };
        println!("Fetching {} to {}", self.abs(remote), local.display());
        let total = self
            .sftp
            .stat(remote)
            .ok()
            .and_then(|a| a.size)
            .unwrap_or(0);
        let pb = self.bar(total, basename(remote));
        let mut cb = |done: u64, _t: u64| {
            if let Some(pb) = &pb {
                pb.set_position(done)
            }
        };
        let r = self.sftp.get(remote, &local, Some(&mut cb));
        if let Some(pb) = pb {
            pb.finish();
        }
        r.map(|_| ()).map_err(|e| e.to_string())
    }

    fn put(&mut self, args: &[&str]) -> CmdResult {
        let a: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| !a.starts_with('-'))
            .collect();
        let (local, remote) = match a.as_slice() {
            [l] => (*l, basename(l).to_string()),
            [l, r] => {
                let r = match self.sftp.stat(r) {
                    Ok(at) if at.is_dir() => format!("{}/{}", r.trim_end_matches('/'), basename(l)),
                    _ => r.to_string(),
                };
                (*l, r)
            }
            _ => return Err("put: a local path is needed".into()),
        };
        let total = std::fs::metadata(local)
            .map_err(|e| format!("stat local \"{local}\": {e}"))?
            .len();
        println!("Uploading {local} to {}", self.abs(&remote));
        let pb = self.bar(total, basename(local));
        let mut cb = |done: u64, _t: u64| {
            if let Some(pb) = &pb {
                pb.set_position(done)
            }
        };
        let r = self.sftp.put(Path::new(local), &remote, Some(&mut cb));
        if let Some(pb) = pb {
            pb.finish();
        }
        r.map(|_| ()).map_err(|e| e.to_string())
    }
}

fn one_arg<'a>(args: &[&'a str], cmd: &str) -> Result<&'a str, String> {
    match args {
        [p] => Ok(p),
        _ => Err(format!("{cmd}: one path is needed")),
    }
}
