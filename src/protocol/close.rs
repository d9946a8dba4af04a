//! The close codes the server sends (RFC 6455, 7.4.1, and ours in the
//! 4000 range; docs/PROTOCOL.md says what a client does with each).

pub const CLOSE_NORMAL: u16 = 1000;
/// Idle: no frame and no pong within the heartbeat window.
pub const CLOSE_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL: u16 = 1002;
pub const CLOSE_NOT_UTF8: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;
/// The server is restarting: reconnect (to any node) and resume.
pub const CLOSE_RESTART: u16 = 1012;
/// The login session of the connection ended (logout, withdrawal, password
/// change elsewhere, expiry): sign in again.
pub const CLOSE_SESSION_ENDED: u16 = 4001;
/// The client's outbound queue overflowed (it did not read): reconnect and
/// resume.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
