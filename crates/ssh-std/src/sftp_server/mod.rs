//! Serving SFTP from a local directory: the [`LocalFs`] backend answers
//! the requests of `ssh_proto::sftp::SftpServer` from a
//! [`Jail`](crate::jail::Jail)ed root, and [`serve`] runs the two over any
//! reader/writer pair (a channel, or stdin/stdout for an `sftp-server`
//! program).

mod args;
mod errno;
mod extensions;
mod local_fs;
mod serve;

pub use args::{expand_start_dir, usage, ArgsError, ServerArgs, LOG_FACILITIES, LOG_LEVELS};
pub use extensions::MAX_CHECK_BYTES;
pub use local_fs::LocalFs;
pub use serve::serve;
