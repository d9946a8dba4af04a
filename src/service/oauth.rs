//! Sign-in with Kakao and Google: the OAuth 2.0 authorization-code flow with
//! PKCE (S256), and for Google OpenID Connect (a `nonce`, and an ID token
//! verified against Google's published keys).
//!
//! A flow is one row in `oauth_flows`, so the callback may land on any node.
//! Its `state` is 256 random bits, single-use, expiring after
//! `oauth_flow_ttl_secs`, and bound to the browser that started it by a
//! second random value in an HttpOnly cookie (`jangteo_oauth`): a callback
//! URL that travels to another browser (login CSRF, a leaked link) is
//! refused. Only hashes of the state and of the binding are stored.
//!
//! Accounts: an identity is `(provider, subject)`, the provider's stable
//! id, never the email. A first sign-in creates an account (no password;
//! the nickname from the profile, made unique). It joins an existing
//! account only (a) when that account's signed-in user asked to link
//! (`POST /api/me/identities/{provider}`), or (b) automatically when the
//! provider says the email is verified, an active account has that email,
//! and that account has no identity at this provider yet. If we never
//! verified that account's address ourselves, whoever signed up with it
//! proved nothing (it may be a squatter's account made with another
//! person's email): the link removes the account's password and ends its
//! sessions, and the address's owner, proven by the provider, holds it
//! (`password_removed`). An unverified
//! email that belongs to an account is a conflict (`email_conflict`), never
//! a link: whoever controls a provider account with an unverified address
//! must not get into the address owner's account.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::accounts::{hash_token, Accounts, AuthContext, IssuedSession};
use crate::domain::account::{self, FieldErrors, NICKNAME_MAX_CHARS, NICKNAME_MIN_CHARS};
use crate::domain::now_ms;
use crate::error::{area_error, Code, Refuse};
use crate::store::sql::{
    CreateWithIdentityError, FlowRecord, IdentityRecord, LinkOutcome, NewFlow, NewIdentity,
    SqlStore, UnlinkOutcome,
};
use crate::store::{RateLimiter, UserRecord};

area_error! {
    /// What sign-in with Kakao and Google answers instead of a result.
    pub enum OAuthError {
        own {}
        from {
            Accounts(super::accounts::AccountError),
        }
    }
}

/// Flow starts one address may make per minute (each writes a row).
const STARTS_PER_MINUTE: u32 = 30;
/// Used and expired flows are kept this long after they expire, so that a
/// replayed callback is told "already used", not "unknown".
const FLOW_KEEP_MS: i64 = 3_600_000;
/// How often a node deletes old flows.
const SWEEP_EVERY_MS: i64 = 60_000;
/// Google's discovery document and keys are fetched again after this.
const GOOGLE_CACHE: Duration = Duration::from_secs(3600);
/// An ID token naming a key we do not have fetches the keys again, at most
/// this often (a rotation is picked up; a flood of bad tokens is not a
/// flood of fetches).
const JWKS_REFETCH: Duration = Duration::from_secs(10);
/// Longest `return_to` accepted.
const RETURN_TO_MAX: usize = 500;
/// Nickname of an account whose provider profile has none usable.
const DEFAULT_NICKNAME: &str = "장터이웃";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Kakao,
    Google,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Kakao, Provider::Google];

    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "kakao" => Some(Provider::Kakao),
            "google" => Some(Provider::Google),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Kakao => "kakao",
            Provider::Google => "google",
        }
    }

    /// The name users know it by.
    pub fn display(self) -> &'static str {
        match self {
            Provider::Kakao => "Kakao",
            Provider::Google => "Google",
        }
    }
}

#[derive(Clone)]
pub struct KakaoSettings {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_url: String,
    pub auth_url: String,
    pub api_url: String,
}

impl std::fmt::Debug for KakaoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KakaoSettings")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<set>"),
            )
            .field("redirect_url", &self.redirect_url)
            .field("auth_url", &self.auth_url)
            .field("api_url", &self.api_url)
            .finish()
    }
}

#[derive(Clone)]
pub struct GoogleSettings {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_url: String,
    pub issuer: String,
}

