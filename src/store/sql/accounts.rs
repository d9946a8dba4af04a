//! Users.

use super::{is_unique_violation, last_insert_id};
use crate::domain::account::{Role, Status};
use crate::store::sql::AccountsSql;
use crate::store::{StoreError, UserRecord};

#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

type UserRow = (
    i64,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
);

const USER_COLUMNS: &str =
    "id, email, password_hash, nickname, role, status, created_at, updated_at, email_verified_at";

fn to_record(row: UserRow) -> Result<UserRecord, StoreError> {
    let (id, email, password_hash, nickname, role, status, created_at, updated_at, verified) = row;
    Ok(UserRecord {
        id,
        email,
        password_hash,
        nickname,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Other(format!("user {id}: bad role {role:?}")))?,
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Other(format!("user {id}: bad status {status:?}")))?,
        created_at,
        updated_at,
        email_verified_at: verified,
    })
}

impl AccountsSql<'_> {
    pub async fn insert_user(
        &self,
        email: &str,
        password_hash: &str,
        nickname: &str,
        role: Role,
        now: i64,
    ) -> Result<i64, InsertUserError> {
        let mut conn = self.writer().acquire().await.map_err(StoreError::from)?;
        // Administrators come from the operator's CLI, who vouches for the
        // address; members verify theirs through the emailed link.
        sqlx::query(
            "INSERT INTO users (email, password_hash, nickname, role, status, created_at, updated_at, email_verified_at) \
             VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
        )
        .bind(email)
        .bind(password_hash)
        .bind(nickname)
        .bind(role.as_str())
        .bind(now)
        .bind(now)
        .bind((role == Role::Admin).then_some(now))
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                InsertUserError::EmailTaken
            } else {
                InsertUserError::Store(e.into())
            }
        })?;
        Ok(last_insert_id(&mut conn, self.dialect()).await?)
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"))
                .bind(id)
                .fetch_optional(self.reader())
                .await?;
        row.map(to_record).transpose()
    }

    /// Active user by (normalised) email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = ? AND status = 'active'"
        ))
        .bind(email)
        .fetch_optional(self.reader())
        .await?;
        row.map(to_record).transpose()
    }

    /// Users in id order after `after_id`, for the admin listing.
    pub async fn list_users(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id > ? ORDER BY id LIMIT ?"
        ))
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(to_record).collect()
    }

    pub async fn update_nickname(
        &self,
        id: i64,
        nickname: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET nickname = ?, updated_at = ? WHERE id = ? AND status = 'active'",
        )
        .bind(nickname)
        .bind(now)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn update_password_hash(
        &self,
        id: i64,
        hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND status = 'active'",
        )
        .bind(hash)
        .bind(now)
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    pub async fn set_role(&self, id: i64, role: Role, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
            .bind(role.as_str())
            .bind(now)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Withdraw an account: keep the row (ids stay valid in chats, reviews,
    /// orders), forget the email and password so the address is free again.
    /// Its provider identities go with it: the same Kakao or Google account
    /// signs up anew afterwards.
    pub async fn withdraw_user(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE users SET status = 'withdrawn', email = NULL, password_hash = NULL, \
             updated_at = ?, withdrawn_at = ? WHERE id = ?",
        )
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM user_identities WHERE user_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
