//! Account rules: normalisation and validation of sign-up fields, roles and
//! statuses, and the public view of a user.

use std::collections::BTreeMap;

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;
pub const NICKNAME_MIN_CHARS: usize = 2;
pub const NICKNAME_MAX_CHARS: usize = 20;
pub const EMAIL_MAX_CHARS: usize = 254;

/// What everyone sees instead of a withdrawn user's nickname.
pub const WITHDRAWN_NICKNAME: &str = "(탈퇴한 사용자)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Withdrawn,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "active" => Some(Status::Active),
            "withdrawn" => Some(Status::Withdrawn),
            _ => None,
        }
    }
}

/// Field name -> reason, collected so a client sees every problem at once.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// Trim and lowercase an email address. Lowercasing the local part is a
/// deliberate simplification: no mainstream provider treats it as
/// case-sensitive, and treating `A@x.com` and `a@x.com` as two accounts is a
/// support nightmare.
pub fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// Validate an already-normalised email: one `@`, non-empty local part,
/// a dotted domain, no spaces or control characters, at most 254 chars.
pub fn check_email(email: &str, errors: &mut FieldErrors) {
    let reason = if email.is_empty() {
        Some("is required")
    } else if email.chars().count() > EMAIL_MAX_CHARS {
        Some("must be at most 254 characters")
    } else if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("must not contain spaces")
    } else {
        match email.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..") =>
            {
                None
            }
            _ => Some("is not a valid email address"),
        }
    };
    if let Some(r) = reason {
        errors.insert("email", r.to_string());
    }
}

/// Passwords: 8..=128 characters (Unicode scalar values, so Korean
/// passphrases count fairly). No composition rules (NIST SP 800-63B).
pub fn check_password(field: &'static str, password: &str, errors: &mut FieldErrors) {
    let n = password.chars().count();
    if n < PASSWORD_MIN_CHARS {
        errors.insert(
            field,
            format!("must be at least {PASSWORD_MIN_CHARS} characters"),
        );
    } else if n > PASSWORD_MAX_CHARS {
        errors.insert(
            field,
            format!("must be at most {PASSWORD_MAX_CHARS} characters"),
        );
    }
}

/// Nicknames are trimmed; 2..=20 characters, no control characters.
pub fn normalize_nickname(raw: &str) -> String {
    raw.trim().to_string()
}

pub fn check_nickname(nickname: &str, errors: &mut FieldErrors) {
    let n = nickname.chars().count();
    if n < NICKNAME_MIN_CHARS {
        errors.insert(
            "nickname",
            format!("must be at least {NICKNAME_MIN_CHARS} characters"),
        );
    } else if n > NICKNAME_MAX_CHARS {
        errors.insert(
            "nickname",
            format!("must be at most {NICKNAME_MAX_CHARS} characters"),
        );
    } else if nickname.chars().any(char::is_control) {
        errors.insert(
            "nickname",
            "must not contain control characters".to_string(),
        );
    } else if nickname.chars().any(is_invisible) {
        errors.insert(
            "nickname",
            "must not contain invisible or text-direction characters".to_string(),
        );
    }
}

/// Characters that show nothing or reorder what follows: zero-width
/// spaces and joiners, bidirectional overrides and isolates, the soft
/// hyphen, the BOM, and the Hangul fillers people use for blank names. In
/// a nickname they make two names look alike or turn the text around it.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Names that only staff may carry (`jangteo create-admin` gives them):
/// a nickname that, folded to lower case without spaces and punctuation,
/// contains one of these pretends to speak for the service.
const STAFF_WORDS: &[&str] = &[
    "관리자",
    "운영자",
    "운영팀",
    "운영진",
    "고객센터",
    "장터팀",
    "장터운영",
    "장터공식",
];
/// The same for Latin words, at the start or the end of the folded name
/// (so `badminton` stays free).
const STAFF_WORDS_LATIN: &[&str] = &["admin", "jangteo", "moderator", "staff", "official"];
/// Names reserved as they are (folded the same way).
const STAFF_NAMES: &[&str] = &["장터", "시스템", "system", "root", "support", "매니저"];

/// A nickname a member may not take (staff names).
pub fn is_reserved_nickname(nickname: &str) -> bool {
    let folded: String = nickname
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    STAFF_NAMES.contains(&folded.as_str())
        || STAFF_WORDS.iter().any(|w| folded.contains(w))
        || STAFF_WORDS_LATIN
            .iter()
            .any(|w| folded.starts_with(w) || folded.ends_with(w))
}

