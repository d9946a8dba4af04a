//! One error shape for the whole API.
//!
//! Every error leaves the server as `{"code": "...", "message": "...",
//! "details"?: {...}}` (REST) or as a WebSocket `error` frame. The `code` is
//! a stable snake_case string from the table in [`Code`], declared once in
//! `error_codes!` and documented for clients in docs/ERRORS.md; clients
//! branch on it, never on the message.
//!
//! Each service area speaks its own error (`OrderError`, `PaymentError`,
//! ..., declared with `area_error!`): a `thiserror` enum whose variants
//! carry a code through the [`ErrorCode`] trait. Nothing here knows HTTP
//! beyond the status each code maps to: the response type (`ApiError`, with
//! `From<E: ErrorCode>`) lives in `crate::http`.

use std::fmt;

use actix_web::http::StatusCode;
use serde_json::Value;

use crate::bus::BusError;
use crate::store::StoreError;

/// Declares the code table: one entry per code gives its variant, wire
/// string, HTTP status, where it is used, and its meaning (the doc comment).
/// From that single list come [`Code`], [`Code::ALL`], [`Code::as_str`],
/// [`Code::status`] and [`Code::surface`], so they cannot drift apart.
///
/// Entry syntax: `/// meaning` then `Variant = "wire", STATUS_CONST, Surface;`
/// where `STATUS_CONST` names a [`StatusCode`] associated constant.
macro_rules! error_codes {
    ($(
        $(#[doc = $doc:literal])+
        $variant:ident = $wire:literal, $status:ident, $surface:ident;
    )+) => {
        /// The code table: each code has one HTTP status and never changes
        /// meaning. Clients branch on the wire string; see docs/ERRORS.md.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $(
                $(#[doc = $doc])+
                #[doc = ""]
                #[doc = concat!(
                    "Wire `", $wire, "`, HTTP `", stringify!($status),
                    "`, used by: ", stringify!($surface), "."
                )]
                $variant,
            )+
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            /// The stable snake_case string clients see in `code`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $wire,)+
                }
            }

            /// The HTTP status of a REST response carrying this code. Codes
            /// only sent in WebSocket `error` frames still have one, so the
            /// table stays total.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::$status,)+
                }
            }

            /// Where the code can reach a client.
            pub const fn surface(self) -> Surface {
                match self {
                    $(Code::$variant => Surface::$surface,)+
                }
            }
        }
    };
}

/// Where a code can reach a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Only in REST error responses.
    Rest,
    /// Only in WebSocket `error` frames.
    WebSocket,
    /// In both.
    Both,
}

impl Surface {
    /// How docs/ERRORS.md spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Surface::Rest => "REST",
            Surface::WebSocket => "WebSocket",
            Surface::Both => "both",
        }
    }
}

