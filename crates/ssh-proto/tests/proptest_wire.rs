//! Property tests for the wire layer: `Reader` / `Put` round trips, typed
//! `Message` encode/decode round trips for every variant, and decoders fed
//! arbitrary or mutated bytes (they must return errors, never panic).

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use ssh_proto::internal::msg;
use ssh_proto::internal::{names, Put, Reader};
use ssh_proto::internal::{KexFlavor, KexInit, Message, UserauthFlavor, UserauthMethod};

/// `PROPTEST_CASES` from the environment (for long local runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------ generators

/// Any UTF-8 text, control characters and astral planes included.
fn text() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..24).prop_map(|v| v.into_iter().collect())
}

/// Any ASCII text (what a name-list may hold; commas included).
fn ascii() -> impl Strategy<Value = String> {
    vec(0u8..0x80, 0..40).prop_map(|v| v.into_iter().map(char::from).collect())
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..96)
}

/// A canonical mpint magnitude: no leading zero bytes (maybe empty = 0).
fn magnitude() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..80).prop_map(|v| {
        let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
        v[start..].to_vec()
    })
}

/// Message numbers `Message::decode` leaves uninterpreted.
fn unknown_types() -> Vec<u8> {
    (0..=255u8)
        .filter(
            |t| matches!(t, 0 | 8..=19 | 22..=31 | 35..=49 | 60 | 62..=79 | 83..=89 | 101..=255),
        )
        .collect()
}

const KNOWN_METHODS: [&str; 4] = ["none", "password", "publickey", "keyboard-interactive"];

/// Owned data every variant borrows its fields from.
#[derive(Clone, Debug)]
struct Pool {
    text: Vec<String>,
    ascii: Vec<String>,
    bytes: Vec<Vec<u8>>,
    mpint: Vec<Vec<u8>>,
    u: Vec<u32>,
    flag: bool,
    cookie: [u8; 16],
    entries: Vec<(String, Vec<u8>, bool)>,
    other_method: String,
    unknown_type: u8,
}

fn pool() -> impl Strategy<Value = Pool> {
    (
        vec(text(), 4),
        vec(ascii(), 10),
        vec(bytes(), 4),
        vec(magnitude(), 3),
        vec(any::<u32>(), 5),
        any::<bool>(),
        any::<[u8; 16]>(),
        vec((text(), bytes(), any::<bool>()), 0..6),
        text().prop_filter("a method with its own variant", |m| {
            !KNOWN_METHODS.contains(&m.as_str())
        }),
        select(unknown_types()),
    )
        .prop_map(
            |(text, ascii, bytes, mpint, u, flag, cookie, entries, other_method, unknown_type)| {
                Pool {
                    text,
                    ascii,
                    bytes,
                    mpint,
                    u,
                    flag,
                    cookie,
                    entries,
                    other_method,
                    unknown_type,
                }
            },
        )
}

/// Every message shape (USERAUTH_REQUEST once per method form).
#[derive(Clone, Copy, Debug)]
enum V {
    Disconnect,
    Ignore,
    Unimplemented,
    Debug,
    ServiceRequest,
    ServiceAccept,
    ExtInfo,
    KexInit,
    NewKeys,
    KexEcdhInit,
    KexEcdhReply,
    KexDhInit,
    KexDhReply,
    KexDhGexRequestOld,
    KexDhGexRequest,
    KexDhGexGroup,
    KexDhGexInit,
    KexDhGexReply,
    AuthNone,
    AuthPassword,
    AuthPasswordChange,
    AuthPublicKeyQuery,
    AuthPublicKeySigned,
    AuthKeyboardInteractive,
    AuthOther,
    UserauthFailure,
    UserauthSuccess,
    UserauthBanner,
    UserauthPkOk,
    UserauthPasswdChangereq,
    UserauthInfoRequest,
    UserauthInfoResponse,
    GlobalRequest,
    RequestSuccess,
    RequestFailure,
    ChannelOpen,
    ChannelOpenConfirmation,
    ChannelOpenFailure,
    ChannelWindowAdjust,
    ChannelData,
    ChannelExtendedData,
    ChannelEof,
    ChannelClose,
    ChannelRequest,
    ChannelSuccess,
    ChannelFailure,
    Unknown,
}

