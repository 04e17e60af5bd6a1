//! Pseudo-terminals: opening one for a session, its size and modes.

use std::fs::File;
use std::os::fd::AsRawFd;

use ssh_blocking::proto::PtyRequest;

use crate::common::sys;
use crate::session::Pty;

/// A pseudo-terminal for `req`; as root, its slave side is given to
/// `owner` (uid, gid) with group tty and mode 620, as sshd does.
pub(crate) fn open_pty(req: &PtyRequest, owner: Option<(u32, u32)>) -> std::io::Result<Pty> {
    let (master, slave) = sys::open_pty(req.rows.min(10_000) as u16, req.cols.min(10_000) as u16)?;
    if let Some((uid, gid)) = owner {
        use std::os::unix::fs::PermissionsExt;
        let gid = sys::group_id("tty").unwrap_or(gid);
        std::os::unix::fs::fchown(&slave, Some(uid), Some(gid))?;
        let f = File::from(slave.try_clone()?);
        f.set_permissions(std::fs::Permissions::from_mode(0o620))?;
    }
    apply_modes(slave.as_raw_fd(), &req.modes);
    let term = if req.term.is_empty()
        || req.term.len() > 64
        || !req
            .term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
    {
        "vt100".to_string()
    } else {
        req.term.clone()
    };
    Ok(Pty {
        master,
        slave: Some(slave),
        term,
    })
}

/// Applies the client's encoded terminal modes (RFC 4254 §8).
pub(crate) fn apply_modes(fd: i32, modes: &[(u8, u32)]) {
    let Some(mut t) = sys::tcgetattr(fd) else {
        return;
    };
    for &(op, v) in modes {
        let on = v != 0;
        let cc = |t: &mut libc::termios, i: usize| t.c_cc[i] = v as libc::cc_t;
        let flag = |f: &mut libc::tcflag_t, bit: libc::tcflag_t| {
            if on {
                *f |= bit
            } else {
                *f &= !bit
            }
        };
        match op {
            1 => cc(&mut t, libc::VINTR),
            2 => cc(&mut t, libc::VQUIT),
            3 => cc(&mut t, libc::VERASE),
            4 => cc(&mut t, libc::VKILL),
            5 => cc(&mut t, libc::VEOF),
            6 => cc(&mut t, libc::VEOL),
            7 => cc(&mut t, libc::VEOL2),
            8 => cc(&mut t, libc::VSTART),
            9 => cc(&mut t, libc::VSTOP),
            10 => cc(&mut t, libc::VSUSP),
            12 => cc(&mut t, libc::VREPRINT),
            13 => cc(&mut t, libc::VWERASE),
            14 => cc(&mut t, libc::VLNEXT),
            18 => cc(&mut t, libc::VDISCARD),
            30 => flag(&mut t.c_iflag, libc::IGNPAR),
            31 => flag(&mut t.c_iflag, libc::PARMRK),
            32 => flag(&mut t.c_iflag, libc::INPCK),
            33 => flag(&mut t.c_iflag, libc::ISTRIP),
            34 => flag(&mut t.c_iflag, libc::INLCR),
            35 => flag(&mut t.c_iflag, libc::IGNCR),
            36 => flag(&mut t.c_iflag, libc::ICRNL),
            38 => flag(&mut t.c_iflag, libc::IXON),
            39 => flag(&mut t.c_iflag, libc::IXANY),
            40 => flag(&mut t.c_iflag, libc::IXOFF),
            41 => flag(&mut t.c_iflag, libc::IMAXBEL),
            42 => flag(&mut t.c_iflag, libc::IUTF8),
            50 => flag(&mut t.c_lflag, libc::ISIG),
            51 => flag(&mut t.c_lflag, libc::ICANON),
            53 => flag(&mut t.c_lflag, libc::ECHO),
            54 => flag(&mut t.c_lflag, libc::ECHOE),
            55 => flag(&mut t.c_lflag, libc::ECHOK),
            56 => flag(&mut t.c_lflag, libc::ECHONL),
            57 => flag(&mut t.c_lflag, libc::NOFLSH),
            58 => flag(&mut t.c_lflag, libc::TOSTOP),
            59 => flag(&mut t.c_lflag, libc::IEXTEN),
            60 => flag(&mut t.c_lflag, libc::ECHOCTL),
            61 => flag(&mut t.c_lflag, libc::ECHOKE),
            62 => flag(&mut t.c_lflag, libc::PENDIN),
            70 => flag(&mut t.c_oflag, libc::OPOST),
            72 => flag(&mut t.c_oflag, libc::ONLCR),
            73 => flag(&mut t.c_oflag, libc::OCRNL),
            74 => flag(&mut t.c_oflag, libc::ONOCR),
            75 => flag(&mut t.c_oflag, libc::ONLRET),
            90 => flag(&mut t.c_cflag, libc::CS7),
            91 => flag(&mut t.c_cflag, libc::CS8),
            92 => flag(&mut t.c_cflag, libc::PARENB),
            93 => flag(&mut t.c_cflag, libc::PARODD),
            _ => {}
        }
    }
    let _ = sys::tcsetattr(fd, libc::TCSANOW, &t);
}
