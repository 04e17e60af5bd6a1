//! Transport layer (RFC 4253): version exchange, binary packet protocol,
//! ciphers and MACs, compression, key exchange, strict kex, ext-info, rekeying.

pub mod cipher;
pub mod kex;
