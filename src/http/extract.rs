//! Extractors and extractor configuration: who the caller is, where they
//! connect from, and how malformed input turns into our error envelope.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{mime, web, FromRequest, HttpMessage as _, HttpRequest};
use serde::de::DeserializeOwned;

use crate::error::{Code, Refuse};
use crate::http::error::ApiError;
use crate::service::accounts::AuthContext;
use crate::AppState;

pub const SESSION_COOKIE: &str = "jangteo_session";

/// The bearer token of a request: `Authorization: Bearer` first, then the
/// session cookie. `Err` when an Authorization header is present but is not
/// a bearer token (a client bug worth telling apart from "not logged in").
pub fn bearer_token(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| ApiError::unauthenticated())?;
        return match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(token.trim().to_string()))
            }
            _ => Err(ApiError::new(
                Code::Unauthenticated,
                "Authorization must be `Bearer <token>`",
            )),
        };
    }
    Ok(req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()))
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))
}

/// An authenticated caller; extraction fails with 401 `unauthenticated`.
pub struct Auth(pub AuthContext);

/// Left in the request's extensions when a cookie session's expiry slid:
/// the middleware then re-issues the cookie so the browser's copy lives as
/// long as the server-side session.
#[derive(Clone)]
pub struct RefreshCookie {
    pub token: String,
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Auth, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = bearer_token(req);
        let from_cookie = req.headers().get(header::AUTHORIZATION).is_none();
        let state = state(req);
        let req = req.clone();
        Box::pin(async move {
            let token = token?.ok_or_else(ApiError::unauthenticated)?;
            let ctx = state?
                .accounts
                .authenticate(&token)
                .await?
                .ok_or_else(ApiError::unauthenticated)?;
            if ctx.refreshed && from_cookie {
                req.extensions_mut().insert(RefreshCookie { token });
            }
            Ok(Auth(ctx))
        })
    }
}

/// An optional caller: `None` without credentials; 401 if credentials are
/// given but invalid (so a client learns its session expired).
pub struct MaybeAuth(pub Option<AuthContext>);

impl MaybeAuth {
    pub fn user_id(&self) -> Option<i64> {
        self.0.as_ref().map(AuthContext::user_id)
    }
}

impl FromRequest for MaybeAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<MaybeAuth, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let has_credentials = req.headers().contains_key(header::AUTHORIZATION)
            || req.cookie(SESSION_COOKIE).is_some();
        let auth = Auth::from_request(req, payload);
        Box::pin(async move {
            if !has_credentials {
                return Ok(MaybeAuth(None));
            }
            Ok(MaybeAuth(Some(auth.await?.0)))
        })
    }
}

/// An authenticated admin; 401 without a session, 403 for other roles.
pub struct Admin(pub AuthContext);

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Admin, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let auth = Auth::from_request(req, payload);
        Box::pin(async move {
            let Auth(ctx) = auth.await?;
            if !ctx.is_admin() {
                return Err(ApiError::forbidden("administrators only"));
            }
            Ok(Admin(ctx))
        })
    }
}

/// An authenticated caller whose email address is verified: what selling
/// and paying take (an account anybody can open with any address must not
/// post listings or move money). 401 without a session, 403
/// `email_unverified` before the address is verified.
pub struct Verified(pub AuthContext);

impl FromRequest for Verified {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Verified, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let auth = Auth::from_request(req, payload);
        Box::pin(async move {
            let Auth(ctx) = auth.await?;
            if ctx.user.email_verified_at.is_none() {
                return Err(ApiError::new(
                    Code::EmailUnverified,
                    "verify your email address first (follow the link we mailed you)",
                ));
            }
            Ok(Verified(ctx))
        })
    }
}

/// The client's address: the TCP peer, or the first `X-Forwarded-For` hop
/// when the deployment says a trusted proxy sets it.
pub fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        if let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
        {
            return Some(ip);
        }
    }
    req.peer_addr().map(|a| a.ip())
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match &err {
        JsonPayloadError::ContentType => ApiError::new(
            Code::UnsupportedMediaType,
            "Content-Type must be application/json",
        ),
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            Code::PayloadTooLarge,
            format!("body larger than {limit} bytes"),
        ),
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::new(Code::InvalidBody, e.to_string())
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::new(Code::BadJson, format!("malformed JSON: {e}"))
        }
        other => ApiError::new(Code::BadJson, format!("unreadable body: {other}")),
    }
}

/// An optional JSON body. No body at all (zero bytes) means `T::default()`;
/// a body that is present is held to the same rules as `web::Json`: JSON
/// content type (415), within `max_body_bytes` (413), valid JSON (400
/// `bad_json`) of the right shape (422 `invalid_body`). Unlike
/// `Option<web::Json<T>>`, which turns every one of those failures into
/// `None`, a malformed body never falls back to the defaults.
pub struct OptionalJson<T>(pub T);

impl<T> OptionalJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

fn is_json_mime(req: &HttpRequest) -> bool {
    matches!(
        req.mime_type(),
        Ok(Some(m)) if m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON)
    )
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<OptionalJson<T>, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        // The body as bytes, within the app's `PayloadConfig` limit (the
        // same `max_body_bytes` as JSON bodies) and decompressed like them.
        let bytes = web::Bytes::from_request(req, payload);
        let json_type = is_json_mime(req);
        Box::pin(async move {
            let bytes = bytes.await.map_err(|e| {
                if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(Code::PayloadTooLarge, "body too large")
                } else {
                    ApiError::new(Code::BadJson, format!("unreadable body: {e}"))
                }
            })?;
            if bytes.is_empty() {
                return Ok(OptionalJson(T::default()));
            }
            if !json_type {
                return Err(json_error(JsonPayloadError::ContentType));
            }
            serde_json::from_slice(&bytes)
                .map(OptionalJson)
                .map_err(|e| json_error(JsonPayloadError::Deserialize(e)))
        })
    }
}

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _| json_error(err).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _| {
        ApiError::new(Code::InvalidParameter, format!("bad query string: {err}")).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _| {
        ApiError::new(Code::InvalidParameter, format!("bad path parameter: {err}")).into()
    })
}