impl std::fmt::Debug for GoogleSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleSettings")
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("issuer", &self.issuer)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub kakao: Option<KakaoSettings>,
    pub google: Option<GoogleSettings>,
    pub flow_ttl: Duration,
    pub timeout: Duration,
}

/// A started flow: where to send the browser, and the binding to keep in
/// its cookie.
#[derive(Debug)]
pub struct Started {
    pub authorize_url: String,
    pub browser_token: String,
}

/// The query of a callback, as the provider sent it.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
pub struct CallbackParams {
    /// The authorization code (on success).
    pub code: Option<String>,
    /// The `state` this server sent.
    pub state: Option<String>,
    /// The provider's error code (e.g. `access_denied` when the user declined).
    pub error: Option<String>,
    pub error_description: Option<String>,
}

#[derive(Debug)]
pub enum Outcome {
    /// A session was issued. `created`: the account is new; `linked`: the
    /// identity was linked to an existing account by its verified email.
    SignedIn {
        session: IssuedSession,
        created: bool,
        linked: bool,
        /// Linked to an account whose address nobody had verified: its
        /// password was removed (tell the user).
        password_removed: bool,
    },
    /// A linking flow: the identity now belongs to this (signed-in) user.
    Linked { user: UserRecord },
}

#[derive(Debug)]
pub struct Finished {
    pub provider: Provider,
    pub outcome: Outcome,
    pub return_to: String,
}

/// What a provider told us about the person.
#[derive(Debug, Clone)]
struct Profile {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    nickname: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Default)]
struct GoogleCache {
    meta: Option<(Discovery, Instant)>,
    keys: Option<(Arc<JwkSet>, Instant)>,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    id_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct KakaoMe {
    id: i64,
    kakao_account: Option<KakaoAccount>,
    properties: Option<KakaoProperties>,
}

#[derive(Debug, Deserialize)]
struct KakaoAccount {
    email: Option<String>,
    is_email_valid: Option<bool>,
    is_email_verified: Option<bool>,
    profile: Option<KakaoProfile>,
}

#[derive(Debug, Deserialize)]
struct KakaoProfile {
    nickname: Option<String>,
}

#[derive(Debug, Deserialize)]
struct KakaoProperties {
    nickname: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    email: Option<String>,
    /// A boolean, though older tokens carried the string `"true"`.
    email_verified: Option<Value>,
    name: Option<String>,
    nonce: Option<String>,
}

#[derive(Clone)]
pub struct OAuth {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<SqlStore>,
    accounts: Accounts,
    limiter: Arc<dyn RateLimiter>,
    settings: OAuthSettings,
    http: reqwest::Client,
    google: tokio::sync::Mutex<GoogleCache>,
    last_sweep: AtomicI64,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of a verifier (RFC 7636 section 4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A value we handed out ourselves: 43 base64url characters.
fn is_our_token(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Where to send the browser afterwards: a path on this site only (no
/// scheme, no host, no `//` or `\` that a browser would read as a host).
fn check_return_to(raw: Option<&str>) -> Result<String, OAuthError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok("/".to_string());
    };
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.contains('\\')
        && raw.len() <= RETURN_TO_MAX
        // It becomes a Location header: visible ASCII only (a browser
        // percent-encodes anything else in a path already).
        && raw.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(OAuthError::field(
            "return_to",
            "must be a path on this site, starting with a single / (visible ASCII; percent-encode the rest)",
        ));
    }
    Ok(raw.to_string())
}

fn state_invalid(reason: &'static str) -> OAuthError {
    let message = match reason {
        "expired" => "the sign-in took too long; please start again",
        "replayed" => "this sign-in was already used; please start again",
        "browser" => "this sign-in was started in another browser; please start again here",
        _ => "this sign-in cannot be continued; please start again",
    };
    OAuthError::new(Code::OauthStateInvalid, message).with_details(json!({"reason": reason}))
}

fn token_invalid(reason: &'static str) -> OAuthError {
    OAuthError::new(
        Code::OauthTokenInvalid,
        "the provider's sign-in token could not be verified",
    )
    .with_details(json!({"reason": reason}))
}

fn unavailable(provider: Provider, why: impl std::fmt::Display) -> OAuthError {
    tracing::warn!(provider = provider.as_str(), error = %why, "sign-in provider unavailable");
    OAuthError::new(
        Code::Unavailable,
        format!(
            "{} does not answer right now; please try again shortly",
            provider.display()
        ),
    )
    .with_details(json!({"provider": provider.as_str()}))
}

/// A profile nickname made fit for ours: no control characters, at most
/// the longest nickname, at least the shortest (else a default).
fn clean_nickname(raw: Option<&str>) -> String {
    let cleaned: String = raw
        .unwrap_or("")
        .chars()
        .filter(|&c| !c.is_control() && !account::is_invisible(c))
        .collect::<String>()
        .trim()
        .chars()
        .take(NICKNAME_MAX_CHARS)
        .collect::<String>()
        .trim()
        .to_string();
    if cleaned.chars().count() < NICKNAME_MIN_CHARS || account::is_reserved_nickname(&cleaned) {
        DEFAULT_NICKNAME.to_string()
    } else {
        cleaned
    }
}

impl OAuth {
    pub fn new(
        store: Arc<SqlStore>,
        accounts: Accounts,
        limiter: Arc<dyn RateLimiter>,
        settings: OAuthSettings,
    ) -> Result<OAuth, OAuthError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(OAuthError::internal)?;
        Ok(OAuth {
            inner: Arc::new(Inner {
                store,
                accounts,
                limiter,
                settings,
                http,
                google: tokio::sync::Mutex::new(GoogleCache::default()),
                last_sweep: AtomicI64::new(0),
            }),
        })
    }

