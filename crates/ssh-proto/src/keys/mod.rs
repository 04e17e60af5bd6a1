//! Host and user keys: parsing, signatures, fingerprints, known_hosts.
