//! Running commands: credentials, signals, and pumping a child's output
//! to its channel.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::chan::SChan;
use crate::common::sys;
use crate::common::sys::Passwd;
use crate::session::{Proc, Pty};

/// What a child needs to become `pw`'s user (groups looked up here, in
/// the server, not between fork and exec).
pub(crate) fn credentials(pw: &Passwd) -> sys::Credentials {
    sys::Credentials {
        uid: pw.uid,
        gid: pw.gid,
        groups: sys::group_list(&pw.name, pw.gid),
        home: std::ffi::CString::new(pw.dir.as_os_str().as_encoded_bytes())
            .unwrap_or_else(|_| c"/".into()),
    }
}

pub(crate) fn signal_number(name: &str) -> Option<i32> {
    Some(match name {
        "ABRT" => libc::SIGABRT,
        "ALRM" => libc::SIGALRM,
        "FPE" => libc::SIGFPE,
        "HUP" => libc::SIGHUP,
        "ILL" => libc::SIGILL,
        "INT" => libc::SIGINT,
        "KILL" => libc::SIGKILL,
        "PIPE" => libc::SIGPIPE,
        "QUIT" => libc::SIGQUIT,
        "SEGV" => libc::SIGSEGV,
        "TERM" => libc::SIGTERM,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        _ => return None,
    })
}

pub(crate) fn signal_name(sig: i32) -> String {
    let n = [
        (libc::SIGABRT, "ABRT"),
        (libc::SIGALRM, "ALRM"),
        (libc::SIGFPE, "FPE"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGILL, "ILL"),
        (libc::SIGINT, "INT"),
        (libc::SIGKILL, "KILL"),
        (libc::SIGPIPE, "PIPE"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGSEGV, "SEGV"),
        (libc::SIGTERM, "TERM"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
    ];
    n.iter()
        .find(|(s, _)| *s == sig)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("SIG{sig}@sshlib"))
}

// ------------------------------------------------------- running commands

/// Bytes moved per read between a command and its channel: large reads
/// mean fewer wake-ups and full-size packets.
pub(crate) const PUMP_BUF: usize = 256 * 1024;

/// Copies until EOF or an error (std's `io::copy` uses 8 KiB reads).
pub(crate) fn pump(r: &mut impl Read, w: &mut impl Write) -> std::io::Result<()> {
    let mut buf = vec![0u8; PUMP_BUF];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => w.write_all(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sends how the command ended, then EOF and close.
pub(crate) fn finish(channel: &SChan, status: std::io::Result<std::process::ExitStatus>) {
    match status {
        Ok(st) => {
            if let Some(code) = st.code() {
                let _ = channel.send_exit_status(code as u32);
            } else if let Some(sig) = st.signal() {
                let _ = channel.send_exit_signal(&signal_name(sig), st.core_dumped(), "");
            }
        }
        Err(_) => {
            let _ = channel.send_exit_status(255);
        }
    }
    let _ = channel.send_eof();
    let _ = channel.close();
}

pub(crate) fn spawn_pipes(
    mut cmd: Command,
    channel: SChan,
    cred: Option<sys::Credentials>,
) -> std::io::Result<Arc<Proc>> {
    sys::new_session_pre_exec(&mut cmd, false);
    if let Some(c) = cred {
        sys::run_as(&mut cmd, c);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let proc = Arc::new(Proc {
        pgid: child.id() as i32,
        reaped: AtomicBool::new(false),
    });
    let channel = Arc::new(channel);
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let ch = channel.clone();
    std::thread::spawn(move || {
        // Client's stdin to the command; EOF closes the command's stdin.
        let mut buf = vec![0u8; PUMP_BUF];
        loop {
            match (&*ch).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let Some(w) = stdin.as_mut() else { continue };
                    if w.write_all(&buf[..n]).is_err() {
                        // The command stopped reading: drop what follows.
                        stdin = None;
                    }
                }
            }
        }
    });
    let ch = channel.clone();
    let err_pump = std::thread::spawn(move || {
        if let Some(e) = stderr.as_mut() {
            let _ = pump(e, &mut ch.stderr());
        }
    });
    let p = proc.clone();
    std::thread::spawn(move || {
        if let Some(o) = stdout.as_mut() {
            let _ = pump(o, &mut &*channel);
        }
        let _ = err_pump.join();
        let st = child.wait();
        p.reaped.store(true, Ordering::SeqCst);
        finish(&channel, st);
    });
    Ok(proc)
}

pub(crate) fn spawn_pty(
    mut cmd: Command,
    pty: &mut Pty,
    channel: SChan,
    cred: Option<sys::Credentials>,
) -> std::io::Result<Arc<Proc>> {
    let slave = pty
        .slave
        .take()
        .ok_or_else(|| std::io::Error::other("pty already used"))?;
    cmd.env("TERM", &pty.term);
    if let Ok(name) = sys::tty_name(&slave) {
        cmd.env("SSH_TTY", name);
    }
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    sys::new_session_pre_exec(&mut cmd, true);
    if let Some(c) = cred {
        sys::run_as(&mut cmd, c);
    }
    let mut child = cmd.spawn()?;
    drop(cmd); // closes our copies of the slave side
    let proc = Arc::new(Proc {
        pgid: child.id() as i32,
        reaped: AtomicBool::new(false),
    });
    let mut master_r = File::from(pty.master.try_clone()?);
    let mut master_w = File::from(pty.master.try_clone()?);
    let channel = Arc::new(channel);
    let ch = channel.clone();
    std::thread::spawn(move || {
        let _ = pump(&mut &*ch, &mut master_w);
    });
    let ch = channel.clone();
    // Ends with EIO once every process holding the slave side is gone.
    let out_pump = std::thread::spawn(move || {
        let _ = pump(&mut master_r, &mut &*ch);
    });
    let p = proc.clone();
    std::thread::spawn(move || {
        let st = child.wait();
        p.reaped.store(true, Ordering::SeqCst);
        let _ = out_pump.join();
        finish(&channel, st);
    });
    Ok(proc)
}
