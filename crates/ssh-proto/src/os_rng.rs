//! The operating system's randomness, for a [`Connection`](crate::Connection).

/// An RNG seeded from the operating system (a ChaCha20 stream keyed from
/// `getrandom`), for [`Connection::client`](crate::Connection::client) and
/// [`Connection::server`](crate::Connection::server). Behind the default
/// `os-rng` feature, as rustls' default provider offers its RNG.
#[cfg(feature = "os-rng")]
pub fn os_rng() -> Box<dyn crate::CryptoRng + Send> {
    use rand_core::SeedableRng;
    Box::new(rand_chacha::ChaCha20Rng::from_rng(&mut OsRng))
}

#[cfg(feature = "os-rng")]
struct OsRng;

#[cfg(feature = "os-rng")]
impl rand_core::TryRng for OsRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        // Without randomness no key exchange is safe: failing loudly is the
        // only correct answer (getrandom fails only on a broken system).
        getrandom::fill(dst).expect("the operating system's random number generator failed");
        Ok(())
    }
}

#[cfg(feature = "os-rng")]
impl rand_core::TryCryptoRng for OsRng {}
