//! `Connection` methods of the user authentication layer: the client's
//! attempts and the server's answers (RFC 4252). The auth machines live in
//! [`crate::auth`]; this file routes commands to them.

use std::sync::Arc;

use crate::auth::client::Attempt;
use crate::auth::ServerAuth;
use crate::error::{Error, ErrorKind, Result};
use crate::event::Event;
use crate::event::Prompt;
use crate::keys::PrivateKey;
use crate::transport::Transport;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{AuthSide, Connection};

impl Connection {
    // ----------------------------------------------------------- client auth

    fn client_auth(&mut self, attempt: Attempt) -> Result<()> {
        self.check_open()?;
        let AuthSide::Client(a) = &mut self.auth else {
            return Err(Error::usage("only a client authenticates"));
        };
        tracing::debug!(method = attempt.method(), user = %crate::transport::sanitize(attempt.user()), "auth attempt");
        let r = a.start(&mut self.tr, &mut *self.rng, attempt);
        self.after(r)
    }

    /// Client: the `none` method (learns which methods the server offers).
    pub fn auth_none(&mut self, user: &str) -> Result<()> {
        let _span = self.span.clone().entered();
        self.client_auth(Attempt::None { user: user.into() })
    }
    /// Client: password authentication (falls back to keyboard-interactive
    /// when that is all the server offers).
    pub fn auth_password(&mut self, user: &str, password: &str) -> Result<()> {
        let _span = self.span.clone().entered();
        self.client_auth(Attempt::Password {
            user: user.into(),
            password: Zeroizing::new(password.into()),
        })
    }
    /// Client: answer a [`Event::PasswordChangeRequired`].
    pub fn auth_change_password(&mut self, user: &str, old: &str, new: &str) -> Result<()> {
        let _span = self.span.clone().entered();
        self.client_auth(Attempt::ChangePassword {
            user: user.into(),
            old: Zeroizing::new(old.into()),
            new: Zeroizing::new(new.into()),
        })
    }
    /// Client: public key authentication (query, then signature).
    pub fn auth_publickey(&mut self, user: &str, key: Arc<PrivateKey>) -> Result<()> {
        let _span = self.span.clone().entered();
        self.client_auth(Attempt::PublicKey {
            user: user.into(),
            key,
        })
    }
    /// Client: keyboard-interactive; prompts arrive as [`Event::AuthPrompt`].
    pub fn auth_keyboard_interactive(&mut self, user: &str, submethods: &str) -> Result<()> {
        let _span = self.span.clone().entered();
        self.client_auth(Attempt::KeyboardInteractive {
            user: user.into(),
            submethods: submethods.into(),
        })
    }
    /// Client: answers to the last [`Event::AuthPrompt`].
    pub fn auth_respond(&mut self, answers: &[String]) -> Result<()> {
        let _span = self.span.clone().entered();
        self.check_open()?;
        let AuthSide::Client(a) = &mut self.auth else {
            return Err(Error::usage("only a client answers prompts"));
        };
        let r = a.respond(&mut self.tr, &mut *self.rng, answers);
        self.after(r)
    }
    /// Client: methods the server said can continue (after a failure).
    pub fn auth_methods_left(&self) -> Option<&[String]> {
        match &self.auth {
            AuthSide::Client(a) => a.methods.as_deref(),
            AuthSide::Server(_) => None,
        }
    }

    // ----------------------------------------------------------- server auth

    fn server_auth<T>(
        &mut self,
        f: impl FnOnce(&mut ServerAuth, &mut Transport, &mut dyn CryptoRng) -> Result<T>,
    ) -> Result<T> {
        self.check_open()?;
        let AuthSide::Server(a) = &mut self.auth else {
            return Err(Error::usage(
                "only a server answers authentication requests",
            ));
        };
        let r = f(a, &mut self.tr, &mut *self.rng);
        let r = self.after(r);
        self.process();
        r
    }

    /// Server: accept the pending [`Event::AuthRequest`].
    pub fn auth_accept(&mut self) -> Result<()> {
        let _span = self.span.clone().entered();
        tracing::debug!("auth attempt accepted");
        let user = self.server_auth(|a, tr, rng| a.accept(tr, rng))?;
        if let Some(user) = user {
            self.authenticated = true;
            self.events.push_back(Event::Authenticated { user });
        }
        Ok(())
    }
    /// Server: reject the pending attempt.
    /// When this was the last allowed attempt the connection ends with
    /// [`Event::Disconnected`]; that is not an error of this call.
    pub fn auth_reject(&mut self) -> Result<()> {
        let _span = self.span.clone().entered();
        tracing::debug!("auth attempt rejected");
        match self.server_auth(|a, tr, rng| a.reject(tr, rng)) {
            Err(e) if e.kind() == ErrorKind::AuthFailed => Ok(()),
            r => r,
        }
    }
    /// Server: this method succeeded, but `remaining` methods must follow.
    pub fn auth_partial(&mut self, remaining: &[&str]) -> Result<()> {
        let _span = self.span.clone().entered();
        tracing::debug!(?remaining, "auth attempt partly accepted");
        let rem = remaining.iter().map(|s| s.to_string()).collect();
        self.server_auth(|a, tr, rng| a.partial(tr, rng, rem))
    }
    /// Server: answer a keyboard-interactive start (or responses) with prompts.
    pub fn auth_info_request(
        &mut self,
        name: &str,
        instruction: &str,
        prompts: &[Prompt],
    ) -> Result<()> {
        let _span = self.span.clone().entered();
        self.server_auth(|a, tr, rng| a.info_request(tr, rng, name, instruction, prompts))
    }
    /// Server: tell the client its password must be changed.
    pub fn auth_password_change_request(&mut self, prompt: &str) -> Result<()> {
        let _span = self.span.clone().entered();
        self.server_auth(|a, tr, rng| a.password_change_request(tr, rng, prompt))
    }
    /// Server: replace the list of methods offered from now on.
    pub fn set_auth_methods(&mut self, methods: &[&str]) {
        if let AuthSide::Server(a) = &mut self.auth {
            a.methods = methods.iter().map(|s| s.to_string()).collect();
        }
    }
}
