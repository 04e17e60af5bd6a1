//! Soak: long transfers through a channel with a rekey every 64 MiB and
//! compression on, for every cipher; and an SFTP put and get with rekeys.
//! sha256 equal at both ends.
//!
//! CI runs it at 128 MiB per cipher (and 128 MiB of SFTP); the full soak
//! is `scripts/soak.sh` (4 GiB per cipher, 1 GiB of SFTP), or set
//! `SSHLIB_SOAK_MIB` / `SSHLIB_SOAK_SFTP_MIB`.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use common::cat_server::{start_cat_server, CatServer};
use common::*;
use sha2::{Digest, Sha256};
use ssh_blocking::proto::Config;
use ssh_blocking::{Client, HostKeyCheck};

const REKEY: u64 = 64 << 20;

fn mib(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

type Fixture = CatServer;

/// Our server with every algorithm enabled, compression offered, and a
/// rekey every 64 MiB from its side too.
fn start() -> Fixture {
    start_cat_server(|config| {
        config.transport.algorithms = ssh_blocking::proto::Algorithms::all();
        config.transport.rekey_bytes = Some(REKEY);
    })
}

fn client(fx: &Fixture, cipher: &str, compression: bool) -> Client {
    let mut config = Config::default();
    config.transport.algorithms.cipher = vec![cipher.to_string()];
    if compression {
        config.transport.algorithms.compression = vec!["zlib@openssh.com".into()];
    }
    config.transport.rekey_bytes = Some(REKEY);
    let c = Client::connect_with(
        ("127.0.0.1", fx.port),
        Arc::new(config),
        HostKeyCheck::Exact(fx.host.clone()),
        None,
    )
    .unwrap();
    c.auth_password("soak", "pw").unwrap();
    c
}

/// A deterministic stream: half compressible text, half pseudo-random.
fn chunk(i: u64) -> Vec<u8> {
    if i.is_multiple_of(2) {
        compressible_text(256 * 1024)
    } else {
        pseudo_random_bytes(256 * 1024, i)
    }
}

/// Sends `total` bytes through `cat` on a new channel; returns
/// (sha256 sent, sha256 received).
fn round_trip(c: &Client, total: u64) -> (String, String) {
    let ch = c.channel_session().unwrap();
    ch.exec("cat").unwrap();
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = (&ch).read(&mut buf).expect("read from the channel");
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            hex(&h.finalize())
        });
        let mut h = Sha256::new();
        let mut sent = 0u64;
        let mut i = 0u64;
        let cache = [chunk(0), chunk(1)];
        while sent < total {
            let c = &cache[(i % 2) as usize];
            let n = (c.len() as u64).min(total - sent) as usize;
            // Vary the bytes per chunk so a reordering would show.
            let mut piece = c[..n].to_vec();
            piece[0] = i as u8;
            h.update(&piece);
            (&ch).write_all(&piece).expect("write to the channel");
            sent += n as u64;
            i += 1;
        }
        ch.send_eof().unwrap();
        (hex(&h.finalize()), reader.join().unwrap())
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn soak_every_cipher_with_rekeys_and_compression() {
    let total = mib("SSHLIB_SOAK_MIB", 128) << 20;
    let fx = start();
    let ciphers = ssh_blocking::proto::Algorithms::all().cipher;
    assert!(ciphers.len() >= 9, "{ciphers:?}");
    for cipher in &ciphers {
        let c = client(&fx, cipher, true);
        let n = c.negotiated().unwrap();
        assert_eq!(&n.cipher_c2s, cipher);
        assert_eq!(n.compression_c2s, "zlib@openssh.com");
        let (sent, got) = round_trip(&c, total);
        assert_eq!(sent, got, "{cipher}: data changed on the way");
        // Both directions moved `total` bytes: a rekey every 64 MiB.
        let expected = 1 + (total / REKEY) as u32;
        assert!(
            c.kex_count() >= expected,
            "{cipher}: {} key exchanges for {} MiB each way (expected at least {expected})",
            c.kex_count(),
            total >> 20
        );
    }
}

#[test]
fn soak_sftp_put_and_get_with_rekeys() {
    let total = mib("SSHLIB_SOAK_SFTP_MIB", 128) << 20;
    let fx = start();
    let c = client(&fx, "aes128-gcm@openssh.com", false);
    let sftp = c.sftp().unwrap();
    let local = TempDir::new("soak-sftp");
    let src = local.join("src.bin");
    let mut h = Sha256::new();
    {
        let mut f = std::fs::File::create(&src).unwrap();
        let mut written = 0u64;
        let mut i = 0u64;
        while written < total {
            let mut piece = pseudo_random_bytes(1 << 20, i);
            piece.truncate((total - written).min(1 << 20) as usize);
            h.update(&piece);
            f.write_all(&piece).unwrap();
            written += piece.len() as u64;
            i += 1;
        }
    }
    let sent = hex(&h.finalize());
    assert_eq!(sftp.put(&src, "/soak.bin", None).unwrap(), total);
    let back = local.join("back.bin");
    assert_eq!(sftp.get("/soak.bin", &back, None).unwrap(), total);
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(&back).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    assert_eq!(hex(&h.finalize()), sent, "the file changed on the way");
    assert!(
        c.kex_count() as u64 > total / REKEY,
        "{} key exchanges for {} MiB each way",
        c.kex_count(),
        total >> 20
    );
}
