//! Tests for the keys module, cross-checked against the real `ssh-keygen`
//! (and `openssl`). A missing tool fails the test (scripts/install-peers.sh
//! installs them).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64ct::{Base64, Encoding};

use super::*;
use crate::wire::{Put, Reader};
use sha2::{Digest, Sha256, Sha512};

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ssh-proto-keys-{}-{}-{}",
            std::process::id(),
            name,
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg(if tool == "openssl" { "version" } else { "-?" })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    // A missing peer tool fails the test run; it never skips.
    assert!(ok, "{tool} not found: run scripts/install-peers.sh");
    ok
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{:?} failed: {}{}",
        cmd,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ssh-keygen -q -t TYPE [-b BITS] [-m FORMAT] -N PASS -C COMMENT -f PATH`.
fn keygen(path: &Path, ty: &str, bits: Option<u32>, format: Option<&str>, pass: &str) {
    let mut c = Command::new("ssh-keygen");
    c.args(["-q", "-t", ty]);
    if let Some(b) = bits {
        c.args(["-b", &b.to_string()]);
    }
    if let Some(m) = format {
        c.args(["-m", m]);
    }
    c.args(["-N", pass, "-C", "test comment"])
        .arg("-f")
        .arg(path);
    run(&mut c);
}

/// The fingerprint field of `ssh-keygen -l -E sha256 -f FILE`.
fn keygen_fingerprint(pubfile: &Path) -> String {
    let out = run(Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(pubfile));
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `ssh-keygen -y -f FILE`: the public key ssh derives from a private key file.
fn keygen_public_of(path: &Path) -> PublicKey {
    let out = run(Command::new("ssh-keygen").args(["-y", "-f"]).arg(path));
    PublicKey::from_openssh(std::str::from_utf8(&out.stdout).unwrap()).unwrap()
}

/// Signs with every algorithm of the key and checks verification (and its failures).
fn check_sign_verify(sk: &PrivateKey, pk: &PublicKey) {
    let data = b"some data to be signed \x00\x01\x02";
    let mut tampered = data.to_vec();
    tampered[3] ^= 1;
    for alg in pk.sig_algorithms() {
        let sig = sk.sign(alg, data).unwrap();
        let mut r = Reader::new(&sig);
        assert_eq!(r.utf8().unwrap(), *alg);
        r.string().unwrap();
        assert!(r.is_empty());
        pk.verify(alg, data, &sig)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        let e = pk.verify(alg, &tampered, &sig).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::HostKey);
        // Flip a bit inside the signature.
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        assert_eq!(
            pk.verify(alg, data, &bad).unwrap_err().kind(),
            ErrorKind::HostKey
        );
        // Trailing garbage after the blob.
        let mut long = sig.clone();
        long.push(0);
        assert_eq!(
            pk.verify(alg, data, &long).unwrap_err().kind(),
            ErrorKind::HostKey
        );
        // The caller's algorithm must equal the blob's.
        for other in pk.sig_algorithms().iter().filter(|o| *o != alg) {
            assert_eq!(
                pk.verify(other, data, &sig).unwrap_err().kind(),
                ErrorKind::HostKey
            );
        }
        // Truncations never panic and never verify.
        for n in 0..sig.len() {
            assert!(pk.verify(alg, data, &sig[..n]).is_err());
        }
    }
    // Algorithms of other key types are refused.
    for alg in [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "rsa-sha2-256",
        "ssh-dss",
        "",
    ] {
        if !pk.sig_algorithms().contains(&alg) {
            assert!(sk.sign(alg, data).is_err());
            let mut blob = Vec::new();
            blob.put_str(alg);
            blob.put_string(&[0u8; 64]);
            assert_eq!(
                pk.verify(alg, data, &blob).unwrap_err().kind(),
                ErrorKind::HostKey
            );
        }
    }
}

/// OpenSSH accepts RSA signatures shorter than the modulus (leading zero bytes dropped).
fn check_short_rsa_signature(sk: &PrivateKey, pk: &PublicKey) {
    for i in 0u32..5000 {
        let data = i.to_le_bytes();
        let blob = sk.sign("rsa-sha2-256", &data).unwrap();
        let mut r = Reader::new(&blob);
        r.string().unwrap();
        let sig = r.string().unwrap();
        if sig[0] == 0 {
            let mut short = Vec::new();
            short.put_str("rsa-sha2-256");
            short.put_string(&sig[1..]);
            pk.verify("rsa-sha2-256", &data, &short).unwrap();
            assert!(pk.verify("rsa-sha2-256", b"other", &short).is_err());
            return;
        }
    }
    panic!("no RSA signature with a leading zero byte found");
}

const KEY_TYPES: &[(&str, Option<u32>, &str, usize)] = &[
    ("ed25519", None, "ssh-ed25519", 256),
    ("ecdsa", Some(256), "ecdsa-sha2-nistp256", 256),
    ("ecdsa", Some(384), "ecdsa-sha2-nistp384", 384),
    ("ecdsa", Some(521), "ecdsa-sha2-nistp521", 521),
    ("rsa", Some(2048), "ssh-rsa", 2048),
];

// ---------------------------------------------------------------------------
// ssh-keygen generated files
// ---------------------------------------------------------------------------

fn check_generated(ty: &str, bits: Option<u32>, key_type: &str, nbits: usize) {
    if !have("ssh-keygen") {
        return;
    }
    let dir = TempDir::new(&format!("{ty}{}", bits.unwrap_or(0)));
    let formats: &[Option<&str>] = if ty == "ed25519" {
        &[None]
    } else {
        &[None, Some("PEM"), Some("PKCS8")]
    };
    for &format in formats {
        let path = dir.path(&format!("id_{}", format.unwrap_or("openssh")));
        keygen(&path, ty, bits, format, "");
        let pubfile = path.with_extension("pub");
        let data = std::fs::read(&path).unwrap();
        let pub_text = std::fs::read_to_string(&pubfile).unwrap();
        let pk = PublicKey::from_openssh(&pub_text).unwrap();

        assert!(!PrivateKey::is_encrypted(&data));
        let sk =
            PrivateKey::from_bytes(&data, None).unwrap_or_else(|e| panic!("{ty} {format:?}: {e}"));
        // A passphrase for an unencrypted key is ignored.
        assert_eq!(
            PrivateKey::from_bytes(&data, Some(b"xyz"))
                .unwrap()
                .public_key(),
            pk
        );
        assert_eq!(sk.public_key(), pk, "{ty} {format:?}");
        assert_eq!(pk.key_type(), key_type);
        assert_eq!(pk.bits(), nbits);
        assert_eq!(
            pk.fingerprint(),
            keygen_fingerprint(&pubfile),
            "{ty} {format:?}"
        );
        assert_eq!(
            pk.to_openssh(),
            pub_text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert_eq!(PublicKey::from_blob(&pk.to_blob()).unwrap(), pk);
        if format.is_none() {
            assert_eq!(sk.comment(), "test comment");
        }
        if key_type == "ssh-rsa" && format.is_none() {
            check_short_rsa_signature(&sk, &pk);
        }
        let dbg = format!("{sk:?}");
        assert!(dbg.contains(key_type) && dbg.contains("SHA256:"), "{dbg}");
        check_sign_verify(&sk, &pk);

        // Our OpenSSH writer produces a file ssh-keygen reads, and we read it back.
        let text = sk.to_openssh().unwrap();
        let out = dir.path("written");
        write_private(&out, &text);
        assert_eq!(keygen_public_of(&out), pk);
        let back = PrivateKey::from_bytes(text.as_bytes(), None).unwrap();
        assert_eq!(back.public_key(), pk);
        assert_eq!(back.comment(), sk.comment());
    }

    // Encrypted OpenSSH key.
    let path = dir.path("id_enc");
    keygen(&path, ty, bits, None, "correct horse");
    let data = std::fs::read(&path).unwrap();
    let pk = PublicKey::from_openssh(&std::fs::read_to_string(path.with_extension("pub")).unwrap())
        .unwrap();
    assert!(PrivateKey::is_encrypted(&data));
    let e = PrivateKey::from_bytes(&data, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Key);
    assert!(e.to_string().contains("passphrase required"), "{e}");
    let e = PrivateKey::from_bytes(&data, Some(b"wrong horse")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Key);
    assert!(e.to_string().contains("wrong passphrase"), "{e}");
    let sk = PrivateKey::from_bytes(&data, Some(b"correct horse")).unwrap();
    assert_eq!(sk.public_key(), pk);
    assert_eq!(sk.comment(), "test comment");
    check_sign_verify(&sk, &pk);

    // Legacy encrypted PEM and encrypted PKCS#8 are recognised and refused clearly.
    if ty != "ed25519" {
        for format in ["PEM", "PKCS8"] {
            let path = dir.path(&format!("id_enc_{format}"));
            keygen(&path, ty, bits, Some(format), "correct horse");
            let data = std::fs::read(&path).unwrap();
            assert!(PrivateKey::is_encrypted(&data), "{format}");
            for pass in [None, Some(&b"correct horse"[..])] {
                let e = PrivateKey::from_bytes(&data, pass).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Key);
                assert!(e.to_string().contains("unsupported"), "{e}");
            }
        }
    }
}

#[test]
fn keys_ssh_keygen_ed25519() {
    let (t, b, kt, n) = KEY_TYPES[0];
    check_generated(t, b, kt, n);
}

#[test]
fn keys_ssh_keygen_ecdsa_p256() {
    let (t, b, kt, n) = KEY_TYPES[1];
    check_generated(t, b, kt, n);
}

#[test]
fn keys_ssh_keygen_ecdsa_p384() {
    let (t, b, kt, n) = KEY_TYPES[2];
    check_generated(t, b, kt, n);
}

#[test]
fn keys_ssh_keygen_ecdsa_p521() {
    let (t, b, kt, n) = KEY_TYPES[3];
    check_generated(t, b, kt, n);
}

#[test]
fn keys_ssh_keygen_rsa_2048() {
    let (t, b, kt, n) = KEY_TYPES[4];
    check_generated(t, b, kt, n);
}

// ---------------------------------------------------------------------------
// hostile input
// ---------------------------------------------------------------------------

/// Cheap deterministic byte source for fuzz-ish tests.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u8
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn armor(label: &str, body: &[u8]) -> String {
    let b64 = Base64::encode_string(body);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(70) {
        s.push_str(std::str::from_utf8(chunk).unwrap());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

#[test]
fn keys_truncated_and_garbage_input_is_an_error_not_a_panic() {
    let mut rng = Lcg(7);
    // Plain garbage.
    for n in [0usize, 1, 10, 100, 1000] {
        let g = rng.bytes(n);
        assert!(PrivateKey::from_bytes(&g, None).is_err());
        assert!(!PrivateKey::is_encrypted(&g));
        assert!(PublicKey::from_blob(&g).is_err());
        for label in [
            "OPENSSH PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "PRIVATE KEY",
        ] {
            let text = armor(label, &g);
            assert!(PrivateKey::from_bytes(text.as_bytes(), Some(b"pw")).is_err());
            let _ = PrivateKey::is_encrypted(text.as_bytes());
        }
    }
    assert!(PublicKey::from_openssh("").is_err());
    assert!(PublicKey::from_openssh("ssh-ed25519").is_err());
    assert!(PublicKey::from_openssh("ssh-ed25519 !!!!").is_err());
    assert!(PublicKey::from_openssh("ssh-ed25519 AAAA").is_err());

    // Truncations and bit flips of real key files, decoded and re-armored so the damage is
    // inside the key structure rather than in the PEM framing.
    let mut samples: Vec<(String, Vec<u8>)> = Vec::new();
    let gen = PrivateKey::generate_ed25519(&mut rand_chacha::ChaCha20Rng::from_seed([9; 32]));
    samples.push((
        "OPENSSH PRIVATE KEY".into(),
        pem::parse(&gen.to_openssh().unwrap())
            .unwrap()
            .body
            .to_vec(),
    ));
    let dir = TempDir::new("garbage");
    if have("ssh-keygen") {
        for (i, (ty, bits, fmt, pass)) in [
            ("ed25519", None, None, "pw"),
            ("ecdsa", Some(256), None, ""),
            ("ecdsa", Some(384), Some("PEM"), ""),
            ("ecdsa", Some(521), Some("PKCS8"), ""),
            ("rsa", Some(1024), Some("PEM"), ""),
            ("rsa", Some(1024), None, "pw"),
        ]
        .into_iter()
        .enumerate()
        {
            let path = dir.path(&format!("k{i}"));
            keygen(&path, ty, bits, fmt, pass);
            let text = std::fs::read_to_string(&path).unwrap();
            let pem = pem::parse(&text).unwrap();
            samples.push((pem.label.clone(), pem.body.to_vec()));
            let pk_text = std::fs::read_to_string(path.with_extension("pub")).unwrap();
            let blob = PublicKey::from_openssh(&pk_text).unwrap().to_blob();
            for n in 0..blob.len() {
                assert!(PublicKey::from_blob(&blob[..n]).is_err());
            }
            let mut long = blob.clone();
            long.push(0);
            assert!(PublicKey::from_blob(&long).is_err());
            for _ in 0..200 {
                let mut b = blob.clone();
                let at = rng.next() as usize * b.len() / 256;
                b[at] ^= 1 << (rng.next() % 8);
                let _ = PublicKey::from_blob(&b);
            }
            // Truncated PEM text.
            for n in (0..text.trim_end().len()).step_by(7) {
                assert!(PrivateKey::from_bytes(&text.as_bytes()[..n], Some(b"pw")).is_err());
            }
        }
    }
    for (label, body) in &samples {
        let step = (body.len() / 150).max(1);
        for n in (0..body.len()).step_by(step) {
            let text = armor(label, &body[..n]);
            assert!(
                PrivateKey::from_bytes(text.as_bytes(), Some(b"pw")).is_err(),
                "{label} cut at {n}"
            );
            let _ = PrivateKey::is_encrypted(text.as_bytes());
        }
        for _ in 0..150 {
            let mut b = body.clone();
            let at = (rng.next() as usize * 256 + rng.next() as usize) % b.len();
            b[at] ^= 1 << (rng.next() % 8);
            let text = armor(label, &b);
            // May succeed (e.g. a flipped comment byte) but must not panic. No passphrase: a
            // flipped bcrypt round count could legitimately take a very long time.
            let _ = PrivateKey::from_bytes(text.as_bytes(), None);
            let _ = PrivateKey::is_encrypted(text.as_bytes());
        }
    }
}

#[test]
fn keys_blob_validation() {
    // ed25519 key of the wrong length.
    let mut b = Vec::new();
    b.put_str("ssh-ed25519");
    b.put_string(&[1u8; 31]);
    assert!(PublicKey::from_blob(&b).is_err());
    // ECDSA curve name disagreeing with the type; point not on the curve.
    let sk = p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap();
    let point = sk.verifying_key().to_sec1_point(false);
    let mut good = Vec::new();
    good.put_str("ecdsa-sha2-nistp256");
    good.put_str("nistp256");
    good.put_string(point.as_bytes());
    let pk = PublicKey::from_blob(&good).unwrap();
    assert_eq!(pk.to_blob(), good);
    let mut b = Vec::new();
    b.put_str("ecdsa-sha2-nistp256");
    b.put_str("nistp384");
    b.put_string(point.as_bytes());
    assert!(PublicKey::from_blob(&b).is_err());
    let mut off = point.as_bytes().to_vec();
    off[40] ^= 1;
    let mut b = Vec::new();
    b.put_str("ecdsa-sha2-nistp256");
    b.put_str("nistp256");
    b.put_string(&off);
    assert!(PublicKey::from_blob(&b).is_err());
    // Small RSA modulus, even modulus, zero exponent, unknown type.
    let mut b = Vec::new();
    b.put_str("ssh-rsa");
    b.put_mpint_positive(&[1, 0, 1]);
    b.put_mpint_positive(&[0xc3; 64]);
    assert!(PublicKey::from_blob(&b)
        .unwrap_err()
        .to_string()
        .contains("too small"));
    let mut b = Vec::new();
    b.put_str("ssh-rsa");
    b.put_mpint_positive(&[1, 0, 1]);
    b.put_mpint_positive(&[0xc2; 256]);
    assert!(PublicKey::from_blob(&b).is_err());
    let mut b = Vec::new();
    b.put_str("ssh-rsa");
    b.put_mpint_positive(&[]);
    b.put_mpint_positive(&[0xc3; 256]);
    assert!(PublicKey::from_blob(&b).is_err());
    let mut b = Vec::new();
    b.put_str("ssh-dss");
    b.put_string(&[1; 20]);
    assert!(PublicKey::from_blob(&b)
        .unwrap_err()
        .to_string()
        .contains("unsupported"));
    // Type in the text disagreeing with the blob.
    let line = format!("ssh-ed25519 {}", Base64::encode_string(&good));
    assert!(PublicKey::from_openssh(&line).is_err());
}

// ---------------------------------------------------------------------------
// generated keys, ed25519 PKCS#8, external signature checks
// ---------------------------------------------------------------------------

use rand_core::SeedableRng;

#[test]
fn keys_generate_ed25519_round_trip() {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([1; 32]);
    let mut sk = PrivateKey::generate_ed25519(&mut rng);
    let sk2 = PrivateKey::generate_ed25519(&mut rng);
    assert_ne!(sk.public_key(), sk2.public_key());
    sk.set_comment("me@here");
    let pk = sk.public_key();
    assert_eq!(pk.key_type(), "ssh-ed25519");
    assert_eq!(pk.bits(), 256);
    check_sign_verify(&sk, &pk);
    // Deterministic: same seed, same key.
    let again = PrivateKey::generate_ed25519(&mut rand_chacha::ChaCha20Rng::from_seed([1; 32]));
    assert_eq!(again.public_key(), pk);
    let text = sk.to_openssh().unwrap();
    assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    let back = PrivateKey::from_bytes(text.as_bytes(), None).unwrap();
    assert_eq!(back.public_key(), pk);
    assert_eq!(back.comment(), "me@here");
    assert!(!format!("{back:?}").contains(&text[40..80]));
    if have("ssh-keygen") {
        let dir = TempDir::new("gen");
        let path = dir.path("id");
        write_private(&path, &text);
        assert_eq!(keygen_public_of(&path), pk);
        std::fs::write(dir.path("id.pub"), format!("{} me@here\n", pk.to_openssh())).unwrap();
        assert_eq!(keygen_fingerprint(&dir.path("id.pub")), pk.fingerprint());
    }
}

#[test]
fn keys_pkcs8_ed25519_from_openssl() {
    if !have("openssl") {
        return;
    }
    let dir = TempDir::new("p8ed");
    let path = dir.path("ed.p8");
    run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&path));
    let der = run(Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&path))
    .stdout;
    let sk = PrivateKey::from_bytes(&std::fs::read(&path).unwrap(), None).unwrap();
    let pk = sk.public_key();
    assert_eq!(pk.key_type(), "ssh-ed25519");
    assert_eq!(
        &pk.to_blob()[pk.to_blob().len() - 32..],
        &der[der.len() - 32..]
    );
    check_sign_verify(&sk, &pk);
}

const NAMESPACE: &str = "ssh-proto-test";

/// The data an SSHSIG signature covers (OpenSSH PROTOCOL.sshsig).
fn sshsig_signed_data(hash_alg: &str, message: &[u8]) -> Vec<u8> {
    let h = match hash_alg {
        "sha256" => Sha256::digest(message).to_vec(),
        _ => Sha512::digest(message).to_vec(),
    };
    let mut d = b"SSHSIG".to_vec();
    d.put_str(NAMESPACE);
    d.put_string(b"");
    d.put_str(hash_alg);
    d.put_string(&h);
    d
}

/// Both directions against `ssh-keygen -Y`: signatures we make verify with `ssh-keygen -Y
/// check-novalidate`, and signatures `ssh-keygen -Y sign` makes verify with ours.
#[test]
fn keys_sshsig_cross_check_with_ssh_keygen() {
    if !have("ssh-keygen") {
        return;
    }
    let dir = TempDir::new("sshsig");
    let msg_path = dir.path("message");
    let message = b"the quick brown fox jumps over the lazy dog\n";
    std::fs::write(&msg_path, message).unwrap();
    for (i, &(ty, bits, _, _)) in KEY_TYPES.iter().enumerate() {
        let path = dir.path(&format!("id{i}"));
        keygen(&path, ty, bits, None, "");
        let sk = PrivateKey::from_bytes(&std::fs::read(&path).unwrap(), None).unwrap();
        let pk = sk.public_key();

        // ssh-keygen signs, we verify.
        let _ = std::fs::remove_file(dir.path("message.sig"));
        run(Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", NAMESPACE, "-f"])
            .arg(&path)
            .arg(&msg_path));
        let armored = std::fs::read_to_string(dir.path("message.sig")).unwrap();
        let body = pem::parse(&armored).unwrap().body;
        let mut r = Reader::new(&body);
        assert_eq!(r.bytes(6).unwrap(), b"SSHSIG");
        assert_eq!(r.u32().unwrap(), 1);
        let their_pk = PublicKey::from_blob(r.string().unwrap()).unwrap();
        assert_eq!(their_pk, pk);
        assert_eq!(r.utf8().unwrap(), NAMESPACE);
        r.string().unwrap();
        let hash_alg = r.utf8().unwrap().to_string();
        let sig_blob = r.string().unwrap();
        assert!(r.is_empty());
        let sig_alg = Reader::new(sig_blob).utf8().unwrap().to_string();
        let signed = sshsig_signed_data(&hash_alg, message);
        their_pk
            .verify(&sig_alg, &signed, sig_blob)
            .unwrap_or_else(|e| panic!("{ty}: {e}"));
        assert!(their_pk
            .verify(&sig_alg, &sshsig_signed_data(&hash_alg, b"other"), sig_blob)
            .is_err());

        // We sign, ssh-keygen verifies (SSHSIG forbids plain ssh-rsa/SHA-1). Several messages,
        // so ECDSA r/s values with and without a high bit are both likely to be covered.
        let algs = pk.sig_algorithms().iter().filter(|a| **a != "ssh-rsa");
        for (alg, n) in algs.flat_map(|a| (0..3).map(move |n| (*a, n))) {
            let message = format!("message {n} for {alg}\n");
            check_our_sshsig(&dir, &sk, alg, message.as_bytes());
        }
    }
}