    /// The providers this server is configured for.
    pub fn enabled(&self) -> Vec<Provider> {
        Provider::ALL
            .into_iter()
            .filter(|p| self.is_enabled(*p))
            .collect()
    }

    fn is_enabled(&self, p: Provider) -> bool {
        match p {
            Provider::Kakao => self.inner.settings.kakao.is_some(),
            Provider::Google => self.inner.settings.google.is_some(),
        }
    }

    /// The provider named in a path, if it is on.
    pub fn provider(&self, name: &str) -> Result<Provider, OAuthError> {
        match Provider::parse(name) {
            Some(p) if self.is_enabled(p) => Ok(p),
            Some(p) => Err(OAuthError::new(
                Code::ProviderDisabled,
                format!("sign-in with {} is not set up on this server", p.display()),
            )
            .with_details(json!({"provider": p.as_str()}))),
            None => Err(OAuthError::new(
                Code::ProviderDisabled,
                "no such sign-in provider (kakao, google)",
            )),
        }
    }

    fn kakao(&self) -> Result<&KakaoSettings, OAuthError> {
        self.inner
            .settings
            .kakao
            .as_ref()
            .ok_or_else(|| OAuthError::internal("kakao is not configured"))
    }

    fn google(&self) -> Result<&GoogleSettings, OAuthError> {
        self.inner
            .settings
            .google
            .as_ref()
            .ok_or_else(|| OAuthError::internal("google is not configured"))
    }

