//! An OpenSSH-style client on the blocking adapter.
//!
//! ```text
//! client [-F FILE] [-p PORT] [-l USER] [-i FILE]... [-o Key=Value]... [-c CIPHERS] [-m MACS]
//!        [-C] [-v[v[v]]] [-t|-T] [-N] [-g] [-L SPEC]... [-R SPEC]... [-D SPEC]...
//!        [-W host:port] [-J [user@]host[:port][,...]]
//!        [--runtime blocking|tokio|mio] [user@]host [command...]
//! ```
//!
//! Forwarding as ssh(1): `-L [bind_address:]port:host:hostport` (or a
//! `/socket` on either side), `-R [bind_address:]port:host:hostport` (or
//! sockets; port 0 prints the allocated port), `-D [bind_address:]port`
//! (SOCKS), `-N` (no command), `-W host:port` (stdin and stdout to
//! host:port), `-J` (ProxyJump hops), `-g` and the options GatewayPorts,
//! ExitOnForwardFailure, LocalForward, RemoteForward, DynamicForward and
//! ProxyJump.
//!
//! ssh_config is read as ssh reads it: `-F FILE` (`-F none`: no file), or
//! `~/.ssh/config` then `/etc/ssh/ssh_config`; `-o`, `-l` and `-p` win
//! over the files. The configuration gives the host name, port, user,
//! identities, known-hosts files and checking, algorithms, compression,
//! timeouts and keepalives, the authentication methods and their order,
//! ProxyJump or ProxyCommand, forwards, RequestTTY, RemoteCommand, and
//! the environment the session sends (SendEnv, SetEnv). A keyword it sets
//! that is not acted on is refused by name unless its setting is harmless
//! here (`HashKnownHosts`, `GSSAPIAuthentication`, ...: `-v` names them).
//!
//! `--runtime` picks the adapter that moves the bytes (default blocking);
//! the behaviour is the same under each.
//!
//! Exit status: the remote command's, or 255 on a connection or
//! authentication error (with one line on stderr); with `-W` 0 when the
//! channel closes; with `-N` 255 when the connection ends. A forward that
//! cannot be set up is ssh's warning (the session goes on), or with
//! ExitOnForwardFailure=yes its message and exit 255.

#[path = "common/mod.rs"]
mod common;

use common::sys;

use common::connect::{connect, hops, parse_jump, ConnectOpts, Hop};
use common::forward::{self, parse_forward, Connect, FwdOpts, Listen};
use common::runtime::{AnyChannel, AnyClient, RuntimeKind, StreamReader};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ssh_blocking::proto::config::ResolvedConfig;
use ssh_blocking::proto::Stream;
use ssh_blocking::{Error, ErrorKind};

struct Opts {
    port: Option<u16>,
    user: Option<String>,
    identities: Vec<PathBuf>,
    options: Vec<(String, String)>,
    /// `-F`: the configuration file (`none`: none).
    config: Option<String>,
    /// The number of `-v` flags.
    verbose: u8,
    force_tty: bool,
    no_tty: bool,
    host: String,
    command: Vec<String>,
    runtime: RuntimeKind,
    /// `-N`: no command or shell.
    no_shell: bool,
    /// `-W`: stdin and stdout to this target.
    stdio: Option<Connect>,
    /// `-J` hops (None: not given).
    jump: Option<Vec<Hop>>,
    fwd: FwdOpts,
}