/// Wraps our signature of `message` in SSHSIG and has `ssh-keygen -Y check-novalidate` check it.
fn check_our_sshsig(dir: &TempDir, sk: &PrivateKey, alg: &str, message: &[u8]) {
    let pk = sk.public_key();
    let ty = pk.key_type();
    {
        let our_sig = sk
            .sign(alg, &sshsig_signed_data("sha512", message))
            .unwrap();
        let mut blob = b"SSHSIG".to_vec();
        blob.put_u32(1);
        blob.put_string(&pk.to_blob());
        blob.put_str(NAMESPACE);
        blob.put_string(b"");
        blob.put_str("sha512");
        blob.put_string(&our_sig);
        let sig_path = dir.path("ours.sig");
        std::fs::write(&sig_path, armor("SSH SIGNATURE", &blob)).unwrap();
        let check = |msg: &[u8]| {
            let mut child = Command::new("ssh-keygen")
                .args(["-Y", "check-novalidate", "-n", NAMESPACE, "-s"])
                .arg(&sig_path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(msg).unwrap();
            child.wait_with_output().unwrap()
        };
        let ok = check(message);
        assert!(
            ok.status.success(),
            "{ty}: ssh-keygen rejected our {alg} signature: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(!check(b"tampered message\n").status.success());
    }
}

// ---------------------------------------------------------------------------
// known_hosts
// ---------------------------------------------------------------------------

#[test]
fn keys_known_hosts_lookup() {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed([3; 32]);
    let k: Vec<PublicKey> = (0..6)
        .map(|_| PrivateKey::generate_ed25519(&mut rng).public_key())
        .collect();
    let p256 = {
        let sk = p256::ecdsa::SigningKey::from_slice(&[0x22; 32]).unwrap();
        let mut b = Vec::new();
        b.put_str("ecdsa-sha2-nistp256");
        b.put_str("nistp256");
        b.put_string(sk.verifying_key().to_sec1_point(false).as_bytes());
        PublicKey::from_blob(&b).unwrap()
    };
    let (k1, k2, k3, k4, revoked, ca) = (&k[0], &k[1], &k[2], &k[3], &k[4], &k[5]);
    let text = format!(
        "# a comment\n\
         \n\
         plain.example.com,10.0.0.1 {k1} comment here\n\
         [ported.example.com]:2222 {k2}\n\
         *.wild.example.com,!bad.wild.example.com {k3}\n\
         h?st.example.org {k3}\n\
         hashme.example.com {k4}\n\
         [hashport.example.com]:2200 {k4}\n\
         @revoked * {revoked}\n\
         @cert-authority *.example.com {ca}\n\
         multi.example.com {k1}\n\
         multi.example.com {p256}\n",
        k1 = k1.to_openssh(),
        k2 = k2.to_openssh(),
        k3 = k3.to_openssh(),
        k4 = k4.to_openssh(),
        revoked = revoked.to_openssh(),
        ca = ca.to_openssh(),
        p256 = p256.to_openssh(),
    );
    // Lines ssh-keygen -H would choke on; we must skip them.
    let junk = format!(
        "this line is garbage\n\
         broken.example.com ssh-ed25519 AAAA!!!\n\
         unknown.example.com ssh-foo AAAAB3NzaC1yc2EAAAADAQABAAABAQ\n\
         @bogus-marker x.example.com {k1}\n",
        k1 = k1.to_openssh()
    );
    let mut files = vec![("plain", format!("{junk}{text}"))];
    if have("ssh-keygen") {
        let dir = TempDir::new("kh");
        let path = dir.path("known_hosts");
        std::fs::write(&path, &text).unwrap();
        run(Command::new("ssh-keygen").arg("-H").arg("-f").arg(&path));
        let hashed = std::fs::read_to_string(&path).unwrap();
        assert!(hashed.contains("|1|") && !hashed.contains("hashme"));
        files.push(("hashed", format!("{hashed}{junk}")));
    }
    use HostKeyStatus::*;
    for (what, text) in &files {
        let kh = KnownHosts::parse(text);
        let c = |host: &str, port: u16, key: &PublicKey| kh.check(host, port, key);
        assert_eq!(c("plain.example.com", 22, k1), Match, "{what}");
        assert_eq!(c("PLAIN.Example.com", 22, k1), Match, "{what}");
        assert_eq!(c("10.0.0.1", 22, k1), Match, "{what}");
        assert_eq!(c("plain.example.com", 22, k2), Mismatch, "{what}");
        // Another port: with no `[host]:port` entry the bare name's entries are tried, as
        // OpenSSH's "checking without port identifier" (a different key there is no
        // mismatch, only unknown); a `[host]:port` entry stops the fallback.
        assert_eq!(c("plain.example.com", 2222, k1), Match, "{what}");
        assert_eq!(c("plain.example.com", 2222, k2), NotFound, "{what}");
        assert_eq!(c("ported.example.com", 2222, k1), Mismatch, "{what}");
        assert_eq!(c("ported.example.com", 2222, k2), Match, "{what}");
        assert_eq!(c("ported.example.com", 22, k2), NotFound, "{what}");
        assert_eq!(c("ported.example.com", 2223, k2), NotFound, "{what}");
        assert_eq!(c("a.wild.example.com", 22, k3), Match, "{what}");
        assert_eq!(c("a.b.wild.example.com", 22, k1), Mismatch, "{what}");
        assert_eq!(c("bad.wild.example.com", 22, k3), NotFound, "{what}");
        assert_eq!(c("wild.example.com", 22, k3), NotFound, "{what}");
        assert_eq!(c("host.example.org", 22, k3), Match, "{what}");
        assert_eq!(c("hoost.example.org", 22, k3), NotFound, "{what}");
        assert_eq!(c("hashme.example.com", 22, k4), Match, "{what}");
        assert_eq!(c("hashme.example.com", 22, k1), Mismatch, "{what}");
        assert_eq!(c("hashport.example.com", 2200, k4), Match, "{what}");
        assert_eq!(c("hashport.example.com", 22, k4), NotFound, "{what}");
        // @revoked applies to every host its pattern matches and beats a match.
        assert_eq!(c("plain.example.com", 22, revoked), Revoked, "{what}");
        assert_eq!(c("nowhere.test", 22, revoked), Revoked, "{what}");
        assert_eq!(c("nowhere.test", 2022, revoked), Revoked, "{what}");
        // @cert-authority keys are not host keys.
        assert_eq!(c("ca.example.com", 22, ca), NotFound, "{what}");
        assert_eq!(c("plain.example.com", 22, ca), Mismatch, "{what}");
        // Malformed lines and unknown markers/types are skipped.
        assert_eq!(c("broken.example.com", 22, k1), NotFound, "{what}");
        assert_eq!(c("unknown.example.com", 22, k1), NotFound, "{what}");
        assert_eq!(c("x.example.com", 22, k1), NotFound, "{what}");
        // Several keys of different types for one host.
        assert_eq!(c("multi.example.com", 22, k1), Match, "{what}");
        assert_eq!(c("multi.example.com", 22, &p256), Match, "{what}");
        assert_eq!(c("multi.example.com", 22, k2), Mismatch, "{what}");
        assert_eq!(
            kh.known_key_types("multi.example.com", 22),
            vec!["ssh-ed25519", "ecdsa-sha2-nistp256"],
            "{what}"
        );
        assert_eq!(kh.known_key_types("nowhere.test", 22), Vec::<&str>::new());
        assert_eq!(c("nowhere.test", 22, k1), NotFound, "{what}");
    }

    // Appending an accept-new line makes the key known.
    let line = known_hosts_line("New.Example.com", 2222, k2);
    assert_eq!(line, format!("[new.example.com]:2222 {}", k2.to_openssh()));
    assert_eq!(
        known_hosts_line("h", 22, k2),
        format!("h {}", k2.to_openssh())
    );
    let kh = KnownHosts::parse(&format!("{text}{line}\n"));
    assert_eq!(kh.check("new.example.com", 2222, k2), Match);
    assert_eq!(kh.check("new.example.com", 22, k2), NotFound);

    // Cross-check a lookup with ssh-keygen -F on the same file.
    if have("ssh-keygen") {
        let dir = TempDir::new("kh2");
        let path = dir.path("known_hosts");
        std::fs::write(&path, format!("{text}{line}\n")).unwrap();
        let out = run(Command::new("ssh-keygen")
            .args(["-F", "[new.example.com]:2222", "-f"])
            .arg(&path));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&k2.to_openssh()));
    }
}

