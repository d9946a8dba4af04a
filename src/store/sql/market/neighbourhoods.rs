//! Neighbourhoods: the regions a user verified a position in.

use super::*;
use crate::store::sql::MarketSql;

/// One of a user's neighbourhoods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourhoodRecord {
    pub region_code: String,
    pub verified_at: i64,
    pub verified_until: i64,
    /// `dong`, `near`, `normal` or `far` (`domain::region::Range`).
    pub range: String,
    pub active: bool,
}

/// What verifying a position in a region did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// A new neighbourhood (active if it is the user's only one).
    Added(NeighbourhoodRecord),
    /// The user had it: verified again until the new time.
    Renewed(NeighbourhoodRecord),
    /// The user has `max` others already; nothing written.
    Limit,
}

const COLUMNS: &str = "region_code, verified_at, verified_until, range_level, active";

fn record(row: &sqlx::any::AnyRow) -> Result<NeighbourhoodRecord, StoreError> {
    Ok(NeighbourhoodRecord {
        region_code: row.try_get(0)?,
        verified_at: row.try_get(1)?,
        verified_until: row.try_get(2)?,
        range: row.try_get(3)?,
        active: row.try_get::<i64, _>(4)? != 0,
    })
}

impl MarketSql<'_> {
    /// A user's neighbourhoods, the active one first.
    pub async fn neighbourhoods(
        &self,
        user: UserId,
    ) -> Result<Vec<NeighbourhoodRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM neighbourhoods WHERE user_id = ? \
             ORDER BY active DESC, created_at, region_code"
        ))
        .bind(user.get())
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(record).collect()
    }

    /// Verify the user in `region` until `until`: renew it if they have it,
    /// else add it unless they have `max` already (counted under the user's
    /// row lock, so two at once cannot pass it). The first one is active,
    /// with `range`.
    pub async fn verify_neighbourhood(
        &self,
        user: UserId,
        region: &str,
        range: &str,
        max: i64,
        now: i64,
        until: i64,
    ) -> Result<Verified, StoreError> {
        retrying("verify_neighbourhood", || async {
            let mut tx = self.begin_write().await?;
            self.lock_user(&mut tx, user.get()).await?;
            let renewed = sqlx::query(
                "UPDATE neighbourhoods SET verified_at = ?, verified_until = ? \
                 WHERE user_id = ? AND region_code = ?",
            )
            .bind(now)
            .bind(until)
            .bind(user.get())
            .bind(region)
            .execute(&mut *tx)
            .await?;
            let outcome = if renewed.rows_affected() == 1 {
                Verified::Renewed
            } else {
                let (count,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM neighbourhoods WHERE user_id = ?")
                        .bind(user.get())
                        .fetch_one(&mut *tx)
                        .await?;
                if count >= max {
                    return Ok(Verified::Limit);
                }
                sqlx::query(
                    "INSERT INTO neighbourhoods \
                     (user_id, region_code, verified_at, verified_until, range_level, active, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(user.get())
                .bind(region)
                .bind(now)
                .bind(until)
                .bind(range)
                .bind(i64::from(count == 0))
                .bind(now)
                .execute(&mut *tx)
                .await?;
                Verified::Added
            };
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM neighbourhoods WHERE user_id = ? AND region_code = ?"
            ))
            .bind(user.get())
            .bind(region)
            .fetch_one(&mut *tx)
            .await?;
            let saved = record(&row)?;
            tx.commit().await?;
            Ok(outcome(saved))
        })
        .await
    }

    /// Change a neighbourhood: make it the active one (the other stops
    /// being active) and/or set its range. False if the user has no such
    /// neighbourhood (nothing changed).
    pub async fn update_neighbourhood(
        &self,
        user: UserId,
        region: &str,
        activate: bool,
        range: Option<&str>,
    ) -> Result<bool, StoreError> {
        retrying("update_neighbourhood", || async {
            let mut tx = self.begin_write().await?;
            let exists: Option<(i64,)> = sqlx::query_as(
                "SELECT active FROM neighbourhoods WHERE user_id = ? AND region_code = ?",
            )
            .bind(user.get())
            .bind(region)
            .fetch_optional(&mut *tx)
            .await?;
            if exists.is_none() {
                return Ok(false);
            }
            if activate {
                sqlx::query(
                    "UPDATE neighbourhoods SET active = CASE WHEN region_code = ? THEN 1 ELSE 0 END \
                     WHERE user_id = ?",
                )
                .bind(region)
                .bind(user.get())
                .execute(&mut *tx)
                .await?;
            }
            if let Some(range) = range {
                sqlx::query(
                    "UPDATE neighbourhoods SET range_level = ? WHERE user_id = ? AND region_code = ?",
                )
                .bind(range)
                .bind(user.get())
                .bind(region)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// Remove a neighbourhood; the other one (if any) is then the active
    /// one. False if there was none.
    pub async fn remove_neighbourhood(
        &self,
        user: UserId,
        region: &str,
    ) -> Result<bool, StoreError> {
        retrying("remove_neighbourhood", || async {
            let mut tx = self.begin_write().await?;
            let removed =
                sqlx::query("DELETE FROM neighbourhoods WHERE user_id = ? AND region_code = ?")
                    .bind(user.get())
                    .bind(region)
                    .execute(&mut *tx)
                    .await?;
            if removed.rows_affected() == 0 {
                return Ok(false);
            }
            // At most one is left (two at most): it is the active one now.
            sqlx::query("UPDATE neighbourhoods SET active = 1 WHERE user_id = ?")
                .bind(user.get())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }
}
