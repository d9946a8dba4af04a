//! Payments, the audit trail of provider calls, the keys and intents that
//! tie a provider's payment to an order, and the failures admins see.
//!
//! Recording an approved payment is one transaction: the order goes from
//! `pending_payment` to `paid` by a conditional update, and the payment row
//! is inserted (unique per order and per payment key). If the order is no
//! longer pending (it expired, or the buyer cancelled, while the provider
//! approved) nothing is written and the caller compensates.

use super::outbox::enqueue;
use super::{is_unique_violation, retrying, NewJob};
use crate::store::sql::PaymentsSql;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub id: i64,
    pub order_id: i64,
    pub provider: String,
    pub payment_key: String,
    pub amount: i64,
    pub cancelled_amount: i64,
    pub method: String,
    pub status: String,
    pub approved_at: i64,
}

/// An approved payment to record.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub order_id: i64,
    pub provider: &'a str,
    pub payment_key: &'a str,
    pub amount: i64,
    pub method: &'a str,
    pub approved_at: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    Paid(PaymentRecord),
    /// The order was not pending any more: nothing written.
    OrderNotPending,
    /// Another confirm recorded this order's payment first.
    AlreadyPaid(PaymentRecord),
}

/// One provider call, for the audit trail.
#[derive(Debug, Clone)]
pub struct PaymentEvent<'a> {
    pub order_id: Option<i64>,
    pub provider: &'a str,
    pub action: &'a str,
    pub request_id: &'a str,
    pub outcome: &'a str,
    pub latency_ms: i64,
    pub detail: &'a str,
}

type PaymentRow = (i64, i64, String, String, i64, i64, String, String, i64);
const PAYMENT_COLUMNS: &str =
    "id, order_id, provider, payment_key, amount, cancelled_amount, method, status, approved_at";

fn payment(r: PaymentRow) -> PaymentRecord {
    PaymentRecord {
        id: r.0,
        order_id: r.1,
        provider: r.2,
        payment_key: r.3,
        amount: r.4,
        cancelled_amount: r.5,
        method: r.6,
        status: r.7,
        approved_at: r.8,
    }
}

impl PaymentsSql<'_> {
    pub async fn payment_of_order(
        &self,
        order_id: i64,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let row: Option<PaymentRow> = sqlx::query_as(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE order_id = ?"
        ))
        .bind(order_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(payment))
    }

    /// Mark the order paid and insert its payment, in one transaction.
    pub async fn record_payment(
        &self,
        p: &NewPayment<'_>,
        jobs: &[NewJob],
        now: i64,
    ) -> Result<Recorded, StoreError> {
        let attempt = retrying("record_payment", || async {
            let mut tx = self.begin_write().await?;
            let r = sqlx::query(
                "UPDATE orders SET status = 'paid', paid_at = ?, updated_at = ? \
                 WHERE id = ? AND status = 'pending_payment'",
            )
            .bind(now)
            .bind(now)
            .bind(p.order_id)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() != 1 {
                return Ok(None);
            }
            // A used-listing order: the listing is sold to the buyer in the
            // same transaction, and the order's hold on it completes.
            let (listing, reservation, buyer): (Option<i64>, Option<i64>, i64) = sqlx::query_as(
                "SELECT listing_id, reservation_id, buyer_id FROM orders WHERE id = ?",
            )
            .bind(p.order_id)
            .fetch_one(&mut *tx)
            .await?;
            if let Some(listing) = listing {
                sqlx::query(
                    "UPDATE listings SET status = 'sold', buyer_id = ?, sold_at = ?, updated_at = ? \
                     WHERE id = ? AND status IN ('selling', 'reserved') AND deleted_at IS NULL",
                )
                .bind(buyer)
                .bind(now)
                .bind(now)
                .bind(listing)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE reservations SET status = 'completed', active_listing_id = NULL, ended_at = ? \
                     WHERE id = ? AND status = 'active'",
                )
                .bind(now)
                .bind(reservation)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "INSERT INTO payments (order_id, provider, payment_key, amount, method, status, approved_at, \
                 created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'done', ?, ?, ?)",
            )
            .bind(p.order_id)
            .bind(p.provider)
            .bind(p.payment_key)
            .bind(p.amount)
            .bind(p.method)
            .bind(p.approved_at)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for job in jobs {
                enqueue(&mut tx, job, now).await?;
            }
            self.outbox().commit_with_jobs(tx).await?;
            Ok(Some(()))
        })
        .await;
        match attempt {
            Ok(Some(())) => {}
            Ok(None) => {
                // Not pending: paid meanwhile by a concurrent confirm, or
                // ended. The caller tells them apart by the payment row.
                return Ok(match self.payment_of_order(p.order_id).await? {
                    Some(existing) => Recorded::AlreadyPaid(existing),
                    None => Recorded::OrderNotPending,
                });
            }
            Err(StoreError::Sql(e)) if is_unique_violation(&e) => {
                return Ok(match self.payment_of_order(p.order_id).await? {
                    Some(existing) => Recorded::AlreadyPaid(existing),
                    None => Recorded::OrderNotPending,
                });
            }
            Err(e) => return Err(e),
        }
        match self.payment_of_order(p.order_id).await? {
            Some(rec) => Ok(Recorded::Paid(rec)),
            None => Err(StoreError::Other("payment recorded but not found".into())),
        }
    }

    /// Append one provider call to the audit trail.
    pub async fn log_payment_event(
        &self,
        e: &PaymentEvent<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        let detail: String = e.detail.chars().take(900).collect();
        sqlx::query(
            "INSERT INTO payment_events (order_id, provider, action, request_id, outcome, latency_ms, detail, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.order_id)
        .bind(e.provider)
        .bind(e.action)
        .bind(e.request_id)
        .bind(e.outcome)
        .bind(e.latency_ms)
        .bind(detail)
        .bind(now)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// How many provider calls of `action` were made for an order (tests,
    /// audits).
    pub async fn payment_event_count(
        &self,
        order_id: i64,
        action: &str,
    ) -> Result<i64, StoreError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM payment_events WHERE order_id = ? AND action = ?")
                .bind(order_id)
                .bind(action)
                .fetch_one(self.reader())
                .await?;
        Ok(n)
    }
}

