//! Encodings checked against byte sequences written the way the core's
//! hand-written encoders write them (auth/client.rs `request_header`,
//! auth/server.rs `fail_with` / `info_request`, transport `disconnect` /
//! `send_newkeys`, connection `open_failure` / `send_stream`).
use super::*;
use crate::wire::Put;

fn same(m: &Message<'_>, core: impl FnOnce(&mut Vec<u8>)) {
    let mut want = Vec::new();
    core(&mut want);
    assert_eq!(m.to_vec(), want, "{m:?}");
    assert_eq!(&Message::decode(&want).unwrap(), m);
}

#[test]
fn matches_core_encoders() {
    same(
        &Message::Disconnect {
            reason: 2,
            description: "bad",
            language: "",
        },
        |b| {
            b.push(DISCONNECT);
            b.put_u32(2);
            b.put_str("bad");
            b.put_str("");
        },
    );
    same(
        &Message::UserauthRequest {
            user: "alice",
            service: "ssh-connection",
            method: UserauthMethod::Password {
                password: "old",
                new_password: Some("new"),
            },
        },
        |b| {
            b.push(USERAUTH_REQUEST);
            b.put_str("alice");
            b.put_str("ssh-connection");
            b.put_str("password");
            b.put_bool(true);
            b.put_str("old");
            b.put_str("new");
        },
    );
    same(
        &Message::UserauthRequest {
            user: "u",
            service: "ssh-connection",
            method: UserauthMethod::PublicKey {
                algorithm: "ssh-ed25519",
                key_blob: b"K",
                signature: Some(b"S"),
            },
        },
        |b| {
            b.push(USERAUTH_REQUEST);
            b.put_str("u");
            b.put_str("ssh-connection");
            b.put_str("publickey");
            b.put_bool(true);
            b.put_str("ssh-ed25519");
            b.put_string(b"K");
            b.put_string(b"S");
        },
    );
    same(
        &Message::UserauthFailure {
            methods: "publickey,password",
            partial_success: false,
        },
        |b| {
            b.push(USERAUTH_FAILURE);
            b.put_name_list(&["publickey", "password"]);
            b.put_bool(false);
        },
    );
    same(
        &Message::ExtInfo {
            extensions: vec![("server-sig-algs", b"ssh-ed25519,rsa-sha2-256")],
        },
        |b| {
            b.push(EXT_INFO);
            b.put_u32(1);
            b.put_str("server-sig-algs");
            b.put_name_list(&["ssh-ed25519", "rsa-sha2-256"]);
        },
    );
    same(
        &Message::ChannelOpenFailure {
            recipient: 9,
            reason: open_failure::CONNECT_FAILED,
            description: "no",
            language: "",
        },
        |b| {
            b.push(CHANNEL_OPEN_FAILURE);
            b.put_u32(9);
            b.put_u32(2);
            b.put_str("no");
            b.put_str("");
        },
    );
    same(
        &Message::ChannelExtendedData {
            recipient: 3,
            data_type: 1,
            data: b"err\n",
        },
        |b| {
            b.push(CHANNEL_EXTENDED_DATA);
            b.put_u32(3);
            b.put_u32(1);
            b.put_string(b"err\n");
        },
    );
    let mut exit = Vec::new();
    exit.put_u32(7);
    same(
        &Message::ChannelRequest {
            recipient: 0,
            request_type: "exit-status",
            want_reply: false,
            data: &exit,
        },
        |b| {
            b.push(CHANNEL_REQUEST);
            b.put_u32(0);
            b.put_str("exit-status");
            b.put_bool(false);
            b.put_raw(&exit);
        },
    );
    same(&Message::NewKeys, |b| b.push(NEWKEYS));
}

#[test]
fn flavored_numbers() {
    let mut p = vec![KEX_31];
    p.put_string(b"key");
    p.put_mpint_positive(&[0x80, 1]);
    p.put_string(b"sig");
    assert_eq!(
        Message::decode(&p).unwrap(),
        Message::Unknown {
            msg_type: KEX_31,
            rest: &p[1..]
        }
    );
    assert_eq!(
        Message::decode_kex(&p, KexFlavor::Dh).unwrap(),
        Message::KexDhReply {
            k_s: b"key",
            f: &[0x80, 1],
            signature: b"sig"
        }
    );
    // As ECDH the mpint's leading zero byte is part of the string.
    assert_eq!(
        Message::decode_kex(&p, KexFlavor::Ecdh).unwrap(),
        Message::KexEcdhReply {
            k_s: b"key",
            q_s: &[0, 0x80, 1],
            signature: b"sig"
        }
    );
    assert!(Message::decode_kex(&p, KexFlavor::DhGex).is_err());
    assert_eq!(
        KexFlavor::for_kex("curve25519-sha256"),
        Some(KexFlavor::Ecdh)
    );
    assert_eq!(
        KexFlavor::for_kex("diffie-hellman-group14-sha256"),
        Some(KexFlavor::Dh)
    );
    assert_eq!(
        KexFlavor::for_kex("diffie-hellman-group-exchange-sha1"),
        Some(KexFlavor::DhGex)
    );
    assert_eq!(KexFlavor::for_kex("gss-gex-sha1-x"), None);
}

#[test]
fn trailing_bytes_rejected_only_for_closed_layouts() {
    let e = Message::decode(&[CHANNEL_EOF, 0, 0, 0, 1, 0]).unwrap_err();
    assert!(e.to_string().contains("CHANNEL_EOF"), "{e}");
    assert_eq!(
        Message::decode(&[REQUEST_SUCCESS, 1, 2]).unwrap(),
        Message::RequestSuccess { data: &[1, 2] }
    );
    assert!(Message::decode(&[]).is_err());
}

#[test]
fn huge_list_count_does_not_allocate() {
    let m = Message::decode(&[USERAUTH_INFO_RESPONSE, 0xff, 0xff, 0xff, 0xff]);
    assert!(m.is_err());
    let m = Message::decode(&[EXT_INFO, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    assert!(m.is_err());
}

#[test]
fn debug_hides_passwords() {
    let m = UserauthMethod::Password {
        password: "hunter2",
        new_password: Some("hunter3"),
    };
    let s = format!("{m:?}");
    assert!(!s.contains("hunter"), "{s}");
}
