//! Accounts: sign-up, login with throttling, opaque server-side sessions with
//! a sliding expiry, profile changes and withdrawal.
//!
//! Tokens are 256 random bits, base64url. Only their SHA-256 is stored, so a
//! leaked session table cannot be replayed. A fast hash is right here (unlike
//! passwords): the token has full entropy, nothing to brute-force.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use super::attempts::{self, Limit};
use super::password::PasswordHasher;
use crate::domain::account::Revocation;
use crate::domain::account::{self, FieldErrors, Role, Status};
use crate::domain::now_ms;
use crate::error::{area_error, Code, Refuse};
use crate::store::sql::{InsertUserError, NewJob, SqlStore, TokenUse, PURPOSE_VERIFY_EMAIL};
use crate::store::{RateLimiter, SessionStore, UserRecord};

area_error! {
    /// What the accounts service (sign-up, login, sessions, profiles, verification) answers instead of a result.
    pub enum AccountError {
        own {
            /// The email has an account already.
            EmailTaken = EmailTaken, "this email is already registered";
        }
        from {}
    }
}

/// Failed logins from one address may reach this multiple of the per-email
/// limit (an office or a carrier NAT shares an address).
const IP_LIMIT_FACTOR: u32 = 4;

/// Failed logins of one account from all addresses together beyond this
/// multiple of the per-(account, address) limit take the slow path: each
/// further attempt waits [`SLOW_PATH`] first. A hard lock here would let
/// anyone lock a user out of their own account; a delay only slows a
/// distributed guesser down.
const ACCOUNT_SLOW_FACTOR: u32 = 10;
const SLOW_PATH: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub session_ttl: Duration,
    pub login_max_failures: u32,
    pub login_window: Duration,
    pub signup_max_per_address: u32,
    pub signup_window: Duration,
    /// How long an emailed verification link works.
    pub verify_ttl: Duration,
    /// Verification emails a user may have sent again per hour.
    pub verify_resend_max: u32,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub user: UserRecord,
    pub token_hash: String,
    pub expires_at: i64,
    /// The expiry slid forward on this request.
    pub refreshed: bool,
}

impl AuthContext {
    pub fn user_id(&self) -> i64 {
        self.user.id
    }

