//! An SFTP server on stdin/stdout, like OpenSSH's `sftp-server`: usable as
//! sshd's `Subsystem sftp /path/to/sftp-server -r ROOT` or with
//! `sftp -D /path/to/sftp-server`.
//!
//! ```text
//! sftp-server [-d START_DIR] [-r ROOT]
//! ```
//!
//! `-r ROOT` serves ROOT as `/`: no path, `..` or symlink reaches outside
//! it. `-d START_DIR` is where relative paths start (inside the root);
//! without it, the current directory (no `-r`) or `/` (with `-r`).
//! As with OpenSSH's, `-e` logs to stderr at `-l LEVEL` (DEBUG3 traces
//! every request); `-f FACILITY` is accepted and ignored.

use ssh_blocking::proto::sftp::SftpServerConfig;
use ssh_blocking::sftp_server::{serve, LocalFs};

fn die(msg: &str) -> ! {
    eprintln!("sftp-server: {msg}");
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut root: Option<String> = None;
    let mut log_stderr = false;
    let mut level = tracing::Level::INFO;
    let mut start: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-r" | "-d" | "-l" | "-f" | "-u" | "-P" | "-p" => {
                let flag = args[i].clone();
                i += 1;
                let Some(v) = args.get(i).cloned() else {
                    die(&format!("option {flag} needs a value"))
                };
                match flag.as_str() {
                    "-r" => root = Some(v),
                    "-d" => start = Some(v),
                    "-l" => {
                        level = match v.to_ascii_uppercase().as_str() {
                            "QUIET" | "FATAL" | "ERROR" => tracing::Level::ERROR,
                            "INFO" | "VERBOSE" => tracing::Level::INFO,
                            "DEBUG" | "DEBUG1" => tracing::Level::DEBUG,
                            _ => tracing::Level::TRACE,
                        }
                    }
                    _ => {}
                }
            }
            "-e" => log_stderr = true,
            "-R" => {}
            "-h" | "--help" => {
                println!("usage: sftp-server [-d START_DIR] [-r ROOT]");
                return;
            }
            a => die(&format!("unknown argument {a:?}")),
        }
        i += 1;
    }
    if log_stderr {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(level)
            .with_ansi(false)
            .try_init();
    }
    let jailed = root.is_some();
    let root = root.unwrap_or_else(|| "/".into());
    let start = start.or_else(|| {
        (!jailed)
            .then(|| std::env::current_dir().ok())
            .flatten()
            .map(|d| d.to_string_lossy().into_owned())
    });
    let fs = match LocalFs::new(root.as_ref(), start.as_deref()) {
        Ok(fs) => fs,
        Err(e) => die(&format!("cannot serve {root}: {e}")),
    };
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    if let Err(e) = serve(stdin, stdout, fs, SftpServerConfig::default()) {
        die(&e.to_string());
    }
}
