//! Client side of user authentication.

use std::sync::Arc;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::{publickey_signed_data, SERVICE_CONNECTION, SERVICE_USERAUTH};
use crate::error::{Error, ErrorKind, Result};
use crate::event::Prompt;
use crate::keys::PrivateKey;
use crate::transport::{sanitize, Transport};
use crate::wire::{msg, Put, Reader};

/// An attempt the application asked for.
pub(crate) enum Attempt {
    None {
        user: String,
    },
    Password {
        user: String,
        password: Zeroizing<String>,
    },
    PublicKey {
        user: String,
        key: Arc<PrivateKey>,
    },
    KeyboardInteractive {
        user: String,
        submethods: String,
    },
    ChangePassword {
        user: String,
        old: Zeroizing<String>,
        new: Zeroizing<String>,
    },
}

impl Attempt {
    /// The method's name (RFC 4252, RFC 4256).
    pub(crate) fn method(&self) -> &'static str {
        match self {
            Attempt::None { .. } => "none",
            Attempt::Password { .. } | Attempt::ChangePassword { .. } => "password",
            Attempt::PublicKey { .. } => "publickey",
            Attempt::KeyboardInteractive { .. } => "keyboard-interactive",
        }
    }

    /// The user name the attempt is for.
    pub(crate) fn user(&self) -> &str {
        match self {
            Attempt::None { user }
            | Attempt::Password { user, .. }
            | Attempt::PublicKey { user, .. }
            | Attempt::KeyboardInteractive { user, .. }
            | Attempt::ChangePassword { user, .. } => user,
        }
    }
}

enum InFlight {
    None,
    Password {
        user: String,
        password: Zeroizing<String>,
    },
    PublicKeyQuery {
        user: String,
        key: Arc<PrivateKey>,
        alg: String,
    },
    PublicKeySigned,
    /// `auto` answers every hidden prompt with this password (paramiko's
    /// fallback when password auth is asked of a keyboard-interactive server).
    Keyboard {
        auto: Option<Zeroizing<String>>,
        auto_rounds: u32,
    },
}

/// What a server message meant for the application; the connection turns
/// it into an [`Event`](crate::Event).
#[derive(Debug)]
pub(crate) enum ClientOutcome {
    /// USERAUTH_BANNER (sanitized text).
    Banner(String),
    /// USERAUTH_SUCCESS.
    Success,
    /// USERAUTH_FAILURE of the attempt in flight.
    Failure {
        methods: Vec<String>,
        partial_success: bool,
    },
    /// USERAUTH_PASSWD_CHANGEREQ.
    PasswordChangeRequired { prompt: String },
    /// USERAUTH_INFO_REQUEST for the application to answer.
    Prompt {
        name: String,
        instruction: String,
        prompts: Vec<Prompt>,
    },
}

#[derive(Default)]
pub(crate) struct ClientAuth {
    requested_service: bool,
    service_accepted: bool,
    queued: Option<Attempt>,
    in_flight: Option<InFlight>,
    /// Methods the server said may continue (from the last failure).
    pub methods: Option<Vec<String>>,
    pub done: bool,
    /// Allow `ssh-rsa` (SHA-1) signatures for RSA user keys.
    pub allow_ssh_rsa: bool,
}

impl ClientAuth {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Transport is ready: ask for the userauth service once.
    pub(crate) fn on_transport_ready(
        &mut self,
        tr: &mut Transport,
        rng: &mut dyn CryptoRng,
    ) -> Result<()> {
        if !self.requested_service {
            self.requested_service = true;
            tr.send(rng, |b| {
                b.push(msg::SERVICE_REQUEST);
                b.put_str(SERVICE_USERAUTH);
            })?;
        }
        Ok(())
    }

    pub(crate) fn is_busy(&self) -> bool {
        self.in_flight.is_some() || self.queued.is_some()
    }

    /// Starts an attempt (queued until the service is accepted).
    pub(crate) fn start(
        &mut self,
        tr: &mut Transport,
        rng: &mut dyn CryptoRng,
        attempt: Attempt,
    ) -> Result<()> {
        if self.done {
            return Err(Error::usage("already authenticated"));
        }
        if self.is_busy() {
            return Err(Error::usage(
                "an authentication attempt is already in progress",
            ));
        }
        self.queued = Some(attempt);
        if self.service_accepted {
            self.send_queued(tr, rng)?;
        }
        Ok(())
    }

