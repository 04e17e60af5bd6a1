//! The password database, reentrant forms only (`getpwnam_r`,
//! `getpwuid_r`).

use std::ffi::CStr;

/// Which entry to look up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PwKey<'a> {
    Name(&'a CStr),
    Uid(u32),
}

/// The fields of one entry, copied out of the caller's buffer.
#[derive(Debug)]
pub(crate) struct PwEntry {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) dir: String,
    pub(crate) shell: String,
}

/// One `getpwnam_r`/`getpwuid_r` call with `buf` as its string space:
/// `Ok(None)` when there is no entry, `Err(rc)` with the call's error number
/// (`ERANGE`: `buf` is too small).
pub(crate) fn getpw_r(
    key: PwKey<'_>,
    buf: &mut [libc::c_char],
) -> Result<Option<PwEntry>, libc::c_int> {
    // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid value;
    // the call fills it in.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    let rc = match key {
        // SAFETY: `name` is NUL-terminated; `pw`, `buf` (of `buf.len()`
        // bytes) and `res` are valid for writes for the whole call.
        PwKey::Name(name) => unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut res,
            )
        },
        // SAFETY: `pw`, `buf` (of `buf.len()` bytes) and `res` are valid
        // for writes for the whole call.
        PwKey::Uid(uid) => unsafe {
            libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut res)
        },
    };
    if rc != 0 {
        return Err(rc);
    }
    if res.is_null() {
        return Ok(None);
    }
    let s = |p: *const libc::c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: on success the string fields point to NUL-terminated
            // strings inside `buf`, which is borrowed for this whole call.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    };
    Ok(Some(PwEntry {
        name: s(pw.pw_name),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        dir: s(pw.pw_dir),
        shell: s(pw.pw_shell),
    }))
}

/// The real user id of the process.
pub(crate) fn getuid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The effective user id of the process.
#[cfg(test)]
pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
