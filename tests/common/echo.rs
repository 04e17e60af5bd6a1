//! Small servers tests forward to: TCP and Unix socket echo servers, and an
//! HTTP server answering `hello`. Each runs on threads until the test ends.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// Echoes `s` (on a thread of its own) until its peer's EOF.
pub fn echo<S: Read + Write + Send + 'static>(mut s: S) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// A TCP echo server on 127.0.0.1; its port.
pub fn tcp_echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            echo(s);
        }
    });
    port
}

/// A Unix socket echo server at `dir/echo.sock` that any user may reach
/// (sshd and our server connect as the test user): `dir` is made mode 0777.
pub fn unix_echo(dir: &Path) -> PathBuf {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.join("echo.sock");
    let l = UnixListener::bind(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            echo(s);
        }
    });
    path
}

/// An HTTP server on 127.0.0.1 answering every request with `hello`.
pub fn http_hello() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello");
            });
        }
    });
    port
}