/// A payment problem an admin has to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFailure {
    /// `refund` (a cancel the provider never made) or `compensation` (a
    /// payment we could not keep and could not give back).
    pub kind: String,
    pub order_id: Option<i64>,
    pub amount: i64,
    pub error: String,
    pub at: i64,
    /// The refund id or the outbox job id.
    pub id: i64,
}

/// Provider keys, intents, and what admins must look at.
impl PaymentsSql<'_> {
    /// The payment a provider key names.
    pub async fn payment_by_key(
        &self,
        provider: &str,
        payment_key: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT order_id FROM payments WHERE provider = ? AND payment_key = ?")
                .bind(provider)
                .bind(payment_key)
                .fetch_optional(self.writer())
                .await?;
        match row {
            Some((order,)) => self.payment_of_order(order).await,
            None => Ok(None),
        }
    }

    /// Failed refunds and dead compensations, newest first.
    pub async fn payment_failures(&self, limit: i64) -> Result<Vec<PaymentFailure>, StoreError> {
        let refunds: Vec<(i64, i64, i64, Option<String>, i64)> = sqlx::query_as(
            "SELECT id, order_id, amount, last_error, COALESCE(done_at, created_at) FROM refunds \
             WHERE status = 'failed' ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        let jobs: Vec<(i64, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT id, payload, last_error, COALESCE(done_at, created_at) FROM outbox \
             WHERE status = 'dead' AND kind = 'payment_cancel' ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        let mut out: Vec<PaymentFailure> = refunds
            .into_iter()
            .map(|(id, order, amount, error, at)| PaymentFailure {
                kind: "refund".into(),
                order_id: Some(order),
                amount,
                error: error.unwrap_or_default(),
                at,
                id,
            })
            .collect();
        out.extend(jobs.into_iter().map(|(id, payload, error, at)| {
            let p: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
            PaymentFailure {
                kind: "compensation".into(),
                order_id: p.get("order").and_then(serde_json::Value::as_i64),
                amount: p
                    .get("amount")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0),
                error: error.unwrap_or_default(),
                at,
                id,
            }
        }));
        out.sort_by_key(|f| std::cmp::Reverse(f.at));
        out.truncate(usize::try_from(limit).unwrap_or(50));
        Ok(out)
    }

    /// Bind a provider's key from the ready step to an order (KakaoPay).
    pub async fn put_payment_intent(
        &self,
        order_id: i64,
        provider: &str,
        payment_key: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM payment_intents WHERE order_id = ? AND provider = ?")
            .bind(order_id)
            .bind(provider)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO payment_intents (order_id, provider, payment_key, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(order_id)
        .bind(provider)
        .bind(payment_key)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Is `payment_key` one of ours at `provider`: a recorded payment, or
    /// one we started (its intent is written before the provider is asked)?
    pub async fn knows_payment_key(
        &self,
        provider: &str,
        payment_key: &str,
    ) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM payments WHERE provider = ? AND payment_key = ? \
             UNION ALL SELECT 1 FROM payment_intents WHERE provider = ? AND payment_key = ? LIMIT 1",
        )
        .bind(provider)
        .bind(payment_key)
        .bind(provider)
        .bind(payment_key)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.is_some())
    }

    pub async fn payment_intent(
        &self,
        order_id: i64,
        provider: &str,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT payment_key FROM payment_intents WHERE order_id = ? AND provider = ?",
        )
        .bind(order_id)
        .bind(provider)
        .fetch_optional(self.writer())
        .await?;
        Ok(row.map(|r| r.0))
    }
}
