//! Finite-field Diffie-Hellman: the fixed groups of RFC 2409 / RFC 3526,
//! group choice for group exchange (RFC 4419), and the modular arithmetic
//! with validation of the peer's public value.

use core::fmt;

use num_bigint::BigUint;
use rand_core::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

use super::SharedSecret;

/// A fixed Diffie-Hellman group (safe prime `p`, generator `g`).
#[derive(PartialEq, Eq)]
pub struct DhGroup {
    /// Bit length of `p`.
    pub bits: usize,
    /// `p` as a big-endian magnitude.
    pub p: &'static [u8],
    pub g: u8,
}

impl fmt::Debug for DhGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhGroup({} bits, g={})", self.bits, self.g)
    }
}

/// Decode the hexadecimal text of an RFC (spaces and newlines allowed) at
/// compile time. A malformed constant is a compile error.
const fn hex<const N: usize>(s: &str) -> [u8; N] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("bad hex digit"),
        }
    }
    let s = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    let mut n = 0;
    let mut hi: Option<u8> = None;
    while i < s.len() {
        let c = s[i];
        i += 1;
        if c == b' ' || c == b'\n' {
            continue;
        }
        let v = nibble(c);
        match hi {
            None => hi = Some(v),
            Some(h) => {
                out[n] = (h << 4) | v;
                n += 1;
                hi = None;
            }
        }
    }
    assert!(n == N && hi.is_none(), "hex constant has the wrong length");
    out
}

