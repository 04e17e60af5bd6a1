//! Writes small seed inputs for every fuzz target into `fuzz/corpus/<target>/`,
//! derived from real in-memory sessions (and, for `key_files`, from keys made
//! by `ssh-keygen` at record time).
//!
//! Run from `fuzz/`:
//!     cargo run --release --features recorder --bin record_corpus
//!
//! Seed layouts follow `src/lib.rs` (how each target reads its input).

use std::path::{Path, PathBuf};
use std::process::Command;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use ssh_proto::sftp::{self, Attrs, NameEntry, Request, Response, SftpClient, SftpServer};

fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

struct Writer {
    total: usize,
}

impl Writer {
    fn put(&mut self, target: &str, name: &str, data: &[u8]) {
        let dir = out_dir().join(target);
        std::fs::create_dir_all(&dir).expect("mkdir corpus");
        std::fs::write(dir.join(name), data).expect("write seed");
        self.total += data.len();
    }
}

fn prefixed(sel: usize, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![sel as u8];
    v.extend_from_slice(bytes);
    v
}

/// Seeds for the prefix targets: for each cut point, the next recorded
/// packet after it (and for the first few cuts, the whole remainder).
fn stream_seeds(w: &mut Writer, target: &str, stream: &[u8], cuts: &[usize]) {
    for (i, &c) in cuts.iter().enumerate() {
        let next = cuts.get(i + 1).copied().unwrap_or(stream.len());
        w.put(target, &format!("cut{i}_next"), &prefixed(i, &stream[c..next]));
        if i < 3 {
            w.put(target, &format!("cut{i}_rest"), &prefixed(i, &stream[c..]));
        }
    }
    // The full stream followed by a truncated copy of its last packet.
    let last = cuts.len() - 1;
    let tail = &stream[cuts[last.saturating_sub(1)]..];
    w.put(target, "full_then_garbage", &prefixed(last, &tail[..tail.len().min(64)]));
}

fn kex_seeds(w: &mut Writer, r: &ssh_proto_fuzz::Recording) {
    for (who, stream, cuts) in [
        ("server", &r.server_stream, &r.server_cuts),
        ("client", &r.client_stream, &r.client_cuts),
    ] {
        // Plaintext packets after the version line, through NEWKEYS.
        let newkeys_end = cuts[cuts.len() - 2];
        w.put("kex_messages", &format!("{who}_plaintext"), &stream[cuts[1]..newkeys_end]);
        for i in 1..cuts.len() - 2 {
            w.put(
                "kex_messages",
                &format!("{who}_packet{i}"),
                &stream[cuts[i]..cuts[i + 1]],
            );
        }
    }
}