    /// Begin a flow: the provider's authorization URL to send the browser
    /// to. `browser` is the binding cookie the browser already has (reused,
    /// so flows in two tabs do not undo each other); `link_user` makes it a
    /// linking flow for that signed-in user.
    pub async fn start(
        &self,
        p: Provider,
        browser: Option<&str>,
        return_to: Option<&str>,
        link_user: Option<i64>,
        client: Option<IpAddr>,
    ) -> Result<Started, OAuthError> {
        let return_to = check_return_to(return_to)?;
        if let Some(ip) = client {
            let w = self
                .inner
                .limiter
                .hit(&format!("oauth:ip:{ip}"), 60)
                .await?;
            if w.count > STARTS_PER_MINUTE {
                return Err(OAuthError::rate_limited(w.resets_in_secs.max(1)));
            }
        }
        let browser_token = browser
            .filter(|b| is_our_token(b))
            .map_or_else(random_token, str::to_string);
        let state = random_token();
        let verifier = random_token();
        let nonce = random_token();
        let mut url = match p {
            Provider::Kakao => {
                let k = self.kakao()?;
                let mut url = reqwest::Url::parse(&format!("{}/oauth/authorize", k.auth_url))
                    .map_err(OAuthError::internal)?;
                url.query_pairs_mut()
                    .append_pair("client_id", &k.client_id)
                    .append_pair("redirect_uri", &k.redirect_url);
                url
            }
            Provider::Google => {
                let g = self.google()?;
                let meta = self.google_meta().await?;
                let mut url = reqwest::Url::parse(&meta.authorization_endpoint)
                    .map_err(OAuthError::internal)?;
                url.query_pairs_mut()
                    .append_pair("client_id", &g.client_id)
                    .append_pair("redirect_uri", &g.redirect_url)
                    .append_pair("scope", "openid email profile")
                    .append_pair("nonce", &nonce);
                url
            }
        };
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("state", &state)
            .append_pair("code_challenge", &pkce_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        let now = now_ms();
        self.sweep(now).await;
        let ttl = i64::try_from(self.inner.settings.flow_ttl.as_millis()).unwrap_or(600_000);
        self.inner
            .store
            .accounts()
            .insert_oauth_flow(&NewFlow {
                state_hash: &hash_token(&state),
                provider: p.as_str(),
                browser_hash: &hash_token(&browser_token),
                code_verifier: &verifier,
                nonce: &nonce,
                link_user_id: link_user,
                return_to: &return_to,
                now,
                expires_at: now.saturating_add(ttl),
            })
            .await?;
        Ok(Started {
            authorize_url: url.to_string(),
            browser_token,
        })
    }

    /// Delete flows long over, at most once a minute per node.
    async fn sweep(&self, now: i64) {
        let last = self.inner.last_sweep.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY_MS
            || self
                .inner
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = self
            .inner
            .store
            .accounts()
            .delete_oauth_flows_before(now - FLOW_KEEP_MS)
            .await
        {
            tracing::warn!(error = %e, "deleting old sign-in flows failed");
        }
    }

    /// The provider sent the browser back: check the state and its browser,
    /// take the flow (once), exchange the code, learn who it is, and sign
    /// them in (or link the identity, for a linking flow).
    pub async fn callback(
        &self,
        p: Provider,
        params: CallbackParams,
        browser: Option<&str>,
    ) -> Result<Finished, OAuthError> {
        let state = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or_else(|| state_invalid("missing"))?;
        let state_hash = hash_token(state);
        let flow = self
            .inner
            .store
            .accounts()
            .oauth_flow(&state_hash)
            .await?
            .filter(|f| f.provider == p.as_str())
            .ok_or_else(|| state_invalid("unknown"))?;
        let now = now_ms();
        if flow.used_at.is_some() {
            return Err(state_invalid("replayed"));
        }
        if flow.expires_at <= now {
            return Err(state_invalid("expired"));
        }
        if browser.map(hash_token).as_deref() != Some(flow.browser_hash.as_str()) {
            return Err(state_invalid("browser"));
        }
        if !self
            .inner
            .store
            .accounts()
            .use_oauth_flow(&state_hash, now)
            .await?
        {
            return Err(state_invalid("replayed"));
        }
        if let Some(error) = params.error.as_deref() {
            let error: String = error.chars().take(100).collect();
            let message = if error == "access_denied" {
                format!("sign-in with {} was cancelled", p.display())
            } else {
                format!("{} refused the sign-in ({error})", p.display())
            };
            return Err(OAuthError::new(Code::OauthDenied, message)
                .with_details(json!({"provider": p.as_str(), "error": error})));
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or_else(|| OAuthError::field("code", "is required"))?;
        let profile = match p {
            Provider::Kakao => self.kakao_profile(code, &flow).await?,
            Provider::Google => self.google_profile(code, &flow).await?,
        };
        let outcome = self.resolve(p, &profile, &flow).await?;
        Ok(Finished {
            provider: p,
            outcome,
            return_to: flow.return_to,
        })
    }

    /// POST the code to the token endpoint (with the PKCE verifier).
    async fn exchange(
        &self,
        p: Provider,
        token_url: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenAnswer, OAuthError> {
        let answer = self
            .inner
            .http
            .post(token_url)
            .form(form)
            .send()
            .await
            .map_err(|e| unavailable(p, e))?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return serde_json::from_value(body)
                .map_err(|e| unavailable(p, format!("token answer: {e}")));
        }
        let error = body.get("error").and_then(Value::as_str).unwrap_or("");
        if status.is_client_error() && error == "invalid_grant" {
            return Err(OAuthError::new(
                Code::OauthCodeInvalid,
                format!(
                    "{} did not accept this sign-in (already used or expired); please start again",
                    p.display()
                ),
            )
            .with_details(json!({"provider": p.as_str()})));
        }
        if status.is_client_error() {
            // Our client id, secret or redirect URL is wrong: an operator's
            // problem, shown to the user as the provider being unavailable.
            tracing::error!(provider = p.as_str(), %status, %body, "the provider refused our token request");
        }
        Err(unavailable(p, format!("token endpoint answered {status}")))
    }

    async fn kakao_profile(&self, code: &str, flow: &FlowRecord) -> Result<Profile, OAuthError> {
        let p = Provider::Kakao;
        let k = self.kakao()?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", k.client_id.as_str()),
            ("redirect_uri", k.redirect_url.as_str()),
            ("code", code),
            ("code_verifier", flow.code_verifier.as_str()),
        ];
        if let Some(secret) = &k.client_secret {
            form.push(("client_secret", secret.as_str()));
        }
        let token = self
            .exchange(p, &format!("{}/oauth/token", k.auth_url), &form)
            .await?;
        let answer = self
            .inner
            .http
            .get(format!("{}/v2/user/me", k.api_url))
            .bearer_auth(&token.access_token)
            .send()
            .await
            .map_err(|e| unavailable(p, e))?;
        if !answer.status().is_success() {
            return Err(unavailable(
                p,
                format!("/v2/user/me answered {}", answer.status()),
            ));
        }
        let me: KakaoMe = answer
            .json()
            .await
            .map_err(|e| unavailable(p, format!("/v2/user/me: {e}")))?;
        let account = me.kakao_account;
        let email = account.as_ref().and_then(|a| a.email.clone());
        let email_verified = account
            .as_ref()
            .is_some_and(|a| a.is_email_verified == Some(true) && a.is_email_valid == Some(true));
        let nickname = account
            .and_then(|a| a.profile)
            .and_then(|pr| pr.nickname)
            .or_else(|| me.properties.and_then(|pr| pr.nickname));
        Ok(Profile {
            subject: me.id.to_string(),
            email,
            email_verified,
            nickname,
        })
    }

    async fn google_profile(&self, code: &str, flow: &FlowRecord) -> Result<Profile, OAuthError> {
        let p = Provider::Google;
        let g = self.google()?;
        let meta = self.google_meta().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", g.client_id.as_str()),
            ("client_secret", g.client_secret.as_str()),
            ("redirect_uri", g.redirect_url.as_str()),
            ("code", code),
            ("code_verifier", flow.code_verifier.as_str()),
        ];
        let token = self.exchange(p, &meta.token_endpoint, &form).await?;
        let id_token = token.id_token.ok_or_else(|| token_invalid("malformed"))?;
        let claims = self
            .verify_id_token(g, &meta, &id_token, &flow.nonce)
            .await?;
        let email_verified = matches!(&claims.email_verified, Some(Value::Bool(true)))
            || matches!(&claims.email_verified, Some(Value::String(s)) if s == "true");
        Ok(Profile {
            subject: claims.sub,
            email: claims.email,
            email_verified,
            nickname: claims.name,
        })
    }