fn usage() -> ! {
    eprintln!(
        "usage: client [-F FILE] [-p PORT] [-l USER] [-i FILE]... [-o Key=Value]... [-c CIPHERS] [-m MACS] [-C] [-v[v[v]]] [-t|-T] [-N] [-g] [-L spec] [-R spec] [-D [bind_address:]port] [-W host:port] [-J destination] [--runtime blocking|tokio|mio] [user@]host [command...]"
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
        config: None,
        verbose: 0,
        force_tty: false,
        no_tty: false,
        host: String::new(),
        command: Vec::new(),
        runtime: RuntimeKind::Blocking,
        no_shell: false,
        stdio: None,
        jump: None,
        fwd: FwdOpts::default(),
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
        let takes_value = matches!(
            flag,
            'p' | 'l' | 'i' | 'o' | 'c' | 'm' | 'F' | 'E' | 'L' | 'R' | 'D' | 'W' | 'J'
        );
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
                'L' => match parse_forward(&value, false, false) {
                    Some(f) => o.fwd.local.push(f),
                    None => bad_spec("local", &value),
                },
                'R' => match parse_forward(&value, false, true) {
                    Some(f) => o.fwd.remote.push(f),
                    None => bad_spec("remote", &value),
                },
                'D' => match parse_forward(&value, true, false) {
                    Some(f) => o.fwd.dynamic.push(f),
                    None => bad_spec("dynamic", &value),
                },
                'W' => {
                    if o.stdio.is_some() {
                        forward::fatal("stdio forward already specified");
                    }
                    o.stdio = match parse_forward(&value, true, false).map(|f| f.listen) {
                        Some(Listen::Tcp {
                            host: Some(host),
                            port,
                        }) => Some(Connect::Tcp { host, port }),
                        Some(Listen::Path(p)) => Some(Connect::Path(p)),
                        _ => bad_spec("stdio", &value),
                    };
                }
                'J' => {
                    if o.jump.is_some() {
                        forward::fatal("Only a single -J option is permitted");
                    }
                    o.jump = Some(
                        parse_jump(&value).unwrap_or_else(|| forward::fatal("Invalid -J argument")),
                    );
                }
                'c' => o.options.push(("Ciphers".into(), value)),
                'm' => o.options.push(("MACs".into(), value)),
                'F' => o.config = Some(value),
                // -E FILE: accepted for compatibility; messages go to stderr.
                _ => {}
            }
        } else {
            for f in a[1..].chars() {
                match f {
                    'C' => o.options.push(("Compression".into(), "yes".into())),
                    'v' => o.verbose = o.verbose.saturating_add(1),
                    't' => o.force_tty = true,
                    'T' => o.no_tty = true,
                    'N' => o.no_shell = true,
                    'g' => o.fwd.gateway_ports = true,
                    'q' | 'n' | 'x' | 'a' | 'A' | 'X' | '4' | '6' => {}
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
    take_forward_options(&mut o);
    o
}

/// Forwarding from the configuration (after the command line's),
/// ExitOnForwardFailure, GatewayPorts, RequestTTY and RemoteCommand.
fn apply_config(o: &mut Opts, cfg: &ResolvedConfig) {
    let bad =
        |spec: &str| -> ! { forward::fatal(&format!("Bad forwarding specification '{spec}'")) };
    for (list, remote) in [(&cfg.local_forwards, false), (&cfg.remote_forwards, true)] {
        for v in list {
            let words: Vec<&str> = v.split_whitespace().collect();
            let spec = match words.as_slice() {
                [a, b] => format!("{a}:{b}"),
                [a] if remote => a.to_string(),
                _ => bad(v),
            };
            let f = parse_forward(&spec, false, remote).unwrap_or_else(|| bad(v));
            if remote {
                o.fwd.remote.push(f);
            } else {
                o.fwd.local.push(f);
            }
        }
    }
    for v in &cfg.dynamic_forwards {
        let f = parse_forward(v, true, false).unwrap_or_else(|| bad(v));
        o.fwd.dynamic.push(f);
    }
    let first = |k: &str| cfg.get(k).and_then(|v| v.first()).map(String::as_str);
    if let Some(v) = first("exitonforwardfailure") {
        o.fwd.exit_on_failure = common::yes(v);
    }
    if let Some(v) = first("gatewayports") {
        o.fwd.gateway_ports |= common::yes(v);
    }
    if !o.force_tty && !o.no_tty {
        match cfg
            .request_tty
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("yes" | "force" | "true") => o.force_tty = true,
            Some("no" | "false") => o.no_tty = true,
            _ => {}
        }
    }
    if let Some(rc) = &cfg.remote_command {
        if !o.command.is_empty() {
            forward::fatal("Cannot execute command-line and remote command.");
        }
        if !o.no_shell {
            o.command = vec![rc.clone()];
        }
    }
    for f in &o.fwd.remote {
        if f.connect == Connect::Socks {
            die("dynamic remote forwarding (-R [bind_address:]port) is not supported");
        }
    }
    for f in &o.fwd.dynamic {
        if let Listen::Path(p) = &f.listen {
            die(&format!(
                "dynamic forwarding on a Unix socket (-D {p}) is not supported"
            ));
        }
    }
}

/// ssh's message for a malformed `-L`, `-R`, `-D` or `-W` and exit 255.
fn bad_spec(what: &str, spec: &str) -> ! {
    forward::fatal(&format!("Bad {what} forwarding specification '{spec}'"))
}

/// Takes the forwarding options out of the `-o` list (ssh_config's
/// LocalForward and RemoteForward take `listen target` as two words).
fn take_forward_options(o: &mut Opts) {
    let mut seen = std::collections::HashSet::new();
    let mut keep = Vec::new();
    for (k, v) in std::mem::take(&mut o.options) {
        let key = k.to_ascii_lowercase();
        let first = seen.insert(key.clone());
        let words: Vec<&str> = v.split_whitespace().collect();
        let bad = || -> ! { forward::fatal("command-line line 0: Bad forwarding specification.") };
        match key.as_str() {
            "localforward" | "remoteforward" => {
                let remote = key == "remoteforward";
                let spec = match words.as_slice() {
                    [a, b] => format!("{a}:{b}"),
                    [a] if remote => a.to_string(),
                    [_] => forward::fatal("command-line line 0: Missing target argument."),
                    _ => bad(),
                };
                let f = parse_forward(&spec, false, remote).unwrap_or_else(|| bad());
                if remote {
                    o.fwd.remote.push(f);
                } else {
                    o.fwd.local.push(f);
                }
            }
            "dynamicforward" => {
                let f = parse_forward(&v, true, false).unwrap_or_else(|| bad());
                o.fwd.dynamic.push(f);
            }
            // Checked here; the configuration takes them (first wins).
            "proxyjump" if first && parse_jump(&v).is_none() => {
                forward::fatal(&format!("command-line line 0: Invalid ProxyJump \"{v}\""))
            }
            _ => keep.push((k, v)),
        }
    }
    o.options = keep;
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
    let cfg = common::config::resolve(&common::config::CmdLine {
        file: o.config.as_deref(),
        host: &host,
        user,
        port: o.port,
        options: &o.options,
        remote_command: (!o.command.is_empty()).then(|| o.command.join(" ")),
    });
    apply_config(&mut o, &cfg);
    let env = common::config::session_env(&cfg);
    let jump = hops(o.config.as_deref(), &o.options, &cfg, o.jump.take())
        .unwrap_or_else(|e| forward::fatal(&e));
    if let Some((last, _)) = jump.last() {
        if last.host == host && last.port.unwrap_or(22) == cfg.port {
            forward::fatal(&format!("jumphost loop via {host}"));
        }
    }
    if o.stdio.is_some() && !o.command.is_empty() {
        // OpenSSH runs the -W forward and drops the command unsaid.
        die("-W cannot be combined with a remote command");
    }
    let client = connect(ConnectOpts {
        prog: "client",
        cfg,
        identities: std::mem::take(&mut o.identities),
        verbose: o.verbose > 0,
        runtime: o.runtime,
        jump,
    })?;
    if let Some(b) = client.banner() {
        eprint!("{b}");
    }
    // Forwarding first, as ssh sets it up before the session.
    let _local = forward::start_local(&client, &o.fwd);
    let remotes = forward::start_remote(&client, &o.fwd)?;
    if let Some(target) = o.stdio.take() {
        return stdio_forward(&client, &target);
    }
    if o.no_shell {
        // Until the connection ends (or we are killed).
        forward::serve_remote(&client, &remotes);
        eprintln!("Connection to {host} closed by remote host.");
        return Ok(255);
    }
    if !remotes.is_empty() {
        let (client, remotes) = (client.clone(), remotes.clone());
        std::thread::spawn(move || forward::serve_remote(&client, &remotes));
    }

    let interactive = o.command.is_empty();
    let want_tty = !o.no_tty && (o.force_tty || (interactive && std::io::stdin().is_terminal()));
    forward::next_channel_number();
    let ch = client.channel_session()?;
    // SendEnv and SetEnv, before the pty and the command, as ssh sends them.
    for (k, v) in &env {
        ch.set_env(k, v)?;
    }
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

    pump_stdin(ch.clone());
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
    copy_stdout(&ch)?;
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

/// stdin -> the channel (on a thread of its own), then EOF.
fn pump_stdin(ch: Arc<AnyChannel>) {
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

/// The channel -> stdout until its EOF. What arrives is written out at
/// once (std's stdout buffers up to a newline), so request/response
/// protocols over pipes never wait on bytes held back here.
fn copy_stdout(ch: &AnyChannel) -> Result<(), Error> {
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
    Ok(())
}

/// `-W`: stdin and stdout carried to `target` over one channel, until the
/// channel's EOF. A refused open is ssh's two lines and exit 255.
fn stdio_forward(client: &AnyClient, target: &Connect) -> Result<i32, Error> {
    let number = forward::next_channel_number();
    let r = match target {
        Connect::Tcp { host, port } => client.direct_tcpip(host, *port, ("127.0.0.1", 65535)),
        Connect::Path(p) => client.direct_streamlocal(p),
        Connect::Socks => return Err(Error::usage("-W needs host:port")),
    };
    let ch = match r {
        Ok(ch) => Arc::new(ch),
        Err(e) if e.kind() == ErrorKind::ChannelOpen => {
            eprintln!("{}", forward::open_failed_line(number, &e));
            forward::fatal("stdio forwarding failed");
        }
        Err(e) => return Err(e),
    };
    pump_stdin(ch.clone());
    copy_stdout(&ch)?;
    client.disconnect();
    Ok(0)
}

fn main() {
    let code = match run() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("client: {e}");
            255
        }
    };
    forward::cleanup();
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
