//! User authentication (RFC 4252, RFC 4256), client and server side.
//!
//! Both sides are state machines driven by the connection. They push no
//! events themselves: `handle` returns an outcome ([`ClientOutcome`],
//! [`ServerOutcome`]) and the connection turns it into an [`Event`](crate::Event).
//! The client sends the attempts the application asks for; the server turns
//! every attempt into an [`Event::AuthRequest`](crate::Event::AuthRequest) and
//! waits for the application's verdict.

pub(crate) mod client;
pub(crate) mod server;

pub(crate) use client::{ClientAuth, ClientOutcome};
pub(crate) use server::{ServerAuth, ServerOutcome};

use crate::wire::Put;

pub(crate) const SERVICE_USERAUTH: &str = "ssh-userauth";
pub(crate) const SERVICE_CONNECTION: &str = "ssh-connection";

/// The data a publickey signature covers (RFC 4252 §7).
pub fn publickey_signed_data(
    session_id: &[u8],
    user: &str,
    algorithm: &str,
    key_blob: &[u8],
) -> Vec<u8> {
    let mut d = Vec::with_capacity(session_id.len() + user.len() + key_blob.len() + 96);
    d.put_string(session_id);
    d.put_u8(crate::wire::msg::USERAUTH_REQUEST);
    d.put_str(user);
    d.put_str(SERVICE_CONNECTION);
    d.put_str("publickey");
    d.put_bool(true);
    d.put_str(algorithm);
    d.put_string(key_blob);
    d
}