    /// Check an ID token: RS256 signature by a key in Google's JWKS, issuer,
    /// audience (our client id), expiry (a minute of leeway), and the nonce
    /// of this flow.
    async fn verify_id_token(
        &self,
        g: &GoogleSettings,
        meta: &Discovery,
        token: &str,
        nonce: &str,
    ) -> Result<IdClaims, OAuthError> {
        let header = decode_header(token).map_err(|_| token_invalid("malformed"))?;
        if header.alg != Algorithm::RS256 {
            return Err(token_invalid("signature"));
        }
        let kid = header.kid.ok_or_else(|| token_invalid("key"))?;
        let jwk = self.google_key(&meta.jwks_uri, &kid).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| token_invalid("key"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 60;
        validation.set_audience(&[g.client_id.as_str()]);
        // Google writes its issuer with or without the scheme.
        let bare = meta.issuer.trim_start_matches("https://");
        validation.set_issuer(&[meta.issuer.as_str(), bare]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = decode::<IdClaims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            token_invalid(match e.kind() {
                ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => "expired",
                ErrorKind::InvalidAudience => "audience",
                ErrorKind::InvalidIssuer => "issuer",
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => "signature",
                _ => "malformed",
            })
        })?;
        if data.claims.nonce.as_deref() != Some(nonce) {
            return Err(token_invalid("nonce"));
        }
        Ok(data.claims)
    }

