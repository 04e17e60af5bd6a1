//! The `from=` option: matching the client's address against host name
//! patterns and CIDR networks.

use std::net::IpAddr;

use super::super::known_hosts::{glob_match, ListMatch};

pub(super) enum CidrEntry {
    /// Not an address: match it as a wildcard pattern instead.
    NotAddress,
    /// An address with a prefix length inconsistent with it (sshd's -2).
    Invalid,
    Net(IpAddr, u32),
}

/// sshd's `addr_pton_cidr`.
pub(super) fn parse_cidr(p: &str) -> CidrEntry {
    if p.len() >= 64 {
        return CidrEntry::NotAddress;
    }
    let (addr, mask) = match p.split_once('/') {
        Some((a, m)) => {
            if m.is_empty() || !m.bytes().all(|c| c.is_ascii_digit()) {
                return CidrEntry::NotAddress;
            }
            match m.parse::<u32>() {
                Ok(n) if n <= 128 => (a, Some(n)),
                _ => return CidrEntry::NotAddress,
            }
        }
        None => (p, None),
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return CidrEntry::NotAddress;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = mask.unwrap_or(max);
    if len > max || host_bits(addr, len) != 0 {
        return CidrEntry::Invalid;
    }
    CidrEntry::Net(addr, len)
}

pub(super) fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The bits of `a` below its `len`-bit prefix.
pub(super) fn host_bits(a: IpAddr, len: u32) -> u128 {
    let width = if a.is_ipv4() { 32 } else { 128 };
    let host = width - len.min(width);
    let mask = if host == 0 {
        0
    } else {
        u128::MAX >> (128 - host)
    };
    addr_bits(a) & mask
}

pub(super) fn net_contains(net: IpAddr, len: u32, a: IpAddr) -> bool {
    if net.is_ipv4() != a.is_ipv4() {
        return false;
    }
    let width = if a.is_ipv4() { 32 } else { 128 };
    let shift = width - len.min(width);
    let (x, y) = (addr_bits(net), addr_bits(a));
    if shift >= 128 {
        true
    } else {
        x >> shift == y >> shift
    }
}

/// sshd's `addr_match_list`: `None` for a malformed list (which denies), otherwise whether
/// the client address matched a CIDR/wildcard entry, a negated one, or none.
pub(super) fn addr_match_list(
    addr: Option<IpAddr>,
    addr_text: &str,
    list: &str,
) -> Option<ListMatch> {
    let Some(addr) = addr else {
        return Some(ListMatch::NoMatch);
    };
    let mut result = ListMatch::NoMatch;
    for entry in list.split(',') {
        let (negated, pat) = match entry.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, entry),
        };
        if pat.is_empty() {
            return None;
        }
        let matched = match parse_cidr(pat) {
            CidrEntry::Invalid => return None,
            CidrEntry::Net(net, len) => net_contains(net, len, addr),
            CidrEntry::NotAddress => glob_match(pat.as_bytes(), addr_text.as_bytes()),
        };
        if matched {
            if negated {
                return Some(ListMatch::Negated);
            }
            result = ListMatch::Positive;
        }
    }
    Some(result)
}
