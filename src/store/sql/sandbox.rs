//! The sandbox payment provider's ledger (see `payments::sandbox`).

use super::{is_unique_violation, retrying};
use crate::store::sql::PaymentsSql;
use crate::store::StoreError;

/// A sandbox payment: (order id, amount, cancelled, confirm key, approved at).
pub type SandboxPayment = (String, i64, i64, String, i64);

/// What a sandbox cancel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxCancel {
    /// Cancelled now or before under this key: (amount, remaining).
    Done(i64, i64),
    NoSuchPayment,
    /// More than is left: what is left.
    TooMuch(i64),
}

impl PaymentsSql<'_> {
    pub async fn sandbox_payment(&self, key: &str) -> Result<Option<SandboxPayment>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT order_id, amount, cancelled, confirm_key, approved_at FROM sandbox_payments WHERE payment_key = ?",
        )
        .bind(key)
        .fetch_optional(self.writer())
        .await?)
    }

    /// Approve a payment once. `Err(existing)` if the key was approved
    /// before (the caller tells a replay from a second confirm by its key).
    pub async fn sandbox_approve(
        &self,
        key: &str,
        order_id: &str,
        amount: i64,
        confirm_key: &str,
        now: i64,
    ) -> Result<Result<(), SandboxPayment>, StoreError> {
        let r = sqlx::query(
            "INSERT INTO sandbox_payments (payment_key, order_id, amount, cancelled, confirm_key, approved_at) \
             VALUES (?, ?, ?, 0, ?, ?)",
        )
        .bind(key)
        .bind(order_id)
        .bind(amount)
        .bind(confirm_key)
        .bind(now)
        .execute(self.writer())
        .await;
        match r {
            Ok(_) => Ok(Ok(())),
            Err(e) if is_unique_violation(&e) => match self.sandbox_payment(key).await? {
                Some(existing) => Ok(Err(existing)),
                None => Err(StoreError::Other("sandbox payment vanished".into())),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Cancel `amount` of a payment once per idempotency key.
    pub async fn sandbox_cancel(
        &self,
        key: &str,
        amount: i64,
        idempotency_key: &str,
    ) -> Result<SandboxCancel, StoreError> {
        retrying("sandbox_cancel", || async {
            let mut tx = self.begin_write().await?;
            let before: Option<(i64, i64)> = sqlx::query_as(
                "SELECT amount, remaining FROM sandbox_cancels WHERE idempotency_key = ?",
            )
            .bind(idempotency_key)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((a, r)) = before {
                return Ok(SandboxCancel::Done(a, r));
            }
            let done = sqlx::query(
                "UPDATE sandbox_payments SET cancelled = cancelled + ? \
                 WHERE payment_key = ? AND cancelled + ? <= amount",
            )
            .bind(amount)
            .bind(key)
            .bind(amount)
            .execute(&mut *tx)
            .await?;
            let row: Option<(i64, i64)> =
                sqlx::query_as("SELECT amount, cancelled FROM sandbox_payments WHERE payment_key = ?")
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((paid, cancelled)) = row else {
                return Ok(SandboxCancel::NoSuchPayment);
            };
            if done.rows_affected() != 1 {
                return Ok(SandboxCancel::TooMuch(paid - cancelled));
            }
            sqlx::query(
                "INSERT INTO sandbox_cancels (idempotency_key, payment_key, amount, remaining) VALUES (?, ?, ?, ?)",
            )
            .bind(idempotency_key)
            .bind(key)
            .bind(amount)
            .bind(paid - cancelled)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(SandboxCancel::Done(amount, paid - cancelled))
        })
        .await
    }
}
