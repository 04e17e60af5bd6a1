//! Property tests for the SFTP codec and machines: `Request` / `Response`
//! encode/decode round trips for every variant, decoders fed arbitrary or
//! mutated bytes (errors, never panics), and both machines fed arbitrary
//! bytes (errors, never panics, bounded buffering).

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use ssh_proto::internal::Put;
use ssh_proto::sftp::codec::{self, ext, MAX_PACKET};
use ssh_proto::sftp::{
    Attrs, CheckTarget, Limits, NameEntry, Request, Response, SftpClient, SftpServer,
    SftpServerConfig, StatVfs,
};

/// `PROPTEST_CASES` from the environment (for long local runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------ generators

/// A path: plain path characters, or any UTF-8 at all.
fn path() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9/._ -]{0,40}", any::<String>()]
}

fn handle() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=256)
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=4096)
}

fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..64)
}

/// Attributes with every combination of optional fields and up to three
/// extended pairs.
fn attrs() -> impl Strategy<Value = Attrs> {
    (
        option::of(any::<u64>()),
        option::of(any::<(u32, u32)>()),
        option::of(any::<u32>()),
        option::of(any::<(u32, u32)>()),
        vec((path(), small_bytes()), 0..=3),
    )
        .prop_map(|(size, uid_gid, permissions, times, extended)| Attrs {
            size,
            uid_gid,
            permissions,
            times,
            extended,
        })
}

/// Every extension name that `Request::decode` maps to its own variant.
const KNOWN_EXTENSIONS: [&str; 12] = [
    ext::POSIX_RENAME,
    ext::STATVFS,
    ext::FSTATVFS,
    ext::HARDLINK,
    ext::FSYNC,
    ext::LIMITS,
    ext::LSETSTAT,
    ext::EXPAND_PATH,
    ext::COPY_DATA,
    ext::HOME_DIRECTORY,
    ext::CHECK_FILE_HANDLE,
    ext::CHECK_FILE_NAME,
];

fn extended_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z-]{1,20}@[a-z.]{1,12}",
        path(),
        // Near misses of the known names.
        proptest::sample::select(KNOWN_EXTENSIONS.to_vec()).prop_map(|n| format!("{n}x")),
    ]
    .prop_filter("a name with its own variant", |n| {
        !KNOWN_EXTENSIONS.contains(&n.as_str())
    })
}

fn check_target() -> impl Strategy<Value = CheckTarget> {
    prop_oneof![
        handle().prop_map(CheckTarget::Handle),
        path().prop_map(CheckTarget::Name),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (path(), any::<u32>(), attrs()).prop_map(|(path, flags, attrs)| Request::Open {
            path,
            flags,
            attrs
        }),
        handle().prop_map(|handle| Request::Close { handle }),
        (handle(), any::<u64>(), any::<u32>()).prop_map(|(handle, offset, len)| Request::Read {
            handle,
            offset,
            len
        }),
        (handle(), any::<u64>(), data()).prop_map(|(handle, offset, data)| Request::Write {
            handle,
            offset,
            data
        }),
        path().prop_map(|path| Request::Lstat { path }),
        handle().prop_map(|handle| Request::Fstat { handle }),
        (path(), attrs()).prop_map(|(path, attrs)| Request::Setstat { path, attrs }),
        (handle(), attrs()).prop_map(|(handle, attrs)| Request::Fsetstat { handle, attrs }),
        path().prop_map(|path| Request::Opendir { path }),
        handle().prop_map(|handle| Request::Readdir { handle }),
        path().prop_map(|path| Request::Remove { path }),
        (path(), attrs()).prop_map(|(path, attrs)| Request::Mkdir { path, attrs }),
        path().prop_map(|path| Request::Rmdir { path }),
        path().prop_map(|path| Request::Realpath { path }),
        path().prop_map(|path| Request::Stat { path }),
        (path(), path()).prop_map(|(old, new)| Request::Rename { old, new }),
        path().prop_map(|path| Request::Readlink { path }),
        (path(), path()).prop_map(|(target, link)| Request::Symlink { target, link }),
        (path(), path()).prop_map(|(old, new)| Request::PosixRename { old, new }),
        path().prop_map(|path| Request::Statvfs { path }),
        handle().prop_map(|handle| Request::Fstatvfs { handle }),
        (path(), path()).prop_map(|(old, new)| Request::Hardlink { old, new }),
        handle().prop_map(|handle| Request::Fsync { handle }),
        Just(Request::Limits),
        (path(), attrs()).prop_map(|(path, attrs)| Request::Lsetstat { path, attrs }),
        path().prop_map(|path| Request::ExpandPath { path }),
        (handle(), any::<u64>(), any::<u64>(), handle(), any::<u64>()).prop_map(
            |(from, from_offset, len, to, to_offset)| Request::CopyData {
                from,
                from_offset,
                len,
                to,
                to_offset
            }
        ),
        path().prop_map(|user| Request::HomeDirectory { user }),
        (
            check_target(),
            path(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>()
        )
            .prop_map(
                |(target, algorithms, offset, len, block_size)| Request::CheckFile {
                    target,
                    algorithms,
                    offset,
                    len,
                    block_size
                }
            ),
        (extended_name(), data()).prop_map(|(name, data)| Request::Extended { name, data }),
    ]
}

fn name_entry() -> impl Strategy<Value = NameEntry> {
    (path(), path(), attrs()).prop_map(|(filename, longname, attrs)| NameEntry {
        filename,
        longname,
        attrs,
    })
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        (any::<u32>(), path()).prop_map(|(code, message)| Response::Status { code, message }),
        handle().prop_map(Response::Handle),
        data().prop_map(Response::Data),
        vec(name_entry(), 0..5).prop_map(Response::Name),
        attrs().prop_map(Response::Attrs),
        data().prop_map(Response::ExtendedReply),
    ]
}

