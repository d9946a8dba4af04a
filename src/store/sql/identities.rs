//! Provider identities (sign-in with Kakao and Google) and the
//! authorization-code flows in progress.

use super::{is_unique_violation, last_insert_id, retrying};
use crate::domain::account::Role;
use crate::store::sql::AccountsSql;
use crate::store::StoreError;

/// One identity: `(provider, subject)` belongs to `user_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    pub provider: String,
    pub subject: String,
    pub user_id: i64,
    pub email: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
}

type IdentityRow = (String, String, i64, Option<String>, i64, i64);

fn identity(row: IdentityRow) -> IdentityRecord {
    let (provider, subject, user_id, email, created_at, last_used_at) = row;
    IdentityRecord {
        provider,
        subject,
        user_id,
        email,
        created_at,
        last_used_at,
    }
}

const IDENTITY_COLUMNS: &str = "provider, subject, user_id, email, created_at, last_used_at";

/// A flow being started.
#[derive(Debug, Clone)]
pub struct NewFlow<'a> {
    pub state_hash: &'a str,
    pub provider: &'a str,
    pub browser_hash: &'a str,
    pub code_verifier: &'a str,
    pub nonce: &'a str,
    pub link_user_id: Option<i64>,
    pub return_to: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// A flow as stored.
#[derive(Debug, Clone)]
pub struct FlowRecord {
    pub provider: String,
    pub browser_hash: String,
    pub code_verifier: String,
    pub nonce: String,
    pub link_user_id: Option<i64>,
    pub return_to: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// An identity to create or link.
#[derive(Debug, Clone, Copy)]
pub struct NewIdentity<'a> {
    pub provider: &'a str,
    pub subject: &'a str,
    /// The email the provider gave (verified or not), kept for display.
    pub email: Option<&'a str>,
    pub now: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateWithIdentityError {
    /// Another account has the email meanwhile.
    #[error("email already registered")]
    EmailTaken,
    /// The identity was created meanwhile (a concurrent first sign-in).
    #[error("identity exists")]
    IdentityTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    /// Linked by a provider-verified email to an account whose address we
    /// had not verified: its password was removed and the address now
    /// counts as verified.
    Claimed,
    /// The identity was this user's already.
    AlreadyThis,
    /// The identity belongs to another user.
    TakenByOther,
    /// The user has another identity at this provider.
    ProviderLinked,
    /// The user is not active (withdrawn meanwhile).
    NoUser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkOutcome {
    Unlinked,
    NotLinked,
    /// No password and no other identity: the account would be locked out.
    LastMethod,
}

/// Insert one identity row for `user_id` (a unique violation is the
/// caller's to interpret).
async fn insert_identity(
    conn: &mut sqlx::AnyConnection,
    user_id: i64,
    identity: NewIdentity<'_>,
) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_identities (provider, subject, user_id, email, created_at, last_used_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(identity.provider)
    .bind(identity.subject)
    .bind(user_id)
    .bind(identity.email)
    .bind(identity.now)
    .bind(identity.now)
    .execute(conn)
    .await
}

impl AccountsSql<'_> {
    pub async fn insert_oauth_flow(&self, flow: &NewFlow<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_flows (state_hash, provider, browser_hash, code_verifier, nonce, \
             link_user_id, return_to, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(flow.state_hash)
        .bind(flow.provider)
        .bind(flow.browser_hash)
        .bind(flow.code_verifier)
        .bind(flow.nonce)
        .bind(flow.link_user_id)
        .bind(flow.return_to)
        .bind(flow.now)
        .bind(flow.expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Forget flows that ended before `before` (used or not).
    pub async fn delete_oauth_flows_before(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM oauth_flows WHERE expires_at < ?")
            .bind(before)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    /// The flow of a state hash. Read from the writer: the callback may
    /// follow the start within milliseconds, on another node.
    pub async fn oauth_flow(&self, state_hash: &str) -> Result<Option<FlowRecord>, StoreError> {
        type Row = (
            String,
            String,
            String,
            String,
            Option<i64>,
            String,
            i64,
            Option<i64>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT provider, browser_hash, code_verifier, nonce, link_user_id, return_to, \
             expires_at, used_at FROM oauth_flows WHERE state_hash = ?",
        )
        .bind(state_hash)
        .fetch_optional(self.writer())
        .await?;
        Ok(row.map(
            |(
                provider,
                browser_hash,
                code_verifier,
                nonce,
                link_user_id,
                return_to,
                expires_at,
                used_at,
            )| {
                FlowRecord {
                    provider,
                    browser_hash,
                    code_verifier,
                    nonce,
                    link_user_id,
                    return_to,
                    expires_at,
                    used_at,
                }
            },
        ))
    }

    /// Take a flow for its one callback: true for exactly one caller, and
    /// only before it expires.
    pub async fn use_oauth_flow(&self, state_hash: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE oauth_flows SET used_at = ? \
             WHERE state_hash = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(now)
        .bind(state_hash)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The identity `(provider, subject)`. From the writer: a concurrent
    /// first sign-in on another node may just have created it.
    pub async fn identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        let row: Option<IdentityRow> = sqlx::query_as(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM user_identities WHERE provider = ? AND subject = ?"
        ))
        .bind(provider)
        .bind(subject)
        .fetch_optional(self.writer())
        .await?;
        Ok(row.map(identity))
    }

    pub async fn identities_of(&self, user_id: i64) -> Result<Vec<IdentityRecord>, StoreError> {
        let rows: Vec<IdentityRow> = sqlx::query_as(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM user_identities WHERE user_id = ? ORDER BY provider"
        ))
        .bind(user_id)
        .fetch_all(self.writer())
        .await?;
        Ok(rows.into_iter().map(identity).collect())
    }

    /// A sign-in through an identity: remember when, and the email the
    /// provider gave this time.
    pub async fn touch_identity(
        &self,
        provider: &str,
        subject: &str,
        email: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE user_identities SET last_used_at = ?, email = ? WHERE provider = ? AND subject = ?",
        )
        .bind(now)
        .bind(email)
        .bind(provider)
        .bind(subject)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Is this nickname used by an active account?
    pub async fn nickname_in_use(&self, nickname: &str) -> Result<bool, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM users WHERE nickname = ? AND status = 'active' LIMIT 1")
                .bind(nickname)
                .fetch_optional(self.reader())
                .await?;
        Ok(row.is_some())
    }

    /// A new account without a password, signed in through `identity`, in
    /// one transaction (an account never exists without its way in).
    pub async fn create_user_with_identity(
        &self,
        email: Option<&str>,
        nickname: &str,
        identity: NewIdentity<'_>,
    ) -> Result<i64, CreateWithIdentityError> {
        let mut tx = self.begin_write().await.map_err(StoreError::from)?;
        // Only a provider-verified email is stored here, so it is verified.
        sqlx::query(
            "INSERT INTO users (email, password_hash, nickname, role, status, created_at, updated_at, email_verified_at) \
             VALUES (?, NULL, ?, ?, 'active', ?, ?, ?)",
        )
        .bind(email)
        .bind(nickname)
        .bind(Role::User.as_str())
        .bind(identity.now)
        .bind(identity.now)
        .bind(email.map(|_| identity.now))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                CreateWithIdentityError::EmailTaken
            } else {
                CreateWithIdentityError::Store(e.into())
            }
        })?;
        let user_id = last_insert_id(&mut tx, self.dialect()).await?;
        insert_identity(&mut tx, user_id, identity)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    CreateWithIdentityError::IdentityTaken
                } else {
                    CreateWithIdentityError::Store(e.into())
                }
            })?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(user_id)
    }

    /// Link an identity to an active user. The user's row is locked first,
    /// so a link and an unlink (or two links) of one user run one after
    /// the other.
    ///
    /// With `claim`, the link is made because a provider verified that the
    /// account's address is this person's: if we never verified it
    /// ourselves, whoever signed up with it proved nothing, so the account's
    /// password goes and the address counts as verified (`Claimed`).
    pub async fn link_identity(
        &self,
        user_id: i64,
        identity: NewIdentity<'_>,
        claim: bool,
    ) -> Result<LinkOutcome, StoreError> {
        retrying("link_identity", || async {
            let mut tx = self.begin_write().await?;
            let user: Option<(i64,)> = sqlx::query_as(&format!(
                "SELECT id FROM users WHERE id = ? AND status = 'active'{}",
                self.for_update()
            ))
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            if user.is_none() {
                return Ok(LinkOutcome::NoUser);
            }
            let owner: Option<(i64,)> = sqlx::query_as(
                "SELECT user_id FROM user_identities WHERE provider = ? AND subject = ?",
            )
            .bind(identity.provider)
            .bind(identity.subject)
            .fetch_optional(&mut *tx)
            .await?;
            match owner {
                Some((owner,)) if owner == user_id => return Ok(LinkOutcome::AlreadyThis),
                Some(_) => return Ok(LinkOutcome::TakenByOther),
                None => {}
            }
            let other: Option<(String,)> = sqlx::query_as(
                "SELECT subject FROM user_identities WHERE user_id = ? AND provider = ?",
            )
            .bind(user_id)
            .bind(identity.provider)
            .fetch_optional(&mut *tx)
            .await?;
            if other.is_some() {
                return Ok(LinkOutcome::ProviderLinked);
            }
            let now = identity.now;
            let done = insert_identity(&mut tx, user_id, identity).await;
            match done {
                Ok(_) => {}
                // Linked to someone else between our read and this insert.
                Err(e) if is_unique_violation(&e) => return Ok(LinkOutcome::TakenByOther),
                Err(e) => return Err(e.into()),
            }
            let mut claimed = false;
            if claim {
                claimed = sqlx::query(
                    "UPDATE users SET password_hash = NULL, email_verified_at = ?, updated_at = ? \
                     WHERE id = ? AND email_verified_at IS NULL",
                )
                .bind(now)
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
            }
            tx.commit().await?;
            Ok(if claimed {
                LinkOutcome::Claimed
            } else {
                LinkOutcome::Linked
            })
        })
        .await
    }

    /// Remove the user's identity at `provider`, unless it is the last way
    /// to sign in.
    pub async fn unlink_identity(
        &self,
        user_id: i64,
        provider: &str,
    ) -> Result<UnlinkOutcome, StoreError> {
        retrying("unlink_identity", || async {
            let mut tx = self.begin_write().await?;
            let user: Option<(Option<String>,)> = sqlx::query_as(&format!(
                "SELECT password_hash FROM users WHERE id = ? AND status = 'active'{}",
                self.for_update()
            ))
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((password_hash,)) = user else {
                return Ok(UnlinkOutcome::NotLinked);
            };
            let providers: Vec<(String,)> =
                sqlx::query_as("SELECT provider FROM user_identities WHERE user_id = ?")
                    .bind(user_id)
                    .fetch_all(&mut *tx)
                    .await?;
            if !providers.iter().any(|(p,)| p == provider) {
                return Ok(UnlinkOutcome::NotLinked);
            }
            if password_hash.is_none() && providers.len() < 2 {
                return Ok(UnlinkOutcome::LastMethod);
            }
            sqlx::query("DELETE FROM user_identities WHERE user_id = ? AND provider = ?")
                .bind(user_id)
                .bind(provider)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(UnlinkOutcome::Unlinked)
        })
        .await
    }
}
