//! Server side of user authentication: every attempt becomes an event the
//! application answers; the core counts attempts and enforces the limit.
//!
//! Failures are counted as sshd counts them (`userauth_finish` in its
//! auth2.c): every request that ends in USERAUTH_FAILURE counts, whatever
//! the reason (refused by the application, a method not offered, a key blob
//! that does not parse, a signature algorithm outside the accepted list, a
//! bad signature), except the client's very first request when it is
//! `none`, and a partial success. A publickey query answered with PK_OK and
//! a keyboard-interactive round that asks more questions are not failures.
//! At `max_attempts` failures the connection ends instead of a FAILURE
//! reply.

use rand_core::CryptoRng;

use super::{publickey_signed_data, SERVICE_CONNECTION, SERVICE_USERAUTH};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{AuthRequest, Prompt};
use crate::keys::PublicKey;
use crate::transport::Transport;
use crate::wire::{msg, Put, Reader};

enum Pending {
    /// Password, signed publickey, or keyboard-interactive responses.
    Final,
    /// A publickey query: accepting answers PK_OK.
    Query { algorithm: String, blob: Vec<u8> },
    /// The start of keyboard-interactive: answer with prompts or reject.
    KbdStart,
}

/// What a client message asks of the application; the connection turns it
/// into an [`Event`](crate::Event).
#[derive(Debug)]
pub(crate) enum ServerOutcome {
    /// An authentication attempt waiting for the application's verdict.
    Attempt { user: String, request: AuthRequest },
}

pub(crate) struct ServerAuth {
    service_accepted: bool,
    /// USERAUTH_REQUEST messages received so far.
    requests: u32,
    /// Signature algorithms accepted for publickey (`PubkeyAcceptedAlgorithms`).
    accepted_algorithms: Vec<String>,
    pending: Option<(String, Pending)>,
    kbd_active: bool,
    pub methods: Vec<String>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub done: bool,
    pub user: Option<String>,
    banner: Option<String>,
    banner_sent: bool,
}

impl ServerAuth {
    pub(crate) fn new(
        methods: Vec<String>,
        max_attempts: u32,
        banner: Option<String>,
        accepted_algorithms: Vec<String>,
    ) -> Self {
        ServerAuth {
            service_accepted: false,
            requests: 0,
            accepted_algorithms,
            pending: None,
            kbd_active: false,
            methods,
            attempts: 0,
            max_attempts,
            done: false,
            user: None,
            banner,
            banner_sent: false,
        }
    }

