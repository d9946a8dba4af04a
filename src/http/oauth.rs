//! Sign-in with Kakao and Google over REST: start (a redirect to the
//! provider), the provider's callback, and the signed-in user's linked
//! identities. The flow itself is in `service::oauth`.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::accounts::{session_cookie, Me};
use super::extract::{client_ip, Auth, OptionalJson};
use crate::http::error::{ApiError, ErrorBody, Unauthenticated};
use crate::service::oauth::{CallbackParams, Outcome, Provider};
use crate::AppState;

/// Binds a flow to the browser that started it (HttpOnly, SameSite=Lax so
/// that it comes along on the provider's redirect back).
pub const FLOW_COOKIE: &str = "jangteo_oauth";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// Where to send the browser after signing in: a path on this site
    /// (default `/`).
    pub return_to: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Where to send the browser after linking: a path on this site
    /// (default `/`).
    pub return_to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkStarted {
    /// Send the browser here (a top-level navigation, not a fetch): the
    /// provider asks for consent, then comes back to the callback.
    pub authorize_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    /// The providers this server can sign in with (`kakao`, `google`);
    /// show a button for each.
    pub providers: Vec<Provider>,
}

/// How a callback ended.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallbackOutcome {
    /// Signed in to the account of this identity.
    SignedIn,
    /// A new account was created for this identity.
    SignedUp,
    /// The identity was linked to the existing account with the provider's
    /// verified email, and that account signed in.
    SignedInLinked,
    /// A linking flow: the identity now belongs to the signed-in user; no
    /// new session.
    Linked,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackResult {
    pub outcome: CallbackOutcome,
    pub provider: Provider,
    /// The new session (absent for `linked`): the same token a password
    /// login gives, also set as the `jangteo_session` cookie.
    pub token: Option<String>,
    /// Epoch milliseconds (absent for `linked`).
    pub expires_at: Option<i64>,
    pub user: Me,
    /// Where the browser is being sent (also the `Location`).
    pub return_to: String,
    /// `signed_in_linked` to an account whose email nobody had verified
    /// (someone may have signed up with this person's address): that
    /// account's password was removed and its other sessions ended; the
    /// provider's sign-in is now the way in (a password can be set again).
    pub password_removed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityView {
    pub provider: String,
    /// The email the provider gave at the last sign-in, if any.
    pub email: Option<String>,
    /// Epoch milliseconds.
    pub linked_at: i64,
    /// Epoch milliseconds.
    pub last_used_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityList {
    pub identities: Vec<IdentityView>,
    /// Whether the account can also sign in with email and password.
    pub has_password: bool,
}

fn flow_cookie(state: &AppState, value: &str, max_age_secs: i64) -> Cookie<'static> {
    Cookie::build(FLOW_COOKIE, value.to_string())
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.http.cookie_secure)
        .path("/api/")
        .max_age(time::Duration::seconds(max_age_secs))
        .finish()
}

fn flow_ttl_secs(state: &AppState) -> i64 {
    i64::try_from(state.config.oauth.flow_ttl.as_secs()).unwrap_or(600)
}

/// The providers this server can sign in with.
#[utoipa::path(tag = "accounts", responses((status = 200, body = ProviderList)))]
#[get("/auth/providers")]
pub async fn providers(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(ProviderList {
        providers: state.oauth.enabled(),
    })
}

/// Start signing in with a provider: redirects the browser to the
/// provider's consent page (authorization code flow with PKCE; Google
/// with OpenID Connect). Sets the short-lived `jangteo_oauth` cookie that
/// ties the flow to this browser.
#[utoipa::path(
    tag = "accounts",
    params(("provider" = String, Path, description = "`kakao` or `google`"), StartQuery),
    responses(
        (status = 302, description = "To the provider's authorization page"),
        (status = 404, description = "`provider_disabled`: no settings for this provider", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `return_to` is not a path on this site", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many sign-ins started from this address", body = ErrorBody),
        (status = 503, description = "`unavailable`: the provider does not answer (`details.provider`)", body = ErrorBody),
    )
)]
#[get("/auth/{provider}/start")]
pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, ApiError> {
    let provider = state.oauth.provider(&path)?;
    let browser = req.cookie(FLOW_COOKIE).map(|c| c.value().to_string());
    let started = state
        .oauth
        .start(
            provider,
            browser.as_deref(),
            query.return_to.as_deref(),
            None,
            client_ip(&req, state.config.http.trust_forwarded_for),
        )
        .await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, started.authorize_url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(flow_cookie(
            &state,
            &started.browser_token,
            flow_ttl_secs(&state),
        ))
        .finish())
}

