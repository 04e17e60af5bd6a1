//! Runs one command over SSH with the sans-IO core `ssh-proto` driven
//! directly from the `smol` runtime: no adapter crate, just a loop that moves
//! bytes between an `Async<TcpStream>` and a `Connection`.
//!
//! ```text
//! smol_exec [-p PORT] [-i KEY] [-o UserKnownHostsFile=FILE] user@host CMD
//! ```
//!
//! The server's host key must be listed in the known_hosts file (default
//! `~/.ssh/known_hosts`), as with OpenSSH's `StrictHostKeyChecking=yes`; the
//! key file (default `~/.ssh/id_ed25519`) must be unencrypted. Exits with the
//! command's exit status, or 255 on any error.

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{future, Async, Timer};
use ssh_proto::disconnect;
use ssh_proto::keys::known_hosts::{HostKeyStatus, KnownHosts};
use ssh_proto::{ChannelId, Config, Connection, Event, PrivateKey, PublicKey, Stream};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "smol_exec [-p PORT] [-i KEY] [-o UserKnownHostsFile=FILE] user@host CMD";

struct Args {
    port: u16,
    key: PathBuf,
    known_hosts: PathBuf,
    dest: String,
    cmd: String,
}

fn parse_args() -> Res<Args> {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let mut a = Args {
        port: 22,
        key: home.join(".ssh/id_ed25519"),
        known_hosts: home.join(".ssh/known_hosts"),
        dest: String::new(),
        cmd: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or(format!("{arg} needs a value; usage: {USAGE}"))
        };
        match arg.as_str() {
            "-p" => a.port = value()?.parse().map_err(|_| "bad port")?,
            "-i" => a.key = value()?.into(),
            "-o" => match value()?.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("UserKnownHostsFile") => {
                    a.known_hosts = v.into()
                }
                _ => return Err("only -o UserKnownHostsFile=FILE is supported".into()),
            },
            _ if arg.starts_with('-') => {
                return Err(format!("unknown option {arg}; usage: {USAGE}").into())
            }
            _ => {
                a.dest = arg;
                a.cmd = it.collect::<Vec<_>>().join(" ");
                break;
            }
        }
    }
    if a.cmd.is_empty() {
        return Err(format!("usage: {USAGE}").into());
    }
    Ok(a)
}

/// The host key must be in the known_hosts file (StrictHostKeyChecking=yes).
fn check_host_key(a: &Args, host: &str, key: &PublicKey) -> Result<(), String> {
    let text = std::fs::read_to_string(&a.known_hosts).unwrap_or_default();
    let why = match KnownHosts::parse(&text).check(host, a.port, key) {
        HostKeyStatus::Match => return Ok(()),
        HostKeyStatus::Mismatch => "REMOTE HOST IDENTIFICATION HAS CHANGED: it does not match",
        HostKeyStatus::Revoked => "it is revoked in",
        _ => "no such key is known in",
    };
    let (kh, t, fp) = (a.known_hosts.display(), key.key_type(), key.fingerprint());
    Err(format!(
        "host key verification failed for {host} port {}: {why} {kh} ({t} {fp})",
        a.port
    ))
}

/// Copies everything buffered on a channel stream to our stdout or stderr.
fn copy_out(conn: &mut Connection, id: ChannelId, stream: Stream, buf: &mut [u8]) -> Res<()> {
    loop {
        let n = conn.channel_read(id, stream, buf)?;
        match stream {
            _ if n == 0 => return Ok(()),
            Stream::Stdout => std::io::stdout().write_all(&buf[..n])?,
            Stream::Stderr => std::io::stderr().write_all(&buf[..n])?,
        }
    }
}

/// Writes everything the core has to send.
async fn flush(sock: &Async<TcpStream>, conn: &mut Connection) -> Res<()> {
    while let Some(out) = conn.transmit() {
        let n = (&*sock).write(out).await?;
        conn.advance_transmit(n);
    }
    Ok(())
}

