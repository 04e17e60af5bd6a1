//! Unit tests of `authorized_keys` parsing and matching.

use super::from::{parse_cidr, CidrEntry};
use super::*;

const ED25519_LINE: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILcdzvjQPD5JVjZx1+WkztID8MU9mAjvGMAHiU8LJx9d alice@laptop";
const ECDSA_LINE: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBO8rBy/qve2QjHx6vtD08FZqhbONmn+xXnyj79cPVvWag/VHmfAprh9oBtihwF3OcvSUB798cnk3ushN61YuWLU= bob@host";
const RSA_LINE: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDAENb6d9aAsXhZYE9UgmVXpSg/sZW43vq8sZeCO/WhBZutCdAacK4NlzuX6D87UHCdiRNQRQ80JGj4kuBYmSIwpgEDKFiG64l08ZIxuGv5WMtVFVcxUGgLGvR8nR05yic+ts7G0vlcpmERkGchloxmAJN39LMvuyqCX5EhNtRSpN6HWy3sZv4byDXWZe9yc8u4eS5/nses4o7uvcdhAbPkMqB9ZwFmkTGIkLvBNRDoNSR7AeYKgEoz9zRLHGdiAnQsU8ZPDIehMAXwd1lzPGx5WEu2fvtcH1em7NVHhFTZnx8q7he710XJyFuaEnRJSl0ir9kpKg4NB1jPfgj7eP8j carol rsa key";

fn key(line: &str) -> PublicKey {
    PublicKey::from_openssh(line).unwrap()
}

/// The key part of a test line, without its comment.
fn bare(line: &str) -> String {
    key(line).to_openssh()
}

fn one(line: &str) -> AuthorizedKey {
    let ak = AuthorizedKeys::parse(line);
    assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
    assert_eq!(ak.keys.len(), 1);
    ak.keys.into_iter().next().unwrap()
}

fn opts(options: &str) -> KeyOptions {
    one(&format!("{options} {ED25519_LINE}")).options
}

fn parse_err(options: &str) -> String {
    let ak = AuthorizedKeys::parse(&format!("{options} {ED25519_LINE}"));
    assert!(ak.keys.is_empty(), "{options} should be rejected");
    assert_eq!(ak.warnings.len(), 1);
    ak.warnings[0].clone()
}

#[test]
fn authorized_keys_plain_lines() {
    let text = format!(
        "# my keys\n\n{ED25519_LINE}\n   \n{ECDSA_LINE}\n\t{RSA_LINE}  \n{}\n",
        bare(ED25519_LINE)
    );
    let ak = AuthorizedKeys::parse(&text);
    assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
    assert_eq!(ak.len(), 4);
    assert_eq!(ak.keys[0].comment, "alice@laptop");
    assert_eq!(ak.keys[1].comment, "bob@host");
    assert_eq!(ak.keys[2].comment, "carol rsa key");
    assert_eq!(ak.keys[3].comment, "");
    assert_eq!(ak.keys[2].key.key_type(), "ssh-rsa");
    assert_eq!(ak.keys[1].key.key_type(), "ecdsa-sha2-nistp256");
    for line in [ED25519_LINE, ECDSA_LINE, RSA_LINE] {
        let found = ak.find(&key(line)).unwrap();
        assert_eq!(found.key, key(line));
        assert_eq!(found.options, KeyOptions::default());
    }
    assert_eq!(ak.find_all(&key(ED25519_LINE)).count(), 2);
    let other = AuthorizedKeys::parse(ECDSA_LINE);
    assert!(other.find(&key(ED25519_LINE)).is_none());
    assert!(AuthorizedKeys::parse("").is_empty());
}

#[test]
fn authorized_keys_comment_with_spaces_and_tabs() {
    let k = one(&format!("{}  \t my  laptop\tkey  ", bare(RSA_LINE)));
    assert_eq!(k.comment, "my  laptop\tkey");
    let k = one(&format!("no-pty {}   a b c", bare(ECDSA_LINE)));
    assert_eq!(k.comment, "a b c");
    assert!(k.options.no_pty);
}

#[test]
fn authorized_keys_crlf_line_endings() {
    let text =
        format!("# comment\r\n\r\n{ED25519_LINE}\r\ncommand=\"ls\" {ECDSA_LINE}\r\n{RSA_LINE}\r\n");
    let ak = AuthorizedKeys::parse(&text);
    assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
    assert_eq!(ak.len(), 3);
    assert_eq!(ak.keys[0].comment, "alice@laptop");
    assert_eq!(ak.keys[1].options.command.as_deref(), Some("ls"));
    assert_eq!(ak.keys[2].comment, "carol rsa key");
}