    fn send_queued(&mut self, tr: &mut Transport, rng: &mut dyn CryptoRng) -> Result<()> {
        let Some(a) = self.queued.take() else {
            return Ok(());
        };
        match a {
            Attempt::None { user } => {
                tr.send(rng, |b| request_header(b, &user, "none"))?;
                self.in_flight = Some(InFlight::None);
            }
            Attempt::Password { user, password } => {
                let only_kbd = self.methods.as_ref().is_some_and(|m| {
                    !m.iter().any(|x| x == "password")
                        && m.iter().any(|x| x == "keyboard-interactive")
                });
                if only_kbd {
                    send_kbd(tr, rng, &user, "")?;
                    self.in_flight = Some(InFlight::Keyboard {
                        auto: Some(password),
                        auto_rounds: 0,
                    });
                } else {
                    tr.send(rng, |b| {
                        request_header(b, &user, "password");
                        b.put_bool(false);
                        b.put_str(&password);
                    })?;
                    self.in_flight = Some(InFlight::Password { user, password });
                }
            }
            Attempt::ChangePassword { user, old, new } => {
                tr.send(rng, |b| {
                    request_header(b, &user, "password");
                    b.put_bool(true);
                    b.put_str(&old);
                    b.put_str(&new);
                })?;
                self.in_flight = Some(InFlight::Password {
                    user,
                    password: new,
                });
            }
            Attempt::PublicKey { user, key } => {
                let alg = self.choose_sig_alg(tr, &key)?;
                self.send_pk_query(tr, rng, user, key, alg)?;
            }
            Attempt::KeyboardInteractive { user, submethods } => {
                send_kbd(tr, rng, &user, &submethods)?;
                self.in_flight = Some(InFlight::Keyboard {
                    auto: None,
                    auto_rounds: 0,
                });
            }
        }
        Ok(())
    }

    /// Asks whether the server would accept `key` with `alg` (no signature yet).
    fn send_pk_query(
        &mut self,
        tr: &mut Transport,
        rng: &mut dyn CryptoRng,
        user: String,
        key: Arc<PrivateKey>,
        alg: String,
    ) -> Result<()> {
        let blob = key.public_key().to_blob();
        tr.send(rng, |b| {
            request_header(b, &user, "publickey");
            b.put_bool(false);
            b.put_str(&alg);
            b.put_string(&blob);
        })?;
        self.in_flight = Some(InFlight::PublicKeyQuery { user, key, alg });
        Ok(())
    }

    fn choose_sig_alg(&self, tr: &Transport, key: &PrivateKey) -> Result<String> {
        let pk = key.public_key();
        let algs = pk.sig_algorithms();
        if pk.key_type() != "ssh-rsa" {
            return Ok(algs[0].to_string());
        }
        match tr.server_sig_algs() {
            Some(list) => {
                for a in algs {
                    if (*a != "ssh-rsa" || self.allow_ssh_rsa)
                        && crate::wire::names(list).any(|x| x == *a)
                    {
                        return Ok(a.to_string());
                    }
                }
                if self.allow_ssh_rsa {
                    Ok("ssh-rsa".into())
                } else {
                    Err(Error::new(
                        ErrorKind::AuthFailed,
                        format!("server accepts no RSA signature algorithm we allow (server-sig-algs: {list})"),
                    ))
                }
            }
            // No server-sig-algs: servers of this decade still take rsa-sha2-256.
            None => Ok(if self.allow_ssh_rsa {
                "ssh-rsa".into()
            } else {
                "rsa-sha2-256".into()
            }),
        }
    }

    /// Answers to keyboard-interactive prompts.
    pub(crate) fn respond(
        &mut self,
        tr: &mut Transport,
        rng: &mut dyn CryptoRng,
        answers: &[String],
    ) -> Result<()> {
        if !matches!(self.in_flight, Some(InFlight::Keyboard { .. })) {
            return Err(Error::usage(
                "no keyboard-interactive prompt is waiting for answers",
            ));
        }
        tr.send(rng, |b| {
            b.push(msg::USERAUTH_INFO_RESPONSE);
            b.put_u32(answers.len() as u32);
            for a in answers {
                b.put_str(a);
            }
        })
    }

