//! The SFTP client operations every adapter's `Sftp` runs: the session's
//! settings, requests built from resolved paths, replies read into
//! results, and the bookkeeping of pipelined transfers. Nothing here does
//! I/O: each adapter sends the requests and waits for the replies in its
//! own way.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use crate::sftp::{
    draft_symlink_peer, open_flags, status, status_error, Attrs, CheckTarget, Limits, NameEntry,
    Request, Response, SftpClient, StatVfs,
};
use crate::Error;

/// A directory entry with its attributes (paramiko's `SFTPAttributes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// File name (no directory part).
    pub name: String,
    /// The server's `ls -l` line (may be empty).
    pub longname: String,
    /// Attributes as the server reported them.
    pub attrs: Attrs,
}

/// How to open a remote file (paramiko's mode letters map onto these; see
/// [`OpenOptions::from_mode`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
    /// Every write goes to the end of the file.
    pub append: bool,
    /// Create the file if it does not exist.
    pub create: bool,
    /// Truncate an existing file to 0 bytes.
    pub truncate: bool,
    /// Fail if the file exists (paramiko's `'x'`).
    pub exclusive: bool,
    /// Permissions for a created file.
    pub mode: Option<u32>,
}

impl OpenOptions {
    /// Read-only, the file must exist.
    pub fn read() -> Self {
        OpenOptions {
            read: true,
            ..Default::default()
        }
    }
    /// Create or truncate, write only.
    pub fn write() -> Self {
        OpenOptions {
            write: true,
            create: true,
            truncate: true,
            ..Default::default()
        }
    }
    /// Python/paramiko mode strings: `r`, `w`, `a`, `x`, with `+`
    /// (and `b`, ignored).
    pub fn from_mode(mode: &str) -> Result<Self, Error> {
        let mut o = OpenOptions::default();
        let plus = mode.contains('+');
        match mode.chars().find(|c| "rwax".contains(*c)) {
            Some('r') => {
                o.read = true;
                o.write = plus;
            }
            Some('w') => {
                o.write = true;
                o.create = true;
                o.truncate = true;
                o.read = plus;
            }
            Some('a') => {
                o.write = true;
                o.append = true;
                o.create = true;
                o.read = plus;
            }
            Some('x') => {
                o.write = true;
                o.create = true;
                o.exclusive = true;
                o.read = plus;
            }
            _ => return Err(Error::usage(format!("bad file mode {mode:?}"))),
        }
        Ok(o)
    }
}

/// Transfer tuning: request size and how many are in flight.
#[derive(Clone, Copy, Debug)]
pub struct Pipeline {
    /// Bytes per `READ`/`WRITE` request.
    pub chunk: u32,
    /// Requests in flight at once.
    pub requests: usize,
}

// ------------------------------------------------------------- session

/// A client machine for a peer with this SSH version (draft SYMLINK order where it needs that).
pub fn new_machine(peer_version: Option<&str>) -> SftpClient {
    let mut machine = SftpClient::new();
    if peer_version.is_some_and(draft_symlink_peer) {
        machine.set_draft_symlink(true);
    }
    machine
}

/// The per-session settings: working directory, server limits, transfer tuning.
pub struct Settings {
    /// Working directory relative paths resolve against; `None` is the server's default.
    pub cwd: Option<String>,
    /// The server's `limits@openssh.com` answer, when it has one.
    pub limits: Option<Limits>,
    /// Transfer tuning, clamped to `limits`.
    pub pipeline: Pipeline,
}

impl Default for Settings {
    /// No working directory, no limits known, 64 requests of 32 KiB.
    fn default() -> Self {
        Settings {
            cwd: None,
            limits: None,
            pipeline: Pipeline {
                chunk: 32 * 1024,
                requests: 64,
            },
        }
    }
}

/// The largest request the server's limits allow (at most 255 KiB).
fn max_request(l: &Limits) -> u64 {
    l.max_read.min(l.max_write).min(255 * 1024)
}

impl Settings {
    /// Takes the reply to the `limits@openssh.com` request, if it decodes.
    pub fn apply_limits_reply(&mut self, r: Result<Response, Error>) {
        if let Ok(Response::ExtendedReply(d)) = r {
            if let Ok(l) = Limits::decode(&d) {
                self.limits = Some(l);
                // Larger requests when the server takes them; keep about
                // 4 MiB in flight.
                let max = max_request(&l);
                if max >= 64 * 1024 {
                    self.pipeline.chunk = max as u32;
                    self.pipeline.requests = (4 << 20) / max as usize;
                }
            }
        }
    }