#[test]
fn authorized_keys_quoted_options() {
    let o = opts(
        r#"command="echo \"hi, there\"; ls -l",environment="FOO=bar baz",environment="X_1=a=b",no-pty"#,
    );
    assert_eq!(o.command.as_deref(), Some(r#"echo "hi, there"; ls -l"#));
    assert_eq!(
        o.environment,
        vec![
            ("FOO".to_string(), "bar baz".to_string()),
            ("X_1".to_string(), "a=b".to_string())
        ]
    );
    assert!(o.no_pty);
    assert!(!o.no_port_forwarding && !o.restrict);

    // Only \" is an escape; other backslashes stay.
    let o = opts(r#"command="a\b\\c \"q\"""#);
    assert_eq!(o.command.as_deref(), Some(r#"a\b\\c "q""#));

    // First environment value for a name wins, as in sshd.
    let o = opts(r#"environment="A=1",environment="A=2""#);
    assert_eq!(o.environment, vec![("A".to_string(), "1".to_string())]);

    let o = opts(r#"from="*.example.com,!bad.example.com""#);
    assert_eq!(o.from.as_deref(), Some("*.example.com,!bad.example.com"));

    let o = opts(
        r#"permitopen="localhost:8080",permitopen="[::1]:*",permitlisten="2222",permitlisten="0.0.0.0:80""#,
    );
    assert_eq!(o.permitopen, vec!["localhost:8080", "[::1]:*"]);
    assert_eq!(o.permitlisten, vec!["*:2222", "0.0.0.0:80"]);

    let o = opts(r#"expiry-time="20991231",expiry-time="203001011200Z",expiry-time="20400101""#);
    assert_eq!(o.expiry_times.len(), 3);
    assert_eq!(o.expiry_times[1].to_string(), "2030-01-01T12:00:00 UTC");
    assert_eq!(o.expiry_times[2].to_string(), "2040-01-01T00:00:00");

    // Security-key options have no effect on the key types kept (see the module docs).
    let o = opts("no-touch-required,verify-required,touch-required");
    assert_eq!(o, KeyOptions::default());
}

#[test]
fn authorized_keys_option_names_case_insensitive() {
    let o = opts(r#"NO-PTY,Command="x",No-Port-Forwarding,FROM="10.0.0.0/8""#);
    assert!(o.no_pty && o.no_port_forwarding);
    assert_eq!(o.command.as_deref(), Some("x"));
    assert_eq!(o.from.as_deref(), Some("10.0.0.0/8"));
}

#[test]
fn authorized_keys_restrict_and_reenable() {
    let o = opts("restrict");
    assert!(o.restrict);
    assert!(o.no_pty && o.no_port_forwarding && o.no_agent_forwarding);
    assert!(o.no_x11_forwarding && o.no_user_rc);

    let o = opts("restrict,pty");
    assert!(o.restrict && !o.no_pty);
    assert!(o.no_port_forwarding && o.no_agent_forwarding && o.no_x11_forwarding);
    assert!(o.no_user_rc);

    let o = opts("restrict,port-forwarding,agent-forwarding,x11-forwarding,user-rc,pty");
    assert!(o.restrict);
    assert!(!o.no_pty && !o.no_port_forwarding && !o.no_agent_forwarding);
    assert!(!o.no_x11_forwarding && !o.no_user_rc);

    // Order matters: a later restrict wins.
    let o = opts("pty,restrict");
    assert!(o.no_pty);
    let o = opts("no-agent-forwarding,no-x11-forwarding,no-user-rc");
    assert!(o.no_agent_forwarding && o.no_x11_forwarding && o.no_user_rc);
    assert!(!o.no_pty && !o.restrict);
}

#[test]
fn authorized_keys_options_that_cannot_be_honoured_refuse_the_line() {
    for (options, reason) in [
        ("cert-authority", "option cert-authority is not supported"),
        (
            r#"cert-authority,principals="alice""#,
            "option cert-authority is not supported",
        ),
        (
            r#"principals="alice""#,
            "option principals is not supported",
        ),
        (
            "no-pty,CERT-AUTHORITY",
            "option cert-authority is not supported",
        ),
        (r#"tunnel="0""#, "option tunnel is not supported"),
        (r#"tunnel="any""#, "option tunnel is not supported"),
    ] {
        let w = parse_err(options);
        assert!(w.contains(reason), "{options}: {w}");
    }
    // The key's other lines still count.
    let ak = AuthorizedKeys::parse(&format!(
        "cert-authority {ED25519_LINE}\nno-pty {ED25519_LINE}"
    ));
    assert_eq!(ak.len(), 1);
    assert_eq!(ak.warnings.len(), 1);
    assert!(ak.find(&key(ED25519_LINE)).unwrap().options.no_pty);
}

#[test]
fn authorized_keys_expiry_times() {
    let e = ExpiryTime::parse("20300101").unwrap();
    assert_eq!(e.unix_time(0), 1_893_456_000);
    // Local time one hour east of UTC: an hour earlier in UTC.
    assert_eq!(e.unix_time(3600), 1_893_456_000 - 3600);
    let e = ExpiryTime::parse("203001012359utc").unwrap();
    assert!(e.utc);
    assert_eq!(e.unix_time(3600), 1_893_456_000 + 23 * 3600 + 59 * 60);
    assert_eq!(
        ExpiryTime::parse("20240229123456Z").unwrap().unix_time(0),
        1_709_210_096
    );
    assert_eq!(ExpiryTime::parse("19700102").unwrap().unix_time(0), 86_400);
    for bad in [
        "20300101246000",
        "Z",
        "é",
        "2030",
        "203001011",
        "20301301",
        "19691231",
        "2030010a",
    ] {
        assert!(ExpiryTime::parse(bad).is_none(), "{bad}");
    }

    // Expired strictly after the time, as in sshd; local times use the caller's offset.
    let o = opts(r#"expiry-time="203001010000Z""#);
    let t = 1_893_456_000;
    assert!(!o.is_expired(t, |_| panic!("not a local time")));
    assert!(o.is_expired(t + 1, |_| 0));
    let o = opts(r#"expiry-time="203001010100""#);
    assert!(!o.is_expired(t, |_| 0));
    assert!(o.is_expired(t + 1, |_| 3600));
    // Any of several expiry times.
    let o = opts(r#"expiry-time="20991231",expiry-time="20200101Z""#);
    assert!(o.is_expired(t, |_| 0));
    assert!(!KeyOptions::default().is_expired(i64::MAX, |_| 0));
}

#[test]
fn authorized_keys_authorize_tries_each_line_like_sshd() {
    let k = key(ED25519_LINE);
    let now = 1_893_456_000; // 2030-01-01T00:00:00Z
    let text = format!(
        "expiry-time=\"20291231Z\" {ED25519_LINE}\nfrom=\"10.0.0.1\" {ED25519_LINE}\ncommand=\"ok\",expiry-time=\"20300102\" {ED25519_LINE}\n"
    );
    let ak = AuthorizedKeys::parse(&text);
    let found = ak.authorize(&k, "127.0.0.1", None, now, |_| 0).unwrap();
    assert_eq!(found.options.command.as_deref(), Some("ok"));
    // A day later the last line has expired too: every refusal is reported.
    let refused = ak
        .authorize(&k, "127.0.0.1", None, now + 2 * 86_400, |_| 0)
        .unwrap_err();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused[0].contains("expired at 2029-12-31T00:00:00 UTC"),
        "{refused:?}"
    );
    assert!(
        refused[1].contains("not allowed from 127.0.0.1"),
        "{refused:?}"
    );
    assert!(
        refused[2].contains("expired at 2030-01-02T00:00:00"),
        "{refused:?}"
    );
    // from= 10.0.0.1 lets that address in.
    assert!(ak
        .authorize(&k, "10.0.0.1", None, now + 2 * 86_400, |_| 0)
        .is_ok());
    // An unknown key: nothing to report.
    let other = AuthorizedKeys::parse(ECDSA_LINE);
    assert_eq!(
        other
            .authorize(&k, "127.0.0.1", None, now, |_| 0)
            .unwrap_err()
            .len(),
        0
    );
}

#[test]
fn authorized_keys_from_patterns() {
    assert!(KeyOptions::default().from_allows("203.0.113.9", None));

    let o = opts(r#"from="!10.0.0.5,10.0.0.0/8,*.example.com,::1/128,192.168.1.*""#);
    assert!(o.from_allows("10.1.2.3", None));
    assert!(o.from_allows("10.1.2.3", Some("whatever.org")));
    assert!(!o.from_allows("10.0.0.5", None));
    assert!(!o.from_allows("10.0.0.5", Some("a.example.com")));
    assert!(o.from_allows("198.51.100.7", Some("host.example.com")));
    assert!(o.from_allows("198.51.100.7", Some("HOST.Example.COM")));
    assert!(!o.from_allows("198.51.100.7", Some("evil.org")));
    assert!(!o.from_allows("198.51.100.7", None));
    assert!(o.from_allows("::1", None));
    assert!(!o.from_allows("::2", None));
    assert!(o.from_allows("192.168.1.77", None));
    assert!(!o.from_allows("192.168.2.77", None));
    // IPv4-mapped IPv6 is the IPv4 address.
    assert!(o.from_allows("::ffff:10.9.9.9", None));
    assert!(!o.from_allows("::ffff:10.0.0.5", None));
    assert!(!o.from_allows("not an address", None));

    // A negated host name denies even when the address matches.
    let o = opts(r#"from="10.0.0.0/8,*.example.com,!bad.example.com""#);
    assert!(!o.from_allows("10.1.1.1", Some("bad.example.com")));
    assert!(!o.from_allows("198.51.100.7", Some("BAD.example.com")));
    assert!(o.from_allows("198.51.100.7", Some("good.example.com")));
    assert!(o.from_allows("10.1.1.1", Some("elsewhere.net")));

    // Only negations: nothing is allowed.
    let o = opts(r#"from="!10.0.0.1""#);
    assert!(!o.from_allows("10.0.0.2", None));

    // IPv6 networks and exact addresses.
    let o = opts(r#"from="2001:db8::/32,fe80::1""#);
    assert!(o.from_allows("2001:db8:1::42", None));
    assert!(o.from_allows("fe80::1", None));
    assert!(!o.from_allows("2001:db9::1", None));
    assert!(!o.from_allows("10.0.0.1", None));
    let o = opts(r#"from="0.0.0.0/0""#);
    assert!(o.from_allows("203.0.113.1", None));
    assert!(!o.from_allows("::1", None));

    // Host bits set in a CIDR entry, or an empty entry, make the list deny (sshd).
    let o = opts(r#"from="10.0.0.1/8,*""#);
    assert!(!o.from_allows("10.0.0.1", None));
    let o = opts(r#"from="10.0.0.0/33""#);
    assert!(!o.from_allows("10.0.0.1", None));
    let o = opts(r#"from="*,""#);
    assert!(!o.from_allows("10.0.0.1", Some("h")));
    // A mask that is not a number is a plain pattern, which matches nothing here.
    let o = opts(r#"from="10.0.0.0/x""#);
    assert!(!o.from_allows("10.0.0.1", None));
}

#[test]
fn authorized_keys_rejected_options() {
    for (options, reason) in [
        ("bogus-option", "unknown key option"),
        ("no-pty,", "end with a comma"),
        ("no-pty,,pty", "unknown key option"),
        (r#"command=ls"#, "double quotes"),
        (r#"command="a"x"#, "unexpected text"),
        (r#"command="a",command="b""#, "multiple"),
        (r#"from="a",from="b""#, "multiple"),
        (r#"pty="yes""#, "takes no value"),
        ("command", "needs a quoted value"),
        (r#"environment="NOEQUALS""#, "invalid environment"),
        (
            r#"environment="1-BAD=x""#,
            "invalid environment variable name",
        ),
        (r#"environment="=x""#, "invalid environment variable name"),
        (r#"permitopen="host""#, "no port"),
        (r#"permitopen="host:0""#, "invalid permission port"),
        (r#"permitopen="host:65536""#, "invalid permission port"),
        (r#"permitopen="[::1:22""#, "invalid permission host"),
        (r#"permitlisten="abc""#, "invalid permission port"),
        (r#"expiry-time="2030""#, "invalid expiry-time"),
        (r#"expiry-time="20301301""#, "invalid expiry-time"),
        (r#"tunnel="x""#, "invalid tunnel"),
        (r#"command="unterminated"#, "unterminated quote"),
    ] {
        let w = parse_err(options);
        assert!(w.starts_with("line 1: "), "{w}");
        assert!(w.contains(reason), "{options}: {w}");
    }
}

#[test]
fn authorized_keys_garbage_lines_are_skipped() {
    let long = "x".repeat(1_000_000);
    let quotes = "\"".repeat(100_001);
    let long_option = format!("command=\"{}\" {}", "y".repeat(200_000), ED25519_LINE);
    let lines: Vec<String> = vec![
        ED25519_LINE.into(),                                               // 1 ok
        "garbage".into(),                                                  // 2
        "ssh-ed25519 !!!not-base64!!! c".into(),                           // 3
        "ssh-ed25519".into(),                                              // 4
        format!("ssh-rsa {}", &bare(ED25519_LINE)[12..]),                  // 5 type mismatch
        "ssh-dss AAAAB3NzaC1kc3MAAACBAP comment".into(),                   // 6
        "no-pty".into(),                                                   // 7
        "no-pty   ".into(),                                                // 8 (trimmed: same as 7)
        format!("command=\"unterminated {ED25519_LINE}"),                  // 9
        format!("bogus {ECDSA_LINE}"),                                     // 10
        long.clone(),                                                      // 11
        quotes,                                                            // 12
        "\u{0}\u{1}\u{7f} ssh-ed25519 AAAA".into(),                        // 13
        "ключ ssh-ed25519 AAAAC3Nza".into(),                               // 14
        format!("command=\"é\\\" {ED25519_LINE}"),                         // 15 unterminated
        "\\\"\\\"\\".into(),                                               // 16
        format!("no-pty unknown-type-name {}", &bare(ED25519_LINE)[12..]), // 17
        format!("{long} {RSA_LINE}"),                                      // 18
        long_option,                                                       // 19 ok
        RSA_LINE.into(),                                                   // 20 ok
    ];
    let ak = AuthorizedKeys::parse(&lines.join("\n"));
    assert_eq!(ak.len(), 3, "{:?}", ak.warnings);
    assert_eq!(
        ak.keys[1].options.command.as_ref().map(String::len),
        Some(200_000)
    );
    assert_eq!(ak.keys[2].comment, "carol rsa key");
    let numbers: Vec<usize> = ak
        .warnings
        .iter()
        .map(|w| {
            assert!(w.len() < 300, "warning too long: {} bytes", w.len());
            w.strip_prefix("line ")
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(numbers, (2..=18).collect::<Vec<_>>(), "{:?}", ak.warnings);
    assert!(
        ak.warnings[4].contains("unsupported key type ssh-dss"),
        "{}",
        ak.warnings[4]
    );
    assert!(
        ak.warnings[15].contains("unknown key type"),
        "{}",
        ak.warnings[15]
    );
}

#[test]
fn authorized_keys_pseudo_random_input_never_panics() {
    const PIECES: &[&str] = &[
        "\"",
        "\\",
        "\\\"",
        ",",
        "=",
        " ",
        "\t",
        "\r",
        "\n",
        "#",
        "!",
        "*",
        "no-pty",
        "command",
        "from",
        "environment",
        "restrict",
        "pty",
        "permitopen",
        "expiry-time",
        "ssh-ed25519",
        "ssh-rsa",
        "AAAA",
        "AAAAC3NzaC1lZDI1NTE5",
        ":",
        "[",
        "]",
        "é",
        "0",
        "/",
        "\u{0}",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let n = (next() % 40) as usize;
        let mut text = String::new();
        for _ in 0..n {
            text.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
        }
        // Sometimes follow random options with a real key.
        if next() % 3 == 0 {
            text.push(' ');
            text.push_str(ED25519_LINE);
        }
        let ak = AuthorizedKeys::parse(&text);
        for k in &ak.keys {
            let _ = k.options.from_allows("10.0.0.1", Some("h.example.com"));
            let _ = k.options.from_allows("::1", None);
        }
    }
}

#[test]
fn authorized_keys_cidr_helpers() {
    assert!(matches!(parse_cidr("10.0.0.0/8"), CidrEntry::Net(_, 8)));
    assert!(matches!(parse_cidr("10.0.0.1"), CidrEntry::Net(_, 32)));
    assert!(matches!(parse_cidr("::1/128"), CidrEntry::Net(_, 128)));
    assert!(matches!(parse_cidr("::/0"), CidrEntry::Net(_, 0)));
    assert!(matches!(parse_cidr("10.0.0.1/8"), CidrEntry::Invalid));
    assert!(matches!(parse_cidr("10.0.0.0/40"), CidrEntry::Invalid));
    assert!(matches!(parse_cidr("10.0.0.0/129"), CidrEntry::NotAddress));
    assert!(matches!(parse_cidr("10.0.0.*"), CidrEntry::NotAddress));
    assert!(matches!(parse_cidr("10.0.0.0/"), CidrEntry::NotAddress));
    assert!(matches!(parse_cidr("host/8"), CidrEntry::NotAddress));
}
