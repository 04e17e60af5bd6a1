//! A session channel under either kind of adapter, and the tokio
//! adapter's async handler over the same session.

use std::io::{Read, Write};

use ssh_blocking::proto::{ChannelId, ChannelKind, ChannelRequest, PublicKey, Stream};
use ssh_blocking::{Auth, Channel, ChannelOpenFailure, Handler, KbdInt};

use crate::common::runtime::on_handle;
use crate::session::Session;

/// A session channel under either kind of adapter. The tokio adapter's
/// channel is used from the pump threads through `block_on`.
pub(crate) enum SChan {
    Std(Channel),
    Tokio(ssh_tokio::Channel),
}

impl SChan {
    pub(crate) fn id(&self) -> ChannelId {
        on_handle!(now self, SChan, c => c.id())
    }
    pub(crate) fn send_exit_status(&self, status: u32) -> Result<(), ssh_blocking::Error> {
        on_handle!(now self, SChan, c => c.send_exit_status(status))
    }
    pub(crate) fn send_exit_signal(
        &self,
        sig: &str,
        core: bool,
        msg: &str,
    ) -> Result<(), ssh_blocking::Error> {
        on_handle!(now self, SChan, c => c.send_exit_signal(sig, core, msg))
    }
    pub(crate) fn send_eof(&self) -> Result<(), ssh_blocking::Error> {
        on_handle!(now self, SChan, c => c.send_eof())
    }
    pub(crate) fn close(&self) -> Result<(), ssh_blocking::Error> {
        on_handle!(now self, SChan, c => c.close())
    }
    pub(crate) fn stderr(&self) -> SChanStderr<'_> {
        SChanStderr(self)
    }
    pub(crate) fn write_stream(&self, stream: Stream, buf: &[u8]) -> std::io::Result<usize> {
        on_handle!(wait self, SChan, c => c.write_data(stream, buf)).map_err(std::io::Error::other)
    }
}

impl Read for &SChan {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        on_handle!(wait self, SChan, c => c.read_stream(Stream::Stdout, buf))
            .map_err(std::io::Error::other)
    }
}

impl Write for &SChan {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_stream(Stream::Stdout, buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) struct SChanStderr<'a>(pub(crate) &'a SChan);

impl Write for SChanStderr<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_stream(Stream::Stderr, buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The same session behind the tokio adapter's async handler: the
/// decisions are the blocking ones (none of them waits on I/O).
pub(crate) struct TokioSession(pub(crate) Session);

impl ssh_tokio::Handler for TokioSession {
    async fn auth_password(&mut self, user: &str, password: &str) -> Auth {
        Handler::auth_password(&mut self.0, user, password)
    }
    async fn auth_publickey_offered(&mut self, user: &str, key: &PublicKey, alg: &str) -> bool {
        Handler::auth_publickey_offered(&mut self.0, user, key, alg)
    }
    async fn auth_publickey(&mut self, user: &str, key: &PublicKey, alg: &str) -> Auth {
        Handler::auth_publickey(&mut self.0, user, key, alg)
    }
    async fn auth_keyboard_interactive(&mut self, user: &str, submethods: &str) -> KbdInt {
        Handler::auth_keyboard_interactive(&mut self.0, user, submethods)
    }
    async fn auth_keyboard_interactive_response(
        &mut self,
        user: &str,
        responses: &[String],
    ) -> KbdInt {
        Handler::auth_keyboard_interactive_response(&mut self.0, user, responses)
    }
    async fn authenticated(&mut self, user: &str) {
        Handler::authenticated(&mut self.0, user)
    }
    async fn channel_open_direct_tcpip(
        &mut self,
        host: &str,
        port: u32,
        _originator: &str,
        _originator_port: u32,
    ) -> Result<(), ChannelOpenFailure> {
        self.0.open_direct_tcpip(host, port)
    }
    async fn channel_open_direct_streamlocal(
        &mut self,
        path: &str,
    ) -> Result<(), ChannelOpenFailure> {
        self.0.open_direct_streamlocal(path)
    }
    async fn channel_opened(&mut self, channel: ssh_tokio::Channel, kind: &ChannelKind) {
        self.0.opened(SChan::Tokio(channel), kind)
    }
    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        opener: &ssh_tokio::ChannelOpener,
    ) -> Option<u32> {
        self.0.forward_tcpip(address, port, &opener.blocking())
    }
    async fn cancel_tcpip_forward(&mut self, address: &str, port: u32) -> bool {
        self.0.cancel_forward(address, port, None)
    }
    async fn streamlocal_forward(&mut self, path: &str, opener: &ssh_tokio::ChannelOpener) -> bool {
        self.0.forward_streamlocal(path, &opener.blocking())
    }
    async fn cancel_streamlocal_forward(&mut self, path: &str) -> bool {
        self.0.cancel_forward("", 0, Some(path))
    }
    async fn channel_request(
        &mut self,
        channel: &ssh_tokio::Channel,
        request: ChannelRequest,
    ) -> bool {
        self.0.request(channel.id(), request)
    }
    async fn channel_closed(&mut self, id: ChannelId) {
        self.0.closed(id)
    }
    async fn disconnected(&mut self, reason: &ssh_blocking::Error) {
        self.0.ended(reason)
    }
}
