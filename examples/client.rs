//! An OpenSSH-style client on the blocking adapter.
//!
//! ```text
//! client [-p PORT] [-l USER] [-i FILE]... [-o Key=Value]... [-c CIPHERS] [-m MACS]
//!        [-C] [-v[v[v]]] [-t|-T] [--runtime blocking|tokio|mio] [user@]host [command...]
//! ```
//!
//! `--runtime` picks the adapter that moves the bytes (default blocking);
//! the behaviour is the same under each.
//!
//! Exit status: the remote command's, or 255 on a connection or
//! authentication error (with one line on stderr).

#[path = "common/mod.rs"]
mod common;

use common::sys;

use common::connect::{connect, ConnectOpts};
use common::runtime::{RuntimeKind, StreamReader};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ssh_blocking::proto::Stream;
use ssh_blocking::Error;

struct Opts {
    port: Option<u16>,
    user: Option<String>,
    identities: Vec<PathBuf>,
    options: Vec<(String, String)>,
    compression: bool,
    /// The number of `-v` flags.
    verbose: u8,
    force_tty: bool,
    no_tty: bool,
    host: String,
    command: Vec<String>,
    runtime: RuntimeKind,
}

fn usage() -> ! {
    eprintln!(
        "usage: client [-p PORT] [-l USER] [-i FILE]... [-o Key=Value]... [-c CIPHERS] [-m MACS] [-C] [-v[v[v]]] [-t|-T] [--runtime blocking|tokio|mio] [user@]host [command...]"
    );
    std::process::exit(255);
}

fn parse_args() -> Opts {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Opts {
        port: None,
        user: None,
        identities: Vec::new(),
        options: Vec::new(),
        compression: false,
        verbose: 0,
        force_tty: false,
        no_tty: false,
        host: String::new(),
        command: Vec::new(),
        runtime: RuntimeKind::Blocking,
    };
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if !a.starts_with('-') || a == "-" {
            break;
        }
        if a == "--" {
            i += 1;
            break;
        }
        if a == "--runtime" || a.starts_with("--runtime=") {
            let v = match a.strip_prefix("--runtime=") {
                Some(v) => v.to_string(),
                None => {
                    i += 1;
                    args.get(i).cloned().unwrap_or_else(|| usage())
                }
            };
            o.runtime = RuntimeKind::parse(&v).unwrap_or_else(|e| die(&e));
            i += 1;
            continue;
        }
        let flag = a.as_bytes()[1] as char;
        let takes_value = matches!(flag, 'p' | 'l' | 'i' | 'o' | 'c' | 'm' | 'F' | 'E');
        if takes_value {
            let value = if a.len() > 2 {
                a[2..].to_string()
            } else {
                i += 1;
                args.get(i).cloned().unwrap_or_else(|| usage())
            };
            match flag {
                'p' => {
                    o.port = Some(
                        value
                            .parse()
                            .unwrap_or_else(|_| die(&format!("bad port {value:?}"))),
                    )
                }
                'l' => o.user = Some(value),
                'i' => o.identities.push(PathBuf::from(value)),
                'o' => {
                    let (k, v) = value
                        .split_once('=')
                        .or_else(|| value.split_once(' '))
                        .unwrap_or_else(|| die(&format!("bad -o option {value:?}")));
                    o.options.push((k.trim().to_string(), v.trim().to_string()));
                }
                'c' => o.options.push(("Ciphers".into(), value)),
                'm' => o.options.push(("MACs".into(), value)),
                // -F FILE / -E FILE: accepted for compatibility; no config file is read.
                _ => {}
            }
        } else {
            for f in a[1..].chars() {
                match f {
                    'C' => o.compression = true,
                    'v' => o.verbose = o.verbose.saturating_add(1),
                    't' => o.force_tty = true,
                    'T' => o.no_tty = true,
                    'q' | 'N' | 'n' | 'x' | 'a' | 'A' | 'X' | '4' | '6' => {}
                    _ => usage(),
                }
            }
        }
        i += 1;
    }
    if i >= args.len() {
        usage();
    }
    o.host = args[i].clone();
    o.command = args[i + 1..].to_vec();
    o
}