async fn run(a: Args) -> Res<i32> {
    let (user, host) = a
        .dest
        .split_once('@')
        .ok_or("destination must be user@host")?;
    let data = std::fs::read(&a.key).map_err(|e| format!("{}: {e}", a.key.display()))?;
    let key =
        PrivateKey::from_bytes(&data, None).map_err(|e| format!("{}: {e}", a.key.display()))?;
    let addr = *smol::net::resolve((host, a.port))
        .await?
        .first()
        .ok_or("no address")?;
    let sock = Async::<TcpStream>::connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    sock.get_ref().set_nodelay(true)?;

    let rng = Box::new(rand_core::UnwrapErr(getrandom::SysRng));
    let mut conn = Connection::client(Arc::new(Config::default()), rng, Instant::now())?;
    conn.auth_publickey(user, Arc::new(key))?; // queued until the transport is ready
    let (mut pending, mut buf, mut status) = (Vec::new(), vec![0u8; 64 * 1024], None);
    loop {
        // Offer what the core has not taken yet: it may hold bytes back until
        // we answer an event or read channel data.
        let mut progress = false;
        if !pending.is_empty() {
            let n = conn.recv(Instant::now(), &pending)?;
            pending.drain(..n);
            progress = n > 0;
        }
        while let Some(ev) = conn.poll_event() {
            progress = true;
            match ev {
                Event::HostKey(k) => match check_host_key(&a, host, &k) {
                    Ok(()) => conn.accept_host_key()?,
                    Err(why) => {
                        conn.reject_host_key(&why);
                        let _ = flush(&sock, &mut conn).await;
                        return Err(why.into());
                    }
                },
                Event::AuthBanner(b) => eprint!("{b}"),
                Event::AuthFailure { methods, .. } => {
                    return Err(format!(
                        "publickey authentication failed; the server allows {}",
                        methods.join(",")
                    )
                    .into())
                }
                Event::AuthSuccess => {
                    let id = conn.open_session()?;
                    conn.exec(id, &a.cmd)?; // requests and EOF wait for the open
                    conn.send_eof(id)?;
                }
                Event::ChannelOpenFailed { description, .. } => {
                    return Err(format!("session refused: {description}").into())
                }
                Event::ChannelRequestReply { success: false, .. } => {
                    return Err("the server refused to run the command".into())
                }
                Event::ChannelData { channel, stream } => {
                    copy_out(&mut conn, channel, stream, &mut buf)?
                }
                Event::ExitStatus { status: s, .. } => status = Some(s as i32),
                Event::ExitSignal {
                    signal, message, ..
                } => {
                    let msg = format!("remote command killed by signal {signal} {message}");
                    eprintln!("smol_exec: {}", msg.trim_end());
                    status = Some(255);
                }
                Event::GlobalRequest {
                    want_reply: true, ..
                } => conn.global_request_reply(false, &[])?,
                Event::ChannelClosed { channel } => {
                    copy_out(&mut conn, channel, Stream::Stdout, &mut buf)?;
                    copy_out(&mut conn, channel, Stream::Stderr, &mut buf)?;
                    std::io::stdout().flush()?;
                    conn.disconnect(disconnect::BY_APPLICATION, "done");
                    let _ = flush(&sock, &mut conn).await;
                    return Ok(status.unwrap_or(255));
                }
                Event::Disconnected(e) => return Err(e.into()),
                _ => {}
            }
        }
        flush(&sock, &mut conn).await?;
        if progress && !pending.is_empty() {
            continue;
        }
        // Wait for bytes from the server or for the core's next timer.
        let timer = conn.poll_timeout().map_or_else(Timer::never, Timer::at);
        let read = async { Some((&sock).read(&mut buf).await) };
        match future::or(read, async {
            timer.await;
            None
        })
        .await
        {
            Some(Ok(0)) => conn.recv_eof(Instant::now()),
            Some(Ok(n)) => pending.extend_from_slice(&buf[..n]),
            Some(Err(e)) => return Err(e.into()),
            None => conn.handle_timeout(Instant::now()),
        }
    }
}

fn main() {
    let code = parse_args()
        .and_then(|a| smol::block_on(run(a)))
        .unwrap_or_else(|e| {
            eprintln!("smol_exec: {e}");
            255
        });
    std::process::exit(code);
}