error_codes! {
    /// The body (or a WebSocket frame) is not JSON (syntax error, truncated, empty).
    BadJson = "bad_json", BAD_REQUEST, Both;
    /// The JSON does not fit the request type (wrong type, missing or unknown field).
    InvalidBody = "invalid_body", UNPROCESSABLE_ENTITY, Rest;
    /// Query string or path parameters do not parse.
    InvalidParameter = "invalid_parameter", BAD_REQUEST, Rest;
    /// Fields parsed but break a rule; `details` maps field -> reason.
    ValidationFailed = "validation_failed", UNPROCESSABLE_ENTITY, Both;
    /// The body is larger than the route accepts.
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE, Rest;
    /// The request URI (path and query) is longer than `max_uri_bytes`.
    UriTooLong = "uri_too_long", URI_TOO_LONG, Rest;
    /// The `Content-Type` is not one the route accepts.
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, Rest;
    /// No valid session (missing, unknown or expired token).
    Unauthenticated = "unauthenticated", UNAUTHORIZED, Rest;
    /// Wrong email or password at login.
    InvalidCredentials = "invalid_credentials", UNAUTHORIZED, Rest;
    /// Signed in, but not allowed to do this.
    Forbidden = "forbidden", FORBIDDEN, Rest;
    /// A state change authenticated by the session cookie came from another site's page (`Sec-Fetch-Site`/`Origin` say so); nothing was done. Use the app's own pages, or a bearer token.
    CrossOrigin = "cross_origin", FORBIDDEN, Rest;
    /// The account's email address is not verified yet; posting listings, ordering and paying wait for it (browsing and chatting do not).
    EmailUnverified = "email_unverified", FORBIDDEN, Rest;
    /// No such resource (or route).
    NotFound = "not_found", NOT_FOUND, Rest;
    /// The route exists but not for this HTTP method.
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED, Rest;
    /// An emailed link's token is unknown, expired or already used (or the account's address changed since it was sent); ask for a new one.
    TokenInvalid = "token_invalid", BAD_REQUEST, Rest;
    /// The email address is already registered.
    EmailTaken = "email_taken", CONFLICT, Rest;
    /// Sign-in with this provider (`kakao`, `google`) is not configured on this server.
    ProviderDisabled = "provider_disabled", NOT_FOUND, Rest;
    /// The sign-in came back with a `state` we cannot accept; `details.reason`: `missing`, `unknown`, `expired` (start again), `replayed` (already used), `browser` (started in another browser).
    OauthStateInvalid = "oauth_state_invalid", BAD_REQUEST, Rest;
    /// The user declined consent at the provider (or the provider refused the request; `details.error` is its error code).
    OauthDenied = "oauth_denied", FORBIDDEN, Rest;
    /// The provider refused the authorization code (already used, expired, or the PKCE verifier does not match); start again.
    OauthCodeInvalid = "oauth_code_invalid", BAD_REQUEST, Rest;
    /// The provider's ID token failed verification; `details.reason`: `malformed`, `key`, `signature`, `issuer`, `audience`, `expired`, `nonce`.
    OauthTokenInvalid = "oauth_token_invalid", UNAUTHORIZED, Rest;
    /// An account with the provider's email exists and cannot be linked automatically (the provider has not verified the email, or the account has another identity there): sign in to that account and link the provider from the account's settings.
    EmailConflict = "email_conflict", CONFLICT, Rest;
    /// This provider identity already belongs to another account.
    IdentityTaken = "identity_taken", CONFLICT, Rest;
    /// The account already has an identity at this provider; unlink it first.
    AlreadyLinked = "already_linked", CONFLICT, Rest;
    /// Unlinking would leave the account with no way to sign in (no password and no other identity).
    LastSignInMethod = "last_sign_in_method", CONFLICT, Rest;
    /// The caller is not a member of the room.
    NotMember = "not_member", FORBIDDEN, Both;
    /// Only the owner (of the room, or the seller of the listing) may do this.
    NotOwner = "not_owner", FORBIDDEN, Rest;
    /// The room has no free place.
    RoomFull = "room_full", CONFLICT, Rest;
    /// The room's passcode is missing or wrong.
    BadPasscode = "bad_passcode", FORBIDDEN, Rest;
    /// The caller was banned from the room.
    Banned = "banned", FORBIDDEN, Rest;
    /// The request conflicts with the current state of the resource.
    Conflict = "conflict", CONFLICT, Rest;
    /// The upload is not an image we can read.
    BadImage = "bad_image", UNPROCESSABLE_ENTITY, Rest;
    /// One of the two users blocked the other.
    Blocked = "blocked", FORBIDDEN, Both;
    /// A second review of the same deal.
    AlreadyReviewed = "already_reviewed", CONFLICT, Rest;
    /// The amount sent to confirm a payment is not the order total; nothing was charged.
    AmountMismatch = "amount_mismatch", BAD_REQUEST, Rest;
    /// The payment provider declined the payment (`details.provider_code` says why); the order stays unpaid.
    PaymentDeclined = "payment_declined", PAYMENT_REQUIRED, Rest;
    /// A cancel breaks the cancel policy; `details.rule` says which: `window_passed` (buyers cancel within `cancel_window_hours` of payment), `reviewed` (the line has a review), `quantity` (more than is left; `details.left`), `nothing_left`.
    CancelRefused = "cancel_refused", CONFLICT, Rest;
    /// Not enough stock for an option; `details.options` lists the option ids that are short.
    OutOfStock = "out_of_stock", CONFLICT, Rest;
    /// The listing's status does not allow this (e.g. reserving a sold item).
    InvalidState = "invalid_state", CONFLICT, Rest;
    /// A per-user limit would be passed; `details.limit` names it (`cart_lines`, `keyword_alerts`, `unpaid_orders`, `unpaid_units`, `storage`, ...) and `details.max` is the limit (docs/OPERATIONS.md lists them with their settings). Nothing was written.
    LimitReached = "limit_reached", CONFLICT, Rest;
    /// A position outside the regions Jangteo serves (outside Korea, or at sea).
    OutsideServiceArea = "outside_service_area", UNPROCESSABLE_ENTITY, Rest;
    /// A neighbourhood room: creating it needs a verified neighbourhood in its region, joining one whose range takes it in (`details.region`).
    NeighbourhoodRequired = "neighbourhood_required", FORBIDDEN, Rest;
    /// The active neighbourhood's verification has run out (`neighbourhood_verify_days`); verify again where you are.
    NeighbourhoodExpired = "neighbourhood_expired", FORBIDDEN, Rest;
    /// A user has two neighbourhoods already; remove one first.
    NeighbourhoodLimit = "neighbourhood_limit", CONFLICT, Rest;
    /// Too many attempts or messages; slow down (REST sets `Retry-After`).
    RateLimited = "rate_limited", TOO_MANY_REQUESTS, Both;
    /// A backend does not answer; retry shortly.
    Unavailable = "unavailable", SERVICE_UNAVAILABLE, Rest;
    /// Too much expensive work (password hashing, image decoding) is queued; retry shortly (`Retry-After`).
    Busy = "busy", SERVICE_UNAVAILABLE, Rest;
    /// An unexpected server failure; the detail is only in the server log.
    Internal = "internal", INTERNAL_SERVER_ERROR, Both;

    // WebSocket-only codes. Their HTTP status is never sent (they travel in
    // `error` frames); it says what the same failure would be over REST.

    /// WebSocket: the frame is JSON of the wrong shape (missing field, wrong type, negative seq, binary frame).
    InvalidFrame = "invalid_frame", BAD_REQUEST, WebSocket;
    /// WebSocket: the frame's `type` is not a client frame type.
    UnknownType = "unknown_type", BAD_REQUEST, WebSocket;
    /// WebSocket: the frame names a room that does not exist.
    RoomNotFound = "room_not_found", NOT_FOUND, WebSocket;
}