const ALL: [V; 47] = [
    V::Disconnect,
    V::Ignore,
    V::Unimplemented,
    V::Debug,
    V::ServiceRequest,
    V::ServiceAccept,
    V::ExtInfo,
    V::KexInit,
    V::NewKeys,
    V::KexEcdhInit,
    V::KexEcdhReply,
    V::KexDhInit,
    V::KexDhReply,
    V::KexDhGexRequestOld,
    V::KexDhGexRequest,
    V::KexDhGexGroup,
    V::KexDhGexInit,
    V::KexDhGexReply,
    V::AuthNone,
    V::AuthPassword,
    V::AuthPasswordChange,
    V::AuthPublicKeyQuery,
    V::AuthPublicKeySigned,
    V::AuthKeyboardInteractive,
    V::AuthOther,
    V::UserauthFailure,
    V::UserauthSuccess,
    V::UserauthBanner,
    V::UserauthPkOk,
    V::UserauthPasswdChangereq,
    V::UserauthInfoRequest,
    V::UserauthInfoResponse,
    V::GlobalRequest,
    V::RequestSuccess,
    V::RequestFailure,
    V::ChannelOpen,
    V::ChannelOpenConfirmation,
    V::ChannelOpenFailure,
    V::ChannelWindowAdjust,
    V::ChannelData,
    V::ChannelExtendedData,
    V::ChannelEof,
    V::ChannelClose,
    V::ChannelRequest,
    V::ChannelSuccess,
    V::ChannelFailure,
    V::Unknown,
];

/// How a message of this shape is decoded.
#[derive(Clone, Copy, Debug)]
enum Dec {
    Plain,
    Kex(KexFlavor),
    Auth(UserauthFlavor),
}

impl Dec {
    fn decode(self, payload: &[u8]) -> ssh_proto::Result<Message<'_>> {
        match self {
            Dec::Plain => Message::decode(payload),
            Dec::Kex(f) => Message::decode_kex(payload, f),
            Dec::Auth(f) => Message::decode_userauth_60(payload, f),
        }
    }
}

fn decoder(v: V) -> Dec {
    match v {
        V::KexEcdhInit | V::KexEcdhReply => Dec::Kex(KexFlavor::Ecdh),
        V::KexDhInit | V::KexDhReply => Dec::Kex(KexFlavor::Dh),
        V::KexDhGexRequestOld | V::KexDhGexGroup => Dec::Kex(KexFlavor::DhGex),
        V::UserauthPkOk => Dec::Auth(UserauthFlavor::PublicKey),
        V::UserauthPasswdChangereq => Dec::Auth(UserauthFlavor::Password),
        V::UserauthInfoRequest => Dec::Auth(UserauthFlavor::KeyboardInteractive),
        _ => Dec::Plain,
    }
}

