//! Client -> server frames of the WebSocket protocol (docs/PROTOCOL.md).
//! A frame whose `type` is not one of [`CLIENT_TYPES`] is answered with an
//! `error` frame (`unknown_type`); one whose fields do not match its type,
//! with `invalid_frame`.

use std::collections::HashMap;

use serde::Deserialize;

/// A frame a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Send {
        room: i64,
        client_msg_id: String,
        body: String,
    },
    Read {
        room: i64,
        seq: i64,
    },
    Typing {
        room: i64,
    },
    /// Per room (its id as a string key), the last seq the client has.
    Resume {
        rooms: HashMap<String, i64>,
    },
    Ping,
}

/// Every `type` a client may send.
pub const CLIENT_TYPES: &[&str] = &["send", "read", "typing", "resume", "ping"];
