//! What every adapter needs decided without I/O. So far: which new
//! connections a server admits ([`admission`]).

pub mod admission;