/// Borrows the pool's data into a message of shape `v`.
fn view(v: V, p: &Pool) -> Message<'_> {
    let t = |i: usize| p.text[i].as_str();
    let a = |i: usize| p.ascii[i].as_str();
    let b = |i: usize| p.bytes[i].as_slice();
    let m = |i: usize| p.mpint[i].as_slice();
    let u = |i: usize| p.u[i];
    let request = |method| Message::UserauthRequest {
        user: t(0),
        service: t(1),
        method,
    };
    match v {
        V::Disconnect => Message::Disconnect {
            reason: u(0),
            description: t(0),
            language: t(1),
        },
        V::Ignore => Message::Ignore { data: b(0) },
        V::Unimplemented => Message::Unimplemented { seq: u(0) },
        V::Debug => Message::Debug {
            always_display: p.flag,
            message: t(0),
            language: t(1),
        },
        V::ServiceRequest => Message::ServiceRequest { service: t(0) },
        V::ServiceAccept => Message::ServiceAccept { service: t(0) },
        V::ExtInfo => Message::ExtInfo {
            extensions: p
                .entries
                .iter()
                .map(|(n, v, _)| (n.as_str(), v.as_slice()))
                .collect(),
        },
        V::KexInit => Message::KexInit(KexInit {
            cookie: &p.cookie,
            kex_algorithms: a(0),
            server_host_key_algorithms: a(1),
            encryption_c2s: a(2),
            encryption_s2c: a(3),
            mac_c2s: a(4),
            mac_s2c: a(5),
            compression_c2s: a(6),
            compression_s2c: a(7),
            languages_c2s: a(8),
            languages_s2c: a(9),
            first_kex_packet_follows: p.flag,
            reserved: u(0),
        }),
        V::NewKeys => Message::NewKeys,
        V::KexEcdhInit => Message::KexEcdhInit { q_c: b(0) },
        V::KexEcdhReply => Message::KexEcdhReply {
            k_s: b(0),
            q_s: b(1),
            signature: b(2),
        },
        V::KexDhInit => Message::KexDhInit { e: m(0) },
        V::KexDhReply => Message::KexDhReply {
            k_s: b(0),
            f: m(0),
            signature: b(1),
        },
        V::KexDhGexRequestOld => Message::KexDhGexRequestOld { n: u(0) },
        V::KexDhGexRequest => Message::KexDhGexRequest {
            min: u(0),
            n: u(1),
            max: u(2),
        },
        V::KexDhGexGroup => Message::KexDhGexGroup { p: m(0), g: m(1) },
        V::KexDhGexInit => Message::KexDhGexInit { e: m(2) },
        V::KexDhGexReply => Message::KexDhGexReply {
            k_s: b(0),
            f: m(1),
            signature: b(3),
        },
        V::AuthNone => request(UserauthMethod::None),
        V::AuthPassword => request(UserauthMethod::Password {
            password: t(2),
            new_password: None,
        }),
        V::AuthPasswordChange => request(UserauthMethod::Password {
            password: t(2),
            new_password: Some(t(3)),
        }),
        V::AuthPublicKeyQuery => request(UserauthMethod::PublicKey {
            algorithm: t(2),
            key_blob: b(0),
            signature: None,
        }),
        V::AuthPublicKeySigned => request(UserauthMethod::PublicKey {
            algorithm: t(2),
            key_blob: b(0),
            signature: Some(b(1)),
        }),
        V::AuthKeyboardInteractive => request(UserauthMethod::KeyboardInteractive {
            language: t(2),
            submethods: t(3),
        }),
        V::AuthOther => request(UserauthMethod::Other {
            method: &p.other_method,
            rest: b(0),
        }),
        V::UserauthFailure => Message::UserauthFailure {
            methods: a(0),
            partial_success: p.flag,
        },
        V::UserauthSuccess => Message::UserauthSuccess,
        V::UserauthBanner => Message::UserauthBanner {
            message: t(0),
            language: t(1),
        },
        V::UserauthPkOk => Message::UserauthPkOk {
            algorithm: t(0),
            key_blob: b(0),
        },
        V::UserauthPasswdChangereq => Message::UserauthPasswdChangereq {
            prompt: t(0),
            language: t(1),
        },
        V::UserauthInfoRequest => Message::UserauthInfoRequest {
            name: t(0),
            instruction: t(1),
            language: t(2),
            prompts: p
                .entries
                .iter()
                .map(|(s, _, echo)| (s.as_str(), *echo))
                .collect(),
        },
        V::UserauthInfoResponse => Message::UserauthInfoResponse {
            responses: p.entries.iter().map(|(s, _, _)| s.as_str()).collect(),
        },
        V::GlobalRequest => Message::GlobalRequest {
            name: t(0),
            want_reply: p.flag,
            data: b(0),
        },
        V::RequestSuccess => Message::RequestSuccess { data: b(0) },
        V::RequestFailure => Message::RequestFailure,
        V::ChannelOpen => Message::ChannelOpen {
            channel_type: t(0),
            sender: u(0),
            initial_window: u(1),
            max_packet: u(2),
            data: b(0),
        },
        V::ChannelOpenConfirmation => Message::ChannelOpenConfirmation {
            recipient: u(0),
            sender: u(1),
            initial_window: u(2),
            max_packet: u(3),
            data: b(0),
        },
        V::ChannelOpenFailure => Message::ChannelOpenFailure {
            recipient: u(0),
            reason: u(1),
            description: t(0),
            language: t(1),
        },
        V::ChannelWindowAdjust => Message::ChannelWindowAdjust {
            recipient: u(0),
            bytes_to_add: u(1),
        },
        V::ChannelData => Message::ChannelData {
            recipient: u(0),
            data: b(0),
        },
        V::ChannelExtendedData => Message::ChannelExtendedData {
            recipient: u(0),
            data_type: u(1),
            data: b(0),
        },
        V::ChannelEof => Message::ChannelEof { recipient: u(0) },
        V::ChannelClose => Message::ChannelClose { recipient: u(0) },
        V::ChannelRequest => Message::ChannelRequest {
            recipient: u(0),
            request_type: t(0),
            want_reply: p.flag,
            data: b(0),
        },
        V::ChannelSuccess => Message::ChannelSuccess { recipient: u(0) },
        V::ChannelFailure => Message::ChannelFailure { recipient: u(0) },
        V::Unknown => Message::Unknown {
            msg_type: p.unknown_type,
            rest: b(0),
        },
    }
}