impl Code {
    /// The code used for a bare status produced outside our handlers
    /// (unmatched route, wrong method, ...).
    pub fn for_status(status: StatusCode) -> Code {
        match status {
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
            StatusCode::URI_TOO_LONG => Code::UriTooLong,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType,
            StatusCode::UNAUTHORIZED => Code::Unauthenticated,
            StatusCode::FORBIDDEN => Code::Forbidden,
            StatusCode::TOO_MANY_REQUESTS => Code::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
            s if s.is_server_error() => Code::Internal,
            _ => Code::InvalidParameter,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an error says about itself, whatever area it comes from: a code
/// of the table, a message for people, optional details and when to
/// retry. Every area's error implements it (`area_error!`); the HTTP layer
/// turns any of them into a response (`http::ApiError: From<E: ErrorCode>`)
/// and the WebSocket session into an `error` frame.
pub trait ErrorCode: fmt::Display {
    fn code(&self) -> Code;
    /// The human-readable part (may change between releases).
    fn message(&self) -> String {
        self.to_string()
    }
    fn details(&self) -> Option<Value> {
        None
    }
    fn retry_after_secs(&self) -> Option<u64> {
        None
    }
}

/// A refusal or failure told by its code: the cases every area shares
/// (a field that breaks a rule, something not found, a limit, an
/// unavailable backend) and the long tail of an area's answers. An area's
/// error holds one in its `Refused` variant; what callers branch on gets a
/// variant of its own instead.
#[derive(Debug)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after_secs: Option<u64>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Refusal {}

impl ErrorCode for Refusal {
    fn code(&self) -> Code {
        self.code
    }
    fn message(&self) -> String {
        self.message.clone()
    }
    fn details(&self) -> Option<Value> {
        self.details.clone()
    }
    fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }
}

/// The constructors of the common refusals, for every error that can
/// hold a [`Refusal`]: each area's error and the HTTP layer's. With the
/// trait in scope, `OrderError::not_found("order")` and
/// `ApiError::not_found("order")` read the same.
pub trait Refuse: From<Refusal> + Sized {
    /// Change the refusal this error holds (other variants stay as they are).
    #[must_use]
    fn map_refusal(self, f: impl FnOnce(Refusal) -> Refusal) -> Self;

    /// Attach structured details.
    #[must_use]
    fn with_details(self, details: Value) -> Self {
        self.map_refusal(|r| Refusal {
            details: Some(details),
            ..r
        })
    }

    /// Say it in other words (the code stays).
    #[must_use]
    fn with_message(self, message: impl Into<String>) -> Self {
        self.map_refusal(|r| Refusal {
            message: message.into(),
            ..r
        })
    }

    /// Ask the client to come back after `secs` (`Retry-After`).
    #[must_use]
    fn retry_after(self, secs: u64) -> Self {
        self.map_refusal(|r| Refusal {
            retry_after_secs: Some(secs),
            ..r
        })
    }

    fn new(code: Code, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
        }
        .into()
    }

    /// `Ok` when there are no field errors, else 422 `validation_failed`
    /// with `details` mapping each field to its reason.
    fn check_fields(errors: crate::domain::account::FieldErrors) -> Result<(), Self> {
        if errors.is_empty() {
            return Ok(());
        }
        let fields: Vec<&str> = errors.keys().copied().collect();
        Err(Self::new(
            Code::ValidationFailed,
            format!("invalid fields: {}", fields.join(", ")),
        )
        .with_details(serde_json::json!(errors)))
    }

    /// A page size: `value` or `default`, refused (400 `invalid_parameter`)
    /// outside `1..=max`.
    fn page_limit(value: Option<i64>, default: i64, max: i64) -> Result<i64, Self> {
        let v = value.unwrap_or(default);
        if !(1..=max).contains(&v) {
            return Err(Self::new(
                Code::InvalidParameter,
                format!("limit must be between 1 and {max}"),
            ));
        }
        Ok(v)
    }

    /// 422 `validation_failed` about one field.
    fn field(field: &'static str, reason: impl Into<String>) -> Self {
        let mut errors = crate::domain::account::FieldErrors::new();
        errors.insert(field, reason.into());
        match Self::check_fields(errors) {
            Err(e) => e,
            Ok(()) => Self::new(Code::ValidationFailed, format!("invalid field: {field}")),
        }
    }

    fn unauthenticated() -> Self {
        Self::new(Code::Unauthenticated, "a valid session is required")
    }

    fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }

