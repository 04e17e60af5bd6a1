//! The async SFTP client: the blocking adapters' `Sftp`,
//! with every method that talks to the server `async`.
//!
//! ```no_run
//! # async fn f(client: &ssh_tokio::Client) -> Result<(), ssh_tokio::Error> {
//! let sftp = client.sftp().await?;
//! sftp.put("local.bin", "/tmp/remote.bin", None).await?;
//! for e in sftp.read_dir("/tmp").await? {
//!     println!("{} {:?}", e.name, e.attrs.size);
//! }
//! # Ok(()) }
//! ```
//!
//! One [`SftpClient`](ssh_proto::sftp::SftpClient) machine runs over the
//! channel, behind a short-held (never across an `.await`) lock. A request
//! is queued in the machine; the task that waits for its reply writes
//! whatever output is queued and reads the channel into the machine, which
//! files each reply under its id. So several tasks may use one `Sftp` (it
//! is `Clone + Send + Sync`) and their requests are in flight together;
//! whoever reads a reply leaves it for its owner and wakes it.
//!
//! Cancellation: dropping any future of this module mid-operation leaves
//! the session intact. Bytes queued for the channel stay queued until the
//! next operation writes them (never half a packet), and the ids of
//! requests nobody waits for any more are remembered so their replies are
//! thrown away when they arrive.
//!
//! `get`, `put` and large reads and writes on a [`File`] keep many requests
//! in flight (about 4 MiB, in 255 KiB requests when the server's
//! `limits@openssh.com` allows, else 64 of 32 KiB).

mod cancel;
mod file;
mod state;
mod transfer;

use std::collections::HashSet;
use std::future::poll_fn;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};

use ssh_proto::sftp::codec::ext;
use ssh_proto::sftp::{Attrs, Limits, Request, Response, StatVfs};
use ssh_proto::Error;

use ssh_proto::session::sftp::{self as shared, Call, Settings};
pub use ssh_proto::session::sftp::{DirEntry, OpenOptions, Pipeline};

use crate::Channel;
use cancel::{HandleGuard, Outstanding};
pub use file::File;
use state::State;
pub use transfer::Progress;

struct Inner {
    state: Mutex<State>,
}

/// An SFTP session. Cloning gives another handle to the same session;
/// handles may be used from several tasks at once.
#[derive(Clone)]
pub struct Sftp {
    inner: Arc<Inner>,
}