fn die(msg: &str) -> ! {
    eprintln!("client: {msg}");
    std::process::exit(255);
}

struct RawMode(Option<libc::termios>);
impl RawMode {
    fn enter() -> RawMode {
        let Some(saved) = sys::tcgetattr(0) else {
            return RawMode(None);
        };
        let _ = sys::tcsetattr(0, libc::TCSADRAIN, &sys::make_raw(saved));
        RawMode(Some(saved))
    }
}
impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            let _ = sys::tcsetattr(0, libc::TCSADRAIN, &t);
        }
    }
}

fn term_size() -> (u32, u32) {
    sys::winsize(1).unwrap_or((80, 24))
}

fn run() -> Result<i32, Error> {
    let mut o = parse_args();
    common::init_tracing(o.verbose, tracing::Level::WARN);
    let (mut user, host) = match o.host.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h.to_string()),
        None => (None, o.host.clone()),
    };
    if user.is_none() {
        user = o.user.clone();
    }
    let client = connect(ConnectOpts {
        prog: "client",
        host,
        port: o.port,
        user,
        identities: std::mem::take(&mut o.identities),
        options: std::mem::take(&mut o.options),
        compression: o.compression,
        verbose: o.verbose > 0,
        runtime: o.runtime,
    })?;
    if let Some(b) = client.banner() {
        eprint!("{b}");
    }

    let interactive = o.command.is_empty();
    let want_tty = !o.no_tty && (o.force_tty || (interactive && std::io::stdin().is_terminal()));
    let ch = client.channel_session()?;
    if want_tty {
        let (cols, rows) = term_size();
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        ch.request_pty(&term, cols, rows)?;
    }
    if interactive {
        ch.shell()?;
    } else {
        ch.exec(&o.command.join(" "))?;
    }
    let raw = if want_tty && std::io::stdin().is_terminal() {
        Some(RawMode::enter())
    } else {
        None
    };
    let ch = Arc::new(ch);
    if raw.is_some() {
        // Follow the local terminal's size (polled; no signal handler needed).
        let ch = ch.clone();
        std::thread::spawn(move || {
            let mut size = term_size();
            loop {
                std::thread::sleep(Duration::from_millis(250));
                let now = term_size();
                if now != size {
                    size = now;
                    if ch.window_change(now.0, now.1).is_err() {
                        return;
                    }
                }
            }
        });
    }

    // stdin -> channel
    {
        let ch = ch.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut stdin = std::io::stdin().lock();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = ch.send_eof();
                        return;
                    }
                    Ok(n) => {
                        let mut off = 0;
                        while off < n {
                            match ch.write_data(Stream::Stdout, &buf[off..n]) {
                                Ok(m) => off += m,
                                Err(_) => return,
                            }
                        }
                    }
                }
            }
        });
    }
    // stderr -> local stderr
    let err_thread = {
        let mut err = StreamReader {
            ch: ch.clone(),
            stream: Stream::Stderr,
        };
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            // Lock stderr per write: other threads may print too.
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut out = std::io::stderr().lock();
                let _ = out.write_all(&buf[..n]);
                let _ = out.flush();
            }
        })
    };
    // stdout: what arrives is written out at once (std's stdout buffers up
    // to a newline), so request/response protocols over pipes never wait
    // on bytes held back here.
    {
        let mut buf = vec![0u8; 256 * 1024];
        let mut out = std::io::stdout().lock();
        loop {
            let n = ch.read_stream(Stream::Stdout, &mut buf)?;
            if n == 0 {
                break;
            }
            if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                break;
            }
        }
        let _ = out.flush();
    }
    let _ = err_thread.join();
    let status = ch.exit_status()?;
    drop(raw);
    let code = match (status, ch.exit_signal()) {
        (Some(s), _) => s as i32,
        (None, Some(sig)) => {
            if o.verbose > 0 {
                eprintln!("client: remote command killed by signal {}", sig.signal);
            }
            255
        }
        (None, None) => 255,
    };
    client.disconnect();
    Ok(code)
}

fn main() {
    let code = match run() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("client: {e}");
            255
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