    /// Google's endpoints, from its discovery document (cached).
    async fn google_meta(&self) -> Result<Discovery, OAuthError> {
        let mut cache = self.inner.google.lock().await;
        if let Some((meta, at)) = &cache.meta {
            if at.elapsed() < GOOGLE_CACHE {
                return Ok(meta.clone());
            }
        }
        let g = self.google()?;
        let p = Provider::Google;
        let url = format!("{}/.well-known/openid-configuration", g.issuer);
        let answer = self
            .inner
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| unavailable(p, e))?;
        if !answer.status().is_success() {
            return Err(unavailable(
                p,
                format!("discovery answered {}", answer.status()),
            ));
        }
        let meta: Discovery = answer
            .json()
            .await
            .map_err(|e| unavailable(p, format!("discovery: {e}")))?;
        if meta.issuer.trim_end_matches('/') != g.issuer {
            return Err(unavailable(
                p,
                format!(
                    "discovery names issuer {} instead of {}",
                    meta.issuer, g.issuer
                ),
            ));
        }
        cache.meta = Some((meta.clone(), Instant::now()));
        Ok(meta)
    }

    /// The key `kid` from Google's JWKS (cached; fetched again for a key we
    /// do not know, at most every [`JWKS_REFETCH`]).
    async fn google_key(&self, jwks_uri: &str, kid: &str) -> Result<Jwk, OAuthError> {
        let mut cache = self.inner.google.lock().await;
        if let Some((keys, at)) = &cache.keys {
            if at.elapsed() < GOOGLE_CACHE {
                if let Some(k) = keys.find(kid) {
                    return Ok(k.clone());
                }
                if at.elapsed() < JWKS_REFETCH {
                    return Err(token_invalid("key"));
                }
            }
        }
        let p = Provider::Google;
        let answer = self
            .inner
            .http
            .get(jwks_uri)
            .send()
            .await
            .map_err(|e| unavailable(p, e))?;
        if !answer.status().is_success() {
            return Err(unavailable(p, format!("JWKS answered {}", answer.status())));
        }
        let keys: JwkSet = answer
            .json()
            .await
            .map_err(|e| unavailable(p, format!("JWKS: {e}")))?;
        let found = keys.find(kid).cloned();
        cache.keys = Some((Arc::new(keys), Instant::now()));
        found.ok_or_else(|| token_invalid("key"))
    }