    /// Sets the request size and count, clamped to what the limits allow.
    pub fn set_pipeline(&mut self, chunk: u32, requests: usize) {
        let max = self
            .limits
            .map_or(32 * 1024, |l| max_request(&l) as u32)
            .max(32 * 1024);
        self.pipeline = Pipeline {
            chunk: chunk.clamp(512, max),
            requests: requests.clamp(1, 1024),
        };
    }

    /// `path` resolved against the working directory, if one is set.
    pub fn resolve(&self, path: &str) -> String {
        match &self.cwd {
            Some(cwd) if !path.starts_with('/') => {
                if path.is_empty() || path == "." {
                    cwd.clone()
                } else if cwd.ends_with('/') {
                    format!("{cwd}{path}")
                } else {
                    format!("{cwd}/{path}")
                }
            }
            _ => path.to_string(),
        }
    }
}

// -------------------------------------------------------------- errors

fn unexpected(what: &str, r: &Response) -> Error {
    Error::protocol(format!("unexpected SFTP reply to {what}: {r:?}"))
}

/// Turns a status reply into Ok(()) or the error naming `path`.
pub fn check_status(r: Response, what: &str, path: &str) -> Result<(), Error> {
    match r {
        Response::Status { code, .. } if code == status::OK => Ok(()),
        Response::Status { code, message } => Err(status_error(code, &message, Some(path))),
        r => Err(unexpected(what, &r)),
    }
}

/// The error a reply other than the expected one means, naming `path`.
pub fn status_or(r: Response, path: &str) -> Error {
    match r {
        Response::Status { code, message } => status_error(code, &message, Some(path)),
        r => unexpected(path, &r),
    }
}

/// Ok when `a` (the attributes of `path`) is a directory, for `chdir`.
pub fn require_dir(a: &Attrs, path: &str) -> Result<(), Error> {
    if a.is_dir() {
        Ok(())
    } else {
        Err(status_error(
            status::NO_SUCH_FILE,
            "not a directory",
            Some(path),
        ))
    }
}

// --------------------------------------------------- one-shot requests

