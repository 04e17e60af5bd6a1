//! The local test users (`sshtest` and others a test asks for).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::scratch::with_lock;
use super::util::{is_root, require_peer, run_checked, show};
use super::{PASSWORD, USER};

#[derive(Clone, Debug)]
pub struct TestUser {
    pub name: String,
    pub password: String,
    pub home: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

/// `name`'s uid, gid, home and shell, from the password database.
pub(crate) fn passwd_entry(name: &str) -> Option<(u32, u32, PathBuf, String)> {
    let pw = ssh_std::passwd::Passwd::by_name(name).ok()??;
    Some((pw.uid, pw.gid, PathBuf::from(pw.dir), pw.shell))
}

/// Makes sure the local user `sshtest` exists with shell `/bin/sh`, password
/// `sshtest-pw` and a `~/.ssh` directory. Idempotent, and safe when several
/// test processes run it at once (a lock file, "already exists" tolerated).
pub fn ensure_user() -> TestUser {
    static USER_INFO: OnceLock<TestUser> = OnceLock::new();
    USER_INFO
        .get_or_init(|| {
            assert!(
                is_root(),
                "the interop tests need root: they create the local user {USER} and run sshd/dropbear (CI runs as root)"
            );
            with_lock("user", || {
                // Other processes (not all of them using our lock) may hold
                // the passwd/shadow locks for a moment: retry a few times.
                if passwd_entry(USER).is_none() {
                    retry("useradd", || {
                        let out = Command::new(require_peer("useradd"))
                            .args(["-m", "-s", "/bin/sh", USER])
                            .stdin(Stdio::null())
                            .output()
                            .unwrap_or_else(|e| panic!("cannot run useradd: {e}"));
                        // Exit code 9: the user already exists (another process won the race).
                        if out.status.success() || out.status.code() == Some(9) || passwd_entry(USER).is_some() {
                            Ok(())
                        } else {
                            Err(show(&out.stderr, 2000))
                        }
                    });
                }
                let (_, _, _, shell) = passwd_entry(USER).expect("sshtest missing from the password database after useradd");
                if shell != "/bin/sh" {
                    run_checked(Command::new(require_peer("usermod")).args(["-s", "/bin/sh", USER]), "usermod");
                }
                chpasswd(&[], USER, PASSWORD);

                let (uid, gid, home, _) = passwd_entry(USER).unwrap();
                if !home.exists() {
                    std::fs::create_dir_all(&home).unwrap();
                    std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
                    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
                }
                ensure_ssh_dir(&home, uid, gid);
                TestUser { name: USER.into(), password: PASSWORD.into(), home, uid, gid }
            })
        })
        .clone()
}

/// Sets `user`'s password with `chpasswd ARGS` (retried: other processes
/// may hold the passwd/shadow locks for a moment).
pub(crate) fn chpasswd(args: &[&str], user: &str, password: &str) {
    retry("chpasswd", || {
        let mut child = Command::new(require_peer("chpasswd"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot run chpasswd");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{user}:{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(show(&out.stderr, 2000))
        }
    });
}

/// `HOME/.ssh` exists, owned by uid:gid, mode 0700.
pub(crate) fn ensure_ssh_dir(home: &Path, uid: u32, gid: u32) {
    let ssh_dir = home.join(".ssh");
    if !ssh_dir.exists() {
        std::fs::create_dir(&ssh_dir).unwrap();
    }
    std::os::unix::fs::chown(&ssh_dir, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// Makes sure the local user `name` exists with home `/home/NAME` and
/// `shell`, and sets its password: `Some(pw)` hashed as SHA-512 crypt
/// (`chpasswd -c SHA512`), `None` locked (`usermod
/// -L`, a `!` hash). Idempotent and safe when several test processes run
/// it at once (the lock [`ensure_user`] takes). Needs root.
pub fn ensure_local_user(name: &str, shell: &str, password: Option<&str>) -> TestUser {
    assert!(is_root(), "creating the local user {name} needs root");
    with_lock("user", || {
        if passwd_entry(name).is_none() {
            retry("useradd", || {
                let out = Command::new(require_peer("useradd"))
                    .args(["-m", "-d", &format!("/home/{name}"), "-s", shell, name])
                    .stdin(Stdio::null())
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run useradd: {e}"));
                if out.status.success()
                    || out.status.code() == Some(9)
                    || passwd_entry(name).is_some()
                {
                    Ok(())
                } else {
                    Err(show(&out.stderr, 2000))
                }
            });
        }
        let (_, _, _, old_shell) =
            passwd_entry(name).expect("user missing from the password database after useradd");
        if old_shell != shell {
            run_checked(
                Command::new(require_peer("usermod")).args(["-s", shell, name]),
                "usermod",
            );
        }
        let pw = password.unwrap_or("locked-account");
        chpasswd(&["-c", "SHA512"], name, pw);
        if password.is_none() {
            run_checked(
                Command::new(require_peer("usermod")).args(["-L", name]),
                "usermod -L",
            );
        }
        let (uid, gid, home, _) = passwd_entry(name).unwrap();
        if !home.exists() {
            std::fs::create_dir_all(&home).unwrap();
        }
        std::os::unix::fs::chown(&home, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_ssh_dir(&home, uid, gid);
        TestUser {
            name: name.into(),
            password: pw.into(),
            home,
            uid,
            gid,
        }
    })
}

/// Runs `f` up to 10 times, 200 ms apart, until it succeeds.
pub(crate) fn retry(what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let mut last = String::new();
    for _ in 0..10 {
        match f() {
            Ok(()) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what} failed 10 times; last error: {last}");
}
