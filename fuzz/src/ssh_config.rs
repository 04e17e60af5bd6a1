//! The `ssh_config` target: `ssh_proto::config` evaluating fuzz text.
//!
//! `data` is split at NUL bytes: the first part is the host, the second
//! the user configuration file, and every later part is what an `Include`
//! returns (the n-th include call gets the n-th part, as a file that may
//! include again). `Match exec` succeeds for commands of even length.

use std::cell::Cell;

use ssh_proto::config::{ConfigFile, Context, Resolver};

/// Never panics, whatever the text.
pub fn ssh_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let host = parts.next().unwrap_or("").to_string();
    let main = parts.next().unwrap_or("").to_string();
    let includes: Vec<String> = parts.map(str::to_string).collect();
    let mut ctx = Context::new(host, "fuzz", "/home/fuzz");
    ctx.local_hostname = "fuzzhost.example".into();
    ctx.local_addrs = vec!["10.1.2.3".parse().unwrap(), "fe80::1".parse().unwrap()];
    ctx.remote_command = Some("ls".into());
    let calls = Cell::new(0usize);
    let r = Resolver::new(&ctx)
        .include(|pattern| {
            let n = calls.get();
            calls.set(n + 1);
            match includes.get(n % includes.len().max(1)) {
                Some(c) if !includes.is_empty() => vec![(format!("{pattern}.{n}"), c.clone())],
                _ => Vec::new(),
            }
        })
        .exec(|cmd| cmd.len() % 2 == 0)
        .env(|name| (name.len() % 2 == 0).then(|| name.to_lowercase()))
        .resolve(&[
            ConfigFile::user("fuzz_config", main),
            ConfigFile::system("/etc/ssh/ssh_config", "Host *\n"),
        ]);
    match r {
        Ok(cfg) => {
            assert!(cfg.port != 0);
            let _ = cfg.get("hostname");
        }
        Err(e) => assert!(!e.messages.is_empty()),
    }
}