    /// Who is signing in: the identity's account, a linked or new one.
    async fn resolve(
        &self,
        p: Provider,
        profile: &Profile,
        flow: &FlowRecord,
    ) -> Result<Outcome, OAuthError> {
        let store = &self.inner.store;
        let now = now_ms();
        let email = profile
            .email
            .as_deref()
            .map(account::normalize_email)
            .filter(|e| {
                let mut errors = FieldErrors::new();
                account::check_email(e, &mut errors);
                errors.is_empty()
            });
        let identity = NewIdentity {
            provider: p.as_str(),
            subject: &profile.subject,
            email: email.as_deref(),
            now,
        };
        if let Some(user_id) = flow.link_user_id {
            return match store
                .accounts()
                .link_identity(user_id, identity, false)
                .await?
            {
                LinkOutcome::Linked | LinkOutcome::Claimed | LinkOutcome::AlreadyThis => {
                    Ok(Outcome::Linked {
                        user: self.active_user(user_id).await?,
                    })
                }
                LinkOutcome::TakenByOther => Err(OAuthError::new(
                    Code::IdentityTaken,
                    format!("this {} account belongs to another user", p.display()),
                )
                .with_details(json!({"provider": p.as_str()}))),
                LinkOutcome::ProviderLinked => Err(OAuthError::new(
                    Code::AlreadyLinked,
                    format!(
                        "your account already has a {} sign-in; unlink it first",
                        p.display()
                    ),
                )
                .with_details(json!({"provider": p.as_str()}))),
                LinkOutcome::NoUser => Err(OAuthError::unauthenticated()),
            };
        }
        if let Some(known) = store
            .accounts()
            .identity(p.as_str(), &profile.subject)
            .await?
        {
            return self.sign_in_known(known, email.as_deref(), now).await;
        }
        let conflict = || {
            OAuthError::new(
                Code::EmailConflict,
                format!(
                    "an account with this email exists: sign in to it and link {} from your account",
                    p.display()
                ),
            )
            .with_details(json!({"provider": p.as_str()}))
        };
        if let Some(address) = email.as_deref() {
            if let Some(owner) = store.accounts().user_by_email(address).await? {
                if !profile.email_verified {
                    return Err(conflict());
                }
                match store
                    .accounts()
                    .link_identity(owner.id, identity, true)
                    .await?
                {
                    LinkOutcome::Linked | LinkOutcome::AlreadyThis => {
                        let session = self.inner.accounts.issue_session(owner).await?;
                        return Ok(Outcome::SignedIn {
                            session,
                            created: false,
                            linked: true,
                            password_removed: false,
                        });
                    }
                    LinkOutcome::Claimed => {
                        // Whoever set the password never proved the address
                        // (someone may have signed up with another person's
                        // email): their password is gone, and so are their
                        // sessions. The address's owner signs in.
                        self.inner.accounts.end_all_sessions(owner.id).await?;
                        tracing::warn!(
                            user = owner.id,
                            provider = p.as_str(),
                            "a provider-verified sign-in claimed an account with an unverified email; its password was removed"
                        );
                        let user = self.active_user(owner.id).await?;
                        let session = self.inner.accounts.issue_session(user).await?;
                        return Ok(Outcome::SignedIn {
                            session,
                            created: false,
                            linked: true,
                            password_removed: true,
                        });
                    }
                    LinkOutcome::ProviderLinked => return Err(conflict()),
                    LinkOutcome::TakenByOther => {
                        // A concurrent first sign-in of the same person won.
                        if let Some(known) = store
                            .accounts()
                            .identity(p.as_str(), &profile.subject)
                            .await?
                        {
                            return self.sign_in_known(known, email.as_deref(), now).await;
                        }
                        return Err(conflict());
                    }
                    // Withdrawn meanwhile: the address is free again.
                    LinkOutcome::NoUser => {}
                }
            }
        }
        let nickname = self.unique_nickname(profile.nickname.as_deref()).await?;
        let stored_email = email.as_deref().filter(|_| profile.email_verified);
        match store
            .accounts()
            .create_user_with_identity(stored_email, &nickname, identity)
            .await
        {
            Ok(user_id) => {
                let user = self.active_user(user_id).await?;
                let session = self.inner.accounts.issue_session(user).await?;
                Ok(Outcome::SignedIn {
                    session,
                    created: true,
                    linked: false,
                    password_removed: false,
                })
            }
            Err(CreateWithIdentityError::IdentityTaken) => {
                match store
                    .accounts()
                    .identity(p.as_str(), &profile.subject)
                    .await?
                {
                    Some(known) => self.sign_in_known(known, email.as_deref(), now).await,
                    None => Err(OAuthError::internal(
                        "identity vanished after a unique violation",
                    )),
                }
            }
            Err(CreateWithIdentityError::EmailTaken) => Err(conflict()),
            Err(CreateWithIdentityError::Store(e)) => Err(e.into()),
        }
    }

