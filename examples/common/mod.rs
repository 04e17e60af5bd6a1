//! Option parsing shared by the examples (OpenSSH `-o Key=Value` syntax).

#![allow(dead_code)]

pub mod connect;
pub mod runtime;
pub mod sys;

use std::time::Duration;

use ssh_blocking::proto::{Algorithms, Config};
use ssh_blocking::Error;

/// `1G`, `512M`, `64K` or plain bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 1u64 << 10),
        'M' | 'm' => (&s[..s.len() - 1], 1 << 20),
        'G' | 'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().and_then(|n| n.checked_mul(mult))
}

/// sshd_config(5) time format: `30`, `30s`, `10m`, `1h`, `1d`.
pub fn parse_time(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        's' | 'S' => (&s[..s.len() - 1], 1u64),
        'm' | 'M' => (&s[..s.len() - 1], 60),
        'h' | 'H' => (&s[..s.len() - 1], 3600),
        'd' | 'D' => (&s[..s.len() - 1], 86400),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .map(Duration::from_secs)
}

pub fn yes(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "yes" | "true" | "on" | "delayed"
    )
}

/// Splits `Key=Value` or `Key Value` into a lower-case key and the value.
pub fn split_option(kv: &str) -> Result<(String, String), Error> {
    let kv = kv.trim();
    let (k, v) = match kv.split_once('=') {
        Some((k, v)) => (k, v),
        None => kv
            .split_once(char::is_whitespace)
            .ok_or_else(|| Error::usage(format!("option {kv:?} has no value")))?,
    };
    Ok((k.trim().to_ascii_lowercase(), v.trim().to_string()))
}

/// Applies the options every peer shares: algorithm lists and RekeyLimit.
/// Returns false when `key` is none of them.
fn list(l: &[String]) -> Vec<&str> {
    l.iter().map(String::as_str).collect()
}

pub fn apply_transport_option(config: &mut Config, key: &str, v: &str) -> Result<bool, Error> {
    let all = Algorithms::all();
    let a = &mut config.transport.algorithms;
    match key {
        "kexalgorithms" => Algorithms::apply(&mut a.kex, v, &list(&all.kex), "key exchange")?,
        "hostkeyalgorithms" => {
            Algorithms::apply(&mut a.host_key, v, &list(&all.host_key), "host key")?
        }
        "ciphers" => Algorithms::apply(&mut a.cipher, v, &list(&all.cipher), "cipher")?,
        "macs" => Algorithms::apply(&mut a.mac, v, &list(&all.mac), "MAC")?,
        "rekeylimit" => {
            let mut parts = v.split_whitespace();
            if let Some(sz) = parts.next() {
                if sz != "default" && sz != "none" {
                    config.transport.rekey_bytes = Some(
                        parse_size(sz)
                            .ok_or_else(|| Error::usage(format!("bad RekeyLimit {v:?}")))?,
                    );
                }
            }
            if let Some(t) = parts.next() {
                if t != "none" {
                    config.transport.rekey_time = parse_time(t);
                }
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}