// RFC 2409 §6.2, Second Oakley Group: 2^1024 - 2^960 - 1 + 2^64 * { [2^894 pi] + 129093 }
static P1024: [u8; 128] = hex("
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE65381
    FFFFFFFF FFFFFFFF");

// RFC 3526 §3, group 14: 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] + 124476 }
static P2048: [u8; 256] = hex("
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
    83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
    E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
    DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AACAA68 FFFFFFFF FFFFFFFF");

// RFC 3526 §4, group 15: 2^3072 - 2^3008 - 1 + 2^64 * { [2^2942 pi] + 1690314 }
static P3072: [u8; 384] = hex("
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
    83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
    E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
    DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AAAC42D AD33170D 04507A33 A85521AB DF1CBA64
    ECFB8504 58DBEF0A 8AEA7157 5D060C7D B3970F85 A6E1E4C7
    ABF5AE8C DB0933D7 1E8C94E0 4A25619D CEE3D226 1AD2EE6B
    F12FFA06 D98A0864 D8760273 3EC86A64 521F2B18 177B200C
    BBE11757 7A615D6C 770988C0 BAD946E2 08E24FA0 74E5AB31
    43DB5BFC E0FD108E 4B82D120 A93AD2CA FFFFFFFF FFFFFFFF");

// RFC 3526 §5, group 16: 2^4096 - 2^4032 - 1 + 2^64 * { [2^3966 pi] + 240904 }
static P4096: [u8; 512] = hex("
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
    83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
    E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
    DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AAAC42D AD33170D 04507A33 A85521AB DF1CBA64
    ECFB8504 58DBEF0A 8AEA7157 5D060C7D B3970F85 A6E1E4C7
    ABF5AE8C DB0933D7 1E8C94E0 4A25619D CEE3D226 1AD2EE6B
    F12FFA06 D98A0864 D8760273 3EC86A64 521F2B18 177B200C
    BBE11757 7A615D6C 770988C0 BAD946E2 08E24FA0 74E5AB31
    43DB5BFC E0FD108E 4B82D120 A9210801 1A723C12 A787E6D7
    88719A10 BDBA5B26 99C32718 6AF4E23C 1A946834 B6150BDA
    2583E9CA 2AD44CE8 DBBBC2DB 04DE8EF9 2E8EFC14 1FBECAA6
    287C5947 4E6BC05D 99B2964F A090C3A2 233BA186 515BE7ED
    1F612970 CEE2D7AF B81BDD76 2170481C D0069127 D5B05AA9
    93B4EA98 8D8FDDC1 86FFB7DC 90A6C08F 4DF435C9 34063199
    FFFFFFFF FFFFFFFF");

// RFC 3526 §6, group 17: 2^6144 - 2^6080 - 1 + 2^64 * { [2^6014 pi] + 929484 }
static P6144: [u8; 768] = hex("
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1 29024E08
    8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD EF9519B3 CD3A431B
    302B0A6D F25F1437 4FE1356D 6D51C245 E485B576 625E7EC6 F44C42E9
    A637ED6B 0BFF5CB6 F406B7ED EE386BFB 5A899FA5 AE9F2411 7C4B1FE6
    49286651 ECE45B3D C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8
    FD24CF5F 83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B E39E772C
    180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9 DE2BCBF6 95581718
    3995497C EA956AE5 15D22618 98FA0510 15728E5A 8AAAC42D AD33170D
    04507A33 A85521AB DF1CBA64 ECFB8504 58DBEF0A 8AEA7157 5D060C7D
    B3970F85 A6E1E4C7 ABF5AE8C DB0933D7 1E8C94E0 4A25619D CEE3D226
    1AD2EE6B F12FFA06 D98A0864 D8760273 3EC86A64 521F2B18 177B200C
    BBE11757 7A615D6C 770988C0 BAD946E2 08E24FA0 74E5AB31 43DB5BFC
    E0FD108E 4B82D120 A9210801 1A723C12 A787E6D7 88719A10 BDBA5B26
    99C32718 6AF4E23C 1A946834 B6150BDA 2583E9CA 2AD44CE8 DBBBC2DB
    04DE8EF9 2E8EFC14 1FBECAA6 287C5947 4E6BC05D 99B2964F A090C3A2
    233BA186 515BE7ED 1F612970 CEE2D7AF B81BDD76 2170481C D0069127
    D5B05AA9 93B4EA98 8D8FDDC1 86FFB7DC 90A6C08F 4DF435C9 34028492
    36C3FAB4 D27C7026 C1D4DCB2 602646DE C9751E76 3DBA37BD F8FF9406
    AD9E530E E5DB382F 413001AE B06A53ED 9027D831 179727B0 865A8918
    DA3EDBEB CF9B14ED 44CE6CBA CED4BB1B DB7F1447 E6CC254B 33205151
    2BD7AF42 6FB8F401 378CD2BF 5983CA01 C64B92EC F032EA15 D1721D03
    F482D7CE 6E74FEF6 D55E702F 46980C82 B5A84031 900B1C9E 59E7C97F
    BEC7E8F3 23A97A7E 36CC88BE 0F1D45B7 FF585AC5 4BD407B2 2B4154AA
    CC8F6D7E BF48E1D8 14CC5ED2 0F8037E0 A79715EE F29BE328 06A1D58B
    B7C5DA76 F550AA3D 8A1FBFF0 EB19CCB1 A313D55C DA56C9EC 2EF29632
    387FE8D7 6E3C0468 043E8F66 3F4860EE 12BF2D5B 0B7474D6 E694F91E
    6DCC4024 FFFFFFFF FFFFFFFF");

// RFC 3526 §7, group 18: 2^8192 - 2^8128 - 1 + 2^64 * { [2^8062 pi] + 4743158 }
static P8192: [u8; 1024] = hex("
    FFFFFFFF FFFFFFFF C90FDAA2 2168C234 C4C6628B 80DC1CD1
    29024E08 8A67CC74 020BBEA6 3B139B22 514A0879 8E3404DD
    EF9519B3 CD3A431B 302B0A6D F25F1437 4FE1356D 6D51C245
    E485B576 625E7EC6 F44C42E9 A637ED6B 0BFF5CB6 F406B7ED
    EE386BFB 5A899FA5 AE9F2411 7C4B1FE6 49286651 ECE45B3D
    C2007CB8 A163BF05 98DA4836 1C55D39A 69163FA8 FD24CF5F
    83655D23 DCA3AD96 1C62F356 208552BB 9ED52907 7096966D
    670C354E 4ABC9804 F1746C08 CA18217C 32905E46 2E36CE3B
    E39E772C 180E8603 9B2783A2 EC07A28F B5C55DF0 6F4C52C9
    DE2BCBF6 95581718 3995497C EA956AE5 15D22618 98FA0510
    15728E5A 8AAAC42D AD33170D 04507A33 A85521AB DF1CBA64
    ECFB8504 58DBEF0A 8AEA7157 5D060C7D B3970F85 A6E1E4C7
    ABF5AE8C DB0933D7 1E8C94E0 4A25619D CEE3D226 1AD2EE6B
    F12FFA06 D98A0864 D8760273 3EC86A64 521F2B18 177B200C
    BBE11757 7A615D6C 770988C0 BAD946E2 08E24FA0 74E5AB31
    43DB5BFC E0FD108E 4B82D120 A9210801 1A723C12 A787E6D7
    88719A10 BDBA5B26 99C32718 6AF4E23C 1A946834 B6150BDA
    2583E9CA 2AD44CE8 DBBBC2DB 04DE8EF9 2E8EFC14 1FBECAA6
    287C5947 4E6BC05D 99B2964F A090C3A2 233BA186 515BE7ED
    1F612970 CEE2D7AF B81BDD76 2170481C D0069127 D5B05AA9
    93B4EA98 8D8FDDC1 86FFB7DC 90A6C08F 4DF435C9 34028492
    36C3FAB4 D27C7026 C1D4DCB2 602646DE C9751E76 3DBA37BD
    F8FF9406 AD9E530E E5DB382F 413001AE B06A53ED 9027D831
    179727B0 865A8918 DA3EDBEB CF9B14ED 44CE6CBA CED4BB1B
    DB7F1447 E6CC254B 33205151 2BD7AF42 6FB8F401 378CD2BF
    5983CA01 C64B92EC F032EA15 D1721D03 F482D7CE 6E74FEF6
    D55E702F 46980C82 B5A84031 900B1C9E 59E7C97F BEC7E8F3
    23A97A7E 36CC88BE 0F1D45B7 FF585AC5 4BD407B2 2B4154AA
    CC8F6D7E BF48E1D8 14CC5ED2 0F8037E0 A79715EE F29BE328
    06A1D58B B7C5DA76 F550AA3D 8A1FBFF0 EB19CCB1 A313D55C
    DA56C9EC 2EF29632 387FE8D7 6E3C0468 043E8F66 3F4860EE
    12BF2D5B 0B7474D6 E694F91E 6DBE1159 74A3926F 12FEE5E4
    38777CB6 A932DF8C D8BEC4D0 73B931BA 3BC832B6 8D9DD300
    741FA7BF 8AFC47ED 2576F693 6BA42466 3AAB639C 5AE4F568
    3423B474 2BF1C978 238F16CB E39D652D E3FDB8BE FC848AD9
    22222E04 A4037C07 13EB57A8 1A23F0C7 3473FC64 6CEA306B
    4BCBC886 2F8385DD FA9D4B7F A2C087E8 79683303 ED5BDD3A
    062B3CF5 B3A278A6 6D2A13F8 3F44F82D DF310EE0 74AB6A36
    4597E899 A0255DC1 64F31CC5 0846851D F9AB4819 5DED7EA1
    B1D510BD 7EE74D73 FAF36BC3 1ECFA268 359046F4 EB879F92
    4009438B 481C6CD7 889A002E D5EE382B C9190DA6 FC026E47
    9558E447 5677E9AA 9E3050E2 765694DF C81F56E8 80B96E71
    60C980DD 98EDD3DF FFFFFFFF FFFFFFFF");

/// RFC 2409 Oakley group 2 (1024 bits), used by `diffie-hellman-group1-sha1`.
pub(crate) static GROUP1: DhGroup = DhGroup {
    bits: 1024,
    p: &P1024,
    g: 2,
};
/// RFC 3526 group 14 (2048 bits).
pub(crate) static GROUP14: DhGroup = DhGroup {
    bits: 2048,
    p: &P2048,
    g: 2,
};
/// RFC 3526 group 15 (3072 bits).
pub(crate) static GROUP15: DhGroup = DhGroup {
    bits: 3072,
    p: &P3072,
    g: 2,
};
/// RFC 3526 group 16 (4096 bits).
pub(crate) static GROUP16: DhGroup = DhGroup {
    bits: 4096,
    p: &P4096,
    g: 2,
};
/// RFC 3526 group 17 (6144 bits).
pub(crate) static GROUP17: DhGroup = DhGroup {
    bits: 6144,
    p: &P6144,
    g: 2,
};
/// RFC 3526 group 18 (8192 bits).
pub(crate) static GROUP18: DhGroup = DhGroup {
    bits: 8192,
    p: &P8192,
    g: 2,
};

/// The groups a GEX server offers, smallest first.
static GEX_GROUPS: [&DhGroup; 5] = [&GROUP14, &GROUP15, &GROUP16, &GROUP17, &GROUP18];

/// GEX server side: pick a group for the client's (min, n, max) request:
/// the smallest RFC 3526 group with bits >= n clamped into `[min, max]`; if
/// none fits, the largest <= max; None if nothing is within `[min, max]`.
pub fn gex_choose(min: u32, n: u32, max: u32) -> Option<&'static DhGroup> {
    if min > max {
        return None;
    }
    let target = n.clamp(min, max) as usize;
    let (min, max) = (min as usize, max as usize);
    let mut fits = GEX_GROUPS
        .iter()
        .copied()
        .filter(|g| g.bits >= min && g.bits <= max);
    let first = fits.clone().find(|g| g.bits >= target);
    first.or_else(|| fits.next_back())
}

/// Smallest and largest group size (bits) a GEX client accepts from a server.
pub(crate) const GEX_MIN_BITS: usize = 1024;
pub(crate) const GEX_MAX_BITS: usize = 8192;

/// A DH group given by a GEX server (client side): p magnitude and g
/// magnitude as received (leading zero bytes allowed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DhParams {
    pub p: Vec<u8>,
    pub g: Vec<u8>,
}

impl DhParams {
    /// Bit length of `p`.
    pub(crate) fn bits(&self) -> usize {
        bit_len(&self.p)
    }
}

/// Number of significant bits of a big-endian magnitude.
pub(super) fn bit_len(mag: &[u8]) -> usize {
    let mag = strip_zeros(mag);
    match mag.first() {
        None => 0,
        Some(&b) => mag.len() * 8 - b.leading_zeros() as usize,
    }
}

pub(super) fn strip_zeros(mag: &[u8]) -> &[u8] {
    let start = mag.iter().position(|&b| b != 0).unwrap_or(mag.len());
    &mag[start..]
}

/// Length in bits of the secret exponent for a group of `p_bits`: at least
/// twice the estimated strength of the group (RFC 3526 §8), below `p_bits - 1`
/// so that it lies in [2, q) for a safe prime p = 2q + 1.
pub(super) fn dh_exponent_bits(p_bits: usize) -> usize {
    (p_bits / 8).max(512).min(p_bits.saturating_sub(2))
}

/// A working DH group: p, g and p - 1 as big integers.
pub(super) struct DhMath {
    p: BigUint,
    g: BigUint,
    p_minus_1: BigUint,
    p_len: usize,
}

impl DhMath {
    pub(super) fn from_group(group: &DhGroup) -> DhMath {
        let p = BigUint::from_bytes_be(group.p);
        DhMath::new(p, BigUint::from(group.g))
    }

    pub(super) fn new(p: BigUint, g: BigUint) -> DhMath {
        let p_minus_1 = &p - 1u32;
        let p_len = (p.bits() as usize).div_ceil(8);
        DhMath {
            p,
            g,
            p_minus_1,
            p_len,
        }
    }

    /// From a GEX server's group, validated.
    pub(super) fn from_params(params: &DhParams) -> Result<DhMath> {
        let p_mag = strip_zeros(&params.p);
        let g_mag = strip_zeros(&params.g);
        let bits = bit_len(p_mag);
        if !(GEX_MIN_BITS..=GEX_MAX_BITS).contains(&bits) {
            return Err(Error::protocol(format!(
                "DH group exchange: prime of {bits} bits not accepted"
            )));
        }
        if p_mag.last().is_some_and(|b| b & 1 == 0) {
            return Err(Error::protocol("DH group exchange: modulus is even"));
        }
        if g_mag.len() > p_mag.len() {
            return Err(Error::protocol("DH group exchange: generator out of range"));
        }
        let p = BigUint::from_bytes_be(p_mag);
        let g = BigUint::from_bytes_be(g_mag);
        let math = DhMath::new(p, g);
        if math.g <= BigUint::from(1u32) || math.g >= math.p_minus_1 {
            return Err(Error::protocol("DH group exchange: generator out of range"));
        }
        Ok(math)
    }

    /// Parse and check a public value: 1 < y < p - 1.
    pub(super) fn check_public(&self, mag: &[u8]) -> Result<BigUint> {
        let mag = strip_zeros(mag);
        if mag.len() > self.p_len {
            return Err(Error::protocol("DH public value out of range"));
        }
        let y = BigUint::from_bytes_be(mag);
        if y <= BigUint::from(1u32) || y >= self.p_minus_1 {
            return Err(Error::protocol("DH public value out of range"));
        }
        Ok(y)
    }

    /// A fresh secret exponent (big-endian bytes, zeroized on drop).
    pub(super) fn gen_secret(&self, rng: &mut dyn CryptoRng) -> Zeroizing<Vec<u8>> {
        let bits = dh_exponent_bits(self.p.bits() as usize);
        let len = bits.div_ceil(8);
        let mut x = Zeroizing::new(vec![0u8; len]);
        rng.fill_bytes(&mut x);
        let top_bits = bits - (len - 1) * 8; // 1..=8 bits used in x[0]
        let mask = (0xffu16 >> (8 - top_bits)) as u8;
        x[0] &= mask;
        // Set the top bit: x has exactly `bits` bits, so 2 <= x < q.
        x[0] |= 1 << (top_bits - 1);
        x
    }

    /// g^x mod p as a magnitude; fails if the group is degenerate.
    pub(super) fn public(&self, x: &[u8]) -> Result<Vec<u8>> {
        let x = BigUint::from_bytes_be(x);
        let e = self.g.modpow(&x, &self.p);
        if e <= BigUint::from(1u32) || e >= self.p_minus_1 {
            return Err(Error::protocol(
                "DH group produced a degenerate public value",
            ));
        }
        Ok(e.to_bytes_be())
    }

    /// K = mpint(y^x mod p).
    pub(super) fn shared(&self, peer: &BigUint, x: &[u8]) -> Result<SharedSecret> {
        let x = BigUint::from_bytes_be(x);
        let k = peer.modpow(&x, &self.p);
        let mut mag = k.to_bytes_be();
        let out = if k <= BigUint::from(1u32) || k >= self.p_minus_1 {
            Err(Error::protocol("DH shared secret is degenerate"))
        } else {
            Ok(SharedSecret::mpint(&mag))
        };
        mag.zeroize();
        out
    }
}
