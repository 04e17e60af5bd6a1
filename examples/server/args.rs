//! Command-line arguments.

use std::path::PathBuf;

use crate::common::runtime::RuntimeKind;

pub(crate) const USAGE: &str =
    "usage: server [-p PORT] [-b ADDR] [-h HOSTKEY_FILE]... [--authorized-keys FILE]
              [--password-file FILE] [--sftp-root DIR] [-o Key=Value]... [-v[v[v]]]
              [--runtime mio|tokio|blocking]
       server --sftp-subsystem [-r ROOT] [-d DIR] [--draft-symlink]";

pub(crate) struct Opts {
    pub(crate) port: u16,
    pub(crate) bind: String,
    pub(crate) host_keys: Vec<PathBuf>,
    pub(crate) authorized_keys: Option<PathBuf>,
    pub(crate) password_file: Option<PathBuf>,
    pub(crate) sftp_root: Option<PathBuf>,
    pub(crate) options: Vec<String>,
    /// The number of `-v` flags.
    pub(crate) verbose: u8,
    pub(crate) runtime: RuntimeKind,
}

pub(crate) fn die(msg: &str) -> ! {
    eprintln!("server: {msg}");
    std::process::exit(255)
}

pub(crate) fn parse_args() -> Opts {
    let mut o = Opts {
        port: 2222,
        bind: "127.0.0.1".into(),
        host_keys: Vec::new(),
        authorized_keys: None,
        password_file: None,
        sftp_root: None,
        options: Vec::new(),
        verbose: 0,
        runtime: RuntimeKind::Mio,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let value = |i: &mut usize, flag: &str| -> String {
        *i += 1;
        match args.get(*i) {
            Some(v) => v.clone(),
            None => die(&format!("option {flag} needs a value\n{USAGE}")),
        }
    };
    while i < args.len() {
        let a = args[i].clone();
        match a.as_str() {
            "-p" => {
                o.port = value(&mut i, "-p")
                    .parse()
                    .unwrap_or_else(|_| die("bad port"))
            }
            "-b" => o.bind = value(&mut i, "-b"),
            "-h" => o.host_keys.push(value(&mut i, "-h").into()),
            "--authorized-keys" => o.authorized_keys = Some(value(&mut i, &a).into()),
            "--password-file" => o.password_file = Some(value(&mut i, &a).into()),
            "--sftp-root" => o.sftp_root = Some(value(&mut i, &a).into()),
            "-o" => o.options.push(value(&mut i, "-o")),
            _ if crate::common::verbosity_flag(&a).is_some() => {
                o.verbose = o
                    .verbose
                    .saturating_add(crate::common::verbosity_flag(&a).unwrap_or(0))
            }
            "--runtime" => {
                o.runtime = RuntimeKind::parse(&value(&mut i, &a)).unwrap_or_else(|e| die(&e))
            }
            "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ if a.starts_with("-o") && a.len() > 2 => o.options.push(a[2..].to_string()),
            _ if a.starts_with("-p") && a.len() > 2 => {
                o.port = a[2..].parse().unwrap_or_else(|_| die("bad port"))
            }
            _ => die(&format!("unknown argument {a:?}\n{USAGE}")),
        }
        i += 1;
    }
    o
}