/// Messages whose layout ends in an open "rest of the message" field.
fn open_tail(m: &Message<'_>) -> bool {
    matches!(
        m,
        Message::GlobalRequest { .. }
            | Message::RequestSuccess { .. }
            | Message::ChannelOpen { .. }
            | Message::ChannelOpenConfirmation { .. }
            | Message::ChannelRequest { .. }
            | Message::UserauthRequest {
                method: UserauthMethod::Other { .. },
                ..
            }
            | Message::Unknown { .. }
    )
}

const KEX_FLAVORS: [KexFlavor; 3] = [KexFlavor::Ecdh, KexFlavor::Dh, KexFlavor::DhGex];
const AUTH_FLAVORS: [UserauthFlavor; 3] = [
    UserauthFlavor::PublicKey,
    UserauthFlavor::Password,
    UserauthFlavor::KeyboardInteractive,
];

// ------------------------------------------------------------ properties

fn check_roundtrip(v: V, p: &Pool) -> Result<(), TestCaseError> {
    let m = view(v, p);
    let dec = decoder(v);
    let bytes = m.to_vec();
    prop_assert_eq!(bytes[0], m.msg_type());
    // encode appends: what is already in the vector stays.
    let mut appended = vec![0xAA];
    m.encode(&mut appended);
    prop_assert_eq!(&appended[1..], &bytes[..]);

    let back = dec.decode(&bytes);
    prop_assert!(back.is_ok(), "{:?} does not decode: {:?}", m, back);
    let back = back.unwrap();
    prop_assert_eq!(&back, &m);
    prop_assert_eq!(
        back.to_vec(),
        bytes.clone(),
        "encode(decode(bytes)) != bytes"
    );

    // The flavored decoders agree with the plain one outside their ranges.
    let t = m.msg_type();
    if matches!(dec, Dec::Plain) {
        if !(30..=49).contains(&t) {
            for f in KEX_FLAVORS {
                prop_assert_eq!(Message::decode_kex(&bytes, f).ok(), Some(m.clone()));
            }
        }
        if t != msg::USERAUTH_60 {
            for f in AUTH_FLAVORS {
                prop_assert_eq!(Message::decode_userauth_60(&bytes, f).ok(), Some(m.clone()));
            }
        }
    }

    // Every proper prefix fails to decode, unless the message ends in an
    // open tail (then the prefix may be a shorter message of the same kind).
    if !open_tail(&m) {
        for cut in 1..bytes.len() {
            prop_assert!(
                dec.decode(&bytes[..cut]).is_err(),
                "prefix of {} bytes of {:?} decoded",
                cut,
                m
            );
        }
    }

    // A trailing byte is rejected exactly where the layout is closed.
    let mut longer = bytes.clone();
    longer.push(0x5a);
    match dec.decode(&longer) {
        Ok(x) => {
            prop_assert!(open_tail(&m), "trailing byte accepted for {:?}", m);
            prop_assert_eq!(x.to_vec(), longer);
        }
        Err(e) => {
            prop_assert!(!open_tail(&m), "{:?} with a trailing byte: {}", m, e);
            prop_assert!(e.to_string().contains("trailing"), "{}", e);
        }
    }
    Ok(())
}

