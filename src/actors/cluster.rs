//! Several nodes that behave as one.
//!
//! Every node runs its own room and user actors for the sessions connected
//! to it. What one node's room actor does that another node's sessions must
//! see is published on the chat topic ([`crate::bus::TOPIC_CHAT`], keyed by
//! room) and applied by the other nodes' room actors as a [`Remote`] event:
//! committed messages, read receipts, typing, membership changes, edits and
//! deletions, block flags. Presence is keyed by user.
//!
//! Seqs are not assigned here: the message store assigns them atomically
//! in the transaction that stores the message (a locked counter row on
//! MySQL, the unique `(room, seq)` index on MongoDB), so any node may accept
//! a send. Order and exactly-once delivery come from the receiving side:
//! each room actor delivers seq `n + 1` after `n`, holds back anything that
//! arrives early, drops anything at or below what it delivered, and if a
//! gap does not close within `cluster_gap_fill_ms` it reads the missing
//! messages from the store. See docs/ARCHITECTURE.md.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::bus::Event;
use crate::domain::chat::{MemberRole, MessageKind, RoomKind};
use crate::store::{MemberRecord, MessageRecord};

/// A room event from another node.
#[derive(Debug, Clone)]
pub enum Remote {
    Message(MessageRecord),
    Read { user: i64, seq: i64 },
    Typing { user: i64 },
    MemberAdded(MemberRecord),
    MemberRemoved { user: i64, reason: &'static str },
    Broadcast(String),
    Blocked(bool),
}

/// Wire form of a message (the `data` of a `chat.message` event).
#[derive(Serialize, Deserialize)]
struct WireMessage {
    seq: i64,
    sender: i64,
    client_msg_id: Option<String>,
    kind: String,
    body: String,
    payload: Option<String>,
    ts: i64,
    edited_at: Option<i64>,
    deleted_at: Option<i64>,
}

/// Removal reasons are a closed set (they reach clients as codes).
fn reason(s: &str) -> &'static str {
    match s {
        "kicked" => "kicked",
        "banned" => "banned",
        "withdrawn" => "withdrawn",
        _ => "left",
    }
}

impl Remote {
    pub fn to_event(&self, room: i64) -> Event {
        let (kind, data) = match self {
            Remote::Message(m) => (
                "chat.message",
                json!(WireMessage {
                    seq: m.seq,
                    sender: m.sender_id,
                    client_msg_id: m.client_msg_id.clone(),
                    kind: m.kind.as_str().to_string(),
                    body: m.body.clone(),
                    payload: m.payload.clone(),
                    ts: m.created_at,
                    edited_at: m.edited_at,
                    deleted_at: m.deleted_at,
                }),
            ),
            Remote::Read { user, seq } => ("chat.read", json!({"user": user, "seq": seq})),
            Remote::Typing { user } => ("chat.typing", json!({"user": user})),
            Remote::MemberAdded(m) => (
                "chat.member_added",
                json!({"user": m.user_id, "role": m.role.as_str(), "last_read": m.last_read_seq,
                    "joined_at": m.joined_at, "visible_from": m.visible_from}),
            ),
            Remote::MemberRemoved { user, reason } => (
                "chat.member_removed",
                json!({"user": user, "reason": reason}),
            ),
            Remote::Broadcast(frame) => ("chat.broadcast", json!({"frame": frame})),
            Remote::Blocked(b) => ("chat.blocked", json!({"blocked": b})),
        };
        let mut event = Event::new(kind, room, data);
        event.data["room"] = json!(room);
        event
    }

    /// Decode a chat-topic event: `Some((room, remote))`, or `None` for
    /// kinds this node does not know (newer nodes may add some).
    pub fn from_event(event: &Event) -> Option<(i64, Remote)> {
        let d = &event.data;
        let room = d["room"].as_i64()?;
        let int = |v: &Value| v.as_i64();
        let remote = match event.kind.as_str() {
            "chat.message" => {
                let w: WireMessage = serde_json::from_value(d.clone()).ok()?;
                Remote::Message(MessageRecord {
                    room_id: room,
                    seq: w.seq,
                    sender_id: w.sender,
                    client_msg_id: w.client_msg_id,
                    kind: MessageKind::parse(&w.kind)?,
                    body: w.body,
                    payload: w.payload,
                    created_at: w.ts,
                    edited_at: w.edited_at,
                    deleted_at: w.deleted_at,
                })
            }
            "chat.read" => Remote::Read {
                user: int(&d["user"])?,
                seq: int(&d["seq"])?,
            },
            "chat.typing" => Remote::Typing {
                user: int(&d["user"])?,
            },
            "chat.member_added" => Remote::MemberAdded(MemberRecord {
                room_id: room,
                user_id: int(&d["user"])?,
                role: MemberRole::parse(d["role"].as_str()?)?,
                last_read_seq: int(&d["last_read"])?,
                joined_at: int(&d["joined_at"]).unwrap_or(0),
                visible_from: int(&d["visible_from"]).unwrap_or(0),
            }),
            "chat.member_removed" => Remote::MemberRemoved {
                user: int(&d["user"])?,
                reason: reason(d["reason"].as_str()?),
            },
            "chat.broadcast" => Remote::Broadcast(d["frame"].as_str()?.to_string()),
            "chat.blocked" => Remote::Blocked(d["blocked"].as_bool()?),
            _ => return None,
        };
        Some((room, remote))
    }
}