    fn not_found(what: &str) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }

    /// 503 `busy`: the bounded queue of `what` (e.g. "password hashing")
    /// is full. Retry after a second.
    fn busy(what: &str) -> Self {
        Refusal {
            code: Code::Busy,
            message: format!("the server is busy ({what}); retry shortly"),
            details: None,
            retry_after_secs: Some(1),
        }
        .into()
    }

    fn rate_limited(retry_after_secs: u64) -> Self {
        Refusal {
            code: Code::RateLimited,
            message: format!("too many attempts; retry in {retry_after_secs} s"),
            details: None,
            retry_after_secs: Some(retry_after_secs),
        }
        .into()
    }

    /// An internal failure: logged here with its cause, shown to the client
    /// as a bare `internal` so no detail of the server leaks.
    fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(Code::Internal, "internal server error")
    }
}

impl Refuse for Refusal {
    fn map_refusal(self, f: impl FnOnce(Refusal) -> Refusal) -> Self {
        f(self)
    }
}

// Conversions from the layers below. They live here, not beside those
// errors, so the store and the bus never depend on the services' errors.

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "backend unavailable");
                Refusal::new(
                    Code::Unavailable,
                    "a backend is unavailable; try again shortly",
                )
            }
            e => Refusal::internal(e),
        }
    }
}