    /// Handles a message of the auth range (50..79) or SERVICE_ACCEPT and
    /// says what came of it for the application, if anything.
    pub(crate) fn handle(
        &mut self,
        tr: &mut Transport,
        rng: &mut dyn CryptoRng,
        payload: &[u8],
    ) -> Result<Option<ClientOutcome>> {
        let t = payload[0];
        let mut r = Reader::new(&payload[1..]);
        let mut outcome = None;
        match t {
            msg::SERVICE_ACCEPT => {
                let s = r.string()?;
                if s != SERVICE_USERAUTH.as_bytes()
                    || !self.requested_service
                    || self.service_accepted
                {
                    return Err(Error::protocol("unexpected SERVICE_ACCEPT"));
                }
                self.service_accepted = true;
                self.send_queued(tr, rng)?;
            }
            msg::USERAUTH_BANNER => {
                let text = r.utf8().unwrap_or("");
                outcome = Some(ClientOutcome::Banner(sanitize_banner(text)));
            }
            msg::USERAUTH_SUCCESS => {
                if self.in_flight.is_none() {
                    return Err(Error::protocol("USERAUTH_SUCCESS without a request"));
                }
                self.in_flight = None;
                self.done = true;
                tr.set_authenticated();
                outcome = Some(ClientOutcome::Success);
            }
            msg::USERAUTH_FAILURE => {
                let list = r.name_list()?;
                let partial = r.bool()?;
                let methods: Vec<String> = crate::wire::names(list)
                    .take(64)
                    .map(str::to_string)
                    .collect();
                self.methods = Some(methods.clone());
                match self.in_flight.take() {
                    None => return Err(Error::protocol("USERAUTH_FAILURE without a request")),
                    Some(InFlight::Password { user, password })
                        if !partial
                            && !methods.iter().any(|m| m == "password")
                            && methods.iter().any(|m| m == "keyboard-interactive") =>
                    {
                        // paramiko's fallback: answer keyboard-interactive with the password.
                        send_kbd(tr, rng, &user, "")?;
                        self.in_flight = Some(InFlight::Keyboard {
                            auto: Some(password),
                            auto_rounds: 0,
                        });
                        return Ok(None);
                    }
                    Some(InFlight::PublicKeyQuery { user, key, alg })
                        if !partial
                            && alg == "rsa-sha2-512"
                            && methods.iter().any(|m| m == "publickey") =>
                    {
                        // Servers announce every algorithm they implement in
                        // server-sig-algs, not the ones their policy accepts:
                        // an RSA key refused with SHA-512 is retried with SHA-256.
                        self.send_pk_query(tr, rng, user, key, "rsa-sha2-256".into())?;
                        return Ok(None);
                    }
                    Some(_) => {}
                }
                outcome = Some(ClientOutcome::Failure {
                    methods,
                    partial_success: partial,
                });
            }
            msg::USERAUTH_60 => match self.in_flight.take() {
                Some(InFlight::PublicKeyQuery { user, key, alg }) => {
                    let _alg_echo = r.string()?;
                    let _blob = r.string()?;
                    let sid = tr
                        .session_id()
                        .ok_or_else(|| Error::protocol("no session id"))?
                        .to_vec();
                    let blob = key.public_key().to_blob();
                    let data = publickey_signed_data(&sid, &user, &alg, &blob);
                    let sig = key.sign(&alg, &data)?;
                    tr.send(rng, |b| {
                        request_header(b, &user, "publickey");
                        b.put_bool(true);
                        b.put_str(&alg);
                        b.put_string(&blob);
                        b.put_string(&sig);
                    })?;
                    self.in_flight = Some(InFlight::PublicKeySigned);
                }
                Some(InFlight::Password { user, password }) => {
                    let prompt = r.utf8().unwrap_or("").to_string();
                    outcome = Some(ClientOutcome::PasswordChangeRequired {
                        prompt: sanitize(&prompt),
                    });
                    // Re-armed by auth_change_password.
                    drop((user, password));
                }
                Some(InFlight::Keyboard { auto, auto_rounds }) => {
                    let name = r.utf8()?.to_string();
                    let instruction = r.utf8()?.to_string();
                    let _lang = r.string()?;
                    let n = r.u32()?;
                    if n > 64 {
                        return Err(Error::protocol(format!(
                            "keyboard-interactive request with {n} prompts"
                        )));
                    }
                    let mut prompts = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        let text = r.utf8()?.to_string();
                        let echo = r.bool()?;
                        prompts.push(Prompt {
                            text: sanitize(&text),
                            echo,
                        });
                    }
                    match auto {
                        Some(pw) => {
                            if auto_rounds >= 8 {
                                return Err(Error::new(
                                    ErrorKind::AuthFailed,
                                    "server keeps asking keyboard-interactive questions",
                                ));
                            }
                            let answers: Vec<String> = prompts
                                .iter()
                                .map(|p| {
                                    if p.echo {
                                        String::new()
                                    } else {
                                        pw.to_string()
                                    }
                                })
                                .collect();
                            self.in_flight = Some(InFlight::Keyboard {
                                auto: Some(pw),
                                auto_rounds: auto_rounds + 1,
                            });
                            self.respond(tr, rng, &answers)?;
                        }
                        None => {
                            self.in_flight = Some(InFlight::Keyboard {
                                auto: None,
                                auto_rounds,
                            });
                            outcome = Some(ClientOutcome::Prompt {
                                name: sanitize(&name),
                                instruction: sanitize(&instruction),
                                prompts,
                            });
                        }
                    }
                }
                other => {
                    self.in_flight = other;
                    return Err(Error::protocol("unexpected userauth message 60"));
                }
            },
            _ => {
                return Err(Error::protocol(format!(
                    "unexpected auth message {} ({t})",
                    msg::name(t)
                )))
            }
        }
        Ok(outcome)
    }
}

fn request_header(b: &mut Vec<u8>, user: &str, method: &str) {
    b.push(msg::USERAUTH_REQUEST);
    b.put_str(user);
    b.put_str(SERVICE_CONNECTION);
    b.put_str(method);
}

fn send_kbd(
    tr: &mut Transport,
    rng: &mut dyn CryptoRng,
    user: &str,
    submethods: &str,
) -> Result<()> {
    tr.send(rng, |b| {
        request_header(b, user, "keyboard-interactive");
        b.put_str("");
        b.put_str(submethods);
    })
}

fn sanitize_banner(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .take(64 * 1024)
        .collect()
}
