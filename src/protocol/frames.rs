//! Server -> client frames of the WebSocket protocol (docs/PROTOCOL.md).
//! Built once and shared as a [`Frame`] (reference-counted bytes): a message
//! delivered to a thousand connections is serialised once and never copied.

use serde::Serialize;
use serde_json::Value;

use crate::domain::chat::MessageKind;
use crate::error::Code;
use crate::store::MessageRecord;

/// One encoded server frame; cloning it is a reference-count increment.
pub type Frame = bytestring::ByteString;

fn to_frame<T: Serialize>(value: &T) -> Frame {
    // Serialising these plain structs cannot fail (string keys, no maps
    // with non-string keys); fall back to an error frame just in case.
    serde_json::to_string(value)
        .unwrap_or_else(|_| {
            format!(
                r#"{{"type":"error","code":"{}","message":"frame encoding"}}"#,
                Code::Internal
            )
        })
        .into()
}

#[derive(Serialize)]
struct MessageFrame<'a> {
    r#type: &'static str,
    room: i64,
    seq: i64,
    sender: i64,
    body: &'a str,
    ts: i64,
    client_msg_id: Option<&'a str>,
    kind: MessageKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    edited_at: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
}

pub fn message(m: &MessageRecord) -> Frame {
    to_frame(&MessageFrame {
        r#type: "message",
        room: m.room_id,
        seq: m.seq,
        sender: m.sender_id,
        body: &m.body,
        ts: m.created_at,
        client_msg_id: m.client_msg_id.as_deref(),
        kind: m.kind,
        payload: m
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok()),
        edited_at: m.edited_at,
        deleted: m.deleted_at.is_some(),
    })
}

#[derive(Serialize)]
struct Ack<'a> {
    r#type: &'static str,
    room: i64,
    client_msg_id: &'a str,
    seq: i64,
    ts: i64,
}

pub fn ack(room: i64, client_msg_id: &str, seq: i64, ts: i64) -> Frame {
    to_frame(&Ack {
        r#type: "ack",
        room,
        client_msg_id,
        seq,
        ts,
    })
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    r#type: &'static str,
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_msg_id: Option<&'a str>,
}

/// An `error` frame; `code` comes from the code table, so a misspelt code
/// does not compile.
pub fn error(code: Code, message: &str, room: Option<i64>, client_msg_id: Option<&str>) -> Frame {
    to_frame(&ErrorFrame {
        r#type: "error",
        code: code.as_str(),
        message,
        room,
        client_msg_id,
    })
}

pub fn receipt(room: i64, user: i64, seq: i64) -> Frame {
    to_frame(&serde_json::json!({"type": "receipt", "room": room, "user": user, "seq": seq}))
}

pub fn badge(room: i64, unread: i64, total: i64) -> Frame {
    // Hot (one per member per changed room): plain formatting of integers.
    Frame::from(format!(
        r#"{{"type":"badge","room":{room},"unread":{unread},"total":{total}}}"#
    ))
}

pub fn typing(room: i64, user: i64) -> Frame {
    to_frame(&serde_json::json!({"type": "typing", "room": room, "user": user}))
}

pub fn presence(user: i64, online: bool) -> Frame {
    to_frame(&serde_json::json!({"type": "presence", "user": user, "online": online}))
}

pub fn resumed(room: i64, through: i64) -> Frame {
    to_frame(&serde_json::json!({"type": "resumed", "room": room, "through": through}))
}

pub fn removed(room: i64, reason: &str) -> Frame {
    to_frame(&serde_json::json!({"type": "removed", "room": room, "reason": reason}))
}

pub fn joined(room: i64) -> Frame {
    to_frame(&serde_json::json!({"type": "joined", "room": room}))
}

pub fn message_updated(m: &MessageRecord) -> Frame {
    to_frame(&serde_json::json!({
        "type": "message_updated",
        "room": m.room_id,
        "seq": m.seq,
        "body": m.body,
        "edited_at": m.edited_at,
        "deleted": m.deleted_at.is_some(),
    }))
}

/// A new notification (the same object as in `GET /api/me/notifications`).
pub fn notification(item: &Value) -> Frame {
    to_frame(&serde_json::json!({"type": "notification", "notification": item}))
}

/// The user's unread notification count changed.
pub fn notification_badge(unread: i64) -> Frame {
    Frame::from(format!(
        r#"{{"type":"notification_badge","unread":{unread}}}"#
    ))
}

pub fn pong() -> Frame {
    Frame::from_static(r#"{"type":"pong"}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_frames_keep_their_wire_shape() {
        assert_eq!(
            &*error(Code::RoomNotFound, "no such room", Some(7), Some("c-1")),
            r#"{"type":"error","code":"room_not_found","message":"no such room","room":7,"client_msg_id":"c-1"}"#
        );
        assert_eq!(
            &*error(Code::InvalidFrame, "seq must be >= 0", None, None),
            r#"{"type":"error","code":"invalid_frame","message":"seq must be >= 0"}"#
        );
    }
}