/// Checks the length prefix and returns the payload after it.
fn payload(packet: &[u8]) -> &[u8] {
    assert!(packet.len() >= 4, "packet shorter than its length field");
    let len = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]) as usize;
    assert_eq!(
        len,
        packet.len() - 4,
        "length field disagrees with the packet"
    );
    &packet[4..]
}

/// Encodes into a buffer that already holds bytes, to check `encode` appends.
fn encode_after_junk(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let junk = b"junk".to_vec();
    let mut b = junk.clone();
    f(&mut b);
    assert_eq!(&b[..junk.len()], &junk[..], "encode touched earlier bytes");
    b.split_off(junk.len())
}

// ------------------------------------------------------------ round trips

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(1024), ..ProptestConfig::default() })]

    #[test]
    fn request_round_trip(id in any::<u32>(), req in request()) {
        let packet = encode_after_junk(|b| req.encode(id, b));
        let (got_id, got) = Request::decode(payload(&packet)).expect("decode");
        prop_assert_eq!(got_id, id);
        prop_assert_eq!(&got, &req);
        // An extension request carries the name it needs on the wire.
        if let Some(name) = req.extension() {
            let p = payload(&packet);
            prop_assert_eq!(p[0], 200);
            prop_assert_eq!(&p[9..9 + name.len()], name.as_bytes());
        }
    }

    #[test]
    fn response_round_trip(id in any::<u32>(), resp in response()) {
        let packet = encode_after_junk(|b| resp.encode(id, b));
        let (got_id, got) = Response::decode(payload(&packet)).expect("decode");
        prop_assert_eq!(got_id, id);
        prop_assert_eq!(got, resp);
    }

    /// The borrowed-slice encoders write the same bytes as the typed ones.
    #[test]
    fn write_and_data_fast_paths_match(
        id in any::<u32>(),
        handle in handle(),
        offset in any::<u64>(),
        data in data(),
    ) {
        let mut fast = Vec::new();
        codec::encode_write(id, &handle, offset, &data, &mut fast);
        let mut typed = Vec::new();
        Request::Write { handle, offset, data: data.clone() }.encode(id, &mut typed);
        prop_assert_eq!(&fast, &typed);

        let mut fast = Vec::new();
        codec::encode_data(id, &data, &mut fast);
        let mut typed = Vec::new();
        Response::Data(data).encode(id, &mut typed);
        prop_assert_eq!(fast, typed);
    }

    #[test]
    fn attrs_round_trip(a in attrs(), tail in small_bytes()) {
        let mut b = Vec::new();
        a.encode(&mut b);
        let n = b.len();
        b.extend_from_slice(&tail);
        let mut r = ssh_proto::internal::Reader::new(&b);
        prop_assert_eq!(Attrs::decode(&mut r).expect("decode"), a);
        prop_assert_eq!(r.remaining(), b.len() - n);
    }

    #[test]
    fn statvfs_and_limits_round_trip(v in any::<[u64; 11]>(), l in any::<[u64; 4]>()) {
        let s = StatVfs {
            bsize: v[0], frsize: v[1], blocks: v[2], bfree: v[3], bavail: v[4],
            files: v[5], ffree: v[6], favail: v[7], fsid: v[8], flag: v[9], namemax: v[10],
        };
        let enc = s.encode();
        prop_assert_eq!(enc.len(), 88);
        prop_assert_eq!(StatVfs::decode(&enc).expect("statvfs"), s);
        prop_assert!(StatVfs::decode(&enc[..87]).is_err());
        let lim = Limits { max_packet: l[0], max_read: l[1], max_write: l[2], max_open_handles: l[3] };
        let enc = lim.encode();
        prop_assert_eq!(enc.len(), 32);
        prop_assert_eq!(Limits::decode(&enc).expect("limits"), lim);
        prop_assert!(Limits::decode(&enc[..31]).is_err());
    }
}

