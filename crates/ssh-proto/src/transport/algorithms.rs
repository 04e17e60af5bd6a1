//! Algorithm lists, defaults and negotiation (RFC 4253 §7.1).

use crate::error::{Error, ErrorKind, Result};

/// Marker names that travel in the kex list but are not key exchanges.
pub(crate) const EXT_INFO_C: &str = "ext-info-c";
pub(crate) const EXT_INFO_S: &str = "ext-info-s";
pub(crate) const STRICT_KEX_C: &str = "kex-strict-c-v00@openssh.com";
pub(crate) const STRICT_KEX_S: &str = "kex-strict-s-v00@openssh.com";

/// Every key exchange this crate implements, in default preference order
/// (OpenSSH 9.x's order, with the fast post-quantum hybrid first).
pub const KEX_ALL: &[&str] = &[
    "mlkem768x25519-sha256",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group1-sha1",
];
/// Legacy (SHA-1) key exchanges: built, but off unless configured.
pub const KEX_LEGACY: &[&str] = &[
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group1-sha1",
];

/// Host key and signature algorithms, strongest first.
pub const HOST_KEY_ALL: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];
/// Host key algorithms off by default: `ssh-rsa` (SHA-1 signatures).
pub const HOST_KEY_LEGACY: &[&str] = &["ssh-rsa"];

/// Every signature algorithm a server can verify in publickey user
/// authentication: what `PubkeyAcceptedAlgorithms` may name (the same
/// signature algorithms as for host keys).
pub const PUBKEY_ALGORITHMS_ALL: &[&str] = HOST_KEY_ALL;
/// Legacy (SHA-1) user signatures: verifiable, but not accepted by default.
pub const PUBKEY_ALGORITHMS_LEGACY: &[&str] = HOST_KEY_LEGACY;

/// Ciphers, preferred first.
pub const CIPHER_ALL: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-cbc",
    "aes256-cbc",
    "3des-cbc",
];
/// Ciphers off by default: the CBC modes.
pub const CIPHER_LEGACY: &[&str] = &["aes128-cbc", "aes256-cbc", "3des-cbc"];

/// MACs (ignored with AEAD ciphers), preferred first.
pub const MAC_ALL: &[&str] = &[
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
];

/// Compression methods; only `none` is on by default.
pub const COMPRESSION_ALL: &[&str] = &["none", "zlib@openssh.com", "zlib"];

/// Which algorithms an endpoint offers, in preference order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Algorithms {
    /// Key exchange methods, preferred first.
    pub kex: Vec<String>,
    /// Host key / signature algorithms, preferred first.
    pub host_key: Vec<String>,
    /// Ciphers, preferred first (both directions).
    pub cipher: Vec<String>,
    /// MACs, preferred first (both directions).
    pub mac: Vec<String>,
    /// Compression methods, preferred first (both directions).
    pub compression: Vec<String>,
}

fn owned(list: &[&str], skip: &[&str]) -> Vec<String> {
    list.iter()
        .filter(|a| !skip.contains(a))
        .map(|s| s.to_string())
        .collect()
}

/// True when the CPU has AES and carry-less multiply instructions, in which
/// case AES-GCM outruns chacha20-poly1305 and is preferred.
///
/// Feature detection reads CPUID, which is not I/O; it is done through the
/// standard library's macro.
pub(crate) fn has_aes_hardware() -> bool {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
    {
        false
    }
}

impl Default for Algorithms {
    /// OpenSSH 9.x's default order, legacy algorithms left out; AES-GCM
    /// first when the CPU accelerates it.
    fn default() -> Self {
        let mut cipher = owned(CIPHER_ALL, CIPHER_LEGACY);
        if has_aes_hardware() {
            cipher.retain(|c| !c.contains("gcm"));
            cipher.insert(0, "aes256-gcm@openssh.com".into());
            cipher.insert(0, "aes128-gcm@openssh.com".into());
        }
        Algorithms {
            kex: owned(KEX_ALL, KEX_LEGACY),
            host_key: owned(HOST_KEY_ALL, HOST_KEY_LEGACY),
            cipher,
            mac: owned(MAC_ALL, &[]),
            compression: vec!["none".into()],
        }
    }
}

impl Algorithms {
    /// Everything this crate implements, legacy included.
    pub fn all() -> Self {
        Algorithms {
            kex: owned(KEX_ALL, &[]),
            host_key: owned(HOST_KEY_ALL, &[]),
            cipher: owned(CIPHER_ALL, &[]),
            mac: owned(MAC_ALL, &[]),
            compression: owned(COMPRESSION_ALL, &[]),
        }
    }

