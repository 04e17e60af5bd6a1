//! The `key_files` target: key and key-list parsers.

use ssh_proto::keys::authorized_keys::AuthorizedKeys;
use ssh_proto::keys::known_hosts::KnownHosts;
use ssh_proto::{PrivateKey, PublicKey};

use super::setup::host_key;

/// Key and key-list parsers.
pub fn key_files(data: &[u8]) {
    let hk = host_key().public_key();
    let _ = PrivateKey::from_bytes(data, None);
    if let Ok(k) = PrivateKey::from_bytes(data, Some(b"pw")) {
        let p = k.public_key();
        let _ = (p.fingerprint(), p.to_openssh(), p.bits());
        for alg in p.sig_algorithms() {
            if let Ok(sig) = k.sign(alg, b"data") {
                let _ = p.verify(alg, b"data", &sig);
            }
        }
    }
    let _ = PrivateKey::is_encrypted(data);
    let text = String::from_utf8_lossy(data);
    let parsed_pub = PublicKey::from_openssh(&text);
    if let Ok(p) = &parsed_pub {
        let _ = PublicKey::from_blob(&p.to_blob());
    }
    if let Ok(p) = PublicKey::from_blob(data) {
        let _ = (p.to_openssh(), p.fingerprint(), p.key_type());
        for alg in p.sig_algorithms() {
            let _ = p.verify(alg, b"data", data);
        }
    }
    let kh = KnownHosts::parse(&text);
    let _ = kh.check("example.com", 22, &hk);
    let _ = kh.check("[10.0.0.1]:2222", 2222, &hk);
    let _ = kh.known_key_types("example.com", 22);
    if let Ok(p) = &parsed_pub {
        let _ = kh.check("example.com", 22, p);
    }
    let ak = AuthorizedKeys::parse(&text);
    let _ = ak.find(&hk);
    for k in ak.keys.iter().take(8) {
        let _ = ak.find(&k.key);
        let _ = k
            .options
            .from_allows("192.0.2.1", Some("client.example.com"));
    }
}
