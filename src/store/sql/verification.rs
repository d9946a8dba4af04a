//! Proof that an address is the user's: single-use tokens mailed to it
//! (only their SHA-256 is stored, with the address they were sent to), and
//! the per-recipient daily count of emails (`mail_daily_max_per_recipient`).

use crate::store::sql::AccountsSql;
use std::sync::atomic::Ordering;

use crate::store::StoreError;

/// What a token is for.
pub const PURPOSE_VERIFY_EMAIL: &str = "verify_email";

/// What [`SqlStore::use_verify_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// The address is now verified (or was already); the user's id.
    Verified(i64),
    /// Unknown, used, expired, or the account's address is no longer the
    /// one the token was sent to: nothing changed.
    Invalid,
}

impl AccountsSql<'_> {
    /// Keep a mailed token (its hash) for `user_id` and `email`.
    pub async fn put_email_token(
        &self,
        token_hash: &str,
        user_id: i64,
        purpose: &str,
        email: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO email_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(purpose)
        .bind(email)
        .bind(now)
        .bind(expires_at)
        .execute(self.writer())
        .await?;
        // Expired tokens of anybody are of no use to keep.
        sqlx::query("DELETE FROM email_tokens WHERE expires_at < ?")
            .bind(now.saturating_sub(86_400_000))
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Spend a verification token: it is marked used by a conditional
    /// update (so two requests with it cannot both succeed), and the
    /// user's address is marked verified if it is still the address the
    /// token went to, all in one transaction.
    pub async fn use_verify_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<TokenUse, StoreError> {
        let mut tx = self.begin_write().await?;
        let spent = sqlx::query(
            "UPDATE email_tokens SET used_at = ? \
             WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(now)
        .bind(token_hash)
        .bind(PURPOSE_VERIFY_EMAIL)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() != 1 {
            return Ok(TokenUse::Invalid);
        }
        let (user_id, email): (i64, String) =
            sqlx::query_as("SELECT user_id, email FROM email_tokens WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_one(&mut *tx)
                .await?;
        let still: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT email_verified_at FROM users WHERE id = ? AND email = ? AND status = 'active'",
        )
        .bind(user_id)
        .bind(&email)
        .fetch_optional(&mut *tx)
        .await?;
        match still {
            None => return Ok(TokenUse::Invalid),
            Some((Some(_),)) => {}
            Some((None,)) => {
                sqlx::query(
                    "UPDATE users SET email_verified_at = ?, updated_at = ? WHERE id = ? AND email_verified_at IS NULL",
                )
                .bind(now)
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(TokenUse::Verified(user_id))
    }

    /// Count one email to `address` on `day` (UTC days since the epoch)
    /// unless `max` were sent already that day; false: over the limit,
    /// nothing counted. The increment is conditional, so parallel mailers
    /// on several nodes cannot pass the limit together.
    pub async fn take_mail_quota(
        &self,
        address: &str,
        day: i64,
        max: u32,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let exists: Option<(i64,)> =
            sqlx::query_as("SELECT sent FROM mail_quota WHERE address = ? AND day = ?")
                .bind(address)
                .bind(day)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            // A parallel first email of the day may insert the same row:
            // the primary key refuses the second, which then counts below.
            let inserted =
                sqlx::query("INSERT INTO mail_quota (address, day, sent) VALUES (?, ?, 0)")
                    .bind(address)
                    .bind(day)
                    .execute(&mut *tx)
                    .await;
            if let Err(e) = inserted {
                if !super::is_unique_violation(&e) {
                    return Err(e.into());
                }
            }
        }
        let taken = sqlx::query(
            "UPDATE mail_quota SET sent = sent + 1 WHERE address = ? AND day = ? AND sent < ?",
        )
        .bind(address)
        .bind(day)
        .bind(i64::from(max))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // Old days go once a day per node, in a statement of their own:
        // inside the quota transaction, InnoDB's scan for them locked every
        // row of the table, and two nodes mailing at once deadlocked on
        // each other's new rows (docs/BENCHMARKS.md, "fifth stop").
        let swept = self.quota_swept_day.load(Ordering::Relaxed);
        if swept < day
            && self
                .quota_swept_day
                .compare_exchange(swept, day, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            if let Err(e) = sqlx::query("DELETE FROM mail_quota WHERE day < ?")
                .bind(day - 2)
                .execute(self.writer())
                .await
            {
                tracing::warn!(error = %e, "old mail quota rows not swept; next day again");
            }
        }
        Ok(taken.rows_affected() == 1)
    }
}