fn str16(v: &mut Vec<u8>, s: &str) {
    v.extend_from_slice(&(s.len() as u16).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
}

fn auth_seeds(w: &mut Writer) {
    // client_attempt: user word, op (0 password, 1 kbd, 2 none, 3 respond,
    // 4 change password, 5 publickey), op data. server_decides: choice (0
    // accept, 1 reject, 2 partial, 3 info_request, 4 password change, 5
    // set methods + reject), choice data.
    let mut seeds: Vec<(&str, Vec<u8>)> = Vec::new();
    seeds.push(("password_accept", vec![0, 0, 0, 0]));
    seeds.push(("password_reject_then_accept", vec![0, 0, 0, 1, 0, 0, 0, 0]));
    seeds.push(("none_reject", vec![0, 2, 1]));
    seeds.push(("publickey_accept", vec![0, 5, 0, 0]));
    seeds.push(("publickey_partial_password", vec![0, 5, 2, 1, 0, 0, 0, 0, 0]));
    let mut kbd = vec![0, 1, 0, 3];
    str16(&mut kbd, "name");
    str16(&mut kbd, "instruction");
    kbd.extend_from_slice(&[1]);
    str16(&mut kbd, "Password: ");
    kbd.extend_from_slice(&[0, 0, 3, 1, 0, 0]);
    seeds.push(("kbd_prompt_respond_accept", kbd));
    let mut chg = vec![0, 0, 0, 4];
    str16(&mut chg, "Password expired");
    chg.extend_from_slice(&[0, 4]);
    str16(&mut chg, "secret");
    str16(&mut chg, "secret2");
    chg.push(0);
    seeds.push(("password_change", chg));
    seeds.push(("set_methods_reject", vec![0, 0, 0, 5, 1, 0, 0, 2]));
    for (name, s) in &seeds {
        w.put("server_auth", name, s);
        w.put("client_auth", name, s);
    }
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    for i in 0..3 {
        let mut v = vec![0u8; 48];
        rng.fill_bytes(&mut v);
        w.put("server_auth", &format!("random{i}"), &v);
        w.put("client_auth", &format!("random{i}"), &v);
    }
}

fn connection_seeds(w: &mut Writer) {
    // op byte: bit 0 = side (0 client, 1 server), op >> 1 = operation;
    // then a channel pick byte, the operation's data, then a rounds byte.
    let op = |side: u8, kind: u8| (kind << 1) | side;
    let mut s = Vec::new();
    s.extend_from_slice(&[op(0, 0), 0, 4]); // client open_session
    s.extend_from_slice(&[op(1, 20), 0, 1, 4]); // server accepts the open
    s.extend_from_slice(&[op(0, 6), 0]); // client pty-req
    str16(&mut s, "xterm");
    s.extend_from_slice(&[0, 0, 0, 80, 0, 0, 0, 24, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 4]);
    s.extend_from_slice(&[op(1, 21), 0, 1, 4]); // server replies yes
    s.extend_from_slice(&[op(0, 3), 0]); // client exec
    str16(&mut s, "echo hi");
    s.push(4);
    s.extend_from_slice(&[op(1, 21), 0, 1, 4]);
    s.extend_from_slice(&[op(1, 12), 0, 0x10, 0x00, 4]); // server send_data 8 KiB
    s.extend_from_slice(&[op(1, 13), 0, 0x00, 0x10, 4]); // server send_stderr
    s.extend_from_slice(&[op(0, 16), 0, 0, 0xff, 0xff, 4]); // client reads
    s.extend_from_slice(&[op(1, 10), 0, 0, 0, 0, 3, 4]); // exit-status 3
    s.extend_from_slice(&[op(1, 14), 0, 4]); // eof
    s.extend_from_slice(&[op(1, 15), 0, 4]); // close
    s.extend_from_slice(&[op(0, 15), 0, 4]); // close
    w.put("connection_layer", "session_exec", &s);

    let mut g = Vec::new();
    g.extend_from_slice(&[op(0, 18), 0, 0, 1]); // client tcpip-forward, want reply
    g.extend_from_slice(&[0, 8, 0, 0, 0, 0, 0, 0, 0x1f, 0x90, 4]);
    g.extend_from_slice(&[op(1, 19), 0, 1, 0, 0, 4]); // server replies
    g.extend_from_slice(&[op(1, 1), 0, 8]); // server opens forwarded-tcpip
    g.extend_from_slice(&[0, 0, 4]);
    g.extend_from_slice(&[op(0, 20), 0, 0, 0, 0, 0, 2, 0, 2, b'n', b'o', 4]); // client rejects
    g.extend_from_slice(&[op(0, 22), 0, 8]); // client rekey
    g.extend_from_slice(&[op(1, 23), 0, 200, 4]); // server clock +2000 s
    w.put("connection_layer", "global_forward_rekey", &g);

    let mut e = Vec::new();
    e.extend_from_slice(&[op(0, 0), 0, 4, op(1, 20), 0, 1, 4]);
    e.extend_from_slice(&[op(0, 12), 0, 0x7f, 0xff, 8]); // client sends 64 KiB
    e.extend_from_slice(&[op(1, 16), 0, 0, 0x40, 0x00, 8]); // server reads some
    e.extend_from_slice(&[op(0, 8), 0, 0, 0, 0, 100, 0, 0, 0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 4]);
    e.extend_from_slice(&[op(0, 2), 0, 20, 1, 0, 3, 1, 2, 3, 4]); // raw request
    e.extend_from_slice(&[op(1, 24), 0, 0, 0, 0, 11, 0, 0, 4]); // server disconnects
    w.put("connection_layer", "data_window_disconnect", &e);

    let mut rng = ChaCha20Rng::seed_from_u64(43);
    for i in 0..3 {
        let mut v = vec![0u8; 96];
        rng.fill_bytes(&mut v);
        w.put("connection_layer", &format!("random{i}"), &v);
    }
}

fn sftp_requests() -> Vec<Request> {
    let a = Attrs {
        size: Some(10),
        uid_gid: Some((1000, 1000)),
        permissions: Some(0o100644),
        times: Some((1, 2)),
        extended: vec![("x@example.com".into(), b"y".to_vec())],
    };
    vec![
        Request::Realpath { path: ".".into() },
        Request::Open {
            path: "/tmp/f".into(),
            flags: sftp::open_flags::READ | sftp::open_flags::WRITE | sftp::open_flags::CREAT,
            attrs: a.clone(),
        },
        Request::Write {
            handle: b"h0".to_vec(),
            offset: 0,
            data: b"hello".to_vec(),
        },
        Request::Read {
            handle: b"h0".to_vec(),
            offset: 0,
            len: 4096,
        },
        Request::Fstat {
            handle: b"h0".to_vec(),
        },
        Request::Close {
            handle: b"h0".to_vec(),
        },
        Request::Opendir { path: "/".into() },
        Request::Readdir {
            handle: b"d0".to_vec(),
        },
        Request::Setstat {
            path: "/tmp/f".into(),
            attrs: a,
        },
        Request::Rename {
            old: "/tmp/f".into(),
            new: "/tmp/g".into(),
        },
        Request::Symlink {
            target: "/tmp/g".into(),
            link: "/tmp/l".into(),
        },
        Request::PosixRename {
            old: "/tmp/g".into(),
            new: "/tmp/h".into(),
        },
        Request::Statvfs { path: "/".into() },
        Request::Limits,
        Request::ExpandPath { path: "~/x".into() },
        Request::CheckFile {
            target: sftp::CheckTarget::Name("/tmp/h".into()),
            algorithms: "sha256".into(),
            offset: 0,
            len: 0,
            block_size: 0,
        },
        Request::Extended {
            name: "foo@example.com".into(),
            data: vec![1, 2, 3],
        },
    ]
}

fn sftp_responses(req: &Request) -> Response {
    match req {
        Request::Realpath { .. } => Response::Name(vec![NameEntry {
            filename: "/home/alice".into(),
            longname: "drwxr-xr-x 1 alice alice 0 Jan 1 00:00 alice".into(),
            attrs: Attrs::default(),
        }]),
        Request::Open { .. } | Request::Opendir { .. } => Response::Handle(b"h0".to_vec()),
        Request::Read { .. } => Response::Data(b"hello".to_vec()),
        Request::Fstat { .. } => Response::Attrs(Attrs {
            size: Some(5),
            ..Attrs::default()
        }),
        Request::Readdir { .. } => Response::Name(vec![NameEntry {
            filename: "f".into(),
            longname: "-rw-r--r-- 1 a a 5 Jan 1 00:00 f".into(),
            attrs: Attrs::default(),
        }]),
        Request::Statvfs { .. } => Response::ExtendedReply(
            sftp::StatVfs {
                bsize: 4096,
                frsize: 4096,
                blocks: 100,
                bfree: 50,
                bavail: 50,
                files: 10,
                ffree: 5,
                favail: 5,
                fsid: 1,
                flag: 0,
                namemax: 255,
            }
            .encode(),
        ),
        Request::Limits => Response::ExtendedReply(
            sftp::Limits {
                max_packet: 34000,
                max_read: 32768,
                max_write: 32768,
                max_open_handles: 64,
            }
            .encode(),
        ),
        Request::Extended { .. } => Response::status(sftp::status::OP_UNSUPPORTED, "no"),
        _ => Response::ok(),
    }
}

/// Runs a real SFTP exchange between the two machines; returns the client's
/// request bytes (after INIT) and the server's reply bytes (after VERSION)
/// as lists of packets.
fn sftp_session() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut c = SftpClient::new();
    let mut s = SftpServer::new(sftp::SftpServerConfig::default());
    // The client queues INIT itself.
    let mut init = Vec::new();
    c.take_transmit(&mut init);
    s.recv(&init).expect("init");
    let mut version = Vec::new();
    s.take_transmit(&mut version);
    c.recv(&version).expect("version");
    let (mut reqs, mut resps) = (Vec::new(), Vec::new());
    for r in sftp_requests() {
        c.send(&r).expect("send");
        let mut b = Vec::new();
        c.take_transmit(&mut b);
        assert_eq!(s.recv(&b).expect("server recv"), b.len());
        reqs.push(b);
        while let Some((id, req)) = s.poll_request() {
            s.reply(id, &sftp_responses(&req)).expect("reply");
        }
        let mut out = Vec::new();
        s.take_transmit(&mut out);
        c.recv(&out).expect("client recv");
        resps.push(out);
    }
    (reqs, resps)
}

