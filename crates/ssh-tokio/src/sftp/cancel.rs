//! Cancellation: guards that keep the session intact when a future is
//! dropped mid-operation (replies nobody waits for, handles left open).

use super::Sftp;

/// Ids of requests sent and not yet answered to their waiter. Whatever is
/// left when this drops (the waiting future was dropped, or gave up early)
/// is marked abandoned, so the replies are discarded.
pub(super) struct Outstanding<'a> {
    sftp: &'a Sftp,
    pub(super) ids: Vec<u32>,
}

impl<'a> Outstanding<'a> {
    pub(super) fn new(sftp: &'a Sftp) -> Self {
        Outstanding {
            sftp,
            ids: Vec::new(),
        }
    }
    pub(super) fn forget(&mut self, id: u32) {
        if let Some(i) = self.ids.iter().position(|&x| x == id) {
            self.ids.swap_remove(i);
        }
    }
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let mut st = self.sftp.lock();
        for &id in &self.ids {
            if st.machine.take_reply(id).is_none() && st.machine.is_pending(id) {
                st.abandoned.insert(id);
            }
        }
    }
}

/// Closes a handle when dropped before [`disarm`](Self::disarm).
pub(super) struct HandleGuard<'a> {
    pub(super) sftp: &'a Sftp,
    pub(super) handle: Option<Vec<u8>>,
}

impl HandleGuard<'_> {
    pub(super) fn disarm(&mut self) -> Vec<u8> {
        self.handle.take().unwrap_or_default()
    }
}

impl Drop for HandleGuard<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.sftp.lock().close_detached(h);
        }
    }
}