impl Sftp {
    /// Starts SFTP on a channel whose `sftp` subsystem is already running.
    pub async fn new(channel: Channel) -> Result<Sftp, Error> {
        let st = State {
            machine: shared::new_machine(channel.peer_version().as_deref()),
            channel,
            out: Vec::new(),
            out_pos: 0,
            buf: Vec::new(),
            abandoned: HashSet::new(),
            waiters: Vec::new(),
            settings: Settings::default(),
        };
        let sftp = Sftp {
            inner: Arc::new(Inner {
                state: Mutex::new(st),
            }),
        };
        poll_fn(|cx| sftp.lock().poll_until(cx, |m| m.version())).await?;
        let has_limits = sftp.lock().machine.extension(ext::LIMITS).is_some();
        if has_limits {
            let r = sftp.call(&Request::Limits).await;
            sftp.lock().settings.apply_limits_reply(r);
        }
        Ok(sftp)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the reply to `id` (one of `g`'s).
    async fn wait_reply(&self, g: &mut Outstanding<'_>, id: u32) -> Result<Response, Error> {
        let r = poll_fn(|cx| self.lock().poll_until(cx, |m| m.take_reply(id))).await?;
        g.forget(id);
        Ok(r)
    }

    async fn call(&self, req: &Request) -> Result<Response, Error> {
        let mut g = Outstanding::new(self);
        let id = self.lock().machine.send(req)?;
        g.ids.push(id);
        self.wait_reply(&mut g, id).await
    }

    /// Sends `c`'s request and reads its reply.
    async fn run<T>(&self, c: Call<T>) -> Result<T, Error> {
        c.reply(self.call(&c.request).await?)
    }

    /// Extensions the server offered.
    pub fn extensions(&self) -> Vec<(String, String)> {
        self.lock().machine.extensions().to_vec()
    }

    /// The server's `limits@openssh.com`, if it offered them.
    pub fn limits(&self) -> Option<Limits> {
        self.lock().settings.limits
    }

    /// Request size and count for transfers (OpenSSH `sftp -B` / `-R`).
    pub fn set_pipeline(&self, chunk: u32, requests: usize) {
        self.lock().settings.set_pipeline(chunk, requests);
    }

    /// The current request size and count for transfers.
    pub fn pipeline(&self) -> Pipeline {
        self.lock().settings.pipeline
    }

    /// Requests sent whose replies have not been taken yet, counting those
    /// of dropped futures whose replies have not arrived yet (they are
    /// thrown away when they do).
    pub fn in_flight(&self) -> usize {
        self.lock().machine.in_flight()
    }

    fn path(&self, p: &str) -> String {
        self.lock().settings.resolve(p)
    }

    // ------------------------------------------------------- directories

    /// paramiko's `chdir`: later relative paths resolve against it. `None`
    /// goes back to the server's default.
    pub async fn chdir(&self, path: Option<&str>) -> Result<(), Error> {
        let Some(p) = path else {
            self.lock().settings.cwd = None;
            return Ok(());
        };
        let real = self.realpath(p).await?;
        shared::require_dir(&self.stat(&real).await?, &real)?;
        self.lock().settings.cwd = Some(real);
        Ok(())
    }

    /// The directory set by `chdir`, or the server's idea of "." when none.
    pub async fn getcwd(&self) -> Result<String, Error> {
        let cwd = self.lock().settings.cwd.clone();
        match cwd {
            Some(c) => Ok(c),
            None => self.realpath(".").await,
        }
    }

    /// The server's canonical absolute form of `path`.
    pub async fn realpath(&self, path: &str) -> Result<String, Error> {
        self.run(shared::realpath(self.path(path))).await
    }

    /// Entries of a directory with their attributes, `.` and `..` left out.
    pub async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Error> {
        let p = self.path(path);
        let handle = self.run(shared::opendir(p.clone())).await?;
        // Closed even if this future is dropped half-way.
        let mut guard = HandleGuard {
            sftp: self,
            handle: Some(handle.clone()),
        };
        let mut out = Vec::new();
        let result = loop {
            let r = self
                .call(&Request::Readdir {
                    handle: handle.clone(),
                })
                .await;
            if let ControlFlow::Break(r) = shared::read_dir_reply(r, &mut out, &p) {
                break r;
            }
        };
        let handle = guard.disarm();
        let _ = self.call(&Request::Close { handle }).await;
        result.map(|_| out)
    }

    /// Creates a directory with permission bits `mode`.
    pub async fn mkdir(&self, path: &str, mode: u32) -> Result<(), Error> {
        self.run(shared::mkdir(self.path(path), mode)).await
    }

    /// Removes an empty directory.
    pub async fn rmdir(&self, path: &str) -> Result<(), Error> {
        self.run(shared::rmdir(self.path(path))).await
    }

    // ------------------------------------------------------------- paths

    /// Removes a file (not a directory).
    pub async fn remove(&self, path: &str) -> Result<(), Error> {
        self.run(shared::remove(self.path(path))).await
    }

    /// Renames, replacing `new` when the server offers
    /// `posix-rename@openssh.com` (plain SFTP rename fails if it exists).
    pub async fn rename(&self, old: &str, new: &str) -> Result<(), Error> {
        let (old, new) = (self.path(old), self.path(new));
        let posix = self.lock().machine.extension(ext::POSIX_RENAME).is_some();
        self.run(shared::rename(old, new, posix)).await
    }

    /// Creates `link` pointing at `target`.
    pub async fn symlink(&self, target: &str, link: &str) -> Result<(), Error> {
        self.run(shared::symlink(target, self.path(link))).await
    }

    /// The target of a symbolic link.
    pub async fn readlink(&self, path: &str) -> Result<String, Error> {
        self.run(shared::readlink(self.path(path))).await
    }

    /// Creates hard link `new` to `old` (`hardlink@openssh.com`; fails
    /// when the server lacks it).
    pub async fn hardlink(&self, old: &str, new: &str) -> Result<(), Error> {
        self.run(shared::hardlink(self.path(old), self.path(new)))
            .await
    }

    // -------------------------------------------------------- attributes

    /// Attributes of `path`, following symbolic links.
    pub async fn stat(&self, path: &str) -> Result<Attrs, Error> {
        self.run(shared::stat(self.path(path))).await
    }

    /// Attributes of `path` itself (a link is not followed).
    pub async fn lstat(&self, path: &str) -> Result<Attrs, Error> {
        self.run(shared::lstat(self.path(path))).await
    }

    /// Sets the attributes present in `attrs`.
    pub async fn setstat(&self, path: &str, attrs: Attrs) -> Result<(), Error> {
        self.run(shared::setstat(self.path(path), attrs)).await
    }

    /// Sets the permission bits.
    pub async fn chmod(&self, path: &str, mode: u32) -> Result<(), Error> {
        self.run(shared::chmod(self.path(path), mode)).await
    }

    /// Sets owner and group (numeric ids).
    pub async fn chown(&self, path: &str, uid: u32, gid: u32) -> Result<(), Error> {
        self.run(shared::chown(self.path(path), uid, gid)).await
    }

    /// Sets access and modification times (seconds since the epoch).
    pub async fn set_times(&self, path: &str, atime: u32, mtime: u32) -> Result<(), Error> {
        self.run(shared::set_times(self.path(path), atime, mtime))
            .await
    }

    /// Sets the file's size to `size` bytes.
    pub async fn truncate(&self, path: &str, size: u64) -> Result<(), Error> {
        self.run(shared::truncate(self.path(path), size)).await
    }

    /// Filesystem statistics (`statvfs@openssh.com`; fails when the
    /// server lacks it).
    pub async fn statvfs(&self, path: &str) -> Result<StatVfs, Error> {
        self.run(shared::statvfs(self.path(path))).await
    }

    /// paramiko's `check()`: the server hashes the file (`check-file-name`).
    /// Returns (algorithm used, hash bytes).
    pub async fn check(&self, path: &str, algorithms: &str) -> Result<(String, Vec<u8>), Error> {
        self.run(shared::check(self.path(path), algorithms)).await
    }
}