fn sftp_seeds(w: &mut Writer) {
    let (reqs, resps) = sftp_session();
    // sftp_server: per chunk, a length byte (len - 1) and the chunk, then
    // for each request polled the response kind and data, the answer
    // choice (2 = reply()), a continue flag, and the 0xfe check byte.
    let mut all = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        let mut v = Vec::new();
        let chunks: Vec<&[u8]> = r.chunks(256).collect();
        for (j, chunk) in chunks.iter().enumerate() {
            v.push((chunk.len() - 1) as u8);
            v.extend_from_slice(chunk);
            if j + 1 < chunks.len() {
                v.push(0); // no request complete yet: only the 0xfe check
            } else if matches!(
                sftp_requests()[i],
                Request::Open { .. } | Request::Opendir { .. }
            ) {
                // HANDLE "h0", answered with reply(), continue, no 0xfe.
                v.extend_from_slice(&[2, 0, 2, b'h', b'0', 2, 0, 0]);
            } else {
                // Status OK, answered with reply(), continue, no 0xfe.
                v.extend_from_slice(&[0, 2, 0, 0]);
            }
        }
        w.put("sftp_server", &format!("req{i:02}"), &v);
        all.extend_from_slice(&v);
    }
    w.put("sftp_server", "all_requests", &all);
    // sftp_client: length byte, chunk, then a u32 for take_reply.
    let mut all = Vec::new();
    for (i, r) in resps.iter().enumerate().take(10) {
        let mut v = Vec::new();
        for chunk in r.chunks(200) {
            v.push((chunk.len() - 1) as u8);
            v.extend_from_slice(chunk);
            v.extend_from_slice(&(i as u32).to_be_bytes());
        }
        // Reply ids in the target start at 0 (its first request) like here.
        w.put("sftp_client", &format!("reply{i:02}"), &v);
        all.extend_from_slice(&v);
    }
    w.put("sftp_client", "all_replies", &all);
}

