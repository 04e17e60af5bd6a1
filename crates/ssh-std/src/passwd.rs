//! Password-database entries (`getpwnam_r`/`getpwuid_r`, reentrant, so
//! safe from any thread), for home directories and `~` expansion.

use std::ffi::{CStr, CString};
use std::io;

/// One entry of the password database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The home directory.
    pub dir: String,
    pub shell: String,
}

impl Passwd {
    /// The entry of user `name`; Ok(None) when there is none.
    pub fn by_name(name: &str) -> io::Result<Option<Passwd>> {
        // A name with a NUL byte names nobody.
        let Ok(c) = CString::new(name) else {
            return Ok(None);
        };
        lookup(&mut |pw, buf, len, res| {
            // SAFETY: `c` is NUL-terminated; `pw`, `buf` (of `len` bytes)
            // and `res` are valid for writes for the whole call.
            unsafe { libc::getpwnam_r(c.as_ptr(), pw, buf, len, res) }
        })
    }

    /// The entry of user id `uid`; Ok(None) when there is none.
    pub fn by_uid(uid: u32) -> io::Result<Option<Passwd>> {
        lookup(&mut |pw, buf, len, res| {
            // SAFETY: `pw`, `buf` (of `len` bytes) and `res` are valid for
            // writes for the whole call.
            unsafe { libc::getpwuid_r(uid, pw, buf, len, res) }
        })
    }

    /// The entry of the process's real user id.
    pub fn current() -> io::Result<Option<Passwd>> {
        // SAFETY: getuid has no preconditions.
        Passwd::by_uid(unsafe { libc::getuid() })
    }
}

type LookupFn<'a> = dyn FnMut(*mut libc::passwd, *mut libc::c_char, libc::size_t, *mut *mut libc::passwd) -> libc::c_int
    + 'a;

fn lookup(f: &mut LookupFn<'_>) -> io::Result<Option<Passwd>> {
    let mut len = 1024usize;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid
        // value; the call fills it in.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        let rc = f(&mut pw, buf.as_mut_ptr(), len, &mut res);
        if rc == libc::ERANGE && len < 1 << 20 {
            len *= 4;
            continue;
        }
        // "Not found" comes back as one of these from some NSS modules.
        if matches!(rc, libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM) {
            return Ok(None);
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        if res.is_null() {
            return Ok(None);
        }
        let s = |p: *const libc::c_char| {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: on success the string fields point to
                // NUL-terminated strings inside `buf`, alive here.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        return Ok(Some(Passwd {
            name: s(pw.pw_name),
            uid: pw.pw_uid,
            gid: pw.pw_gid,
            dir: s(pw.pw_dir),
            shell: s(pw.pw_shell),
        }));
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