    /// The signed-in user, typed for calls that take several ids.
    pub fn uid(&self) -> crate::domain::ids::UserId {
        crate::domain::ids::UserId(self.user.id)
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

/// A freshly issued session.
#[derive(Debug, Clone)]
pub struct IssuedSession {
    pub token: String,
    pub expires_at: i64,
    pub user: UserRecord,
}

#[derive(Debug, Default)]
pub struct ProfileChange {
    pub nickname: Option<String>,
    pub current_password: Option<String>,
    pub new_password: Option<String>,
}

#[derive(Clone)]
pub struct Accounts {
    store: Arc<SqlStore>,
    sessions: Arc<dyn SessionStore>,
    limiter: Arc<dyn RateLimiter>,
    hasher: PasswordHasher,
    settings: AccountSettings,
    revoked: tokio::sync::broadcast::Sender<Revocation>,
}

/// The outbox kind that mails a verification link.
pub const JOB_EMAIL_VERIFY: &str = "email_verify";

/// Mail `user` a verification link, or with `attempt` (someone signed up
/// with the address of this existing account) a notice of the attempt.
fn verify_email_job(user: i64, attempt: bool) -> NewJob {
    let mut nonce = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    NewJob {
        kind: JOB_EMAIL_VERIFY,
        payload: serde_json::json!({ "user": user, "attempt": attempt }),
        dedup_key: format!(
            "{JOB_EMAIL_VERIFY}:{user}:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce)
        ),
        due_at: now_ms(),
    }
}

pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Accounts {
    pub fn new(
        store: Arc<SqlStore>,
        sessions: Arc<dyn SessionStore>,
        limiter: Arc<dyn RateLimiter>,
        hasher: PasswordHasher,
        settings: AccountSettings,
    ) -> Accounts {
        Accounts {
            store,
            sessions,
            limiter,
            hasher,
            settings,
            revoked: tokio::sync::broadcast::channel(1024).0,
        }
    }

    /// Sessions ended from now on (this node's requests only; the chat
    /// engine tells the other nodes).
    pub fn revocations(&self) -> tokio::sync::broadcast::Receiver<Revocation> {
        self.revoked.subscribe()
    }

    fn revoke(&self, r: Revocation) {
        // Nobody listening (no chat engine, e.g. the CLI) is fine.
        let _ = self.revoked.send(r);
    }

    /// Sign up from `client`; the normalised address. Each address may
    /// create `signup_max_per_address` accounts per window; the attempt is
    /// counted before anything else (one atomic increment), so concurrent
    /// requests cannot all slip under the limit, and refused ones cost no
    /// hashing. An address that has an account gets the same answer (its
    /// owner is mailed a notice instead of a link).
    pub async fn signup(
        &self,
        email: &str,
        password: &str,
        nickname: &str,
        client: Option<IpAddr>,
    ) -> Result<String, AccountError> {
        if let Some(ip) = client {
            let w = self
                .limiter
                .hit(
                    &format!("signup:ip:{ip}"),
                    self.settings.signup_window.as_secs(),
                )
                .await?;
            if w.count > self.settings.signup_max_per_address {
                return Err(AccountError::rate_limited(w.resets_in_secs.max(1)));
            }
        }
        match self
            .create_user(email, password, nickname, Role::User)
            .await
        {
            Ok(user) => {
                // The verification link goes out from the outbox (after
                // this commit, retried if the mail server is down).
                self.store
                    .outbox()
                    .enqueue_job(&verify_email_job(user.id, false), now_ms())
                    .await?;
                Ok(user.email.unwrap_or_default())
            }
            Err(AccountError::EmailTaken) => {
                // The same answer as a new account (the password was hashed
                // all the same), so sign-up does not tell who has an
                // account here; the address's owner is told instead.
                let email = account::normalize_email(email);
                if let Some(owner) = self.store.accounts().user_by_email(&email).await? {
                    self.store
                        .outbox()
                        .enqueue_job(&verify_email_job(owner.id, true), now_ms())
                        .await?;
                }
                Ok(email)
            }
            Err(e) => Err(e),
        }
    }

    /// Spend an emailed verification token: the address it was sent to is
    /// now the user's, proven. Unknown, used or expired tokens, or an
    /// account whose address changed since: `token_invalid`.
    pub async fn verify_email(&self, token: &str) -> Result<UserRecord, AccountError> {
        let invalid = || {
            AccountError::new(
                Code::TokenInvalid,
                "this link is not valid any more (used, expired or unknown); ask for a new one",
            )
        };
        if token.is_empty() || token.len() > 128 {
            return Err(invalid());
        }
        match self
            .store
            .accounts()
            .use_verify_token(&hash_token(token), now_ms())
            .await?
        {
            TokenUse::Verified(id) => self
                .store
                .accounts()
                .user_by_id(id)
                .await?
                .ok_or_else(invalid),
            TokenUse::Invalid => Err(invalid()),
        }
    }

    /// Mail the verification link again (at most `email_verify_resend_max`
    /// times an hour).
    pub async fn resend_verification(&self, ctx: &AuthContext) -> Result<(), AccountError> {
        if ctx.user.email_verified_at.is_some() {
            return Err(AccountError::new(
                Code::Conflict,
                "your email address is verified already",
            ));
        }
        if ctx.user.email.is_none() {
            return Err(AccountError::new(
                Code::Conflict,
                "this account has no email address to verify",
            ));
        }
        let w = self
            .limiter
            .hit(&format!("verify-resend:{}", ctx.user.id), 3600)
            .await?;
        if w.count > self.settings.verify_resend_max {
            return Err(AccountError::rate_limited(w.resets_in_secs.max(1)));
        }
        self.store
            .outbox()
            .enqueue_job(&verify_email_job(ctx.user.id, false), now_ms())
            .await?;
        Ok(())
    }

    /// A new verification token for the user's current address, kept
    /// hashed; the raw token goes into the email (the mail job), or to a
    /// test harness that stands in for the mailbox. `None`: the account
    /// has no address, or it is verified already.
    pub async fn issue_verification_token(
        &self,
        user_id: i64,
    ) -> Result<Option<String>, AccountError> {
        let Some(user) = self.store.accounts().user_by_id(user_id).await? else {
            return Ok(None);
        };
        let (Some(email), None, Status::Active) =
            (user.email.as_deref(), user.email_verified_at, user.status)
        else {
            return Ok(None);
        };
        let token = new_token();
        let now = now_ms();
        self.store
            .accounts()
            .put_email_token(
                &hash_token(&token),
                user.id,
                PURPOSE_VERIFY_EMAIL,
                email,
                now,
                now.saturating_add(ms(self.settings.verify_ttl)),
            )
            .await?;
        Ok(Some(token))
    }

    /// End every session of `user` on every node (their sockets close with
    /// 4001).
    pub(crate) async fn end_all_sessions(&self, user: i64) -> Result<(), AccountError> {
        self.sessions.delete_user_sessions(user, None).await?;
        self.revoke(Revocation::User { user, keep: None });
        Ok(())
    }

    /// Create an account with a role; admins come only from the CLI.
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        nickname: &str,
        role: Role,
    ) -> Result<UserRecord, AccountError> {
        let email = account::normalize_email(email);
        let nickname = account::normalize_nickname(nickname);
        let mut errors = FieldErrors::new();
        account::check_email(&email, &mut errors);
        account::check_password("password", password, &mut errors);
        if role == Role::Admin {
            account::check_nickname(&nickname, &mut errors);
        } else {
            account::check_member_nickname(&nickname, &mut errors);
        }
        AccountError::check_fields(errors)?;
        let hash = self.hasher.hash(password.to_string()).await?;
        let now = now_ms();
        let id = self
            .store
            .accounts()
            .insert_user(&email, &hash, &nickname, role, now)
            .await
            .map_err(|e| match e {
                InsertUserError::EmailTaken => AccountError::EmailTaken,
                InsertUserError::Store(e) => e.into(),
            })?;
        self.store
            .accounts()
            .user_by_id(id)
            .await?
            .ok_or_else(|| AccountError::internal(format!("user {id} vanished after insert")))
    }

    /// Check credentials and issue a session. Unknown email and wrong
    /// password give the same answer in the same time.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<IssuedSession, AccountError> {
        let email = account::normalize_email(email);
        let max = self.settings.login_max_failures;
        let window = self.settings.login_window.as_secs();
        let from = client.map_or_else(|| "-".to_string(), |ip| ip.to_string());
        // Counted before the check (see service::attempts): per account and
        // address (a guesser elsewhere cannot lock the owner out), and per
        // address (one address spraying many accounts).
        let mut limits = vec![Limit::new(format!("login:pair:{email}:{from}"), max)];
        if client.is_some() {
            limits.push(Limit::new(
                format!("login:ip:{from}"),
                max.saturating_mul(IP_LIMIT_FACTOR),
            ));
        }
        attempts::claim(&self.limiter, &limits, window).await?;
        let account_key = format!("login:account:{email}");
        let account_failures = self.limiter.peek(&account_key).await?.count;
        if account_failures >= max.saturating_mul(ACCOUNT_SLOW_FACTOR) {
            tokio::time::sleep(SLOW_PATH).await;
        }
        let user = self.store.accounts().user_by_email(&email).await?;
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = self.hasher.verify(password.to_string(), hash).await?;
        let user = match (ok, user) {
            (true, Some(user)) => user,
            _ => {
                self.limiter.hit(&account_key, window).await?;
                return Err(AccountError::new(
                    Code::InvalidCredentials,
                    "email or password is incorrect",
                ));
            }
        };
        self.limiter.reset(&limits[0].key).await?;
        attempts::release(&self.limiter, &limits[1..]).await?;
        self.issue_session(user).await
    }

