//! The SFTP client and server machines against each other: an in-memory
//! filesystem backend answers what `SftpServer` hands it (in shuffled
//! order), and the bytes between the machines are cut into random chunks.

use std::collections::{HashMap, HashSet};

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use ssh_proto::internal::{Put, Reader};
use ssh_proto::sftp::codec::{self, ext, MAX_PACKET};
use ssh_proto::sftp::{
    open_flags, status, status_error, Attrs, CheckTarget, Limits, NameEntry, Request, Response,
    SftpClient, SftpServer, SftpServerConfig, StatVfs,
};
use ssh_proto::ErrorKind;

const HOME: &str = "/home/alice";

// ------------------------------------------------------------ the backend

enum Open {
    File {
        path: String,
        read: bool,
        write: bool,
        append: bool,
    },
    Dir {
        path: String,
        entries: Vec<NameEntry>,
        pos: usize,
    },
}

#[derive(Clone, Copy, Default)]
struct Meta {
    perm: Option<u32>,
    uid_gid: Option<(u32, u32)>,
    times: Option<(u32, u32)>,
}

/// An in-memory filesystem: files, directories and symlinks by absolute
/// path; handles are counters.
struct Fs {
    files: HashMap<String, Vec<u8>>,
    dirs: HashSet<String>,
    links: HashMap<String, String>,
    meta: HashMap<String, Meta>,
    handles: HashMap<Vec<u8>, Open>,
    next_handle: u64,
}

fn ok() -> Response {
    Response::ok()
}
fn no_such_file() -> Response {
    Response::status(status::NO_SUCH_FILE, "No such file")
}
fn failure(m: &str) -> Response {
    Response::status(status::FAILURE, m)
}
fn bad_handle() -> Response {
    failure("bad handle")
}
fn name(p: &str) -> Response {
    Response::Name(vec![NameEntry {
        filename: p.to_string(),
        longname: p.to_string(),
        attrs: Attrs::default(),
    }])
}

/// Absolute, with `.` and `..` resolved; relative paths start at HOME.
fn norm(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let full = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{HOME}/{p}")
    };
    for c in full.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn parent(p: &str) -> String {
    match p.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => p[..i].into(),
    }
}

fn base(p: &str) -> &str {
    &p[p.rfind('/').map_or(0, |i| i + 1)..]
}

impl Fs {
    fn new() -> Fs {
        let mut fs = Fs {
            files: HashMap::new(),
            dirs: HashSet::new(),
            links: HashMap::new(),
            meta: HashMap::new(),
            handles: HashMap::new(),
            next_handle: 0,
        };
        for d in ["/", "/home", HOME, "/tmp"] {
            fs.dirs.insert(d.to_string());
        }
        fs
    }

    fn exists(&self, p: &str) -> bool {
        self.files.contains_key(p) || self.dirs.contains(p) || self.links.contains_key(p)
    }

    /// Follows symlinks of the last component.
    fn follow(&self, p: &str) -> String {
        let mut p = p.to_string();
        for _ in 0..16 {
            match self.links.get(&p) {
                Some(t) if t.starts_with('/') => p = norm(t),
                Some(t) => p = norm(&format!("{}/{t}", parent(&p))),
                None => break,
            }
        }
        p
    }

    fn attrs(&self, p: &str, follow: bool) -> Option<Attrs> {
        let p = if follow {
            self.follow(p)
        } else {
            p.to_string()
        };
        let m = self.meta.get(&p).copied().unwrap_or_default();
        let (kind, size, perm) = if let Some(t) = self.links.get(&p) {
            (0o120000, t.len() as u64, 0o777)
        } else if let Some(f) = self.files.get(&p) {
            (0o100000, f.len() as u64, m.perm.unwrap_or(0o644))
        } else if self.dirs.contains(&p) {
            (0o040000, 4096, m.perm.unwrap_or(0o755))
        } else {
            return None;
        };
        Some(Attrs {
            size: Some(size),
            uid_gid: Some(m.uid_gid.unwrap_or((1000, 1000))),
            permissions: Some(kind | perm),
            times: Some(m.times.unwrap_or((0, 0))),
            extended: Vec::new(),
        })
    }

    fn set_attrs(&mut self, p: &str, a: &Attrs) -> Response {
        if !self.exists(p) {
            return no_such_file();
        }
        if let Some(size) = a.size {
            match self.files.get_mut(p) {
                Some(f) => f.resize(size as usize, 0),
                None => return failure("not a regular file"),
            }
        }
        let m = self.meta.entry(p.to_string()).or_default();
        if let Some(perm) = a.permissions {
            m.perm = Some(perm & 0o7777);
        }
        if a.uid_gid.is_some() {
            m.uid_gid = a.uid_gid;
        }
        if a.times.is_some() {
            m.times = a.times;
        }
        ok()
    }

    fn new_handle(&mut self, open: Open) -> Response {
        self.next_handle += 1;
        let h = format!("h{}", self.next_handle).into_bytes();
        self.handles.insert(h.clone(), open);
        Response::Handle(h)
    }

    fn file_of(&self, h: &[u8]) -> Option<(&str, bool, bool, bool)> {
        match self.handles.get(h)? {
            Open::File {
                path,
                read,
                write,
                append,
            } => Some((path.as_str(), *read, *write, *append)),
            Open::Dir { .. } => None,
        }
    }

    /// Moves a node (a directory with everything under it).
    fn move_node(&mut self, old: &str, new: &str) {
        let moved = |p: &String| -> Option<String> {
            if p == old {
                Some(new.to_string())
            } else {
                p.strip_prefix(&format!("{old}/"))
                    .map(|rest| format!("{new}/{rest}"))
            }
        };
        fn rekey<V>(m: &mut HashMap<String, V>, f: &dyn Fn(&String) -> Option<String>) {
            let keys: Vec<String> = m.keys().filter(|k| f(k).is_some()).cloned().collect();
            for k in keys {
                let v = m.remove(&k).unwrap();
                m.insert(f(&k).unwrap(), v);
            }
        }
        rekey(&mut self.files, &moved);
        rekey(&mut self.links, &moved);
        rekey(&mut self.meta, &moved);
        let dirs: Vec<String> = self.dirs.iter().filter_map(&moved).collect();
        self.dirs.retain(|d| moved(d).is_none());
        self.dirs.extend(dirs);
    }

    fn remove_node(&mut self, p: &str) {
        self.files.remove(p);
        self.links.remove(p);
        self.dirs.remove(p);
        self.meta.remove(p);
    }

    fn children(&self, dir: &str) -> Vec<String> {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        let mut v: Vec<String> = self
            .files
            .keys()
            .chain(self.links.keys())
            .chain(self.dirs.iter())
            .filter(|p| {
                p.strip_prefix(&prefix)
                    .is_some_and(|r| !r.is_empty() && !r.contains('/'))
            })
            .cloned()
            .collect();
        v.sort();
        v
    }

    fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Open { path, flags, attrs } => {
                let p = self.follow(&norm(&path));
                if self.dirs.contains(&p) {
                    return failure("is a directory");
                }
                if let Some(f) = self.files.get_mut(&p) {
                    if flags & open_flags::CREAT != 0 && flags & open_flags::EXCL != 0 {
                        return failure("file exists");
                    }
                    if flags & open_flags::TRUNC != 0 {
                        f.clear();
                    }
                } else {
                    if flags & open_flags::CREAT == 0 || !self.dirs.contains(&parent(&p)) {
                        return no_such_file();
                    }
                    self.files.insert(p.clone(), Vec::new());
                    if let Some(perm) = attrs.permissions {
                        self.meta.entry(p.clone()).or_default().perm = Some(perm & 0o7777);
                    }
                }
                self.new_handle(Open::File {
                    path: p,
                    read: flags & open_flags::READ != 0,
                    write: flags & open_flags::WRITE != 0,
                    append: flags & open_flags::APPEND != 0,
                })
            }
            Request::Close { handle } => match self.handles.remove(&handle) {
                Some(_) => ok(),
                None => bad_handle(),
            },
            Request::Read {
                handle,
                offset,
                len,
            } => {
                let Some((p, read, _, _)) = self.file_of(&handle) else {
                    return bad_handle();
                };
                if !read {
                    return Response::status(status::PERMISSION_DENIED, "not open for reading");
                }
                let Some(f) = self.files.get(p) else {
                    return no_such_file();
                };
                if offset >= f.len() as u64 {
                    return Response::status(status::EOF, "End of file");
                }
                let start = offset as usize;
                let end = f.len().min(start.saturating_add(len as usize));
                Response::Data(f[start..end].to_vec())
            }
            Request::Write {
                handle,
                offset,
                data,
            } => {
                let Some((p, _, write, append)) = self.file_of(&handle) else {
                    return bad_handle();
                };
                if !write {
                    return Response::status(status::PERMISSION_DENIED, "not open for writing");
                }
                let p = p.to_string();
                let Some(f) = self.files.get_mut(&p) else {
                    return no_such_file();
                };
                let at = if append { f.len() } else { offset as usize };
                if f.len() < at + data.len() {
                    f.resize(at + data.len(), 0);
                }
                f[at..at + data.len()].copy_from_slice(&data);
                ok()
            }
            Request::Lstat { path } => match self.attrs(&norm(&path), false) {
                Some(a) => Response::Attrs(a),
                None => no_such_file(),
            },
            Request::Stat { path } => match self.attrs(&norm(&path), true) {
                Some(a) => Response::Attrs(a),
                None => no_such_file(),
            },
            Request::Fstat { handle } => {
                let p = match self.handles.get(&handle) {
                    Some(Open::File { path, .. } | Open::Dir { path, .. }) => path.clone(),
                    None => return bad_handle(),
                };
                match self.attrs(&p, false) {
                    Some(a) => Response::Attrs(a),
                    None => no_such_file(),
                }
            }
            Request::Setstat { path, attrs } => {
                let p = self.follow(&norm(&path));
                self.set_attrs(&p, &attrs)
            }
            Request::Lsetstat { path, attrs } => self.set_attrs(&norm(&path), &attrs),
            Request::Fsetstat { handle, attrs } => {
                let p = match self.handles.get(&handle) {
                    Some(Open::File { path, .. } | Open::Dir { path, .. }) => path.clone(),
                    None => return bad_handle(),
                };
                self.set_attrs(&p, &attrs)
            }
            Request::Opendir { path } => {
                let p = self.follow(&norm(&path));
                if !self.dirs.contains(&p) {
                    return if self.exists(&p) {
                        failure("not a directory")
                    } else {
                        no_such_file()
                    };
                }
                let mut entries = Vec::new();
                for (n, full) in [(".", p.clone()), ("..", parent(&p))] {
                    entries.push(NameEntry {
                        filename: n.into(),
                        longname: format!("drwxr-xr-x {n}"),
                        attrs: self.attrs(&full, false).unwrap_or_default(),
                    });
                }
                for c in self.children(&p) {
                    entries.push(NameEntry {
                        filename: base(&c).to_string(),
                        longname: format!("-rw-r--r-- {}", base(&c)),
                        attrs: self.attrs(&c, false).unwrap_or_default(),
                    });
                }
                self.new_handle(Open::Dir {
                    path: p,
                    entries,
                    pos: 0,
                })
            }
            Request::Readdir { handle } => match self.handles.get_mut(&handle) {
                Some(Open::Dir { entries, pos, .. }) => {
                    if *pos >= entries.len() {
                        return Response::status(status::EOF, "End of directory");
                    }
                    // A few entries per reply, so listing takes several calls.
                    let end = entries.len().min(*pos + 3);
                    let batch = entries[*pos..end].to_vec();
                    *pos = end;
                    Response::Name(batch)
                }
                _ => bad_handle(),
            },
            Request::Remove { path } => {
                let p = norm(&path);
                if self.dirs.contains(&p) {
                    failure("is a directory")
                } else if self.files.contains_key(&p) || self.links.contains_key(&p) {
                    self.remove_node(&p);
                    ok()
                } else {
                    no_such_file()
                }
            }
            Request::Mkdir { path, attrs } => {
                let p = norm(&path);
                if self.exists(&p) {
                    return failure("file exists");
                }
                if !self.dirs.contains(&parent(&p)) {
                    return no_such_file();
                }
                self.dirs.insert(p.clone());
                if let Some(perm) = attrs.permissions {
                    self.meta.entry(p).or_default().perm = Some(perm & 0o7777);
                }
                ok()
            }
            Request::Rmdir { path } => {
                let p = norm(&path);
                if !self.dirs.contains(&p) {
                    return no_such_file();
                }
                if p == "/" || !self.children(&p).is_empty() {
                    return failure("directory not empty");
                }
                self.remove_node(&p);
                ok()
            }
            Request::Realpath { path } => name(&self.follow(&norm(&path))),
            Request::Rename { old, new } => {
                let (o, n) = (norm(&old), norm(&new));
                if !self.exists(&o) {
                    return no_such_file();
                }
                if self.exists(&n) {
                    return failure("file exists");
                }
                self.move_node(&o, &n);
                ok()
            }
            Request::PosixRename { old, new } => {
                let (o, n) = (norm(&old), norm(&new));
                if !self.exists(&o) {
                    return no_such_file();
                }
                if self.dirs.contains(&n) {
                    return failure("is a directory");
                }
                self.remove_node(&n);
                self.move_node(&o, &n);
                ok()
            }
            Request::Readlink { path } => {
                let p = norm(&path);
                match self.links.get(&p) {
                    Some(t) => name(t),
                    None if self.exists(&p) => failure("not a symbolic link"),
                    None => no_such_file(),
                }
            }
            Request::Symlink { target, link } => {
                let l = norm(&link);
                if self.exists(&l) {
                    return failure("file exists");
                }
                if !self.dirs.contains(&parent(&l)) {
                    return no_such_file();
                }
                self.links.insert(l, target);
                ok()
            }
            Request::Statvfs { path } => {
                if !self.exists(&self.follow(&norm(&path))) {
                    return no_such_file();
                }
                Response::ExtendedReply(self.statvfs().encode())
            }
            Request::Fstatvfs { handle } => {
                if !self.handles.contains_key(&handle) {
                    return bad_handle();
                }
                Response::ExtendedReply(self.statvfs().encode())
            }
            Request::Hardlink { old, new } => {
                let (o, n) = (norm(&old), norm(&new));
                let Some(data) = self.files.get(&o).cloned() else {
                    return no_such_file();
                };
                if self.exists(&n) {
                    return failure("file exists");
                }
                self.files.insert(n, data);
                ok()
            }
            Request::Fsync { handle } => match self.file_of(&handle) {
                Some(_) => ok(),
                None => bad_handle(),
            },
            Request::ExpandPath { path } => {
                let p = if path == "~" {
                    HOME.to_string()
                } else if let Some(rest) = path.strip_prefix("~/") {
                    norm(&format!("{HOME}/{rest}"))
                } else {
                    norm(&path)
                };
                name(&p)
            }
            Request::CopyData {
                from,
                from_offset,
                len,
                to,
                to_offset,
            } => {
                let (Some((src, true, _, _)), Some((dst, _, true, _))) =
                    (self.file_of(&from), self.file_of(&to))
                else {
                    return failure("bad handles for copy-data");
                };
                let (src, dst) = (src.to_string(), dst.to_string());
                let data = &self.files[&src];
                let start = (from_offset as usize).min(data.len());
                let end = if len == 0 {
                    data.len()
                } else {
                    data.len().min(start + len as usize)
                };
                let chunk = data[start..end].to_vec();
                let f = self.files.get_mut(&dst).unwrap();
                let at = to_offset as usize;
                if f.len() < at + chunk.len() {
                    f.resize(at + chunk.len(), 0);
                }
                f[at..at + chunk.len()].copy_from_slice(&chunk);
                ok()
            }
            Request::HomeDirectory { user } => {
                if user.is_empty() {
                    name(HOME)
                } else {
                    name(&format!("/home/{user}"))
                }
            }
            Request::CheckFile {
                target,
                algorithms,
                offset,
                len,
                block_size,
            } => {
                let p = match &target {
                    CheckTarget::Handle(h) => match self.file_of(h) {
                        Some((p, ..)) => p.to_string(),
                        None => return bad_handle(),
                    },
                    CheckTarget::Name(n) => self.follow(&norm(n)),
                };
                let Some(data) = self.files.get(&p) else {
                    return no_such_file();
                };
                if !algorithms.split(',').any(|a| a == "sha256") {
                    return Response::status(status::OP_UNSUPPORTED, "no common hash");
                }
                let start = (offset as usize).min(data.len());
                let end = if len == 0 {
                    data.len()
                } else {
                    data.len().min(start + len as usize)
                };
                let range = &data[start..end];
                let mut out = Vec::new();
                out.put_str("sha256");
                if block_size == 0 {
                    out.extend_from_slice(&Sha256::digest(range));
                } else {
                    for b in range.chunks(block_size as usize) {
                        out.extend_from_slice(&Sha256::digest(b));
                    }
                }
                Response::ExtendedReply(out)
            }
            r @ (Request::Limits | Request::Extended { .. }) => {
                panic!("the machine should have answered {r:?} itself")
            }
            r => panic!("request unknown to the test backend: {r:?}"),
        }
    }

    fn statvfs(&self) -> StatVfs {
        StatVfs {
            bsize: 4096,
            frsize: 4096,
            blocks: 1 << 20,
            bfree: 1 << 19,
            bavail: 1 << 18,
            files: 1 << 16,
            ffree: (1 << 16) - self.files.len() as u64,
            favail: (1 << 15) - self.files.len() as u64,
            fsid: 0x5f7f,
            flag: 0,
            namemax: 255,
        }
    }
}