macro_rules! roundtrip_tests {
    ($($name:ident: $v:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: cases(96), ..ProptestConfig::default() })]
            $(
                #[test]
                fn $name(p in pool()) {
                    check_roundtrip($v, &p)?;
                }
            )*
        }
    };
}

roundtrip_tests! {
    roundtrip_disconnect: V::Disconnect;
    roundtrip_ignore: V::Ignore;
    roundtrip_unimplemented: V::Unimplemented;
    roundtrip_debug: V::Debug;
    roundtrip_service_request: V::ServiceRequest;
    roundtrip_service_accept: V::ServiceAccept;
    roundtrip_ext_info: V::ExtInfo;
    roundtrip_kexinit: V::KexInit;
    roundtrip_newkeys: V::NewKeys;
    roundtrip_kex_ecdh_init: V::KexEcdhInit;
    roundtrip_kex_ecdh_reply: V::KexEcdhReply;
    roundtrip_kexdh_init: V::KexDhInit;
    roundtrip_kexdh_reply: V::KexDhReply;
    roundtrip_gex_request_old: V::KexDhGexRequestOld;
    roundtrip_gex_request: V::KexDhGexRequest;
    roundtrip_gex_group: V::KexDhGexGroup;
    roundtrip_gex_init: V::KexDhGexInit;
    roundtrip_gex_reply: V::KexDhGexReply;
    roundtrip_userauth_none: V::AuthNone;
    roundtrip_userauth_password: V::AuthPassword;
    roundtrip_userauth_password_change: V::AuthPasswordChange;
    roundtrip_userauth_publickey_query: V::AuthPublicKeyQuery;
    roundtrip_userauth_publickey_signed: V::AuthPublicKeySigned;
    roundtrip_userauth_keyboard_interactive: V::AuthKeyboardInteractive;
    roundtrip_userauth_other_method: V::AuthOther;
    roundtrip_userauth_failure: V::UserauthFailure;
    roundtrip_userauth_success: V::UserauthSuccess;
    roundtrip_userauth_banner: V::UserauthBanner;
    roundtrip_userauth_pk_ok: V::UserauthPkOk;
    roundtrip_userauth_passwd_changereq: V::UserauthPasswdChangereq;
    roundtrip_userauth_info_request: V::UserauthInfoRequest;
    roundtrip_userauth_info_response: V::UserauthInfoResponse;
    roundtrip_global_request: V::GlobalRequest;
    roundtrip_request_success: V::RequestSuccess;
    roundtrip_request_failure: V::RequestFailure;
    roundtrip_channel_open: V::ChannelOpen;
    roundtrip_channel_open_confirmation: V::ChannelOpenConfirmation;
    roundtrip_channel_open_failure: V::ChannelOpenFailure;
    roundtrip_channel_window_adjust: V::ChannelWindowAdjust;
    roundtrip_channel_data: V::ChannelData;
    roundtrip_channel_extended_data: V::ChannelExtendedData;
    roundtrip_channel_eof: V::ChannelEof;
    roundtrip_channel_close: V::ChannelClose;
    roundtrip_channel_request: V::ChannelRequest;
    roundtrip_channel_success: V::ChannelSuccess;
    roundtrip_channel_failure: V::ChannelFailure;
    roundtrip_unknown: V::Unknown;
}

