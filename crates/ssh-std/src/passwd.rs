//! Password-database entries (`getpwnam_r`/`getpwuid_r`, reentrant, so
//! safe from any thread), for home directories and `~` expansion.

use std::ffi::CString;
use std::io;

use crate::sys::{self, PwKey};

/// One entry of the password database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    /// The login name.
    pub name: String,
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// The home directory.
    pub dir: String,
    /// The login shell.
    pub shell: String,
}

impl Passwd {
    /// The entry of user `name`; Ok(None) when there is none.
    pub fn by_name(name: &str) -> io::Result<Option<Passwd>> {
        // A name with a NUL byte names nobody.
        let Ok(c) = CString::new(name) else {
            return Ok(None);
        };
        lookup(PwKey::Name(&c))
    }

    /// The entry of user id `uid`; Ok(None) when there is none.
    pub fn by_uid(uid: u32) -> io::Result<Option<Passwd>> {
        lookup(PwKey::Uid(uid))
    }

    /// The entry of the process's real user id.
    pub fn current() -> io::Result<Option<Passwd>> {
        Passwd::by_uid(sys::getuid())
    }
}

fn lookup(key: PwKey<'_>) -> io::Result<Option<Passwd>> {
    let mut len = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        match sys::getpw_r(key, &mut buf) {
            Ok(entry) => {
                return Ok(entry.map(|e| Passwd {
                    name: e.name,
                    uid: e.uid,
                    gid: e.gid,
                    dir: e.dir,
                    shell: e.shell,
                }))
            }
            Err(libc::ERANGE) if len < 1 << 20 => len *= 4,
            // "Not found" comes back as one of these from some NSS modules.
            Err(libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM) => return Ok(None),
            Err(rc) => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_entry() {
        let by_name = Passwd::by_name("root").unwrap().unwrap();
        assert_eq!(by_name.uid, 0);
        assert_eq!(Passwd::by_uid(0).unwrap().unwrap(), by_name);
        assert_eq!(Passwd::by_name("no such user, surely").unwrap(), None);
        assert_eq!(Passwd::by_name("nul\0byte").unwrap(), None);
    }
}
