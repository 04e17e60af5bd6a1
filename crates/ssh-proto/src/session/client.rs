//! Client-side decisions without I/O: what an auth event means for the
//! attempt in progress, and a host key's verdict against known_hosts.

use crate::keys::known_hosts::{HostKeyStatus, KnownHosts};
use crate::{Error, ErrorKind, Event, PublicKey};

use super::Session;

/// Keyboard-interactive prompts, as the server sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRequest {
    /// The prompt set's name (may be empty).
    pub name: String,
    /// The instruction to show (may be empty).
    pub instruction: String,
    /// The prompts, one answer each.
    pub prompts: Vec<crate::Prompt>,
}

/// What an authentication event means for the attempt in progress.
#[derive(Debug)]
pub enum AuthStep {
    /// The attempt is over: Ok when let in, the failure otherwise.
    Done(Result<(), Error>),
    /// Keyboard-interactive prompts to answer with
    /// [`Connection::auth_respond`](crate::Connection::auth_respond).
    Prompt(PromptRequest),
    /// Not an answer to the attempt (wait for the next event).
    Ignore,
}

impl AuthStep {
    /// Interprets one auth event of attempt `method` (a label used in the
    /// error, e.g. `password` or `publickey ssh-ed25519`).
    pub fn from_event(ev: Event, method: &str) -> AuthStep {
        match ev {
            Event::AuthSuccess => AuthStep::Done(Ok(())),
            Event::AuthFailure {
                methods,
                partial_success,
            } => AuthStep::Done(Err(Error::new(
                ErrorKind::AuthFailed,
                if partial_success {
                    format!("{method} accepted, more required: {}", methods.join(","))
                } else {
                    format!("{method} rejected (server allows: {})", methods.join(","))
                },
            ))),
            Event::AuthPrompt {
                name,
                instruction,
                prompts,
            } => AuthStep::Prompt(PromptRequest {
                name,
                instruction,
                prompts,
            }),
            Event::PasswordChangeRequired { prompt } => AuthStep::Done(Err(Error::new(
                ErrorKind::AuthFailed,
                format!("password change required: {prompt}"),
            ))),
            _ => AuthStep::Ignore,
        }
    }
}

/// The outcome of an auth attempt with `none` as a yes/no: let in,
/// not let in (a failure), or an error of another kind.
pub fn auth_none_result(r: Result<(), Error>) -> Result<bool, Error> {
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AuthFailed => Ok(false),
        Err(e) => Err(e),
    }
}

/// How OpenSSH names a host in known_hosts: `host`, or `[host]:port` when
/// the port is not 22.
pub fn host_label(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The verdict on `key` for `host`:`port` against a parsed known_hosts
/// (`source` names it in the messages, e.g. its path): Ok to go on, or
/// why not, worded as OpenSSH words it.
pub fn known_hosts_verdict(
    known: &KnownHosts,
    source: &str,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<(), String> {
    match known.check(host, port, key) {
        HostKeyStatus::Match => Ok(()),
        HostKeyStatus::Mismatch => Err(format!(
            "REMOTE HOST IDENTIFICATION HAS CHANGED: {} key {} for {} does not match {}",
            key.key_type(),
            key.fingerprint(),
            host_label(host, port),
            source
        )),
        HostKeyStatus::Revoked => Err(format!(
            "host key {} for {} is revoked",
            key.fingerprint(),
            host_label(host, port)
        )),
        _ => Err(format!(
            "no {} host key is known for {} in {} (fingerprint {})",
            key.key_type(),
            host_label(host, port),
            source,
            key.fingerprint()
        )),
    }
}

impl Session {
    /// Tells the core the verdict on the server's host key: Ok to go on,
    /// or the [`ErrorKind::HostKey`] error (the connection is then ended).
    pub fn host_key_verdict(&mut self, verdict: Result<(), String>) -> Result<(), Error> {
        match verdict {
            Ok(()) => self.conn_mut().accept_host_key(),
            Err(why) => {
                self.conn_mut().reject_host_key(&why);
                Err(Error::new(ErrorKind::HostKey, why))
            }
        }
    }
}