// ------------------------------------------------------------ hostile bytes

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2048), ..ProptestConfig::default() })]

    /// Arbitrary bytes (up to 512) never panic either decoder.
    #[test]
    fn decoders_never_panic(bytes in vec(any::<u8>(), 0..=512)) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
        let _ = codec::next_packet(&bytes);
        let _ = Attrs::decode(&mut ssh_proto::internal::Reader::new(&bytes));
        let _ = StatVfs::decode(&bytes);
        let _ = Limits::decode(&bytes);
    }

    /// A valid type byte and id followed by arbitrary bytes.
    #[test]
    fn decoders_never_panic_on_known_types(
        t in prop_oneof![1u8..=20, 101u8..=105, 200u8..=201],
        id in any::<u32>(),
        ext in proptest::sample::select(KNOWN_EXTENSIONS.to_vec()),
        with_ext in any::<bool>(),
        rest in vec(any::<u8>(), 0..=512),
    ) {
        let mut b = vec![t];
        b.put_u32(id);
        if with_ext {
            b.put_str(ext);
        }
        b.extend_from_slice(&rest);
        let _ = Request::decode(&b);
        let _ = Response::decode(&b);
    }

    /// Valid packets truncated or with one byte changed decode or fail, never panic.
    #[test]
    fn mutated_packets_never_panic(
        id in any::<u32>(),
        req in request(),
        resp in response(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut b = Vec::new();
        req.encode(id, &mut b);
        let p = &b[4..];
        let _ = Request::decode(&p[..cut.index(p.len() + 1)]);
        let mut m = p.to_vec();
        let i = flip.index(m.len());
        m[i] = byte;
        let _ = Request::decode(&m);

        let mut b = Vec::new();
        resp.encode(id, &mut b);
        let p = &b[4..];
        let _ = Response::decode(&p[..cut.index(p.len() + 1)]);
        let mut m = p.to_vec();
        let i = flip.index(m.len());
        m[i] = byte;
        let _ = Response::decode(&m);
    }
}

/// A feed of arbitrary byte chunks.
fn chunks() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(vec(any::<u8>(), 0..=512), 1..8)
}