#[test]
fn every_shape_has_a_roundtrip_test() {
    // `ALL` lists every shape once; the macro above names one test per shape.
    assert_eq!(ALL.len(), 47);
    let mut types: Vec<u8> = Vec::new();
    let p = Pool {
        text: vec![String::new(); 4],
        ascii: vec![String::new(); 10],
        bytes: vec![Vec::new(); 4],
        mpint: vec![Vec::new(); 3],
        u: vec![0; 5],
        flag: false,
        cookie: [0; 16],
        entries: Vec::new(),
        other_method: "hostbased".into(),
        unknown_type: 0,
    };
    for v in ALL {
        check_roundtrip(v, &p).unwrap();
        types.push(view(v, &p).msg_type());
    }
    // Every message number in msg.rs is produced by some shape.
    for t in [
        msg::DISCONNECT,
        msg::IGNORE,
        msg::UNIMPLEMENTED,
        msg::DEBUG,
        msg::SERVICE_REQUEST,
        msg::SERVICE_ACCEPT,
        msg::EXT_INFO,
        msg::KEXINIT,
        msg::NEWKEYS,
        msg::KEX_30,
        msg::KEX_31,
        msg::KEX_DH_GEX_INIT,
        msg::KEX_DH_GEX_REPLY,
        msg::KEX_DH_GEX_REQUEST,
        msg::USERAUTH_REQUEST,
        msg::USERAUTH_FAILURE,
        msg::USERAUTH_SUCCESS,
        msg::USERAUTH_BANNER,
        msg::USERAUTH_60,
        msg::USERAUTH_INFO_RESPONSE,
        msg::GLOBAL_REQUEST,
        msg::REQUEST_SUCCESS,
        msg::REQUEST_FAILURE,
        msg::CHANNEL_OPEN,
        msg::CHANNEL_OPEN_CONFIRMATION,
        msg::CHANNEL_OPEN_FAILURE,
        msg::CHANNEL_WINDOW_ADJUST,
        msg::CHANNEL_DATA,
        msg::CHANNEL_EXTENDED_DATA,
        msg::CHANNEL_EOF,
        msg::CHANNEL_CLOSE,
        msg::CHANNEL_REQUEST,
        msg::CHANNEL_SUCCESS,
        msg::CHANNEL_FAILURE,
    ] {
        assert!(
            types.contains(&t),
            "no shape for message {t} ({})",
            msg::name(t)
        );
    }
}

/// Decodes with every decoder; for each that succeeds, re-encoding and
/// decoding again gives the same message and never more bytes.
fn decode_all_ways(input: &[u8]) -> Result<usize, TestCaseError> {
    let mut ok = 0;
    let mut decs = vec![Dec::Plain];
    decs.extend(KEX_FLAVORS.map(Dec::Kex));
    decs.extend(AUTH_FLAVORS.map(Dec::Auth));
    for dec in decs {
        if let Ok(m) = dec.decode(input) {
            ok += 1;
            let again = m.to_vec();
            prop_assert!(again.len() <= input.len(), "{:?}: re-encoding grew", m);
            prop_assert_eq!(again[0], input[0]);
            let m2 = dec.decode(&again);
            prop_assert_eq!(m2.ok(), Some(m));
        }
    }
    Ok(ok)
}

#[derive(Clone, Debug)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    /// Overwrite four bytes (a length field, maybe) with a big-endian value.
    Word(usize, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Insert(i, x)),
        any::<usize>().prop_map(Mutation::Remove),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u32),
                Just(1),
                Just(0x7fff_ffff),
                Just(u32::MAX),
                any::<u32>()
            ]
        )
            .prop_map(|(i, x)| Mutation::Word(i, x)),
    ]
}

fn apply(buf: &mut Vec<u8>, m: &Mutation) {
    if buf.is_empty() {
        return;
    }
    let n = buf.len();
    match *m {
        Mutation::Truncate(i) => buf.truncate(i % n),
        Mutation::Flip(i, x) => buf[i % n] ^= x,
        Mutation::Insert(i, x) => buf.insert(i % (n + 1), x),
        Mutation::Remove(i) => {
            buf.remove(i % n);
        }
        Mutation::Word(i, x) => {
            let i = i % n;
            for (k, b) in x.to_be_bytes().iter().enumerate() {
                if let Some(slot) = buf.get_mut(i + k) {
                    *slot = *b;
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2048), ..ProptestConfig::default() })]

    /// Arbitrary bytes (up to 4 KiB) never panic any decoder.
    #[test]
    fn arbitrary_bytes_never_panic(input in vec(any::<u8>(), 0..=4096)) {
        if input.is_empty() {
            prop_assert!(Message::decode(&input).is_err());
        } else {
            decode_all_ways(&input)?;
        }
    }

    /// A known message number followed by arbitrary bytes.
    #[test]
    fn known_number_then_garbage_never_panics(t in any::<u8>(), body in vec(any::<u8>(), 0..=4096)) {
        let mut input = vec![t];
        input.extend_from_slice(&body);
        decode_all_ways(&input)?;
    }

    /// Valid messages, mutated: decoding either fails cleanly or yields a
    /// message that re-encodes consistently.
    #[test]
    fn mutated_messages_never_panic(
        which in 0..ALL.len(),
        p in pool(),
        muts in vec(mutation(), 1..4),
    ) {
        let mut buf = view(ALL[which], &p).to_vec();
        for m in &muts {
            apply(&mut buf, m);
        }
        if buf.is_empty() {
            prop_assert!(Message::decode(&buf).is_err());
        } else {
            decode_all_ways(&buf)?;
        }
    }
}

