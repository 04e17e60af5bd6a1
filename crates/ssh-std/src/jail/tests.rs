//! The jail's guarantees, tested against a real directory tree.

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "jail-test-{}-{}-{}-{}",
            std::process::id(),
            tag,
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a tree holds: for each relative path, its mode and its contents
/// or link target.
fn snapshot(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) {
        for ent in std::fs::read_dir(dir).unwrap() {
            let p = ent.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let content = if md.file_type().is_symlink() {
                std::fs::read_link(&p)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec()
            } else if md.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                walk(base, &p, out);
                Vec::new()
            };
            out.insert(rel, (md.permissions().mode(), content));
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn read_all(jail: &Jail, path: &str) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    jail.open(path, &OpenOptions::read())?.read_to_end(&mut v)?;
    Ok(v)
}

fn write_opts() -> OpenOptions {
    OpenOptions {
        write: true,
        create: true,
        ..OpenOptions::default()
    }
}

/// `tmp/outside/{secret,sub/deep}` and `tmp/root/{file,dir/inner}` with
/// the symlinks `root/abs -> /`, `root/up -> ../outside`,
/// `root/dotdot -> ..`.
fn setup(tag: &str) -> (TempDir, PathBuf, PathBuf) {
    let t = TempDir::new(tag);
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"top secret").unwrap();
    std::fs::set_permissions(outside.join("secret"), PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::create_dir(outside.join("sub")).unwrap();
    std::fs::write(outside.join("sub/deep"), b"deep").unwrap();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::set_permissions(&root, PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(t.path(), PermissionsExt::from_mode(0o711)).unwrap();
    std::fs::write(root.join("file"), b"hello").unwrap();
    std::fs::create_dir(root.join("dir")).unwrap();
    std::fs::write(root.join("dir/inner"), b"inner").unwrap();
    symlink("/", root.join("abs")).unwrap();
    symlink("../outside", root.join("up")).unwrap();
    symlink("..", root.join("dotdot")).unwrap();
    (t, outside, root)
}

fn is_enoent<T: fmt::Debug>(r: io::Result<T>, what: &str) {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

#[test]
fn jail_escapes_are_contained() {
    let (t, outside, root) = setup("escape");
    let before = snapshot(&outside);
    let outside_str = outside.to_str().unwrap().to_owned();
    let jail = Jail::new(&root).unwrap();
    jail.symlink("/etc/passwd", "/link").unwrap();
    jail.symlink("../../outside/secret", "/l2").unwrap();
    jail.symlink(&format!("{outside_str}/secret"), "/l3")
        .unwrap();
    assert_eq!(jail.readlink("link").unwrap(), "/etc/passwd");
    assert_eq!(jail.readlink("/l2").unwrap(), "../../outside/secret");
    assert_eq!(jail.readlink("up").unwrap(), "../outside");
    assert_eq!(jail.readlink("abs").unwrap(), "/");
    assert!(jail.lstat("up").unwrap().is_symlink());

    let escapes = [
        "../outside/secret",
        "/../outside/secret",
        "../../../../outside/secret",
        "up/secret",
        "/up/secret",
        "up/sub/deep",
        "abs/outside/secret",
        "abs/../outside/secret",
        "dotdot/outside/secret",
        "dotdot/../outside/secret",
        "dir/../../outside/secret",
        "link",
        "l2",
        "l3",
    ];
    for p in escapes {
        is_enoent(jail.open(p, &OpenOptions::read()), &format!("open {p}"));
        assert!(jail.open(p, &write_opts()).is_err(), "create {p}");
        is_enoent(jail.stat(p), &format!("stat {p}"));
        assert!(
            jail.setstat(p, None, None, Some(0o777), None).is_err(),
            "setstat {p}"
        );
        assert!(
            jail.setstat(p, Some(0), None, None, None).is_err(),
            "truncate {p}"
        );
        assert!(jail.remove(p).is_err() || p.starts_with('l'), "remove {p}");
        assert!(
            jail.lsetstat(p, None, None, Some(0o777), None).is_err(),
            "lsetstat {p}"
        );
        assert!(jail.open_dir(p).is_err(), "open_dir {p}");
        assert!(jail.statvfs(p).is_err(), "statvfs {p}");
        if let Ok(real) = jail.realpath(p) {
            assert!(
                real.starts_with('/') && !real.contains(&outside_str),
                "{p} -> {real}"
            );
        }
    }
    // The link names themselves still exist (remove above only took
    // the links, which is fine); recreate for the following checks.
    let _ = jail.symlink("/etc/passwd", "/link");
    let _ = jail.symlink("../../outside/secret", "/l2");

    // Creating through links to the root stays inside.
    jail.open("abs/created", &write_opts()).unwrap();
    assert!(root.join("created").exists());
    jail.open("dotdot/../created2", &write_opts()).unwrap();
    assert!(root.join("created2").exists());

    // Directories.
    is_enoent(jail.mkdir("up/new", 0o777), "mkdir up/new");
    is_enoent(jail.mkdir("../outside/new", 0o777), "mkdir ../outside/new");
    jail.mkdir("dotdot/new", 0o755).unwrap();
    assert!(root.join("new").is_dir());
    assert!(jail.rmdir("dotdot").is_err());
    assert!(jail.rmdir("dotdot/").is_err());
    assert!(jail.rmdir("abs").is_err());
    assert!(jail.rmdir("..").is_err());
    assert!(jail.rmdir("/").is_err());
    assert!(jail.rmdir("up/sub").is_err());
    assert!(jail.remove("..").is_err());
    assert!(jail.remove("/").is_err());
    is_enoent(jail.open_dir("up").map(|_| ()), "open_dir up");

    // Listing via links to the root lists the root; `..` of the root is
    // the root itself.
    let root_mode = std::fs::metadata(&root).unwrap().permissions().mode();
    for p in ["abs", "dotdot", "/", "", "..", "abs/.."] {
        let list: BTreeMap<String, FileStat> =
            jail.open_dir(p).unwrap().map(|r| r.unwrap()).collect();
        assert!(
            list.contains_key("file") && list.contains_key("up"),
            "{p}: {list:?}"
        );
        assert_eq!(list[".."].mode & 0o7777, root_mode & 0o7777, "{p}");
        let (dd, d) = (list[".."], list["."]);
        assert_eq!((dd.mode, dd.uid, dd.mtime), (d.mode, d.uid, d.mtime), "{p}");
    }

    // Renames.
    is_enoent(jail.rename("/file", "../outside/moved", false), "rename ..");
    is_enoent(jail.rename("/file", "up/moved", false), "rename up");
    is_enoent(jail.rename("/file", "up/moved", true), "posix-rename up");
    is_enoent(jail.rename("up/secret", "/stolen", true), "rename from up");
    jail.rename("/file", "dotdot/moved", false).unwrap();
    assert!(root.join("moved").exists());
    jail.rename("moved", "file", false).unwrap();
    jail.rename("up", "up2", false).unwrap();
    assert!(std::fs::symlink_metadata(root.join("up2"))
        .unwrap()
        .file_type()
        .is_symlink());
    jail.rename("up2", "up", false).unwrap();
    assert!(jail.rename("..", "x", false).is_err());
    assert!(jail.rename("file", "/", true).is_err());

    // Symlinks made by the client, then written through.
    jail.symlink("../outside/evil", "/s1").unwrap();
    jail.symlink("/../../outside/evil", "/s2").unwrap();
    jail.symlink(&format!("{outside_str}/evil"), "/s3").unwrap();
    jail.symlink("up/evil", "/s4").unwrap();
    jail.symlink("../../outside", "/dir/s5").unwrap();
    for p in [
        "s1",
        "s2",
        "s3",
        "s4",
        "dir/s5/evil",
        "/dir/s5/../outside/evil",
    ] {
        assert!(jail.open(p, &write_opts()).is_err(), "write {p}");
        assert!(jail.mkdir(&format!("{p}/d"), 0o777).is_err(), "mkdir {p}/d");
    }

    // Hard links cannot pull outside files in.
    is_enoent(jail.hardlink("up/secret", "/stolen"), "hardlink up/secret");
    is_enoent(
        jail.hardlink("../outside/secret", "/stolen"),
        "hardlink ../",
    );
    is_enoent(
        jail.hardlink("abs/../../outside/secret", "/stolen"),
        "hardlink abs",
    );
    assert!(jail.hardlink("..", "/stolen").is_err());
    // Linking a symlink links the symlink itself, not its target.
    jail.hardlink("l2", "/stolen2").unwrap();
    assert!(jail.lstat("stolen2").unwrap().is_symlink());
    is_enoent(jail.open("stolen2", &OpenOptions::read()), "open stolen2");

    // realpath never leaves the root.
    assert_eq!(jail.realpath("up").unwrap(), "/up"); // dangling: parent + name
    assert_eq!(jail.realpath("abs").unwrap(), "/");
    assert_eq!(jail.realpath("dotdot").unwrap(), "/");
    assert_eq!(jail.realpath("../..").unwrap(), "/");
    assert_eq!(jail.realpath("abs/../dir/..").unwrap(), "/");
    assert_eq!(jail.realpath("dotdot/dir").unwrap(), "/dir");
    assert!(jail.realpath("up/secret").is_err());
    assert_eq!(jail.realpath("link").unwrap(), "/link");

    // Attributes of the link itself are fine to change; its target is
    // not touched.
    assert!(jail.lstat("up").unwrap().is_symlink());
    assert_eq!(
        jail.lsetstat("up", None, None, Some(0o777), None)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EOPNOTSUPP)
    );
    jail.lsetstat("up", None, None, None, Some((10, 20)))
        .unwrap();
    assert_eq!(jail.lstat("up").unwrap().mtime, 20);
    assert!(jail.lsetstat("up", Some(0), None, None, None).is_err());

    // Once a directory named like the outside one exists *inside* the
    // root, the same paths land there.
    jail.mkdir("/outside", 0o755).unwrap();
    jail.open("up/secret", &write_opts())
        .unwrap()
        .write_all(b"decoy")
        .unwrap();
    assert_eq!(
        std::fs::read(root.join("outside/secret")).unwrap(),
        b"decoy"
    );
    assert_eq!(read_all(&jail, "l2").unwrap(), b"decoy");
    assert_eq!(read_all(&jail, "../outside/secret").unwrap(), b"decoy");
    jail.hardlink("up/secret", "/stolen").unwrap();
    assert_eq!(read_all(&jail, "stolen").unwrap(), b"decoy");
    jail.setstat("up/secret", None, None, Some(0o666), None)
        .unwrap();
    jail.remove("up/secret").unwrap();
    jail.mkdir("up/new", 0o755).unwrap();
    assert!(root.join("outside/new").is_dir());
    assert_eq!(jail.realpath("up/new").unwrap(), "/outside/new");

    // Nothing outside changed, and nothing appeared next to the root.
    assert_eq!(snapshot(&outside), before);
    assert_eq!(
        std::fs::read(outside.join("secret")).unwrap(),
        b"top secret"
    );
    assert_eq!(
        names(t.path()),
        ["outside", "root"].iter().map(|s| s.to_string()).collect()
    );
}

/// Swaps the names `a` and `b` in the directory `dir`, atomically.
fn rename_exchange(dir: &File, a: &CStr, b: &CStr) -> io::Result<()> {
    sys::renameat2(dir.as_fd(), a, dir.as_fd(), b, libc::RENAME_EXCHANGE)
}

#[test]
fn jail_swap_race_stays_inside() {
    let (t, outside, root) = setup("race");
    let before = snapshot(&outside);
    std::fs::create_dir(root.join("swap")).unwrap();
    symlink("../outside", root.join("swap_alt")).unwrap();
    let jail = Jail::new(&root).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let attacker = {
        let stop = stop.clone();
        let swaps = swaps.clone();
        let dir = File::open(&root).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                rename_exchange(&dir, c"swap", c"swap_alt").unwrap();
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let (mut created, mut made_dirs) = (0, 0);
    for _ in 0..2000 {
        if jail.open("swap/secret-name", &write_opts()).is_ok() {
            created += 1;
            let _ = jail.remove("swap/secret-name");
        }
        if jail.mkdir("swap/x", 0o755).is_ok() {
            made_dirs += 1;
            let _ = jail.rmdir("swap/x");
        }
        let _ = jail.symlink("s", "swap/sl");
        let _ = jail.hardlink("file", "swap/hl");
        let _ = jail.rename("dir/inner", "swap/inner", false);
        let _ = jail.rename("swap/inner", "dir/inner", false);
        let _ = jail.setstat("swap/secret", None, None, Some(0o777), None);
        let _ = jail.remove("swap/secret");
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    assert!(swaps.load(Ordering::Relaxed) > 0);
    eprintln!(
        "race: {} swaps, {created} files and {made_dirs} dirs created inside",
        swaps.load(Ordering::Relaxed)
    );

    assert_eq!(snapshot(&outside), before);
    assert_eq!(
        names(t.path()),
        ["outside", "root"].iter().map(|s| s.to_string()).collect()
    );
    // Whatever was created is inside the root.
    let real_dir = if std::fs::symlink_metadata(root.join("swap"))
        .unwrap()
        .is_dir()
    {
        root.join("swap")
    } else {
        root.join("swap_alt")
    };
    for n in names(&real_dir) {
        assert!(
            ["sl", "hl", "inner", "secret-name", "x"].contains(&n.as_str()),
            "{n}"
        );
    }
}

#[test]
fn jail_normal_operations() {
    let (_t, _outside, root) = setup("normal");
    let jail = Jail::new(&root).unwrap();
    assert!(Jail::new(root.join("file")).is_err());
    assert!(Jail::new(root.join("missing")).is_err());

    // Create, write, read, append, exclusive, truncate.
    let mut f = jail.open("a.txt", &OpenOptions::create()).unwrap();
    f.write_all(b"hello").unwrap();
    jail.fsync(&f).unwrap();
    drop(f);
    assert_eq!(read_all(&jail, "/a.txt").unwrap(), b"hello");
    let append = OpenOptions {
        append: true,
        ..OpenOptions::default()
    };
    jail.open("a.txt", &append)
        .unwrap()
        .write_all(b" world")
        .unwrap();
    assert_eq!(read_all(&jail, "a.txt").unwrap(), b"hello world");
    let excl = OpenOptions {
        write: true,
        exclusive: true,
        mode: 0o600,
        ..OpenOptions::default()
    };
    assert_eq!(
        jail.open("a.txt", &excl).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    assert_eq!(
        jail.open("link-to-a", &OpenOptions::read())
            .unwrap_err()
            .kind(),
        io::ErrorKind::NotFound
    );
    jail.open("b.txt", &excl)
        .unwrap()
        .write_all(b"bee")
        .unwrap();
    assert_eq!(jail.stat("b.txt").unwrap().permissions() & 0o077, 0);
    let rw = OpenOptions {
        read: true,
        write: true,
        ..OpenOptions::default()
    };
    let mut f = jail.open("a.txt", &rw).unwrap();
    f.write_all(b"J").unwrap();
    f.rewind().unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "Jello world");
    assert_eq!(jail.fstat(&f).unwrap().size, 11);
    drop(f);
    let trunc = OpenOptions {
        write: true,
        truncate: true,
        ..OpenOptions::default()
    };
    drop(jail.open("b.txt", &trunc).unwrap());
    assert_eq!(jail.stat("b.txt").unwrap().size, 0);
    assert_eq!(
        jail.open("a.txt", &OpenOptions::default())
            .unwrap_err()
            .kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        jail.open("dir", &OpenOptions::read())
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EISDIR)
    );
    assert!(jail.open("dir", &write_opts()).is_err());
    assert!(jail.open("a.txt\0x", &OpenOptions::read()).is_err());

    // Directories.
    jail.mkdir("d", 0o755).unwrap();
    jail.mkdir("/d/e/", 0o700).unwrap();
    assert!(jail.stat("d/e").unwrap().is_dir());
    assert_eq!(
        jail.mkdir("d", 0o755).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    assert_eq!(
        jail.mkdir("/", 0o755).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    assert!(jail.rmdir("d").is_err()); // not empty
    assert!(jail.remove("d").is_err()); // a directory
    jail.mkdir("d/gone", 0o755).unwrap();
    jail.rmdir("d/gone").unwrap();
    is_enoent(jail.stat("d/gone"), "stat removed dir");

    // Renames.
    jail.rename("a.txt", "c.txt", false).unwrap();
    is_enoent(jail.stat("a.txt"), "renamed away");
    assert_eq!(
        jail.rename("b.txt", "c.txt", false).unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    jail.open("b.txt", &OpenOptions::create())
        .unwrap()
        .write_all(b"bbb")
        .unwrap();
    jail.rename("b.txt", "/d/../c.txt", true).unwrap();
    assert_eq!(read_all(&jail, "c.txt").unwrap(), b"bbb");
    jail.rename("d/e", "d/f", false).unwrap();
    assert!(jail.stat("d/f").unwrap().is_dir());

    // Symlinks, relative and absolute (inside the root).
    jail.symlink("c.txt", "/lnk").unwrap();
    jail.symlink("/d/f", "d/abs").unwrap();
    jail.symlink("../c.txt", "d/rel").unwrap();
    assert_eq!(jail.readlink("lnk").unwrap(), "c.txt");
    assert_eq!(jail.readlink("d/abs").unwrap(), "/d/f");
    assert!(jail.readlink("c.txt").is_err());
    assert!(jail.readlink("/").is_err());
    assert!(jail.stat("lnk").unwrap().is_file());
    assert_eq!(jail.stat("lnk").unwrap().size, 3);
    assert!(jail.lstat("lnk").unwrap().is_symlink());
    assert!(jail.stat("d/abs").unwrap().is_dir());
    assert_eq!(read_all(&jail, "d/rel").unwrap(), b"bbb");
    assert!(jail.lstat("/").unwrap().is_dir());
    assert!(jail.lstat("d/..").unwrap().is_dir());
    assert_eq!(
        jail.symlink("x", "lnk").unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    jail.open("d/abs/through", &OpenOptions::create()).unwrap();
    assert!(root.join("d/f/through").is_file());

    // Hard links.
    jail.hardlink("c.txt", "h.txt").unwrap();
    jail.open("h.txt", &append)
        .unwrap()
        .write_all(b"!")
        .unwrap();
    assert_eq!(read_all(&jail, "c.txt").unwrap(), b"bbb!");
    assert_eq!(
        jail.hardlink("c.txt", "h.txt").unwrap_err().kind(),
        io::ErrorKind::AlreadyExists
    );
    jail.remove("h.txt").unwrap();
    assert_eq!(read_all(&jail, "c.txt").unwrap(), b"bbb!");

    // realpath.
    assert_eq!(jail.realpath("d/../d/./f").unwrap(), "/d/f");
    assert_eq!(jail.realpath("d/f/../../c.txt").unwrap(), "/c.txt");
    assert_eq!(jail.realpath("/").unwrap(), "/");
    assert_eq!(jail.realpath("").unwrap(), "/");
    assert_eq!(jail.realpath(".").unwrap(), "/");
    assert_eq!(jail.realpath("lnk").unwrap(), "/c.txt");
    assert_eq!(jail.realpath("d/abs").unwrap(), "/d/f");
    assert_eq!(jail.realpath("d/./newname").unwrap(), "/d/newname");
    assert_eq!(jail.realpath("d/f/../newname/").unwrap(), "/d/newname");
    assert_eq!(jail.realpath("newname").unwrap(), "/newname");
    is_enoent(jail.realpath("missing/x"), "realpath missing/x");

    // statvfs.
    let vfs = jail.statvfs("/").unwrap();
    assert!(
        vfs.blocks > 0 && vfs.bsize > 0 && vfs.namemax >= 255,
        "{vfs:?}"
    );
    assert_eq!(jail.statvfs("d/f").unwrap().fsid, vfs.fsid);

    // Listing.
    let list: BTreeMap<String, FileStat> =
        jail.open_dir("/").unwrap().map(|r| r.unwrap()).collect();
    for n in [".", "..", "c.txt", "d", "lnk", "file", "dir"] {
        assert!(list.contains_key(n), "{n} missing in {list:?}");
    }
    assert_eq!(list["c.txt"].size, 4);
    assert!(list["c.txt"].is_file());
    assert!(list["lnk"].is_symlink());
    assert!(list["d"].is_dir());
    let list: BTreeSet<String> = jail
        .open_dir("d/abs")
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(
        list,
        [".", "..", "through"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert!(jail.open_dir("c.txt").is_err());

    // setstat (follows), lsetstat (does not), fsetstat.
    jail.setstat("c.txt", Some(2), None, Some(0o640), Some((1000, 2000)))
        .unwrap();
    let st = jail.stat("c.txt").unwrap();
    assert_eq!(
        (st.size, st.permissions(), st.atime, st.mtime),
        (2, 0o640, 1000, 2000)
    );
    jail.setstat("lnk", None, None, Some(0o604), Some((3, 4)))
        .unwrap();
    let st = jail.stat("c.txt").unwrap();
    assert_eq!((st.permissions(), st.mtime), (0o604, 4));
    jail.lsetstat("lnk", None, None, None, Some((5, 6)))
        .unwrap();
    assert_eq!(jail.lstat("lnk").unwrap().mtime, 6);
    assert_eq!(jail.stat("c.txt").unwrap().mtime, 4);
    jail.lsetstat("c.txt", Some(1), None, Some(0o600), Some((7, 8)))
        .unwrap();
    let st = jail.stat("c.txt").unwrap();
    assert_eq!((st.size, st.permissions(), st.mtime), (1, 0o600, 8));
    jail.lsetstat("d/.", None, None, Some(0o750), None).unwrap();
    assert_eq!(jail.stat("d").unwrap().permissions(), 0o750);
    jail.setstat("/", None, None, None, Some((11, 12))).unwrap();
    assert_eq!(jail.stat("").unwrap().mtime, 12);
    let f = jail.open("c.txt", &rw).unwrap();
    jail.fsetstat(&f, Some(5), None, Some(0o644), Some((9, 10)))
        .unwrap();
    let st = jail.fstat(&f).unwrap();
    assert_eq!((st.size, st.permissions(), st.mtime), (5, 0o644, 10));
    if sys::geteuid() == 0 {
        jail.setstat("lnk", None, Some((1234, 5678)), None, None)
            .unwrap();
        let st = jail.stat("c.txt").unwrap();
        assert_eq!((st.uid, st.gid), (1234, 5678));
        jail.lsetstat("lnk", None, Some((4321, 8765)), None, None)
            .unwrap();
        let st = jail.lstat("lnk").unwrap();
        assert_eq!((st.uid, st.gid), (4321, 8765));
        assert_eq!(jail.stat("c.txt").unwrap().uid, 1234);
        jail.fsetstat(&f, None, Some((1, 2)), None, None).unwrap();
        assert_eq!(jail.stat("c.txt").unwrap().gid, 2);
    }
    drop(f);

    // Removal.
    jail.remove("lnk").unwrap();
    assert!(jail.stat("c.txt").is_ok());
    jail.remove("c.txt").unwrap();
    is_enoent(jail.remove("c.txt"), "remove twice");
    jail.remove("d/abs").unwrap();
    jail.remove("d/rel").unwrap();
    jail.remove("d/f/through").unwrap();
    jail.rmdir("d/f").unwrap();
    jail.rmdir("d/").unwrap();
    is_enoent(jail.stat("d"), "stat d");
}
