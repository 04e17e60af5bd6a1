//! Option parsing shared by the examples (OpenSSH `-o Key=Value` syntax).

#![allow(dead_code)]

pub mod config;
pub mod connect;
pub mod forward;
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

/// Diagnostics on stderr at ssh's `-v` levels: `quiet` and above without
/// `-v` (warnings for the clients, as ssh's default; connections and
/// logins for the server, as sshd's); `-v` (ssh's debug1) the library's debug events: version lines,
/// both algorithm lists and the choice, each auth method tried and its
/// answer, channel opens, requests and closes, rekeys; `-vv` (debug2) the
/// same with the connection and channel spans' opening and closing and
/// each event's source; `-vvv` (debug3) every packet at trace level.
pub fn init_tracing(verbosity: u8, quiet: tracing::Level) {
    use tracing_subscriber::fmt::format::FmtSpan;
    let level = match verbosity {
        0 => quiet,
        1 | 2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let spans = if verbosity >= 2 {
        FmtSpan::NEW | FmtSpan::CLOSE
    } else {
        FmtSpan::NONE
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_span_events(spans)
        .with_target(verbosity >= 2)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// `-v`, `-vv`, `-vvv`: the number of `v`s, if `arg` is one of them.
pub fn verbosity_flag(arg: &str) -> Option<u8> {
    let vs = arg.strip_prefix('-')?;
    (!vs.is_empty() && vs.len() <= 3 && vs.bytes().all(|b| b == b'v')).then_some(vs.len() as u8)
}