const BUFFER_BOUND: usize = 2 * MAX_PACKET + 16;

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    /// The server fed arbitrary bytes (after a valid INIT or not) never panics,
    /// never takes more than offered, and once failed stays failed.
    #[test]
    fn server_recv_never_panics(init in any::<bool>(), feed in chunks(), max_outstanding in 1usize..8) {
        let mut server = SftpServer::new(SftpServerConfig { max_outstanding, ..Default::default() });
        if init {
            let mut b = Vec::new();
            codec::encode_init(&mut b);
            prop_assert_eq!(server.recv(&b).expect("INIT"), b.len());
        }
        let mut failed = false;
        for chunk in &feed {
            match server.recv(chunk) {
                Ok(n) => {
                    prop_assert!(!failed, "recv succeeded after an error");
                    prop_assert!(n <= chunk.len());
                }
                Err(_) => {
                    failed = true;
                    prop_assert!(server.error().is_some());
                }
            }
            while let Some((id, _req)) = server.poll_request() {
                let _ = server.reply_status(id, ssh_proto::sftp::codec::status::OK, "");
            }
            let mut out = Vec::new();
            server.take_transmit(&mut out);
            prop_assert!(server.transmit().is_none());
        }
    }

    /// The client fed arbitrary bytes (after a valid VERSION or not, with
    /// requests in flight or not) never panics and buffers at most one packet.
    #[test]
    fn client_recv_never_panics(version in any::<bool>(), requests in 0u32..4, feed in chunks()) {
        let mut client = SftpClient::new();
        if version {
            let mut b = Vec::new();
            codec::encode_version(&[(ext::LIMITS, "1")], &mut b);
            client.recv(&b).expect("VERSION");
            prop_assert_eq!(client.version(), Some(3));
        }
        for i in 0..requests {
            client.send(&Request::Stat { path: format!("/{i}") }).expect("send");
        }
        let mut failed = false;
        for chunk in &feed {
            match client.recv(chunk) {
                Ok(()) => prop_assert!(!failed, "recv succeeded after an error"),
                Err(_) => {
                    failed = true;
                    prop_assert!(client.error().is_some());
                }
            }
            prop_assert!(client.buffered_input() <= MAX_PACKET + 4);
            while client.poll_reply().is_some() {}
        }
    }

    /// A server whose application never answers, fed a stream of large
    /// requests in random chunks, holds at most ~2 × MAX_PACKET of input
    /// that it has not turned into requests.
    #[test]
    fn server_input_is_bounded(
        max_outstanding in 1usize..6,
        sizes in vec(1usize..MAX_PACKET - 64, 1..10),
        chunk in prop_oneof![1usize..4096, Just(usize::MAX)],
    ) {
        let mut stream = Vec::new();
        codec::encode_init(&mut stream);
        let mut ends = vec![stream.len()];
        for (i, &n) in sizes.iter().enumerate() {
            codec::encode_write(i as u32, b"h", 0, &vec![i as u8; n], &mut stream);
            ends.push(stream.len());
        }
        let mut server = SftpServer::new(SftpServerConfig { max_outstanding, ..Default::default() });
        let mut taken = 0;
        let mut admitted = 0;
        loop {
            let n = (stream.len() - taken).min(chunk);
            let t = server.recv(&stream[taken..taken + n]).expect("recv");
            taken += t;
            while server.poll_request().is_some() {
                admitted += 1;
            }
            // (INIT counts only once a request follows it: 9 bytes of slack.)
            let parsed = if admitted == 0 { 0 } else { ends[admitted] };
            prop_assert!(taken >= parsed);
            prop_assert!(taken - parsed <= BUFFER_BOUND, "{} bytes buffered", taken - parsed);
            if t == 0 {
                break;
            }
        }
        prop_assert_eq!(admitted, sizes.len().min(max_outstanding));
        prop_assert_eq!(server.outstanding(), admitted);
    }
}

/// Client buffering with a large stream: the client holds at most one
/// partial packet whatever the chunking.
#[test]
fn client_input_is_bounded() {
    let mut client = SftpClient::new();
    let mut stream = Vec::new();
    codec::encode_version(&[], &mut stream);
    for i in 0..8u32 {
        client.send(&Request::Stat { path: "/".into() }).unwrap();
        Response::Data(vec![i as u8; MAX_PACKET - 16]).encode(i, &mut stream);
    }
    for chunk in stream.chunks(100_000) {
        client.recv(chunk).unwrap();
        assert!(client.buffered_input() <= MAX_PACKET + 4);
    }
    assert_eq!(client.buffered_input(), 0);
    for i in 0..8u32 {
        match client.take_reply(i) {
            Some(Response::Data(d)) => assert!(d.len() == MAX_PACKET - 16 && d[0] == i as u8),
            other => panic!("reply {i}: {other:?}"),
        }
    }
    // A packet over the limit is refused before it is buffered.
    let mut big = Vec::new();
    big.put_u32(MAX_PACKET as u32 + 1);
    big.push(103);
    let err = client.recv(&big).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
}
