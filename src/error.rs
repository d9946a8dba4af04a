//! One error shape for the whole API.
//!
//! Every error leaves the server as `{"code": "...", "message": "...",
//! "details"?: {...}}`. The `code` is a stable snake_case string from the
//! table in [`Code`]; clients branch on it, never on the message. Area errors
//! (accounts, store, ...) are `thiserror` enums that map onto a code, so a
//! handler simply returns `Result<_, ApiError>` and uses `?`.

use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// The code table: each code has one HTTP status and never changes meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The body is not JSON (syntax error, truncated, empty).
    BadJson,
    /// The JSON does not fit the request type (wrong type, missing or unknown field).
    InvalidBody,
    /// Query string or path parameters do not parse.
    InvalidParameter,
    /// Fields parsed but break a rule; `details` maps field -> reason.
    ValidationFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unauthenticated,
    InvalidCredentials,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    EmailTaken,
    NotMember,
    NotOwner,
    RoomFull,
    BadPasscode,
    Banned,
    Conflict,
    BadImage,
    Blocked,
    /// A second review of the same deal.
    AlreadyReviewed,
    /// The listing's status does not allow this (e.g. reserving a sold item).
    InvalidState,
    RateLimited,
    Unavailable,
    Internal,
}

impl Code {
    pub const ALL: &'static [Code] = &[
        Code::BadJson,
        Code::InvalidBody,
        Code::InvalidParameter,
        Code::ValidationFailed,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::Unauthenticated,
        Code::InvalidCredentials,
        Code::Forbidden,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::EmailTaken,
        Code::NotMember,
        Code::NotOwner,
        Code::RoomFull,
        Code::BadPasscode,
        Code::Banned,
        Code::Conflict,
        Code::BadImage,
        Code::Blocked,
        Code::AlreadyReviewed,
        Code::InvalidState,
        Code::RateLimited,
        Code::Unavailable,
        Code::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadJson => "bad_json",
            Code::InvalidBody => "invalid_body",
            Code::InvalidParameter => "invalid_parameter",
            Code::ValidationFailed => "validation_failed",
            Code::PayloadTooLarge => "payload_too_large",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::Unauthenticated => "unauthenticated",
            Code::InvalidCredentials => "invalid_credentials",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::EmailTaken => "email_taken",
            Code::NotMember => "not_member",
            Code::NotOwner => "not_owner",
            Code::RoomFull => "room_full",
            Code::BadPasscode => "bad_passcode",
            Code::Banned => "banned",
            Code::Conflict => "conflict",
            Code::BadImage => "bad_image",
            Code::Blocked => "blocked",
            Code::AlreadyReviewed => "already_reviewed",
            Code::InvalidState => "invalid_state",
            Code::RateLimited => "rate_limited",
            Code::Unavailable => "unavailable",
            Code::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::BadJson | Code::InvalidParameter => StatusCode::BAD_REQUEST,
            Code::InvalidBody | Code::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::Unauthenticated | Code::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Code::Forbidden
            | Code::NotMember
            | Code::NotOwner
            | Code::BadPasscode
            | Code::Banned
            | Code::Blocked => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::EmailTaken
            | Code::RoomFull
            | Code::Conflict
            | Code::AlreadyReviewed
            | Code::InvalidState => StatusCode::CONFLICT,
            Code::BadImage => StatusCode::UNPROCESSABLE_ENTITY,
            Code::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code used for a bare status produced outside our handlers
    /// (unmatched route, wrong method, ...).
    pub fn for_status(status: StatusCode) -> Code {
        match status {
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Code::PayloadTooLarge,
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

/// The JSON envelope of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable snake_case error code, e.g. `email_taken`.
    #[schema(example = "validation_failed")]
    pub code: &'static str,
    /// Human-readable explanation; may change between releases.
    pub message: String,
    /// Optional structured detail, e.g. `{"password": "must be at least 8 characters"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            retry_after_secs: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `Ok` when there are no field errors, else 422 `validation_failed`
    /// with `details` mapping each field to its reason.
    pub fn check_fields(errors: crate::domain::account::FieldErrors) -> Result<(), ApiError> {
        if errors.is_empty() {
            return Ok(());
        }
        let fields: Vec<&str> = errors.keys().copied().collect();
        Err(ApiError::new(
            Code::ValidationFailed,
            format!("invalid fields: {}", fields.join(", ")),
        )
        .with_details(serde_json::json!(errors)))
    }

    pub fn unauthenticated() -> Self {
        ApiError::new(Code::Unauthenticated, "a valid session is required")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(Code::Forbidden, message)
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(Code::NotFound, format!("{what} not found"))
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        ApiError {
            code: Code::RateLimited,
            message: format!("too many attempts; retry in {retry_after_secs} s"),
            details: None,
            retry_after_secs: Some(retry_after_secs),
        }
    }

    /// An internal failure: logged here with its cause, shown to the client
    /// as a bare `internal` so no detail of the server leaks.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(Code::Internal, "internal server error")
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.as_str(),
            message: self.message.clone(),
            details: self.details.clone(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_secs {
            resp.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        resp.json(self.body())
    }
}

/// Failures of a storage adapter. They carry their cause for the log; the
/// client only ever sees `internal` (or `unavailable` for readiness).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
    /// A backend does not answer (connection refused or dropped, timeout):
    /// the request may succeed later.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "backend unavailable");
                ApiError::new(
                    Code::Unavailable,
                    "a backend is unavailable; try again shortly",
                )
            }
            e => ApiError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

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
}
