//! Accounts over REST: sign-up, login, logout, the caller's profile,
//! public profiles and the admin user list.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{client_ip, Admin, Auth, SESSION_COOKIE};
use crate::domain::account::{Role, Status, WITHDRAWN_NICKNAME};
use crate::error::Refuse;
use crate::http::error::{ApiError, ErrorBody, Unauthenticated};
use crate::service::accounts::ProfileChange;
use crate::store::UserRecord;
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(example = "kim@example.com")]
    pub email: String,
    /// 8..=128 characters.
    #[schema(example = "correct horse battery")]
    pub password: String,
    /// 2..=20 characters, trimmed.
    #[schema(example = "당근러")]
    pub nickname: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// The caller's own account.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub nickname: String,
    pub role: Role,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Whether the address is proven to be the user's (the emailed link,
    /// or a provider that verified it). Until then no other email is sent
    /// to it.
    pub email_verified: bool,
}

impl From<&UserRecord> for Me {
    fn from(u: &UserRecord) -> Me {
        Me {
            id: u.id,
            email: u.email.clone().unwrap_or_default(),
            nickname: u.nickname.clone(),
            role: u.role,
            created_at: u.created_at,
            email_verified: u.email_verified_at.is_some(),
        }
    }
}

/// A sign-up was accepted: log in with the same email and password.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignupAccepted {
    /// The address as it is stored (trimmed, lower-cased).
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The `token` of the emailed link (`/#/verify-email?token=...`).
    pub token: String,
}

/// What anyone may see of a user. A withdrawn user keeps the id (so old
/// chats and reviews still point somewhere) but shows only a placeholder
/// nickname and `withdrawn: true`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicUser {
    pub id: i64,
    pub nickname: String,
    pub withdrawn: bool,
    /// Epoch milliseconds.
    pub joined_at: i64,
}

impl From<&UserRecord> for PublicUser {
    fn from(u: &UserRecord) -> PublicUser {
        let withdrawn = u.status == Status::Withdrawn;
        PublicUser {
            id: u.id,
            nickname: if withdrawn {
                WITHDRAWN_NICKNAME.to_string()
            } else {
                u.nickname.clone()
            },
            withdrawn,
            joined_at: u.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Opaque bearer token; also set as the HttpOnly `jangteo_session` cookie.
    pub token: String,
    /// Epoch milliseconds; every use of the session slides it forward.
    pub expires_at: i64,
    pub user: Me,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    pub nickname: Option<String>,
    /// Required with `new_password`.
    pub current_password: Option<String>,
    /// Changing the password signs out every other session.
    pub new_password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    /// The current password, to confirm. Accounts without a password
    /// (signed up with Kakao or Google) leave it out.
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUser {
    pub id: i64,
    pub email: Option<String>,
    pub nickname: String,
    pub role: Role,
    pub withdrawn: bool,
    pub created_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserPage {
    pub items: Vec<AdminUser>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AdminUserQuery {
    /// Return users with an id greater than this.
    pub after: Option<i64>,
    /// 1..=200, default 50.
    pub limit: Option<i64>,
}

pub fn session_cookie(token: &str, secure: bool, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token.to_string())
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/")
        .max_age(time::Duration::seconds(max_age_secs))
        .finish()
}

fn cleared_cookie(secure: bool) -> Cookie<'static> {
    session_cookie("", secure, 0)
}

/// Create an account.
#[utoipa::path(
    tag = "accounts",
    request_body = SignupRequest,
    responses(
        (status = 202, description = "Accepted: a new account was created and a verification link mailed to the address; or the address has an account already, whose owner is mailed a notice. The answer is the same either way (it does not tell who has an account here); log in next", body = SignupAccepted),
        (status = 422, description = "`validation_failed` or `invalid_body`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many sign-ups from this address, with Retry-After", body = ErrorBody),
        (status = 503, description = "`busy`: too many passwords being hashed; retry shortly", body = ErrorBody),
    )
)]
#[post("/auth/signup")]
pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<SignupRequest>,
) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req, state.config.http.trust_forwarded_for);
    let email = state
        .accounts
        .signup(&body.email, &body.password, &body.nickname, ip)
        .await?;
    Ok(HttpResponse::Accepted().json(SignupAccepted { email }))
}

/// Verify the email address with the token of the emailed link. No
/// session needed (the link may be opened on another device); the token
/// is single-use and expires after `email_verify_hours`.
#[utoipa::path(
    tag = "accounts",
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "The address is verified (the account as it is now)", body = Me),
        (status = 400, description = "`token_invalid`: unknown, used or expired, or the account's address changed since", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
    )
)]
#[post("/auth/verify-email")]
pub async fn verify_email(
    state: web::Data<AppState>,
    body: web::Json<VerifyEmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = state.accounts.verify_email(&body.token).await?;
    Ok(HttpResponse::Ok().json(Me::from(&user)))
}

