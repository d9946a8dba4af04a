//! The error on its way to an HTTP client: the JSON envelope
//! (`{"code", "message", "details"?}`) and its status and `Retry-After`.
//! Any area's error becomes one by `?` (`From<E: ErrorCode>`); handlers
//! build their own refusals with the [`Refuse`] constructors
//! (`ApiError::not_found("listing")`).

use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{Code, ErrorCode, Refusal, Refuse};

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
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.as_str(),
            message: self.message.clone(),
            details: self.details.clone(),
        }
    }
}

impl<E: ErrorCode> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError {
            code: e.code(),
            message: e.message(),
            details: e.details(),
            retry_after_secs: e.retry_after_secs(),
        }
    }
}

impl Refuse for ApiError {
    fn map_refusal(self, f: impl FnOnce(Refusal) -> Refusal) -> Self {
        f(Refusal {
            code: self.code,
            message: self.message,
            details: self.details,
            retry_after_secs: self.retry_after_secs,
        })
        .into()
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

/// Declares the refusals that many routes document alike, once: each is
/// a response of the OpenAPI document (`#[derive(IntoResponses)]`, its doc
/// line the description, [`ErrorBody`] the body), named in a route's
/// `responses(...)` beside its own tuples:
/// `responses((status = 200, body = ProductView), Forbidden, NotFound)`.
macro_rules! refusal_responses {
    ($( $(#[doc = $doc:literal])* $name:ident = $status:literal; )*) => {
        $(
            $(#[doc = $doc])*
            #[derive(utoipa::IntoResponses)]
            #[response(status = $status)]
            pub struct $name(pub ErrorBody);
        )*
    };
}

refusal_responses! {
    /// `unauthenticated`
    Unauthenticated = 401;
    /// `not_found`
    NotFound = 404;
    /// `validation_failed`
    Invalid = 422;
    /// `forbidden`
    Forbidden = 403;
    /// `forbidden`: not an administrator
    NotAdmin = 403;
    /// `invalid_parameter`
    BadParameter = 400;
    /// `not_owner`
    NotOwner = 403;
    /// `not_member`
    NotMember = 403;
    /// `email_unverified`: the account's email address is not verified yet
    Unverified = 403;
    /// `payload_too_large`
    TooLarge = 413;
    /// `not_found` (also someone else's order)
    NoSuchOrder = 404;
}
