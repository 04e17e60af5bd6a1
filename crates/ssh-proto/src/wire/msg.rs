//! Message numbers (RFC 4250 §4.1), disconnect reasons and channel-open
//! failure codes.

// Undocumented items: the constants carry their RFC 4250 names; this module is reachable only
// through the `internal` test door.
#![allow(missing_docs)]

pub const DISCONNECT: u8 = 1;
pub const IGNORE: u8 = 2;
pub const UNIMPLEMENTED: u8 = 3;
pub const DEBUG: u8 = 4;
pub const SERVICE_REQUEST: u8 = 5;
pub const SERVICE_ACCEPT: u8 = 6;
pub const EXT_INFO: u8 = 7;
pub const KEXINIT: u8 = 20;
pub const NEWKEYS: u8 = 21;
/// KEXDH_INIT / KEX_ECDH_INIT / KEX_HYBRID_INIT / KEX_DH_GEX_REQUEST_OLD
pub const KEX_30: u8 = 30;
/// KEXDH_REPLY / KEX_ECDH_REPLY / KEX_DH_GEX_GROUP
pub const KEX_31: u8 = 31;
pub const KEX_DH_GEX_INIT: u8 = 32;
pub const KEX_DH_GEX_REPLY: u8 = 33;
pub const KEX_DH_GEX_REQUEST: u8 = 34;
pub const USERAUTH_REQUEST: u8 = 50;
pub const USERAUTH_FAILURE: u8 = 51;
pub const USERAUTH_SUCCESS: u8 = 52;
pub const USERAUTH_BANNER: u8 = 53;
/// USERAUTH_PK_OK / USERAUTH_PASSWD_CHANGEREQ / USERAUTH_INFO_REQUEST
pub const USERAUTH_60: u8 = 60;
pub const USERAUTH_INFO_RESPONSE: u8 = 61;
pub const GLOBAL_REQUEST: u8 = 80;
pub const REQUEST_SUCCESS: u8 = 81;
pub const REQUEST_FAILURE: u8 = 82;
pub const CHANNEL_OPEN: u8 = 90;
pub const CHANNEL_OPEN_CONFIRMATION: u8 = 91;
pub const CHANNEL_OPEN_FAILURE: u8 = 92;
pub const CHANNEL_WINDOW_ADJUST: u8 = 93;
pub const CHANNEL_DATA: u8 = 94;
pub const CHANNEL_EXTENDED_DATA: u8 = 95;
pub const CHANNEL_EOF: u8 = 96;
pub const CHANNEL_CLOSE: u8 = 97;
pub const CHANNEL_REQUEST: u8 = 98;
pub const CHANNEL_SUCCESS: u8 = 99;
pub const CHANNEL_FAILURE: u8 = 100;

/// First and last number of the key exchange method specific range
/// (RFC 4250 §4.1.2).
pub const KEX_METHOD_FIRST: u8 = 30;
pub const KEX_METHOD_LAST: u8 = 49;
/// First and last number of the user authentication range (RFC 4250
/// §4.1.2: 50..=59 generic, 60..=79 method specific).
pub const USERAUTH_FIRST: u8 = 50;
pub const USERAUTH_LAST: u8 = 79;
/// First and last number of the connection protocol range (RFC 4250
/// §4.1.2: 80..=89 generic, 90..=127 channel related).
pub const CONNECTION_FIRST: u8 = 80;
pub const CONNECTION_LAST: u8 = 127;

/// Numbers of the auth and connection ranges no RFC assigns (54..=59,
/// 83..=89, 101..=127): unknown messages like any other.
pub fn is_unassigned_upper(t: u8) -> bool {
    (USERAUTH_BANNER + 1..USERAUTH_60).contains(&t)
        || (REQUEST_FAILURE + 1..CHANNEL_OPEN).contains(&t)
        || (CHANNEL_FAILURE + 1..=CONNECTION_LAST).contains(&t)
}

pub use crate::disconnect;

/// `SSH_EXTENDED_DATA_STDERR`, the one extended data type (RFC 4254 §5.2).
pub const EXTENDED_DATA_STDERR: u32 = 1;

/// Channel open failure reason codes (RFC 4254 §5.1); see
/// [`ChannelOpenFailureReason`](crate::event::ChannelOpenFailureReason).
pub mod open_failure {
    pub const ADMINISTRATIVELY_PROHIBITED: u32 = 1;
    pub const CONNECT_FAILED: u32 = 2;
    pub const UNKNOWN_CHANNEL_TYPE: u32 = 3;
    pub const RESOURCE_SHORTAGE: u32 = 4;
}

/// Human name of a message number, for error texts and logs.
pub fn name(n: u8) -> &'static str {
    match n {
        DISCONNECT => "DISCONNECT",
        IGNORE => "IGNORE",
        UNIMPLEMENTED => "UNIMPLEMENTED",
        DEBUG => "DEBUG",
        SERVICE_REQUEST => "SERVICE_REQUEST",
        SERVICE_ACCEPT => "SERVICE_ACCEPT",
        EXT_INFO => "EXT_INFO",
        KEXINIT => "KEXINIT",
        NEWKEYS => "NEWKEYS",
        30..=49 => "KEX method specific",
        USERAUTH_REQUEST => "USERAUTH_REQUEST",
        USERAUTH_FAILURE => "USERAUTH_FAILURE",
        USERAUTH_SUCCESS => "USERAUTH_SUCCESS",
        USERAUTH_BANNER => "USERAUTH_BANNER",
        60..=79 => "USERAUTH method specific",
        GLOBAL_REQUEST => "GLOBAL_REQUEST",
        REQUEST_SUCCESS => "REQUEST_SUCCESS",
        REQUEST_FAILURE => "REQUEST_FAILURE",
        CHANNEL_OPEN => "CHANNEL_OPEN",
        CHANNEL_OPEN_CONFIRMATION => "CHANNEL_OPEN_CONFIRMATION",
        CHANNEL_OPEN_FAILURE => "CHANNEL_OPEN_FAILURE",
        CHANNEL_WINDOW_ADJUST => "CHANNEL_WINDOW_ADJUST",
        CHANNEL_DATA => "CHANNEL_DATA",
        CHANNEL_EXTENDED_DATA => "CHANNEL_EXTENDED_DATA",
        CHANNEL_EOF => "CHANNEL_EOF",
        CHANNEL_CLOSE => "CHANNEL_CLOSE",
        CHANNEL_REQUEST => "CHANNEL_REQUEST",
        CHANNEL_SUCCESS => "CHANNEL_SUCCESS",
        CHANNEL_FAILURE => "CHANNEL_FAILURE",
        _ => "unknown",
    }
}
