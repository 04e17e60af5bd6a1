//! The hash functions of key exchange methods (SHA-1, SHA-2), one-shot and
//! incremental.

use core::fmt;

use sha2::Digest;

/// The hash function of a key exchange method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HashAlg {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// Output length in bytes.
    #[cfg(test)]
    pub(crate) fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// One-shot hash of `data`.
    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        h.finish()
    }

    /// Incremental hashing object for the exchange hash.
    pub(crate) fn hasher(self) -> Hasher {
        Hasher(match self {
            HashAlg::Sha1 => HasherState::Sha1(sha1::Sha1::new()),
            HashAlg::Sha256 => HasherState::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => HasherState::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => HasherState::Sha512(sha2::Sha512::new()),
        })
    }
}

/// An incremental hash computation (see [`HashAlg::hasher`]).
#[derive(Clone)]
pub(crate) struct Hasher(HasherState);

#[derive(Clone)]
enum HasherState {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// Feed more bytes.
    pub(crate) fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            HasherState::Sha1(h) => h.update(data),
            HasherState::Sha256(h) => h.update(data),
            HasherState::Sha384(h) => h.update(data),
            HasherState::Sha512(h) => h.update(data),
        }
    }

    /// Finish and return the digest.
    pub(crate) fn finish(self) -> Vec<u8> {
        match self.0 {
            HasherState::Sha1(h) => h.finalize().to_vec(),
            HasherState::Sha256(h) => h.finalize().to_vec(),
            HasherState::Sha384(h) => h.finalize().to_vec(),
            HasherState::Sha512(h) => h.finalize().to_vec(),
        }
    }

    /// The algorithm of this hasher.
    pub(crate) fn alg(&self) -> HashAlg {
        match self.0 {
            HasherState::Sha1(_) => HashAlg::Sha1,
            HasherState::Sha256(_) => HashAlg::Sha256,
            HasherState::Sha384(_) => HashAlg::Sha384,
            HasherState::Sha512(_) => HashAlg::Sha512,
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hasher({:?})", self.alg())
    }
}
