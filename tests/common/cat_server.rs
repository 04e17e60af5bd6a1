//! Our blocking server in-process, for the fault and soak tests: password
//! `pw`; `exec` echoes stdin to stdout, then sends exit status 0, EOF and
//! close; the `sftp` subsystem serves a fresh temporary root.

use std::io::{Read, Write};
use std::sync::Arc;

use ssh_blocking::proto::sftp::SftpServerConfig;
use ssh_blocking::proto::{ChannelRequest, Config};
use ssh_blocking::{
    Auth, Channel, Handler, PrivateKey, PublicKey, Server, ServerHandle, ShutdownHandle,
};
use ssh_std::sftp_server::{serve, LocalFs};

use super::TempDir;

struct Cat {
    root: std::path::PathBuf,
}

impl Handler for Cat {
    fn auth_password(&mut self, _u: &str, p: &str) -> Auth {
        if p == "pw" {
            Auth::Accept
        } else {
            Auth::Reject
        }
    }
    fn channel_request(&mut self, channel: &Channel, req: ChannelRequest) -> bool {
        let ch = channel.clone();
        match req {
            ChannelRequest::Exec { .. } => {
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        match (&ch).read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if (&ch).write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    let _ = ch.send_exit_status(0);
                    let _ = ch.send_eof();
                    let _ = ch.close();
                });
                true
            }
            ChannelRequest::Subsystem { name } if name == "sftp" => {
                let Ok(fs) = LocalFs::new(&self.root, None) else {
                    return false;
                };
                std::thread::spawn(move || {
                    let _ = serve(&ch, &ch, fs, SftpServerConfig::default());
                    let _ = ch.close();
                });
                true
            }
            _ => false,
        }
    }
}

/// A running cat server; shut down when dropped.
pub struct CatServer {
    pub port: u16,
    pub host: PublicKey,
    stop: ShutdownHandle,
    _root: TempDir,
}

impl Drop for CatServer {
    fn drop(&mut self) {
        self.stop.shutdown();
    }
}

/// Starts the server on 127.0.0.1 (an ephemeral port and ed25519 host
/// key, password auth); `tune` adjusts its config first.
pub fn start_cat_server(tune: impl FnOnce(&mut Config)) -> CatServer {
    let root = TempDir::new("cat-server-root");
    let key = PrivateKey::generate_ed25519(&mut *ssh_proto::os_rng());
    let host = key.public_key();
    let mut config = Config::default();
    config.transport.host_keys.push(Arc::new(key));
    config.auth_methods = vec!["password".into()];
    tune(&mut config);
    let server = Server::bind("127.0.0.1:0", Arc::new(config)).unwrap();
    let port = server.local_addr().port();
    let stop = server.shutdown_handle();
    let r = root.path().to_path_buf();
    std::thread::spawn(move || {
        let _ = server.run(move |_h: &ServerHandle| Cat { root: r.clone() });
    });
    CatServer {
        port,
        host,
        stop,
        _root: root,
    }
}
