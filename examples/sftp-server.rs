//! An SFTP server on stdin/stdout, like OpenSSH's `sftp-server`: usable as
//! sshd's `Subsystem sftp /path/to/sftp-server -r ROOT`, with
//! `sftp -D /path/to/sftp-server` and with `scp -s -D /path/to/sftp-server`.
//!
//! ```text
//! sftp-server [-ehR] [-d start_directory] [-f log_facility] [-l log_level]
//!             [-P denied_requests] [-p allowed_requests] [-u umask] [-r root]
//! sftp-server -Q requests
//! ```
//!
//! The options are OpenSSH's, parsed as its `getopt` does (`-eR`,
//! `-u022`, `--`; arguments after the options, such as the `HOST sftp`
//! that `scp -D` appends, are ignored):
//!
//! - `-R` refuses every request that writes (and opens for writing) with
//!   PERMISSION_DENIED; `-P open,remove` refuses the named requests,
//!   `-p open,read,close` serves only the named ones (`-Q requests` lists
//!   the names).
//! - `-u UMASK` sets the umask (octal) for files and directories made.
//! - `-d DIR` is where relative paths start; `~`, `~USER`, `%d` (home),
//!   `%u` (user name), `%U` (uid) and `%%` are expanded. If it cannot be
//!   entered, the error is logged and the default start is kept.
//! - `-e` logs to stderr at `-l LEVEL` (QUIET ... DEBUG3; DEBUG3 traces
//!   every request). `-f FACILITY` (AUTH, DAEMON, USER, LOCAL0-7, ...) is
//!   checked; there is no syslog here, so without `-e` nothing is logged.
//! - `-r ROOT` (not OpenSSH's) serves ROOT as `/`: no path, `..` or
//!   symlink reaches outside it, and `-d` is a path inside it.
//!
//! Without `-r` relative paths start in the current directory (sshd starts
//! subsystems in the user's home); with `-r`, at `/`.

#[path = "common/sys.rs"]
#[allow(dead_code)]
mod sys;

use ssh_blocking::proto::sftp::SftpServerConfig;
use ssh_std::passwd::Passwd;
use ssh_std::sftp_server::{expand_start_dir, serve, usage, ArgsError, LocalFs, ServerArgs};

const PROG: &str = "sftp-server";

fn die(msg: &str, code: i32) -> ! {
    eprintln!("{PROG}: {msg}");
    std::process::exit(code)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = match ServerArgs::parse(&args, "r") {
        Ok(a) => a,
        Err(ArgsError::Usage(m)) => {
            eprintln!("{PROG}: {m}");
            eprintln!("{}", usage(PROG));
            std::process::exit(1)
        }
        Err(ArgsError::Fatal(m)) => die(&m, 255),
    };
    if let Some(q) = &a.query {
        match ServerArgs::query_answer(q) {
            Ok(text) => {
                print!("{text}");
                std::process::exit(0)
            }
            Err(m) => {
                eprintln!("{m}");
                std::process::exit(1)
            }
        }
    }
    if a.help {
        eprintln!("{}", usage(PROG));
        std::process::exit(1)
    }
    if a.log_stderr {
        if let Some(level) = a.tracing_level() {
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_max_level(level)
                .with_ansi(false)
                .try_init();
        }
    }
    if let Some(mask) = a.umask {
        // As OpenSSH's sftp-server: the process umask, for every file and
        // directory made (the backend clears the same bits).
        sys::set_umask(mask);
    }
    let root = a
        .extra
        .iter()
        .rev()
        .find(|(c, _)| *c == 'r')
        .map(|(_, v)| v.clone());
    let jailed = root.is_some();
    let root = root.unwrap_or_else(|| "/".into());
    let cwd = (!jailed)
        .then(|| std::env::current_dir().ok())
        .flatten()
        .map(|d| d.to_string_lossy().into_owned());
    let mut fs = match LocalFs::new(&root, cwd.as_deref()) {
        Ok(fs) => fs,
        Err(e) => die(&format!("cannot serve {root}: {e}"), 1),
    };
    let user = Passwd::current().ok().flatten();
    // home-directory answers the user's home (inside the root).
    if let Some(u) = &user {
        fs.set_home(&u.dir);
    }
    if let Some(spec) = &a.start_dir {
        let Some(user) = &user else {
            die("no password database entry for this user", 255)
        };
        let dir = expand_start_dir(spec, user).unwrap_or_else(|e| die(&e, 255));
        // Without a root, a relative directory is relative to the current
        // one (OpenSSH's chdir); with one, to the root.
        let dir = match (&cwd, dir.starts_with('/')) {
            (Some(c), false) => format!("{}/{dir}", c.trim_end_matches('/')),
            _ => dir,
        };
        match LocalFs::new(&root, Some(&dir)) {
            Ok(mut f) => {
                f.set_home(&user.dir);
                fs = f
            }
            Err(e) => tracing::error!("chdir to \"{dir}\" failed: {e}"),
        }
    }
    if let Some(mask) = a.umask {
        fs.set_umask(mask);
    }
    let config = a.config(SftpServerConfig::default());
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    if let Err(e) = serve(stdin, stdout, fs, config) {
        die(&e.to_string(), 1);
    }
}