    async fn sign_in_known(
        &self,
        known: IdentityRecord,
        email: Option<&str>,
        now: i64,
    ) -> Result<Outcome, OAuthError> {
        let user = self.active_user(known.user_id).await?;
        self.inner
            .store
            .accounts()
            .touch_identity(&known.provider, &known.subject, email, now)
            .await?;
        let session = self.inner.accounts.issue_session(user).await?;
        Ok(Outcome::SignedIn {
            session,
            created: false,
            linked: false,
            password_removed: false,
        })
    }

    async fn active_user(&self, id: i64) -> Result<UserRecord, OAuthError> {
        match self.inner.store.accounts().user_by_id(id).await? {
            Some(u) if u.status == account::Status::Active => Ok(u),
            _ => Err(OAuthError::unauthenticated()),
        }
    }

    /// The profile's nickname, or with a number added if an active account
    /// uses it already.
    async fn unique_nickname(&self, raw: Option<&str>) -> Result<String, OAuthError> {
        let base = clean_nickname(raw);
        if !self.inner.store.accounts().nickname_in_use(&base).await? {
            return Ok(base);
        }
        let stem: String = base.chars().take(NICKNAME_MAX_CHARS - 5).collect();
        let mut candidate = base;
        for _ in 0..5 {
            let n = rand::rngs::OsRng.next_u32() % 9000 + 1000;
            candidate = format!("{stem}{n}");
            if !self
                .inner
                .store
                .accounts()
                .nickname_in_use(&candidate)
                .await?
            {
                break;
            }
        }
        Ok(candidate)
    }

    /// The caller's identities.
    pub async fn identities(&self, ctx: &AuthContext) -> Result<Vec<IdentityRecord>, OAuthError> {
        Ok(self
            .inner
            .store
            .accounts()
            .identities_of(ctx.user_id())
            .await?)
    }

    /// Remove the caller's identity at `provider` (any known provider, on
    /// or off), unless it is their last way to sign in.
    pub async fn unlink(&self, ctx: &AuthContext, provider: &str) -> Result<(), OAuthError> {
        let p = Provider::parse(provider).ok_or_else(|| OAuthError::not_found("identity"))?;
        match self
            .inner
            .store
            .accounts()
            .unlink_identity(ctx.user_id(), p.as_str())
            .await?
        {
            UnlinkOutcome::Unlinked => Ok(()),
            UnlinkOutcome::NotLinked => Err(OAuthError::not_found("identity")),
            UnlinkOutcome::LastMethod => Err(OAuthError::new(
                Code::LastSignInMethod,
                format!(
                    "{} is your only way to sign in: set a password or link another account first",
                    p.display()
                ),
            )
            .with_details(json!({"provider": p.as_str()}))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn return_to_stays_on_this_site() {
        assert_eq!(check_return_to(None).ok().as_deref(), Some("/"));
        assert_eq!(check_return_to(Some("")).ok().as_deref(), Some("/"));
        assert_eq!(
            check_return_to(Some("/chats?room=3")).ok().as_deref(),
            Some("/chats?room=3")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "/a\nb",
            "/채팅",
            "/a b",
        ] {
            assert!(check_return_to(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nicknames_from_profiles_fit_our_rules() {
        assert_eq!(clean_nickname(Some("  홍길동 ")), "홍길동");
        assert_eq!(clean_nickname(Some("a")), DEFAULT_NICKNAME);
        assert_eq!(clean_nickname(None), DEFAULT_NICKNAME);
        assert_eq!(clean_nickname(Some("x\u{0}y")), "xy");
        assert_eq!(
            clean_nickname(Some(&"가".repeat(40))).chars().count(),
            NICKNAME_MAX_CHARS
        );
    }

    #[test]
    fn only_our_own_tokens_are_reused_as_bindings() {
        assert!(is_our_token(&random_token()));
        assert!(!is_our_token("short"));
        assert!(!is_our_token(&"a".repeat(42).replace('a', "!")));
    }
}