// ----------------------------------------------------- Reader / Put round trips

#[derive(Clone, Debug)]
enum Item {
    U8(u8),
    Bool(bool),
    U32(u32),
    U64(u64),
    Str(Vec<u8>),
    Utf8(String),
    Mpint(Vec<u8>),
    NameList(Vec<String>),
}

fn name() -> impl Strategy<Value = String> {
    // A name: printable ASCII without commas, never empty.
    vec((0x21u8..0x7f).prop_filter("comma", |c| *c != b','), 1..20)
        .prop_map(|v| v.into_iter().map(char::from).collect())
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        any::<u8>().prop_map(Item::U8),
        any::<bool>().prop_map(Item::Bool),
        any::<u32>().prop_map(Item::U32),
        any::<u64>().prop_map(Item::U64),
        bytes().prop_map(Item::Str),
        text().prop_map(Item::Utf8),
        vec(any::<u8>(), 0..80).prop_map(Item::Mpint),
        vec(name(), 0..8).prop_map(Item::NameList),
    ]
}

fn stripped(m: &[u8]) -> &[u8] {
    let start = m.iter().position(|&b| b != 0).unwrap_or(m.len());
    &m[start..]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn put_then_read_u32_u64(a in any::<u32>(), b in any::<u64>()) {
        let mut v = Vec::new();
        v.put_u32(a);
        v.put_u64(b);
        prop_assert_eq!(&v[..4], &a.to_be_bytes()[..]);
        prop_assert_eq!(&v[4..], &b.to_be_bytes()[..]);
        let mut r = Reader::new(&v);
        prop_assert_eq!(r.u32().unwrap(), a);
        prop_assert_eq!(r.u64().unwrap(), b);
        prop_assert!(r.finish().is_ok());
        prop_assert!(r.u8().is_err());
    }

    #[test]
    fn put_then_read_string(s in bytes(), t in text()) {
        let mut v = Vec::new();
        v.put_string(&s);
        v.put_str(&t);
        prop_assert_eq!(&v[..4], &(s.len() as u32).to_be_bytes()[..]);
        let mut r = Reader::new(&v);
        prop_assert_eq!(r.string().unwrap(), &s[..]);
        prop_assert_eq!(r.utf8().unwrap(), t.as_str());
        prop_assert!(r.is_empty());
        // Every truncation is an error, not a panic.
        for cut in 0..v.len() {
            let mut r = Reader::new(&v[..cut]);
            let ok = r.string().is_ok() && r.utf8().is_ok();
            prop_assert!(!ok);
        }
    }

    #[test]
    fn put_then_read_mpint_positive(mag in vec(any::<u8>(), 0..80)) {
        let mut v = Vec::new();
        v.put_mpint_positive(&mag);
        let m = stripped(&mag);
        // RFC 4251 §5: minimal two's complement, zero is the empty string.
        let body = &v[4..];
        prop_assert_eq!(&v[..4], &(body.len() as u32).to_be_bytes()[..]);
        if m.is_empty() {
            prop_assert!(body.is_empty());
        } else if m[0] & 0x80 != 0 {
            prop_assert_eq!(body[0], 0);
            prop_assert_eq!(&body[1..], m);
        } else {
            prop_assert_eq!(body, m);
        }
        let mut r = Reader::new(&v);
        prop_assert_eq!(r.mpint_positive().unwrap(), m);
        prop_assert!(r.is_empty());
        let mut r = Reader::new(&v);
        prop_assert_eq!(r.mpint().unwrap(), body);
    }

    #[test]
    fn negative_mpint_is_refused(mut body in vec(any::<u8>(), 1..40)) {
        body[0] |= 0x80;
        let mut v = Vec::new();
        v.put_string(&body);
        prop_assert!(Reader::new(&v).mpint_positive().is_err());
    }

    #[test]
    fn put_then_read_name_list(list in vec(name(), 0..10)) {
        let mut v = Vec::new();
        v.put_name_list(&list);
        let mut r = Reader::new(&v);
        let got = r.name_list().unwrap();
        prop_assert_eq!(got, list.join(","));
        prop_assert_eq!(names(got).collect::<Vec<_>>(), list.iter().map(String::as_str).collect::<Vec<_>>());
        // put_name_list and put_str of the joined list are the same bytes.
        let mut w = Vec::new();
        w.put_str(&list.join(","));
        prop_assert_eq!(v, w);
    }

    #[test]
    fn non_ascii_name_list_is_refused(mut s in bytes(), i in any::<usize>()) {
        if s.is_empty() {
            s.push(0);
        }
        let k = i % s.len();
        s[k] |= 0x80;
        let mut v = Vec::new();
        v.put_string(&s);
        prop_assert!(Reader::new(&v).name_list().is_err());
    }

    /// Any sequence of values written with `Put` reads back in order.
    #[test]
    fn put_then_read_sequence(items in vec(item(), 0..16)) {
        let mut v = Vec::new();
        for it in &items {
            match it {
                Item::U8(x) => v.put_u8(*x),
                Item::Bool(x) => v.put_bool(*x),
                Item::U32(x) => v.put_u32(*x),
                Item::U64(x) => v.put_u64(*x),
                Item::Str(x) => v.put_string(x),
                Item::Utf8(x) => v.put_str(x),
                Item::Mpint(x) => v.put_mpint_positive(x),
                Item::NameList(x) => v.put_name_list(x),
            }
        }
        let mut r = Reader::new(&v);
        for it in &items {
            match it {
                Item::U8(x) => prop_assert_eq!(r.u8().unwrap(), *x),
                Item::Bool(x) => prop_assert_eq!(r.bool().unwrap(), *x),
                Item::U32(x) => prop_assert_eq!(r.u32().unwrap(), *x),
                Item::U64(x) => prop_assert_eq!(r.u64().unwrap(), *x),
                Item::Str(x) => prop_assert_eq!(r.string().unwrap(), &x[..]),
                Item::Utf8(x) => prop_assert_eq!(r.utf8().unwrap(), x.as_str()),
                Item::Mpint(x) => prop_assert_eq!(r.mpint_positive().unwrap(), stripped(x)),
                Item::NameList(x) => prop_assert_eq!(r.name_list().unwrap(), x.join(",")),
            }
        }
        prop_assert!(r.finish().is_ok());
        prop_assert_eq!(r.position(), v.len());
    }

    /// Reader calls on arbitrary bytes return errors, never panic, and never
    /// move past the end.
    #[test]
    fn reader_on_garbage(buf in vec(any::<u8>(), 0..256), ops in vec(0u8..11, 0..32), n in 0usize..64) {
        let mut r = Reader::new(&buf);
        for op in ops {
            let before = r.position();
            let ok = match op {
                0 => r.u8().is_ok(),
                1 => r.bool().is_ok(),
                2 => r.u32().is_ok(),
                3 => r.u64().is_ok(),
                4 => r.string().is_ok(),
                5 => r.utf8().is_ok(),
                6 => r.name_list().is_ok(),
                7 => r.mpint().is_ok(),
                8 => r.mpint_positive().is_ok(),
                9 => r.bytes(n).is_ok(),
                _ => r.finish().is_ok(),
            };
            prop_assert!(r.position() <= buf.len());
            prop_assert_eq!(r.remaining(), buf.len() - r.position());
            if !ok && op != 10 {
                // A failed read of a fixed-size field consumes nothing.
                if matches!(op, 0..=3 | 9) {
                    prop_assert_eq!(r.position(), before);
                }
            }
        }
        let pos = r.position();
        prop_assert_eq!(r.rest(), &buf[pos..]);
        prop_assert!(r.is_empty());
    }
}