/// One request and how to read its reply (for the one-request operations).
pub struct Call<T> {
    /// The request to send.
    pub request: Request,
    what: &'static str,
    path: String,
    decode: fn(Response, &'static str, &str) -> Result<T, Error>,
}

impl<T> Call<T> {
    /// What the reply `r` to the request means.
    pub fn reply(&self, r: Response) -> Result<T, Error> {
        (self.decode)(r, self.what, &self.path)
    }
}

fn call<T>(
    request: Request,
    what: &'static str,
    path: &str,
    decode: fn(Response, &'static str, &str) -> Result<T, Error>,
) -> Call<T> {
    Call {
        request,
        what,
        path: path.to_string(),
        decode,
    }
}

fn name_reply(r: Response, _: &str, path: &str) -> Result<String, Error> {
    match r {
        Response::Name(mut v) if !v.is_empty() => Ok(v.swap_remove(0).filename),
        r => Err(status_or(r, path)),
    }
}

fn handle_reply(r: Response, _: &str, path: &str) -> Result<Vec<u8>, Error> {
    match r {
        Response::Handle(h) => Ok(h),
        r => Err(status_or(r, path)),
    }
}

fn attrs_reply(r: Response, _: &str, path: &str) -> Result<Attrs, Error> {
    match r {
        Response::Attrs(a) => Ok(a),
        r => Err(status_or(r, path)),
    }
}

fn statvfs_reply(r: Response, _: &str, path: &str) -> Result<StatVfs, Error> {
    match r {
        Response::ExtendedReply(d) => StatVfs::decode(&d),
        r => Err(status_or(r, path)),
    }
}

fn check_reply(r: Response, _: &str, path: &str) -> Result<(String, Vec<u8>), Error> {
    match r {
        Response::ExtendedReply(d) => {
            let mut r = crate::wire::Reader::new(&d);
            let alg = String::from_utf8_lossy(r.string()?).into_owned();
            Ok((alg, r.rest().to_vec()))
        }
        r => Err(status_or(r, path)),
    }
}

/// REALPATH of the (resolved) path `p`.
pub fn realpath(p: String) -> Call<String> {
    call(Request::Realpath { path: p.clone() }, "", &p, name_reply)
}

/// READLINK of `p`.
pub fn readlink(p: String) -> Call<String> {
    call(Request::Readlink { path: p.clone() }, "", &p, name_reply)
}

/// OPENDIR of `p`: the directory handle.
pub fn opendir(p: String) -> Call<Vec<u8>> {
    call(Request::Opendir { path: p.clone() }, "", &p, handle_reply)
}

/// OPEN of `p` with the flags and creation mode of `opts`: the file handle.
pub fn open(p: String, opts: &OpenOptions) -> Call<Vec<u8>> {
    let request = Request::Open {
        path: p.clone(),
        flags: flags(opts),
        attrs: Attrs {
            permissions: opts.mode,
            ..Default::default()
        },
    };
    call(request, "", &p, handle_reply)
}

/// MKDIR of `p` with permissions `mode`.
pub fn mkdir(p: String, mode: u32) -> Call<()> {
    let attrs = Attrs {
        permissions: Some(mode),
        ..Default::default()
    };
    call(
        Request::Mkdir {
            path: p.clone(),
            attrs,
        },
        "mkdir",
        &p,
        check_status,
    )
}

/// RMDIR of `p`.
pub fn rmdir(p: String) -> Call<()> {
    call(
        Request::Rmdir { path: p.clone() },
        "rmdir",
        &p,
        check_status,
    )
}

/// REMOVE of `p`.
pub fn remove(p: String) -> Call<()> {
    call(
        Request::Remove { path: p.clone() },
        "remove",
        &p,
        check_status,
    )
}

/// RENAME of `old` to `new`, or `posix-rename@openssh.com` (replacing `new`) when `posix`.
pub fn rename(old: String, new: String, posix: bool) -> Call<()> {
    let request = if posix {
        Request::PosixRename {
            old: old.clone(),
            new,
        }
    } else {
        Request::Rename {
            old: old.clone(),
            new,
        }
    };
    call(request, "rename", &old, check_status)
}

/// SYMLINK creating `link` (resolved) pointing at `target` (as given).
pub fn symlink(target: &str, link: String) -> Call<()> {
    let request = Request::Symlink {
        target: target.to_string(),
        link: link.clone(),
    };
    call(request, "symlink", &link, check_status)
}

/// `hardlink@openssh.com` creating `new` for `old`.
pub fn hardlink(old: String, new: String) -> Call<()> {
    let request = Request::Hardlink {
        old: old.clone(),
        new,
    };
    call(request, "hardlink", &old, check_status)
}

/// STAT of `p`.
pub fn stat(p: String) -> Call<Attrs> {
    call(Request::Stat { path: p.clone() }, "", &p, attrs_reply)
}

/// LSTAT of `p`.
pub fn lstat(p: String) -> Call<Attrs> {
    call(Request::Lstat { path: p.clone() }, "", &p, attrs_reply)
}

/// SETSTAT of `p`.
pub fn setstat(p: String, attrs: Attrs) -> Call<()> {
    call(
        Request::Setstat {
            path: p.clone(),
            attrs,
        },
        "setstat",
        &p,
        check_status,
    )
}

/// The SETSTAT of `chmod`: permissions only.
pub fn chmod(p: String, mode: u32) -> Call<()> {
    let attrs = Attrs {
        permissions: Some(mode),
        ..Default::default()
    };
    setstat(p, attrs)
}

/// The SETSTAT of `chown`: owner and group only.
pub fn chown(p: String, uid: u32, gid: u32) -> Call<()> {
    let attrs = Attrs {
        uid_gid: Some((uid, gid)),
        ..Default::default()
    };
    setstat(p, attrs)
}

/// The SETSTAT of `set_times`: access and modification times only.
pub fn set_times(p: String, atime: u32, mtime: u32) -> Call<()> {
    let attrs = Attrs {
        times: Some((atime, mtime)),
        ..Default::default()
    };
    setstat(p, attrs)
}

/// The SETSTAT of `truncate`: the size only.
pub fn truncate(p: String, size: u64) -> Call<()> {
    let attrs = Attrs {
        size: Some(size),
        ..Default::default()
    };
    setstat(p, attrs)
}

/// `statvfs@openssh.com` of `p`.
pub fn statvfs(p: String) -> Call<StatVfs> {
    call(Request::Statvfs { path: p.clone() }, "", &p, statvfs_reply)
}

/// `check-file-name` of all of `p`: (algorithm used, hash bytes).
pub fn check(p: String, algorithms: &str) -> Call<(String, Vec<u8>)> {
    let request = Request::CheckFile {
        target: CheckTarget::Name(p.clone()),
        algorithms: algorithms.to_string(),
        offset: 0,
        len: 0,
        block_size: 0,
    };
    call(request, "", &p, check_reply)
}

/// FSTAT of an open file (`path` names it in errors).
pub fn fstat(handle: Vec<u8>, path: &str) -> Call<Attrs> {
    call(Request::Fstat { handle }, "", path, attrs_reply)
}

/// FSETSTAT of an open file.
pub fn fsetstat(handle: Vec<u8>, path: &str, attrs: Attrs) -> Call<()> {
    call(
        Request::Fsetstat { handle, attrs },
        "fsetstat",
        path,
        check_status,
    )
}

/// `fsync@openssh.com` of an open file.
pub fn fsync(handle: Vec<u8>, path: &str) -> Call<()> {
    call(Request::Fsync { handle }, "fsync", path, check_status)
}

/// CLOSE of an open file.
pub fn close(handle: Vec<u8>, path: &str) -> Call<()> {
    call(Request::Close { handle }, "close", path, check_status)
}

/// The SFTP open flags for `o`.
pub fn flags(o: &OpenOptions) -> u32 {
    let mut f = 0;
    if o.read {
        f |= open_flags::READ;
    }
    if o.write || o.append {
        f |= open_flags::WRITE;
    }
    if o.append {
        f |= open_flags::APPEND;
    }
    if o.create {
        f |= open_flags::CREAT;
    }
    if o.truncate {
        f |= open_flags::TRUNC;
    }
    if o.exclusive {
        f |= open_flags::EXCL | open_flags::CREAT;
    }
    f
}

/// Takes one READDIR outcome into `out` (no `.`/`..`); Break at the end or on an error.
pub fn read_dir_reply(
    r: Result<Response, Error>,
    out: &mut Vec<DirEntry>,
    path: &str,
) -> ControlFlow<Result<(), Error>> {
    match r {
        Ok(Response::Name(v)) => {
            out.extend(
                v.into_iter()
                    .filter(|e| e.filename != "." && e.filename != "..")
                    .map(
                        |NameEntry {
                             filename,
                             longname,
                             attrs,
                         }| DirEntry {
                            name: filename,
                            longname,
                            attrs,
                        },
                    ),
            );
            ControlFlow::Continue(())
        }
        Ok(Response::Status { code, .. }) if code == status::EOF => ControlFlow::Break(Ok(())),
        Ok(r) => ControlFlow::Break(Err(status_or(r, path))),
        Err(e) => ControlFlow::Break(Err(e)),
    }
}

// ----------------------------------------------------- ranged reads

/// Splits a read of `len` bytes at `offset` into READs per `p`: (file offset, place, length).
pub fn read_plan(offset: u64, len: usize, p: Pipeline) -> Vec<(u64, usize, usize)> {
    let chunk = p.chunk as usize;
    let mut plan = Vec::new();
    let mut at = 0usize;
    while at < len && plan.len() < p.requests {
        let n = chunk.min(len - at);
        plan.push((offset + at as u64, at, n));
        at += n;
    }
    plan
}

/// One READ reply of a ranged read: Some(data) to append (short ends it), None to stop, or error.
pub fn read_piece(
    r: Response,
    at: usize,
    filled: usize,
    len: usize,
    path: &str,
) -> Result<Option<Vec<u8>>, Error> {
    match r {
        Response::Data(d) if d.len() <= len && at == filled => Ok(Some(d)),
        Response::Data(_) => Ok(None),
        Response::Status { code, .. } if code == status::EOF => Ok(None),
        r => Err(status_or(r, path)),
    }
}

// ------------------------------------------------- pipelined transfers

/// Takes every reply that has arrived among `ids`; None when none has.
pub fn take_any(
    m: &mut SftpClient,
    ids: impl Iterator<Item = u32>,
) -> Option<Vec<(u32, Response)>> {
    let v: Vec<_> = ids
        .filter_map(|id| m.take_reply(id).map(|r| (id, r)))
        .collect();
    (!v.is_empty()).then_some(v)
}

/// The bookkeeping of a pipelined download: ranges to ask for, in flight, and received.
pub struct Download {
    chunk: u32,
    next: u64,
    eof_at: Option<u64>,
    done: u64,
    /// Gaps left by short reads, fetched again.
    holes: Vec<(u64, u32)>,
    /// (id, offset, length asked)
    inflight: Vec<(u32, u64, u32)>,
}

impl Download {
    /// A download from offset 0 in reads of `chunk` bytes.
    pub fn new(chunk: u32, requests: usize) -> Self {
        Download {
            chunk,
            next: 0,
            eof_at: None,
            done: 0,
            holes: Vec::new(),
            inflight: Vec::with_capacity(requests),
        }
    }

    /// Sends READs with `send(offset, len) -> id` until `requests` are in flight (holes first).
    pub fn request_more(
        &mut self,
        requests: usize,
        mut send: impl FnMut(u64, u32) -> Result<u32, Error>,
    ) -> Result<(), Error> {
        // Holes past EOF are not holes.
        if let Some(e) = self.eof_at {
            self.holes.retain(|(o, _)| *o < e);
        }
        while self.inflight.len() < requests {
            let (off, len) = if let Some(h) = self.holes.pop() {
                h
            } else if self.eof_at.is_none() {
                let o = self.next;
                self.next += self.chunk as u64;
                (o, self.chunk)
            } else {
                break;
            };
            let id = send(off, len)?;
            self.inflight.push((id, off, len));
        }
        Ok(())
    }

    /// Whether nothing is in flight (after `request_more`: the download is done).
    pub fn is_idle(&self) -> bool {
        self.inflight.is_empty()
    }

    /// The ids of the READs in flight.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.inflight.iter().map(|r| r.0)
    }

    /// Takes the reply to READ `id`: Some((offset, data)) to write, None at EOF, or the error.
    pub fn reply(
        &mut self,
        id: u32,
        r: Response,
        path: &str,
    ) -> Result<Option<(u64, Vec<u8>)>, Error> {
        let Some(i) = self.inflight.iter().position(|x| x.0 == id) else {
            return Ok(None);
        };
        let (_, off, len) = self.inflight.swap_remove(i);
        match r {
            Response::Data(d) => {
                if d.is_empty() || d.len() > len as usize {
                    return Err(Error::protocol(format!(
                        "SFTP read of {len} bytes at {off} returned {}",
                        d.len()
                    )));
                }
                let n = d.len();
                self.done += n as u64;
                if (n as u32) < len {
                    self.holes.push((off + n as u64, len - n as u32));
                }
                Ok(Some((off, d)))
            }
            Response::Status { code, .. } if code == status::EOF => {
                self.eof_at = Some(self.eof_at.map_or(off, |e| e.min(off)));
                Ok(None)
            }
            r => Err(status_or(r, path)),
        }
    }

    /// The bytes received so far.
    pub fn done(&self) -> u64 {
        self.done
    }
}

/// The bookkeeping of a pipelined upload: next offset, writes in flight, bytes acknowledged.
#[derive(Default)]
pub struct Upload {
    /// (id, length)
    inflight: VecDeque<(u32, u64)>,
    off: u64,
    acked: u64,
}

impl Upload {
    /// The file offset of the next piece.
    pub fn offset(&self) -> u64 {
        self.off
    }

    /// Records the WRITE `id` of the next `len` bytes.
    pub fn sent(&mut self, id: u32, len: usize) {
        self.inflight.push_back((id, len as u64));
        self.off += len as u64;
    }

    /// How many WRITEs are in flight.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// The oldest WRITE in flight.
    pub fn oldest(&self) -> Option<u32> {
        self.inflight.front().map(|r| r.0)
    }

    /// The ids of the WRITEs in flight.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.inflight.iter().map(|r| r.0)
    }

    /// Takes the status reply to WRITE `id`: the bytes acknowledged so far, or the error.
    pub fn reply(&mut self, id: u32, r: Response, path: &str) -> Result<u64, Error> {
        let i = self.inflight.iter().position(|x| x.0 == id).unwrap_or(0);
        let (_, n) = self.inflight.remove(i).unwrap_or((id, 0));
        check_status(r, "write", path)?;
        self.acked += n;
        Ok(self.acked)
    }
}