    /// Applies an OpenSSH-style list option to one category: `a,b` replaces,
    /// `+a,b` appends, `-a,b` removes (wildcards allowed), `^a,b` puts first.
    /// Unknown names are an error naming them.
    pub fn apply(
        current: &mut Vec<String>,
        spec: &str,
        supported: &[&str],
        category: &str,
    ) -> Result<()> {
        let (op, body) = match spec.chars().next() {
            Some(c @ ('+' | '-' | '^')) => (c, &spec[1..]),
            _ => ('=', spec),
        };
        let pats: Vec<&str> = body
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let expand = |pat: &str| -> Vec<String> {
            supported
                .iter()
                .filter(|s| wildcard_match(pat, s))
                .map(|s| s.to_string())
                .collect()
        };
        let mut named = Vec::new();
        for p in &pats {
            let m = expand(p);
            if m.is_empty() && op != '-' {
                return Err(Error::usage(format!(
                    "unsupported {category} algorithm {p:?}; supported: {}",
                    supported.join(",")
                )));
            }
            for x in m {
                if !named.contains(&x) {
                    named.push(x);
                }
            }
        }
        match op {
            '=' => *current = named,
            '+' => {
                for x in named {
                    if !current.contains(&x) {
                        current.push(x);
                    }
                }
            }
            '-' => current.retain(|x| !named.contains(x)),
            _ => {
                current.retain(|x| !named.contains(x));
                for (i, x) in named.into_iter().enumerate() {
                    current.insert(i, x);
                }
            }
        }
        if current.is_empty() {
            return Err(Error::usage(format!("empty {category} algorithm list")));
        }
        Ok(())
    }
}

/// `*` and `?` glob match of algorithm names, ignoring ASCII case.
pub(crate) fn wildcard_match(pat: &str, s: &str) -> bool {
    crate::keys::known_hosts::glob_match(
        pat.to_ascii_lowercase().as_bytes(),
        s.to_ascii_lowercase().as_bytes(),
    )
}

/// First client algorithm the server also supports.
pub(crate) fn choose(category: &str, client: &str, server: &str) -> Result<String> {
    for c in crate::wire::names(client) {
        if crate::wire::names(server).any(|s| s == c) {
            return Ok(c.to_string());
        }
    }
    Err(Error::new(
        ErrorKind::NoCommonAlgorithm,
        format!(
            "no common {category} algorithm: client offers {}, server offers {}",
            shown(client),
            shown(server)
        ),
    ))
}

/// A name-list as shown in an error text: one list comes from the peer, so
/// control characters are dropped and a long list is cut short.
fn shown(list: &str) -> String {
    const MAX: usize = 1024;
    let clean = list.chars().filter(|c| !c.is_control());
    let mut s: String = clean.clone().take(MAX).collect();
    if clean.count() > MAX {
        s.push_str("...");
    }
    s
}

/// The outcome of one algorithm negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The key exchange method.
    pub kex: String,
    /// The server host key algorithm.
    pub host_key: String,
    /// Cipher, client to server.
    pub cipher_c2s: String,
    /// Cipher, server to client.
    pub cipher_s2c: String,
    /// MAC, client to server; `None` with an AEAD cipher.
    pub mac_c2s: Option<String>,
    /// MAC, server to client; `None` with an AEAD cipher.
    pub mac_s2c: Option<String>,
    /// Compression, client to server.
    pub compression_c2s: String,
    /// Compression, server to client.
    pub compression_s2c: String,
}

impl std::fmt::Display for Negotiated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kex {}, host key {}, cipher {} / {}, mac {} / {}, compression {} / {}",
            self.kex,
            self.host_key,
            self.cipher_c2s,
            self.cipher_s2c,
            self.mac_c2s.as_deref().unwrap_or("<implicit>"),
            self.mac_s2c.as_deref().unwrap_or("<implicit>"),
            self.compression_c2s,
            self.compression_s2c
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_takes_first_client_preference() {
        assert_eq!(choose("cipher", "b,a", "a,b").unwrap(), "b");
        let e = choose("cipher", "x,y", "a,b").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoCommonAlgorithm);
        assert!(
            e.to_string()
                .contains("client offers x,y, server offers a,b"),
            "{e}"
        );
    }

    #[test]
    fn apply_plus_minus_caret() {
        let mut l = vec!["a".to_string(), "b".to_string()];
        Algorithms::apply(&mut l, "+c", &["a", "b", "c"], "x").unwrap();
        assert_eq!(l, ["a", "b", "c"]);
        Algorithms::apply(&mut l, "-a", &["a", "b", "c"], "x").unwrap();
        assert_eq!(l, ["b", "c"]);
        Algorithms::apply(&mut l, "^c", &["a", "b", "c"], "x").unwrap();
        assert_eq!(l, ["c", "b"]);
        Algorithms::apply(&mut l, "a*", &["a", "ab", "c"], "x").unwrap();
        assert_eq!(l, ["a", "ab"]);
        assert!(Algorithms::apply(&mut l, "zz", &["a"], "x").is_err());
    }

    #[test]
    fn defaults_leave_legacy_out() {
        let d = Algorithms::default();
        assert!(!d.kex.iter().any(|k| k.ends_with("sha1")));
        assert!(!d.cipher.iter().any(|k| k.ends_with("cbc")));
        assert!(!d.host_key.contains(&"ssh-rsa".to_string()));
    }
}
