//! Server-side decisions without I/O: the application's answers (to auth
//! attempts, channel opens, channel and global requests) and how each is
//! carried out on the connection, under the rules every adapter applies.

use crate::forward::{ChannelKind, GlobalRequest};
use crate::{
    AuthRequest, ChannelId, ChannelOpenFailureReason, Error, ErrorKind, Prompt, PublicKey,
};

use super::Session;

/// The answer to a password or public-key attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Let the user in (or count the method as passed).
    Accept,
    /// Refuse the attempt.
    Reject,
    /// This method passed, but these methods must follow (RFC 4252 §5.1
    /// partial success), e.g. `Partial(vec!["password".into()])`.
    Partial(Vec<String>),
    /// Password attempts only: the password is right but expired; the
    /// client is asked for a new one with this prompt.
    ChangePassword(String),
}

/// The answer to a keyboard-interactive start or to its responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KbdInt {
    /// Let the user in.
    Accept,
    /// Refuse.
    Reject,
    /// Passed, but these methods must follow.
    Partial(Vec<String>),
    /// Ask (more) questions.
    Prompt {
        /// The prompt set's name (may be empty).
        name: String,
        /// An instruction to show (may be empty).
        instruction: String,
        /// The questions.
        prompts: Vec<Prompt>,
    },
}

/// Why a channel open is refused (RFC 4254 §5.1 reason codes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelOpenFailure {
    /// The reason (RFC 4254 §5.1).
    pub reason: ChannelOpenFailureReason,
    /// A message for the client.
    pub description: String,
}

impl ChannelOpenFailure {
    /// `SSH_OPEN_ADMINISTRATIVELY_PROHIBITED`.
    pub fn prohibited(description: impl Into<String>) -> Self {
        Self {
            reason: ChannelOpenFailureReason::AdministrativelyProhibited,
            description: description.into(),
        }
    }
    /// `SSH_OPEN_UNKNOWN_CHANNEL_TYPE`.
    pub fn unknown_type(kind: &str) -> Self {
        Self {
            reason: ChannelOpenFailureReason::UnknownChannelType,
            description: format!("unknown channel type {kind}"),
        }
    }
    /// `SSH_OPEN_CONNECT_FAILED` (a server could not reach a forward's
    /// destination).
    pub fn connect_failed(description: impl Into<String>) -> Self {
        Self {
            reason: ChannelOpenFailureReason::ConnectFailed,
            description: description.into(),
        }
    }
    /// `SSH_OPEN_RESOURCE_SHORTAGE`.
    pub fn resource_shortage(description: impl Into<String>) -> Self {
        Self {
            reason: ChannelOpenFailureReason::ResourceShortage,
            description: description.into(),
        }
    }
    /// The default decision on a channel open: sessions only.
    pub fn sessions_only(kind: &str) -> Result<(), ChannelOpenFailure> {
        if kind == "session" {
            Ok(())
        } else {
            Err(ChannelOpenFailure::unknown_type(kind))
        }
    }
}

/// A client's channel open as a server application decides it: the typed
/// kind, or the refusal of a malformed one (a known type whose data does
/// not parse is refused, naming what was wrong; the connection goes on).
pub fn channel_open_kind(name: &str, data: &[u8]) -> Result<ChannelKind, ChannelOpenFailure> {
    ChannelKind::parse(name, data).map_err(|e| {
        tracing::debug!(kind = name, error = %e, "malformed channel open refused");
        ChannelOpenFailure {
            reason: ChannelOpenFailureReason::ConnectFailed,
            description: e.detail().to_string(),
        }
    })
}

/// The decision on a channel open of a kind a client does not open
/// (`forwarded-tcpip`, `x11`, …, or an unknown type): refused.
pub fn refuse_kind(kind: &ChannelKind) -> Result<(), ChannelOpenFailure> {
    match kind {
        ChannelKind::Other { name, .. } => Err(ChannelOpenFailure::unknown_type(name)),
        k => Err(ChannelOpenFailure::prohibited(format!(
            "a client does not open {} channels",
            k.name()
        ))),
    }
}

/// The success data of a `tcpip-forward` reply for a forward the
/// application set up on `bound`: the port when the client asked for port
/// 0 (RFC 4254 §7.1), nothing otherwise.
pub fn tcpip_forward_reply(requested: u32, bound: u32) -> Vec<u8> {
    if requested == 0 {
        GlobalRequest::bound_port_reply(bound)
    } else {
        Vec::new()
    }
}

/// An auth request as the question a server application answers: each
/// variant names the handler method that answers it.
#[derive(Debug, Clone)]
pub enum AuthQuestion {
    /// A password: answer with an [`Auth`] ([`AuthAnswer::Password`]).
    Password {
        /// The password.
        password: String,
    },
    /// A password change after [`Auth::ChangePassword`]
    /// ([`AuthAnswer::NewPassword`]).
    ChangePassword {
        /// The old password.
        old: String,
        /// The new password.
        new: String,
    },
    /// "Would you accept this key?" (no signature yet)
    /// ([`AuthAnswer::KeyOffered`]).
    KeyOffered {
        /// The key.
        key: PublicKey,
        /// The signature algorithm the client will use.
        algorithm: String,
    },
    /// A signed public-key attempt the core has verified
    /// ([`AuthAnswer::Key`]).
    Key {
        /// The key.
        key: PublicKey,
        /// The signature algorithm used.
        algorithm: String,
    },
    /// A keyboard-interactive start ([`AuthAnswer::Kbd`]).
    KeyboardInteractive {
        /// The submethods the client named.
        submethods: String,
    },
    /// Answers to the last prompts ([`AuthAnswer::Kbd`]).
    KeyboardInteractiveResponse {
        /// One per prompt.
        responses: Vec<String>,
    },
    /// A method no handler answers: it is refused
    /// ([`AuthAnswer::Unsupported`]).
    Unsupported,
}