// ------------------------------------------------------------ the harness

/// Bytes in flight from client to server (what the server has not taken).
#[derive(Default)]
struct Pipe {
    data: Vec<u8>,
    pos: usize,
}

impl Pipe {
    fn pending(&self) -> &[u8] {
        &self.data[self.pos..]
    }
    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.data.len() {
            self.data.clear();
            self.pos = 0;
        } else if self.pos > 1 << 20 {
            self.data.drain(..self.pos);
            self.pos = 0;
        }
    }
}

struct Pair {
    client: SftpClient,
    server: SftpServer,
    fs: Fs,
    rng: ChaCha20Rng,
    /// Chunks are 1..=max_chunk bytes (usize::MAX: everything at once).
    max_chunk: usize,
    c2s: Pipe,
    /// Requests the server handed over and the backend has not answered.
    pending: Vec<(u32, Request)>,
    /// Whether the backend answers at all.
    answering: bool,
    /// Every request the backend was handed.
    seen: Vec<Request>,
    /// Times the server took fewer bytes than offered.
    short_takes: usize,
    /// Most requests pending at the backend at once.
    max_pending: usize,
}

impl Pair {
    fn new(config: SftpServerConfig, seed: u64, max_chunk: usize) -> Pair {
        let mut p = Pair {
            client: SftpClient::new(),
            server: SftpServer::new(config),
            fs: Fs::new(),
            rng: ChaCha20Rng::seed_from_u64(seed),
            max_chunk,
            c2s: Pipe::default(),
            pending: Vec::new(),
            answering: true,
            seen: Vec::new(),
            short_takes: 0,
            max_pending: 0,
        };
        while p.client.version().is_none() {
            assert!(p.pump(), "stalled before VERSION");
        }
        p
    }

    fn chunk(&mut self, avail: usize) -> usize {
        if self.max_chunk == usize::MAX {
            return avail;
        }
        avail.min(1 + self.rng.next_u32() as usize % self.max_chunk)
    }

    /// One round of moving bytes and answering; false when nothing moved.
    fn pump(&mut self) -> bool {
        let mut progress = false;
        // Client output onto the wire, by take or by chunks.
        if self.rng.next_u32().is_multiple_of(4) {
            let mut v = Vec::new();
            self.client.take_transmit(&mut v);
            progress |= !v.is_empty();
            self.c2s.data.extend_from_slice(&v);
            assert!(self.client.transmit().is_none());
        } else {
            while let Some(out) = self.client.transmit() {
                let len = out.len();
                let n = self.chunk(len);
                let out = self.client.transmit().unwrap();
                self.c2s.data.extend_from_slice(&out[..n]);
                self.client.advance_transmit(n);
                assert_eq!(self.client.transmit_len(), len - n);
                progress = true;
            }
        }
        // The wire into the server, re-offering what it did not take.
        while !self.c2s.pending().is_empty() {
            let n = self.chunk(self.c2s.pending().len());
            let taken = self
                .server
                .recv(&self.c2s.pending()[..n])
                .expect("server recv");
            assert!(taken <= n);
            self.c2s.consume(taken);
            progress |= taken > 0;
            if taken < n {
                self.short_takes += 1;
                break;
            }
        }
        while let Some((id, req)) = self.server.poll_request() {
            self.seen.push(req.clone());
            self.pending.push((id, req));
            progress = true;
        }
        self.max_pending = self.max_pending.max(self.pending.len());
        // The backend answers some pending requests, in shuffled order.
        if self.answering && !self.pending.is_empty() {
            for i in (1..self.pending.len()).rev() {
                let j = self.rng.next_u32() as usize % (i + 1);
                self.pending.swap(i, j);
            }
            let k = 1 + self.rng.next_u32() as usize % self.pending.len();
            for (id, req) in self.pending.drain(..k).collect::<Vec<_>>() {
                match self.fs.handle(req) {
                    Response::Data(d) if self.rng.next_u32().is_multiple_of(2) => {
                        self.server.reply_data(id, &d).expect("reply_data")
                    }
                    Response::Status { code, message } if self.rng.next_u32().is_multiple_of(2) => {
                        self.server
                            .reply_status(id, code, &message)
                            .expect("reply_status")
                    }
                    resp => self.server.reply(id, &resp).expect("reply"),
                }
            }
            progress = true;
        }
        // Server output to the client.
        while let Some(out) = self.server.transmit() {
            let len = out.len();
            let n = self.chunk(len);
            let out = self.server.transmit().unwrap();
            self.client.recv(&out[..n]).expect("client recv");
            self.server.advance_transmit(n);
            assert_eq!(self.server.transmit_len(), len - n);
            progress = true;
        }
        progress
    }

    fn wait(&mut self, id: u32) -> Response {
        loop {
            if let Some(r) = self.client.take_reply(id) {
                assert!(!self.client.is_pending(id));
                return r;
            }
            assert!(self.client.is_pending(id), "reply {id} lost");
            assert!(self.pump(), "stalled waiting for reply {id}");
        }
    }

    fn call(&mut self, req: Request) -> Response {
        let id = self.client.send(&req).expect("send");
        self.wait(id)
    }

    fn expect_status(&mut self, req: Request, code: u32) -> String {
        match self.call(req.clone()) {
            Response::Status { code: c, message } if c == code => message,
            other => panic!("{req:?}: expected status {code}, got {other:?}"),
        }
    }

    fn expect_ok(&mut self, req: Request) {
        self.expect_status(req, status::OK);
    }

    fn handle(&mut self, req: Request) -> Vec<u8> {
        match self.call(req.clone()) {
            Response::Handle(h) => h,
            other => panic!("{req:?}: expected a handle, got {other:?}"),
        }
    }

    fn attrs(&mut self, req: Request) -> Attrs {
        match self.call(req.clone()) {
            Response::Attrs(a) => a,
            other => panic!("{req:?}: expected attrs, got {other:?}"),
        }
    }

    fn one_name(&mut self, req: Request) -> String {
        match self.call(req.clone()) {
            Response::Name(v) if v.len() == 1 => v[0].filename.clone(),
            other => panic!("{req:?}: expected one name, got {other:?}"),
        }
    }

    fn extended(&mut self, req: Request) -> Vec<u8> {
        match self.call(req.clone()) {
            Response::ExtendedReply(d) => d,
            other => panic!("{req:?}: expected an extended reply, got {other:?}"),
        }
    }

    fn write_file(&mut self, path: &str, data: &[u8]) {
        let h = self.handle(open(
            path,
            open_flags::WRITE | open_flags::CREAT | open_flags::TRUNC,
        ));
        if !data.is_empty() {
            self.expect_ok(Request::Write {
                handle: h.clone(),
                offset: 0,
                data: data.to_vec(),
            });
        }
        self.expect_ok(Request::Close { handle: h });
    }

    fn backend_saw(&self, f: impl Fn(&Request) -> bool) -> bool {
        self.seen.iter().any(f)
    }
}

fn open(path: &str, flags: u32) -> Request {
    Request::Open {
        path: path.into(),
        flags,
        attrs: Attrs::default(),
    }
}

fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0; len];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// Seeds and chunk limits each session-level test runs with.
const RUNS: [(u64, usize); 5] = [(1, 1), (2, 7), (3, 600), (4, 70_000), (5, usize::MAX)];

// ------------------------------------------------------------ tests