    /// True while an attempt waits for the application's verdict; no further
    /// input is processed until then.
    pub(crate) fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    pub(crate) fn handle(
        &mut self,
        tr: &mut Transport,
        rng: &mut dyn CryptoRng,
        payload: &[u8],
    ) -> Result<Option<ServerOutcome>> {
        let t = payload[0];
        let mut r = Reader::new(&payload[1..]);
        let mut outcome = None;
        match t {
            msg::SERVICE_REQUEST => {
                let s = r.string()?;
                // As sshd (auth2.c input_service_request), ssh-userauth may be
                // asked for again until authentication succeeds: paramiko asks
                // before every attempt.
                if s != SERVICE_USERAUTH.as_bytes() || self.done {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("service {:?} not available", String::from_utf8_lossy(s)),
                    )
                    .with_disconnect_code(msg::disconnect::SERVICE_NOT_AVAILABLE));
                }
                self.service_accepted = true;
                tr.send(rng, |b| {
                    b.push(msg::SERVICE_ACCEPT);
                    b.put_str(SERVICE_USERAUTH);
                })?;
            }
            msg::USERAUTH_REQUEST => {
                if !self.service_accepted {
                    return Err(Error::protocol(
                        "USERAUTH_REQUEST before the ssh-userauth service was accepted",
                    ));
                }
                if self.done {
                    // RFC 4252 §5.1: ignore requests after success.
                    return Ok(None);
                }
                let user = r.utf8()?.to_string();
                let service = r.string()?;
                let method = r.utf8()?.to_string();
                if service != SERVICE_CONNECTION.as_bytes() {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        "auth request for an unknown service",
                    )
                    .with_disconnect_code(msg::disconnect::SERVICE_NOT_AVAILABLE));
                }
                if user.len() > 256 {
                    return Err(Error::protocol("user name longer than 256 bytes"));
                }
                if let Some(prev) = &self.user {
                    if *prev != user {
                        return Err(Error::protocol(
                            "client changed user name during authentication",
                        ));
                    }
                }
                self.requests = self.requests.saturating_add(1);
                self.user = Some(user.clone());
                self.send_banner(tr, rng)?;
                self.kbd_active = false;
                let allowed = self.methods.contains(&method);
                match method.as_str() {
                    "password" if allowed => {
                        let change = r.bool()?;
                        let password = r.utf8()?.to_string();
                        let new_password = if change {
                            Some(r.utf8()?.to_string())
                        } else {
                            None
                        };
                        self.pending = Some((user.clone(), Pending::Final));
                        outcome = Some(ServerOutcome::Attempt {
                            user,
                            request: AuthRequest::Password {
                                password,
                                new_password,
                            },
                        });
                    }
                    "publickey" if allowed => {
                        let signed = r.bool()?;
                        let algorithm = r.utf8()?.to_string();
                        let blob = r.string()?.to_vec();
                        // As sshd's userauth_pubkey: an algorithm outside
                        // PubkeyAcceptedAlgorithms, a blob that does not
                        // parse or does not match the algorithm, and a bad
                        // signature are all failed attempts that count.
                        if !self.accepted_algorithms.contains(&algorithm) {
                            tracing::info!(
                                "signature algorithm {} not in PubkeyAcceptedAlgorithms",
                                algorithm.escape_default()
                            );
                            return self.fail(tr, rng, true).map(|()| None);
                        }
                        let key = match PublicKey::from_blob(&blob) {
                            Ok(k) if k.sig_algorithms().contains(&algorithm.as_str()) => k,
                            _ => {
                                tracing::info!(
                                    "unusable {} public key blob",
                                    algorithm.escape_default()
                                );
                                return self.fail(tr, rng, true).map(|()| None);
                            }
                        };
                        if signed {
                            let sig = r.string()?;
                            let sid = tr
                                .session_id()
                                .ok_or_else(|| Error::protocol("no session id"))?;
                            let data = publickey_signed_data(sid, &user, &algorithm, &blob);
                            if let Err(e) = key.verify(&algorithm, &data, sig) {
                                tracing::info!(
                                    "{} key {}: {}",
                                    key.key_type(),
                                    key.fingerprint(),
                                    e.detail()
                                );
                                return self.fail(tr, rng, true).map(|()| None);
                            }
                            self.pending = Some((user.clone(), Pending::Final));
                            outcome = Some(ServerOutcome::Attempt {
                                user,
                                request: AuthRequest::PublicKey {
                                    key,
                                    algorithm,
                                    verified: true,
                                },
                            });
                        } else {
                            self.pending = Some((
                                user.clone(),
                                Pending::Query {
                                    algorithm: algorithm.clone(),
                                    blob,
                                },
                            ));
                            outcome = Some(ServerOutcome::Attempt {
                                user,
                                request: AuthRequest::PublicKey {
                                    key,
                                    algorithm,
                                    verified: false,
                                },
                            });
                        }
                    }
                    "keyboard-interactive" if allowed => {
                        let _lang = r.string()?;
                        let submethods = r.utf8().unwrap_or("").to_string();
                        self.pending = Some((user.clone(), Pending::KbdStart));
                        outcome = Some(ServerOutcome::Attempt {
                            user,
                            request: AuthRequest::KeyboardInteractive { submethods },
                        });
                    }
                    // "none" and methods we do not offer: a plain failure,
                    // which tells the client what we do offer. Only a first
                    // request "none" is free (sshd: attempt > 1 || method != none).
                    _ => {
                        let counts = self.requests > 1 || method != "none";
                        return self.fail(tr, rng, counts).map(|()| None);
                    }
                }
            }
            msg::USERAUTH_INFO_RESPONSE => {
                if !self.kbd_active {
                    return Err(Error::protocol("USERAUTH_INFO_RESPONSE without a request"));
                }
                let n = r.u32()?;
                if n > 64 {
                    return Err(Error::protocol(format!(
                        "{n} keyboard-interactive responses"
                    )));
                }
                let mut responses = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    responses.push(r.utf8()?.to_string());
                }
                let user = self.user.clone().unwrap_or_default();
                self.kbd_active = false;
                self.pending = Some((user.clone(), Pending::Final));
                outcome = Some(ServerOutcome::Attempt {
                    user,
                    request: AuthRequest::KeyboardInteractiveResponse { responses },
                });
            }
            _ => {
                return Err(Error::protocol(format!(
                    "unexpected message {} ({t}) during authentication",
                    msg::name(t)
                )))
            }
        }
        Ok(outcome)
    }

    fn send_banner(&mut self, tr: &mut Transport, rng: &mut dyn CryptoRng) -> Result<()> {
        if self.banner_sent {
            return Ok(());
        }
        self.banner_sent = true;
        if let Some(text) = self.banner.clone() {
            tr.send(rng, |b| {
                b.push(msg::USERAUTH_BANNER);
                b.put_str(&text);
                b.put_str("");
            })?;
        }
        Ok(())
    }

    fn fail(&mut self, tr: &mut Transport, rng: &mut dyn CryptoRng, counts: bool) -> Result<()> {
        self.fail_with(tr, rng, counts, false)
    }

    fn fail_with(
        &mut self,
        tr: &mut Transport,
        rng: &mut dyn CryptoRng,
        counts: bool,
        partial: bool,
    ) -> Result<()> {
        if counts {
            self.attempts += 1;
            if self.attempts >= self.max_attempts {
                // sshd's auth_maxtries_exceeded: this text, reason code 2.
                return Err(
                    Error::new(ErrorKind::AuthFailed, "Too many authentication failures")
                        .with_disconnect_code(msg::disconnect::PROTOCOL_ERROR),
                );
            }
        }
        let methods = self.methods.clone();
        tr.send(rng, |b| {
            b.push(msg::USERAUTH_FAILURE);
            b.put_name_list(&methods);
            b.put_bool(partial);
        })
    }

    fn take_pending(&mut self) -> Result<(String, Pending)> {
        self.pending
            .take()
            .ok_or_else(|| Error::usage("no authentication request is waiting for a decision"))
    }

    /// The application accepts the pending attempt. For a publickey query
    /// this answers "key acceptable" (PK_OK); the client then signs.
    /// Returns the user name when authentication is complete.
    pub(crate) fn accept(
        &mut self,
        tr: &mut Transport,
        rng: &mut dyn CryptoRng,
    ) -> Result<Option<String>> {
        let (user, p) = self.take_pending()?;
        match p {
            Pending::Query { algorithm, blob } => {
                tr.send(rng, |b| {
                    b.push(msg::USERAUTH_60);
                    b.put_str(&algorithm);
                    b.put_string(&blob);
                })?;
                Ok(None)
            }
            Pending::KbdStart => Err(Error::usage(
                "keyboard-interactive start: answer with auth_info_request (prompts) or reject",
            )),
            Pending::Final => {
                self.done = true;
                tr.send(rng, |b| b.push(msg::USERAUTH_SUCCESS))?;
                tr.set_authenticated();
                Ok(Some(user))
            }
        }
    }

    pub(crate) fn reject(&mut self, tr: &mut Transport, rng: &mut dyn CryptoRng) -> Result<()> {
        let (_, _p) = self.take_pending()?;
        self.kbd_active = false;
        // Every refusal counts toward MaxAuthTries, a refused key query
        // too (as in sshd: a client offering many keys runs out).
        self.fail(tr, rng, true)
    }

    /// Partial success: this method passed, but these methods must follow.
    pub(crate) fn partial(
        &mut self,
        tr: &mut Transport,
        rng: &mut dyn CryptoRng,
        remaining: Vec<String>,
    ) -> Result<()> {
        let (_, p) = self.take_pending()?;
        if !matches!(p, Pending::Final) {
            return Err(Error::usage(
                "partial success only answers a completed attempt",
            ));
        }
        self.methods = remaining;
        self.fail_with(tr, rng, false, true)
    }

    /// Keyboard-interactive: send prompts (the answer to a start or to responses).
    pub(crate) fn info_request(
        &mut self,
        tr: &mut Transport,
        rng: &mut dyn CryptoRng,
        name: &str,
        instruction: &str,
        prompts: &[Prompt],
    ) -> Result<()> {
        let (user, p) = self.take_pending()?;
        if matches!(p, Pending::Query { .. }) {
            self.pending = Some((user, p));
            return Err(Error::usage(
                "info_request does not answer a publickey query",
            ));
        }
        self.kbd_active = true;
        tr.send(rng, |b| {
            b.push(msg::USERAUTH_60);
            b.put_str(name);
            b.put_str(instruction);
            b.put_str("");
            b.put_u32(prompts.len() as u32);
            for p in prompts {
                b.put_str(&p.text);
                b.put_bool(p.echo);
            }
        })
    }

    /// Password auth: ask the client to change its expired password.
    pub(crate) fn password_change_request(
        &mut self,
        tr: &mut Transport,
        rng: &mut dyn CryptoRng,
        prompt: &str,
    ) -> Result<()> {
        let (user, p) = self.take_pending()?;
        if !matches!(p, Pending::Final) {
            self.pending = Some((user, p));
            return Err(Error::usage(
                "password change request only answers a password attempt",
            ));
        }
        tr.send(rng, |b| {
            b.push(msg::USERAUTH_60);
            b.put_str(prompt);
            b.put_str("");
        })
    }
}

impl Error {
    /// The disconnect reason to send to the peer for this error.
    pub(crate) fn with_disconnect_code(self, code: u32) -> Self {
        Error::with_code(self.kind(), code, self.detail().to_string())
    }
}
