//! [`serve`]: the SFTP machine and a [`LocalFs`] over a reader/writer
//! pair.

use std::io::{self, Read, Write};

use ssh_proto::sftp::{Request, SftpServer, SftpServerConfig};
use ssh_proto::{Error, ErrorKind};

use super::LocalFs;

/// Serves SFTP over `reader`/`writer` from `fs` until the client closes
/// its side. Requests are answered in order as they arrive; many may be in
/// flight.
pub fn serve(
    mut reader: impl Read,
    mut writer: impl Write,
    mut fs: LocalFs,
    config: SftpServerConfig,
) -> Result<(), Error> {
    let mut machine = SftpServer::new(config);
    let mut inbuf = vec![0u8; 256 * 1024];
    let mut held: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(512 * 1024);
    let mut rbuf: Vec<u8> = Vec::new();
    let mut wrote = false;
    let io = |e: io::Error| Error::new(ErrorKind::Io, format!("sftp stream: {e}"));
    loop {
        // Input the machine held back last time goes first.
        if held.is_empty() {
            let n = match reader.read(&mut inbuf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            };
            let taken = machine.recv(&inbuf[..n])?;
            held.extend_from_slice(&inbuf[taken..n]);
        } else {
            let taken = machine.recv(&held)?;
            held.drain(..taken);
        }
        while let Some((id, req)) = machine.poll_request() {
            if tracing::enabled!(tracing::Level::TRACE) {
                tracing::trace!("sftp request {id}: {}", describe(&req));
            }
            match req {
                Request::Read {
                    handle,
                    offset,
                    len,
                } => match fs.read_into(&handle, offset, len, &mut rbuf) {
                    Ok(n) => machine.reply_data(id, &rbuf[..n])?,
                    Err(r) => machine.reply(id, &r)?,
                },
                Request::Write {
                    handle,
                    offset,
                    data,
                } => {
                    let r = fs.write(&handle, offset, &data);
                    machine.reply(id, &r)?;
                }
                req => {
                    let r = fs.handle(req);
                    machine.reply(id, &r)?;
                }
            }
            if machine.transmit_len() > 256 * 1024 {
                out.clear();
                machine.take_transmit(&mut out);
                writer.write_all(&out).map_err(io)?;
                wrote = true;
            }
        }
        if machine.transmit().is_some() {
            out.clear();
            machine.take_transmit(&mut out);
            writer.write_all(&out).map_err(io)?;
            wrote = true;
        }
        // The writer may buffer (stdout does): everything answered must
        // reach the client before we block reading again.
        if std::mem::take(&mut wrote) {
            writer.flush().map_err(io)?;
        }
    }
}

/// A short description of a request for logs (no data bytes).
fn describe(req: &Request) -> String {
    match req {
        Request::Read { offset, len, .. } => format!("read {len} at {offset}"),
        Request::Write { offset, data, .. } => format!("write {} at {offset}", data.len()),
        r => {
            let s = format!("{r:?}");
            s.chars().take(200).collect()
        }
    }
}
