//! Chat rules: room kinds, limits, the unread rule, edit windows.
//!
//! **Unread rule.** Every message in a room gets the next `seq` (1, 2, 3,
//! ... with no gaps). A member's unread count is exactly
//! `room.last_seq - member.last_read_seq`. Sending a message (or causing a
//! system message: joining, kicking) moves the sender's read pointer to that
//! message, as in every messenger: whoever writes has seen the room. So a
//! member's own messages are never unread, and no count ever depends on
//! timestamps.

use crate::domain::account::FieldErrors;

pub const BODY_MAX_CHARS: usize = 4000;
pub const CLIENT_MSG_ID_MAX_CHARS: usize = 64;
pub const ROOM_NAME_MAX_CHARS: usize = 50;
pub const ROOM_DESCRIPTION_MAX_CHARS: usize = 500;
pub const DEFAULT_CAPACITY: i64 = 1500;
pub const MAX_CAPACITY: i64 = 1500;
pub const PASSCODE_MIN_CHARS: usize = 4;
pub const PASSCODE_MAX_CHARS: usize = 32;
/// A message may be edited this long after it was sent.
pub const EDIT_WINDOW_MS: i64 = 15 * 60 * 1000;
/// History page size limit.
pub const PAGE_MAX: i64 = 200;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    Direct,
    Open,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Direct => "direct",
            RoomKind::Open => "open",
        }
    }

    pub fn parse(s: &str) -> Option<RoomKind> {
        match s {
            "direct" => Some(RoomKind::Direct),
            "open" => Some(RoomKind::Open),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Owner,
    Member,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Owner => "owner",
            MemberRole::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<MemberRole> {
        match s {
            "owner" => Some(MemberRole::Owner),
            "member" => Some(MemberRole::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    System,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<MessageKind> {
        match s {
            "text" => Some(MessageKind::Text),
            "system" => Some(MessageKind::System),
            _ => None,
        }
    }
}

/// The key that makes "the one direct room between a and b" unique.
pub fn direct_key(a: i64, b: i64) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

/// Unread count of a member (see the module docs).
pub fn unread(last_seq: i64, last_read_seq: i64) -> i64 {
    (last_seq - last_read_seq).max(0)
}

pub fn check_body(body: &str) -> Result<(), String> {
    let n = body.chars().count();
    if body.trim().is_empty() {
        Err("body must not be empty".into())
    } else if n > BODY_MAX_CHARS {
        Err(format!("body must be at most {BODY_MAX_CHARS} characters"))
    } else {
        Ok(())
    }
}

pub fn check_client_msg_id(id: &str) -> Result<(), String> {
    let n = id.chars().count();
    if n == 0 || n > CLIENT_MSG_ID_MAX_CHARS {
        Err(format!(
            "client_msg_id must be 1..={CLIENT_MSG_ID_MAX_CHARS} characters"
        ))
    } else if id.chars().any(char::is_control) {
        Err("client_msg_id must not contain control characters".into())
    } else {
        Ok(())
    }
}

/// Validate the fields of a new open room; returns the normalised name.
pub fn check_open_room(
    name: &str,
    description: &str,
    capacity: i64,
    passcode: Option<&str>,
    errors: &mut FieldErrors,
) -> String {
    let name = name.trim().to_string();
    let n = name.chars().count();
    if n == 0 {
        errors.insert("name", "is required".into());
    } else if n > ROOM_NAME_MAX_CHARS {
        errors.insert(
            "name",
            format!("must be at most {ROOM_NAME_MAX_CHARS} characters"),
        );
    }
    if description.chars().count() > ROOM_DESCRIPTION_MAX_CHARS {
        errors.insert(
            "description",
            format!("must be at most {ROOM_DESCRIPTION_MAX_CHARS} characters"),
        );
    }
    if !(2..=MAX_CAPACITY).contains(&capacity) {
        errors.insert("capacity", format!("must be between 2 and {MAX_CAPACITY}"));
    }
    if let Some(p) = passcode {
        let n = p.chars().count();
        if !(PASSCODE_MIN_CHARS..=PASSCODE_MAX_CHARS).contains(&n) {
            errors.insert(
                "passcode",
                format!("must be {PASSCODE_MIN_CHARS}..={PASSCODE_MAX_CHARS} characters"),
            );
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_key_is_symmetric() {
        assert_eq!(direct_key(7, 3), "3:7");
        assert_eq!(direct_key(3, 7), "3:7");
    }

    #[test]
    fn unread_is_exact_and_never_negative() {
        assert_eq!(unread(10, 7), 3);
        assert_eq!(unread(10, 10), 0);
        assert_eq!(unread(5, 9), 0);
    }

    #[test]
    fn bodies_and_ids() {
        assert!(check_body("안녕하세요").is_ok());
        assert!(check_body("   ").is_err());
        assert!(check_body(&"가".repeat(4000)).is_ok());
        assert!(check_body(&"가".repeat(4001)).is_err());
        assert!(check_client_msg_id("c-1").is_ok());
        assert!(check_client_msg_id("").is_err());
        assert!(check_client_msg_id(&"x".repeat(65)).is_err());
    }

    #[test]
    fn open_room_fields() {
        let mut e = FieldErrors::new();
        assert_eq!(
            check_open_room("  중고거래 ", "", 100, Some("1234"), &mut e),
            "중고거래"
        );
        assert!(e.is_empty());
        check_open_room("", &"d".repeat(501), 1, Some("12"), &mut e);
        for f in ["name", "description", "capacity", "passcode"] {
            assert!(e.contains_key(f), "{f}");
        }
    }
}
