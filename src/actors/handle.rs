//! The typed face of the chat engine for services and HTTP handlers.
//!
//! Callers say what they want (`post_system`, `read`, `add_member`, ...);
//! the actor messages, their oneshot replies and the bounded waits live
//! here, so no caller builds a `RoomMsg` or forgets a timeout.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::room::{RoomError, RoomMsg};
use super::{ChatHub, Frame, SessionHandle};
use crate::store::MemberRecord;

/// How long a caller waits for a room actor's answer (a commit, a read
/// pointer move). Beyond it the work still happens; the caller goes on.
pub const ROOM_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request to a room got no good answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("no such room")]
    NoRoom,
    #[error("not a member of the room")]
    NotMember,
    /// The actor did not answer in time (or stopped without answering).
    #[error("the room did not answer in time")]
    Timeout,
}

impl From<RoomError> for ChatError {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::NoRoom => ChatError::NoRoom,
            RoomError::NotMember => ChatError::NotMember,
        }
    }
}

impl ChatHub {
    /// Post a system message caused by `actor` and wait (bounded) until it
    /// is committed, so what the caller does next comes after it in the
    /// room, on any node. False if it did not commit in time.
    pub async fn post_system(&self, room: i64, actor: i64, body: String, payload: Value) -> bool {
        self.post_system_all(&[room], actor, body, payload).await
    }

    /// The same notice in several rooms, committed concurrently.
    pub async fn post_system_all(
        &self,
        rooms: &[i64],
        actor: i64,
        body: String,
        payload: Value,
    ) -> bool {
        let mut committed = Vec::with_capacity(rooms.len());
        for &room in rooms {
            let (done, rx) = oneshot::channel();
            self.room(
                room,
                RoomMsg::System {
                    actor,
                    body: body.clone(),
                    payload: payload.clone(),
                    done: Some(done),
                },
            );
            committed.push(rx);
        }
        let all = futures_util::future::join_all(committed);
        let in_time = tokio::time::timeout(ROOM_REPLY_TIMEOUT, all).await.is_ok();
        if !in_time {
            tracing::warn!(?rooms, "system notice not committed in time");
        }
        in_time
    }

    /// Move `user`'s read pointer in `room` to `seq`; the unread count after.
    pub async fn read(&self, room: i64, user: i64, seq: i64) -> Result<i64, ChatError> {
        let (tx, rx) = oneshot::channel();
        self.room(
            room,
            RoomMsg::Read {
                user,
                seq,
                reply: Some(tx),
                session: None,
            },
        );
        match tokio::time::timeout(ROOM_REPLY_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer.map_err(ChatError::from),
            Ok(Err(_)) | Err(_) => Err(ChatError::Timeout),
        }
    }

    /// A member's message from a WebSocket session; the ack (or error)
    /// goes back to that session.
    pub fn post_from(
        &self,
        session: &SessionHandle,
        room: i64,
        client_msg_id: String,
        body: String,
    ) {
        self.room(
            room,
            RoomMsg::Post {
                user: session.user_id,
                client_msg_id,
                body,
                reply: session.clone(),
            },
        );
    }

    /// A session's `read` frame; errors go back to that session.
    pub fn read_from(&self, session: &SessionHandle, room: i64, seq: i64) {
        self.room(
            room,
            RoomMsg::Read {
                user: session.user_id,
                seq,
                reply: None,
                session: Some(session.clone()),
            },
        );
    }

    pub fn typing_from(&self, session: &SessionHandle, room: i64) {
        self.room(
            room,
            RoomMsg::Typing {
                user: session.user_id,
                session: session.clone(),
            },
        );
    }

    pub fn add_member(&self, member: MemberRecord) {
        self.room(member.room_id, RoomMsg::MemberAdded(member));
    }

    pub fn remove_member(&self, room: i64, user: i64, reason: &'static str) {
        self.room(room, RoomMsg::MemberRemoved { user, reason });
    }

    /// An event for every online member (edits, deletions).
    pub fn broadcast(&self, room: i64, frame: Frame) {
        self.room(room, RoomMsg::Broadcast(frame));
    }

    /// One of a direct room's members blocked the other, or lifted it.
    pub fn set_blocked(&self, room: i64, blocked: bool) {
        self.room(room, RoomMsg::SetBlocked(blocked));
    }
}
