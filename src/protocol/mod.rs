//! The WebSocket protocol (docs/PROTOCOL.md) in one place: what a client
//! sends ([`client`]), what the server sends ([`frames`], each encoded once
//! and shared by every connection it goes to) and how a connection is
//! closed ([`close`]). A change of the protocol starts here and in
//! docs/PROTOCOL.md; the session loop that speaks it is `http::ws`, the
//! RFC 6455 framing `http::wire` (reading) and `actors::link` (writing).

pub mod client;
pub mod close;
pub mod frames;

pub use frames::Frame;