/// [`check_nickname`], plus the staff names a member may not take.
pub fn check_member_nickname(nickname: &str, errors: &mut FieldErrors) {
    check_nickname(nickname, errors);
    if errors.is_empty() && is_reserved_nickname(nickname) {
        errors.insert("nickname", "is reserved for Jangteo staff".to_string());
    }
}

/// Sessions that just ended (logout, withdrawal, password change). The
/// chat engine subscribes (`Accounts::revocations`) and closes the
/// WebSocket connections opened with them, on every node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Revocation {
    /// One session (logout).
    Session { user: i64, token_hash: String },
    /// Every session of `user` except `keep` (password change: the device
    /// that changed it stays signed in; withdrawal: none stays).
    User { user: i64, keep: Option<String> },
}

impl Revocation {
    /// Does this revocation end the session `token_hash` of `user`?
    pub fn ends(&self, user_id: i64, token: &str) -> bool {
        match self {
            Revocation::Session { user, token_hash } => *user == user_id && token_hash == token,
            Revocation::User { user, keep } => *user == user_id && keep.as_deref() != Some(token),
        }
    }

    pub fn user(&self) -> i64 {
        match self {
            Revocation::Session { user, .. } | Revocation::User { user, .. } => *user,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Any nickname with an invisible or direction-changing character
        /// somewhere is refused, whatever surrounds it; checking never
        /// panics on any input.
        #[test]
        fn invisible_characters_are_refused_anywhere(
            before in "\\PC{0,8}",
            after in "\\PC{0,8}",
            c in prop::sample::select(vec!['\u{200B}', '\u{200D}', '\u{202E}', '\u{2066}', '\u{FEFF}', '\u{3164}', '\u{00AD}']),
        ) {
            let mut e = FieldErrors::new();
            check_member_nickname(&format!("{before}{c}{after}"), &mut e);
            prop_assert!(e.contains_key("nickname"));
        }

        #[test]
        fn checking_any_nickname_never_panics(s in "\\PC{0,40}") {
            let mut e = FieldErrors::new();
            check_member_nickname(&normalize_nickname(&s), &mut e);
        }
    }

    use super::*;

    fn email_ok(s: &str) -> bool {
        let mut e = FieldErrors::new();
        check_email(&normalize_email(s), &mut e);
        e.is_empty()
    }

    #[test]
    fn emails() {
        assert_eq!(normalize_email("  Kim@Example.COM "), "kim@example.com");
        assert!(email_ok("kim@example.com"));
        assert!(email_ok("a.b+c@sub.example.co.kr"));
        for bad in [
            "",
            "kim",
            "kim@",
            "@x.com",
            "kim@x",
            "a@b@c.com",
            "k im@x.com",
            "k@.x.com",
            "k@x.com.",
            "k@x..com",
        ] {
            assert!(!email_ok(bad), "{bad:?} accepted");
        }
        assert!(!email_ok(&format!("{}@x.com", "a".repeat(250))));
    }

    #[test]
    fn passwords_count_characters() {
        let mut e = FieldErrors::new();
        check_password("password", "비밀번호가길다요", &mut e); // 8 chars, 24 bytes
        assert!(e.is_empty());
        check_password("password", "short", &mut e);
        assert!(e.contains_key("password"));
        let mut e = FieldErrors::new();
        check_password("password", &"x".repeat(129), &mut e);
        assert!(e.contains_key("password"));
    }

    #[test]
    fn nicknames() {
        let ok = |s: &str| {
            let mut e = FieldErrors::new();
            check_nickname(&normalize_nickname(s), &mut e);
            e.is_empty()
        };
        assert!(ok("당근"));
        assert!(ok("  trader  "));
        assert!(!ok("a"));
        assert!(!ok(&"가".repeat(21)));
        assert!(!ok("bad\u{0}name"));
        assert!(!ok("abc\u{202E}def"), "a bidi override");
        assert!(!ok("zero\u{200B}width"));
        assert!(!ok("\u{3164}\u{3164}"), "Hangul fillers");
        let member = |s: &str| {
            let mut e = FieldErrors::new();
            check_member_nickname(&normalize_nickname(s), &mut e);
            e.is_empty()
        };
        assert!(member("당근러버"));
        assert!(member("장터에서산다"), "the word alone is not a staff name");
        assert!(member("badminton"));
        for staff in [
            "관리자",
            "장터 관리자",
            "Admin",
            "ADMIN_kim",
            "운영자1",
            "장터",
            "고객 센터",
            "Jangteo-Official",
        ] {
            assert!(!member(staff), "{staff}");
        }
    }

    #[test]
    fn roles_and_statuses_round_trip() {
        for r in [Role::User, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for s in [Status::Active, Status::Withdrawn] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
