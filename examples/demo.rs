//! Zero-setup demo: starts an SSH server on an ephemeral 127.0.0.1 port
//! with an ephemeral host key, connects the blocking client with a freshly
//! generated user key, runs a few commands and prints what happened.
//!
//! The server half drives the sans-IO core directly in one loop — bytes in,
//! events out, bytes back — to show how little an adapter needs.
//!
//! Run: `cargo run --release --example demo`

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use ssh_blocking::proto::{
    AuthRequest, ChannelId, ChannelOpenFailureReason, ChannelRequest, Config, Connection, Event,
    PublicKey,
};
use ssh_blocking::{Client, HostKeyCheck, PrivateKey};
use ssh_proto::os_rng;

/// Output of a finished command still to be sent as the window allows.
struct Pending {
    channel: ChannelId,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: u32,
}

fn serve(
    stream: TcpStream,
    config: Arc<Config>,
    user_key: PublicKey,
) -> Result<(), ssh_blocking::Error> {
    let _ = stream.set_nodelay(true);
    let mut conn = Connection::server(config, os_rng(), Instant::now())?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        // 1. Events: decisions and requests.
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::AuthRequest {
                    user,
                    request: AuthRequest::PublicKey { key, verified, .. },
                } => {
                    if key == user_key {
                        if verified {
                            println!(
                                "  [server] publickey {} signature verified for {user}",
                                key.fingerprint()
                            );
                        }
                        conn.auth_accept()?;
                    } else {
                        conn.auth_reject()?;
                    }
                }
                Event::AuthRequest { .. } => conn.auth_reject()?,
                Event::ChannelOpenRequest { channel, kind, .. } if kind == "session" => {
                    conn.accept_channel(channel)?
                }
                Event::ChannelOpenRequest { channel, .. } => conn.reject_channel(
                    channel,
                    ChannelOpenFailureReason::UnknownChannelType,
                    "unsupported",
                )?,
                Event::ChannelRequest {
                    channel,
                    request: ChannelRequest::Exec { command },
                    ..
                } => {
                    let cmd = String::from_utf8_lossy(&command).into_owned();
                    println!("  [server] exec {cmd:?}");
                    conn.channel_request_reply(channel, true)?;
                    let out = std::process::Command::new("/bin/sh")
                        .arg("-c")
                        .arg(&cmd)
                        .stdin(std::process::Stdio::null())
                        .output();
                    let p = match out {
                        Ok(o) => Pending {
                            channel,
                            stdout: o.stdout,
                            stderr: o.stderr,
                            status: o.status.code().unwrap_or(255) as u32,
                        },
                        Err(e) => Pending {
                            channel,
                            stdout: vec![],
                            stderr: format!("{e}\n").into_bytes(),
                            status: 127,
                        },
                    };
                    pending.push(p);
                }
                Event::ChannelRequest {
                    channel,
                    want_reply: true,
                    ..
                } => conn.channel_request_reply(channel, false)?,
                // Requests that want no reply: say when done with each, or
                // the core holds input back once 64 are pending.
                Event::ChannelRequest {
                    want_reply: false, ..
                }
                | Event::GlobalRequest {
                    want_reply: false, ..
                } => conn.request_handled(),
                Event::Disconnected(e) => {
                    println!("  [server] connection ended: {e}");
                    return Ok(());
                }
                _ => {}
            }
        }
        // 2. Send finished commands' output as the window allows.
        pending.retain_mut(|p| {
            let n = conn.send_data(p.channel, &p.stdout).unwrap_or(0);
            p.stdout.drain(..n);
            let n = conn.send_stderr(p.channel, &p.stderr).unwrap_or(0);
            p.stderr.drain(..n);
            if p.stdout.is_empty() && p.stderr.is_empty() {
                let _ = conn.send_exit_status(p.channel, p.status);
                let _ = conn.send_eof(p.channel);
                let _ = conn.close_channel(p.channel);
                false
            } else {
                true
            }
        });
        // 3. Bytes out.
        while let Some(out) = conn.transmit() {
            let n = (&stream).write(out).map_err(io)?;
            conn.advance_transmit(n);
        }
        if conn.is_closed() {
            return Ok(());
        }
        // 4. Bytes in.
        let n = (&stream).read(&mut buf).map_err(io)?;
        if n == 0 {
            conn.recv_eof(Instant::now());
        } else {
            conn.recv(Instant::now(), &buf[..n])?;
        }
    }
}

fn io(e: std::io::Error) -> ssh_blocking::Error {
    ssh_blocking::Error::new(ssh_blocking::ErrorKind::Io, e.to_string())
}

fn main() -> Result<(), ssh_blocking::Error> {
    println!("== sshlib demo ==");
    let host_key = Arc::new(PrivateKey::generate_ed25519(&mut *os_rng()));
    let user_key = Arc::new(PrivateKey::generate_ed25519(&mut *os_rng()));
    let host_pub = host_key.public_key();
    println!(
        "server host key: {} {}",
        host_pub.key_type(),
        host_pub.fingerprint()
    );
    println!(
        "client user key: {} {}",
        user_key.public_key().key_type(),
        user_key.public_key().fingerprint()
    );

    let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    println!("server listening on {addr}");
    let mut server_config = Config::default();
    server_config.transport.host_keys = vec![host_key];
    let server_config = Arc::new(server_config);
    let user_pub = user_key.public_key();
    let server = std::thread::spawn(move || {
        let (stream, peer) = listener.accept().map_err(io)?;
        println!("  [server] connection from {peer}");
        serve(stream, server_config, user_pub)
    });

    let t0 = Instant::now();
    let client = Client::connect(addr, HostKeyCheck::Exact(host_pub))?;
    let neg = client.negotiated().expect("negotiated after handshake");
    println!(
        "connected in {:.1} ms: {neg}",
        t0.elapsed().as_secs_f64() * 1e3
    );
    client.auth_publickey("demo", user_key)?;
    println!("authenticated as demo with publickey");

    for cmd in [
        "echo hello from $(uname -s) on $(hostname)",
        "echo this goes to stderr >&2; exit 3",
        "printf 'line %s\\n' 1 2 3 | wc -l",
        "head -c 3000000 /dev/zero | wc -c",
    ] {
        let out = client.exec(cmd)?;
        println!("$ {cmd}");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            println!("  stdout: {line}");
        }
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            println!("  stderr: {line}");
        }
        println!(
            "  exit status: {}",
            out.status.map_or("none".to_string(), |s| s.to_string())
        );
    }
    client.disconnect();
    drop(client);
    match server.join() {
        Ok(r) => r?,
        Err(_) => eprintln!("server thread panicked"),
    }
    println!("done: 4 commands over one connection, stdout, stderr and exit status each.");
    Ok(())
}
