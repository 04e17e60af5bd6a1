//! The `sftp` subsystem: in process over the jail, or as this program's
//! `--sftp-subsystem` child running as the user.

use std::path::{Path, PathBuf};

use ssh_blocking::proto::sftp::SftpServerConfig;
use ssh_std::sftp_server::{serve as serve_sftp, LocalFs, ServerArgs};

use crate::args::die;

/// `server --sftp-subsystem [-r ROOT] [-d DIR] [--draft-symlink]`: SFTP on
/// stdin/stdout, what a session's SFTP child runs as its user.
pub(crate) fn sftp_subsystem_main() -> ! {
    let mut args: Vec<String> = std::env::args().skip(2).collect();
    let draft = args.iter().any(|a| a == "--draft-symlink");
    args.retain(|a| a != "--draft-symlink");
    let a = match ServerArgs::parse(&args, "r") {
        Ok(a) => a,
        Err(ssh_std::sftp_server::ArgsError::Usage(m))
        | Err(ssh_std::sftp_server::ArgsError::Fatal(m)) => die(&format!("--sftp-subsystem: {m}")),
    };
    if let Some(extra) = a.operands.first() {
        die(&format!("unknown --sftp-subsystem argument {extra:?}"));
    }
    let root = a
        .extra
        .iter()
        .rev()
        .find(|(c, _)| *c == 'r')
        .map_or_else(|| PathBuf::from("/"), |(_, v)| PathBuf::from(v));
    // This process runs as the user: its home comes from its own uid.
    let user = ssh_std::passwd::Passwd::current()
        .ok()
        .flatten()
        .map(|p| p.name)
        .unwrap_or_default();
    let fs = sftp_fs(&root, &a, &user)
        .unwrap_or_else(|e| die(&format!("cannot serve {}: {e}", root.display())));
    let config = a.config(SftpServerConfig {
        draft_symlink: draft,
        ..Default::default()
    });
    let r = serve_sftp(
        std::io::stdin().lock(),
        std::io::stdout().lock(),
        fs,
        config,
    );
    std::process::exit(if r.is_ok() { 0 } else { 1 })
}

/// `-o 'Subsystem sftp internal-sftp [OPTIONS]'`: OpenSSH's sftp-server
/// options for the in-process SFTP server; anything else is refused.
pub(crate) fn subsystem_option(v: &str) -> ServerArgs {
    let words: Vec<String> = v.split_whitespace().map(str::to_string).collect();
    match words.first().map(String::as_str) {
        Some("sftp") => {}
        _ => die(&format!(
            "Subsystem {v:?}: only the sftp subsystem is served"
        )),
    }
    match words.get(1).map(String::as_str) {
        Some("internal-sftp") => {}
        Some(c) => die(&format!(
            "Subsystem sftp {c}: only internal-sftp is supported (run other programs with sshd)"
        )),
        None => die("Subsystem sftp: no command"),
    }
    let rest = &words[2..];
    let a = match ServerArgs::parse(rest, "") {
        Ok(a) => a,
        Err(ssh_std::sftp_server::ArgsError::Usage(m))
        | Err(ssh_std::sftp_server::ArgsError::Fatal(m)) => {
            die(&format!("Subsystem sftp internal-sftp: {m}"))
        }
    };
    if let Some(extra) = a.operands.first() {
        die(&format!(
            "Subsystem sftp internal-sftp: unexpected argument {extra:?}"
        ));
    }
    for (set, flag) in [
        (a.query.is_some(), "-Q"),
        (a.help, "-h"),
        (a.log_stderr, "-e"),
        (a.log_level.is_some(), "-l"),
        (a.log_facility.is_some(), "-f"),
    ] {
        if set {
            die(&format!(
                "Subsystem sftp internal-sftp: {flag} is not supported here (the server logs to stderr; -v for more)"
            ));
        }
    }
    a
}

/// The SFTP backend for `user`: from `root`, starting in `-d`'s directory
/// (expanded for the user) when given and usable, else in the user's home
/// (inside the root when it exists there), else at the root.
pub(crate) fn sftp_fs(root: &Path, args: &ServerArgs, user: &str) -> std::io::Result<LocalFs> {
    use ssh_std::passwd::Passwd;
    use ssh_std::sftp_server::expand_start_dir;
    let pw = Passwd::by_name(user).ok().flatten();
    let mut fs = match &pw {
        Some(pw) => LocalFs::at_home(root, &pw.dir)?,
        None => LocalFs::new(root, None)?,
    };
    if let Some(spec) = &args.start_dir {
        let entry = pw
            .as_ref()
            .ok_or_else(|| format!("no password database entry for {user:?}"));
        match entry
            .and_then(|pw| expand_start_dir(spec, pw))
            .and_then(|d| {
                LocalFs::new(root, Some(&d)).map_err(|e| format!("chdir to \"{d}\" failed: {e}"))
            }) {
            Ok(mut f) => {
                if let Some(pw) = &pw {
                    f.set_home(&pw.dir);
                }
                fs = f
            }
            Err(e) => tracing::error!("sftp for {user}: {e}"),
        }
    }
    if let Some(mask) = args.umask {
        fs.set_umask(mask);
    }
    Ok(fs)
}
