//! Which new connections a server admits, as OpenSSH's sshd decides it.
//!
//! An [`Admission`] counts the connections that have not authenticated
//! yet ("startups") and, when a new TCP connection arrives, says whether
//! to serve it or drop it:
//!
//! - **`MaxStartups start:rate:full`** (default `10:30:100`): below
//!   `start` unauthenticated connections every new one is served; from
//!   `start` on, a new one is refused with probability `rate`% rising
//!   linearly to 100% at `full`; at `full` and beyond every one is refused.
//!   The arithmetic is sshd's `should_drop_connection` (integer percent,
//!   a uniform draw in `0..100` from the injected RNG).
//! - **`PerSourceMaxStartups N`** (default none): at most `N`
//!   unauthenticated connections from one source, where a source is the
//!   peer address masked to **`PerSourceNetBlockSize v4:v6`** bits
//!   (default `32:128`, i.e. one address).
//!
//! A refused connection gets [`Refusal::NOTICE`] written to it (best
//! effort) and is closed, as sshd does. An admitted one holds a
//! [`Startup`] that goes back with [`Admission::release`] once the
//! connection authenticates or ends, whichever comes first.
//!
//! The type does no I/O and reads no clock: time and randomness come in as
//! arguments, so a test with a fixed RNG gets repeatable decisions.
//! Adapters keep one `Admission` per listener (behind a lock when
//! connections run on several threads). It logs through `tracing` with
//! sshd's messages: "beginning MaxStartups throttling", "drop connection
//! #N from \[addr\]:port on \[addr\]:port past MaxStartups", "exited
//! MaxStartups throttling after …, N connections dropped".
//!
//! The short timeout for a peer that sends no version line is part of the
//! connection itself: [`Config::identification_timeout`](crate::Config).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand_core::CryptoRng;

use crate::error::{Error, ErrorKind};

/// sshd's `MaxStartups start:rate:full`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxStartups {
    start: u32,
    rate: u32,
    full: u32,
}

impl Default for MaxStartups {
    /// sshd's default, `10:30:100`.
    fn default() -> Self {
        MaxStartups {
            start: 10,
            rate: 30,
            full: 100,
        }
    }
}

impl MaxStartups {
    /// Random early drop from `start` unauthenticated connections (refused
    /// with probability `rate`%) up to `full` (all refused). As sshd:
    /// `start` and `full` at least 1, `start <= full`, `rate` in 1..=100.
    pub fn new(start: u32, rate: u32, full: u32) -> Result<Self, Error> {
        if start == 0 || full == 0 || start > full || !(1..=100).contains(&rate) {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("Invalid MaxStartups spec {start}:{rate}:{full}"),
            ));
        }
        Ok(MaxStartups { start, rate, full })
    }

    /// A hard limit: `n` unauthenticated connections, no more (sshd's
    /// `MaxStartups n`).
    pub fn hard(n: u32) -> Result<Self, Error> {
        Self::new(n, 100, n)
    }

    /// Unauthenticated connections accepted before random refusal starts (`start` of `start:rate:full`).
    pub fn start(&self) -> u32 {
        self.start
    }
    /// Percent chance of refusal once `start` is reached.
    pub fn rate(&self) -> u32 {
        self.rate
    }
    /// Unauthenticated connections at which every new one is refused.
    pub fn full(&self) -> u32 {
        self.full
    }

    /// The chance, in percent, that a new connection is refused while
    /// `startups` connections are unauthenticated (sshd's formula, integer
    /// arithmetic).
    pub fn drop_percent(&self, startups: u32) -> u32 {
        if startups < self.start {
            return 0;
        }
        if startups >= self.full || self.rate == 100 {
            return 100;
        }
        // start < full here, so the division is safe.
        let p = u64::from(100 - self.rate) * u64::from(startups - self.start)
            / u64::from(self.full - self.start);
        p as u32 + self.rate
    }

    /// Draws whether to refuse a new connection with `startups` already
    /// unauthenticated.
    pub fn should_drop(&self, startups: u32, rng: &mut dyn CryptoRng) -> bool {
        let p = self.drop_percent(startups);
        if p == 0 {
            return false;
        }
        if p >= 100 {
            return true;
        }
        let r = uniform(rng, 100);
        tracing::debug!("should_drop_connection: p {p}, r {r}");
        r < p
    }
}