impl From<BusError> for Refusal {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Unavailable(why) => {
                tracing::warn!(error = %why, "event bus unavailable");
                Refusal::new(
                    Code::Unavailable,
                    "a backend is unavailable; try again shortly",
                )
            }
            e => Refusal::internal(e),
        }
    }
}

/// Declares a service area's error: a `thiserror` enum with `Refused`
/// (a [`Refusal`]), the area's own variants (each with its code and
/// message) and the errors of the areas it calls (transparent). It
/// implements [`ErrorCode`] and [`Refuse`] and converts store and bus
/// errors, so `?` works on them. Another area's error is boxed: a chain
/// of areas (payments -> orders -> market) stays one pointer wide.
///
/// ```text
/// area_error! {
///     /// What the accounts service answers instead.
///     pub enum AccountError {
///         own {
///             /// The email has an account.
///             EmailTaken = EmailTaken, "this email is already registered";
///         }
///         from {
///             Media(MediaError),
///         }
///     }
/// }
/// ```
macro_rules! area_error {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            own {
                $( $(#[doc = $odoc:literal])* $own:ident = $code:ident, $msg:literal; )*
            }
            from {
                $( $(#[doc = $vdoc:literal])* $variant:ident($inner:ty), )*
            }
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, thiserror::Error)]
        pub enum $name {
            /// A refusal or failure told by its code.
            #[error(transparent)]
            Refused(#[from] $crate::error::Refusal),
            $( $(#[doc = $odoc])* #[error($msg)] $own, )*
            $( $(#[doc = $vdoc])* #[error(transparent)] $variant(Box<$inner>), )*
        }

        $(
            impl From<$inner> for $name {
                fn from(e: $inner) -> Self {
                    Self::$variant(Box::new(e))
                }
            }
        )*

        impl $crate::error::ErrorCode for $name {
            fn code(&self) -> $crate::error::Code {
                match self {
                    Self::Refused(e) => $crate::error::ErrorCode::code(e),
                    $( Self::$own => $crate::error::Code::$code, )*
                    $( Self::$variant(e) => $crate::error::ErrorCode::code(e.as_ref()), )*
                }
            }
            fn message(&self) -> String {
                match self {
                    Self::Refused(e) => $crate::error::ErrorCode::message(e),
                    $( Self::$own => $msg.to_string(), )*
                    $( Self::$variant(e) => $crate::error::ErrorCode::message(e.as_ref()), )*
                }
            }
            fn details(&self) -> Option<serde_json::Value> {
                match self {
                    Self::Refused(e) => $crate::error::ErrorCode::details(e),
                    $( Self::$own => None, )*
                    $( Self::$variant(e) => $crate::error::ErrorCode::details(e.as_ref()), )*
                }
            }
            fn retry_after_secs(&self) -> Option<u64> {
                match self {
                    Self::Refused(e) => $crate::error::ErrorCode::retry_after_secs(e),
                    $( Self::$own => None, )*
                    $( Self::$variant(e) => $crate::error::ErrorCode::retry_after_secs(e.as_ref()), )*
                }
            }
        }

        impl $crate::error::Refuse for $name {
            fn map_refusal(
                self,
                f: impl FnOnce($crate::error::Refusal) -> $crate::error::Refusal,
            ) -> Self {
                match self {
                    Self::Refused(e) => Self::Refused(f(e)),
                    $( Self::$own => Self::$own, )*
                    $( Self::$variant(e) => Self::$variant(e), )*
                }
            }
        }

        impl From<$crate::store::StoreError> for $name {
            fn from(e: $crate::store::StoreError) -> Self {
                Self::Refused(e.into())
            }
        }

        impl From<$crate::bus::BusError> for $name {
            fn from(e: $crate::bus::BusError) -> Self {
                Self::Refused(e.into())
            }
        }
    };
}
pub(crate) use area_error;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::path::{Path, PathBuf};

    const ERRORS_MD: &str = include_str!("../docs/ERRORS.md");
    const PROTOCOL_MD: &str = include_str!("../docs/PROTOCOL.md");

    /// The cells of every table row under `heading` (up to the next `## `)
    /// whose first cell is a backquoted code.
    fn code_rows(doc: &str, heading: &str) -> Vec<Vec<String>> {
        let mut lines = doc.lines().skip_while(|l| l.trim() != heading);
        assert!(lines.next().is_some(), "no `{heading}` section");
        lines
            .take_while(|l| !l.starts_with("## "))
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                l.trim()
                    .trim_matches('|')
                    .split('|')
                    .map(|cell| cell.trim().to_string())
                    .collect()
            })
            .collect()
    }

    fn wire(cell: &str) -> &str {
        cell.trim_matches('`')
    }

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    /// docs/ERRORS.md lists every code exactly once, with its status and
    /// surface, and nothing that is not a code.
    #[test]
    fn errors_md_matches_the_code_table() {
        let rows = code_rows(ERRORS_MD, "## Codes");
        let mut documented = HashMap::new();
        for cells in &rows {
            assert!(cells.len() >= 4, "short row in docs/ERRORS.md: {cells:?}");
            let name = wire(&cells[0]);
            let code = Code::ALL
                .iter()
                .find(|c| c.as_str() == name)
                .unwrap_or_else(|| panic!("docs/ERRORS.md lists `{name}`, which is not a code"));
            assert!(
                documented.insert(name, code).is_none(),
                "docs/ERRORS.md lists `{name}` twice"
            );
            assert_eq!(
                cells[1],
                code.status().as_u16().to_string(),
                "status of `{name}` in docs/ERRORS.md"
            );
            assert_eq!(
                cells[2],
                code.surface().as_str(),
                "where `{name}` is used, in docs/ERRORS.md"
            );
            assert!(
                !cells[3].is_empty(),
                "`{name}` has no meaning in docs/ERRORS.md"
            );
        }
        for code in Code::ALL {
            assert!(
                documented.contains_key(code.as_str()),
                "`{code}` is missing from docs/ERRORS.md"
            );
        }
    }

    /// The WebSocket error table of docs/PROTOCOL.md lists exactly the
    /// codes an `error` frame can carry.
    #[test]
    fn protocol_md_lists_the_websocket_codes() {
        let listed: HashSet<&str> = code_rows(PROTOCOL_MD, "## Errors")
            .iter()
            .map(|cells| wire(&cells[0]))
            .map(|name| {
                Code::ALL
                    .iter()
                    .find(|c| c.as_str() == name)
                    .map(|c| c.as_str())
                    .unwrap_or_else(|| panic!("docs/PROTOCOL.md lists `{name}`, not a code"))
            })
            .collect();
        let websocket: HashSet<&str> = Code::ALL
            .iter()
            .filter(|c| c.surface() != Surface::Rest)
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            listed, websocket,
            "docs/PROTOCOL.md ## Errors vs the code table"
        );
    }

    fn rust_sources(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).expect("read a source directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                rust_sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read a source file");
                // Line comments do not count as a use.
                let code: Vec<&str> = text
                    .lines()
                    .map(|l| l.split("//").next().unwrap_or(l))
                    .collect();
                out.push((path, code.join("\n")));
            }
        }
    }

    /// `needle` occurs in `text` as a whole path (not inside a longer name).
    fn mentions(text: &str, needle: &str) -> bool {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        text.match_indices(needle).any(|(at, _)| {
            let before = text.get(..at).and_then(|t| t.chars().next_back());
            let after = text.get(at + needle.len()..).and_then(|t| t.chars().next());
            let longer_on_left = before.is_some_and(ident);
            let longer_on_right = needle.ends_with(ident) && after.is_some_and(ident);
            !longer_on_left && !longer_on_right
        })
    }

    /// Every code is produced somewhere: named as `Code::Variant` outside
    /// this file, or reached through an entry point defined here that code
    /// outside this file calls.
    #[test]
    fn every_code_is_used_outside_this_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let this_file = root.join("src").join("error.rs");
        let mut sources = Vec::new();
        rust_sources(&root.join("src"), &mut sources);
        let elsewhere: Vec<&str> = sources
            .iter()
            .filter(|(path, _)| *path != this_file)
            .map(|(_, text)| text.as_str())
            .collect();
        assert!(elsewhere.len() > 10, "found too few sources under src/");
        let called = |needle: &str| elsewhere.iter().any(|t| mentions(t, needle));

        // Entry points in this file that yield a code without the caller
        // naming it: (call searched for outside this file, what it yields).
        let mut reached: Vec<(&str, Code)> = vec![
            // Constructors for the common cases (`Refuse`, on any area's
            // error or the HTTP layer's).
            ("::unauthenticated(", Refusal::unauthenticated().code),
            ("::forbidden(", Refusal::forbidden("x").code),
            ("::not_found(", Refusal::not_found("x").code),
            ("::rate_limited(", Refusal::rate_limited(1).code),
            ("::busy(", Refusal::busy("x").code),
            ("::internal(", Refusal::internal("x").code),
            // Conversions of store and bus errors (`?`).
            (
                "StoreError::Unavailable(",
                Refusal::from(StoreError::Unavailable(String::new())).code,
            ),
            (
                "BusError::Unavailable(",
                Refusal::from(BusError::Unavailable(String::new())).code,
            ),
        ];
        // The error envelope middleware gives actix's bare error responses
        // the code of their status: every code `for_status` can return is
        // produced there.
        for status in 400..600 {
            let status = StatusCode::from_u16(status).expect("valid status");
            reached.push(("Code::for_status(", Code::for_status(status)));
        }

        for code in Code::ALL {
            // Named as `Code::Variant`, or as an area's own variant
            // (`EmailTaken = EmailTaken, "..."` in an `area_error!`).
            let named = called(&format!("Code::{code:?}")) || called(&format!("= {code:?}, \""));
            let via = reached
                .iter()
                .any(|(call, yields)| yields == code && called(call));
            assert!(
                named || via,
                "`{code}` (Code::{code:?}) is never produced outside src/error.rs: \
                 use it, or remove it from the table and docs/ERRORS.md"
            );
        }
    }

    #[test]
    fn unavailable_backends_become_unavailable_and_the_rest_internal() {
        let code = |e: Refusal| e.code;
        assert_eq!(
            code(StoreError::Unavailable("redis: refused".into()).into()),
            Code::Unavailable
        );
        assert_eq!(
            code(BusError::Unavailable("kafka: down".into()).into()),
            Code::Unavailable
        );
        assert_eq!(code(StoreError::Other("x".into()).into()), Code::Internal);
        assert_eq!(code(BusError::Other("x".into()).into()), Code::Internal);
    }
}
