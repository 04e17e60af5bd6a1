//! ssh_config(5): a parser and evaluator for OpenSSH client configuration
//! files, with no I/O.
//!
//! File contents come in as strings; `Include` globs, `Match exec`
//! commands and `${VAR}` lookups go through caller-supplied closures.
//! The result, [`ResolvedConfig`], holds the options for one destination
//! host the way `ssh -G` would compute them: first value wins, the
//! accumulating keywords (`IdentityFile`, `CertificateFile`,
//! `LocalForward`, `RemoteForward`, `DynamicForward`, `SendEnv`) add up,
//! `Hostname` has its `%h` replaced, and the path and command options
//! have their `%` tokens, `${VAR}` and `~` expanded where ssh expands them.
//!
//! ```
//! use ssh_proto::config::{ConfigFile, Context, Resolver};
//!
//! let ctx = Context::new("web", "alice", "/home/alice");
//! let file = ConfigFile::user("/home/alice/.ssh/config", "\
//! Host web
//!     Hostname %h.example.com
//!     User deploy
//! Host *
//!     IdentityFile ~/.ssh/id_%r
//!     Port 2222
//! ");
//! let cfg = Resolver::new(&ctx).resolve(&[file])?;
//! assert_eq!(cfg.hostname, "web.example.com");
//! assert_eq!(cfg.user, "deploy");
//! assert_eq!(cfg.port, 2222);
//! assert_eq!(cfg.identity_files, ["/home/alice/.ssh/id_deploy"]);
//! # Ok::<(), ssh_proto::config::ConfigError>(())
//! ```

mod eval;
mod expand;
mod keywords;
mod lex;
mod resolved;

use std::fmt;
use std::net::IpAddr;

pub use keywords::known_keywords;
pub use resolved::ResolvedConfig;

/// Include nesting limit (OpenSSH's `READCONF_MAX_DEPTH`).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Longest accepted line, in bytes.
pub const MAX_LINE_LEN: usize = 64 * 1024;
/// Most lines accepted in one file.
pub const MAX_LINES: usize = 100_000;
/// Most files read in one pass (the top-level files and every include).
pub const MAX_FILES: usize = 1024;

/// One configuration file's path (used in messages, and to tell user from
/// system files) and contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    /// The file's path, as messages should name it.
    pub path: String,
    /// Its contents.
    pub contents: String,
    /// A user file (`~/.ssh/config`, `ssh -F`): relative `Include` paths
    /// are under `~/.ssh`. Otherwise a system file (`/etc/ssh/ssh_config`):
    /// relative includes are under `/etc/ssh` and `~` is refused.
    pub user: bool,
}

impl ConfigFile {
    /// A user configuration file.
    pub fn user(path: impl Into<String>, contents: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            contents: contents.into(),
            user: true,
        }
    }

    /// A system-wide configuration file.
    pub fn system(path: impl Into<String>, contents: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            contents: contents.into(),
            user: false,
        }
    }
}

/// What the evaluation knows about the local side and the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// The destination as given on the command line (`%n`, `Host` and
    /// `Match originalhost`).
    pub host: String,
    /// The local user name (`%u`, `Match localuser`, the default `User`).
    pub local_user: String,
    /// The local user's home directory (`%d`, `~`).
    pub home: String,
    /// The local user id (`%i`).
    pub uid: u32,
    /// The local host name as `gethostname` returns it (`%l`; `%L` is its
    /// first label).
    pub local_hostname: String,
    /// The local interface addresses, for `Match localnetwork`.
    pub local_addrs: Vec<IpAddr>,
    /// The remote command given on the command line (`Match command`,
    /// `Match sessiontype`).
    pub remote_command: Option<String>,
    /// `User` from the command line (`-l`, `user@host`): wins over files.
    pub user: Option<String>,
    /// `Port` from the command line (`-p`): wins over files.
    pub port: Option<u16>,
    /// `-o` options, in order: processed before the files, always active.
    pub options: Vec<String>,
    /// What `Match version` compares against.
    pub version: String,
}