#[test]
fn init_version_and_extensions() {
    let client = SftpClient::new();
    assert_eq!(client.transmit(), Some(&[0, 0, 0, 5, 1, 0, 0, 0, 3][..]));
    assert_eq!(client.version(), None);

    for (seed, chunk) in RUNS {
        let config = SftpServerConfig::default();
        let want: Vec<(String, String)> = config.extensions.clone();
        let p = Pair::new(config, seed, chunk);
        assert_eq!(p.client.version(), Some(3));
        assert_eq!(p.client.extensions(), &want[..]);
        for n in [
            ext::POSIX_RENAME,
            ext::STATVFS,
            ext::FSTATVFS,
            ext::HARDLINK,
            ext::FSYNC,
            ext::LIMITS,
            ext::LSETSTAT,
            ext::EXPAND_PATH,
            ext::COPY_DATA,
            ext::HOME_DIRECTORY,
            ext::CHECK_FILE_HANDLE,
            ext::CHECK_FILE_NAME,
        ] {
            assert!(p.client.extension(n).is_some(), "{n} not advertised");
        }
        assert_eq!(p.client.extension(ext::STATVFS), Some("2"));
        assert_eq!(p.client.extension("nonesuch@example.com"), None);
        assert!(p.seen.is_empty(), "INIT reached the backend");
    }

    // The VERSION packet on the wire.
    let mut server = SftpServer::new(SftpServerConfig {
        extensions: vec![("a@b".into(), "1".into())],
        ..Default::default()
    });
    let mut init = Vec::new();
    codec::encode_init(&mut init);
    assert_eq!(server.recv(&init).unwrap(), init.len());
    let mut out = Vec::new();
    server.take_transmit(&mut out);
    let mut want = Vec::new();
    want.put_u32(1 + 4 + 7 + 5);
    want.push(2);
    want.put_u32(3);
    want.put_str("a@b");
    want.put_str("1");
    assert_eq!(out, want);

    // Anything but INIT first is a protocol error.
    let mut server = SftpServer::new(SftpServerConfig::default());
    let mut b = Vec::new();
    Request::Stat { path: "/".into() }.encode(0, &mut b);
    let e = server.recv(&b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(server.recv(&init).is_err(), "a failed server recovered");

    // And the client wants VERSION first.
    let mut client = SftpClient::new();
    let mut b = Vec::new();
    Response::ok().encode(0, &mut b);
    assert_eq!(client.recv(&b).unwrap_err().kind(), ErrorKind::Protocol);
}

#[test]
fn big_file_pipelined_writes_and_reads() {
    const SIZE: usize = 1 << 20;
    const WINDOW: usize = 64;
    for (seed, chunk) in [(11, 64), (12, 5000), (13, 100_000), (14, usize::MAX)] {
        let mut p = Pair::new(SftpServerConfig::default(), seed, chunk);
        let data = pseudo_random(SIZE, seed);
        let h = p.handle(open(
            "/tmp/big",
            open_flags::READ | open_flags::WRITE | open_flags::CREAT | open_flags::TRUNC,
        ));

        // 64 writes of 16 KiB, all sent before any reply is read.
        let block = SIZE / WINDOW;
        let mut ids = HashMap::new();
        for (i, c) in data.chunks(block).enumerate() {
            let offset = (i * block) as u64;
            let id = if i % 2 == 0 {
                p.client.send_write(&h, offset, c).unwrap()
            } else {
                p.client
                    .send(&Request::Write {
                        handle: h.clone(),
                        offset,
                        data: c.to_vec(),
                    })
                    .unwrap()
            };
            assert!(ids.insert(id, offset).is_none(), "id {id} reused");
        }
        assert_eq!(p.client.in_flight(), WINDOW);
        let mut order = Vec::new();
        while !ids.is_empty() {
            while let Some((id, r)) = p.client.poll_reply() {
                assert!(ids.remove(&id).is_some(), "reply to unknown id {id}");
                assert_eq!(r, Response::ok(), "write {id}");
                order.push(id);
            }
            if !ids.is_empty() {
                assert!(p.pump(), "stalled in writes");
            }
        }
        assert_eq!(p.client.in_flight(), 0);
        assert!(p.max_pending > 1, "the backend never had writes in flight");
        if chunk != 64 {
            let mut sorted = order.clone();
            sorted.sort();
            assert_ne!(order, sorted, "replies came in request order");
        }

        let a = p.attrs(Request::Fstat { handle: h.clone() });
        assert_eq!(a.size, Some(SIZE as u64));
        assert!(a.is_file());

        // Pipelined reads of an odd size, up to 64 in flight, past EOF.
        let rlen = 16_000u32;
        let mut got = vec![0u8; SIZE];
        let mut next = 0u64;
        let mut inflight: HashMap<u32, (u64, u32)> = HashMap::new();
        let mut eof = false;
        let mut sent_past_end = false;
        let mut filled = 0usize;
        let mut peak = 0;
        loop {
            while !sent_past_end && inflight.len() < WINDOW {
                let id = p
                    .client
                    .send(&Request::Read {
                        handle: h.clone(),
                        offset: next,
                        len: rlen,
                    })
                    .unwrap();
                inflight.insert(id, (next, rlen));
                sent_past_end = next >= SIZE as u64;
                next += rlen as u64;
            }
            peak = peak.max(p.client.in_flight());
            if inflight.is_empty() {
                break;
            }
            while let Some((id, r)) = p.client.poll_reply() {
                let (off, len) = inflight.remove(&id).expect("reply to a read in flight");
                match r {
                    Response::Data(d) => {
                        assert!(!d.is_empty() && d.len() <= len as usize);
                        let o = off as usize;
                        got[o..o + d.len()].copy_from_slice(&d);
                        filled += d.len();
                        if d.len() < len as usize {
                            assert_eq!(o + d.len(), SIZE, "short read before EOF");
                        }
                    }
                    Response::Status { code, .. } => {
                        assert_eq!(code, status::EOF, "read at {off}");
                        assert!(off >= SIZE as u64);
                        eof = true;
                    }
                    other => panic!("read reply {other:?}"),
                }
            }
            if !inflight.is_empty() {
                assert!(p.pump(), "stalled in reads");
            }
        }
        assert!(eof, "no EOF status");
        assert_eq!(peak, WINDOW);
        assert_eq!(filled, SIZE);
        assert!(got == data, "read back different data");

        // EOF exactly at the end, and beyond it.
        for off in [SIZE as u64, SIZE as u64 + 1, u64::MAX] {
            p.expect_status(
                Request::Read {
                    handle: h.clone(),
                    offset: off,
                    len: 10,
                },
                status::EOF,
            );
        }
        // The last bytes, short.
        match p.call(Request::Read {
            handle: h.clone(),
            offset: SIZE as u64 - 5,
            len: 100,
        }) {
            Response::Data(d) => assert_eq!(d, &data[SIZE - 5..]),
            other => panic!("{other:?}"),
        }
        assert_eq!(p.server.open_handles(), 1);
        p.expect_ok(Request::Close { handle: h.clone() });
        assert_eq!(p.server.open_handles(), 0);
        // The handle is gone.
        p.expect_status(Request::Close { handle: h }, status::FAILURE);
        assert_eq!(p.server.open_handles(), 0);
        assert_eq!(p.fs.files["/tmp/big"], data);
    }
}

#[test]
fn stat_lstat_fstat_setstat() {
    for (seed, chunk) in RUNS {
        let mut p = Pair::new(SftpServerConfig::default(), seed, chunk);
        p.write_file("/tmp/f", b"hello world");
        let a = p.attrs(Request::Stat {
            path: "/tmp/f".into(),
        });
        assert_eq!(a.size, Some(11));
        assert!(a.is_file() && !a.is_dir() && !a.is_symlink());
        assert_eq!(a.permissions, Some(0o100644));
        assert_eq!(a.uid_gid, Some((1000, 1000)));

        p.expect_ok(Request::Setstat {
            path: "/tmp/f".into(),
            attrs: Attrs {
                permissions: Some(0o600),
                times: Some((1, 2)),
                uid_gid: Some((7, 8)),
                ..Default::default()
            },
        });
        let a = p.attrs(Request::Stat {
            path: "/tmp/f".into(),
        });
        assert_eq!(a.permissions, Some(0o100600));
        assert_eq!(a.times, Some((1, 2)));
        assert_eq!(a.uid_gid, Some((7, 8)));

        // Truncate through setstat.
        p.expect_ok(Request::Setstat {
            path: "/tmp/f".into(),
            attrs: Attrs {
                size: Some(5),
                ..Default::default()
            },
        });
        assert_eq!(p.fs.files["/tmp/f"], b"hello");

        // A symlink: lstat sees the link, stat the file.
        p.expect_ok(Request::Symlink {
            target: "f".into(),
            link: "/tmp/l".into(),
        });
        let l = p.attrs(Request::Lstat {
            path: "/tmp/l".into(),
        });
        assert!(l.is_symlink());
        let s = p.attrs(Request::Stat {
            path: "/tmp/l".into(),
        });
        assert!(s.is_file());
        assert_eq!(s.size, Some(5));

        // fstat / fsetstat through a handle.
        let h = p.handle(open("/tmp/l", open_flags::READ | open_flags::WRITE));
        let f = p.attrs(Request::Fstat { handle: h.clone() });
        assert_eq!(f, s);
        p.expect_ok(Request::Fsetstat {
            handle: h.clone(),
            attrs: Attrs {
                permissions: Some(0o640),
                size: Some(8),
                ..Default::default()
            },
        });
        let f = p.attrs(Request::Fstat { handle: h.clone() });
        assert_eq!(f.permissions, Some(0o100640));
        assert_eq!(f.size, Some(8));
        p.expect_ok(Request::Close { handle: h.clone() });
        p.expect_status(Request::Fstat { handle: h }, status::FAILURE);

        // Directories, and missing paths.
        let d = p.attrs(Request::Stat {
            path: "/tmp".into(),
        });
        assert!(d.is_dir());
        let m = p.expect_status(
            Request::Stat {
                path: "/nope".into(),
            },
            status::NO_SUCH_FILE,
        );
        assert_eq!(
            status_error(status::NO_SUCH_FILE, &m, Some("/nope")).to_string(),
            "sftp: no such file: /nope (No such file)"
        );
        p.expect_status(
            Request::Lstat {
                path: "/nope".into(),
            },
            status::NO_SUCH_FILE,
        );
        p.expect_status(
            Request::Setstat {
                path: "/nope".into(),
                attrs: Attrs::default(),
            },
            status::NO_SUCH_FILE,
        );
    }
}

#[test]
fn opendir_readdir_until_eof() {
    for (seed, chunk) in RUNS {
        let mut p = Pair::new(SftpServerConfig::default(), seed, chunk);
        p.expect_ok(Request::Mkdir {
            path: "/tmp/d".into(),
            attrs: Attrs::default(),
        });
        let mut want: Vec<String> = vec![".".into(), "..".into()];
        for i in 0..10 {
            let n = format!("file{i:02}");
            p.write_file(&format!("/tmp/d/{n}"), &vec![b'x'; i]);
            want.push(n);
        }
        p.expect_ok(Request::Mkdir {
            path: "/tmp/d/sub".into(),
            attrs: Attrs::default(),
        });
        want.push("sub".into());

        let h = p.handle(Request::Opendir {
            path: "/tmp/d".into(),
        });
        let mut names = Vec::new();
        let mut calls = 0;
        loop {
            calls += 1;
            match p.call(Request::Readdir { handle: h.clone() }) {
                Response::Name(entries) => {
                    assert!(!entries.is_empty());
                    for e in entries {
                        if let Some(i) = e.filename.strip_prefix("file") {
                            let i: u64 = i.parse().unwrap();
                            assert!(e.attrs.is_file());
                            assert_eq!(e.attrs.size, Some(i));
                        }
                        if e.filename == "sub" {
                            assert!(e.attrs.is_dir());
                        }
                        assert!(e.longname.ends_with(&e.filename));
                        names.push(e.filename);
                    }
                }
                Response::Status { code, .. } => {
                    assert_eq!(code, status::EOF);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(calls > 2, "listing took {calls} calls");
        names.sort();
        want.sort();
        assert_eq!(names, want);
        // EOF again, then close.
        p.expect_status(Request::Readdir { handle: h.clone() }, status::EOF);
        assert_eq!(p.server.open_handles(), 1);
        p.expect_ok(Request::Close { handle: h });
        assert_eq!(p.server.open_handles(), 0);

        p.expect_status(
            Request::Opendir {
                path: "/tmp/none".into(),
            },
            status::NO_SUCH_FILE,
        );
        p.expect_status(
            Request::Opendir {
                path: "/tmp/d/file01".into(),
            },
            status::FAILURE,
        );
        assert_eq!(p.server.open_handles(), 0);
    }
}

#[test]
fn namespace_operations() {
    for (seed, chunk) in RUNS {
        let mut p = Pair::new(SftpServerConfig::default(), seed, chunk);
        // mkdir / rmdir
        p.expect_ok(Request::Mkdir {
            path: "/tmp/a".into(),
            attrs: Attrs {
                permissions: Some(0o700),
                ..Default::default()
            },
        });
        assert_eq!(
            p.attrs(Request::Stat {
                path: "/tmp/a".into()
            })
            .permissions,
            Some(0o040700)
        );
        p.expect_status(
            Request::Mkdir {
                path: "/tmp/a".into(),
                attrs: Attrs::default(),
            },
            status::FAILURE,
        );
        p.expect_status(
            Request::Mkdir {
                path: "/none/a".into(),
                attrs: Attrs::default(),
            },
            status::NO_SUCH_FILE,
        );
        p.write_file("/tmp/a/f", b"1");
        p.expect_status(
            Request::Rmdir {
                path: "/tmp/a".into(),
            },
            status::FAILURE,
        );
        // remove
        p.expect_status(
            Request::Remove {
                path: "/tmp/a".into(),
            },
            status::FAILURE,
        );
        p.expect_ok(Request::Remove {
            path: "/tmp/a/f".into(),
        });
        p.expect_status(
            Request::Remove {
                path: "/tmp/a/f".into(),
            },
            status::NO_SUCH_FILE,
        );
        p.expect_ok(Request::Rmdir {
            path: "/tmp/a".into(),
        });
        p.expect_status(
            Request::Rmdir {
                path: "/tmp/a".into(),
            },
            status::NO_SUCH_FILE,
        );
        assert!(!p.fs.dirs.contains("/tmp/a"));

        // rename (refuses to replace) and posix-rename (replaces)
        p.write_file("/tmp/x", b"xx");
        p.write_file("/tmp/y", b"yyy");
        p.expect_status(
            Request::Rename {
                old: "/tmp/x".into(),
                new: "/tmp/y".into(),
            },
            status::FAILURE,
        );
        p.expect_ok(Request::Rename {
            old: "/tmp/x".into(),
            new: "/tmp/z".into(),
        });
        assert!(!p.fs.files.contains_key("/tmp/x"));
        assert_eq!(p.fs.files["/tmp/z"], b"xx");
        p.expect_ok(Request::PosixRename {
            old: "/tmp/z".into(),
            new: "/tmp/y".into(),
        });
        assert_eq!(p.fs.files["/tmp/y"], b"xx");
        assert!(!p.fs.files.contains_key("/tmp/z"));
        p.expect_status(
            Request::Rename {
                old: "/tmp/z".into(),
                new: "/tmp/w".into(),
            },
            status::NO_SUCH_FILE,
        );
        // A directory moves with its contents.
        p.expect_ok(Request::Mkdir {
            path: "/tmp/dir".into(),
            attrs: Attrs::default(),
        });
        p.write_file("/tmp/dir/inner", b"in");
        p.expect_ok(Request::Rename {
            old: "/tmp/dir".into(),
            new: "/tmp/dir2".into(),
        });
        assert_eq!(p.fs.files["/tmp/dir2/inner"], b"in");

        // symlink / readlink
        p.expect_ok(Request::Symlink {
            target: "/tmp/y".into(),
            link: "/tmp/ln".into(),
        });
        assert_eq!(
            p.one_name(Request::Readlink {
                path: "/tmp/ln".into()
            }),
            "/tmp/y"
        );
        p.expect_status(
            Request::Symlink {
                target: "/tmp/q".into(),
                link: "/tmp/ln".into(),
            },
            status::FAILURE,
        );
        p.expect_status(
            Request::Readlink {
                path: "/tmp/y".into(),
            },
            status::FAILURE,
        );
        p.expect_status(
            Request::Readlink {
                path: "/tmp/none".into(),
            },
            status::NO_SUCH_FILE,
        );
        // Removing the link leaves the target.
        p.expect_ok(Request::Remove {
            path: "/tmp/ln".into(),
        });
        assert!(p.fs.files.contains_key("/tmp/y"));

        // realpath
        for (q, want) in [
            (".", HOME),
            ("", HOME),
            ("/", "/"),
            ("/tmp/../tmp/./dir2//inner", "/tmp/dir2/inner"),
            ("docs/../x", "/home/alice/x"),
            ("/..", "/"),
        ] {
            assert_eq!(
                p.one_name(Request::Realpath { path: q.into() }),
                want,
                "realpath {q:?}"
            );
        }
        p.expect_ok(Request::Symlink {
            target: "dir2".into(),
            link: "/tmp/d2".into(),
        });
        assert_eq!(
            p.one_name(Request::Realpath {
                path: "/tmp/d2".into()
            }),
            "/tmp/dir2"
        );
    }
}

#[test]
fn extension_requests() {
    for (seed, chunk) in RUNS {
        let mut p = Pair::new(SftpServerConfig::default(), seed, chunk);
        let content = pseudo_random(10_000, seed);
        p.write_file("/tmp/src", &content);

        // statvfs / fstatvfs
        let s = StatVfs::decode(&p.extended(Request::Statvfs {
            path: "/tmp".into(),
        }))
        .unwrap();
        assert_eq!(s, p.fs.statvfs());
        p.expect_status(
            Request::Statvfs {
                path: "/none".into(),
            },
            status::NO_SUCH_FILE,
        );
        let h = p.handle(open("/tmp/src", open_flags::READ));
        let f = StatVfs::decode(&p.extended(Request::Fstatvfs { handle: h.clone() })).unwrap();
        assert_eq!(f.namemax, 255);

        // fsync
        p.expect_ok(Request::Fsync { handle: h.clone() });
        p.expect_status(
            Request::Fsync {
                handle: b"nope".to_vec(),
            },
            status::FAILURE,
        );

        // copy-data into a new file, whole and in part.
        let w = p.handle(open(
            "/tmp/dst",
            open_flags::WRITE | open_flags::CREAT | open_flags::TRUNC,
        ));
        p.expect_ok(Request::CopyData {
            from: h.clone(),
            from_offset: 0,
            len: 0,
            to: w.clone(),
            to_offset: 0,
        });
        assert_eq!(p.fs.files["/tmp/dst"], content);
        p.expect_ok(Request::CopyData {
            from: h.clone(),
            from_offset: 100,
            len: 50,
            to: w.clone(),
            to_offset: 10_000,
        });
        assert_eq!(&p.fs.files["/tmp/dst"][10_000..], &content[100..150]);

        // check-file-handle and check-file-name
        let reply = p.extended(Request::CheckFile {
            target: CheckTarget::Handle(h.clone()),
            algorithms: "md5,sha256".into(),
            offset: 0,
            len: 0,
            block_size: 0,
        });
        let mut r = Reader::new(&reply);
        assert_eq!(r.string().unwrap(), b"sha256");
        assert_eq!(r.rest(), &Sha256::digest(&content)[..]);
        let reply = p.extended(Request::CheckFile {
            target: CheckTarget::Name("/tmp/src".into()),
            algorithms: "sha256".into(),
            offset: 1000,
            len: 4096,
            block_size: 1024,
        });
        let mut r = Reader::new(&reply);
        assert_eq!(r.string().unwrap(), b"sha256");
        let hashes = r.rest();
        assert_eq!(hashes.len(), 4 * 32);
        for (i, hash) in hashes.chunks(32).enumerate() {
            let at = 1000 + i * 1024;
            assert_eq!(hash, &Sha256::digest(&content[at..at + 1024])[..]);
        }
        p.expect_status(
            Request::CheckFile {
                target: CheckTarget::Name("/tmp/src".into()),
                algorithms: "md5".into(),
                offset: 0,
                len: 0,
                block_size: 0,
            },
            status::OP_UNSUPPORTED,
        );
        p.expect_ok(Request::Close { handle: w });
        p.expect_ok(Request::Close { handle: h });

        // hardlink
        p.expect_ok(Request::Hardlink {
            old: "/tmp/src".into(),
            new: "/tmp/hard".into(),
        });
        assert_eq!(p.fs.files["/tmp/hard"], content);
        p.expect_status(
            Request::Hardlink {
                old: "/tmp/src".into(),
                new: "/tmp/hard".into(),
            },
            status::FAILURE,
        );

        // lsetstat changes the link, not its target.
        p.expect_ok(Request::Symlink {
            target: "/tmp/src".into(),
            link: "/tmp/sl".into(),
        });
        p.expect_ok(Request::Lsetstat {
            path: "/tmp/sl".into(),
            attrs: Attrs {
                times: Some((5, 6)),
                ..Default::default()
            },
        });
        assert_eq!(
            p.attrs(Request::Lstat {
                path: "/tmp/sl".into()
            })
            .times,
            Some((5, 6))
        );
        assert_eq!(
            p.attrs(Request::Stat {
                path: "/tmp/sl".into()
            })
            .times,
            Some((0, 0))
        );

        // expand-path and home-directory
        for (q, want) in [
            ("~", HOME.to_string()),
            ("~/a/../b", format!("{HOME}/b")),
            ("/etc/./x", "/etc/x".to_string()),
            ("rel", format!("{HOME}/rel")),
        ] {
            assert_eq!(p.one_name(Request::ExpandPath { path: q.into() }), want);
        }
        assert_eq!(
            p.one_name(Request::HomeDirectory { user: "bob".into() }),
            "/home/bob"
        );
        assert_eq!(
            p.one_name(Request::HomeDirectory {
                user: String::new()
            }),
            HOME
        );
    }
}

#[test]
fn limits_are_answered_by_the_machine() {
    for (seed, chunk) in RUNS {
        let config = SftpServerConfig {
            max_handles: 9,
            max_read: 12_345,
            ..Default::default()
        };
        let mut p = Pair::new(config, seed, chunk);
        let l = Limits::decode(&p.extended(Request::Limits)).unwrap();
        assert_eq!(l, p.server.limits());
        assert_eq!(l.max_packet, MAX_PACKET as u64);
        assert_eq!(l.max_read, 12_345);
        assert_eq!(l.max_open_handles, 9);
        assert!(l.max_write > 0 && l.max_write < MAX_PACKET as u64);
        assert_eq!(p.server.outstanding(), 0);
        assert!(!p.backend_saw(|r| matches!(r, Request::Limits)));
    }
}

#[test]
fn unknown_extended_request_is_unsupported() {
    for (seed, chunk) in RUNS {
        let mut p = Pair::new(SftpServerConfig::default(), seed, chunk);
        let m = p.expect_status(
            Request::Extended {
                name: "frobnicate@example.com".into(),
                data: vec![1, 2, 3],
            },
            status::OP_UNSUPPORTED,
        );
        assert!(m.contains("frobnicate@example.com"), "{m}");
        assert!(p.seen.is_empty());
        assert_eq!(p.server.outstanding(), 0);
        // The session goes on.
        assert!(p.attrs(Request::Stat { path: "/".into() }).is_dir());
    }
}

/// A server after INIT, its VERSION taken.
fn started_server(config: SftpServerConfig) -> SftpServer {
    let mut s = SftpServer::new(config);
    let mut init = Vec::new();
    codec::encode_init(&mut init);
    assert_eq!(s.recv(&init).unwrap(), init.len());
    let mut v = Vec::new();
    s.take_transmit(&mut v);
    assert_eq!(v[4], 2);
    s
}

/// Decodes every reply packet in `out`.
fn replies(out: &[u8]) -> Vec<(u32, Response)> {
    let mut v = Vec::new();
    let mut rest = out;
    while let Some((s, e)) = codec::next_packet(rest).unwrap() {
        v.push(Response::decode(&rest[s..e]).unwrap());
        rest = &rest[e..];
    }
    assert!(rest.is_empty(), "partial packet in the output");
    v
}

#[test]
fn unknown_request_type_is_unsupported() {
    let mut s = started_server(SftpServerConfig::default());
    let mut b = Vec::new();
    for (t, id) in [(99u8, 7u32), (1, 8), (2, 9), (150, 10), (255, 11)] {
        b.put_u32(5 + 3);
        b.push(t);
        b.put_u32(id);
        b.extend_from_slice(b"abc");
    }
    Request::Stat { path: "/x".into() }.encode(12, &mut b);
    // Byte by byte.
    for byte in &b {
        assert_eq!(s.recv(std::slice::from_ref(byte)).unwrap(), 1);
    }
    let mut out = Vec::new();
    s.take_transmit(&mut out);
    let got = replies(&out);
    assert_eq!(got.len(), 5);
    for ((id, r), (t, want)) in got
        .iter()
        .zip([(99, 7), (1, 8), (2, 9), (150, 10), (255, 11)])
    {
        assert_eq!(*id, want);
        match r {
            Response::Status { code, message } => {
                assert_eq!(*code, status::OP_UNSUPPORTED);
                assert!(message.contains(&t.to_string()), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    // The known request after them reaches the application.
    assert_eq!(
        s.poll_request(),
        Some((12, Request::Stat { path: "/x".into() }))
    );
    assert_eq!(s.outstanding(), 1);
    s.reply(12, &Response::ok()).unwrap();
    // A reply to nothing is a usage error.
    assert_eq!(
        s.reply(12, &Response::ok()).unwrap_err().kind(),
        ErrorKind::Usage
    );
    assert!(s.reply_data(77, b"x").is_err());

    // Through a client: the raw request's reply finds no id of the client,
    // so it is decoded here from the server's output.
    let mut p = Pair::new(SftpServerConfig::default(), 3, 5);
    let mut raw = Vec::new();
    raw.put_u32(5);
    raw.push(42);
    raw.put_u32(0xdead);
    assert_eq!(p.server.recv(&raw).unwrap(), raw.len());
    let mut out = Vec::new();
    p.server.take_transmit(&mut out);
    let got = replies(&out);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 0xdead);
    assert!(matches!(
        got[0].1,
        Response::Status {
            code: status::OP_UNSUPPORTED,
            ..
        }
    ));
    assert!(p.attrs(Request::Stat { path: "/".into() }).is_dir());
}

#[test]
fn max_handles_sequential() {
    for (seed, chunk) in RUNS {
        let config = SftpServerConfig {
            max_handles: 2,
            ..Default::default()
        };
        let mut p = Pair::new(config, seed, chunk);
        p.write_file("/tmp/a", b"a");
        assert_eq!(p.server.open_handles(), 0);
        let h1 = p.handle(open("/tmp/a", open_flags::READ));
        let h2 = p.handle(Request::Opendir {
            path: "/tmp".into(),
        });
        assert_eq!(p.server.open_handles(), 2);
        let before = p.seen.len();
        let m = p.expect_status(open("/tmp/a", open_flags::READ), status::FAILURE);
        assert!(m.contains("too many open handles"), "{m}");
        let m = p.expect_status(
            Request::Opendir {
                path: "/tmp".into(),
            },
            status::FAILURE,
        );
        assert!(m.contains("too many open handles"), "{m}");
        assert_eq!(p.seen.len(), before, "the backend saw a refused open");
        // A failed open does not take a slot.
        p.expect_ok(Request::Close { handle: h1 });
        assert_eq!(p.server.open_handles(), 1);
        p.expect_status(open("/tmp/none", open_flags::READ), status::NO_SUCH_FILE);
        assert_eq!(p.server.open_handles(), 1);
        let h3 = p.handle(open("/tmp/a", open_flags::READ));
        assert_eq!(p.server.open_handles(), 2);
        p.expect_status(open("/tmp/a", open_flags::READ), status::FAILURE);
        // A failed close does not free one.
        p.expect_status(
            Request::Close {
                handle: b"bogus".to_vec(),
            },
            status::FAILURE,
        );
        assert_eq!(p.server.open_handles(), 2);
        p.expect_ok(Request::Close { handle: h2 });
        p.expect_ok(Request::Close { handle: h3 });
        assert_eq!(p.server.open_handles(), 0);
    }
}

#[test]
fn max_handles_pipelined() {
    for (seed, chunk) in RUNS {
        let config = SftpServerConfig {
            max_handles: 2,
            ..Default::default()
        };
        let mut p = Pair::new(config, seed, chunk);
        p.write_file("/tmp/a", b"a");
        // Three opens in flight at once: the machine must not let all
        // three through just because none has been answered yet.
        p.answering = false;
        let ids: Vec<u32> = (0..3)
            .map(|_| p.client.send(&open("/tmp/a", open_flags::READ)).unwrap())
            .collect();
        while p.pump() {}
        assert_eq!(p.pending.len(), 2, "opens handed to the backend");
        p.answering = true;
        let mut handles = Vec::new();
        let mut refused = 0;
        for id in ids {
            match p.wait(id) {
                Response::Handle(h) => handles.push(h),
                Response::Status { code, message } => {
                    assert_eq!(code, status::FAILURE);
                    assert!(message.contains("too many open handles"));
                    refused += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((handles.len(), refused), (2, 1));
        assert_eq!(p.server.open_handles(), 2);
        for h in handles {
            p.expect_ok(Request::Close { handle: h });
        }
        assert_eq!(p.server.open_handles(), 0);
    }
}

#[test]
fn max_outstanding_holds_input() {
    for (seed, chunk) in RUNS {
        let config = SftpServerConfig {
            max_outstanding: 4,
            ..Default::default()
        };
        let mut p = Pair::new(config, seed, chunk);
        p.answering = false;
        let ids: Vec<u32> = (0..10)
            .map(|i| {
                p.client
                    .send(&Request::Stat {
                        path: format!("/tmp/{i}"),
                    })
                    .unwrap()
            })
            .collect();
        // Nothing answered: the server hands over at most 4 and holds the rest.
        for _ in 0..50 {
            p.pump();
        }
        assert_eq!(p.pending.len(), 4, "requests handed over unanswered");
        assert_eq!(p.server.outstanding(), 4);
        assert!(
            p.short_takes > 0,
            "recv never took fewer bytes than offered"
        );
        assert!(
            !p.c2s.pending().is_empty(),
            "the rest was not left to re-offer"
        );
        assert!(p.server.recv(p.c2s.pending()).unwrap() == 0);
        assert_eq!(p.server.poll_request(), None);
        // Answer two: two more come through on the next offer.
        for (id, req) in p.pending.drain(..2).collect::<Vec<_>>() {
            let r = p.fs.handle(req);
            p.server.reply(id, &r).unwrap();
        }
        for _ in 0..50 {
            p.pump();
        }
        assert_eq!(p.pending.len(), 4);
        assert_eq!(p.seen.len(), 6);
        // Then everything completes.
        p.answering = true;
        for id in ids {
            p.expect_reply_status(id, status::NO_SUCH_FILE);
        }
        assert_eq!(p.seen.len(), 10);
        assert!(p.max_pending <= 4);
        assert_eq!(p.server.outstanding(), 0);
        assert_eq!(p.client.in_flight(), 0);
    }
}

impl Pair {
    fn expect_reply_status(&mut self, id: u32, code: u32) {
        match self.wait(id) {
            Response::Status { code: c, .. } if c == code => {}
            other => panic!("reply {id}: {other:?}"),
        }
    }
}

#[test]
fn max_outstanding_one_with_big_writes() {
    // Large requests through a server that admits one at a time.
    for (seed, chunk) in RUNS {
        let config = SftpServerConfig {
            max_outstanding: 1,
            ..Default::default()
        };
        let mut p = Pair::new(config, seed, chunk.max(1000));
        let h = p.handle(open(
            "/tmp/w",
            open_flags::WRITE | open_flags::CREAT | open_flags::TRUNC,
        ));
        let data = pseudo_random(8 * 200_000, seed);
        let ids: Vec<u32> = data
            .chunks(200_000)
            .enumerate()
            .map(|(i, c)| p.client.send_write(&h, (i * 200_000) as u64, c).unwrap())
            .collect();
        for id in ids {
            p.expect_reply_status(id, status::OK);
        }
        assert_eq!(p.max_pending, 1);
        p.expect_ok(Request::Close { handle: h });
        assert!(p.fs.files["/tmp/w"] == data);
    }
}

#[test]
fn read_length_is_clamped() {
    for (max_read, seed, chunk) in [(1000u32, 1u64, 333usize), (0, 2, 5000), (0, 3, usize::MAX)] {
        let mut config = SftpServerConfig::default();
        if max_read > 0 {
            config.max_read = max_read;
        }
        let max_read = config.max_read;
        let mut p = Pair::new(config, seed, chunk);
        let content = pseudo_random(300_000, seed);
        let h = p.handle(open(
            "/tmp/r",
            open_flags::READ | open_flags::WRITE | open_flags::CREAT,
        ));
        for (i, c) in content.chunks(100_000).enumerate() {
            p.expect_ok(Request::Write {
                handle: h.clone(),
                offset: (i * 100_000) as u64,
                data: c.to_vec(),
            });
        }
        match p.call(Request::Read {
            handle: h.clone(),
            offset: 0,
            len: u32::MAX,
        }) {
            Response::Data(d) => {
                assert!(d.len() <= max_read as usize, "{} > {max_read}", d.len());
                assert_eq!(d, &content[..max_read as usize]);
            }
            other => panic!("{other:?}"),
        }
        assert!(p.backend_saw(|r| matches!(r, Request::Read { len, .. } if *len == max_read)));
        assert!(!p.backend_saw(|r| matches!(r, Request::Read { len, .. } if *len > max_read)));
        // Short reads pass untouched.
        assert!(matches!(
            p.call(Request::Read { handle: h.clone(), offset: 10, len: 7 }),
            Response::Data(d) if d == content[10..17]
        ));
        p.expect_ok(Request::Close { handle: h });
    }
}

#[test]
fn missing_extension_fails_in_send() {
    for (seed, chunk) in RUNS {
        let config = SftpServerConfig {
            extensions: Vec::new(),
            ..Default::default()
        };
        let mut p = Pair::new(config, seed, chunk);
        assert!(p.client.extensions().is_empty());
        let reqs = [
            (
                Request::PosixRename {
                    old: "a".into(),
                    new: "b".into(),
                },
                ext::POSIX_RENAME,
            ),
            (Request::Statvfs { path: "/".into() }, ext::STATVFS),
            (Request::Fstatvfs { handle: vec![1] }, ext::FSTATVFS),
            (
                Request::Hardlink {
                    old: "a".into(),
                    new: "b".into(),
                },
                ext::HARDLINK,
            ),
            (Request::Fsync { handle: vec![1] }, ext::FSYNC),
            (Request::Limits, ext::LIMITS),
            (
                Request::Lsetstat {
                    path: "a".into(),
                    attrs: Attrs::default(),
                },
                ext::LSETSTAT,
            ),
            (Request::ExpandPath { path: "~".into() }, ext::EXPAND_PATH),
            (
                Request::CopyData {
                    from: vec![1],
                    from_offset: 0,
                    len: 0,
                    to: vec![2],
                    to_offset: 0,
                },
                ext::COPY_DATA,
            ),
            (
                Request::HomeDirectory {
                    user: String::new(),
                },
                ext::HOME_DIRECTORY,
            ),
            (
                Request::CheckFile {
                    target: CheckTarget::Handle(vec![1]),
                    algorithms: "sha256".into(),
                    offset: 0,
                    len: 0,
                    block_size: 0,
                },
                ext::CHECK_FILE_HANDLE,
            ),
            (
                Request::CheckFile {
                    target: CheckTarget::Name("/".into()),
                    algorithms: "sha256".into(),
                    offset: 0,
                    len: 0,
                    block_size: 0,
                },
                ext::CHECK_FILE_NAME,
            ),
        ];
        for (req, name) in reqs {
            assert_eq!(req.extension(), Some(name));
            let e = p.client.send(&req).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Sftp);
            assert_eq!(e.code(), Some(status::OP_UNSUPPORTED));
            assert!(e.to_string().contains(name), "{e} does not name {name}");
        }
        assert_eq!(p.client.in_flight(), 0);
        assert!(
            p.client.transmit().is_none(),
            "a refused request was queued"
        );
        // Plain v3 requests still work, and the client is not poisoned.
        assert!(p.client.error().is_none());
        assert!(p.attrs(Request::Stat { path: "/".into() }).is_dir());
    }
}

#[test]
fn status_error_names_the_path() {
    let e = status_error(status::NO_SUCH_FILE, "", Some("/x"));
    assert_eq!(e.kind(), ErrorKind::Sftp);
    assert_eq!(e.code(), Some(status::NO_SUCH_FILE));
    assert_eq!(e.detail(), "no such file: /x");
    assert_eq!(e.to_string(), "sftp: no such file: /x");
    let e = status_error(
        status::PERMISSION_DENIED,
        " Permission denied ",
        Some("/etc/shadow"),
    );
    assert_eq!(
        e.detail(),
        "permission denied: /etc/shadow (Permission denied)"
    );
    let e = status_error(status::FAILURE, "disk full", None);
    assert_eq!(e.detail(), "failure (disk full)");
    let e = status_error(status::EOF, "", None);
    assert_eq!(e.detail(), "end of file");
    let e = status_error(1234, "", Some("/y"));
    assert_eq!(e.detail(), "unknown status: /y");
    assert_eq!(e.code(), Some(1234));

    // From a live reply.
    let mut p = Pair::new(SftpServerConfig::default(), 9, 3);
    match p.call(Request::Remove { path: "/x".into() }) {
        Response::Status { code, message } => {
            let e = status_error(code, &message, Some("/x"));
            assert!(e.to_string().contains("no such file: /x"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reply_with_unknown_id_is_a_protocol_error() {
    let mut p = Pair::new(SftpServerConfig::default(), 4, 100);
    let id = p.client.send(&Request::Stat { path: "/".into() }).unwrap();
    let mut b = Vec::new();
    Response::ok().encode(id.wrapping_add(1000), &mut b);
    let e = p.client.recv(&b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    let s = e.to_string();
    assert!(s.contains(&(id + 1000).to_string()), "{s}");
    assert!(s.contains("no request"), "{s}");
    // The client stays failed.
    assert_eq!(p.client.error(), Some(&e));
    assert!(p.client.send(&Request::Stat { path: "/".into() }).is_err());
    assert!(p.client.recv(&[]).is_err());

    // A second reply to an id already answered is refused the same way.
    let mut p = Pair::new(SftpServerConfig::default(), 5, 100);
    let id = p.client.send(&Request::Stat { path: "/".into() }).unwrap();
    let r = p.wait(id);
    assert!(matches!(r, Response::Attrs(_)));
    let mut b = Vec::new();
    r.encode(id, &mut b);
    let e = p.client.recv(&b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.to_string().contains(&id.to_string()));
}

#[test]
fn ids_are_unique_while_in_flight() {
    let mut p = Pair::new(SftpServerConfig::default(), 6, 50);
    let mut seen = HashSet::new();
    let ids: Vec<u32> = (0..200)
        .map(|_| p.client.send(&Request::Stat { path: "/".into() }).unwrap())
        .collect();
    for &id in &ids {
        assert!(seen.insert(id));
        assert!(p.client.is_pending(id));
    }
    // Collected in reverse order with take_reply.
    for &id in ids.iter().rev() {
        assert!(matches!(p.wait(id), Response::Attrs(a) if a.is_dir()));
    }
    assert_eq!(p.client.in_flight(), 0);
}

/// `read_only` (sftp-server -R), `denied_requests` (-P) and
/// `allowed_requests` (-p): the machine answers refused requests itself
/// with PERMISSION_DENIED ("Permission denied", as OpenSSH) and hands the
/// rest to the application.
#[test]
fn read_only_and_request_lists_are_enforced_by_the_machine() {
    use open_flags::{APPEND, CREAT, READ, TRUNC, WRITE};
    let path = |p: &str| p.to_string();
    // (name, request, writes)
    let reqs: Vec<(&str, Request, bool)> = vec![
        ("open", open("/f", READ), false),
        ("open", open("/f", WRITE), true),
        ("open", open("/f", READ | CREAT), true),
        ("open", open("/f", READ | TRUNC), true),
        ("open", open("/f", READ | APPEND), true),
        (
            "write",
            Request::Write {
                handle: vec![0; 4],
                offset: 0,
                data: vec![1],
            },
            true,
        ),
        ("remove", Request::Remove { path: path("/f") }, true),
        (
            "mkdir",
            Request::Mkdir {
                path: path("/d"),
                attrs: Attrs::default(),
            },
            true,
        ),
        (
            "setstat",
            Request::Setstat {
                path: path("/f"),
                attrs: Attrs::default(),
            },
            true,
        ),
        ("stat", Request::Stat { path: path("/f") }, false),
        ("readlink", Request::Readlink { path: path("/f") }, false),
        (
            "posix-rename",
            Request::PosixRename {
                old: path("/a"),
                new: path("/b"),
            },
            true,
        ),
        (
            "hardlink",
            Request::Hardlink {
                old: path("/a"),
                new: path("/b"),
            },
            true,
        ),
        ("statvfs", Request::Statvfs { path: path("/") }, false),
        (
            "home-directory",
            Request::HomeDirectory {
                user: String::new(),
            },
            false,
        ),
        (
            "copy-data",
            Request::CopyData {
                from: vec![0; 4],
                from_offset: 0,
                len: 0,
                to: vec![1; 4],
                to_offset: 0,
            },
            true,
        ),
    ];
    // Whether a request (name, writes) is served.
    type Served = Box<dyn Fn(&str, bool) -> bool>;
    let configs: Vec<(SftpServerConfig, Served)> = vec![
        (
            SftpServerConfig {
                read_only: true,
                ..Default::default()
            },
            Box::new(|_, writes| !writes),
        ),
        (
            SftpServerConfig {
                denied_requests: vec!["remove".into(), "stat".into()],
                ..Default::default()
            },
            Box::new(|n, _| n != "remove" && n != "stat"),
        ),
        (
            SftpServerConfig {
                allowed_requests: Some(vec!["open".into(), "statvfs".into(), "remove".into()]),
                denied_requests: vec!["remove".into()],
                ..Default::default()
            },
            Box::new(|n, _| n == "open" || n == "statvfs"),
        ),
    ];
    for (config, served) in configs {
        let mut s = started_server(config.clone());
        for (i, (name, req, writes)) in reqs.iter().enumerate() {
            assert_eq!(ssh_proto::sftp::request_name(req), Some(*name));
            let mut b = Vec::new();
            req.encode(i as u32, &mut b);
            s.recv(&b).unwrap();
            let handed = s.poll_request();
            let mut out = Vec::new();
            s.take_transmit(&mut out);
            if served(name, *writes) {
                let (id, r) = handed.unwrap_or_else(|| panic!("{name} {req:?} not handed on"));
                assert_eq!((id, &r), (i as u32, req), "{config:?}");
                assert!(out.is_empty());
                s.reply(id, &Response::ok()).unwrap();
                s.take_transmit(&mut out);
            } else {
                assert!(
                    handed.is_none(),
                    "{name} {req:?} handed on under {config:?}"
                );
                let r = replies(&out);
                assert_eq!(
                    r,
                    vec![(
                        i as u32,
                        Response::status(status::PERMISSION_DENIED, "Permission denied")
                    )],
                    "{name} under {config:?}"
                );
            }
        }
    }
    // Every name in the list is one a request has.
    let names: Vec<&str> = ssh_proto::sftp::REQUEST_NAMES
        .iter()
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(names.len(), 30);
    assert_eq!(
        ssh_proto::sftp::parse_request_names("remove,mkdir"),
        Ok(vec!["remove".into(), "mkdir".into()])
    );
    assert_eq!(
        ssh_proto::sftp::parse_request_names("remove,rm"),
        Err("rm".into())
    );
}