/// The provider sends the browser back here. Checks the state (single use,
/// unexpired, same browser), exchanges the code (with the PKCE verifier),
/// reads the profile (Kakao `/v2/user/me`; Google's verified ID token) and
/// signs in exactly like a password login: `303 See Other` to `return_to`
/// with the `jangteo_session` cookie, and the session in the body for
/// clients that read it. A linking flow links the identity to the user
/// who started it instead.
#[utoipa::path(
    tag = "accounts",
    params(("provider" = String, Path, description = "`kakao` or `google`"), CallbackParams),
    responses(
        (status = 303, description = "Signed in (or linked); `Location` is `return_to`. A browser navigation (`Accept: text/html...`) that fails is also sent on with 303, to the web client's `/#/login?oauth_error=<code>&provider=<provider>`, instead of the error body", body = CallbackResult),
        (status = 400, description = "`oauth_state_invalid` (`details.reason`: missing, unknown, expired, replayed, browser), `oauth_code_invalid` (code reused or wrong PKCE verifier)", body = ErrorBody),
        (status = 401, description = "`oauth_token_invalid` (`details.reason`); `unauthenticated` when the user of a linking flow is gone", body = ErrorBody),
        (status = 403, description = "`oauth_denied`: the user declined consent", body = ErrorBody),
        (status = 404, description = "`provider_disabled`", body = ErrorBody),
        (status = 409, description = "`email_conflict`, `identity_taken`, `already_linked`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the provider does not answer (`details.provider`)", body = ErrorBody),
    )
)]
#[get("/auth/{provider}/callback")]
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<CallbackParams>,
) -> Result<HttpResponse, ApiError> {
    let page = wants_page(&req);
    match finish_callback(&req, &state, &path, query.into_inner()).await {
        // A browser navigating here gets a screen, not a JSON body: back
        // to the web client's login screen, which says what went wrong.
        Err(e) if page => Ok(HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                match crate::service::oauth::Provider::parse(&path) {
                    Some(p) => format!(
                        "/#/login?oauth_error={}&provider={}",
                        e.code.as_str(),
                        p.as_str()
                    ),
                    None => format!("/#/login?oauth_error={}", e.code.as_str()),
                },
            ))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .cookie(flow_cookie(&state, "", 0))
            .finish()),
        other => other,
    }
}

/// A top-level browser navigation (it asks for HTML first); API clients
/// and tests ask for JSON or anything.
fn wants_page(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/html"))
}

async fn finish_callback(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    path: &str,
    query: CallbackParams,
) -> Result<HttpResponse, ApiError> {
    let provider = state.oauth.provider(path)?;
    let browser = req.cookie(FLOW_COOKIE).map(|c| c.value().to_string());
    let finished = state
        .oauth
        .callback(provider, query, browser.as_deref())
        .await?;
    let mut response = HttpResponse::SeeOther();
    response
        .insert_header((header::LOCATION, finished.return_to.clone()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(flow_cookie(state, "", 0));
    let body = match finished.outcome {
        Outcome::SignedIn {
            session,
            created,
            linked,
            password_removed,
        } => {
            let ttl =
                i64::try_from(state.config.accounts.session_ttl.as_secs()).unwrap_or(i64::MAX);
            response.cookie(session_cookie(
                &session.token,
                state.config.http.cookie_secure,
                ttl,
            ));
            CallbackResult {
                outcome: if created {
                    CallbackOutcome::SignedUp
                } else if linked {
                    CallbackOutcome::SignedInLinked
                } else {
                    CallbackOutcome::SignedIn
                },
                provider: finished.provider,
                token: Some(session.token),
                expires_at: Some(session.expires_at),
                user: Me::from(&session.user),
                return_to: finished.return_to,
                password_removed,
            }
        }
        Outcome::Linked { user } => CallbackResult {
            outcome: CallbackOutcome::Linked,
            provider: finished.provider,
            token: None,
            expires_at: None,
            user: Me::from(&user),
            return_to: finished.return_to,
            password_removed: false,
        },
    };
    Ok(response.json(body))
}

/// The caller's linked sign-in identities.
#[utoipa::path(
    tag = "accounts",
    responses(
        (status = 200, body = IdentityList),
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/me/identities")]
pub async fn my_identities(
    state: web::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    let identities = state.oauth.identities(&auth.0).await?;
    let has_password = state.accounts.has_password(&auth.0).await?;
    Ok(HttpResponse::Ok().json(IdentityList {
        identities: identities
            .into_iter()
            .map(|i| IdentityView {
                provider: i.provider,
                email: i.email,
                linked_at: i.created_at,
                last_used_at: i.last_used_at,
            })
            .collect(),
        has_password,
    }))
}

/// Start linking a provider to the caller's account: answers the URL to
/// send the browser to (and sets the `jangteo_oauth` cookie); the
/// provider's callback then links the identity instead of signing in.
#[utoipa::path(
    tag = "accounts",
    params(("provider" = String, Path, description = "`kakao` or `google`")),
    request_body(content = LinkRequest, description = "Optional"),
    responses(
        (status = 200, body = LinkStarted),
        Unauthenticated,
        (status = 404, description = "`provider_disabled`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: `return_to`", body = ErrorBody),
        (status = 503, description = "`unavailable`: the provider does not answer", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/me/identities/{provider}")]
pub async fn link(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
    body: OptionalJson<LinkRequest>,
) -> Result<HttpResponse, ApiError> {
    let provider = state.oauth.provider(&path)?;
    let browser = req.cookie(FLOW_COOKIE).map(|c| c.value().to_string());
    let body = body.into_inner();
    let started = state
        .oauth
        .start(
            provider,
            browser.as_deref(),
            body.return_to.as_deref(),
            Some(auth.0.user_id()),
            client_ip(&req, state.config.http.trust_forwarded_for),
        )
        .await?;
    Ok(HttpResponse::Ok()
        .cookie(flow_cookie(
            &state,
            &started.browser_token,
            flow_ttl_secs(&state),
        ))
        .json(LinkStarted {
            authorize_url: started.authorize_url,
        }))
}

/// Unlink a provider from the caller's account. Refused when it is the
/// only way left to sign in (no password and no other identity).
#[utoipa::path(
    tag = "accounts",
    params(("provider" = String, Path, description = "`kakao` or `google`")),
    responses(
        (status = 204, description = "Unlinked"),
        Unauthenticated,
        (status = 404, description = "`not_found`: no identity at this provider", body = ErrorBody),
        (status = 409, description = "`last_sign_in_method`", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/me/identities/{provider}")]
pub async fn unlink(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.oauth.unlink(&auth.0, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}