impl Context {
    /// A context for `host`, run by `local_user` whose home is `home`.
    pub fn new(
        host: impl Into<String>,
        local_user: impl Into<String>,
        home: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            local_user: local_user.into(),
            home: home.into(),
            ..Self::default()
        }
    }
}

/// Why a configuration could not be evaluated: the lines ssh would print
/// on stderr before giving up (e.g. `FILE: line 3: Bad configuration
/// option: foo`, then `FILE: terminating, 1 bad configuration options`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The messages, in order; never empty.
    pub messages: Vec<String>,
}

impl ConfigError {
    fn one(msg: impl Into<String>) -> Self {
        Self {
            messages: vec![msg.into()],
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.messages.join("\n"))
    }
}

impl std::error::Error for ConfigError {}

/// Whether a file name matches one component of an `Include` glob
/// pattern (`*` and `?`; as glob(3), a leading `.` must be matched by a
/// literal `.`). For callers writing the [`Resolver::include`] closure:
/// list the pattern's directory and keep the names that match its last
/// component, sorted.
///
/// ```
/// use ssh_proto::config::glob_match;
/// assert!(glob_match("10-web.conf", "*.conf"));
/// assert!(!glob_match(".hidden.conf", "*.conf"));
/// assert!(glob_match(".hidden.conf", ".*"));
/// ```
pub fn glob_match(name: &str, pattern: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    lex::match_pattern(name, pattern)
}

type IncludeFn<'a> = Box<dyn FnMut(&str) -> Vec<(String, String)> + 'a>;
type ExecFn<'a> = Box<dyn FnMut(&str) -> bool + 'a>;
type EnvFn<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Evaluates configuration files for one [`Context`]. The I/O it needs
/// comes from closures: [`include`](Self::include) (default: no file
/// matches), [`exec`](Self::exec) (default: every command fails) and
/// [`env`](Self::env) (default: no variable is set).
pub struct Resolver<'a> {
    ctx: &'a Context,
    include: IncludeFn<'a>,
    exec: ExecFn<'a>,
    env: EnvFn<'a>,
}

impl fmt::Debug for Resolver<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

impl<'a> Resolver<'a> {
    /// A resolver with the default (I/O-free) closures.
    pub fn new(ctx: &'a Context) -> Self {
        Self {
            ctx,
            include: Box::new(|_| Vec::new()),
            exec: Box::new(|_| false),
            env: Box::new(|_| None),
        }
    }

    /// `Include`: called with an absolute glob pattern (tokens, `${VAR}`
    /// and `~` already expanded; relative paths already placed under
    /// `~/.ssh` or `/etc/ssh`); returns the matching files, sorted as
    /// glob(3) sorts them, as (path, contents). Unreadable files are
    /// left out.
    pub fn include(mut self, f: impl FnMut(&str) -> Vec<(String, String)> + 'a) -> Self {
        self.include = Box::new(f);
        self
    }

    /// `Match exec`: runs the (token-expanded) command with the user's
    /// shell and says whether it exited with status 0.
    pub fn exec(mut self, f: impl FnMut(&str) -> bool + 'a) -> Self {
        self.exec = Box::new(f);
        self
    }

    /// Environment lookups for `${VAR}`.
    pub fn env(mut self, f: impl Fn(&str) -> Option<String> + 'a) -> Self {
        self.env = Box::new(f);
        self
    }

    /// Reads `files` in order (as ssh reads `~/.ssh/config` then
    /// `/etc/ssh/ssh_config`, or the one `-F` file) and resolves the
    /// options for the context's host. A `Match final` (or
    /// `CanonicalizeHostname`) makes a second pass, as ssh does; no
    /// DNS canonicalisation is done.
    pub fn resolve(&mut self, files: &[ConfigFile]) -> Result<ResolvedConfig, ConfigError> {
        eval::resolve(self, files)
    }
}

#[cfg(test)]
mod tests;
