//! The authentication targets: `server_auth` and `client_auth`.

use ssh_proto::{AuthRequest, Connection, Event, Prompt};

use super::input::Input;
use super::plumbing::{Duo, Policy};
use super::setup::{user_key, MAX_OPS, MAX_ROUNDS};

pub(crate) const METHODS: &[&str] = &["password", "publickey", "keyboard-interactive", "none"];

pub(crate) fn fuzz_prompts(inp: &mut Input<'_>) -> Vec<Prompt> {
    let n = inp.u8() % 4;
    (0..n)
        .map(|_| Prompt {
            text: inp.string(32),
            echo: inp.bool(),
        })
        .collect()
}

pub(crate) fn fuzz_answers(inp: &mut Input<'_>) -> Vec<String> {
    let n = inp.u8() % 4;
    (0..n).map(|_| inp.word(&["secret", ""])).collect()
}

/// Server side: a fuzz-chosen answer to an authentication request.
pub(crate) fn server_decides(s: &mut Connection, inp: &mut Input<'_>) {
    let _ = match inp.u8() % 6 {
        0 => s.auth_accept(),
        1 => s.auth_reject(),
        2 => {
            let n = inp.u8() as usize % 3;
            let rem: Vec<String> = (0..n).map(|_| inp.word(METHODS)).collect();
            let rem: Vec<&str> = rem.iter().map(String::as_str).collect();
            s.auth_partial(&rem)
        }
        3 => {
            let name = inp.string(16);
            let instr = inp.string(16);
            let prompts = fuzz_prompts(inp);
            s.auth_info_request(&name, &instr, &prompts)
        }
        4 => s.auth_password_change_request(&inp.string(24)),
        _ => {
            let n = inp.u8() as usize % 3;
            let m: Vec<String> = (0..n).map(|_| inp.word(METHODS)).collect();
            let m: Vec<&str> = m.iter().map(String::as_str).collect();
            s.set_auth_methods(&m);
            s.auth_reject()
        }
    };
}

/// One fuzz-chosen client authentication call.
pub(crate) fn client_attempt(c: &mut Connection, inp: &mut Input<'_>) {
    let user = inp.word(&["alice", "root", ""]);
    let _ = match inp.u8() % 6 {
        0 => c.auth_password(&user, &inp.word(&["secret", ""])),
        1 => c.auth_keyboard_interactive(&user, &inp.word(&["", "pam"])),
        2 => c.auth_none(&user),
        3 => c.auth_respond(&fuzz_answers(inp)),
        4 => {
            let old = inp.string(16);
            c.auth_change_password(&user, &old, &inp.string(16))
        }
        _ => c.auth_publickey(&user, user_key()),
    };
}

/// Server auth: a real client after kex makes fuzz-chosen attempts; the
/// server application answers each request with a fuzz-chosen decision.
pub fn server_auth(data: &[u8]) {
    let Some(mut d) = Duo::after_kex() else {
        return;
    };
    let mut inp = Input::new(data);
    let mut ops = 0;
    while !inp.is_empty() && ops < MAX_OPS && d.alive() {
        ops += 1;
        client_attempt(&mut d.client, &mut inp);
        for _ in 0..MAX_ROUNDS {
            let progressed = d.step(Policy::Passive, Policy::Passive);
            let reqs = d
                .server_events
                .drain(..)
                .filter(|e| matches!(e, Event::AuthRequest { .. }))
                .count();
            for _ in 0..reqs {
                server_decides(&mut d.server, &mut inp);
            }
            d.client_events.clear();
            if !progressed && reqs == 0 {
                break;
            }
        }
    }
}

/// Client auth: the client after kex starts with a fuzz-chosen method and
/// reacts to what comes back (prompts answered, password changes made,
/// failures retried with a listed method); the server application's answers
/// are fuzz-chosen.
pub fn client_auth(data: &[u8]) {
    let Some(mut d) = Duo::after_kex() else {
        return;
    };
    let mut inp = Input::new(data);
    client_attempt(&mut d.client, &mut inp);
    let mut ops = 0;
    while ops < MAX_OPS && d.alive() {
        ops += 1;
        let progressed = d.step(Policy::Passive, Policy::Passive);
        let mut any = false;
        for e in std::mem::take(&mut d.server_events) {
            if let Event::AuthRequest { request, .. } = &e {
                any = true;
                if let AuthRequest::KeyboardInteractiveResponse { responses } = request {
                    let _ = responses.len();
                }
                server_decides(&mut d.server, &mut inp);
            }
        }
        for e in std::mem::take(&mut d.client_events) {
            any = true;
            let c = &mut d.client;
            let _ = match e {
                Event::AuthPrompt { prompts, .. } => {
                    let mut a: Vec<String> = prompts.iter().map(|_| inp.string(16)).collect();
                    if inp.u8() == 0xff {
                        a.push(String::new());
                    }
                    c.auth_respond(&a)
                }
                Event::PasswordChangeRequired { .. } => {
                    let new = inp.string(16);
                    c.auth_change_password("alice", "secret", &new)
                }
                Event::AuthFailure { methods, .. } => {
                    let pick = inp.u8() as usize;
                    match methods.get(pick % methods.len().max(1)).map(String::as_str) {
                        Some("password") => c.auth_password("alice", &inp.string(16)),
                        Some("publickey") => c.auth_publickey("alice", user_key()),
                        Some("keyboard-interactive") => {
                            c.auth_keyboard_interactive("alice", &inp.string(8))
                        }
                        _ => c.auth_none("alice"),
                    }
                }
                Event::AuthBanner(_) | Event::AuthSuccess => Ok(()),
                _ => Ok(()),
            };
        }
        if !progressed && !any {
            if inp.is_empty() {
                break;
            }
            client_attempt(&mut d.client, &mut inp);
        }
    }
}