#[test]
fn keys_known_hosts_garbage_never_panics() {
    let mut rng = Lcg(99);
    for n in 0..300 {
        let bytes = rng.bytes(n);
        let text = String::from_utf8_lossy(&bytes);
        let kh = KnownHosts::parse(&text);
        let _ = kh.known_key_types("x", 22);
    }
    let kh = KnownHosts::parse(
        "|1|AAAA|BBBB ssh-ed25519 AAAA\n|1|| x\n|1|%%|%% a b\n@revoked\n@revoked x\n",
    );
    assert!(kh.is_empty());
}

/// Every cipher ssh-keygen can protect a key with (`-Z`).
#[test]
fn keys_encrypted_openssh_all_ciphers() {
    if !have("ssh-keygen") {
        return;
    }
    let dir = TempDir::new("ciphers");
    let out = run(Command::new("ssh").args(["-Q", "cipher"]));
    let ciphers: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    assert!(ciphers.iter().any(|c| c == "aes256-ctr"));
    let mut unsupported = Vec::new();
    for (i, cipher) in ciphers.iter().enumerate() {
        let path = dir.path(&format!("id{i}"));
        run(Command::new("ssh-keygen")
            .args([
                "-q", "-t", "ed25519", "-a", "4", "-N", "pw", "-C", "c", "-Z", cipher, "-f",
            ])
            .arg(&path));
        let data = std::fs::read(&path).unwrap();
        let pk =
            PublicKey::from_openssh(&std::fs::read_to_string(path.with_extension("pub")).unwrap())
                .unwrap();
        assert!(PrivateKey::is_encrypted(&data), "{cipher}");
        let e = PrivateKey::from_bytes(&data, None).unwrap_err();
        assert!(
            e.to_string().contains("passphrase required"),
            "{cipher}: {e}"
        );
        match PrivateKey::from_bytes(&data, Some(b"pw")) {
            Ok(sk) => {
                assert_eq!(sk.public_key(), pk, "{cipher}");
                let e = PrivateKey::from_bytes(&data, Some(b"wrong")).unwrap_err();
                assert!(e.to_string().contains("wrong passphrase"), "{cipher}: {e}");
            }
            Err(e) => {
                assert!(e.to_string().contains("unsupported"), "{cipher}: {e}");
                unsupported.push(cipher.clone());
            }
        }
    }
    // Only the legacy 3DES cipher may be missing.
    assert!(
        unsupported.iter().all(|c| c == "3des-cbc"),
        "unsupported: {unsupported:?}"
    );
}

