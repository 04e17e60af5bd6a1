//! The SFTP targets: `sftp_server` and `sftp_client`.

use ssh_proto::sftp::{self, Attrs, NameEntry, Request, Response, SftpClient, SftpServer};

use super::input::Input;

pub(crate) fn fuzz_attrs(inp: &mut Input<'_>) -> Attrs {
    let f = inp.u8();
    Attrs {
        size: (f & 1 != 0).then(|| inp.u32() as u64),
        uid_gid: (f & 2 != 0).then(|| (inp.u16() as u32, inp.u16() as u32)),
        permissions: (f & 4 != 0).then(|| inp.u32()),
        times: (f & 8 != 0).then(|| (inp.u32(), inp.u32())),
        extended: if f & 16 != 0 {
            vec![(inp.string(16), inp.bytes(16).to_vec())]
        } else {
            Vec::new()
        },
    }
}

pub(crate) fn fuzz_response(inp: &mut Input<'_>) -> Response {
    match inp.u8() % 7 {
        0 => Response::ok(),
        1 => Response::status(inp.u32() % 10, inp.string(16)),
        2 => Response::Handle(inp.bytes(16).to_vec()),
        3 => Response::Data(inp.bytes(512).to_vec()),
        4 => Response::Name(
            (0..inp.u8() % 3)
                .map(|_| NameEntry {
                    filename: inp.string(16),
                    longname: inp.string(16),
                    attrs: fuzz_attrs(inp),
                })
                .collect(),
        ),
        5 => Response::Attrs(fuzz_attrs(inp)),
        _ => Response::ExtendedReply(inp.bytes(128).to_vec()),
    }
}

/// SFTP server: a valid INIT, then `data` in fuzz-sized chunks; every
/// request is answered with a response chosen from the data.
pub fn sftp_server(data: &[u8]) {
    let mut s = SftpServer::new(sftp::SftpServerConfig::default());
    let mut init = Vec::new();
    sftp::codec::encode_init(&mut init);
    if s.recv(&init).is_err() {
        return;
    }
    let mut inp = Input::new(data);
    let mut out = Vec::new();
    let mut pending: Vec<u32> = Vec::new();
    let mut ops = 0;
    while !inp.is_empty() && ops < 10_000 {
        ops += 1;
        let chunk_len = 1 + inp.u8() as usize;
        let chunk = {
            let n = chunk_len.min(inp.data.len());
            let (a, b) = inp.data.split_at(n);
            inp.data = b;
            a
        };
        let mut rest = chunk;
        for _ in 0..1000 {
            let n = match s.recv(rest) {
                Ok(n) => n.min(rest.len()),
                Err(_) => return,
            };
            rest = &rest[n..];
            while let Some((id, req)) = s.poll_request() {
                if let Request::Read { len, .. } = req {
                    let _ = len;
                }
                pending.push(id);
            }
            // Answer some (or all, when input is held back).
            let answer_all = n == 0;
            while let Some(id) = pending.pop() {
                let r = fuzz_response(&mut inp);
                let _ = match inp.u8() % 3 {
                    0 => s.reply_status(id, inp.u32() % 12, "x"),
                    1 => s.reply_data(id, inp.bytes(64)),
                    _ => s.reply(id, &r),
                };
                if !answer_all && inp.bool() {
                    break;
                }
            }
            // A reply to an id nobody asked for must be refused, not panic.
            if inp.u8() == 0xfe {
                let _ = s.reply(inp.u32(), &Response::ok());
            }
            s.take_transmit(&mut out);
            out.clear();
            if rest.is_empty() {
                break;
            }
        }
        let _ = (s.outstanding(), s.open_handles(), s.limits());
    }
}

/// SFTP client: a few requests sent, then a valid VERSION, then `data`.
pub fn sftp_client(data: &[u8]) {
    let mut c = SftpClient::new();
    let reqs = [
        Request::Realpath { path: ".".into() },
        Request::Open {
            path: "/tmp/f".into(),
            flags: sftp::open_flags::READ,
            attrs: Attrs::default(),
        },
        Request::Read {
            handle: b"h0".to_vec(),
            offset: 0,
            len: 4096,
        },
        Request::Opendir { path: "/".into() },
        Request::Readdir {
            handle: b"d0".to_vec(),
        },
        Request::Stat { path: "/".into() },
        Request::Limits,
        Request::Statvfs { path: "/".into() },
    ];
    for r in &reqs {
        let _ = c.send(r);
    }
    let _ = c.send_write(b"h0", 0, b"hello");
    let mut version = Vec::new();
    sftp::codec::encode_version(
        &[
            ("limits@openssh.com", "1"),
            ("statvfs@openssh.com", "2"),
            ("posix-rename@openssh.com", "1"),
        ],
        &mut version,
    );
    if c.recv(&version).is_err() {
        return;
    }
    let mut inp = Input::new(data);
    let mut ops = 0;
    while !inp.is_empty() && ops < 10_000 {
        ops += 1;
        let n = 1 + inp.u8() as usize;
        let n = n.min(inp.data.len());
        let (chunk, rest) = inp.data.split_at(n);
        inp.data = rest;
        if c.recv(chunk).is_err() {
            break;
        }
        while let Some((id, _resp)) = c.poll_reply() {
            // Keep requests flowing so later replies can match.
            let _ = c.is_pending(id);
            let _ = c.send(&reqs[id as usize % reqs.len()]);
        }
        let _ = c.take_reply(inp.u32() % 16);
        let mut out = Vec::new();
        c.take_transmit(&mut out);
    }
    let _ = (
        c.version(),
        c.extensions().len(),
        c.in_flight(),
        c.buffered_input(),
    );
}