/// `chat.presence`: `user` came online or went offline on some node; the
/// receiving nodes tell `peers` (the user's direct-chat partners) who are
/// connected to them.
pub fn presence_event(user: i64, online: bool, peers: &[i64]) -> Event {
    Event::new(
        "chat.presence",
        user,
        json!({"user": user, "online": online, "peers": peers}),
    )
}

pub fn decode_presence(event: &Event) -> Option<(i64, bool, Vec<i64>)> {
    if event.kind != "chat.presence" {
        return None;
    }
    let d = &event.data;
    let peers = d["peers"]
        .as_array()?
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    Some((d["user"].as_i64()?, d["online"].as_bool()?, peers))
}

/// `chat.revoked`: login sessions ended on another node; nodes with
/// connections of those sessions close them.
pub fn revoked_event(r: &crate::domain::account::Revocation) -> Event {
    Event::new(
        "chat.revoked",
        r.user(),
        serde_json::to_value(r).unwrap_or(Value::Null),
    )
}

pub fn decode_revoked(event: &Event) -> Option<crate::domain::account::Revocation> {
    if event.kind != "chat.revoked" {
        return None;
    }
    serde_json::from_value(event.data.clone()).ok()
}

/// `chat.room_added`: `user` became a member of `room` (created or joined
/// elsewhere); nodes where the user is connected tell their sessions.
pub fn room_added_event(user: i64, room: i64, kind: RoomKind, peer: Option<i64>) -> Event {
    Event::new(
        "chat.room_added",
        user,
        json!({"user": user, "room_id": room, "kind": kind.as_str(), "peer": peer}),
    )
}

pub fn decode_room_added(event: &Event) -> Option<(i64, i64, RoomKind, Option<i64>)> {
    if event.kind != "chat.room_added" {
        return None;
    }
    let d = &event.data;
    Some((
        d["user"].as_i64()?,
        d["room_id"].as_i64()?,
        RoomKind::parse(d["kind"].as_str()?)?,
        d["peer"].as_i64(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_events_round_trip() {
        let m = MessageRecord {
            room_id: 7,
            seq: 42,
            sender_id: 3,
            client_msg_id: Some("c-1".into()),
            kind: MessageKind::Text,
            body: "안녕하세요".into(),
            payload: None,
            created_at: 1_700_000_000_000,
            edited_at: None,
            deleted_at: None,
        };
        let events = [
            Remote::Message(m),
            Remote::Read { user: 3, seq: 40 },
            Remote::Typing { user: 3 },
            Remote::MemberRemoved {
                user: 9,
                reason: "banned",
            },
            Remote::Broadcast("{\"type\":\"x\"}".into()),
            Remote::Blocked(true),
        ];
        for e in events {
            let event = e.to_event(7);
            assert_eq!(event.key, "7");
            let wire = serde_json::to_string(&event).expect("json");
            let back: Event = serde_json::from_str(&wire).expect("event");
            let (room, remote) = Remote::from_event(&back).expect("decodes");
            assert_eq!(room, 7);
            assert_eq!(format!("{remote:?}"), format!("{e:?}"));
        }
        let unknown = Event::new("chat.future", 7, json!({"room": 7}));
        assert!(Remote::from_event(&unknown).is_none());
    }

    #[test]
    fn presence_round_trips() {
        let e = presence_event(5, true, &[1, 2]);
        assert_eq!(decode_presence(&e), Some((5, true, vec![1, 2])));
        let e = room_added_event(5, 9, RoomKind::Direct, Some(6));
        assert_eq!(Remote::from_event(&e).map(|(r, _)| r), None);
        assert_eq!(
            decode_room_added(&e),
            Some((5, 9, RoomKind::Direct, Some(6)))
        );
    }
}