/// Mail the verification link again (to the account's address).
#[utoipa::path(
    tag = "accounts",
    responses(
        (status = 202, description = "A new link is on its way (earlier links keep working until they expire)"),
        Unauthenticated,
        (status = 409, description = "`conflict`: the address is verified already, or the account has none", body = ErrorBody),
        (status = 429, description = "`rate_limited`: `email_verify_resend_max` per hour, with Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/auth/verify-email/resend")]
pub async fn resend_verification(
    state: web::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    state.accounts.resend_verification(&auth.0).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Log in with email and password.
#[utoipa::path(
    tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Session issued (token and HttpOnly cookie)", body = LoginResponse),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, with Retry-After", body = ErrorBody),
    )
)]
#[post("/auth/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let ip = client_ip(&req, state.config.http.trust_forwarded_for);
    let session = state
        .accounts
        .login(&body.email, &body.password, ip)
        .await?;
    let ttl = i64::try_from(state.config.accounts.session_ttl.as_secs()).unwrap_or(i64::MAX);
    Ok(HttpResponse::Ok()
        .cookie(session_cookie(
            &session.token,
            state.config.http.cookie_secure,
            ttl,
        ))
        .json(LoginResponse {
            user: Me::from(&session.user),
            token: session.token,
            expires_at: session.expires_at,
        }))
}

/// End the current session.
#[utoipa::path(
    tag = "accounts",
    responses(
        (status = 204, description = "Session revoked; cookie cleared"),
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/auth/logout")]
pub async fn logout(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    state.accounts.logout(&auth.0).await?;
    Ok(HttpResponse::NoContent()
        .cookie(cleared_cookie(state.config.http.cookie_secure))
        .finish())
}

/// The caller's account.
#[utoipa::path(
    tag = "accounts",
    responses(
        (status = 200, body = Me),
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/me")]
pub async fn get_me(auth: Auth) -> HttpResponse {
    HttpResponse::Ok().json(Me::from(&auth.0.user))
}

/// Change nickname and/or password.
#[utoipa::path(
    tag = "accounts",
    request_body = UpdateMeRequest,
    responses(
        (status = 200, body = Me),
        Unauthenticated,
        (status = 422, description = "`validation_failed` (e.g. wrong current_password)", body = ErrorBody),
        (status = 429, description = "`rate_limited` after repeated wrong passwords", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[patch("/me")]
pub async fn update_me(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<UpdateMeRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let user = state
        .accounts
        .update_profile(
            &auth.0,
            ProfileChange {
                nickname: body.nickname,
                current_password: body.current_password,
                new_password: body.new_password,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(Me::from(&user)))
}

/// Withdraw (delete) the caller's account. Every session is revoked, the
/// email may sign up again; others then see the user as withdrawn.
#[utoipa::path(
    tag = "accounts",
    request_body = WithdrawRequest,
    responses(
        (status = 204, description = "Account withdrawn"),
        Unauthenticated,
        (status = 422, description = "`validation_failed` (wrong password)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/me")]
pub async fn withdraw_me(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<WithdrawRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .accounts
        .withdraw(&auth.0, body.password.as_deref())
        .await?;
    Ok(HttpResponse::NoContent()
        .cookie(cleared_cookie(state.config.http.cookie_secure))
        .finish())
}

/// All users, in id order (administrators only).
#[utoipa::path(
    tag = "admin",
    params(AdminUserQuery),
    responses(
        (status = 200, body = AdminUserPage),
        Unauthenticated,
        (status = 403, description = "`forbidden` for non-admins", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/admin/users")]
pub async fn admin_users(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<AdminUserQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = ApiError::page_limit(query.limit, 50, 200)?;
    let users = state
        .accounts
        .list_users(query.after.unwrap_or(0), limit + 1)
        .await?;
    let more = users.len() as i64 > limit;
    let items: Vec<AdminUser> = users
        .iter()
        .take(limit as usize)
        .map(|u| AdminUser {
            id: u.id,
            email: u.email.clone(),
            nickname: u.nickname.clone(),
            role: u.role,
            withdrawn: u.status == Status::Withdrawn,
            created_at: u.created_at,
        })
        .collect();
    let next_after = if more {
        items.last().map(|u| u.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(AdminUserPage { items, next_after }))
}