impl From<AuthRequest> for AuthQuestion {
    fn from(r: AuthRequest) -> Self {
        match r {
            AuthRequest::Password {
                password,
                new_password: None,
            } => AuthQuestion::Password { password },
            AuthRequest::Password {
                password,
                new_password: Some(new),
            } => AuthQuestion::ChangePassword { old: password, new },
            AuthRequest::PublicKey {
                key,
                algorithm,
                verified: false,
            } => AuthQuestion::KeyOffered { key, algorithm },
            AuthRequest::PublicKey {
                key,
                algorithm,
                verified: true,
            } => AuthQuestion::Key { key, algorithm },
            AuthRequest::KeyboardInteractive { submethods } => {
                AuthQuestion::KeyboardInteractive { submethods }
            }
            AuthRequest::KeyboardInteractiveResponse { responses } => {
                AuthQuestion::KeyboardInteractiveResponse { responses }
            }
        }
    }
}

/// An application's answer to one [`AuthQuestion`].
#[derive(Debug, Clone)]
pub enum AuthAnswer {
    /// To a password.
    Password(Auth),
    /// To a password change.
    NewPassword(Auth),
    /// To "would you accept this key?".
    KeyOffered(bool),
    /// To a signed public-key attempt.
    Key(Auth),
    /// To a keyboard-interactive start or responses.
    Kbd(KbdInt),
    /// To a method no handler answers: refused.
    Unsupported,
}

/// Whether a connection that ended with `end` ended well: Ok if the client
/// ended it in order (a disconnect by application, or the end of the
/// stream once authenticated), `end` otherwise.
pub fn connection_result(end: Error, authenticated: bool) -> Result<(), Error> {
    match end.kind() {
        ErrorKind::PeerDisconnected
            if end.code() == Some(crate::wire::msg::disconnect::BY_APPLICATION) =>
        {
            Ok(())
        }
        ErrorKind::Closed if authenticated => Ok(()),
        _ => Err(end),
    }
}

impl Session {
    /// Gives the core an application's answer to an auth request, under
    /// the rules every adapter applies (asking again for a password change
    /// would loop, and a key cannot change).
    pub fn answer_auth(&mut self, user: &str, answer: AuthAnswer) -> Result<(), Error> {
        let decision = match answer {
            AuthAnswer::Password(d) => d,
            AuthAnswer::NewPassword(d) | AuthAnswer::Key(d) => match d {
                Auth::ChangePassword(_) => Auth::Reject,
                d => d,
            },
            AuthAnswer::KeyOffered(true) => Auth::Accept,
            AuthAnswer::KeyOffered(false) | AuthAnswer::Unsupported => Auth::Reject,
            AuthAnswer::Kbd(d) => return self.answer_kbd(d),
        };
        self.apply_auth(user, &decision)
    }

    /// Gives the core the application's answer to an auth attempt.
    pub fn apply_auth(&mut self, user: &str, decision: &Auth) -> Result<(), Error> {
        tracing::debug!(user = ?user, decision = ?decision, "auth attempt answered");
        let conn = self.conn_mut();
        match decision {
            Auth::Accept => conn.auth_accept(),
            Auth::Reject => conn.auth_reject(),
            Auth::Partial(m) => {
                conn.auth_partial(&m.iter().map(String::as_str).collect::<Vec<_>>())
            }
            Auth::ChangePassword(p) => conn.auth_password_change_request(p),
        }
    }

    /// Gives the core the application's keyboard-interactive answer.
    pub fn answer_kbd(&mut self, d: KbdInt) -> Result<(), Error> {
        let conn = self.conn_mut();
        match &d {
            KbdInt::Accept => conn.auth_accept(),
            KbdInt::Reject => conn.auth_reject(),
            KbdInt::Partial(m) => {
                conn.auth_partial(&m.iter().map(String::as_str).collect::<Vec<_>>())
            }
            KbdInt::Prompt {
                name,
                instruction,
                prompts,
            } => conn.auth_info_request(name, instruction, prompts),
        }
    }

    /// Carries out a channel-open decision: Ok(true) if the channel is
    /// open, Ok(false) if refused (by the application, or by the core over
    /// `MaxSessions`).
    pub fn open_decision(
        &mut self,
        channel: ChannelId,
        decision: Result<(), ChannelOpenFailure>,
    ) -> Result<bool, Error> {
        match decision {
            Ok(()) => match self.accept_channel(channel) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::Limit => Ok(false),
                Err(e) => Err(e),
            },
            Err(f) => self
                .conn_mut()
                .reject_channel(channel, f.reason, &f.description)
                .map(|()| false),
        }
    }

    /// Answers a channel request (the channel may have closed meanwhile:
    /// not an error); a request that wanted no reply is marked handled.
    pub fn reply_request(&mut self, channel: ChannelId, want_reply: bool, ok: bool) {
        let conn = self.conn_mut();
        if !want_reply {
            conn.request_handled();
        } else if conn.channel_exists(channel) {
            let _ = conn.channel_request_reply(channel, ok);
        }
    }

    /// Answers a global request: success with the application's data, or
    /// failure; a request that wanted no reply is marked handled.
    pub fn reply_global(&mut self, want_reply: bool, reply: Option<Vec<u8>>) -> Result<(), Error> {
        let conn = self.conn_mut();
        if !want_reply {
            conn.request_handled();
            return Ok(());
        }
        conn.global_request_reply(reply.is_some(), reply.as_deref().unwrap_or(&[]))
    }
}