    /// A new session for `user` (a password login, or a provider sign-in).
    pub(crate) async fn issue_session(
        &self,
        user: UserRecord,
    ) -> Result<IssuedSession, AccountError> {
        let token = new_token();
        let now = now_ms();
        let expires_at = now.saturating_add(ms(self.settings.session_ttl));
        self.sessions
            .create_session(&hash_token(&token), user.id, now, expires_at)
            .await?;
        Ok(IssuedSession {
            token,
            expires_at,
            user,
        })
    }

    /// Resolve a bearer token to its caller, sliding the expiry forward.
    /// The write is throttled: the expiry moves at most once a minute (or a
    /// tenth of the TTL if shorter), not on every request.
    pub async fn authenticate(&self, token: &str) -> Result<Option<AuthContext>, AccountError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        self.authenticate_hash(hash_token(token), true).await
    }

    /// Is the session of a long-lived connection still valid? (Expired,
    /// revoked, or its user no longer active: no.) With `slide`, the
    /// connection was used since the last check and the expiry slides as
    /// for a request; an idle connection does not keep a session alive.
    pub async fn session_alive(&self, token_hash: &str, slide: bool) -> Result<bool, AccountError> {
        Ok(self
            .authenticate_hash(token_hash.to_string(), slide)
            .await?
            .is_some())
    }

    async fn authenticate_hash(
        &self,
        token_hash: String,
        slide: bool,
    ) -> Result<Option<AuthContext>, AccountError> {
        let now = now_ms();
        let Some(session) = self.sessions.find_session(&token_hash, now).await? else {
            return Ok(None);
        };
        let Some(user) = self.store.accounts().user_by_id(session.user_id).await? else {
            return Ok(None);
        };
        if user.status != Status::Active {
            return Ok(None);
        }
        let ttl = ms(self.settings.session_ttl);
        let touch_every = (ttl / 10).min(60_000);
        let mut expires_at = session.expires_at;
        let refreshed = slide && now - session.last_seen_at >= touch_every;
        if refreshed {
            expires_at = now.saturating_add(ttl);
            self.sessions
                .touch_session(&token_hash, now, expires_at)
                .await?;
        }
        Ok(Some(AuthContext {
            user,
            token_hash,
            expires_at,
            refreshed,
        }))
    }

    pub async fn logout(&self, ctx: &AuthContext) -> Result<(), AccountError> {
        self.sessions.delete_session(&ctx.token_hash).await?;
        self.revoke(Revocation::Session {
            user: ctx.user.id,
            token_hash: ctx.token_hash.clone(),
        });
        Ok(())
    }

    /// Check the caller's current password (for sensitive changes),
    /// throttled per user like logins.
    async fn confirm_password(
        &self,
        ctx: &AuthContext,
        field: &'static str,
        password: Option<&str>,
    ) -> Result<(), AccountError> {
        let limit = [Limit::new(
            format!("confirm:user:{}", ctx.user.id),
            self.settings.login_max_failures,
        )];
        let Some(password) = password else {
            return AccountError::check_fields(FieldErrors::from([(
                field,
                "is required".to_string(),
            )]));
        };
        attempts::claim(&self.limiter, &limit, self.settings.login_window.as_secs()).await?;
        let stored = self
            .store
            .accounts()
            .user_by_id(ctx.user.id)
            .await?
            .and_then(|u| u.password_hash);
        if !self.hasher.verify(password.to_string(), stored).await? {
            return AccountError::check_fields(FieldErrors::from([(
                field,
                "is incorrect".to_string(),
            )]));
        }
        self.limiter.reset(&limit[0].key).await?;
        Ok(())
    }

    /// Does the caller's account have a password (read fresh, not from the
    /// session's copy)?
    pub async fn has_password(&self, ctx: &AuthContext) -> Result<bool, AccountError> {
        Ok(self
            .store
            .accounts()
            .user_by_id(ctx.user.id)
            .await?
            .is_some_and(|u| u.password_hash.is_some()))
    }

    /// Change nickname and/or password. A password change needs the current
    /// password and revokes every other session of the user.
    pub async fn update_profile(
        &self,
        ctx: &AuthContext,
        change: ProfileChange,
    ) -> Result<UserRecord, AccountError> {
        let mut errors = FieldErrors::new();
        let nickname = change.nickname.as_deref().map(account::normalize_nickname);
        if let Some(n) = &nickname {
            if ctx.is_admin() {
                account::check_nickname(n, &mut errors);
            } else {
                account::check_member_nickname(n, &mut errors);
            }
        }
        if let Some(p) = &change.new_password {
            account::check_password("new_password", p, &mut errors);
        } else if change.current_password.is_some() {
            errors.insert(
                "new_password",
                "is required with current_password".to_string(),
            );
        }
        if nickname.is_none() && change.new_password.is_none() && errors.is_empty() {
            errors.insert("body", "nothing to change".to_string());
        }
        AccountError::check_fields(errors)?;
        if let Some(new_password) = change.new_password {
            // An account signed up through a provider sets its first
            // password without one to confirm.
            if self.has_password(ctx).await? {
                self.confirm_password(ctx, "current_password", change.current_password.as_deref())
                    .await?;
            }
            let hash = self.hasher.hash(new_password).await?;
            self.store
                .accounts()
                .update_password_hash(ctx.user.id, &hash, now_ms())
                .await?;
            self.sessions
                .delete_user_sessions(ctx.user.id, Some(&ctx.token_hash))
                .await?;
            self.revoke(Revocation::User {
                user: ctx.user.id,
                keep: Some(ctx.token_hash.clone()),
            });
        }
        if let Some(n) = nickname {
            self.store
                .accounts()
                .update_nickname(ctx.user.id, &n, now_ms())
                .await?;
        }
        self.store
            .accounts()
            .user_by_id(ctx.user.id)
            .await?
            .ok_or_else(AccountError::unauthenticated)
    }

    /// Withdraw the caller's account (password confirmation required) and
    /// revoke all of its sessions.
    ///
    /// An account without a password (signed up through Kakao or Google)
    /// has nothing to confirm with; it withdraws with its session alone.
    pub async fn withdraw(
        &self,
        ctx: &AuthContext,
        password: Option<&str>,
    ) -> Result<(), AccountError> {
        if self.has_password(ctx).await? {
            self.confirm_password(ctx, "password", password).await?;
        }
        self.store
            .accounts()
            .withdraw_user(ctx.user.id, now_ms())
            .await?;
        self.sessions
            .delete_user_sessions(ctx.user.id, None)
            .await?;
        self.revoke(Revocation::User {
            user: ctx.user.id,
            keep: None,
        });
        Ok(())
    }

    pub async fn user(&self, id: i64) -> Result<Option<UserRecord>, AccountError> {
        Ok(self.store.accounts().user_by_id(id).await?)
    }

    pub async fn list_users(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<UserRecord>, AccountError> {
        Ok(self.store.accounts().list_users(after_id, limit).await?)
    }

    /// `jangteo create-admin`: a new admin account, or promote an existing
    /// active one when `promote_existing` is set.
    pub async fn create_admin(
        &self,
        email: &str,
        password: &str,
        nickname: &str,
        promote_existing: bool,
    ) -> Result<UserRecord, AccountError> {
        match self
            .create_user(email, password, nickname, Role::Admin)
            .await
        {
            Err(AccountError::EmailTaken) if promote_existing => {
                let email = account::normalize_email(email);
                let user = self
                    .store
                    .accounts()
                    .user_by_email(&email)
                    .await?
                    .ok_or_else(|| AccountError::not_found("user"))?;
                self.store
                    .accounts()
                    .set_role(user.id, Role::Admin, now_ms())
                    .await?;
                self.store
                    .accounts()
                    .user_by_id(user.id)
                    .await?
                    .ok_or_else(|| AccountError::not_found("user"))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_to_hex() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        let h = hash_token(&a);
        assert_eq!(h.len(), 64);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(h, hash_token(&a));
    }
}