fn key_seeds(w: &mut Writer) {
    let tmp = std::env::temp_dir().join(format!("record_corpus_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let mut pubs = Vec::new();
    for (name, args) in [
        ("ed25519", &["-t", "ed25519", "-N", ""][..]),
        ("ecdsa", &["-t", "ecdsa", "-b", "256", "-N", ""][..]),
        ("rsa", &["-t", "rsa", "-b", "2048", "-N", ""][..]),
        // Encrypted with the passphrase the target tries, cheap KDF.
        ("ed25519_pw", &["-t", "ed25519", "-N", "pw", "-a", "1"][..]),
    ] {
        let path = tmp.join(name);
        let ok = Command::new("ssh-keygen")
            .args(args)
            .args(["-q", "-C", &format!("{name}@corpus"), "-f"])
            .arg(&path)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("ssh-keygen failed or is missing; skipping {name}");
            continue;
        }
        let private = std::fs::read(&path).expect("read key");
        let public = std::fs::read(path.with_extension("pub")).expect("read pub");
        w.put("key_files", &format!("{name}_private"), &private);
        w.put("key_files", &format!("{name}_public"), &public);
        pubs.push(String::from_utf8_lossy(&public).trim().to_string());
        if let Ok(p) = ssh_proto::PublicKey::from_openssh(&String::from_utf8_lossy(&public)) {
            w.put("key_files", &format!("{name}_blob"), &p.to_blob());
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);

    let hk = ssh_proto_fuzz::host_key().public_key().to_openssh();
    let mut kh = format!("example.com,192.0.2.1 {hk}\n[10.0.0.1]:2222 {hk}\n");
    if let Some(p) = pubs.first() {
        kh.push_str(&format!("@revoked *.example.org {p}\n"));
    }
    if let Some(p) = pubs.get(1) {
        kh.push_str(&format!("@cert-authority *.example.net {p}\n"));
    }
    w.put("key_files", "known_hosts", kh.as_bytes());
    let mut ak = format!("{hk} host@corpus\n");
    if let Some(p) = pubs.first() {
        ak.push_str(&format!(
            "from=\"192.0.2.*,!192.0.2.9\",no-pty,command=\"echo hi\",environment=\"A=b\" {p}\n"
        ));
    }
    if let Some(p) = pubs.get(2) {
        ak.push_str(&format!("restrict,permitopen=\"localhost:80\",expiry-time=\"20300101\" {p}\n"));
    }
    w.put("key_files", "authorized_keys", ak.as_bytes());
}

fn main() {
    let r = ssh_proto_fuzz::recording();
    assert!(
        !r.client_stream.is_empty() && !r.server_stream.is_empty(),
        "the in-memory session did not run"
    );
    let (c_ok, s_ok) = ssh_proto_fuzz::recording_replays();
    assert!(c_ok && s_ok, "recorded prefixes do not replay: {c_ok} {s_ok}");
    let mut w = Writer { total: 0 };
    stream_seeds(&mut w, "client_packets", &r.server_stream, &r.server_cuts);
    stream_seeds(&mut w, "server_packets", &r.client_stream, &r.client_cuts);
    kex_seeds(&mut w, r);
    auth_seeds(&mut w);
    connection_seeds(&mut w);
    sftp_seeds(&mut w);
    key_seeds(&mut w);
    println!(
        "client stream {} bytes, cuts {:?}; server stream {} bytes, cuts {:?}",
        r.client_stream.len(),
        r.client_cuts,
        r.server_stream.len(),
        r.server_cuts
    );
    println!("wrote {} bytes of seeds under {}", w.total, out_dir().display());
}
