//! File system statistics ([`Jail::statvfs`]).

use std::io;
use std::os::fd::AsFd;

use super::{Jail, StatVfs};
use crate::sys;

impl Jail {
    /// File system statistics for the file system holding `path`.
    #[allow(clippy::unnecessary_cast)] // field types differ between targets
    pub fn statvfs(&self, path: &str) -> io::Result<StatVfs> {
        let fd = self.resolve(path, libc::O_PATH, 0)?;
        let st = sys::fstatvfs(fd.as_fd())?;
        Ok(StatVfs {
            bsize: st.f_bsize as u64,
            frsize: st.f_frsize as u64,
            blocks: st.f_blocks as u64,
            bfree: st.f_bfree as u64,
            bavail: st.f_bavail as u64,
            files: st.f_files as u64,
            ffree: st.f_ffree as u64,
            favail: st.f_favail as u64,
            fsid: st.f_fsid as u64,
            flag: st.f_flag as u64,
            namemax: st.f_namemax as u64,
        })
    }
}