impl FromStr for MaxStartups {
    type Err = Error;
    /// `N` or `start:rate:full`, as sshd_config(5).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::new(ErrorKind::Usage, format!("Invalid MaxStartups spec {s:?}"));
        let nums = s
            .split(':')
            .map(|p| p.parse::<u32>().map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        match nums[..] {
            [n] => Self::hard(n).map_err(|_| bad()),
            [start, rate, full] => Self::new(start, rate, full).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for MaxStartups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.start, self.rate, self.full)
    }
}

/// sshd's `PerSourceNetBlockSize v4:v6`: how many leading bits of the peer
/// address make its source for [`AdmissionConfig::per_source_max_startups`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetBlockSize {
    ipv4: u8,
    ipv6: u8,
}

impl Default for NetBlockSize {
    /// `32:128`: every address is a source of its own.
    fn default() -> Self {
        NetBlockSize {
            ipv4: 32,
            ipv6: 128,
        }
    }
}

impl NetBlockSize {
    /// `ipv4` in 0..=32, `ipv6` in 0..=128.
    pub fn new(ipv4: u8, ipv6: u8) -> Result<Self, Error> {
        if ipv4 > 32 || ipv6 > 128 {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("Invalid PerSourceNetBlockSize spec {ipv4}:{ipv6}"),
            ));
        }
        Ok(NetBlockSize { ipv4, ipv6 })
    }
    /// IPv4 prefix length, bits (0..=32), that groups sources.
    pub fn ipv4(&self) -> u8 {
        self.ipv4
    }
    /// IPv6 prefix length, bits (0..=128), that groups sources.
    pub fn ipv6(&self) -> u8 {
        self.ipv6
    }

    /// The source `addr` counts toward: the address with all but the
    /// leading bits cleared (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn source(&self, addr: IpAddr) -> IpAddr {
        match addr.to_canonical() {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.ipv4)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.ipv6))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        }
    }
}

impl FromStr for NetBlockSize {
    type Err = Error;
    /// `v4` or `v4:v6`, as sshd_config(5) (a lone value keeps IPv6 at 128).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::new(
                ErrorKind::Usage,
                format!("Invalid PerSourceNetBlockSize spec {s:?}"),
            )
        };
        let (v4, v6) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let v4 = v4.parse::<u8>().map_err(|_| bad())?;
        let v6 = match v6 {
            Some(b) => b.parse::<u8>().map_err(|_| bad())?,
            None => 128,
        };
        Self::new(v4, v6).map_err(|_| bad())
    }
}

impl fmt::Display for NetBlockSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ipv4, self.ipv6)
    }
}

/// Parses sshd's `PerSourceMaxStartups`: a positive number, or `none`.
pub fn parse_per_source_max_startups(s: &str) -> Result<Option<u32>, Error> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(Error::new(
            ErrorKind::Usage,
            format!("Invalid PerSourceMaxStartups spec {s:?}"),
        )),
    }
}

/// A server's admission settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AdmissionConfig {
    /// `MaxStartups` (default `10:30:100`).
    pub max_startups: MaxStartups,
    /// `PerSourceMaxStartups` (default none: no per-source limit).
    pub per_source_max_startups: Option<u32>,
    /// `PerSourceNetBlockSize` (default `32:128`).
    pub per_source_net_block_size: NetBlockSize,
}

impl From<MaxStartups> for AdmissionConfig {
    fn from(max_startups: MaxStartups) -> Self {
        AdmissionConfig {
            max_startups,
            ..Default::default()
        }
    }
}

/// One admitted, not yet authenticated connection. Give it back with
/// [`Admission::release`] when the connection authenticates or ends.
#[derive(Debug)]
#[must_use = "a Startup must go back to Admission::release"]
pub struct Startup {
    source: IpAddr,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// The random early drop of `MaxStartups` (or its hard limit).
    MaxStartups,
    /// `PerSourceMaxStartups` for the peer's source.
    PerSource,
}