// ---------------------------------------------------------------------------
// ECDSA keys whose private scalar OpenSSH writes short (top byte zero)
// ---------------------------------------------------------------------------

/// `ssh-keygen -t ecdsa` wrote this key with a 31-byte scalar mpint (about one
/// P-256 key in 256 is like this); the encrypted copies were made from it with
/// `ssh-keygen -p -Z CIPHER`, passphrase "correct horse".
const SHORT_SCALAR_FILES: &[(&str, &str, bool)] = &[
    ("none", include_str!("testdata/short256"), false),
    (
        "aes256-ctr",
        include_str!("testdata/short256-aes256-ctr"),
        true,
    ),
    (
        "aes256-gcm",
        include_str!("testdata/short256-aes256-gcm"),
        true,
    ),
    (
        "chacha20-poly1305",
        include_str!("testdata/short256-chacha20-poly1305"),
        true,
    ),
    (
        "aes128-cbc",
        include_str!("testdata/short256-aes128-cbc"),
        true,
    ),
];

#[test]
fn ecdsa_key_with_short_scalar_loads_in_every_encryption() {
    let pk = PublicKey::from_openssh(include_str!("testdata/short256.pub")).unwrap();
    for &(cipher, text, encrypted) in SHORT_SCALAR_FILES {
        assert_eq!(
            PrivateKey::is_encrypted(text.as_bytes()),
            encrypted,
            "{cipher}"
        );
        let pass: Option<&[u8]> = encrypted.then_some(b"correct horse");
        let sk = PrivateKey::from_bytes(text.as_bytes(), pass)
            .unwrap_or_else(|e| panic!("{cipher}: {e}"));
        assert_eq!(sk.public_key(), pk, "{cipher}");
        assert_eq!(sk.comment(), "short scalar", "{cipher}");
        check_sign_verify(&sk, &pk);
        // Written back (full-width scalar) and read again: the same key.
        let again = PrivateKey::from_bytes(sk.to_openssh().unwrap().as_bytes(), None).unwrap();
        assert_eq!(again.public_key(), pk, "{cipher}");
        if encrypted {
            let e = PrivateKey::from_bytes(text.as_bytes(), Some(b"wrong horse")).unwrap_err();
            assert!(e.to_string().contains("wrong passphrase"), "{cipher}: {e}");
            let e = PrivateKey::from_bytes(text.as_bytes(), None).unwrap_err();
            assert!(
                e.to_string().contains("passphrase required"),
                "{cipher}: {e}"
            );
        }
    }
}

#[test]
fn ecdsa_keys_from_ssh_keygen_all_load() {
    // Enough fresh P-256 keys that a short scalar (probability 1/256 each)
    // turns up in most runs, P-384 and P-521 alongside; every one must load.
    have("ssh-keygen");
    let dir = TempDir::new("ecdsa-many");
    for (bits, count) in [(256, 400), (384, 40), (521, 40)] {
        for i in 0..count {
            let path = dir.path(&format!("k{bits}-{i}"));
            keygen(&path, "ecdsa", Some(bits), None, "");
            let data = std::fs::read(&path).unwrap();
            let pk = PublicKey::from_openssh(
                &std::fs::read_to_string(path.with_extension("pub")).unwrap(),
            )
            .unwrap();
            let sk = PrivateKey::from_bytes(&data, None)
                .unwrap_or_else(|e| panic!("ecdsa {bits} key {i}: {e}"));
            assert_eq!(sk.public_key(), pk);
        }
    }
}