/// A refused connection: write [`Refusal::NOTICE`] to it (best effort)
/// and close it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Which limit refused it.
    pub reason: RefusalReason,
    /// Unauthenticated connections at the time.
    pub startups: u32,
}

impl Refusal {
    /// What sshd writes to a connection it drops.
    pub const NOTICE: &'static [u8] = b"Exceeded MaxStartups\r\n";
}

/// sshd logs a summary at most this often while throttling.
const LOG_INTERVAL: Duration = Duration::from_secs(5 * 60);

struct Throttle {
    first_drop: Instant,
    last_drop: Instant,
    dropped: u32,
}

/// Counts unauthenticated connections per listener and decides on new
/// ones. See the module docs.
pub struct Admission {
    config: AdmissionConfig,
    startups: u32,
    /// Unauthenticated connections per source (only sources with some).
    sources: HashMap<IpAddr, u32>,
    throttle: Option<Throttle>,
}

impl Admission {
    /// A counter with no connections yet.
    pub fn new(config: AdmissionConfig) -> Admission {
        Admission {
            config,
            startups: 0,
            sources: HashMap::new(),
            throttle: None,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &AdmissionConfig {
        &self.config
    }

    /// Connections admitted and not yet released.
    pub fn startups(&self) -> u32 {
        self.startups
    }

    /// Unauthenticated connections from `addr`'s source.
    pub fn from_source(&self, addr: IpAddr) -> u32 {
        let src = self.config.per_source_net_block_size.source(addr);
        self.sources.get(&src).copied().unwrap_or(0)
    }

    /// Decides on a connection just accepted from `peer` (on `local`, for
    /// the log line) at `now`. Ok: serve it, and release the [`Startup`]
    /// later. Err: refuse it.
    pub fn admit(
        &mut self,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        now: Instant,
        rng: &mut dyn CryptoRng,
    ) -> Result<Startup, Refusal> {
        let startups = self.startups;
        let ms = self.config.max_startups;
        let source = self.config.per_source_net_block_size.source(peer.ip());
        let reason = if ms.should_drop(startups, rng) {
            Some(RefusalReason::MaxStartups)
        } else {
            match self.config.per_source_max_startups {
                Some(n) if self.sources.get(&source).copied().unwrap_or(0) >= n => {
                    Some(RefusalReason::PerSource)
                }
                _ => None,
            }
        };
        let Some(reason) = reason else {
            if let Some(t) = &self.throttle {
                if startups < ms.start.saturating_sub(1) {
                    tracing::info!(
                        "exited MaxStartups throttling after {}, {} connections dropped",
                        timeframe(now.saturating_duration_since(t.first_drop)),
                        t.dropped
                    );
                    self.throttle = None;
                }
            }
            self.startups += 1;
            *self.sources.entry(source).or_insert(0) += 1;
            return Ok(Startup { source });
        };
        let mut loud = false;
        match &mut self.throttle {
            None => {
                tracing::error!("beginning MaxStartups throttling");
                loud = true;
                self.throttle = Some(Throttle {
                    first_drop: now,
                    last_drop: now,
                    dropped: 0,
                });
            }
            Some(t) if t.last_drop + LOG_INTERVAL < now => {
                tracing::error!(
                    "in MaxStartups throttling for {}, {} connections dropped",
                    timeframe(now.saturating_duration_since(t.first_drop)),
                    t.dropped + 1
                );
                loud = true;
            }
            Some(_) => {}
        }
        if let Some(t) = &mut self.throttle {
            t.last_drop = now;
            t.dropped += 1;
        }
        let what = match reason {
            RefusalReason::MaxStartups => "past MaxStartups",
            RefusalReason::PerSource => "past PerSourceMaxStartups",
        };
        let local = local.map_or_else(|| "[unknown]:0".to_string(), |l| bracket(&l));
        if loud {
            tracing::info!(
                "drop connection #{startups} from {} on {local} {what}",
                bracket(&peer)
            );
        } else {
            tracing::debug!(
                "drop connection #{startups} from {} on {local} {what}",
                bracket(&peer)
            );
        }
        Err(Refusal { reason, startups })
    }

    /// An admitted connection authenticated or ended: it no longer counts.
    pub fn release(&mut self, startup: Startup) {
        self.startups = self.startups.saturating_sub(1);
        if let Some(n) = self.sources.get_mut(&startup.source) {
            *n -= 1;
            if *n == 0 {
                self.sources.remove(&startup.source);
            }
        }
    }
}

/// `[addr]:port`, as sshd logs addresses.
fn bracket(a: &SocketAddr) -> String {
    format!("[{}]:{}", a.ip(), a.port())
}

/// A duration as sshd's `fmt_timeframe` prints it (`12:34:56` or `1d02h03m`).
fn timeframe(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days == 0 {
        format!("{h:02}:{m:02}:{sec:02}")
    } else if days < 7 {
        format!("{days}d{h:02}h{m:02}m")
    } else {
        format!("{:02}w{}d{h:02}h", days / 7, days % 7)
    }
}

/// A uniform draw in `0..n` (n > 0), without modulo bias (as
/// `arc4random_uniform`: draws in the top partial block are redrawn).
fn uniform(rng: &mut dyn CryptoRng, n: u32) -> u32 {
    let span = 1u64 << 32;
    let bound = span - span % u64::from(n);
    loop {
        let r = u64::from(rng.next_u32());
        if r < bound {
            return (r % u64::from(n)) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_like_sshd() {
        assert_eq!(
            "10:30:100".parse::<MaxStartups>().unwrap(),
            MaxStartups::default()
        );
        let m: MaxStartups = "5".parse().unwrap();
        assert_eq!((m.start(), m.full()), (5, 5));
        assert_eq!(m.drop_percent(4), 0);
        assert_eq!(m.drop_percent(5), 100);
        for bad in [
            "",
            "0",
            "x",
            "1:2",
            "10:0:20",
            "10:101:20",
            "20:30:10",
            "1:2:3:4",
            "-1",
            "0:30:10",
        ] {
            let e = bad.parse::<MaxStartups>().unwrap_err();
            assert!(e.to_string().contains("MaxStartups"), "{bad}: {e}");
        }
        assert_eq!(
            "24:64".parse::<NetBlockSize>().unwrap(),
            NetBlockSize::new(24, 64).unwrap()
        );
        assert_eq!(
            "24".parse::<NetBlockSize>().unwrap(),
            NetBlockSize::new(24, 128).unwrap()
        );
        for bad in ["33:128", "32:129", "a", "", "32:", ":128"] {
            let e = bad.parse::<NetBlockSize>().unwrap_err();
            assert!(
                e.to_string().contains("PerSourceNetBlockSize"),
                "{bad}: {e}"
            );
        }
        assert_eq!(parse_per_source_max_startups("none").unwrap(), None);
        assert_eq!(parse_per_source_max_startups("3").unwrap(), Some(3));
        for bad in ["0", "-1", "x", ""] {
            let e = parse_per_source_max_startups(bad).unwrap_err();
            assert!(e.to_string().contains("PerSourceMaxStartups"), "{bad}: {e}");
        }
    }

    #[test]
    fn drop_percent_is_sshds_formula() {
        let m = MaxStartups::default();
        assert_eq!(m.drop_percent(9), 0);
        assert_eq!(m.drop_percent(10), 30);
        // 30 + 70 * 45 / 90 = 65
        assert_eq!(m.drop_percent(55), 65);
        assert_eq!(m.drop_percent(99), 30 + 70 * 89 / 90);
        assert_eq!(m.drop_percent(100), 100);
        assert_eq!(m.drop_percent(1000), 100);
        let m = MaxStartups::new(2, 50, 10).unwrap();
        assert_eq!(
            (0..11).map(|s| m.drop_percent(s)).collect::<Vec<_>>(),
            [0, 0, 50, 56, 62, 68, 75, 81, 87, 93, 100]
        );
    }

    /// Over many draws with a fixed RNG, the fraction refused at each
    /// level matches rate..full within a point or two.
    #[test]
    fn random_early_drop_fraction_matches_rate_to_full() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let m = MaxStartups::new(10, 30, 100).unwrap();
        let trials = 20_000;
        for startups in [0, 9, 10, 32, 55, 77, 99, 100, 150] {
            let dropped = (0..trials)
                .filter(|_| m.should_drop(startups, &mut rng))
                .count();
            let got = dropped as f64 * 100.0 / trials as f64;
            let want = f64::from(m.drop_percent(startups));
            assert!(
                (got - want).abs() < 1.5,
                "startups {startups}: {got}% vs {want}%"
            );
        }
    }

    #[test]
    fn admission_fills_to_full_and_releases() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let now = Instant::now();
        let mut a = Admission::new(MaxStartups::new(2, 50, 10).unwrap().into());
        let peer = addr("127.0.0.1:5000");
        // Below start: always admitted.
        let s1 = a.admit(peer, None, now, &mut rng).unwrap();
        let s2 = a.admit(peer, None, now, &mut rng).unwrap();
        assert_eq!(a.startups(), 2);
        // At start: about half of the attempts get in.
        let mut admitted = Vec::new();
        let mut refused = 0;
        for _ in 0..1000 {
            match a.admit(peer, None, now, &mut rng) {
                Ok(s) => {
                    // Keep the level at `start`: this one authenticates at once.
                    admitted.push(());
                    a.release(s);
                }
                Err(r) => {
                    assert_eq!(r.reason, RefusalReason::MaxStartups);
                    assert_eq!(r.startups, 2);
                    refused += 1;
                }
            }
        }
        assert!(
            (450..=550).contains(&refused),
            "{refused} of 1000 refused at 50%"
        );
        // Fill to full: every attempt refused.
        let mut held = Vec::new();
        while a.startups() < 10 {
            if let Ok(s) = a.admit(peer, None, now, &mut rng) {
                held.push(s);
            }
        }
        for _ in 0..100 {
            assert!(a.admit(peer, None, now, &mut rng).is_err());
        }
        a.release(s1);
        a.release(s2);
        for s in held {
            a.release(s);
        }
        assert_eq!(a.startups(), 0);
        assert!(a.sources.is_empty());
        assert!(a.admit(peer, None, now, &mut rng).is_ok());
    }

    #[test]
    fn per_source_limit_counts_net_blocks() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let now = Instant::now();
        let mut a = Admission::new(AdmissionConfig {
            per_source_max_startups: Some(2),
            per_source_net_block_size: "24:64".parse().unwrap(),
            ..Default::default()
        });
        let _a1 = a.admit(addr("10.0.0.1:1"), None, now, &mut rng).unwrap();
        let a2 = a.admit(addr("10.0.0.2:1"), None, now, &mut rng).unwrap();
        // Same /24: refused; another /24 and IPv6 still get in.
        let r = a
            .admit(addr("10.0.0.3:1"), None, now, &mut rng)
            .unwrap_err();
        assert_eq!(r.reason, RefusalReason::PerSource);
        // An IPv4-mapped address is the same source.
        assert!(a
            .admit(addr("[::ffff:10.0.0.9]:1"), None, now, &mut rng)
            .is_err());
        let _b = a.admit(addr("10.0.1.1:1"), None, now, &mut rng).unwrap();
        let _c = a.admit(addr("[::1]:1"), None, now, &mut rng).unwrap();
        let _d = a
            .admit(addr("[2001:db8::1]:1"), None, now, &mut rng)
            .unwrap();
        let _e = a
            .admit(addr("[2001:db8::2]:1"), None, now, &mut rng)
            .unwrap();
        assert!(a
            .admit(addr("[2001:db8::3]:1"), None, now, &mut rng)
            .is_err());
        assert_eq!(a.from_source("10.0.0.77".parse().unwrap()), 2);
        // One authenticates: its source has room again.
        a.release(a2);
        assert!(a.admit(addr("10.0.0.4:1"), None, now, &mut rng).is_ok());
    }

    #[test]
    fn uniform_is_in_range() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut seen = [0u32; 100];
        for _ in 0..100_000 {
            seen[uniform(&mut rng, 100) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
        assert_eq!(timeframe(Duration::from_secs(3723)), "01:02:03");
        assert_eq!(
            timeframe(Duration::from_secs(2 * 86400 + 3600 * 3 + 60 * 4)),
            "2d03h04m"
        );
    }
}
